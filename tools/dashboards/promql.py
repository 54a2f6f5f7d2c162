"""The few PromQL shapes the dashboards repeat (rates and histogram quantiles), written once
so that every rate uses Grafana's `$__rate_interval`."""

from __future__ import annotations

RATE_WINDOW = "$__rate_interval"  # at least four scrape intervals, whatever the zoom


def rate(metric: str, by: str = "", selector: str = "") -> str:
    """Per-second rate of a counter, summed (by the given labels)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{selector}[{RATE_WINDOW}]))"


def increase(metric: str, by: str = "", selector: str = "") -> str:
    """Counter increase per window, for rare events (lost ticks, alerts on an index)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({metric}{selector}[{RATE_WINDOW}]))"


def quantile(q: float, histogram: str, by: str = "", selector: str = "") -> str:
    """The q-quantile of a histogram over the window, across every process (by the labels)."""
    labels = f"le, {by}" if by else "le"
    buckets = f"{histogram}_bucket{selector}[{RATE_WINDOW}]"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({buckets})))"
