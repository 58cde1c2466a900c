"""Developer tools: the dashboard generator and the Grafana request model the tests use."""
