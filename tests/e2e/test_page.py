"""The trader's page in a real headless Chromium, against a real `tickwatch gateway` process.

Debian's /usr/bin/chromium driven by Playwright (no browser download). Alerts are
published on the embedded broker's alerts topic, ticks on its ticks topic; the page
must show exactly the published alert ids, once each, newest first by their time, with
a chart of minute bars where each alert is on exactly one marker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api
from redis import Redis

from alerts.delivery.kafka import BULK_FEED, producer_for
from alerts.delivery.stream import position_key
from schemas.alerts import Alert, alert_id
from schemas.attribution import Contributor, IndexSnapshot
from schemas.settings import Settings
from schemas.ticks import Tick
from streams.dev.broker import BrokerProcess, spawn_broker
from streams.dev.children import spawn, stop_child
from streams.topics import topic_specs

CHROMIUM = "/usr/bin/chromium"
SESSION = date(2025, 9, 18)
START = datetime(2025, 9, 18, 2, 0, tzinfo=UTC)
ARTIFACTS = Path(
    os.environ.get("TICKWATCH_SCREENSHOT_DIR") or Path(__file__).parents[1] / "artifacts"
)


@dataclass
class Gateway:
    settings: Settings
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    published: list[Alert]


def tickwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TICKWATCH_REDIS_URL": str(settings.redis_url),
        "TICKWATCH_KEY_PREFIX": settings.key_prefix,
        "TICKWATCH_APP_ID": settings.app_id,
        "TICKWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TICKWATCH_TICKS_PARTITIONS": str(settings.ticks_partitions),
        "TICKWATCH_ALERTS_PARTITIONS": str(settings.alerts_partitions),
        # Any free metrics port: never another gateway's 9109 on this machine.
        "TICKWATCH_GATEWAY_METRICS_PORT": "0",
    }


def start_gateway(
    settings: Settings, log: Path, url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`tickwatch gateway` started as a user would (on url's port, or any free one), and
    its URL once it answers."""
    port = url.rsplit(":", 1)[1] if url else "0"
    with log.open("ab") as out:
        process = spawn(tickwatch("gateway", "--port", port), stdout=out,
                        stderr=subprocess.STDOUT, env=environment(settings))  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if url is None:
            found = re.findall(r"serving (http://\S+)", log.read_text())
            url = found[0].rstrip("/") if found else None
        try:
            if url and httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"the gateway did not start:\n{log.read_text()[-3000:]}")


def make_alert(instrument: str, minute: int, change: float, rule: str = "daily_gain",
               kind: str = "daily_move", index: IndexSnapshot | None = None) -> Alert:  # fmt: skip
    ts = START + timedelta(minutes=minute, seconds=30)
    price = 100.0 + minute
    return Alert(
        alert_id=alert_id(rule, instrument, SESSION, abs(change), "intraday"),
        rule=rule,
        kind=kind,
        instrument=instrument,
        session=SESSION,
        ts=ts,
        price=price,
        threshold=float(int(change)),
        change=change,
        reference_price=price / (1 + change / 100),
        since=date(2021, 11, 4) if kind == "daily_move" else None,
        record=kind.startswith("record"),
        index=index,
        message=f"{instrument} {change:+.1f}% today <script>alert(1)</script>",
    )


LEADERS = IndexSnapshot(
    contributors=(
        Contributor(symbol="9888.HK", name="Baidu", change_pct=15.1, points=92.0, share=0.4),
        Contributor(symbol="9988.HK", name="Alibaba", change_pct=8.0, points=61.0, share=0.3),
    ),
    reported=30,
    constituents=30,
    coverage=1.0,
    complete=True,
)


def publish(settings: Settings, alerts: list[Alert]) -> None:
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    for alert in alerts:
        producer.produce(settings.topic_alerts, key=alert.instrument.encode(),
                         value=alert.model_dump_json().encode())  # fmt: skip
    assert producer.flush(30) == 0


def publish_ticks(settings: Settings) -> None:
    """HSTECH's level, one tick a minute for twelve minutes: the chart's bars."""
    producer = producer_for(BULK_FEED, settings.kafka_bootstrap)
    for minute in range(12):
        tick = Tick(symbol="HSTECH", price=100.0 + minute, ts=START + timedelta(minutes=minute))
        producer.produce(settings.topic_ticks, key=b"HSTECH",
                         value=tick.model_dump_json(exclude_none=True).encode())  # fmt: skip
    assert producer.flush(30) == 0


