"""A dashboard's frame on grafana-foundation-sdk: its variables, links to the others, and assembly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as models

from tools.dashboards.panels import DATASOURCE, SEL, Item

OVERVIEW_UID = "btcturk-overview"
HEALTH_UID = "btcturk-exporter-health"
ACTIVITY_UID = "btcturk-activity"
TITLES = {
    OVERVIEW_UID: "BTCTurk / Portfolio overview",
    HEALTH_UID: "BTCTurk / Exporter health",
    ACTIVITY_UID: "BTCTurk / Activity and profit",
}
TAGS = ["btcturk", "btcturk-exporter", "prometheus-exporter"]


def datasource_variable() -> builders.DatasourceVariable:
    return builders.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(name: str, label: str, query: str, *, multi: bool = False) -> builders.QueryVariable:
    """A variable offering the values of a label_values() query; `multi` ones default to All."""
    variable = (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        # ".*" rather than a list of every value: also matches series whose label is empty.
        variable = variable.all_value(".*").current(
            models.VariableOption(selected=True, text=["All"], value=["$__all"])
        )
    return variable


def common_variables() -> list[cogbuilder.Builder[models.VariableModel]]:
    return [
        datasource_variable(),
        query_variable("job", "Job", "label_values(btcturk_exporter_build_info, job)"),
        query_variable(
            "instance",
            "Instance",
            'label_values(btcturk_exporter_build_info{job=~"$job"}, instance)',
            multi=True,
        ),
        query_variable("account", "Account", f"label_values(btcturk_up{{{SEL}}}, account)", multi=True),
    ]


def currency_variable() -> builders.QueryVariable:
    return query_variable("currency", "Currency", f"label_values(btcturk_portfolio_value{{{SEL}}}, currency)")


def links_to_others(uid: str) -> list[cogbuilder.Builder[models.DashboardLink]]:
    """A link to each of the other dashboards, keeping the time range and the variables."""
    return [
        builders.DashboardLink(title)
        .type(models.DashboardLinkType.LINK)
        .icon("dashboard")
        .tooltip(f"Open the {title} dashboard")
        .url(f"/d/{other}/{other}")
        .tags([])
        .as_dropdown(False)
        .target_blank(False)
        .include_vars(True)
        .keep_time(True)
        for other, title in TITLES.items()
        if other != uid
    ]


def builtin_annotations() -> builders.AnnotationQuery:
    """Grafana's own "Annotations & Alerts", as Grafana writes it into every dashboard."""
    return (
        builders.AnnotationQuery()
        .built_in(1)
        .datasource(models.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .name("Annotations & Alerts")
        .type("dashboard")
    )


class PrometheusAnnotationQuery(models.AnnotationQuery):
    """An annotation query on the Prometheus data source, with the fields the SDK's model lacks.

    Grafana runs `expr` as a range query (`step` its minimum step) and marks each step where a
    series is above 0, titled and described by `titleFormat` and `textFormat` over its labels.
    """

    def __init__(
        self, step: str, title_format: str, text_format: str, tag_keys: str, **fields: object
    ) -> None:
        super().__init__(**fields)  # type: ignore[arg-type]
        self.step = step
        self.title_format = title_format
        self.text_format = text_format
        self.tag_keys = tag_keys

    def to_json(self) -> dict[str, object]:
        return {
            **super().to_json(),
            "step": self.step,
            "titleFormat": self.title_format,
            "textFormat": self.text_format,
            "tagKeys": self.tag_keys,
            "useValueForTime": False,
        }


@dataclass(frozen=True)
class Annotation(cogbuilder.Builder[models.AnnotationQuery]):
    """A Prometheus annotation query: where `expr` is above 0, at steps of at least `step`.

    `panels`: the positions (1, 2, ...) in the dashboard's items of the panels it marks; the
    others do not show it.
    """

    name: str
    expr: str
    colour: str
    title: str
    text: str
    tags: str
    step: str
    panels: tuple[int, ...]

    def build(self) -> models.AnnotationQuery:
        return PrometheusAnnotationQuery(
            self.step,
            self.title,
            self.text,
            self.tags,
            name=self.name,
            datasource=DATASOURCE,
            enable=True,
            hide=False,
            icon_color=self.colour,
            filter_val=models.AnnotationPanelFilter(exclude=False, ids=list(self.panels)),
            expr=self.expr,
        )


def dashboard(
    uid: str,
    description: str,
    items: Sequence[Item],
    variables: Sequence[cogbuilder.Builder[models.VariableModel]],
    annotations: Sequence[cogbuilder.Builder[models.AnnotationQuery]] = (),
) -> models.Dashboard:
    """The dashboard `uid`: panels numbered in order, laid out by the SDK (left to right, rows alone)."""
    board = (
        builders.Dashboard(TITLES[uid])
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("")
        .week_start("")
        .fiscal_year_start_month(0)
        .live_now(False)
        .version(1)
        .annotations([builtin_annotations(), *annotations])
        .links(links_to_others(uid))
        .variables(list(variables))
    )
    for number, item in enumerate(items, start=1):
        if isinstance(item, builders.Row):
            board = board.with_row(item.id(number))
        else:
            board = board.with_panel(item.id(number))
    return board.build()
