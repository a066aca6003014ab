"""Turn recorded events and definitions into chunk bytes (standard library only)."""

from __future__ import annotations

import json
import sys
from array import array

from .chunks import ChunkKind, make_chunk

COLUMNS = 3  # code, ts, g


def encode_event_rows(flat: list[int]) -> bytes:
    """Column-major layout of a flat ``[code, ts, g, code, ts, g, ...]`` list.

    The payload holds every row's ``code``, then every ``ts``, then every
    ``g``, each a little-endian int64. Columns of similar values compress far
    better than interleaved rows, and the transposition runs in C.
    """
    rows = array("q", flat)
    n = len(rows) // COLUMNS
    if n == 0:
        return b""
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        rows.byteswap()
    return memoryview(rows).cast("B").cast("q", [n, COLUMNS]).tobytes("F")


def events_chunk(seq: int, flat: list[int], level: int = 1) -> bytes:
    """An EVENTS chunk for a flat event list."""
    return make_chunk(ChunkKind.EVENTS, seq, encode_event_rows(flat), level)


def json_chunk(kind: ChunkKind, seq: int, value: object, level: int = 1) -> bytes:
    """A chunk holding ``value`` as compact UTF-8 JSON."""
    raw = json.dumps(value, separators=(",", ":"), ).encode("ascii")
    return make_chunk(kind, seq, raw, level)