def history(gateway: Gateway) -> list[dict[str, Any]]:
    """The gateway's kept alerts, newest first, as its API gives them."""
    answer = httpx.get(f"{gateway.url}/v1/alerts?limit=200",
                       headers={"Authorization": f"Bearer {gateway.token}"}, timeout=5)  # fmt: skip
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def history_ids(gateway: Gateway) -> list[str]:
    return [item["alert"]["alert_id"] for item in history(gateway)]


def newest_first(items: list[dict[str, Any]]) -> list[str]:
    """The ids in the page's order: by the alert's time, newest first; at the same time,
    the later stream position first (not the order they arrived in)."""
    ordered = sorted(items, reverse=True, key=lambda item: (
        datetime.fromisoformat(item["alert"]["ts"]), position_key(item["position"])))  # fmt: skip
    return [item["alert"]["alert_id"] for item in ordered]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    base = Settings(
        redis_url=redis_url,
        key_prefix=f"twtest-{uuid.uuid4().hex[:10]}",
        app_id=f"tickwatch-page-{uuid.uuid4().hex[:6]}",
        ticks_partitions=2,
        alerts_partitions=2,
    )
    broker: BrokerProcess = spawn_broker(topic_specs(base))
    settings = base.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    process = None
    try:
        added = subprocess.run(
            tickwatch("users", "add", "trader"),
            capture_output=True, text=True, env=environment(settings), timeout=60, check=True,
        )  # fmt: skip
        token = added.stdout.strip().splitlines()[-1]
        process, url = start_gateway(settings, log)
        published = [
            make_alert("HSTECH", 3, 4.1, index=LEADERS),
            make_alert("BIDU", 4, 6.2),
            make_alert("HSTECH", 5, 38.0, rule="ytd_gain", kind="ytd_change", index=LEADERS),
        ]
        publish(settings, published)
        publish_ticks(settings)
        state = Gateway(settings, url, token, process, log, published)
        wait_for(lambda: len(history_ids(state)) == 3, "the gateway to take the first alerts")
        yield state
    finally:
        if process is not None:
            stop_child(process)
        broker.stop()
        redis = Redis.from_url(redis_url)
        keys = list(redis.scan_iter(match=f"{base.key_prefix}:*", count=1000))
        if keys:
            redis.delete(*keys)
        redis.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


# Counts what the page does with the browser's sound and notifications.
SPIES = """
window.__beeps = 0;
window.__notes = [];
const create = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__beeps += 1;
  return create.call(this);
};
window.Notification = class extends Notification {
  constructor(title, options) { super(title, options); window.__notes.push(options.tag); }
};
"""


def until(page: sync_api.Page, expression: str, timeout_s: float = 15) -> None:
    """Wait until the expression is true in the page. (Playwright's wait_for_function
    evaluates strings with `new Function`, which the page's CSP rightly refuses.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def page_errors(page: sync_api.Page) -> list[str]:
    """What goes wrong in the page: script errors, CSP violations, failed requests."""
    errors: list[str] = []

    def console(message: sync_api.ConsoleMessage) -> None:
        # A failed load is seen, with its URL, as its response.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def response(answer: sync_api.Response) -> None:
        # BIDU has no ticks, so no bars: its chart is a 404, and says so.
        if answer.status >= 400 and "/v1/bars/BIDU" not in answer.url:
            errors.append(f"{answer.status} {answer.url}")

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", console)
    page.on("response", response)
    return errors


def row_ids(page: sync_api.Page) -> list[str]:
    return page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.alertId)")


def row_clocks(page: sync_api.Page) -> dict[str, str]:
    """Each row's time as shown ("02:03:30 UTC"), by alert id."""
    clocks: dict[str, str] = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#rows tr')]"
        ".map(r => [r.dataset.alertId, r.querySelector('td.time .clock').textContent]))"
    )
    return clocks


def as_a_phone(page: sync_api.Page) -> None:
    """The page on a 375 px screen: one column, nothing wider than the screen."""
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_timeout(300)  # the chart is drawn again for the phone's width
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('body *')]"
        ".filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= 375


