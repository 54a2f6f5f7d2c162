"""`python -m tools.dashboards`: write the dashboards' JSON; `--check` fails on drift."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tools.dashboards.files import ROOT, drifted, generate, write


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
    args = parser.parse_args(argv)
    texts = generate()
    if args.check:
        stale = drifted(texts)
        for path in stale:
            print(
                f"dashboards: {path.relative_to(ROOT)} differs from the code "
                "(run python -m tools.dashboards)",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in write(texts):
        print(f"dashboards: wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
