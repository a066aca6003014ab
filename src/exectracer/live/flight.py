"""The flight recorder: trace all the time into memory, write out the last moments when asked.

Like Go's ``trace.FlightRecorder``: the whole process is traced into a
bounded in-memory ring of chunks (:class:`~exectracer.live.ring.ChunkRing`)
and a snapshot is an ordinary trace file of what the ring holds: at least
the last ``min_age`` seconds, at most ``max_bytes``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..record import hook_errors
from ..record.held_signals import put_back, restarts
from ..record.recorder import (
    Options,
    Recorder,
    TracingError,
    current,
    in_memory_defaults,
    start_recorder,
    stop_recorder,
)
from ..record.writer import Sink, open_sink
from .ring import ChunkRing
from .triggers import SnapshotFiles, SnapshotIfSlow

MIN_MAX_BYTES = 64 << 10
FLUSH_TIMEOUT = 5.0  # seconds a snapshot waits for the newest events to be written

_lock = threading.Lock()
_running: FlightRecorder | None = None


def running() -> FlightRecorder | None:
    """The flight recorder recording in this process, if any."""
    flight = _running
    return flight if flight is not None and flight.recording else None


class FlightRecorder:
    """Records the whole process into memory, keeping at least ``min_age`` seconds and at most ``max_bytes``.

    ``options`` are recording options (see :class:`exectracer.Options`);
    those not given suit a recording kept in memory (``flush_interval`` and
    ``heap_interval`` 5 s, chunks of up to 262 144 events, fewer for a small
    ``max_bytes``). Use ``start()``/``stop()`` or ``with``; ``snapshot(dest)`` writes what
    is kept as a trace file. Only one recording (flight or not) runs at a
    time in a process.
    """

    def __init__(self, max_bytes: int = 10 << 20, min_age: float = 10.0, **options: Any) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}")
        if not min_age >= 0:
            raise ValueError("min_age must be a number of seconds, 0 or more")
        Options.from_kwargs(options)  # reject bad options now rather than at start()
        self.max_bytes = max_bytes
        self.min_age = min_age
        self._options = options
        self._ring: ChunkRing | None = None
        self._recorder: Recorder | None = None
        self._snapshot_lock = threading.Lock()
        self._files: SnapshotFiles | None = None
        self._uninstall: list[
            Callable[[], object]
        ] = []  # undo what it installed (a signal handler: returns the old one)

    @property
    def recording(self) -> bool:
        """Whether it records now (false once stopped, also by ``exectracer.stop()``, and in a forked child)."""
        rec = self._recorder
        return rec is not None and current() is rec

    @property
    def buffered_bytes(self) -> int:
        """The bytes of trace it holds now (at most ``max_bytes``)."""
        ring = self._ring
        return ring.nbytes if ring is not None else 0

    def start(self) -> FlightRecorder:
        """Start recording; raises :class:`exectracer.TracingError` if tracing already runs."""
        global _running
        with _lock:
            if self._recorder is not None:
                raise TracingError("this flight recorder is already started")
            ring = ChunkRing(self.max_bytes, self.min_age)
            self._recorder = start_recorder(ring, **{**in_memory_defaults(self.max_bytes), **self._options})
            self._ring = ring
            _running = self
        return self

    def stop(self) -> None:
        """Remove its triggers (after writing the snapshots they asked for) and stop recording; what it held is gone."""
        global _running
        while self._uninstall:
            self._uninstall.pop()()
        if self._files is not None:
            self._files.close()
            self._files = None
        with _lock:
            rec, self._recorder = self._recorder, None
            if _running is self:
                _running = None
        if rec is not None and current() is rec:
            try:
                stop_recorder(rec)
            except TracingError:  # stopped by someone else meanwhile
                pass
        self._ring = None

    def snapshot(self, dest: str | os.PathLike[str] | Sink) -> int:
        """Write what it holds, up to now, as a trace file into ``dest`` (a path or binary file); return its size."""
        with self._snapshot_lock:
            rec, ring = self._recorder, self._ring
            if rec is None or ring is None or current() is not rec:
                raise TracingError("the flight recorder is not recording")
            warnings = list(rec.warnings)
            if not rec.writer.flush(FLUSH_TIMEOUT):
                warnings.append(
                    f"the newest events were not written within {FLUSH_TIMEOUT} s and are missing from this snapshot"
                )
            sink, close = open_sink(dest)
            try:
                return ring.write_snapshot(
                    sink,
                    stop_ns=time.perf_counter_ns(),
                    warnings=warnings,
                    hook_errors=hook_errors.counts(),
                    unseen=list(rec.unseen),
                )
            finally:
                if close is not None:
                    close()

    def snapshot_on_signal(self, signum: int = signal.SIGUSR2, directory: str = ".") -> None:
        """Write a snapshot into ``directory`` whenever the process gets ``signum``, until ``stop()``.

        Call it from the main thread (Python's rule for signal handlers).
        The handler only asks; a background thread writes the file and
        prints its name on stderr.
        """
        files = self._snapshot_files()

        def on_signal(signo: int, frame: FrameType | None) -> None:
            try:
                files.request(directory, "signal")
            except Exception:  # never raise into the program
                hook_errors.caught("flight.signal")

        restart = restarts(signum)
        previous = signal.signal(signum, on_signal)
        self._uninstall.append(lambda: put_back(signum, previous if previous is not None else signal.SIG_DFL, restart))

    def snapshot_if_slow(
        self, threshold: float, *, name: str | None = None, directory: str = ".", cooldown: float = 60.0
    ) -> SnapshotIfSlow:
        """A context manager and decorator that writes a snapshot into ``directory`` when its block
        takes ``threshold`` seconds or more (at most one per ``cooldown`` seconds for this ``name``).

        With a ``name``, the block is also an ``exectracer.region``. Decorate
        a request handler (or wrap a request) to catch slow requests.
        """
        if not threshold >= 0:
            raise ValueError("threshold must be a number of seconds, 0 or more")
        files = self._snapshot_files()
        return SnapshotIfSlow(lambda reason: files.request(directory, reason, cooldown), threshold, name)

    def request_snapshot(
        self, directory: str, reason: str, cooldown: float = 60.0, label: str | None = None
    ) -> str | None:
        """Ask for a snapshot into ``directory``, written by a background thread (as the triggers do); the path
        it will have (its name ends with ``label``, default ``reason``), or None if one for ``reason`` was asked
        less than ``cooldown`` seconds ago."""
        return self._snapshot_files().request(directory, reason, cooldown, label)

    def __enter__(self) -> FlightRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _snapshot_files(self) -> SnapshotFiles:
        if self._files is None:
            self._files = SnapshotFiles(self.snapshot)
        return self._files