def chart_markers(page: sync_api.Page) -> list[dict[str, Any]]:
    """The chart's markers: the alert ids each stands for, its count badge, its title."""
    markers: list[dict[str, Any]] = page.eval_on_selector_all(
        "#chart .marker",
        """marks => marks.map(m => ({
          ids: m.dataset.alertIds.split(" "),
          badge: m.querySelector(".count") ? m.querySelector(".count").textContent : null,
          title: m.querySelector("title").textContent,
        }))""",
    )
    return markers


def marked_ids(markers: list[dict[str, Any]]) -> list[str]:
    return [alert_id for marker in markers for alert_id in marker["ids"]]


def test_the_page_shows_every_alert_once_live_with_its_chart(
    gateway: Gateway, browser: sync_api.Browser
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["notifications"], origin=gateway.url)
    context.add_init_script(SPIES)
    page = context.new_page()
    errors = page_errors(page)
    page.goto(f"{gateway.url}/#token={gateway.token}")
    until(page, "document.querySelectorAll('#rows tr').length === 3")
    assert "token" not in page.url  # taken from the address bar
    page.wait_for_selector("#status[data-state=live]")
    assert row_ids(page) == newest_first(history(gateway))
    page.click("h1")  # a gesture: browsers start sound only after one

    # Live: new alerts, and one of the first published again (a duplicate on Kafka). Two
    # at the same time and price (the later published goes above, one marker for both),
    # and a late one whose time is older than every other: it goes to the bottom.
    live = [
        make_alert("HSTECH", 8, 5.0, index=LEADERS),
        make_alert("BIDU", 9, 7.5),
        make_alert("HSTECH", 8, 5.0, rule="hstech_high", kind="multi_year_high"),
        make_alert("HSTECH", 1, 2.0),
    ]
    both, late = [live[0], live[2]], live[3]
    publish(gateway.settings, [live[0], gateway.published[0], *live[1:]])
    until(page, "document.querySelectorAll('#rows tr').length === 7")
    time.sleep(0.5)  # time for a duplicate row to show, were there one
    ids = row_ids(page)
    everyone = [*gateway.published, *live]
    assert sorted(ids) == sorted(a.alert_id for a in everyone)
    assert len(set(ids)) == len(ids) == 7
    assert ids == newest_first(history(gateway))
    assert ids[0] == live[1].alert_id and ids[-1] == late.alert_id  # by time, not arrival
    assert ids.index(both[1].alert_id) == ids.index(both[0].alert_id) - 1  # same time
    # Every time says its clock: UTC, the zone of the test's instruments' bars (and the
    # page's default for BIDU, which has no bars).
    assert row_clocks(page) == {a.alert_id: f"{a.ts:%H:%M:%S} UTC" for a in everyone}
    assert sorted(page.evaluate("window.__notes")) == sorted(a.alert_id for a in live)
    assert page.evaluate("window.__beeps") == len(live)
    assert "New alert:" in (page.text_content("#announce") or "")
    # Data is text, never markup.
    assert page.query_selector("#rows script") is None
    assert "<script>" in (page.text_content("#rows td.msg") or "")

    # The chart of HSTECH's session: its bars, one unbroken line (no minute missing), and
    # its five alerts on four markers, each alert on exactly one.
    page.click(f'#rows tr[data-alert-id="{live[0].alert_id}"]')
    page.wait_for_selector("#chart svg polyline.level", state="attached")
    hstech = sorted(a.alert_id for a in everyone if a.instrument == "HSTECH")
    until(page, "document.querySelectorAll('#chart .marker').length === 4")
    markers = chart_markers(page)
    assert sorted(marked_ids(markers)) == hstech
    shared = [m for m in markers if len(m["ids"]) > 1]
    assert [sorted(m["ids"]) for m in shared] == [sorted(a.alert_id for a in both)]
    assert shared[0]["badge"] == "2"
    assert all(a.message in shared[0]["title"] for a in both)
    assert [m["badge"] for m in markers if len(m["ids"]) == 1] == [None] * 3
    assert len(page.query_selector_all("#chart polyline.level")) == 1
    assert page.text_content("#chart-title") == "HSTECH · 2025-09-18 (UTC)"
    assert "02:11 UTC" in (page.text_content("#chart svg") or "")  # the axis says its clock

    # Keyboard: the row above (BIDU's), Enter: its chart; the row below, Enter: HSTECH's.
    page.focus(f'#rows tr[data-alert-id="{ids[1]}"]')
    for key, row in (("k", 0), ("j", 1)):
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        shown = next(a for a in everyone if a.alert_id == ids[row])
        title = json.dumps(f"{shown.instrument} · ")
        until(page, f"document.querySelector('#chart-title').textContent.startsWith({title})")
    assert page.evaluate("document.activeElement.dataset.alertId") == ids[1]
    page.wait_for_selector("#chart .marker")
    page.keyboard.press("m")
    assert page.get_attribute("#mute", "aria-pressed") == "true"
    page.keyboard.press("m")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-desktop.png"), full_page=True)

    as_a_phone(page)
    page.screenshot(path=str(ARTIFACTS / "page-phone.png"), full_page=True)
    assert errors == [], errors
    context.close()


