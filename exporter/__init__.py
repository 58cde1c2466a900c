"""Prometheus exporter for BTCTurk account balances."""

__version__ = "0.1.0"
