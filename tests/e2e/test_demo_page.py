"""The demo's live page in a real headless Chromium: `tickwatch demo --keep-running` (the
bundled HSTECH story) as a user runs it, its page opened as soon as it prints the URL, so
the alerts arrive live; the page must show exactly the demo's alert ids, once each, newest
first by their time in Hong Kong time, each on one chart marker; then SIGTERM stops the
demo and every child it started (this is also the demo's SIGTERM test).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from playwright import sync_api

from tests.e2e.test_cli import TICKWATCH
from tests.e2e.test_page import (
    ARTIFACTS,
    CHROMIUM,
    as_a_phone,
    chart_markers,
    marked_ids,
    newest_first,
    page_errors,
    row_clocks,
    row_ids,
    until,
)
from tests.e2e.test_stop import _next_line, _read_into, alive, command_of, descendants, survivors

#: The page's URL, with the demo user's token in its fragment.
PAGE_LINE = re.compile(r"demo: live page (http://127\.0\.0\.1:\d+)/#token=(tw_[\w-]+)")
#: The exchange of every instrument of the demo (HKEX).
HONG_KONG = ZoneInfo("Asia/Hong_Kong")


def hong_kong_clock(ts: str) -> str:
    """An alert's time as the page shows it on Hong Kong's clock: "16:00:00 HKT"."""
    return f"{datetime.fromisoformat(ts).astimezone(HONG_KONG):%H:%M:%S} HKT"


def read_until(
    demo: subprocess.Popen[str], lines: queue.Queue[str], pattern: str, err: Path
) -> list[str]:
    """The lines the demo prints up to the first matching pattern (fails on exit or after 120 s)."""
    printed: list[str] = []
    deadline = time.monotonic() + 120
    while not printed or not re.search(pattern, printed[-1]):
        if demo.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {pattern!r} from the demo (exit {demo.returncode}):\n"
                        f"{''.join(printed)[-2000:]}\n{err.read_text()[-3000:]}")  # fmt: skip
        printed.append(_next_line(lines))
    return printed


@pytest.mark.slow
def test_the_hstech_demos_page_shows_its_alerts_live_once_each_until_sigterm(
    tmp_path: Path,
) -> None:
    out, err = tmp_path / "alerts.jsonl", tmp_path / "demo.err"
    # The demo's own Redis (none given): its redis-server is one of the children to stop.
    env = {k: v for k, v in os.environ.items() if k != "TICKWATCH_REDIS_URL"}
    env["TICKWATCH_GATEWAY_PORT"] = "0"  # any free port: tests may run side by side
    with err.open("w") as errors_file:
        demo = subprocess.Popen(
            [*TICKWATCH, "demo", "--keep-running", "--alerts-out", str(out)],
            stdout=subprocess.PIPE, stderr=errors_file, text=True, env=env,
        )  # fmt: skip
    children: dict[int, str] = {}
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_into, args=(demo.stdout, lines), daemon=True).start()
        printed = read_until(demo, lines, r"^demo: live page ", err)
        found = PAGE_LINE.fullmatch(printed[-1].rstrip("\n"))
        assert found, printed[-1]
        url, token = found.groups()

        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = page_errors(page)
            with page.expect_response(lambda r: "/v1/alerts?limit=" in r.url) as first:
                page.goto(f"{url}/#token={token}")
            from_history = {item["alert"]["alert_id"] for item in first.value.json()["items"]}

            printed += read_until(demo, lines, r"^demo: alerts: \d+", err)  # the summary's end
            assert "demo: lost: 0 ticks;" in "".join(printed), printed
            children = descendants(demo.pid)
            commands = [command_of(pid) for pid in children]
            for child in ("redis-server", "streams.cli worker", "streams.cli gateway",
                          "streams.cli broker"):  # fmt: skip
                assert any(child in c for c in commands), (child, commands)
            assert sum("demo: live page" in line for line in printed) == 1, printed
            # No hint to keep it running: it is.
            assert not [line for line in printed if "--keep-running keeps it up" in line]
            alerts = [orjson.loads(line) for line in out.read_text().splitlines()]
            expected = sorted(a["alert_id"] for a in alerts)
            said = re.search(r"^demo: alerts: (\d+)", printed[-1])
            assert said and len(expected) == len(set(expected)) == int(said[1]), printed[-1]

            # Exactly the demo's alerts, each in one row.
            shown = "[...document.querySelectorAll('#rows tr')].map(r => r.dataset.alertId)"
            want = json.dumps(json.dumps(expected, separators=(",", ":")))  # as JSON.stringify
            until(page, f"JSON.stringify({shown}.sort()) === {want}")
            assert set(expected) - from_history, "every alert came from history, none live"
            page.wait_for_selector("#status[data-state=live]")
            assert page.text_content("#status") == "live"
            assert page.text_content("#user") == "demo"  # the page's own /v1/me

            # Newest first by their time, not as they arrive (the partitions are read side
            # by side: 9888.HK's 06:09 alert came before HSTECH's 02:05 one in our runs),
            # each on the exchange's clock once the page knows it.
            kept = httpx.get(f"{url}/v1/alerts?limit=200",
                             headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
            assert row_ids(page) == newest_first(kept.json()["items"])
            clocks = {a["alert_id"]: hong_kong_clock(a["ts"]) for a in alerts}
            assert {clocks[a["alert_id"]] for a in alerts if a["stage"] == "close"} == {
                "16:00:00 HKT"
            }
            until(page, "[...document.querySelectorAll('#rows td.time .clock')]"
                        ".every(c => c.textContent.endsWith(' HKT'))", 30)  # fmt: skip
            assert row_clocks(page) == clocks

            # HSTECH's session on the chart, in exchange time, the lunch break a gap in its
            # line; each of its alerts on exactly one marker, alerts at one point on one.
            hstech = sorted(a["alert_id"] for a in alerts if a["instrument"] == "HSTECH")
            points = Counter(
                (a["ts"][:16], a["price"]) for a in alerts if a["instrument"] == "HSTECH"
            )
            page.click('#rows tr[data-instrument="HSTECH"]')  # its newest
            page.wait_for_selector("#chart svg polyline.level", state="attached")
            until(page, f"document.querySelectorAll('#chart .marker').length === {len(points)}")
            markers = chart_markers(page)
            assert sorted(marked_ids(markers)) == hstech  # each once: none twice, none left out
            assert sorted(len(m["ids"]) for m in markers) == sorted(points.values())
            assert max(points.values()) == 3  # the three close alerts
            for marker in markers:
                assert marker["badge"] == (
                    str(len(marker["ids"])) if len(marker["ids"]) > 1 else None
                )
            assert len(page.query_selector_all("#chart polyline.level")) == 2  # morning, afternoon
            title = page.text_content("#chart-title") or ""
            assert title == "HSTECH · 2025-09-18 (Asia/Hong_Kong)", title
            assert "16:00 HKT" in (page.text_content("#chart svg") or "")

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            # At 1280 px each row reads in two lines (the focused one shows all its message).
            heights = page.eval_on_selector_all(
                "#rows tr:not(:focus)", "rows => rows.map(r => r.getBoundingClientRect().height)"
            )
            assert len(heights) >= len(expected) - 1 and max(heights) < 64, heights
            page.screenshot(path=str(ARTIFACTS / "demo-page.png"), full_page=True)
            as_a_phone(page)
            page.screenshot(path=str(ARTIFACTS / "demo-page-phone.png"), full_page=True)
            assert sorted(row_ids(page)) == expected  # still once each
            # A chart asked for before the gateway had that instrument's bars is a 404 by design.
            assert [e for e in errors if not re.match(r"404 \S+/v1/bars/", e)] == []
            browser.close()

        wrong = httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}x"}, timeout=5)
        assert wrong.status_code == 401
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 143
        # The demo waits for each child it stops: none is left once it has exited.
        assert survivors(children, 0) == []
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)
    finally:
        demo.kill()
        demo.wait()
        for pid, started in children.items():
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
