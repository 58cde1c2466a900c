"""How long loading a configuration takes, and how much memory, for ordinary and hostile files.

Each case runs in a fresh interpreter so its peak resident memory is its own. Prints one line per case:
    python benchmarks/config_load.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, time
from exporter.config.loader import ConfigError, load_config
start = time.perf_counter()
try:
    load_config(sys.argv[1], {})
    outcome = "loaded"
except ConfigError as exc:
    outcome = str(exc).splitlines()[0][-60:]
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed * 1000:9.1f} ms {peak:7.1f} MiB peak  {outcome}")
"""

ACCOUNT = "  - name: a{i}\n    public_key: pub{i}\n    private_key: ZmFrZS1wcml2YXRlLWtleQ==\n"


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        cases: dict[str, str] = {}
        example = root / "config.example.yaml"
        cases["config.example.yaml"] = str(example)
        under = Path(tmp, "list-under-cap.yml")
        # A flow list of small integers just under the 1 MiB cap: the costliest thing to parse per byte.
        under.write_text("x: [" + "1," * (1024 * 1024 // 2 - 4) + "]\n", encoding="utf-8")
        cases["1 MiB flow list (refused: unknown key, after parsing)"] = str(under)
        over = Path(tmp, "list-over-cap.yml")
        over.write_text("x: [" + "1," * (10 * 1024 * 1024) + "]\n", encoding="utf-8")
        cases["20 MiB flow list (refused unread)"] = str(over)
        cases["/dev/zero"] = "/dev/zero"
        fifo = Path(tmp, "fifo")
        os.mkfifo(fifo)
        cases["a FIFO without a writer"] = str(fifo)
        accounts = Path(tmp, "accounts.yml")
        accounts.write_text(
            "poll_interval: 1d\naccounts:\n" + "".join(ACCOUNT.format(i=i) for i in range(1000)),
            encoding="utf-8",
        )
        cases["1000 accounts polled daily"] = str(accounts)
        broken = Path(tmp, "broken-under-cap.yml")
        broken.write_text("x: [" + "1," * (1024 * 1024 // 2 - 4) + "\n", encoding="utf-8")
        cases["1 MiB flow list, unclosed (refused: invalid YAML)"] = str(broken)
        for name, path in cases.items():
            result = subprocess.run(
                [sys.executable, "-c", CHILD, path], capture_output=True, text=True, timeout=120, cwd=root
            )
            print(f"{name:55} {result.stdout.strip() or result.stderr.strip()[-200:]}")


if __name__ == "__main__":
    main()
