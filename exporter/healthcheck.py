"""Container health probe: `python -m exporter.healthcheck [PORT]` exits 0 when /healthz answers 200."""

from __future__ import annotations

import ssl
import sys
import urllib.request


def probe(port: int, timeout: float = 3.0) -> bool:
    """True when /healthz on loopback answers 200 over plain HTTP or TLS (any certificate)."""
    # Only the local process is probed, so an unverified TLS context is no risk here.
    context = ssl._create_unverified_context()
    for scheme in ("http", "https"):
        url = f"{scheme}://127.0.0.1:{port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
                if response.status == 200:
                    return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(0 if probe(int(sys.argv[1]) if len(sys.argv) > 1 else 9788) else 1)
