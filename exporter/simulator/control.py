"""TEST-ONLY steering endpoints under /_sim, so a simulator in another process can be driven.

The real API has nothing like them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any

from exporter.simulator.faults import fault_from_json
from exporter.simulator.responses import Response, json_response
from exporter.simulator.transactions import FULL_MODES

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator


def control(sim: Simulator, method: str, path: str, body: bytes) -> Response:
    """Answer one control request."""
    ok = json_response(200, {"ok": True})
    try:
        if path == "/_sim/faults" and method == "POST":
            fault, endpoint, times = fault_from_json(json.loads(body or b"{}"))
            sim.inject(fault, endpoint=endpoint, times=times)
            return ok
        if path == "/_sim/faults" and method == "DELETE":
            sim.clear_faults()
            return ok
        if path == "/_sim/items" and method == "POST":
            spec = json.loads(body or b"{}")
            items = [dict(item) for item in spec.get("items", [])]
            hidden = [int(i) for i in spec.get("hidden", [])]
            sim.serve_items(str(spec["endpoint"]), items, hidden, reverse=bool(spec.get("reverse", False)))
            return ok
        if path == "/_sim/items" and method == "DELETE":
            sim.clear_items()
            return ok
        if path == "/_sim/stats" and method == "GET":
            return json_response(200, {"requests": sim.stats()})
        if path == "/_sim/config" and method == "POST":
            _configure(sim, json.loads(body or b"{}"))
            return ok
        if path == "/_sim/drift" and method == "POST":
            spec = json.loads(body or b"{}")
            sim.drift(float(spec.get("fraction", 0.002)))
            return ok
    except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation) as exc:
        return json_response(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return json_response(404, {"ok": False, "error": f"no control endpoint {method} {path}"})


def _configure(sim: Simulator, spec: Mapping[str, Any]) -> None:
    known = {"clock_skew", "comma_decimals", "legacy_401", "activity_cap", "activity_halved", "activity_full"}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    if "clock_skew" in spec:
        sim.clock_skew = float(spec["clock_skew"])
    if "comma_decimals" in spec:
        sim.comma_decimals = bool(spec["comma_decimals"])
    if "legacy_401" in spec:
        sim.legacy_401 = bool(spec["legacy_401"])
    if "activity_halved" in spec:
        sim.activity_halved = bool(spec["activity_halved"])
    if "activity_full" in spec:
        mode = spec["activity_full"]
        if mode is not None and mode not in FULL_MODES:
            raise ValueError(f"activity_full must be null or one of {sorted(FULL_MODES)}")
        sim.activity_full = None if mode is None else str(mode)
    if "activity_cap" in spec:
        cap = int(spec["activity_cap"])
        if cap < 1:
            raise ValueError("activity_cap must be at least 1")
        sim.activity_cap = cap
