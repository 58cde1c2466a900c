"""The activity sync: reading each account's transaction history into the ledger."""
