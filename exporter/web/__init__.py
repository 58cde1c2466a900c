"""The HTTP server: connections, TLS, basic auth and the web config file."""
