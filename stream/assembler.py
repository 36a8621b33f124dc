"""Checks one stream's messages for order and completeness and reassembles its data.

Kafka-free on purpose: the consumer feeds it decoded messages with their offsets (their
signatures already checked), tests feed it directly. A single partition delivers messages in the
order written, so anything but seq 0, 1, 2, ... (after dropping exact duplicates, which a
producer retry can cause) means lost or reordered data, and reading on would build wrong
snapshots. An event message carries several events: each is checked on its own, by its own
sequence number, as if it had come alone.

The start message declares the number of events N: an event beyond N, or an end message at
another count, is refused. The rebuilt updates are checked as the CSV loader would have them
(`stream.events.check_updates`) before `updates()` returns them; an error names the event's seq
and offset.

One exception: after `rewind()` (the consumer found the partition rewritten, e.g. an in-memory
broker restarted and the producer is sending the stream again from its start) the assembler
re-reads the partition from its beginning in *resync* mode: what it already holds comes again as
duplicates, and other streams' messages and messages beyond the next seq are skipped instead of
refused, until the next new message of the stream is accepted in order. Nothing is ever accepted
out of order, so resync can delay an error (to the idle timeout) but never build wrong data.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from sor.data.snapshots import QuoteUpdates
from sor.errors import StreamError
from stream.book import TopOfBook
from stream.events import UpdatesBuilder, updates_problem
from stream.messages import End, Event, Events, Message, Start

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
        duplicates: repeats of an accepted message with the same content, dropped.
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
        self._width = 5  # fields of each update: 5, or 7 with ask levels beyond level 0
        self._deepest = 0  # ask levels beyond level 0 an update may carry: L - 1
        self._next_seq = 0
        self._last_ts: int | None = None
        self._resync = False
        self._declared = 0  # events the start message declares
        self._first_seqs: list[int] = []  # first new event seq of each event message accepted
        self._offsets: list[int] = []  # and its offset

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
        if type(message) is Events:
            events = message.events
            return events[-1].seq == last and all(e == self._accepted(e.seq) for e in events)
        return message.seq == last and message == self._accepted(last)

    def accept(self, message: Message, offset: int) -> bool:
        """Take one decoded message; True once the stream is complete.

        Args:
            message: the decoded message.
            offset: its Kafka offset, for error messages and the report.

        Raises:
            StreamError: interleaved streams, a gap or reordering, a duplicate seq with other
                content, an event time going backwards, an event beyond the count the start
                message declares, or an end message with another event count.
        """
        if isinstance(message, Events):
            before = self.events
            first_new = self._next_seq
            if (
                message.seq == first_new
                and message.stream_id == self.stream_id
                and self.start is not None
            ):
                # The common case: the next events of the adopted stream.
                for event in message.events:
                    self._event(event, offset)
            elif self.start is None or self.done or message.stream_id != self.stream_id:
                # Skipped or refused whole, as its first event would be.
                return self._accept(message.events[0], offset)
            else:
                for event in message.events:
                    self._accept(event, offset)
            if self.events > before:
                self.messages += 1
                self._first_seqs.append(first_new)
                self._offsets.append(offset)
            return False
        return self._accept(message, offset)

    def _accept(self, message: Start | Event | End, offset: int) -> bool:
        """`accept` of one message, or of one event of an event message."""
        if (
            message.seq == self._next_seq
            and message.stream_id == self.stream_id
            and type(message) is Event
            and self.start is not None
        ):
            self._event(message, offset)
            return False
        if self.done:
            raise StreamError(f"stream {self.stream_id} is complete; got another message")
        if self.start is None:
            return self._before_start(message, offset)
        if message.stream_id != self.stream_id:
            if self._resync:
                self.skipped += 1
                return False
            raise StreamError(
                f"offset {offset} belongs to stream {message.stream_id}, inside stream "
                f"{self.stream_id} (after seq {self._next_seq - 1}): two streams are interleaved "
                "on one partition, so the topic is corrupt (did two producers write at once?)"
            )
        expected = self._next_seq
        if message.seq < expected:
            if message != self._accepted(message.seq):
                raise StreamError(
                    f"offset {offset} repeats seq {message.seq} of stream {self.stream_id} "
                    "with different content"
                )
            self.duplicates += 1
            if message.seq == 0 and self._resync:
                # The partition's own copy of the stream now starts here.
                self.first_offset = offset
            return False
        if message.seq > expected:
            if self._resync:
                # Left in the rewritten partition by an earlier attempt of the producer; the
                # producer sends from seq 0 again, so this seq will come again in order.
                self.skipped += 1
                return False
            missing = (
                f"seq {expected}"
                if message.seq == expected + 1
                else f"seq {expected}..{message.seq - 1}"
            )
            raise StreamError(
                f"gap in stream {self.stream_id}: {missing} missing or out of order "
                f"(offset {offset} holds seq {message.seq})"
            )
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

    def _accepted(self, seq: int) -> Start | Event:
        """The message accepted earlier at `seq` (never the end: reading stops there)."""
        if seq == 0:
            assert self.start is not None
            return self.start
        ts, updates, trades = self._builder.event(seq - 1)
        return Event(self.stream_id or "", seq, ts, updates, trades)

    def _before_start(self, message: Start | Event | End, offset: int) -> bool:
        wanted = self.stream_id is None or message.stream_id == self.stream_id
        if type(message) is Start and wanted:
            self.start = message
            self.stream_id = message.stream_id
            self._builder = UpdatesBuilder(message.levels)
            self._width = 5 if message.levels == 1 else 7
            self._deepest = message.levels - 1
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

    def _event(self, event: Event, offset: int) -> None:
        if event.seq > self._declared:
            raise StreamError(
                f"event seq {event.seq} at offset {offset} is beyond the {self._declared} "
                f"events the start message of stream {self.stream_id} declares"
            )
        ts = event.ts
        if self._last_ts is not None and ts <= self._last_ts:
            raise StreamError(
                f"event seq {event.seq} at offset {offset} has ts {ts} ns, not after the "
                f"previous event's {self._last_ts} ns: events out of clock order"
            )
        updates = event.updates
        # `decode` gives every update of an event the same layout: check the first, and the
        # number of levels of each against the start message's.
        if len(updates[0]) != self._width or (
            self._width == 7 and max(len(u[5]) for u in updates) > self._deepest
        ):
            expected = (
                "updates of 5 fields"
                if self._width == 5
                else f"updates of 7 fields with at most {self._deepest} ask levels beyond level 0"
            )
            raise StreamError(
                f"event seq {event.seq} at offset {offset} does not fit the start message of "
                f"stream {self.stream_id}, which declares {self._deepest + 1} ask level(s): "
                f"expected {expected}"
            )
        self._last_ts = ts
        self._resync = False
        self._next_seq += 1
        self.events += 1
        self.last_offset = offset
        self._builder.add(ts, event.updates, event.trades)
        if self.on_event is not None:
            self.book._apply(ts, event.updates, event.trades)
            self.on_event(ts, self.book)

    def updates(self) -> QuoteUpdates:
        """The stream's data as `QuoteUpdates` (complete once `done`), checked as the CSV
        loader would have them (`stream.events.updates_problem`).

        Raises:
            StreamError: a value the loader would never give, naming the event's seq and offset.
        """
        updates = self._builder.build(self.start.symbol if self.start else "")
        problem = updates_problem(updates)
        if problem is not None:
            seq = self._builder.event_of(problem) + 1
            offset = self._offsets[bisect_right(self._first_seqs, seq) - 1]
            raise StreamError(
                f"event seq {seq} at offset {offset} of stream {self.stream_id} holds "
                f"{problem.what} ({problem})"
            )
        return updates
