"""`python -m tools.demo_data`: build the dataset, check its story, write its files."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tools.demo_data.files import DEFAULT_OUT, generate, summary
from tools.demo_data.story import StoryError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo_data",
        description="Write the synthetic Hang Seng TECH demo dataset (deterministic).",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"directory (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        story = generate(args.out)
    except StoryError as error:
        print(f"demo data: {error}", file=sys.stderr)
        return 1
    print(summary(story, args.out, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
