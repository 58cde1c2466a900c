"""HTTP basic auth against bcrypt hashes, with bounded work for credentials not yet verified.

bcrypt is slow on purpose, which makes it a lever for anyone who can reach the port: every new
wrong password costs tens to hundreds of milliseconds of CPU. So outcomes are cached (a verified
credential never runs bcrypt again, nor waits behind anyone else's check), and only a few requests
with unverified credentials may be in progress at once, at most one per client address; the others
are refused at once without a check. A flood from one address then cannot delay a new scraper at
another, and no flood can occupy the server's worker threads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

log = logging.getLogger(__name__)

# bcrypt only looks at the first 72 bytes; Go and htpasswd truncate silently, and the bcrypt
# package raises instead, so truncate here to accept the same passwords the Go exporters do.
BCRYPT_MAX_PASSWORD = 72
# Real Authorization headers are short; refusing huge ones early bounds the work done per request.
MAX_AUTHORIZATION = 4096
# Requests with unverified credentials in progress at once (checking or waiting for a check), in all
# and per client address. Below the HTTP server's 8 workers, so verified scrapes always find one free.
MAX_UNVERIFIED = 4
MAX_UNVERIFIED_PER_CLIENT = 1
# At most one warning per this many seconds about requests refused unchecked.
WARN_EVERY = 60.0


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """The (username, password) of an `Authorization: Basic` header, or None if it is not a valid one."""
    if not header or len(header) > MAX_AUTHORIZATION:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # binascii.Error and UnicodeDecodeError are both ValueErrors; so is non-ASCII input.
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        return None
    username, colon, password = text.partition(":")
    if not colon:
        return None
    return username, password


class _Flight:
    """One bcrypt check in progress, which concurrent requests for the same credentials wait on."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class BasicAuth:
    """Checks Authorization headers against bcrypt hashes, remembering outcomes so bcrypt runs rarely."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        cache_size: int = 1024,
        parallelism: int = 0,
        max_unverified: int = MAX_UNVERIFIED,
        max_unverified_per_client: int = MAX_UNVERIFIED_PER_CLIENT,
    ) -> None:
        if not users:
            raise ValueError("BasicAuth needs at least one user")
        self._users = tuple((name.encode(), hashed.encode()) for name, hashed in users.items())
        # Unknown users are checked against a real user's hash (the costliest), so their requests take
        # as long as a wrong password for a known user and do not reveal which usernames exist.
        self._decoy = max((hashed for _, hashed in self._users), key=lambda h: int(h[4:6]))
        self._lock = threading.Lock()
        # Separate caches so a flood of wrong passwords cannot evict the right ones and make
        # legitimate scrapers pay for bcrypt again.
        self._accepted: OrderedDict[bytes, None] = OrderedDict()
        self._rejected: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._flights: dict[bytes, _Flight] = {}
        # bcrypt releases the GIL; bound how many cores a burst of new credentials can occupy.
        slots = parallelism or max(1, min(2, os.cpu_count() or 1))
        self._slots = threading.BoundedSemaphore(slots)
        self._max_unverified = max_unverified
        self._max_per_client = max_unverified_per_client
        self._unverified: dict[str, int] = {}
        self._refused = 0
        self._warned_at = -WARN_EVERY

    def __call__(self, header: str | None, client: str = "") -> bool:
        """Whether the Authorization header carries a configured user's password.

        `client` is the peer's address: each address gets its share of the checks of new credentials.
        """
        credentials = parse_basic_auth(header)
        if credentials is None:
            return False
        username, password = credentials
        # A digest, not the credentials: the cache holds no passwords and each entry is small whatever
        # the client sends. "user:password" is unambiguous because usernames cannot contain ':'.
        key = hashlib.sha256(f"{username}:{password}".encode()).digest()
        with self._lock:
            if key in self._accepted:
                self._accepted.move_to_end(key)
                return True
            if key in self._rejected:
                self._rejected.move_to_end(key)
                return False
            if not self._admit(client):
                return False
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        try:
            if not leader:
                # Scrapers sharing credentials arrive together after a restart; one bcrypt run serves all.
                flight.done.wait()
                return flight.ok
            try:
                flight.ok = self._verify(username.encode(), password.encode())
                with self._lock:
                    self._remember(self._accepted if flight.ok else self._rejected, key)
            finally:
                with self._lock:
                    del self._flights[key]
                flight.done.set()
            return flight.ok
        finally:
            with self._lock:
                self._release(client)

    def _admit(self, client: str) -> bool:
        # Called with the lock held.
        total = sum(self._unverified.values())
        if total < self._max_unverified and self._unverified.get(client, 0) < self._max_per_client:
            self._unverified[client] = self._unverified.get(client, 0) + 1
            return True
        self._refused += 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            log.warning(
                "basic auth: refused %d request(s) without checking the password: too many "
                "unverified credentials at once (latest from %s); verified scrapers are not affected",
                self._refused,
                client or "unknown",
            )
            self._refused = 0
            self._warned_at = now
        return False

    def _release(self, client: str) -> None:
        # Called with the lock held.
        left = self._unverified[client] - 1
        if left:
            self._unverified[client] = left
        else:
            del self._unverified[client]

    def _verify(self, username: bytes, password: bytes) -> bool:
        hashed = None
        for name, candidate in self._users:
            # Constant-time and no early exit: the time taken does not depend on which user matched.
            if hmac.compare_digest(name, username):
                hashed = candidate
        with self._slots:
            try:
                ok = bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed or self._decoy)
            except ValueError:
                ok = False
        return ok and hashed is not None

    def _remember(self, cache: OrderedDict[bytes, None], key: bytes) -> None:
        cache[key] = None
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
