"""The flight recorder's sink: the newest part of a recording, kept in memory as chunks."""

from __future__ import annotations

import collections
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from ..format.chunks import CHUNK_HEADER, ChunkKind, chunk_payload, file_header, renumbered_header, split_chunks
from ..format.encoder import COLUMNS, EVENT_BYTES, event_column_views, events_chunk, json_chunk
from ..record.writer import Sink
from .alive import LiveDescriptions

MERGE_DEFINITIONS_AFTER = 64  # STRINGS and STACKS chunks kept before they are merged into one of each


class ChunkRing:
    """A trace sink that keeps the chunks the writer gives it, for snapshots.

    * METADATA is kept.
    * STRINGS and STACKS are all kept, since a kept event may use a name
      defined long before; every ``MERGE_DEFINITIONS_AFTER`` chunks they are
      merged into one of each.
    * EVENTS chunks form a ring: the oldest is dropped once it arrived
      ``min_age`` seconds ago or more (all its events are that old), or to
      keep the whole within ``max_bytes``, which wins when the two disagree.
      What a dropped chunk describes that is still alive is kept
      (:class:`LiveDescriptions`) and restated at the start of a snapshot.
    * END (from the recording's stop) is ignored: a snapshot makes its own.

    ``max_bytes`` bounds everything it holds: the encoded chunks and the
    restated events (counted at their raw 24 bytes each).
    """

    name = "<flight recorder>"  # what TracingError messages call this destination

    def __init__(self, max_bytes: int, min_age: float) -> None:
        self.max_bytes = max_bytes
        self.min_age = min_age
        self._min_age_ns = int(min_age * 1e9)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_bytes = 0
        self._definitions: list[bytes] = []
        self._definitions_bytes = 0
        self._events: collections.deque[tuple[int, bytes, int]] = collections.deque()  # (arrival ns, chunk, events)
        self._events_bytes = 0
        self._alive = LiveDescriptions()
        self._alive_bytes = 0
        self._window_start_ns: int | None = None  # arrival of the last dropped chunk: every later event is kept
        self.chunks_dropped = 0
        self.events_dropped = 0

    @property
    def nbytes(self) -> int:
        """The bytes held now."""
        return self._metadata_bytes + self._definitions_bytes + self._events_bytes + self._alive_bytes

    def write(self, data: bytes | memoryview) -> int:
        """Take whole chunks from the writer."""
        now = time.perf_counter_ns()
        with self._lock:
            for kind, chunk in split_chunks(data):
                if kind == ChunkKind.EVENTS:
                    self._add_events(bytes(chunk), now)
                elif kind in (ChunkKind.STRINGS, ChunkKind.STACKS):
                    self._add_definitions(bytes(chunk))
                elif kind == ChunkKind.METADATA:
                    self._metadata = json.loads(chunk_payload(chunk))
                    self._metadata_bytes = len(chunk)
        return len(data)

    def write_snapshot(
        self,
        out: Sink,
        *,
        stop_ns: int,
        warnings: list[str],
        hook_errors: dict[str, dict[str, int | str]] | None = None,
        unseen: list[str] | None = None,
    ) -> int:
        """Write what is kept as a complete trace file to ``out``; return the bytes written."""
        with self._lock:
            if self._metadata is None:
                raise RuntimeError("the recording has not started")
            metadata, definitions, kept = self._metadata, list(self._definitions), list(self._events)
            start_ns = self._window_start_ns
            restated = self._alive.rows(start_ns) if start_ns is not None else None
            dropped = {"chunks": self.chunks_dropped, "events": self.events_dropped}
        level = metadata.get("options", {}).get("compression", 1)
        seq = itertools.count(1).__next__
        pieces: list[bytes | memoryview] = [
            file_header(),
            json_chunk(ChunkKind.METADATA, seq(), self._window_metadata(metadata, start_ns, dropped), level),
        ]
        pieces += _renumbered(definitions, seq)
        if restated:
            pieces.append(events_chunk(seq(), restated, level))
        pieces += _renumbered([chunk for _, chunk, _ in kept], seq)
        events = sum(n for _, _, n in kept) + len(restated or ()) // COLUMNS
        summary = {
            "clean": True,
            "stop_ns": stop_ns,
            "warnings": warnings,
            "events": events,
            "events_lost": 0,
            "hook_errors": hook_errors or {},
            "unseen": unseen or [],
        }
        pieces.append(json_chunk(ChunkKind.END, seq(), summary, level))
        return sum(_write_all(out, piece) for piece in pieces)

    def _window_metadata(
        self, metadata: dict[str, Any], start_ns: int | None, dropped: dict[str, int]
    ) -> dict[str, Any]:
        """The recording's metadata, moved to the window's start, with what the flight recorder did."""
        flight = {
            "max_bytes": self.max_bytes,
            "min_age": self.min_age,
            "recording_start_ns": metadata.get("start_ns"),
            "dropped": dropped,
        }
        if start_ns is None:
            return dict(metadata, flight_recorder=flight)
        moved = start_ns - metadata["start_ns"]
        return dict(
            metadata, start_ns=start_ns, start_wall_ns=metadata["start_wall_ns"] + moved, flight_recorder=flight
        )

    def _add_events(self, chunk: bytes, now: int) -> None:
        cutoff = now - self._min_age_ns
        while self._events and (self._events[0][0] <= cutoff or self.nbytes + len(chunk) > self.max_bytes):
            oldest = self._events.popleft()
            self._events_bytes -= len(oldest[1])
            self._drop(*oldest)
        n = int.from_bytes(chunk[16:20], "little") // EVENT_BYTES  # raw_length / 24
        if self.nbytes + len(chunk) > self.max_bytes:  # too big even alone
            self._drop(now, chunk, n)
        else:
            self._events.append((now, chunk, n))
            self._events_bytes += len(chunk)

    def _drop(self, arrival: int, chunk: bytes, n: int) -> None:
        """Forget an EVENTS chunk that arrived at ``arrival``, keeping what it describes that is still alive."""
        codes, _, gs = event_column_views(chunk_payload(chunk))  # no copy of the columns, holding the GIL
        self._alive.absorb(codes, gs)
        self._alive_bytes = self._alive.count * EVENT_BYTES
        self._window_start_ns = arrival
        self.chunks_dropped += 1
        self.events_dropped += n

    def _add_definitions(self, chunk: bytes) -> None:
        self._definitions.append(chunk)
        self._definitions_bytes += len(chunk)
        if len(self._definitions) > MERGE_DEFINITIONS_AFTER:
            self._definitions = _merged(self._definitions, self._metadata)
            self._definitions_bytes = sum(map(len, self._definitions))


