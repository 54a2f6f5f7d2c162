"""The dashboards as committed files (deploy/grafana/dashboards/<uid>.json): rendering in a
stable form, writing them, and finding the ones that drifted from the code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.dashboards import market, overview

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    overview.UID: overview.overview,
    market.UID: market.market,
}
DASHBOARD_FILES = {uid: DASHBOARD_DIR / f"{uid}.json" for uid in BUILDERS}


def render(dashboard: dict[str, Any]) -> str:
    """Stable JSON text: sorted keys, two-space indent, a trailing newline (clean diffs)."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(directory: Path = DASHBOARD_DIR) -> dict[Path, str]:
    """Each dashboard file's path (in `directory`) and the text the code makes of it."""
    return {directory / f"{uid}.json": render(build()) for uid, build in BUILDERS.items()}


def write(texts: dict[Path, str]) -> list[Path]:
    """Write the files whose text changed; the paths written."""
    written = []
    for path, text in texts.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def drifted(texts: dict[Path, str]) -> list[Path]:
    """The files missing or differing from the code's text."""
    return [
        path
        for path, text in texts.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
