"""`tickwatch seed` as a user runs it: a report line, or one error line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis

from tests.e2e.test_cli import run

INSTRUMENTS = """\
instruments:
  - {symbol: 0700.HK, name: Tencent, exchange: XHKG}
  - {symbol: 9988.HK, name: Alibaba, exchange: XHKG}
"""

HISTORY = """\
date,symbol,close
2023-06-01,0700.HK,350
2023-06-01,9988.HK,80
2024-06-03,0700.HK,500
2024-06-03,9988.HK,85
2024-12-02,0700.HK,420
2024-12-02,9988.HK,81.5
"""


@pytest.fixture
def env(tmp_path: Path, redis_url: str, key_prefix: str) -> dict[str, str]:
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text(INSTRUMENTS)
    return {
        "TICKWATCH_REDIS_URL": redis_url,
        "TICKWATCH_KEY_PREFIX": key_prefix,
        "TICKWATCH_INSTRUMENTS_FILE": str(instruments),
    }


def test_seed_reports_what_it_stored_and_a_second_run_stores_nothing(
    tmp_path: Path, env: dict[str, str], redis_url: str, key_prefix: str
) -> None:
    history = tmp_path / "history.csv"
    history.write_text(HISTORY)

    first = run(["seed", str(history)], env)

    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.startswith("seeded 6 closes of 2 instruments (0 already known")
    client = Redis.from_url(redis_url)
    try:
        for symbol in ("0700.HK", "9988.HK"):
            assert client.hget(f"{key_prefix}:{{{symbol}}}:state", "v") == b"1", symbol
    finally:
        client.close()

    second = run(["seed", str(history)], env)

    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.startswith("seeded 0 closes of 2 instruments (6 already known")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # A malformed line: the file and the line.
        (
            "date,symbol,close\n2024-06-03,0700.HK,500\n2024-06-04,0700.HK,-1\n",
            ":3: close: Input should be greater than 0 (got '-1')",
        ),
        # A symbol not in the instruments file.
        (
            "2024-06-03,0700.HK,500\n2024-06-03,BABA,80\n",
            ": BABA is not in the instruments file",
        ),
    ],
)
def test_a_bad_history_file_is_one_line_naming_the_file(
    tmp_path: Path, env: dict[str, str], content: str, problem: str
) -> None:
    history = tmp_path / "history.csv"
    history.write_text(content)

    done = run(["seed", str(history)], env)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"tickwatch seed: error: {history}{problem}"]


def test_an_unreachable_redis_is_one_line_without_traceback(
    tmp_path: Path, env: dict[str, str]
) -> None:
    history = tmp_path / "history.csv"
    history.write_text(HISTORY)

    done = run(["seed", str(history)], {**env, "TICKWATCH_REDIS_URL": "redis://127.0.0.1:1/0"})

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("tickwatch seed: error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert done.stdout == ""
