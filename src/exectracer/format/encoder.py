"""Turn recorded events and definitions into chunk bytes (standard library only)."""

from __future__ import annotations

import json
from array import array

from .chunks import ChunkKind, make_chunk

COLUMNS = 3  # code, ts, g
ROW_BYTES = COLUMNS * 8


def encode_event_rows(flat: list[int]) -> bytes:
    """Byte-planar layout of a flat ``[code, ts, g, code, ts, g, ...]`` list.

    The rows become little-endian int64s; then byte ``b`` of column ``c`` of
    every row is stored together (plane ``c * 8 + b``). High bytes are
    mostly equal, so the planes compress far better than the rows.
    """
    rows = array("q", flat)
    if rows.itemsize != 8:  # pragma: no cover - every supported platform has 8-byte long long
        raise RuntimeError("int64 arrays are required")
    raw = rows.tobytes()
    n = len(rows) // COLUMNS
    if n == 0:
        return b""
    if array("H", [1]).tobytes() != b"\x01\x00":  # pragma: no cover - big-endian hosts
        rows.byteswap()
        raw = rows.tobytes()
    return memoryview(raw).cast("B", [n, ROW_BYTES]).tobytes("F")


def events_chunk(seq: int, flat: list[int], level: int = 1) -> bytes:
    """An EVENTS chunk for a flat event list."""
    return make_chunk(ChunkKind.EVENTS, seq, encode_event_rows(flat), level)


def json_chunk(kind: ChunkKind, seq: int, value: object, level: int = 1) -> bytes:
    """A chunk holding ``value`` as compact UTF-8 JSON."""
    raw = json.dumps(value, separators=(",", ":"), ).encode("ascii")
    return make_chunk(kind, seq, raw, level)
