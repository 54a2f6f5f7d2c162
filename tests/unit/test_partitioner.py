import pytest

from streams.partitioner import murmur2, partition_of


@pytest.mark.parametrize(
    ("key", "expected"),
    [  # from Kafka's UtilsTest.testMurmur2
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
    ],
)
def test_murmur2_matches_kafkas(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partitions_are_stable_and_in_range() -> None:
    assert {partition_of(b"9988.HK", 4) for _ in range(3)} == {partition_of(b"9988.HK", 4)}
    assert all(0 <= partition_of(f"S{i}".encode(), 7) < 7 for i in range(200))
