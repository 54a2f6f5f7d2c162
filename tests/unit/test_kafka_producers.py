"""Each producer role's librdkafka settings: the choices its callers depend on."""

from __future__ import annotations

from alerts.delivery.kafka import (
    ALERT_PUBLISHER,
    BULK_FEED,
    LIVE_FEED,
    ProducerRole,
    producer_for,
    producer_settings,
)


def test_the_alert_publisher_is_idempotent_prompt_and_bounded() -> None:
    assert producer_settings(ALERT_PUBLISHER, "k:9092", client_id="w-publisher") == {
        "bootstrap.servers": "k:9092",
        "client.id": "w-publisher",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "partitioner": "murmur2_random",
        "message.timeout.ms": 30_000,
    }


def test_a_bulk_feed_batches_for_5_ms_and_logs_only_critical_lines() -> None:
    assert producer_settings(BULK_FEED, "k:9092") == {
        "bootstrap.servers": "k:9092",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "partitioner": "murmur2_random",
        "message.timeout.ms": 30_000,
        "log_level": 2,
    }


def test_a_live_feed_sends_at_once_without_idempotence_and_keeps_the_default_timeout() -> None:
    assert producer_settings(LIVE_FEED, "k:9092") == {
        "bootstrap.servers": "k:9092",
        "acks": "all",
        "linger.ms": 1,
        "partitioner": "murmur2_random",
    }


def test_every_role_partitions_as_java_clients_and_waits_for_every_replica() -> None:
    for role in (ALERT_PUBLISHER, BULK_FEED, LIVE_FEED, ProducerRole(0, False)):
        settings = producer_settings(role, "k:9092")
        assert settings["partitioner"] == "murmur2_random"
        assert settings["acks"] == "all"


def test_a_larger_message_limit_is_an_option_of_any_role() -> None:
    assert (
        producer_settings(BULK_FEED, "k:9092", max_message_bytes=4_000_000)["message.max.bytes"]
        == 4_000_000
    )
    assert "message.max.bytes" not in producer_settings(BULK_FEED, "k:9092")


def test_librdkafka_accepts_every_role() -> None:
    # Building a producer checks the configuration; it connects only when asked to send.
    for role in (ALERT_PUBLISHER, BULK_FEED, LIVE_FEED):
        producer = producer_for(role, "127.0.0.1:1", client_id="t", max_message_bytes=2_000_000)
        assert producer.flush(0) == 0