def test_filters_are_saved_and_come_back(gateway: Gateway, browser: sync_api.Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{gateway.url}/#token={gateway.token}")
    page.wait_for_selector("#rows tr")
    with page.expect_response(lambda r: r.url.endswith("/v1/subscriptions/page") and r.ok):
        page.select_option("#f-kind", "ytd_change")
    shown = row_ids(page)
    assert shown == [a.alert_id for a in gateway.published if a.kind == "ytd_change"]
    page.reload()  # the token is kept in localStorage, the filters by the gateway
    until(page, "document.querySelector('#f-kind').value === 'ytd_change'")
    until(page, "document.querySelectorAll('#rows tr').length === 1")
    with page.expect_response(lambda r: r.url.endswith("/v1/subscriptions/page") and r.ok):
        page.select_option("#f-kind", "")
    context.close()


def test_a_wrong_token_is_refused_and_the_form_shown(
    gateway: Gateway, browser: sync_api.Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{gateway.url}/#token=tw_not-a-token")
    page.wait_for_selector("#refused:not([hidden])")
    assert page.text_content("#status") == "token refused"
    assert page.is_visible("#token-form") and not page.is_visible("#main")
    assert row_ids(page) == []
    page.fill("#token", gateway.token)
    page.click("#token-form button[type=submit]")
    until(page, "document.querySelectorAll('#rows tr').length >= 3")
    context.close()


def test_the_page_resumes_after_the_gateway_is_killed(
    gateway: Gateway, browser: sync_api.Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    streams: list[dict[str, str]] = []
    page.on("request", lambda r: streams.append(r.headers) if "/alerts/stream" in r.url else None)
    page.goto(f"{gateway.url}/#token={gateway.token}")
    page.wait_for_selector("#status[data-state=live]")
    before = row_ids(page)
    newest = history(gateway)[0]["position"]
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait(10)
    page.wait_for_selector("#status[data-state=reconnecting]")
    missed = make_alert("BABA", 10, 9.0)
    publish(gateway.settings, [missed])
    gateway.process, _ = start_gateway(gateway.settings, gateway.log, gateway.url)
    expected = len(before) + 1
    until(page, f"document.querySelectorAll('#rows tr').length === {expected}", 30)
    page.wait_for_selector("#status[data-state=live]")
    assert row_ids(page) == [missed.alert_id, *before]
    # Every reconnection asked for what came after the last alert the page had.
    assert len(streams) >= 2
    assert {headers.get("last-event-id") for headers in streams[1:]} == {newest}
    context.close()


def test_the_charts_bars_over_http(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.token}"}
    bars = httpx.get(f"{gateway.url}/v1/bars/HSTECH", headers=headers, timeout=5)
    assert bars.status_code == 200, bars.text
    body = bars.json()
    assert (body["instrument"], body["session"], body["timezone"]) == (
        "HSTECH", "2025-09-18", "UTC"
    )  # fmt: skip
    assert [(b["minute"], b["close"]) for b in body["bars"]] == [
        (f"02:{m:02d}", 100.0 + m) for m in range(12)
    ]
    same = httpx.get(f"{gateway.url}/v1/bars/HSTECH?session=2025-09-18", headers=headers, timeout=5)
    assert same.json() == body
    for path, status in (
        ("/v1/bars/HSTECH?session=2025-09-19", 404),
        ("/v1/bars/BIDU", 404),
        ("/v1/bars/HSTECH?session=yesterday", 422),
        ("/v1/bars/HS%20TECH", 422),
    ):
        answer = httpx.get(f"{gateway.url}{path}", headers=headers, timeout=5)
        assert answer.status_code == status, (path, answer.text)
    missing = httpx.get(f"{gateway.url}/v1/bars/BIDU", headers=headers, timeout=5)
    assert missing.json() == {"detail": "no bars for BIDU"}
