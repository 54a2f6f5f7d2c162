"""A dashboard's queries as plain PromQL (Grafana's variables substituted), for a test that
asks a real Prometheus whether every panel would show data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

RATE_INTERVAL = "1m"  # what $__rate_interval stands for in a plain query
ANY_INDEX = ".+"  # every index, as the `index` variable's "All" does


def substitute(expr: str, index: str | None = None) -> str:
    """`expr` with $__rate_interval and $index (or ${...}) replaced by plain values."""
    values = {"__rate_interval": RATE_INTERVAL, "index": ANY_INDEX if index is None else index}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def panel_queries(dashboard: Mapping[str, Any], index: str | None = None) -> list[tuple[str, str]]:
    """(panel title, expr) for each target of each panel (rows' nested panels included),
    in dashboard order, as plain PromQL."""
    queries = []
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            queries.append((str(panel.get("title", "")), substitute(target["expr"], index)))
    return queries


def annotation_queries(
    dashboard: Mapping[str, Any], index: str | None = None
) -> list[tuple[str, str]]:
    """(annotation name, expr) for each Prometheus annotation query, as plain PromQL."""
    return [
        (str(annotation["name"]), substitute(annotation["expr"], index))
        for annotation in dashboard.get("annotations", {}).get("list", [])
        if annotation.get("expr")
    ]


def _panels(panels: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The panels, a collapsed row's own panels in its place."""
    flat: list[Mapping[str, Any]] = []
    for panel in panels:
        if panel.get("type") == "row":
            flat.extend(_panels(panel.get("panels", [])))
        else:
            flat.append(panel)
    return flat
