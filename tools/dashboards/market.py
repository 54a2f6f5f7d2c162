"""The market dashboard (uid tickwatch-market): what the workers see of the markets, index
levels with their alerts as annotations, index coverage, exchange sessions, feed age."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders.dashboard import AnnotationQuery, QueryVariable, Row
from grafana_foundation_sdk.models import dashboard as models

from tools.dashboards.panels import DATASOURCE, Query, finish, graph, new_dashboard, states
from tools.dashboards.promql import increase

UID = "tickwatch-market"
INDEX = '{index=~"$index"}'
ANNOTATION = "Index alerts"
# Grafana's Prometheus annotation reads these beside `expr` (the SDK's model lacks them):
# one event per window with new alerts, titled by the index.
ANNOTATION_FIELDS = {
    "step": "1m",
    "titleFormat": "{{index}}: alert",
    "textFormat": "{{value}} alert(s) on {{index}}",
    "tagKeys": "index",
    "useValueForTime": False,
}


def _index_variable() -> QueryVariable:
    return (
        QueryVariable("index")
        .label("Index")
        .datasource(DATASOURCE)
        .query("label_values(tickwatch_index_level, index)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )


def _alerts_annotation() -> AnnotationQuery:
    return (
        AnnotationQuery()
        .name(ANNOTATION)
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr(f"{increase('tickwatch_index_alerts_total', 'index', INDEX)} > 0")
    )


def _indices() -> list[Any]:
    return [
        graph(
            "Index level",
            "The latest level of each index; red marks are alerts raised on it.",
            "none",
            [Query(f"max by (index) (tickwatch_index_level{INDEX})", "{{index}}")],
            width=24,
            min_zero=False,
        ),
        graph(
            "Index coverage",
            "Constituents priced in the current session over all constituents.",
            "percentunit",
            [Query(f"min by (index) (tickwatch_index_coverage_ratio{INDEX})", "{{index}}")],
            width=8,
        ),
        graph(
            "Stale constituents",
            "Constituents with no price yet, or a stale one, per index.",
            "short",
            [Query(f"max by (index) (tickwatch_index_stale_constituents{INDEX})", "{{index}}")],
            width=8,
        ),
        graph(
            "Alerts raised on indices",
            "Alerts raised on each index, per window (the annotations' source).",
            "short",
            [Query(increase("tickwatch_index_alerts_total", "index", INDEX), "{{index}}")],
            width=8,
        ),
    ]


def _exchanges() -> list[Any]:
    return [
        states(
            "Exchange sessions",
            "Open while the exchange's calendar has a session now (a closed market is not stale).",
            [Query("max by (exchange) (tickwatch_exchange_open)", "{{exchange}}")],
            {"0": ("closed", "transparent"), "1": ("open", "green")},
        ),
        graph(
            "Last tick age, per exchange",
            "Now minus the event time of the newest applied tick of the exchange's instruments.",
            "s",
            [
                Query(
                    "time() - max by (exchange) (tickwatch_last_tick_timestamp_seconds)",
                    "{{exchange}}",
                )
            ],
            width=12,
        ),
    ]


def market() -> dict[str, Any]:
    """The market dashboard as Grafana JSON data."""
    dashboard = (
        new_dashboard(
            "tickwatch market",
            UID,
            "Index levels with their alerts, index coverage, exchange sessions, feed age.",
        )
        .with_variable(_index_variable())
        .annotation(_alerts_annotation())
    )
    for title, panels in (("Indices", _indices()), ("Exchanges", _exchanges())):
        dashboard = dashboard.with_row(Row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    data = finish(dashboard)
    for annotation in data["annotations"]["list"]:
        if annotation["name"] == ANNOTATION:
            annotation.update(ANNOTATION_FIELDS)
    return data
