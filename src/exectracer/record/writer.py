"""The background writer: turns the recording's event store into chunks and writes them.

Two threads keep the traced program away from the disk:

* the *collector* wakes when nearly a chunk's worth of events (7/8) has
  piled up in the event store, when ``flush_interval`` has passed, for ``flush()`` and
  ``stop()``, and every ``tick_interval`` to call ``on_tick``; it takes the
  events, together with the definitions made before them, and encodes them
  into chunks (zlib runs without the GIL; with the C extension, in one call a
  chunk). The count that wakes it also tells the ``GilHandoff`` that it wants
  the GIL now. It sleeps without the GIL, so a
  busy program is not asked for it in between (a ``ListStore``, which
  cannot count, is looked at every ``POLL`` seconds instead);
* the *I/O thread* writes finished chunks to the sink and flushes it.

``flush()`` wakes the collector to take everything recorded so far and
waits until the I/O thread has written it (a flight recorder's snapshot
needs the newest events).

Both threads tell the recording's ``GilHandoff`` when they will want the GIL,
so that a busy event loop hands it over instead of fighting for it (see
``handoff``).

Memory stays bounded: the event store is drained once it holds a chunk's
worth of events, and if the sink falls behind by more than ``max_pending_bytes``
new chunks are dropped and counted as lost (an ``EVENTS_LOST`` event says
how many events went missing).
"""

from __future__ import annotations

import collections
import functools
import io
import math
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable
from typing import Protocol

from ..format.chunks import ChunkKind, Codec, file_header, make_chunk
from ..format.encoder import (
    EVENT_BYTES,
    encode_event_columns,
    event_column_views,
    events_chunk,
    json_chunk,
    json_payload,
)
from ..format.events import Kind, pack
from ..tracer_thread import TracerThread
from .handoff import COLLECTOR, NEVER, WRITER, GilHandoff
from .interner import Interner, take_all
from .native import speedups
from .store import EventStore, ListStore

# seconds between the collector's looks at a ListStore's length, at most: it does not wake it at a chunk's worth
POLL = 0.02
# When the collector plans to want the GIL back after work done without it (a take's copy, zlib):
# this many times the time that work should take. For zlib that is the CPU time per byte of the
# last large chunk (at first, a guess above zlib's speed at level 1 here, about 5 ns per byte).
# Too early, a busy loop blocks for a collector still at work (up to handoff.MAX_WAIT_S); too
# late only keeps the collector waiting for the GIL a little longer. CPU time, not wall time:
# that would count the wait for the GIL, and grow with each chunk.
PLAN_MARGIN = 2.0
FIRST_COMPRESS_NS_PER_BYTE = 10.0
TIMED_COMPRESS_BYTES = 1 << 16  # smaller payloads say more of zlib's fixed costs than of its speed
# The C event store copies what it hands over without the GIL (faulting in the payload's new pages):
# about this many ns a byte here, then the collector wants the GIL back.
TAKE_NS_PER_BYTE = 1.0


