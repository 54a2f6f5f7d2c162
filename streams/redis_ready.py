"""Before a command uses Redis: whether it answers, said in one line when it does not."""

from __future__ import annotations

from schemas.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def check_redis(url: str) -> None:
    """Fail fast, in one line, when Redis cannot be reached."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        raise ConfigError(
            f"cannot reach Redis at {url} (set TICKWATCH_REDIS_URL): {error}"
        ) from None
    finally:
        client.close()
