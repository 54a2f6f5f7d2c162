"""Metrics out: each process's Prometheus registry, with process and build info, served on
a port of its own (`/metrics`), apart from the worker's event loop and the gateway's
traders' port."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
    disable_created_metrics,
    start_http_server,
)

from schemas.errors import ConfigError


def tickwatch_version() -> str:
    try:
        return version("tickwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def new_registry(component: str) -> CollectorRegistry:
    """A registry for one process (`component`: worker or gateway): its own metrics
    are added to it, beside the process's CPU, memory, file descriptors and GC, and
    `tickwatch_build_info`."""
    # No `_created` gauge beside each histogram: it is one more series per label set that
    # no dashboard or rule reads (a process-wide switch of prometheus_client).
    disable_created_metrics()
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    build = Info(
        "tickwatch_build", "The running tickwatch: version and component.", registry=registry
    )
    build.info(
        {
            "version": tickwatch_version(),
            "component": component,
            "python_version": platform.python_version(),
        }
    )
    return registry


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `url` names the port it got (0 asks for any)."""

    url: str
    _server: WSGIServer
    _thread: Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int, setting: str) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics from a thread of its own.
    ConfigError, naming `setting` (the variable to change), when the port is taken."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {error.strerror or error} (set {setting})"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(f"http://{shown}:{server.server_port}/metrics", server, thread)
