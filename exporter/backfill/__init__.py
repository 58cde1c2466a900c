"""Backfill: past holdings, prices and ledger figures at regular steps, written for promtool."""
