"""The subcommands (`ledger export`, `backfill`)."""
