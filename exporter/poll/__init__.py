"""The balance poller and the snapshot store it publishes into."""
