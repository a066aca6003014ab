"""One whole-process capture into memory at a time, for an HTTP response.

Every integration (ASGI, WSGI, aiohttp, ``serve_debug``) goes through
:class:`Capture`, so two captures never overlap in a process, whichever
server they came through.
"""

from __future__ import annotations

import threading
from typing import Any

from ..record.recorder import Recorder, TracingError, in_memory_defaults, start_recorder, stop_recorder

_one_at_a_time = threading.Lock()


class CaptureBusy(Exception):
    """A capture cannot start: another one runs, or tracing was started by other means."""


class CaptureBuffer:
    """An in-memory trace destination that refuses to grow past ``max_bytes``.

    The writer then stops writing (whole chunks only), so a capture that
    would be too large ends early but stays readable: it lacks its END chunk.
    """

    name = "<HTTP capture>"  # what TracingError messages call this destination

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data = bytearray()

    def write(self, data: bytes | memoryview) -> int:
        if len(self._data) + len(data) > self.max_bytes:
            raise OSError(f"the capture reached its limit of {self.max_bytes:,} bytes")
        self._data += data
        return len(data)

    def getvalue(self) -> bytes:
        return bytes(self._data)


class Capture:
    """A recording of the whole process into memory: ``begin()``, then ``finish()`` for the trace's bytes.

    ``seconds``: how long it will run, if known. Its chunks are then made
    (and compressed) once it ends, not while the program is being watched,
    unless a chunk's worth of events piles up first (see
    ``in_memory_defaults``).
    """

    def __init__(self, options: dict[str, Any], max_bytes: int, seconds: float | None = None) -> None:
        self._options = options
        self._seconds = seconds
        self._buffer = CaptureBuffer(max_bytes)
        self._recorder: Recorder | None = None

    def begin(self) -> None:
        """Start recording; raises :class:`CaptureBusy` if a capture or another recording runs."""
        if not _one_at_a_time.acquire(blocking=False):
            raise CaptureBusy("a trace capture is already running in this process; try again when it ends")
        try:
            self._recorder = start_recorder(
                self._buffer,
                **{**in_memory_defaults(self._buffer.max_bytes, self._seconds), **self._options},
            )
        except TracingError:
            _one_at_a_time.release()
            raise CaptureBusy(
                "tracing is already running in this process (started by exectracer.start, exectracer run or a flight "
                "recorder); a flight recorder's last seconds are at /debug/pprof/flight"
            ) from None
        except BaseException:
            _one_at_a_time.release()
            raise

    def finish(self) -> bytes:
        """Stop recording and return the trace."""
        try:
            stop_recorder(self._recorder)
        except TracingError:  # someone called exectracer.stop() meanwhile: the trace ended there
            pass
        finally:
            _one_at_a_time.release()
        return self._buffer.getvalue()
