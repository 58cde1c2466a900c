"""The OpenMetrics writer: spelling of names, values and times, and the order it refuses to break."""

from __future__ import annotations

import io
from decimal import Decimal as D

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.backfill.openmetrics import OpenMetricsWriter, OrderError, format_timestamp
from exporter.metrics.activity_families import ACTIVITY_FAMILIES
from exporter.metrics.exposition import escape_label, format_stored

T = 1_700_000_000_000


def test_values_are_the_nearest_float64_in_its_shortest_spelling() -> None:
    assert format_stored(D("0.1")) == "0.1"
    assert format_stored(D("731.268000")) == "731.268"
    assert format_stored(D("1E+30")) == "1e+30"
    assert format_stored(D("0.00000001")) == "1e-08"
    assert format_stored(D("-2.5")) == "-2.5"
    assert format_stored(7) == "7"
    assert format_stored(D("1e400")) == "+Inf"  # beyond float64: what Prometheus would store
    assert format_stored(D("-1e400")) == "-Inf"
    assert format_stored(D("NaN")) == "NaN"


def test_times_are_seconds_with_milliseconds_only_when_needed() -> None:
    assert format_timestamp(T) == "1700000000"
    assert format_timestamp(T + 250) == "1700000000.250"
    assert format_timestamp(T + 5) == "1700000000.005"
    with pytest.raises(ValueError, match="before 1970"):
        format_timestamp(-1)


def test_escaping_of_label_values_and_help() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    out = io.StringIO()
    w = OpenMetricsWriter(out)
    w.family("x", "gauge", 'say "hi"\nback\\slash')
    w.series([("account", 'odd "name"\n')], [(T, D(1))])
    w.close()
    [family] = text_string_to_metric_families(out.getvalue())
    assert family.documentation == 'say "hi"\nback\\slash'
    assert family.samples[0].labels == {"account": 'odd "name"\n'}


def test_a_well_ordered_file_is_strict_openmetrics() -> None:
    out = io.StringIO()
    w = OpenMetricsWriter(out)
    w.family("btcturk_trades", "counter", "Trades.")
    assert w.series([("account", "a"), ("side", "buy")], [(T, 0), (T + 1000, 2)]) == 2
    assert w.series([("account", "a"), ("side", "sell")], [(T + 500, 1)]) == 1
    w.family("btcturk_balance", "gauge", "Balance.")
    w.series([("asset", "BTC")], [(T, D("0.5"))])
    summary = w.close()
    text = out.getvalue()
    assert text.splitlines()[2] == 'btcturk_trades_total{account="a",side="buy"} 0 1700000000'
    assert text.endswith("# EOF\n")
    families = list(text_string_to_metric_families(text))
    assert [(f.name, f.type, len(f.samples)) for f in families] == [
        ("btcturk_trades", "counter", 3),
        ("btcturk_balance", "gauge", 1),
    ]
    assert (summary.families, summary.series, summary.samples) == (2, 3, 4)
    assert (summary.first_ms, summary.last_ms) == (T, T + 1000)


def test_a_family_without_samples_writes_nothing() -> None:
    out = io.StringIO()
    w = OpenMetricsWriter(out)
    w.family("empty", "gauge", "Nothing.")
    assert w.series([("a", "b")], []) == 0
    assert w.close().families == 0
    assert out.getvalue() == "# EOF\n"


@pytest.mark.parametrize(
    "times",
    [[T + 1000, T], [T, T]],
    ids=["backwards", "repeated"],
)
def test_a_series_going_back_in_time_is_refused_and_not_written(times: list[int]) -> None:
    # promtool 2.42 would drop such a sample without a word.
    out = io.StringIO()
    w = OpenMetricsWriter(out)
    w.family("x", "gauge", "X.")
    with pytest.raises(OrderError, match="after one at"):
        w.series([], [(ms, 1) for ms in times])
    assert out.getvalue() == ""


def test_a_series_or_a_family_written_twice_is_refused() -> None:
    w = OpenMetricsWriter(io.StringIO())
    w.family("x", "gauge", "X.")
    w.series([("a", "1")], [(T, 1)])
    with pytest.raises(OrderError, match="written twice"):
        w.series([("a", "1")], [(T + 1000, 1)])
    w.family("y", "gauge", "Y.")
    with pytest.raises(OrderError, match="contiguous"):
        w.family("x", "gauge", "X.")


def test_misuse_is_refused() -> None:
    w = OpenMetricsWriter(io.StringIO())
    with pytest.raises(OrderError, match="before any family"):
        w.series([], [(T, 1)])
    with pytest.raises(ValueError, match="without _total"):
        w.family("btcturk_trades_total", "counter", "Trades.")
    with pytest.raises(ValueError, match="not valid"):
        w.family("bad-name", "gauge", "X.")
    with pytest.raises(ValueError, match="type"):
        w.family("x", "histogram", "X.")  # type: ignore[arg-type]
    w.family("x", "gauge", "X.")
    with pytest.raises(ValueError, match="label name"):
        w.series([("__name__", "y")], [(T, 1)])
    w.close()
    with pytest.raises(OrderError, match="closed"):
        w.family("z", "gauge", "Z.")


def test_activity_families_are_named_as_promised() -> None:
    names = {f.name: (f.kind, f.sample_name, f.labels) for f in ACTIVITY_FAMILIES}
    assert names["btcturk_trades"] == ("counter", "btcturk_trades_total", ("account", "pair", "side"))
    assert names["btcturk_trade_fees"][1] == "btcturk_trade_fees_total"
    assert names["btcturk_asset_cost_basis"] == (
        "gauge",
        "btcturk_asset_cost_basis",
        ("account", "asset", "currency"),
    )
    assert names["btcturk_net_deposits"][2] == ("account", "currency")
    assert all(f.help.endswith(".") for f in ACTIVITY_FAMILIES)
    assert all(not f.name.endswith("_total") for f in ACTIVITY_FAMILIES)
