"""Checks one stream's messages for order and completeness and reassembles its data.

Kafka-free on purpose: the consumer feeds it decoded messages with their offsets (their
signatures and values already checked by `stream.messages.decode`), tests feed it directly. A
single partition delivers messages in the order written, so anything but seq 0, 1, 2, ... (after
dropping exact duplicates, which a producer retry can cause) means lost or reordered data, and
reading on would build wrong snapshots. An event message carries several events: each is
checked by its own sequence number, as if it had come alone, but over the whole message at once
(a duplicated message is dropped and counted event by event; a gap is named by event seq; a
repeated seq with other content is refused, naming the first event that differs).

The start message declares the number of events N: an event beyond N, or an end message at
another count, is refused. The values of each event message are checked as the CSV loader
checks its rows when it is decoded; the clock order across messages and the ask levels the
start message declares are checked here.

One exception: after `rewind()` (the consumer found the partition rewritten, e.g. an in-memory
broker restarted and the producer is sending the stream again from its start) the assembler
re-reads the partition from its beginning in *resync* mode: what it already holds comes again as
duplicates, and other streams' messages and messages beyond the next seq are skipped instead of
refused, until the next new message of the stream is accepted in order. Nothing is ever accepted
out of order, so resync can delay an error (to the idle timeout) but never build wrong data.
"""

from __future__ import annotations

from collections.abc import Callable

from sor.data.snapshots import QuoteUpdates
from sor.errors import StreamError
from stream.book import TopOfBook
from stream.events import UpdatesBuilder
from stream.messages import Batch, End, Message, Start, cut, event_rows, first_difference

__all__ = ["OnEvent", "StreamAssembler"]

OnEvent = Callable[[int, TopOfBook], None]


