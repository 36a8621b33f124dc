"""kafka-python's log lines a stream's own close causes are not shown as errors."""

from __future__ import annotations

import logging

import stream.connect  # noqa: F401  (installs the filter on kafka-python's cluster logger)
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS


@KAFKA_PYTHON_WARNINGS
def test_a_refresh_the_close_cancelled_is_dropped_and_a_real_failure_kept(caplog):
    from kafka.errors import Cancelled, KafkaConnectionError  # imported here: see the marker

    cluster = logging.getLogger("kafka.cluster")
    with caplog.at_level(logging.ERROR, logger="kafka.cluster"):
        cluster.error("Metadata refresh: failed %s", Cancelled())
        cluster.error("Metadata refresh: failed %s", KafkaConnectionError("broker went away"))
    assert [r.getMessage() for r in caplog.records] == [
        "Metadata refresh: failed KafkaConnectionError: broker went away"
    ]
