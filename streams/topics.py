"""Every topic tickwatch uses, with its partition count, and their creation on real Kafka."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import TickwatchError
from schemas.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics a deployment needs; the Faust app declares none of them itself."""
    return [
        TopicSpec(settings.topic_ticks, settings.ticks_partitions),
        TopicSpec(settings.topic_alerts, settings.alerts_partitions),
        TopicSpec(settings.topic_dlq, settings.ticks_partitions),
        # Constituent prices for the index agent, keyed by index.
        TopicSpec(settings.topic_constituents, settings.ticks_partitions),
    ]


def create_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics with confluent-kafka's AdminClient; return the ones created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    # librdkafka's own log lines would bury the one-line error below.
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 2})
    wanted = [
        NewTopic(spec.name, spec.partitions, settings.replication_factor)
        for spec in topic_specs(settings)
    ]
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicsError(
                    f"could not create topic {name!r} on {settings.kafka_bootstrap}: "
                    f"{error.args[0].str()}"
                ) from None
        except TimeoutError:
            raise TopicsError(
                f"Kafka at {settings.kafka_bootstrap} did not answer within {timeout_s:.0f}s "
                "(set TICKWATCH_KAFKA_BOOTSTRAP)"
            ) from None
    return created


class TopicsError(TickwatchError):
    """Kafka would not create a topic; the message says which and why."""