class StreamAssembler:
    """Follows one stream: adopts it at its start message and accepts it up to its end message.

    Args:
        stream_id: the stream to read; None adopts the first start message met.
        on_event: called as `on_event(ts, book)` after each event is applied (live mode).

    Attributes:
        start: the stream's start message, None until met.
        events: snapshot events accepted.
        messages: messages of the stream accepted: the start, each event message that brought
            new events, the end.
        duplicates: events (and start messages) that repeat accepted ones with the same
            content, dropped.
        skipped: messages before the stream's start (other streams on a shared topic), and
            while resyncing, other streams' messages and messages beyond the next seq; ignored.
        unverified: records skipped because their signature did not verify (counted by the
            consumer, which checks signatures; see `skips_unverified`).
        rewinds: times the partition was found rewritten and read again from its beginning.
        first_offset: Kafka offset of the start message.
        last_offset: Kafka offset of the last message accepted.
        done: the end message was accepted.
        book: every venue's latest quote (kept up to date only when `on_event` is given).
    """

    def __init__(self, stream_id: str | None = None, on_event: OnEvent | None = None) -> None:
        self.stream_id = stream_id
        self.on_event = on_event
        self.start: Start | None = None
        self.events = 0
        self.messages = 0
        self.duplicates = 0
        self.skipped = 0
        self.unverified = 0
        self.rewinds = 0
        self.first_offset: int | None = None
        self.last_offset: int | None = None
        self.done = False
        self.book = TopOfBook()
        self._builder = UpdatesBuilder()
        self._next_seq = 0
        self._last_ts: int | None = None
        self._resync = False
        self._declared = 0  # events the start message declares

    @property
    def next_seq(self) -> int:
        """Sequence number expected next."""
        return self._next_seq

    @property
    def resyncing(self) -> bool:
        """True after `rewind()` until the next new message of the stream is accepted."""
        return self._resync

    @property
    def skips_unverified(self) -> bool:
        """True while a record that fails the signature check is skipped, not refused: before
        the stream's start message (it belongs to no stream this reader follows) and while
        resyncing (see the module docstring); from the start on, the stream refuses it."""
        return self.start is None or self._resync

    def rewind(self) -> None:
        """The partition was rewritten: its messages will come again from its beginning.

        Enters resync mode (see the module docstring); the data accepted so far is kept.
        """
        self._resync = True
        self.rewinds += 1

    def is_last(self, message: Message) -> bool:
        """True if `message` is the message accepted last (same stream, seqs and content)."""
        if self.start is None or self.done or message.stream_id != self.stream_id:
            return False
        last = self._next_seq - 1
        if type(message) is Batch:
            return (
                message.seq >= 1
                and message.seq + message.count - 1 == last
                and self._differs(message, message.count) is None
            )
        return message.seq == last == 0 and message == self.start

    def accept(self, message: Message, offset: int) -> bool:
        """Take one decoded message; True once the stream is complete.

        Args:
            message: the decoded message.
            offset: its Kafka offset, for error messages and the report.

        Raises:
            StreamError: interleaved streams, a gap or reordering, a duplicate seq with other
                content, an event time going backwards, events not of the ask levels the start
                message declares, an event beyond the count it declares, or an end message
                with another event count.
        """
        if type(message) is Batch:
            return self._batch(message, offset)
        if self.done:
            raise StreamError(f"stream {self.stream_id} is complete; got another message")
        if self.start is None:
            return self._before_start(message, offset)
        if not self._ours(message, offset):
            return False
        expected = self._next_seq
        if message.seq < expected:
            if message.seq != 0 or message != self.start:
                raise StreamError(
                    f"offset {offset} repeats seq {message.seq} of stream {self.stream_id} "
                    "with different content"
                )
            self.duplicates += 1
            if self._resync:
                # The partition's own copy of the stream now starts here.
                self.first_offset = offset
            return False
        if message.seq > expected:
            return self._gap(expected, message.seq, offset)
        if type(message) is End:
            if message.events != self.events:
                raise StreamError(
                    f"end of stream {self.stream_id} at offset {offset} announces "
                    f"{message.events} events, but {self.events} arrived"
                )
            if message.events != self._declared:
                raise StreamError(
                    f"end of stream {self.stream_id} at offset {offset} announces "
                    f"{message.events} events, but its start message declares {self._declared}"
                )
            self._next_seq += 1
            self.messages += 1
            self.last_offset = offset
            self.done = True
            self._resync = False
            return True
        raise StreamError(
            f"offset {offset}: a start message with seq {message.seq} in stream {self.stream_id}"
        )

    def _ours(self, message: Message, offset: int) -> bool:
        """True if `message` is of the stream followed; False if it is to be skipped (another
        stream while resyncing).

        Raises:
            StreamError: another stream inside this one.
        """
        if message.stream_id == self.stream_id:
            return True
        if self._resync:
            self.skipped += 1
            return False
        raise StreamError(
            f"offset {offset} belongs to stream {message.stream_id}, inside stream "
            f"{self.stream_id} (after seq {self._next_seq - 1}): two streams are interleaved "
            "on one partition, so the topic is corrupt (did two producers write at once?)"
        )

    def _gap(self, expected: int, seq: int, offset: int) -> bool:
        if self._resync:
            # Left in the rewritten partition by an earlier attempt of the producer; the
            # producer sends from seq 0 again, so this seq will come again in order.
            self.skipped += 1
            return False
        missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
        raise StreamError(
            f"gap in stream {self.stream_id}: {missing} missing or out of order "
            f"(offset {offset} holds seq {seq})"
        )

    def _differs(self, batch: Batch, count: int) -> int | None:
        """The seq of the first of the first `count` events of `batch` (all accepted before)
        whose content differs from the event accepted under its seq, or None."""
        first = batch.seq
        for index, accepted in self._builder.pieces(first - 1, first - 1 + count):
            start = index + 1 - first
            theirs = cut(batch.events, start, start + len(accepted.ts))
            k = first_difference(accepted, theirs)
            if k is not None:
                return first + start + k
        return None

    def _batch(self, batch: Batch, offset: int) -> bool:
        """`accept` of an event message: each event by its seq, over the whole message."""
        if self.done:
            raise StreamError(f"stream {self.stream_id} is complete; got another message")
        if self.start is None:
            return self._before_start(batch, offset)
        if not self._ours(batch, offset):
            return False
        seq, count, expected = batch.seq, batch.count, self._next_seq
        if seq > expected:
            return self._gap(expected, seq, offset)
        held = min(seq + count, expected) - seq  # events accepted before: duplicates or not
        if held:
            differs = self._differs(batch, held)
            if differs is not None:
                raise StreamError(
                    f"offset {offset} repeats seq {differs} of stream {self.stream_id} "
                    "with different content"
                )
            self.duplicates += held
            if held == count:
                return False
        events = batch.events if not held else cut(batch.events, held, count)
        first, last = expected, seq + count - 1
        if last > self._declared:
            raise StreamError(
                f"event seq {max(first, self._declared + 1)} at offset {offset} is beyond the "
                f"{self._declared} events the start message of stream {self.stream_id} declares"
            )
        levels = self._builder.levels
        if events.levels != levels:
            raise StreamError(
                f"event seq {first} at offset {offset} does not fit the start message of "
                f"stream {self.stream_id}, which declares {levels} ask level(s): its updates "
                f"carry {events.levels - 1} ask level(s) beyond level 0, not {levels - 1}"
            )
        ts = int(events.ts[0])  # the message's own events are in order (`decode`)
        if self._last_ts is not None and ts <= self._last_ts:
            raise StreamError(
                f"event seq {first} at offset {offset} has ts {ts} ns, not after the "
                f"previous event's {self._last_ts} ns: events out of clock order"
            )
        self._last_ts = int(events.ts[-1])
        self._resync = False
        self._next_seq = last + 1
        self.events += last + 1 - first
        self.messages += 1
        self.last_offset = offset
        self._builder.add(events)
        if self.on_event is not None:
            book, on_event = self.book, self.on_event
            for event in event_rows(events):
                book._apply(*event)
                on_event(event.ts, book)
        return False

    def _before_start(self, message: Message, offset: int) -> bool:
        wanted = self.stream_id is None or message.stream_id == self.stream_id
        if type(message) is Start and wanted:
            self.start = message
            self.stream_id = message.stream_id
            self._builder = UpdatesBuilder(message.levels)
            self.first_offset = self.last_offset = offset
            self._next_seq = 1
            self._declared = message.events
            self.messages = 1
            return False
        if self.stream_id is not None and message.stream_id == self.stream_id and not self._resync:
            raise StreamError(
                f"offset {offset} holds seq {message.seq} of stream {self.stream_id} before its "
                f"start message: seq 0..{message.seq - 1} missing (start reading at the "
                "stream's first offset)"
            )
        self.skipped += 1
        return False

    def updates(self) -> QuoteUpdates:
        """The stream's data as `QuoteUpdates` (complete once `done`).

        Every value was checked as the CSV loader checks it when its message was decoded, so
        the updates are as the loader would have them (`stream.events.updates_problem`).
        """
        return self._builder.build(self.start.symbol if self.start else "")
