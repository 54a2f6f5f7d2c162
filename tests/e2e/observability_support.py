"""What the operator end-to-end tests share: a loopback webhook that receives Alertmanager's
notifications, and waits on Prometheus with deadlines."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Webhook:
    """A real HTTP server on loopback that keeps every JSON body POSTed to it."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def mark(self) -> int:
        """Where the notifications so far end: `wait_for(after=...)` looks only past it."""
        with self.arrived:
            return len(self.received)

    def alerts(self, after: int = 0) -> list[dict[str, Any]]:
        """Every alert of every notification so far, each with its notification's
        `receiver` (the name of Alertmanager's receiver that sent it)."""
        with self.arrived:
            return [
                {**alert, "receiver": body.get("receiver")}
                for body in self.received[after:]
                for alert in body.get("alerts", [])
            ]

    def wait_for(
        self, alertname: str, status: str, timeout_s: float, after: int = 0, **labels: str
    ) -> dict[str, Any]:
        """The first alert of that name and status (and these labels) to arrive, in a
        notification past `after` (see `mark`); AssertionError naming what did arrive,
        after timeout_s."""
        wanted = {"alertname": alertname, **labels}
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while True:
                for alert in self.alerts(after):
                    found = alert.get("labels", {})
                    if alert.get("status") == status and wanted.items() <= found.items():
                        return alert
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(a.get("labels"), a.get("status")) for a in self.alerts(after)]
                    raise AssertionError(
                        f"no {status} alert {wanted} at the webhook in {timeout_s:.0f}s; "
                        f"it received {seen or 'nothing'}"
                    )
                self.arrived.wait(left)


@contextmanager
def running_webhook() -> Iterator[Webhook]:
    """A webhook on a free loopback port, served from a thread, shut down on exit."""
    hook: Webhook | None = None

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            assert hook is not None
            with hook.arrived:
                hook.received.append(json.loads(body))
                hook.arrived.notify_all()
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # Alertmanager's posts are the test's business, not its output's

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/alerts")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def until(look: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """look()'s first truthy answer, looking every 200 ms; AssertionError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = look()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.2)
