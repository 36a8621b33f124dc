"""`sor broker` and `sor produce`: thin shells over `stream.broker` and `stream.producer`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from contextlib import ExitStack
from types import FrameType

from sor.cli.flags import DATA_FLAGS, STREAM_FLAGS, config_from_args
from sor.errors import SorError
from stream.broker import EmbeddedBroker

__all__ = ["cmd_broker", "cmd_produce"]


def _quiet_kafka(args: argparse.Namespace) -> None:
    # kafka-python logs every connection at INFO, and warns when our encoding loop holds the GIL
    # past its 100 ms IO-loop threshold; neither helps a user. -vv shows them again.
    if getattr(args, "verbose", 0) < 2:
        logging.getLogger("kafka").setLevel(logging.ERROR)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so that `with EmbeddedBroker()` stops the broker.
    raise SystemExit(128 + signum)


def cmd_broker(args: argparse.Namespace) -> int:
    """Run the embedded broker in the foreground until Ctrl-C; exit code 0 when stopped so."""
    _quiet_kafka(args)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # A shell starts background jobs with SIGINT ignored; `kill -INT` must still stop us.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with EmbeddedBroker(port=args.port) as broker:
            print(
                f"Kafka broker (embedded Tansu, in-memory) listening on {broker.bootstrap}",
                flush=True,
            )
            print(f"  use: sor produce --bootstrap {broker.bootstrap} --data FILE", flush=True)
            print("  press Ctrl-C to stop; topics are lost when it stops", flush=True)
            code = broker.wait()
        print(f"sor: the broker exited by itself with code {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("broker stopped", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def cmd_produce(args: argparse.Namespace) -> int:
    """Stream the configured CSV to Kafka and print the produce report as JSON (not with -q).

    Without --bootstrap an embedded broker is started for the duration of the command and
    stopped with it, taking the stream with it: useful only to test the producer.
    """
    from stream.producer import produce_csv
    from stream.signing import StreamKey

    _quiet_kafka(args)
    quiet = bool(getattr(args, "quiet", False))
    config = config_from_args(args, DATA_FLAGS, STREAM_FLAGS)
    if config.data.path is None:
        raise SorError("sor produce needs --data PATH (or data.path in the config)")
    # The consumer, in another process, reads the same variable: the key is never sent.
    key = StreamKey.from_env(config.stream.key_env)
    kafka = config.kafka
    with ExitStack() as stack:
        bootstrap = kafka.bootstrap
        if bootstrap is None:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap
            logging.getLogger("sor").warning(
                "no --bootstrap: started an embedded broker at %s for this command only; the "
                "stream is gone when it ends (testing only; run `sor broker` and pass "
                "--bootstrap to keep it)",
                bootstrap,
            )
        report = produce_csv(
            config.data.path,
            **config.load_options(),
            bootstrap=bootstrap,
            topic=kafka.topic,
            key=key,
            speed=config.stream.speed,
            batch_bytes=config.stream.batch_bytes,
            security=kafka.security,
            max_message_bytes=config.stream.max_message_bytes,
            connect_timeout_s=config.stream.connect_timeout_s,
            reconnect_timeout_s=config.stream.reconnect_timeout_s,
            # A paced stream runs for as long as its data lasts: show how far it is even when
            # stderr is a log file; -q shows nothing but errors.
            progress=not quiet and (sys.stderr.isatty() or config.stream.speed > 0),
        )
    if not quiet:
        print(json.dumps(report.to_dict(), indent=2))
    return 0
