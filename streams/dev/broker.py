"""The embedded Kafka-protocol broker: librdkafka's mock cluster, in its own process.

librdkafka (shipped inside the confluent-kafka wheel) can run a mock cluster that
speaks the Kafka wire protocol on 127.0.0.1, with consumer groups, offsets and
transactions. It has no CreateTopics API, so every topic is created here up front.

A consumer group forms at once (`JOIN_DELAY_MS`): librdkafka's default, like Kafka's
group.initial.rebalance.delay.ms, holds the first member of a group for 3 s in case
others follow, which every worker start, demo and test would wait out.
"""

from __future__ import annotations

import ctypes
import glob
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import TickwatchError
from streams.dev.children import last_lines, spawn, stop_child
from streams.topics import TopicSpec


class BrokerError(TickwatchError):
    """The embedded broker could not start; the message says why, or where to look."""


def _librdkafka() -> ctypes.CDLL:
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(glob.glob(str(libs / "librdkafka*.so*")))
    if not found:
        raise BrokerError(f"no librdkafka in {libs}; is confluent-kafka installed from a wheel?")
    try:
        lib = ctypes.CDLL(found[0])
    except OSError as error:
        raise BrokerError(f"cannot load {found[0]}: {error}; reinstall confluent-kafka") from None
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    return lib


#: How long an empty consumer group waits for more members before its first
#: assignment. Workers started together (the bench's two) should join within it.
JOIN_DELAY_MS = 0


class MockCluster:
    """A running mock cluster in this process; it lives as long as the object."""

    def __init__(self, brokers: int = 1, join_delay_ms: int = JOIN_DELAY_MS) -> None:
        self._lib = _librdkafka()
        errstr = ctypes.create_string_buffer(512)
        conf = self._lib.rd_kafka_conf_new()
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
        # A producer handle owns the cluster; it never produces anything itself.
        self._handle = self._lib.rd_kafka_new(0, conf, errstr, len(errstr))
        if not self._handle:
            raise BrokerError(f"librdkafka refused a handle: {errstr.value.decode()}")
        self._cluster = self._lib.rd_kafka_mock_cluster_new(self._handle, brokers)
        if not self._cluster:
            raise BrokerError("librdkafka could not start a mock cluster")
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, join_delay_ms)

    @property
    def bootstrap(self) -> str:
        return str(self._lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode())

    def create_topic(self, name: str, partitions: int) -> None:
        err = self._lib.rd_kafka_mock_topic_create(self._cluster, name.encode(), partitions, 1)
        if err:
            raise BrokerError(f"could not create topic {name!r} (librdkafka error {err})")


def serve(
    topics: Sequence[TopicSpec],
    brokers: int,
    bootstrap_file: Path | None = None,
    join_delay_ms: int = JOIN_DELAY_MS,
) -> None:
    """Run a mock cluster with these topics until SIGINT or SIGTERM."""
    cluster = MockCluster(brokers, join_delay_ms)
    for spec in topics:
        cluster.create_topic(spec.name, spec.partitions)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if bootstrap_file is not None:
        partial = bootstrap_file.with_suffix(".partial")
        try:
            partial.write_text(cluster.bootstrap)
            partial.replace(bootstrap_file)
        except OSError as error:
            raise BrokerError(f"cannot write --bootstrap-file {bootstrap_file}: {error}") from None
    print(f"tickwatch broker: Kafka-protocol broker at {cluster.bootstrap}", flush=True)
    for spec in topics:
        print(f"  topic {spec.name} ({spec.partitions} partitions)", flush=True)
    while not stop.wait(0.5):
        pass


@dataclass
class BrokerProcess:
    """An embedded broker running as a child process (so workers can die around it)."""

    process: subprocess.Popen[bytes]
    bootstrap: str

    def stop(self) -> None:
        stop_child(self.process, timeout_s=5)


def spawn_broker(
    topics: Sequence[TopicSpec],
    brokers: int = 1,
    timeout_s: float = 20.0,
    join_delay_ms: int = JOIN_DELAY_MS,
) -> BrokerProcess:
    """Start `tickwatch broker` in a child process and return once it listens.

    Its stderr (librdkafka's complaints, its own error line) goes to broker.log in a
    folder of its own, which a BrokerError names.
    """
    folder = Path(tempfile.mkdtemp(prefix="tickwatch-broker-"))
    bootstrap_file, log_path = folder / "bootstrap", folder / "broker.log"
    args = [sys.executable, "-m", "streams.cli", "broker", "--brokers", str(brokers)]
    args += ["--join-delay-ms", str(join_delay_ms)]
    args += ["--bootstrap-file", str(bootstrap_file)]
    for spec in topics:
        args += ["--topic", f"{spec.name}:{spec.partitions}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = spawn(args, stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.monotonic() + timeout_s
    while not bootstrap_file.exists():
        if process.poll() is not None:
            raise BrokerError(
                f"the embedded broker exited with code {process.returncode} before "
                f"listening: {' '.join(last_lines(log_path)) or '(no output)'} (see {log_path})"
            )
        if time.monotonic() > deadline:
            stop_child(process, timeout_s=5)
            raise BrokerError(
                f"the embedded broker did not listen within {timeout_s:.0f}s "
                f"(a busy machine?); its output: {log_path}"
            )
        time.sleep(0.05)
    return BrokerProcess(process, bootstrap_file.read_text().strip())
