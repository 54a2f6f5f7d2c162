"""The metrics the README documents (the tables under "Metrics"), by name and type: the
one list the rules' and dashboards' tests hold their queries to, and the scrapes of a real
worker and gateway are held to (nothing exported goes undocumented)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_ROW = re.compile(r"^\| `(tickwatch_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", re.MULTILINE)
_TYPE = re.compile(r"^# TYPE (tickwatch_[a-z0-9_]+) (counter|gauge|histogram|info)$", re.MULTILINE)


def documented() -> dict[str, str]:
    """Each documented tickwatch metric (as queried: counters with `_total`) and its type."""
    found = {name: kind for name, kind in _ROW.findall(README.read_text())}
    assert found, f"no metric table found in {README}"
    return found


DOCUMENTED = documented()
COUNTERS = {name for name, kind in DOCUMENTED.items() if kind == "counter"}
GAUGES = {name for name, kind in DOCUMENTED.items() if kind == "gauge"}
HISTOGRAMS = {name for name, kind in DOCUMENTED.items() if kind == "histogram"}


def exported(exposition: str) -> dict[str, str]:
    """The tickwatch metrics a /metrics page declares, named as they are queried."""
    found = {}
    for family, kind in _TYPE.findall(exposition):
        if kind == "counter" and not family.endswith("_total"):
            family += "_total"
        found[family] = "gauge" if kind == "info" else kind
    return found


def undocumented(exposition: str) -> dict[str, str]:
    """What the page exports that the README does not list (or lists as another type)."""
    return {n: k for n, k in exported(exposition).items() if DOCUMENTED.get(n) != k}