def _merged(definitions: list[bytes], metadata: dict[str, Any] | None) -> list[bytes]:
    """STRINGS and STACKS chunks merged into one of each (sequence numbers are set at snapshot time)."""
    strings: list[list[int | str]] = []  # [id, text]
    stacks: dict[str, list[list[Any]]] = {"frames": [], "stacks": []}  # [id, function, file, line]; [id, [frame, ...]]
    for chunk in definitions:
        value = json.loads(chunk_payload(chunk))
        if chunk[4] == ChunkKind.STRINGS:
            strings += value
        else:
            stacks["frames"] += value["frames"]
            stacks["stacks"] += value["stacks"]
    level = (metadata or {}).get("options", {}).get("compression", 1)
    merged = [json_chunk(ChunkKind.STRINGS, 0, strings, level)] if strings else []
    if stacks["frames"] or stacks["stacks"]:
        merged.append(json_chunk(ChunkKind.STACKS, 0, stacks, level))
    return merged


def _renumbered(chunks: list[bytes], seq: Callable[[], int]) -> list[bytes | memoryview]:
    """Each chunk as its renumbered header and its unchanged payload."""
    out: list[bytes | memoryview] = []
    for chunk in chunks:
        out += (renumbered_header(chunk, seq()), memoryview(chunk)[CHUNK_HEADER.size :])
    return out


def _write_all(out: Sink, data: bytes | memoryview) -> int:
    view = memoryview(data)
    while view:
        written = out.write(view)
        if written is None:
            raise OSError("the snapshot destination is non-blocking and not ready")
        view = view[written:]
    return len(data)
