"""`tickwatch gateway`: the app served by uvicorn, over TLS when given a certificate.

The socket is bound here, before uvicorn starts, so a port in use or an unreadable
certificate is one line and exit 2, not a server log; so is a busy metrics port (the
Prometheus endpoint, on a port of its own and without the traders' token). SIGTERM is
uvicorn's graceful stop: no new connections, streams end (sse-starlette sees the
signal), the ingest threads leave their consumer groups.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import uvicorn
from starlette.datastructures import State

from schemas.errors import ConfigError
from schemas.settings import Settings
from streams.exporter import MetricsServer, new_registry, serve_metrics
from streams.gateway.app import create_app
from streams.gateway.health import RedisPing
from streams.gateway.metrics import GatewayCollector, GatewayMetrics
from streams.redis_ready import DEFAULT_REDIS_URL

#: Seconds an open connection (a WebSocket) may take to end after SIGTERM.
_GRACE_S = 5


def run_gateway(settings: Settings) -> None:
    """Serve until SIGTERM or Ctrl-C. ConfigError for a bad certificate or a busy port."""
    tls = _tls_files(settings)
    metrics = GatewayMetrics() if settings.metrics_enabled else None
    app = create_app(settings, metrics)
    config = uvicorn.Config(
        app,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        # httptools and uvloop when installed, else h11 and asyncio: on the bench's burst
        # to 1,000 clients they took about a third less CPU (notes of issue 14).
        http="auto",
        loop="auto",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=_GRACE_S,
        ws_max_size=settings.gateway_max_body_bytes,
        server_header=False,
        proxy_headers=False,
    )
    try:
        config.load()
    except (ssl.SSLError, OSError) as error:
        cert, key = tls or ("?", "?")
        raise ConfigError(f"cannot use the TLS certificate {cert} and key {key}: {error}") from None
    sock = _bind(settings.gateway_host, settings.gateway_port)
    try:
        exporter = _serve_metrics(settings, app.state, metrics) if metrics is not None else None
    except ConfigError:
        sock.close()
        raise
    port = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    host = f"[{settings.gateway_host}]" if ":" in settings.gateway_host else settings.gateway_host
    print(f"tickwatch gateway: serving {scheme}://{host}:{port}/", flush=True)
    if exporter is not None:
        print(f"tickwatch gateway: metrics {exporter.url}", flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if exporter is not None:
            exporter.stop()


@dataclass
class _Exporter:
    """The gateway's /metrics endpoint and the Redis connection its scrapes ping on."""

    server: MetricsServer
    ping: RedisPing

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.ping.close()


def _serve_metrics(settings: Settings, state: State, metrics: GatewayMetrics) -> _Exporter:
    """/metrics on a port of its own, without a token: Prometheus scrapes it, traders
    never see it. ConfigError for a busy port."""
    registry = new_registry("gateway")
    ping = RedisPing(settings.redis_url or DEFAULT_REDIS_URL)
    registry.register(GatewayCollector(metrics, state, ping))
    try:
        server = serve_metrics(
            registry,
            settings.metrics_host,
            settings.gateway_metrics_port,
            "TICKWATCH_GATEWAY_METRICS_PORT",
        )
    except ConfigError:
        ping.close()
        raise
    return _Exporter(server, ping)


def _tls_files(settings: Settings) -> tuple[str, str] | None:
    cert, key = settings.gateway_ssl_certfile, settings.gateway_ssl_keyfile
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError(
            "TICKWATCH_GATEWAY_SSL_CERTFILE and TICKWATCH_GATEWAY_SSL_KEYFILE go together"
        )
    for name, path in (("CERTFILE", cert), ("KEYFILE", key)):
        if not path.is_file():
            raise ConfigError(f"TICKWATCH_GATEWAY_SSL_{name}: no such file: {path}")
    return str(cert), str(key)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {error.strerror or error} "
            "(set --port or TICKWATCH_GATEWAY_PORT)"
        ) from None
    return sock
