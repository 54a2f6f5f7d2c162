"""`python -m tools.dashboards`: write the dashboards' JSON; `--check` fails on drift."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.dashboards.files import DASHBOARD_DIR, ROOT, drifted, generate, write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.dashboards",
        description="Write the Grafana dashboards (deploy/grafana/dashboards/*.json) from code.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming each committed file that differs from the code",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DASHBOARD_DIR,
        help=f"where the JSON files are (default: {DASHBOARD_DIR.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    texts = generate(args.dir)
    if args.check:
        stale = drifted(texts)
        for path in stale:
            state = "differs from the code" if path.exists() else "is missing"
            print(
                f"dashboards: {_shown(path)} {state} (run python -m tools.dashboards)",
                file=sys.stderr,
            )
        return 1 if stale else 0
    try:
        written = write(texts)
    except OSError as error:
        print(f"dashboards: cannot write {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    for path in written:
        print(f"dashboards: wrote {_shown(path)}")
    return 0


def _shown(path: Path) -> str:
    """The path from the repository's root when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
