"""Panel helpers shared by the dashboards, on grafana-foundation-sdk's builders.

Each helper takes the queries as (PromQL, legend) pairs and decides what Grafana should send for
them (range or instant, table format), so a new panel is one call. Sizes are (width, height) in grid
units; board.dashboard() has the SDK place panels left to right and rows on their own line. The SDK
starts a new line only once one is full, so the widths between two rows add up to 24 by line
(tests/deploy/test_dashboards.py fails on a panel past the grid's edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    piechart,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import piechart as piechart_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every selector carries these, so the dashboards work with any job name and several exporters.
SEL = 'job=~"$job", instance=~"$instance"'
ACC = SEL + ', account=~"$account"'
# Shared API calls (ticker, server time) have account="": keep them whatever accounts are selected.
ACC_OR_SHARED = SEL + ', account=~"$account|"'
CUR = ACC + ', currency=~"$currency"'

# Every panel asks for this many points, rather than Grafana's default of one per pixel: it keeps the
# step of a 7-day range at 1m (Grafana rounds 604800s / 10000 to 1m), and Grafana rounds the end of
# a range query DOWN to a multiple of the step, so a coarser step would hide the newest minutes and
# leave every graph empty on a fresh install for up to one step (10m at 7d with ~1000 pixels).
MAX_DATA_POINTS = 10000

# Time-series panels of backfilled series connect two points up to this far apart (Grafana's
# "Connect null values: threshold", in ms; it connects a gap shorter than this). The backfill writes
# a sample an hour, Prometheus sees one for 5 minutes, and Grafana's step is finer than that at every
# picker up to 1y: without this a backfilled month draws as dots, most points being empty. Just over
# the backfill's 1h step, so a live outage longer than that still breaks the line; the queries stay
# as they are, so every point drawn is a sample and the alert rules are untouched. Panels of series
# the backfill does not write (past=False) keep every gap. docs/backfill.md states the rule.
SPAN_NULLS_MS = 65 * 60 * 1000
# The backfill's step (`btcturk-exporter backfill --step`, 1h by default, on whole UTC hours): a window
# this long always holds one backfilled sample, so `last_over_time(x[BACKFILL_STEP] offset d)` is x
# as it was d ago (to within the step) over the backfilled past, where a plain `x offset d` finds a
# sample only in the 5 minutes after each hour. Empty where there is no sample that long before.
BACKFILL_STEP = "1h"

Query = tuple[str, str]  # (PromQL, legend; "" for Grafana's automatic legend)
Size = tuple[int, int]  # (width, height)
Step = tuple[float | None, str]  # (from this value up, colour); None is the base
Panel = TypeVar(
    "Panel",
    timeseries.Panel,
    stat.Panel,
    piechart.Panel,
    bargauge.Panel,
    statetimeline.Panel,
    table.Panel,
)
# What a dashboard is made of: the panels these helpers build, and rows.
Item = (
    timeseries.Panel
    | stat.Panel
    | piechart.Panel
    | bargauge.Panel
    | statetimeline.Panel
    | table.Panel
    | builders.Row
)


def thresholds(*steps: Step) -> builders.ThresholdsConfig:
    return (
        builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


GREEN: tuple[Step, ...] = ((None, "green"),)
RED_GREEN: tuple[Step, ...] = ((None, "red"), (0, "green"))
UP_STEPS: tuple[Step, ...] = ((None, "red"), (1, "green"))


def colors(mode: models.FieldColorModeId) -> builders.FieldColor:
    return builders.FieldColor().mode(mode)


def value_texts(*texts: tuple[str, str, str]) -> list[models.ValueMapping]:
    """A value mapping: (value, colour, text) for each value, in order."""
    return [
        models.ValueMap(
            options={
                value: models.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, color, text) in enumerate(texts)
            }
        )
    ]


def queries(
    specs: Sequence[Query], *, instant: bool = False, table: bool = False
) -> list[prometheus.Dataquery]:
    """One Prometheus query per spec, refIds A, B, ... in order."""
    out = []
    for number, (expr, legend) in enumerate(specs):
        query = (
            prometheus.Dataquery()
            .datasource(DATASOURCE)
            .editor_mode(prometheus_models.QueryEditorMode.CODE)
            .expr(expr)
            .legend_format(legend or "__auto")
            .ref_id(chr(ord("A") + number))
        )
        query = query.instant() if instant else query.range()
        if table:
            query = query.format(prometheus_models.PromQueryFormat.TABLE)
        out.append(query)
    return out


def _common(
    panel: Panel,
    title: str,
    description: str,
    specs: Sequence[Query],
    unit: str,
    size: Size,
    *,
    instant: bool = False,
    table: bool = False,
) -> Panel:
    """What every panel has: its queries on the datasource variable, a unit, a size and the points."""
    panel = (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(size[0])
        .height(size[1])
        .max_data_points(MAX_DATA_POINTS)
        .unit(unit)
        .thresholds(thresholds(*GREEN))
        .color_scheme(colors(models.FieldColorModeId.PALETTE_CLASSIC))
    )
    for query in queries(specs, instant=instant, table=table):
        panel = panel.with_target(query)
    return panel


def timeseries_panel(
    title: str,
    description: str,
    specs: Sequence[Query],
    unit: str,
    size: Size = (12, 8),
    *,
    stack: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    past: bool = True,
) -> timeseries.Panel:
    """Lines over the range; stacked (filled, legend on the right) when the series add up to a whole.

    `past`: the panel reads series the backfill writes, so points up to SPAN_NULLS_MS apart are joined;
    False for live-only series, where a gap is an outage and must show.
    """
    panel = (
        _common(timeseries.Panel(), title, description, specs, unit, size)
        .draw_style(common_models.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(60 if stack else 10)
        .show_points(common_models.VisibilityMode.NEVER)
        .span_nulls(SPAN_NULLS_MS if past else False)
        .stacking(
            common.StackingConfig()
            .mode(common_models.StackingMode.NORMAL if stack else common_models.StackingMode.NONE)
            .group("A")
        )
        .axis_soft_min(0)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT if stack else common_models.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
    )
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def reduce(calc: str) -> common.ReduceDataOptions:
    return common.ReduceDataOptions().calcs([calc]).fields("").values(False)


def stat_panel(
    title: str,
    description: str,
    specs: Sequence[Query],
    unit: str,
    size: Size = (6, 4),
    *,
    steps: Sequence[Step] = GREEN,
    decimals: int | None = None,
    background: bool = False,
    calc: str | None = None,
    no_value: str | None = None,
) -> stat.Panel:
    """A single value: the query's value now (instant), or `calc` over the range (range query).

    `no_value`: the text shown instead of Grafana's "No data" when the query is empty.
    """
    panel = (
        _common(stat.Panel(), title, description, specs, unit, size, instant=calc is None)
        .thresholds(thresholds(*steps))
        .reduce_options(reduce(calc or "lastNotNull"))
        .color_mode(
            common_models.BigValueColorMode.BACKGROUND
            if background
            else common_models.BigValueColorMode.VALUE
        )
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .text_mode(common_models.BigValueTextMode.AUTO)
        .justify_mode(common_models.BigValueJustifyMode.AUTO)
        .orientation(common_models.VizOrientation.AUTO)
    )
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel.decimals(decimals) if decimals is not None else panel


def demo_marker(selector: str = SEL) -> stat.Panel:
    """A red "DEMO DATA" banner while the exporter runs --demo (btcturk_exporter_demo == 1).

    Empty (no text, no colour) when the gauge is 0 or absent, so live dashboards carry no banner.
    """
    return (
        stat_panel(
            "",
            "Red while the exporter runs --demo: every number on this dashboard is made up by the bundled "
            "simulator, not read from a BTCTurk account.",
            [(f"max(btcturk_exporter_demo{{{selector}}})", "")],
            "none",
            (24, 2),
            steps=((None, "transparent"), (1, "red")),
            background=True,
        )
        .no_value(" ")
        .mappings(value_texts(("0", "transparent", " "), ("1", "red", "DEMO DATA — made-up accounts")))
        .transparent(True)
    )


def piechart_panel(
    title: str, description: str, specs: Sequence[Query], unit: str, size: Size
) -> piechart.Panel:
    """A donut of the values now, the legend a table of shares."""
    return (
        _common(piechart.Panel(), title, description, specs, unit, size, instant=True)
        .reduce_options(reduce("lastNotNull"))
        .pie_type(piechart_models.PieChartType.DONUT)
        .legend(
            piechart.PieChartLegendOptions()
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT)
            .show_legend(True)
            .values([piechart_models.PieChartLegendValues.PERCENT])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.SINGLE)
            .sort(common_models.SortOrder.NONE)
        )
        .display_labels([])
    )


def change_bars(
    title: str, description: str, specs: Sequence[Query], unit: str, size: Size
) -> bargauge.Panel:
    """Horizontal bars of each series' change over the range (last minus first point), red below 0."""
    return (
        _common(bargauge.Panel(), title, description, specs, unit, size)
        .thresholds(thresholds(*RED_GREEN))
        .color_scheme(colors(models.FieldColorModeId.THRESHOLDS))
        .decimals(2)
        .reduce_options(reduce("diff"))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .show_unfilled(True)
        .value_mode(common_models.BarGaugeValueMode.COLOR)
        .name_placement(common_models.BarGaugeNamePlacement.LEFT)
        .sizing(common_models.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
    )


def status_timeline(title: str, description: str, specs: Sequence[Query], size: Size) -> statetimeline.Panel:
    """ok / failing over time, from a 0/1 gauge."""
    return (
        _common(statetimeline.Panel(), title, description, specs, "none", size)
        .mappings(value_texts(("0", "red", "failing"), ("1", "green", "ok")))
        .color_scheme(colors(models.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds(*UP_STEPS))
        .fill_opacity(80)
        .line_width(0)
        .show_value(common_models.VisibilityMode.NEVER)
        .merge_values(True)
        .align_value(common_models.TimelineValueAlignment.LEFT)
        .row_height(0.9)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.SINGLE)
            .sort(common_models.SortOrder.NONE)
        )
    )


