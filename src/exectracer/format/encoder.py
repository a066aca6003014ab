"""Turn recorded events and definitions into chunk bytes (standard library only)."""

from __future__ import annotations

import json
import sys
from array import array
from typing import TypeAlias

from .chunks import ChunkKind, make_chunk
from .planes import COLUMNS as COLUMNS  # the payload's layout: defined with its byte planes
from .planes import EVENT_BYTES as EVENT_BYTES

Int64Column: TypeAlias = "array[int] | memoryview"  # 64-bit integers, signed or not: an array, or a view cast to "q"


def encode_event_rows(rows: array[int] | list[int]) -> bytes:
    """Column-major layout of flat rows ``[code, ts, g, code, ts, g, ...]``.

    The payload holds every row's ``code``, then every ``ts``, then every
    ``g``, each a little-endian int64. Columns of similar values compress far
    better than interleaved rows, and the transposition runs in C.
    """
    if not isinstance(rows, array) or rows.itemsize != 8:
        rows = array("q", rows)
    if len(rows) % COLUMNS:
        raise ValueError(f"event rows hold {COLUMNS} integers each, not {len(rows)} in all")
    return encode_event_columns(rows[0::COLUMNS], rows[1::COLUMNS], rows[2::COLUMNS])


def encode_event_columns(codes: Int64Column, ts: Int64Column, gs: Int64Column) -> bytes:
    """The EVENTS payload of three equally long columns of 64-bit integers (arrays or memoryviews of them)."""
    columns: tuple[Int64Column, ...] = (codes, ts, gs)
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        columns = tuple(_swapped(column) for column in columns)
    return b"".join(columns)


def _swapped(column: Int64Column) -> array[int]:  # pragma: no cover - big-endian hosts
    out = array("q", bytes(column))
    out.byteswap()
    return out


def events_chunk(seq: int, rows: array[int] | list[int], level: int = 1) -> bytes:
    """An EVENTS chunk for flat rows (a list of ints, or an array of 64-bit integers, signed or not)."""
    return make_chunk(ChunkKind.EVENTS, seq, encode_event_rows(rows), level)


def json_chunk(kind: ChunkKind, seq: int, value: object, level: int = 1) -> bytes:
    """A chunk holding ``value`` as compact UTF-8 JSON."""
    return make_chunk(kind, seq, json_payload(value), level)


def json_payload(value: object) -> bytes:
    """The payload of a JSON chunk holding ``value``, before compression."""
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def event_column_views(raw: bytes) -> tuple[Int64Column, Int64Column, Int64Column]:
    """The ``code``, ``ts`` and ``g`` columns of an EVENTS payload as views of it, not copies
    (copies on a big-endian host, where the bytes must be swapped)."""
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        return decode_event_rows(raw)
    values = memoryview(raw).cast("q")
    n = len(values) // COLUMNS
    return values[:n], values[n : 2 * n], values[2 * n :]


def decode_event_rows(raw: bytes) -> tuple[array[int], array[int], array[int]]:
    """The ``code``, ``ts`` and ``g`` columns of an EVENTS payload: the inverse of :func:`encode_event_rows`."""
    values = array("q")
    values.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        values.byteswap()
    n = len(values) // COLUMNS
    return values[:n], values[n : 2 * n], values[2 * n :]