class Writer:
    """Drains ``events`` into chunks on ``sink`` from two background threads."""

    def __init__(
        self,
        sink: Sink,
        events: EventStore,
        interner: Interner,
        *,
        flush_interval: float,
        chunk_events: int,
        max_pending_bytes: int,
        compression: int,
        on_tick: Callable[[], None] | None = None,
        tick_interval: float = 1.0,
        handoff: GilHandoff | None = None,
    ) -> None:
        self._sink = sink
        self._events = events
        self._interner = interner
        self._flush_interval = flush_interval
        self._chunk_events = chunk_events
        # woken a little before a chunk's worth: the events stored while it wakes then fit
        # in the chunk, not in a second one cut from a copy of the whole (the burst path)
        self._wake_events = max(1, chunk_events - chunk_events // 8)
        self._max_pending = max_pending_bytes
        self._level = compression
        native = speedups()
        # zlib in one call without the GIL where the C extension found it
        # (else zlib.compress, which takes it back per block)
        whole = getattr(native, "compress_whole", None)
        self._compress = whole or zlib.compress
        # events as byte planes (format/planes.py), transformed in the same call: less to compress, and faster
        self._compress_planes = functools.partial(whole, planes=True) if whole is not None else None
        self._on_tick = on_tick
        self._tick_interval = tick_interval
        self._handoff = handoff or GilHandoff()
        self._set_handoff = getattr(
            events, "set_handoff", None
        )  # the C store tells the handoff when its count wakes the collector
        if self._set_handoff is not None:
            self._set_handoff(self._handoff)
        self._compress_ns_per_byte = FIRST_COMPRESS_NS_PER_BYTE  # see PLAN_MARGIN
        self._poll = POLL if isinstance(events, ListStore) else math.inf  # the longest sleep, besides the deadlines
        self._seq = 0
        self._taken_ns = time.perf_counter_ns()  # when the events were last taken from memory (EVENTS_TAKEN)
        # (chunk bytes, or a function making them; events in them)
        self._pending: collections.deque[tuple[bytes | Callable[[], bytes], int]] = collections.deque()
        self._pending_bytes = 0
        self._flush_requests: list[threading.Event] = []
        self._wake_io = threading.Event()
        self._stopping = threading.Event()
        self._io_done = threading.Event()
        self.events_written = 0
        self.events_lost = 0
        self._lost_reported = 0
        self.bytes_written = 0
        self.write_error: str | None = None
        self.thread_idents: set[int] = set()
        self._collector = TracerThread(target=self._collect_loop, name="exectracer-collector", daemon=True)
        self._io = TracerThread(target=self._io_loop, name="exectracer-io", daemon=True)

    # -- lifecycle ---------------------------------------------------------

    def start(self, metadata: dict) -> None:
        """Write the file header and metadata, then start both threads."""
        self._enqueue(
            file_header() + json_chunk(ChunkKind.METADATA, self._next_seq(), metadata, self._level), force=True
        )
        for thread in (self._io, self._collector):
            thread.start()
            if thread.ident is not None:  # set by start()
                self.thread_idents.add(thread.ident)

    def stop(self, summary: dict) -> None:
        """Write what is left and an END chunk; wait for the I/O thread."""
        self._stopping.set()
        self._events.wake()
        self._collector.join()
        self._forget_handoff()
        self._collect(final=True)

        def end_chunk() -> bytes:  # built by the I/O thread once everything before it is written
            totals = dict(summary, events=self.events_written, events_lost=self.events_lost)
            return json_chunk(ChunkKind.END, self._next_seq(), totals, self._level)

        self._pending.append((end_chunk, 0))
        self._confirm_flushes(take_all(self._flush_requests))
        self._io_done.set()
        self._wake_io.set()
        self._io.join()

    def flush(self, timeout: float) -> bool:
        """Write everything recorded so far to the sink; False if that took over ``timeout`` seconds
        or writing stopped."""
        if self._stopping.is_set():
            return False
        done = threading.Event()
        self._flush_requests.append(done)
        self._events.wake()
        return done.wait(timeout)

    def abandon(self) -> None:
        """Forget everything without writing (used in a forked child)."""
        self._forget_handoff()
        self._pending.clear()
        self._events.clear()

    def _forget_handoff(self) -> None:
        if (
            self._set_handoff is not None
        ):  # the store is not collected by the GC: no cycle through it must outlive the recording
            self._set_handoff(None)

    # -- collector ---------------------------------------------------------

    def _collect_loop(self) -> None:
        handoff = self._handoff
        last = last_tick = time.monotonic()
        try:
            while True:
                timeout = max(0.0, min(last + self._flush_interval, last_tick + self._tick_interval) - time.monotonic())
                timeout = min(timeout, self._poll)
                handoff.plan(COLLECTOR, time.perf_counter_ns() + int(timeout * 1e9))
                self._events.wait(self._wake_events, timeout)
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                if now - last_tick >= self._tick_interval:
                    last_tick = now
                    if self._on_tick is not None:
                        self._on_tick()
                flushes = take_all(self._flush_requests)
                if flushes or len(self._events) >= self._wake_events or now - last >= self._flush_interval:
                    self._collect(final=False)
                    last = now
                self._confirm_flushes(flushes)
                handoff.finished(COLLECTOR)
        finally:
            handoff.plan(COLLECTOR, NEVER)

    def _confirm_flushes(self, flushes: list[threading.Event]) -> None:
        """Have the I/O thread set each of ``flushes`` once what is pending now is written."""
        if flushes:
            self._pending.append((functools.partial(_confirm, flushes), 0))
            self._wake_io.set()

    def _collect(self, final: bool) -> None:
        """Queue everything stored so far: the definitions it uses, then its events in chunks of ``chunk_events``."""
        try:
            due = int(len(self._events) * EVENT_BYTES * TAKE_NS_PER_BYTE * PLAN_MARGIN)
            self._handoff.finished(COLLECTOR, time.perf_counter_ns() + due)
            if len(self._events):
                self._note_taken()
            payload, n, lost = self._events.take()
            self._enqueue(self._definitions(), force=True)  # taken after the events: every definition they use is in
            size = self._chunk_events
            if n <= size:
                self._enqueue_events(payload, n, lost, final)
                return
            columns = event_column_views(payload)  # a burst of several chunks' worth: cut
            for start in range(0, n, size):
                end = min(start + size, n)
                part = encode_event_columns(*(column[start:end] for column in columns))
                self._enqueue_events(part, end - start, lost if start == 0 else 0, final)
        except Exception as exc:  # never let the writer die silently
            self.write_error = f"{type(exc).__name__}: {exc}"

    def _enqueue_events(self, payload: bytes, n: int, lost: int, final: bool) -> None:
        """Queue an EVENTS chunk of the ``n`` events in ``payload``, after an EVENTS_LOST event
        for any lost before them."""
        self.events_lost += lost
        unreported = self.events_lost - self._lost_reported
        if unreported:
            marker = events_chunk(
                self._next_seq(), [pack(Kind.EVENTS_LOST, unreported), time.perf_counter_ns(), 0], self._level
            )
            if self._enqueue(marker, force=final, events=1):
                self._lost_reported += unreported
        if n and not self._enqueue(self._seal(ChunkKind.EVENTS, payload), force=final, events=n):
            self.events_lost += n

    def _note_taken(self) -> None:
        """Record, among the events about to be taken from memory, since when they were there (EVENTS_TAKEN: every
        one was recorded after the previous take). Events still in memory are lost if the process dies, and a
        collector held up (by a program that keeps the CPU or the GIL) leaves them there longer."""
        now = time.perf_counter_ns()
        self._events.extend((pack(Kind.EVENTS_TAKEN, max(now - self._taken_ns, 0)), now, 0))
        self._taken_ns = now

    def _seal(self, kind: ChunkKind, raw: bytes) -> bytes:
        """A chunk of ``kind`` with the payload ``raw``.

        zlib lets go of the GIL: a busy loop waiting for the collector goes
        on meanwhile, and gives way again when the compression should be done
        (else the collector would have to win the GIL back from it).
        """
        cpu = time.thread_time_ns()
        if self._level:
            self._handoff.finished(
                COLLECTOR, time.perf_counter_ns() + int(self._compress_ns_per_byte * len(raw) * PLAN_MARGIN)
            )
        if kind == ChunkKind.EVENTS and self._compress_planes is not None:
            chunk = make_chunk(kind, self._next_seq(), raw, self._level, self._compress_planes, Codec.ZLIB_PLANES)
        else:
            chunk = make_chunk(kind, self._next_seq(), raw, self._level, self._compress)
        if len(raw) >= TIMED_COMPRESS_BYTES:
            self._compress_ns_per_byte = (time.thread_time_ns() - cpu) / len(raw)
        return chunk

    def _definitions(self) -> bytes:
        strings, frames, stacks = self._interner.take_new()
        parts = []
        if strings:
            parts.append(self._seal(ChunkKind.STRINGS, json_payload(strings)))
        if frames or stacks:
            parts.append(self._seal(ChunkKind.STACKS, json_payload({"frames": frames, "stacks": stacks})))
        return b"".join(parts)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- I/O ---------------------------------------------------------------

    def _enqueue(self, data: bytes, force: bool, events: int = 0) -> bool:
        if not data:
            return True
        if not force and self._pending_bytes + len(data) > self._max_pending:
            return False
        self._pending.append((data, events))
        self._pending_bytes += len(data)
        if not self._wake_io.is_set():  # the I/O thread will want the GIL as soon as it wakes
            self._handoff.plan(WRITER, time.perf_counter_ns())
        self._wake_io.set()
        return True

    def _io_loop(self) -> None:
        try:
            self._write_pending()
        finally:
            self._handoff.plan(WRITER, NEVER)

    def _write_pending(self) -> None:
        while True:
            self._wake_io.wait()
            self._wake_io.clear()
            self._handoff.finished(WRITER)  # it has the GIL: a sink that blocks must not hold the program up
            while self._pending:
                data, events = self._pending.popleft()
                if callable(data):  # the END chunk or a flush confirmation: never counted as pending
                    data = data()
                else:
                    self._pending_bytes -= len(data)
                if self._write(data):
                    self.events_written += events
                else:
                    self.events_lost += events
            if self._io_done.is_set() and not self._pending:
                self._flush()
                return

    def _write(self, data: bytes) -> bool:
        if self.write_error is not None:
            return False
        try:
            view = memoryview(data)
            while view:
                written = self._sink.write(view)
                if written is None:
                    raise OSError("the trace destination is non-blocking and not ready")
                view = view[written:]
            self._flush()
        except Exception as exc:  # any failure of the sink ends writing, never the program
            self.write_error = f"{type(exc).__name__}: {exc}"
            print(f"exectracer: cannot write the trace: {self.write_error}", file=sys.stderr)
            return False
        self.bytes_written += len(data)
        return True

    def _flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            try:
                flush()
            except (OSError, ValueError):
                pass


def _confirm(flushes: list[threading.Event]) -> bytes:
    """A pending entry that writes nothing: everything queued before it is written."""
    for done in flushes:
        done.set()
    return b""


class Sink(Protocol):
    """Where a trace's bytes go: a binary file, or any object with a binary ``write`` (a flight recorder's ring)."""

    def write(self, data: memoryview, /) -> int | None:
        """Write some of ``data``; return how much (None: a non-blocking sink is not ready)."""
        ...


def open_sink(dest: str | os.PathLike[str] | Sink) -> tuple[Sink, Callable[[], None] | None]:
    """A writable binary sink for ``dest``, and its ``close`` if we opened it ourselves (None: the caller's)."""
    if isinstance(dest, (str, os.PathLike)):
        # unbuffered: a forked child holds no unwritten bytes of ours
        file = open(dest, "wb", buffering=0)  # closed by the caller, through the close returned
        return file, file.close
    if not hasattr(dest, "write") or isinstance(dest, io.TextIOBase):
        raise TypeError(f"trace destination must be a path or a binary file object, not {type(dest).__name__}")
    return dest, None