def property_values(**properties: object) -> list[models.DynamicConfigValue]:
    """Field properties by Grafana's dotted ids, written with _ for the dot (custom_cellOptions)."""
    return [
        models.DynamicConfigValue(id_val=key.replace("_", "."), value=value)
        for key, value in properties.items()
    ]


def table_panel(
    title: str,
    description: str,
    specs: Sequence[Query],
    unit: str,
    size: Size,
    *,
    columns: Sequence[str] | None = None,
    decimals: int | None = None,
    filterable: bool = False,
    sort_by: str | None = None,
    hidden: Sequence[str] = ("Time",),
    renamed: dict[str, str] | None = None,
) -> table.Panel:
    """A table of instant queries.

    With `columns`, one column per query after the first label: the queries' frames are merged on
    their labels and their values named `columns` in order (Grafana names them Value #A, #B, ...).
    Without, `renamed` names the labels of a single query's series.
    """
    panel = _common(
        table.Panel(), title, description, specs, unit, size, instant=True, table=True
    ).show_header(True)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if filterable:
        panel = panel.align(common_models.FieldTextAlignment.AUTO).filterable(True)
    if sort_by:
        panel = panel.sort_by([common.TableSortByFieldState().display_name(sort_by).desc(True)])
    rename = dict(renamed or {})
    order: dict[str, int] = {}
    if columns is not None:
        label, *names = columns
        rename[label.lower()] = label
        order[label.lower()] = 0
        for number, name in enumerate(names):
            value = f"Value #{chr(ord('A') + number)}"
            rename[value] = name
            order[value] = number + 1
        panel = panel.with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
    else:
        order = {key: number for number, key in enumerate(rename)}
    return panel.with_transformation(
        models.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": dict.fromkeys(hidden, True),
                "indexByName": order,
                "renameByName": rename,
            },
        )
    )


def row(title: str) -> builders.Row:
    return builders.Row(title)
