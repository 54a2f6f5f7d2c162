"""Every topic tickwatch uses, with its partition count, and their creation on real Kafka."""

from __future__ import annotations

from dataclasses import dataclass

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

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
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
                raise
    return created
