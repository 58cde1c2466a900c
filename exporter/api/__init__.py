"""The BTCTurk API: HTTP transport, signing, parsing, rate limits and budgets, retries, and the endpoints."""
