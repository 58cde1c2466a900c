"""The ledger: one SQLite file of each account's trades and transfers, its counters and cost basis."""
