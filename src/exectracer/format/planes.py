"""An EVENTS payload as byte planes: what the ``ZLIB_PLANES`` codec compresses.

The payload is three columns of ``n`` little-endian 64-bit values (code,
time, goroutine: see ``encoder``). The time column becomes differences (its
first value, then each value minus the one before, modulo 2**64); then each
column is split into 8 planes of ``n`` bytes: byte 0 of every value, then
byte 1, and so on. Times microseconds apart and small ids leave most planes
nearly all zeros, which zlib compresses faster and smaller than the values
themselves (about 40 % less CPU and half the bytes on recorded traces).

``to_planes`` and ``from_planes`` are the C module's (``format/csrc``, built
with the recorder's extension; the writer's ``compress_whole`` transforms in
the same call), else the standard library's versions here, which are the
reference: tests check that the C ones give the same bytes.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable

COLUMNS = 3  # code, ts, g: an EVENTS payload's columns (encoder.py writes them)
VALUE_BYTES = 8
EVENT_BYTES = COLUMNS * VALUE_BYTES  # an event's size in an EVENTS payload, before compression
TIME_COLUMN = 1
MASK64 = (1 << 64) - 1


def events_in(size: int) -> int:
    """The events in a payload of ``size`` bytes; ValueError if it is not a whole number of them."""
    if size % EVENT_BYTES:
        raise ValueError(f"an EVENTS payload of {size} bytes is not a whole number of {EVENT_BYTES}-byte events")
    return size // EVENT_BYTES


def python_to_planes(raw: bytes | memoryview) -> bytes:
    """The byte planes of the EVENTS payload ``raw``."""
    n = events_in(len(raw))
    columns = [_column(raw, c, n) for c in range(COLUMNS)]
    times = _values(columns[TIME_COLUMN])
    columns[TIME_COLUMN] = _little_endian(
        array("Q", [(value - before) & MASK64 for before, value in itertools.pairwise(itertools.chain((0,), times))])
    )
    return b"".join(column[b::VALUE_BYTES] for column in columns for b in range(VALUE_BYTES))


def python_from_planes(planes: bytes | memoryview) -> bytes:
    """The EVENTS payload whose byte planes are ``planes``: the inverse of :func:`python_to_planes`."""
    n = events_in(len(planes))
    out = bytearray(len(planes))
    size = n * VALUE_BYTES
    for c in range(COLUMNS):
        for b in range(VALUE_BYTES):
            start = (c * VALUE_BYTES + b) * n
            out[c * size + b : (c + 1) * size : VALUE_BYTES] = planes[start : start + n]
    start = TIME_COLUMN * size
    times = _column(out, TIME_COLUMN, n)
    restored = array("Q", (total & MASK64 for total in itertools.accumulate(_values(times))))
    out[start : start + size] = _little_endian(restored)
    return bytes(out)


def _column(payload: bytes | bytearray | memoryview, c: int, n: int) -> bytes:
    return bytes(payload[c * n * VALUE_BYTES : (c + 1) * n * VALUE_BYTES])


def _values(column: bytes) -> array[int]:
    values = array("Q", column)
    if values.itemsize != VALUE_BYTES:  # pragma: no cover - no such platform here
        raise RuntimeError("array('Q') is not 64-bit here")
    if _BIG_ENDIAN:  # pragma: no cover - big-endian hosts
        values.byteswap()
    return values


def _little_endian(values: array[int]) -> bytes:
    if _BIG_ENDIAN:  # pragma: no cover - big-endian hosts
        values = array("Q", values)
        values.byteswap()
    return values.tobytes()


_BIG_ENDIAN = array("H", [1]).tobytes() == b"\x00\x01"

to_planes: Callable[[bytes | memoryview], bytes]
from_planes: Callable[[bytes | memoryview], bytes]
try:
    from . import _planes

    to_planes, from_planes = _planes.to_planes, _planes.from_planes
except ImportError:  # not built (another Python, or no compiler): the same, slower
    to_planes, from_planes = python_to_planes, python_from_planes
