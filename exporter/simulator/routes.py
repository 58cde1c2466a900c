"""One request's way through the simulator: control API, quota, faults, then the endpoint's answer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from exporter.simulator import endpoints, graph, transactions
from exporter.simulator.accounts import Headers, authenticate
from exporter.simulator.control import control
from exporter.simulator.faults import Fault
from exporter.simulator.paths import (
    API_PATHS,
    BALANCES_PATH,
    CONTROL_PREFIX,
    KLINES_PATH,
    OHLCS_PATH,
    SERVER_TIME_PATH,
    TICKER_PATH,
    normalize_path,
)
from exporter.simulator.responses import (
    JSON_TYPE,
    Response,
    failure,
    guess_content_type,
    json_response,
    too_many,
    unauthorized,
    wrapped,
)
from exporter.simulator.server import Handler
from exporter.simulator.transactions import TRANSACTION_PATHS

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator


def serve(sim: Simulator, handler: Handler) -> None:
    """Answer one request on `handler`."""
    split = urlsplit(handler.path)
    path = normalize_path(split.path)
    body = handler.read_body()
    if body is None:
        return
    if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
        handler.send(control(sim, handler.command, path, body))
        return
    retry_after = sim.limiter.consume(handler.client_address[0], path, sim.now())
    with sim.lock:
        fault = sim.faults.take(path)
    if fault is not None and fault.kind == "latency":
        if sim.stopping.wait(fault.seconds):
            sim.log.record(path, 0)
            handler.abort()
            return
        fault = None
    if fault is not None:
        _serve_fault(sim, handler, fault, path, split.query)
        return
    if retry_after is not None:
        response = _too_many(sim, path, retry_after)
    else:
        response = route(sim, handler.command, path, split.query, handler.headers)
    sim.log.record(path, response.status)
    handler.send(response)


def _too_many(sim: Simulator, path: str, retry_after: float | None, body: bytes = b"") -> Response:
    limit = sim.limiter.limits.get(path) or sim.limiter.limits[BALANCES_PATH]
    return too_many(limit, sim.limiter.window, retry_after, body)


def _serve_fault(sim: Simulator, handler: Handler, fault: Fault, path: str, query: str) -> None:
    kind = fault.kind
    if kind == "hang":
        # Recorded first so a test can wait for the moment the client is left hanging.
        sim.log.record(path, 0)
        sim.stopping.wait(fault.seconds)
        handler.abort()
        return
    if kind == "reset":
        if fault.body:
            response = Response(200, fault.body, {"Content-Type": guess_content_type(fault.body)})
        else:
            response = route(sim, handler.command, path, query, handler.headers)
            if not response.body:
                response = json_response(200, wrapped([{"asset": "TRY", "assetname": "Türk Lirası"}] * 8))
        response.headers.update(fault.headers)
        sim.log.record(path, 0)
        handler.send_partial(response)
        return
    if kind == "status":
        headers = {"Content-Type": guess_content_type(fault.body)} if fault.body else {}
        response = Response(fault.status, fault.body, headers)
    elif kind == "rate_limit":
        response = _too_many(sim, path, fault.retry_after, fault.body)
    elif kind == "body":
        response = Response(200, fault.body, {"Content-Type": JSON_TYPE})
    elif kind == "gaps":
        response = route(sim, handler.command, path, query, handler.headers)
        if response.status == 200 and path in (KLINES_PATH, OHLCS_PATH):
            gappy = graph.with_gaps(json.loads(response.body), fault.drop_every)
            response = json_response(200, gappy)
    else:  # "auth" / "auth_json"
        response = unauthorized(legacy=kind == "auth_json")
    response.headers.update(fault.headers)
    sim.log.record(path, response.status)
    handler.send(response)


def route(sim: Simulator, method: str, path: str, query: str, headers: Headers) -> Response:
    """The endpoint's own answer, as if nothing had gone wrong on the way."""
    if path not in API_PATHS:
        return Response(404)  # the live API's 404 has an empty body
    if method not in ("GET", "HEAD"):
        return json_response(405, failure("METHOD_NOT_ALLOWED", 405), {"Allow": "GET"})
    try:
        if path == BALANCES_PATH:
            return _balances(sim, headers)
        if path in TRANSACTION_PATHS:
            return _transactions(sim, path, query, headers)
        if path in (KLINES_PATH, OHLCS_PATH):
            return _graph(sim, path, query)
        if path == SERVER_TIME_PATH:
            return json_response(200, endpoints.server_time(sim.now()))
        if path == TICKER_PATH:
            return _ticker(sim, query)
        return _exchange_info(sim)
    except Exception:  # a simulator bug should look like a 500, not a dropped connection
        return json_response(500, failure("INTERNAL_ERROR", 500))


