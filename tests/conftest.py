"""Shared fixtures: one real Tansu broker per session, a fresh topic per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stream.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A running embedded broker, stopped at the end of the session whatever happens."""
    broker = EmbeddedBroker()
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def bootstrap(broker: EmbeddedBroker) -> str:
    """Bootstrap address of the session's broker."""
    return broker.bootstrap


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]
    return f"t-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def raw_producer(broker: EmbeddedBroker):
    """A plain KafkaProducer, for writing hand-made (bad) messages to a topic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=[broker.bootstrap], acks="all", allow_auto_create_topics=False
    )
    try:
        yield producer
    finally:
        producer.close(timeout=5)


@pytest.fixture
def write_raw(raw_producer, bootstrap):
    """write_raw(topic, [bytes, ...], key=KEY): create the topic (1 partition) and append the
    values, each signed with `key` (tests/stream/helpers.py), or unsigned where `key` is None."""
    from stream.producer import ensure_topic
    from tests.stream.helpers import KEY

    def write(topic: str, values: list[bytes], key=KEY) -> list[int]:
        ensure_topic(bootstrap, topic, connect_timeout_s=10)
        futures = [
            raw_producer.send(
                topic, value, partition=0, headers=key.headers(value) if key else None
            )
            for value in values
        ]
        raw_producer.flush()
        return [f.get(timeout=10).offset for f in futures]

    return write
