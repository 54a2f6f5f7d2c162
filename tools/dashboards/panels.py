"""The dashboards' building blocks: one Prometheus data source, panels from (expr, legend)
pairs, and the finishing step that turns a dashboard builder into stable JSON data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

# The provisioned data source (deploy/grafana/provisioning/datasources/prometheus.yml);
# panels name it through the `datasource` variable so another Prometheus can be picked.
DATASOURCE_UID = "prometheus"
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
TICK_TO_ALERT_BUDGET_S = 0.025  # the tick-to-alert target, an alerting rule's too


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and the legend of its series."""

    expr: str
    legend: str = ""


def datasource_variable() -> dashboard_builders.DatasourceVariable:
    return (
        dashboard_builders.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(models.VariableOption(selected=True, text="Prometheus", value=DATASOURCE_UID))
    )


def new_dashboard(title: str, uid: str, description: str) -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["tickwatch"])
        .editable()
        .time("now-1h", "now")
        .refresh("10s")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
    )


def _targets(queries: list[Query]) -> list[Builder[variants.Dataquery]]:
    return [
        prometheus.Dataquery()
        .expr(query.expr)
        .legend_format(query.legend or "__auto")
        .ref_id(chr(ord("A") + number))
        .range()
        .datasource(DATASOURCE)
        for number, query in enumerate(queries)
    ]


def graph(
    title: str,
    description: str,
    unit: str,
    queries: list[Query],
    *,
    width: int = 8,
    budget_s: float | None = None,
    min_zero: bool = True,
) -> timeseries.Panel:
    """A time series panel; `budget_s` draws that value as a red threshold line."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .height(8)
        .span(width)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    if min_zero:
        panel = panel.min(0)
    if budget_s is not None:
        panel = panel.thresholds(_colours(("green", None), ("red", budget_s))).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    return panel


def _colours(*steps: tuple[str, float | None]) -> dashboard_builders.ThresholdsConfig:
    """Colour from each value up (the first step's value is None: from minus infinity)."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=colour) for colour, value in steps])
    )


def big_number(
    title: str,
    description: str,
    unit: str,
    queries: list[Query],
    *,
    width: int = 6,
    colours: tuple[tuple[str, float | None], ...] = (),
) -> stat.Panel:
    """A stat panel: the latest value of each series, its background coloured by `colours`
    (colour, from value) when given."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .height(4)
        .span(width)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    if colours:
        panel = panel.thresholds(_colours(*colours)).color_mode(common.BigValueColorMode.BACKGROUND)
    else:
        panel = panel.color_mode(common.BigValueColorMode.NONE)
    return panel


def states(
    title: str,
    description: str,
    queries: list[Query],
    texts: dict[str, tuple[str, str]],
    *,
    width: int = 12,
) -> statetimeline.Panel:
    """A state timeline; `texts` maps a value ("0", "1") to (text, colour)."""
    options = {
        value: models.ValueMappingResult(text=text, color=color, index=number)
        for number, (value, (text, color)) in enumerate(sorted(texts.items()))
    }
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .height(6)
        .span(width)
        .mappings([models.ValueMap(options=options)])
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
    )


@dataclass(frozen=True)
class Annotation:
    """A Prometheus annotation: an event on every graph where `expr` has a value."""

    name: str
    expr: str
    color: str
    title: str  # Grafana's titleFormat, {{label}} allowed
    text: str  # textFormat
    tags: str  # labels shown as tags, comma-separated
    step: str  # one event per step at most

    def query(self) -> dashboard_builders.AnnotationQuery:
        return (
            dashboard_builders.AnnotationQuery()
            .name(self.name)
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color(self.color)
            .expr(self.expr)
        )

    def fields(self) -> dict[str, Any]:
        """What Grafana's Prometheus annotation reads beside `expr` (the SDK's model lacks
        them)."""
        return {
            "step": self.step,
            "titleFormat": self.title,
            "textFormat": self.text,
            "tagKeys": self.tags,
            "useValueForTime": False,
        }


def finish(
    dashboard: dashboard_builders.Dashboard, annotations: tuple[Annotation, ...] = ()
) -> dict[str, Any]:
    """The dashboard as JSON data, its panels numbered in order (Grafana wants unique ids),
    with its Prometheus annotations."""
    for annotation in annotations:
        dashboard = dashboard.annotation(annotation.query())
    data: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(data.get("panels", []), start=1):
        panel["id"] = number
    for annotation, written in zip(annotations, data["annotations"].get("list", []), strict=True):
        written.update(annotation.fields())
    return data
