#!/usr/bin/env python3
"""Write the Grafana dashboards in grafana/dashboards/ from their builders in tools/dashboards/.

    python -m tools.gen_dashboards          # rewrite the JSON files
    python -m tools.gen_dashboards --check  # exit 1 if a committed file is out of date

Edit tools/dashboards/, not the JSON: tests/deploy/test_dashboards.py fails when the committed JSON
differs from what this writes, and lints the result (datasource variable, job/instance matchers on
every selector, $__rate_interval, units, uids, tags, links).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from tools.dashboards.activity import activity
from tools.dashboards.health import health
from tools.dashboards.overview import overview

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "grafana" / "dashboards"


def render(board: Dashboard) -> str:
    """The dashboard as Grafana's JSON model, as committed."""
    return JSONEncoder(indent=2, ensure_ascii=False).encode(board) + "\n"


def generate() -> dict[Path, str]:
    """Every dashboard file and its content."""
    return {OUT_DIR / f"{board.uid}.json": render(board) for board in (overview(), health(), activity())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if a committed file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"{path.relative_to(ROOT)} is out of date: run python -m tools.gen_dashboards", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