def _exchange_info(sim: Simulator) -> Response:
    # The live answer comes from a CDN cache and may be up to max-age old: so is this one.
    now = sim.now()
    with sim.lock:
        cached = sim.exchange_info_cache
        if cached is None or not 0 <= now - cached[0] < sim.exchange_info_max_age:
            info = endpoints.exchange_info(
                sim.market, sim.accounts.values(), sim.now_ms(), sim.operation_blocks
            )
            body = _wrapped(sim, info)
            cached = sim.exchange_info_cache = (now, body)
    age = f"{max(0, int(sim.exchange_info_max_age)):d}"
    return json_response(200, cached[1], {"Cache-Control": f"max-age={age}"})


def _wrapped(sim: Simulator, data: object) -> dict[str, object]:
    return wrapped(data, sim.quirks.success_code())


def _balances(sim: Simulator, headers: Headers) -> Response:
    now_ms = sim.now_ms()
    with sim.lock:
        account = authenticate(sim.accounts, headers, now_ms)
        if account is None or not account.can_read_balances:
            return unauthorized(sim.legacy_401)
        data = endpoints.balance_rows(account, sim.quirks.balance_timestamp(now_ms), sim.comma_decimals)
    return json_response(200, _wrapped(sim, data))


def _transactions(sim: Simulator, path: str, query: str, headers: Headers) -> Response:
    now_ms = sim.now_ms()
    with sim.lock:
        account = authenticate(sim.accounts, headers, now_ms)
        if account is None or not account.can_read_activity:
            return unauthorized(sim.legacy_401)
        try:
            served, full = sim.served.get(path), sim.activity_full
            data = transactions.answer(
                path, account.history, parse_qs(query), now_ms, sim.activity_cap, served, full
            )
            if sim.activity_halved:
                data = data[: len(data) // 2]
        except transactions.BadQuery as exc:
            return json_response(400, failure(str(exc), 400))
    return json_response(200, _wrapped(sim, data))


def _graph(sim: Simulator, path: str, query: str) -> Response:
    params = parse_qs(query)
    with sim.lock:
        try:
            if path == KLINES_PATH:
                return json_response(200, graph.klines(sim.market, sim.prices, params, sim.now()))
            return json_response(200, graph.ohlcs(sim.market, sim.prices, params, sim.now()))
        except graph.BadQuery as exc:
            return json_response(400, {"s": "error", "errmsg": str(exc)})


def _ticker(sim: Simulator, query: str) -> Response:
    params = {k.lower(): v for k, v in parse_qs(query).items()}
    wanted = {s.upper().replace("_", "") for s in params.get("pairsymbol", [])}
    with sim.lock:
        pairs = [p for p in sim.market.pairs.values() if not wanted or p.name in wanted]
        stamps = sim.quirks.ticker_stamps(sim.now_ms(), len(pairs))
        data = [endpoints.ticker_row(p, stamp) for p, stamp in zip(pairs, stamps, strict=True)]
    return json_response(200, _wrapped(sim, data))
