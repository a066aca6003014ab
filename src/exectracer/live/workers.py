"""One capture of every worker of a service: ask the siblings over their sockets, merge what comes back.

The worker that got the HTTP request (access already checked there) sends
each sibling registered beside it (:mod:`.rendezvous`) one request line,
JSON: ``{"kind": "trace", "seconds": S}`` (or ``"flight"``). The sibling
captures for the same window (or takes its flight recorder's snapshot) and
answers one JSON line, ``{"pid": P, "size": N}`` followed by N bytes of
trace, or ``{"pid": P, "error": "..."}``. Each side checks that the other
runs as the same user (``SO_PEERCRED``).

Each sibling is asked from a thread of its own. A sibling whose socket
refuses connections is gone (a worker that died): its socket is removed
and it is no longer a worker of the service. One that is busy (a capture
already running there), closes the connection before answering (killed
meanwhile) or does not answer within the window plus ``timeout`` seconds
is **missing**: the merged trace names it, with why, in its first
recording's metadata (``service_capture``), and the HTTP response in
``X-Exectracer-Missing``.

The merged trace is a version-2 file (docs/format.md): the answering
worker's recording first, then each sibling's, their chunks as they came.
"""

from __future__ import annotations

import _thread
import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable

from ..format.chunks import CHUNK_HEADER, FILE_HEADER, MAGIC, MERGED_VERSION, ChunkKind, chunk_payload, file_header
from ..format.encoder import json_chunk
from ..tracer_thread import TracerThread
from .rendezvous import trusted

CONNECT_TIMEOUT = 2.0  # seconds to connect and send the request
MAX_LINE = 4096  # longest request or answer line
METADATA_KEY = "service_capture"

Answer = Callable[[str, float], bytes]  # (kind, seconds) -> trace; raises Refused with why


class Refused(Exception):
    """A worker cannot answer (busy, no flight recorder); the message says why."""


@dataclasses.dataclass(frozen=True)
class Missing:
    """A worker of the service whose trace is not in the merged one, and why."""

    pid: int
    reason: str

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.reason}"


class _Ask:
    """One sibling asked from a thread of the tracer's own."""

    def __init__(self, pid: int, path: str, request: bytes, timeout: float) -> None:
        self.pid, self.path = pid, path
        self.result: bytes | Missing | None = None  # None: gone (stale socket) or not finished
        self.gone = False
        self._running = _thread.allocate_lock()  # held until it has its result
        self._running.acquire()
        TracerThread(target=self._run, args=(request, timeout), name="exectracer-ask-worker").start()

    def wait(self, deadline: float) -> bytes | Missing | None:
        if not self._running.acquire(True, max(0.0, deadline - time.monotonic())):
            return Missing(self.pid, "did not answer in time")
        self._running.release()
        return None if self.gone else self.result

    def _run(self, request: bytes, timeout: float) -> None:
        try:
            self._ask(request, timeout)
        finally:
            self._running.release()

    def _ask(self, request: bytes, timeout: float) -> None:
        try:
            self.result = self._exchange(request, timeout)
        except ConnectionRefusedError:  # nobody listens there: a worker that died
            self.gone = True
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        except FileNotFoundError:  # it left meanwhile
            self.gone = True
        except (OSError, ValueError) as exc:
            self.result = Missing(self.pid, _why(exc))

    def _exchange(self, request: bytes, timeout: float) -> bytes | Missing:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT)
            conn.connect(self.path)
            if not trusted(conn):
                return Missing(self.pid, "its socket belongs to another user: not asked")
            conn.sendall(request)
            conn.settimeout(timeout)
            reader = conn.makefile("rb")
            head = json.loads(_line(reader))
            if "error" in head:
                return Missing(self.pid, str(head["error"])[:200])
            size = int(head["size"])
            data = reader.read(size)
            if len(data) != size:
                return Missing(self.pid, "the connection closed before its trace arrived (the worker died?)")
            return data


class Gathering:
    """The siblings asked for one capture; :meth:`collect` their traces and who is missing."""

    def __init__(self, siblings: list[tuple[int, str]], kind: str, seconds: float, timeout: float) -> None:
        request = json.dumps({"kind": kind, "seconds": seconds}).encode() + b"\n"
        self._deadline = time.monotonic() + seconds + timeout
        self._asks = [_Ask(pid, path, request, seconds + timeout) for pid, path in siblings]

    def collect(self) -> tuple[list[bytes], list[Missing]]:
        """Wait (until the window's end plus the timeout at most) for every sibling's answer."""
        traces: list[bytes] = []
        missing: list[Missing] = []
        for ask in self._asks:
            result = ask.wait(self._deadline)
            if isinstance(result, Missing):
                missing.append(result)
            elif result is not None:
                traces.append(result)
        return traces, missing


def answer(conn: socket.socket, respond: Answer) -> None:
    """Answer one sibling's request on ``conn`` (its peer already checked) with ``respond(kind, seconds)``."""
    conn.settimeout(CONNECT_TIMEOUT)
    reader = conn.makefile("rb")
    try:
        request = json.loads(_line(reader))
        kind, seconds = request["kind"], float(request["seconds"])
        if kind not in ("trace", "flight") or not seconds >= 0:
            raise ValueError(f"bad request {request!r:.100}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _send(conn, {"error": f"bad request: {_why(exc)}"})
        return
    try:
        data = respond(kind, seconds)
    except Refused as exc:
        _send(conn, {"error": str(exc)})
        return
    conn.settimeout(None)
    _send(conn, {"size": len(data)}, data)


def merged(own: bytes, others: list[bytes], note: dict[str, object]) -> bytes:
    """One version-2 trace: ``own`` first, with ``note`` added to its METADATA, then ``others``."""
    parts: list[bytes | memoryview] = [file_header(MERGED_VERSION), _noted(_chunks(own), note)]
    parts += [_chunks(data) for data in others]
    return b"".join(parts)


def _chunks(data: bytes) -> memoryview:
    """A trace file's chunks, without its header."""
    view = memoryview(data)
    return view[FILE_HEADER.size :] if view[: len(MAGIC)] == MAGIC else view


def _noted(chunks: memoryview, note: dict[str, object]) -> bytes:
    """The chunks with ``note`` under :data:`METADATA_KEY` in the first one, if it is the METADATA."""
    if len(chunks) < CHUNK_HEADER.size:
        return bytes(chunks)
    _, kind, _, _, seq, length, _, _ = CHUNK_HEADER.unpack_from(chunks)
    end = CHUNK_HEADER.size + length
    if kind != ChunkKind.METADATA or end > len(chunks):
        return bytes(chunks)
    metadata = json.loads(chunk_payload(chunks[:end]))
    metadata[METADATA_KEY] = note
    chunk = json_chunk(ChunkKind.METADATA, seq, metadata)
    return bytes(chunk) + bytes(chunks[end:])


def _line(reader: object) -> bytes:
    line: bytes = reader.readline(MAX_LINE)  # type: ignore[attr-defined]
    if not line.endswith(b"\n"):
        raise ConnectionError("the connection closed before it answered (the worker died?)")
    return line


def _send(conn: socket.socket, head: dict[str, object], data: bytes = b"") -> None:
    head = {"pid": os.getpid(), **head}
    with contextlib.suppress(OSError):  # the asker gave up
        conn.sendall(json.dumps(head).encode() + b"\n")
        if data:
            conn.sendall(data)


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "did not answer in time"
    if isinstance(exc, ConnectionError):
        return str(exc) if exc.args and isinstance(exc.args[0], str) else "the connection closed (the worker died?)"
    return str(exc) or type(exc).__name__
