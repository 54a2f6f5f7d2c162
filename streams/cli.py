"""The `tickwatch` command: broker, topics, worker, replay, tail, demo, gateway and users."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from schemas.errors import InputError, TickwatchError
from schemas.settings import load_settings
from streams.dev.broker import JOIN_DELAY_MS
from streams.dev.children import Terminated, unwind_on_sigterm
from streams.topics import TopicSpec, topic_specs


def _topic_arg(text: str) -> TopicSpec:
    name, _, partitions = text.partition(":")
    if not name or not partitions.isdigit() or int(partitions) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME:PARTITIONS")
    return TopicSpec(name, int(partitions))


def _port_arg(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return int(text)


def _speed_arg(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if speed <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return speed


def _join_delay_arg(text: str) -> int:
    if not text.isdigit() or int(text) > 300_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of ms from 0 to 300000")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickwatch",
        description="Real-time market alerts from exchange tick streams. "
        "Configure with TICKWATCH_* variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    broker = sub.add_parser("broker", help="run the embedded Kafka-protocol broker")
    broker.add_argument("--brokers", type=int, default=1, help="number of brokers (default 1)")
    broker.add_argument(
        "--topic",
        type=_topic_arg,
        action="append",
        metavar="NAME:PARTITIONS",
        help="topics to create (default: every tickwatch topic)",
    )
    broker.add_argument("--bootstrap-file", type=Path, help="write the bootstrap address here")
    broker.add_argument(
        "--join-delay-ms",
        type=_join_delay_arg,
        default=JOIN_DELAY_MS,
        help="how long a new consumer group waits for more members before its first "
        f"assignment (default {JOIN_DELAY_MS}; Kafka's own is 3000)",
    )

    topics = sub.add_parser("topics", help="create tickwatch's topics on a real Kafka cluster")
    topics.add_argument(
        "--timeout", type=_speed_arg, default=30.0, help="seconds to wait for Kafka (default 30)"
    )
    sub.add_parser("worker", help="run a worker: ticks in, market state in Redis, alerts out")

    replay = sub.add_parser("replay", help="publish a tick file (CSV or JSONL) to the ticks topic")
    replay.add_argument("file", type=Path)
    replay.add_argument(
        "--speed", type=_speed_arg, help="replay at this factor of real time (default: max)"
    )
    replay.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="send ticks as batch messages of up to N ticks (one partition each)",
    )
    _skip_bad_lines_option(replay)
    replay.add_argument(
        "--no-pace",
        action="store_true",
        help="publish without waiting for the workers' consumer group (TICKWATCH_APP_ID) "
        "to keep up",
    )
    replay.add_argument(
        "--close-sessions",
        action="store_true",
        help="after the file, end the last session of each exchange (as a feed does at the close)",
    )

    seed = sub.add_parser("seed", help="load daily history (date,symbol,close,...) into state")
    seed.add_argument("file", type=Path)

    tail = sub.add_parser("tail", help="print alerts as they arrive")
    tail.add_argument("--json", action="store_true", help="JSON lines instead of text")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")

    bench = sub.add_parser("bench", help="measure the pipeline against its own ceilings")
    bench.add_argument("--quick", action="store_true", help="a short run that checks it works")
    bench.add_argument("--json", type=Path, help="also write the figures here as JSON")
    bench.add_argument(
        "--gateway",
        action="store_true",
        help="measure the gateway instead: publish-to-client latency of a burst of alerts "
        "to 1, 100, 500, 1000, 2000 SSE clients (stopping where they do not all get it)",
    )
    bench.add_argument(
        "--clients", type=int, metavar="N", help="with --gateway: 1 client, then N clients"
    )

    gateway = sub.add_parser(
        "gateway",
        help="serve alerts to traders over HTTP: live stream (SSE, WebSocket), history, a page",
    )
    gateway.add_argument("--host", help="address to listen on (default TICKWATCH_GATEWAY_HOST)")
    gateway.add_argument(
        "--port", type=_port_arg, help="port to listen on (default TICKWATCH_GATEWAY_PORT)"
    )

    users = sub.add_parser("users", help="the gateway's users and their bearer tokens")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("add", "add a user; prints its token, once"),
        ("rotate", "give a user a new token; the old one stops working"),
        ("revoke", "remove a user, its token and its subscriptions"),
    ):
        actions.add_parser(action, help=text).add_argument("name")
    actions.add_parser("list", help="list the users")

    demo = sub.add_parser(
        "demo",
        help="run the whole pipeline on embedded infrastructure; with no file given, "
        "the (synthetic) Hang Seng TECH rally of 2025-09-18",
    )
    demo.add_argument("--ticks", type=Path, help="tick file to replay")
    demo.add_argument("--instruments", type=Path, help="instruments YAML")
    demo.add_argument("--rules", type=Path, help="rules YAML")
    demo.add_argument("--indices", type=Path, help="indices YAML")
    demo.add_argument("--history", type=Path, help="daily history CSV to seed first")
    demo.add_argument("--alerts-out", type=Path, help="also write alerts here as JSON lines")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the worker and the live page running after the replay, until Ctrl-C",
    )
    demo.add_argument(
        "--no-gateway", action="store_true", help="do not start the gateway (no live page)"
    )
    _skip_bad_lines_option(demo)
    return parser


#: Commands that start child processes (broker, Redis, workers) and must stop them.
OWN_CHILDREN = frozenset({"demo", "bench"})


def _skip_bad_lines_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="leave out lines that are not ticks (each reported), instead of stopping",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in OWN_CHILDREN:
        # docker stop, systemd and test harnesses send SIGTERM: unwind as on Ctrl-C.
        unwind_on_sigterm()
    try:
        return _run(args)
    except TickwatchError as error:
        print(f"tickwatch {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        # 128 + SIGTERM: what a shell or docker reports for a process SIGTERM ended,
        # and distinct from Ctrl-C's 130.
        return 143
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "broker":
        from streams.dev.broker import serve

        serve(
            args.topic or topic_specs(settings),
            args.brokers,
            args.bootstrap_file,
            args.join_delay_ms,
        )
    elif args.command == "topics":
        from streams.topics import create_topics

        created = create_topics(settings, args.timeout)
        print(f"created: {', '.join(created) or 'nothing (all topics exist)'}")
    elif args.command == "worker":
        from streams.app import run_worker

        run_worker(settings)
    elif args.command == "replay":
        from streams.market_files import load_market
        from streams.replay import Pace, publish_ticks, read_tick_file, session_ends

        if args.batch is not None and not 1 <= args.batch <= 10_000:
            raise InputError("--batch: must be between 1 and 10000")
        tick_file = read_tick_file(args.file, args.skip_bad_lines)
        for line in tick_file.first_bad(args.file):
            print(line, file=sys.stderr)
        ticks = tick_file.ticks
        ends = session_ends(ticks, load_market(settings)) if args.close_sessions else []
        pace = None if args.no_pace else Pace(settings.app_id, notice=_note)
        publish_ticks(
            ticks, settings.kafka_bootstrap, settings.topic_ticks, args.speed, ends, args.batch,
            pace,
        )  # fmt: skip
        closed = "".join(f", then ended {e.exchange} {e.session}" for e in ends)
        skipped = f" ({len(tick_file.bad)} bad lines skipped)" if tick_file.bad else ""
        print(f"replayed {len(ticks)} ticks to {settings.topic_ticks}{skipped}{closed}")
    elif args.command == "seed":
        from streams.market_files import load_market
        from streams.redis_ready import DEFAULT_REDIS_URL, check_redis
        from streams.seed import run_seed

        url = settings.redis_url or DEFAULT_REDIS_URL
        market = load_market(settings)
        check_redis(url)
        report = run_seed(url, settings.key_prefix, market, args.file)
        print(
            f"seeded {report.applied} closes of {report.instruments} instruments "
            f"({report.skipped} already known or live, skipped; "
            f"{report.not_sessions} dates that are not sessions of their calendar, kept)"
        )
    elif args.command == "tail":
        from streams.tail import tail

        tail(settings.kafka_bootstrap, settings.topic_alerts, args.json, args.from_beginning)
    elif args.command == "gateway":
        from streams.gateway.serve import run_gateway
        from streams.redis_ready import DEFAULT_REDIS_URL, check_redis

        bind = {"gateway_host": args.host, "gateway_port": args.port}
        settings = settings.model_copy(update={k: v for k, v in bind.items() if v is not None})
        check_redis(settings.redis_url or DEFAULT_REDIS_URL)
        run_gateway(settings)
    elif args.command == "users":
        from streams.gateway.users import run_users

        return run_users(settings, args.action, getattr(args, "name", None))
    elif args.command == "bench":
        if args.gateway:
            from streams.dev.bench_gateway import LADDER, QUICK_LADDER, run_gateway_bench
            from streams.dev.bench_gateway import table as gateway_table

            if args.clients is not None and not 1 <= args.clients <= 20_000:
                raise InputError("--clients: must be between 1 and 20000")
            ladder = QUICK_LADDER if args.quick else LADDER
            result = run_gateway_bench(sorted({1, args.clients}) if args.clients else ladder)
            print(gateway_table(result))
        else:
            from streams.dev.bench import run_bench, table

            if args.clients is not None:
                raise InputError("--clients goes with --gateway")
            result = run_bench(args.quick)
            print(table(result))
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    elif args.command == "demo":
        from streams.dev.demo import DemoOptions, run_demo
        from streams.market_files import bundled

        if args.alerts_out is not None:
            args.alerts_out.write_bytes(b"")
        files = (args.ticks, args.instruments, args.rules, args.indices, args.history)
        if all(f is None for f in files):
            story = bundled("hstech")
            args.ticks, args.history = story / "ticks.csv", story / "history.csv"
            args.instruments, args.indices = story / "instruments.yaml", story / "indices.yaml"
            args.rules = story / "rules.yaml"
            print("demo: the Hang Seng TECH rally of 2025-09-18 (synthetic prices)")
        updates = {
            "instruments_file": args.instruments,
            "rules_file": args.rules,
            "indices_file": args.indices,
        }
        settings = settings.model_copy(update={k: v for k, v in updates.items() if v is not None})
        options = DemoOptions(
            ticks=args.ticks or bundled("demo_ticks.csv"),
            history=args.history,
            alerts_out=args.alerts_out,
            keep_running=args.keep_running,
            skip_bad_lines=args.skip_bad_lines,
            gateway=not args.no_gateway,
        )
        outcome = run_demo(settings, options).outcome
        if outcome.lost:
            print(
                f"tickwatch demo: {outcome.lost} tick(s) were lost; see the summary above",
                file=sys.stderr,
            )
            return LOST
    return 0


#: Exit code of a demo that ran but lost ticks (2 is a mistake in the input).
LOST = 3


def _note(text: str) -> None:
    print(f"replay: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
