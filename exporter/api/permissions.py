"""The permission of a BTCTurk API key each endpoint the exporter reads needs.

Named as BTCTurk's API Access page names them (docs.btcturk.com/api-access-permissions; the Turkish
page's labels beside them): "Total Funds" for the balances, "Account" for the user transactions.
The exporter never needs "Trade" (Al-Sat) or any withdrawal permission.
"""

from __future__ import annotations

from exporter.api.client import BALANCES
from exporter.api.records import ENDPOINTS

TOTAL_FUNDS = "Total Funds"  # Toplam Varlık
ACCOUNT = "Account"  # Hesap
BY_PATH: dict[str, str] = {BALANCES: TOTAL_FUNDS} | {path: ACCOUNT for path in ENDPOINTS.values()}


def what_it_reads(activity: bool) -> str:
    """One account's reads and the permission each needs, for the line logged at start."""
    balances = f"reads balances with the key's {TOTAL_FUNDS} permission"
    if not activity:
        return f"{balances}; no transactions (activity is off)"
    return f"{balances}, and trades, deposits and withdrawals with its {ACCOUNT} permission"
