"""The one Settings object, read from TICKWATCH_* variables at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError

ENV_PREFIX = "TICKWATCH_"


class Settings(BaseSettings):
    """Everything a tickwatch process can be told; built once, passed explicitly."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated host:port list of Kafka brokers.",
    )
    kafka_wait_s: float = Field(
        default=120.0,
        ge=0,
        le=86_400,
        description="How long a starting worker waits for Kafka and its ticks topic.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL; unset means: the worker uses redis://127.0.0.1:6379/0, "
        "the demo and the tests start an embedded Redis.",
    )
    key_prefix: str = Field(
        default="tw",
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Prefix of every Redis key tickwatch writes.",
    )
    app_id: str = Field(default="tickwatch", pattern=r"^[A-Za-z0-9_.\-]+$")
    topic_ticks: str = "ticks"
    topic_alerts: str = "alerts"
    topic_dlq: str = "ticks.dlq"
    topic_constituents: str = "constituents"
    ticks_partitions: int = Field(default=4, ge=1, le=1024)
    alerts_partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)
    instruments_file: Path | None = Field(
        default=None, description="Instruments YAML; unset: the bundled demo instruments."
    )
    rules_file: Path | None = Field(
        default=None, description="Rules YAML; unset: the bundled default rules."
    )
    indices_file: Path | None = Field(
        default=None, description="Indices YAML; unset: no indices are computed."
    )
    batch_max: int = Field(default=1000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.02, gt=0, le=10)
    commit_interval_s: float = Field(default=1.0, gt=0, le=60)
    fetch_max_wait_ms: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="How long a fetch may wait at the broker for data (Faust's own is 1500).",
    )
    session_timeout_s: float = Field(default=6.0, gt=0, le=300)
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
    web_enabled: bool = False
    web_port: int = Field(default=6066, ge=0, le=65535)
    log_level: str = Field(default="warn", pattern=r"^(crit|error|warn|info|debug)$")
    # Prometheus metrics (/metrics), served by each process on a port of its own.
    metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics; false: no endpoint, no cost."
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the metrics endpoints listen on (0.0.0.0: all)."
    )
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="A worker's metrics port (0: any free port)."
    )
    gateway_metrics_port: int = Field(
        default=9109, ge=0, le=65535, description="The gateway's metrics port (0: any free port)."
    )
    # The gateway (`tickwatch gateway`): alerts pushed to traders over HTTP.
    gateway_host: str = Field(
        default="127.0.0.1", description="Address the gateway listens on (0.0.0.0: all)."
    )
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    gateway_stream_max_len: int = Field(
        default=100_000,
        ge=100,
        le=100_000_000,
        description="Alerts the gateway keeps for catching up; older ones are trimmed.",
    )
    gateway_stream_max_age_s: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="Seconds an alert stays available for catching up.",
    )
    gateway_heartbeat_s: float = Field(
        default=15.0, gt=0, le=300, description="Seconds between keep-alive comments on a stream."
    )
    gateway_max_body_bytes: int = Field(
        default=16_384, ge=256, le=10_000_000, description="Largest request body accepted."
    )
    gateway_cors_origins: str = Field(
        default="",
        description="Comma-separated origins allowed to call the gateway from a browser; "
        "empty: none (same origin only).",
    )
    gateway_ssl_certfile: Path | None = Field(
        default=None, description="PEM certificate: the gateway serves HTTPS with it."
    )
    gateway_ssl_keyfile: Path | None = Field(default=None, description="PEM private key.")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        for host in hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"{host!r} is not host:port")
        if not hosts:
            raise ValueError("needs at least one host:port")
        return ",".join(hosts)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.kafka_bootstrap.split(",")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises ConfigError naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        item = error.errors()[0]
        field = str(item["loc"][0]) if item["loc"] else "?"
        given = item.get("input")
        raise ConfigError(f"{ENV_PREFIX}{field.upper()}: {item['msg']} (got {given!r})") from None
