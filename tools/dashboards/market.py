"""The market dashboard (uid tickwatch-market): what the workers see of the markets, index
levels with their alerts as annotations, index coverage, exchange sessions, feed age."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders.dashboard import QueryVariable, Row
from grafana_foundation_sdk.models import dashboard as models

from tools.dashboards.panels import (
    DATASOURCE,
    Annotation,
    Query,
    finish,
    graph,
    new_dashboard,
    states,
)
from tools.dashboards.promql import increase

UID = "tickwatch-market"
INDEX = '{index=~"$index"}'
# One event per window in which an index raised alerts, titled by the index.
INDEX_ALERTS = Annotation(
    name="Index alerts",
    expr=f"{increase('tickwatch_index_alerts_total', 'index', INDEX)} > 0",
    color="red",
    title="{{index}}: alert",
    text="alerts raised on {{index}}",
    tags="index",
    step="1m",
)


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
    dashboard = new_dashboard(
        "tickwatch market",
        UID,
        "Index levels with their alerts, index coverage, exchange sessions, feed age.",
    ).with_variable(_index_variable())
    for title, panels in (("Indices", _indices()), ("Exchanges", _exchanges())):
        dashboard = dashboard.with_row(Row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return finish(dashboard, (INDEX_ALERTS,))
