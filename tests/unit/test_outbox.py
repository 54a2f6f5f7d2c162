"""Outbox entries: the bytes Redis holds stay those every worker version reads."""

from __future__ import annotations

from alerts.core.outbox import OutboxEntry, first_marks


def test_an_entry_is_its_marks_in_partition_order_then_the_alert() -> None:
    entry = OutboxEntry.new(b'{"alert_id":"a|b"}', {3: 40, 0: 7})
    assert entry.encoded == b'0:7,3:40|{"alert_id":"a|b"}'
    assert OutboxEntry.decode(entry.encoded) == entry


def test_an_entry_written_without_marks_reads_back_with_none() -> None:
    entry = OutboxEntry.decode(b'|{"alert_id":"x"}')
    assert (entry.marks, entry.alert_json) == ({}, b'{"alert_id":"x"}')
    assert OutboxEntry.new(b'{"alert_id":"x"}', {}).encoded == b'|{"alert_id":"x"}'


def test_recovery_reads_each_partition_from_the_lowest_mark() -> None:
    entries = [OutboxEntry.new(b"{}", {0: 9, 1: 4}), OutboxEntry.new(b"{}", {0: 5})]
    assert first_marks(entries) == {0: 5, 1: 4}
    assert first_marks([OutboxEntry.new(b"{}", {})]) == {}
