"""Bad, changed and stray records in transaction answers: each counted once, said in bounded lines.

An unparseable record is skipped by id and the rest of the answer kept; a record served again with other
fields keeps its first version (an id never changes); a record outside the window asked is kept once by
its id. Each counts in btcturk_api_oddities_total.
"""

from __future__ import annotations

import logging
import threading

from exporter.api.client import OddityHook
from exporter.api.records import BAD_RECORD, CHANGED_RECORD, STRAY_RECORD, Skipped
from exporter.api.transactions import Record

log = logging.getLogger(__name__)

# Distinct bad or changed records remembered so each is counted and logged once (a hostile answer
# could repeat new ones forever: past this many, each is counted again on every re-read).
MAX_NOTED = 10_000
# Warning lines per account and endpoint about bad or changed records: a changed answer format makes
# every record bad, and a line each would bury the log; past this, they are counted only.
MAX_RECORD_WARNINGS = 10


class RecordOddities:
    """Counts and logs the bad and changed records the endpoint loops meet."""

    def __init__(self, on_oddity: OddityHook | None) -> None:
        self.on_oddity = on_oddity
        self._lock = threading.Lock()
        self._noted: set[tuple[str, str, object]] = set()
        self._warned: dict[tuple[str, str], int] = {}

    def bad(self, account: str, path: str, bad: Skipped) -> None:
        """A record of `path`'s answer that could not be read, left out."""
        # By id when it has one: the same record re-read every turn is one oddity, not one a minute.
        if not self._note((account, path, bad.id if bad.id is not None else bad.reason)):
            return
        if self.on_oddity is not None:
            self.on_oddity(path, BAD_RECORD)
        which = "an item without a readable id" if bad.id is None else f"record {bad.id}"
        self._warn(account, path, "activity of account %s: %s skipped, the rest kept: %s", which, bad.reason)

    def changed(self, account: str, path: str, record: Record) -> None:
        """A record served again with other fields than the ledger's first version of it."""
        if not self._note((account, "changed " + path, record.id)):
            return
        if self.on_oddity is not None:
            self.on_oddity(path, CHANGED_RECORD)
        self._warn(
            account,
            path,
            "activity of account %s: %s served record %d again with other fields; the first version"
            " is kept (a record id never changes)",
            path,
            record.id,
        )

    def stray(self, account: str, path: str, record: Record) -> None:
        """A record in an answer that is not of the window asked (dated outside it, or repeated in it)."""
        if not self._note((account, "stray " + path, record.id)):
            return
        if self.on_oddity is not None:
            self.on_oddity(path, STRAY_RECORD)
        self._warn(
            account,
            path,
            "activity of account %s: %s answered record %d outside the window asked, or twice; it is kept"
            " once by its id",
            path,
            record.id,
        )

    def _note(self, key: tuple[str, str, object]) -> bool:
        """True the first time a bad or changed record is seen (count it and say it once)."""
        with self._lock:
            if key in self._noted:
                return False
            if len(self._noted) < MAX_NOTED:
                self._noted.add(key)
            return True

    def _warn(self, account: str, path: str, message: str, *args: object) -> None:
        with self._lock:
            n = self._warned[account, path] = self._warned.get((account, path), 0) + 1
        if n < MAX_RECORD_WARNINGS:
            log.warning(message, account, *args)
        elif n == MAX_RECORD_WARNINGS:
            log.warning(
                message + " (further bad or changed records of %s are counted in btcturk_api_oddities_total,"
                " not logged)",
                account,
                *args,
                path,
            )
