"""Before a worker starts: wait for Kafka and the ticks topic, or say in one line why not.

A worker may start before its broker (compose, Kubernetes). Faust would fail at once
with a traceback; this waits instead, one line per attempt, for TICKWATCH_KAFKA_WAIT_S.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from schemas.errors import TickwatchError

#: How long one metadata request may wait for an answer.
ATTEMPT_S = 2.0
#: Pauses after failed attempts (the last one repeats), as in streams/agents.py.
PAUSES_S = (1.0, 2.0, 4.0, 8.0, 10.0)

log = logging.getLogger(__name__)

# What librdkafka puts around a reason: "host:port/bootstrap: " before it, "(after 0ms in
# state CONNECT)" after it.
_BROKER_PREFIX = re.compile(r"^\S+/(bootstrap|\d+): ")
_STATE_SUFFIX = re.compile(r"\s*\(after \d+ms in state \w+[^)]*\)$")


class KafkaNotReady(TickwatchError):
    """Kafka did not answer, or lacked the ticks topic, within TICKWATCH_KAFKA_WAIT_S."""


def wait_for_kafka(bootstrap: str, topic: str, wait_s: float) -> None:
    """Return once Kafka at bootstrap answers and has the topic. Until then, log one
    line per attempt and retry after a growing pause; after wait_s, KafkaNotReady."""
    errors: list[KafkaError] = []
    # One client for every attempt: it keeps connecting between them.
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "log_level": 0,  # its log lines would bury ours; error_cb gets the reasons
        "error_cb": errors.append,
    }
    admin = AdminClient(config)
    deadline = time.monotonic() + wait_s
    for attempt in itertools.count(1):
        # The last attempt waits no longer than the deadline.
        timeout = max(0.5, min(ATTEMPT_S, deadline - time.monotonic()))
        problem = _problem(admin, topic, errors, timeout)
        if problem is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise KafkaNotReady(
                f"Kafka at {bootstrap} not ready after {wait_s:g}s "
                f"(TICKWATCH_KAFKA_WAIT_S): {problem}"
            )
        pause = min(PAUSES_S[min(attempt, len(PAUSES_S)) - 1], left)
        log.warning(
            "Kafka at %s not ready (attempt %d): %s; retrying in %g s", bootstrap, attempt,
            problem, round(pause, 1),
        )  # fmt: skip
        time.sleep(pause)


def _problem(
    admin: AdminClient, topic: str, errors: list[KafkaError], timeout: float
) -> str | None:
    """What stands between the worker and the topic, with its fix; None when nothing."""
    errors.clear()
    try:
        # Every topic's metadata, not the one topic's: asking for a topic by name
        # creates it on brokers that create topics on request.
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        admin.poll(0)  # delivers the connection errors behind it to error_cb
        reasons = [e.str() for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
        reason = reasons[-1] if reasons else error.args[0].str()
        reason = _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", reason))
        return f"not reachable: {reason} (check TICKWATCH_KAFKA_BOOTSTRAP)"
    found = metadata.topics.get(topic)
    if found is None:
        return f"no topic {topic!r} (run `tickwatch topics`)"
    if found.error is not None:
        return f"topic {topic!r}: {found.error.str()}"
    return None
