"""Protocol buffers written a column at a time: many messages of one shape encoded with NumPy, no loop per message.

A *row* is a run of parts, the same for every row: constant bytes,
varints, and bytes chosen per row. Each varint takes the same number of
bytes in every row of a block (the widest value's), padded with
continuation bytes as protobuf allows (Perfetto's own writer pads the
lengths of nested messages the same way), so every row has one length
and one layout: :func:`encode` fills a template of the row repeated ``n``
times, then stores each varying part of all rows at once, as 1, 2, 4 or
8 byte integers at a stride of the row's length.

The few messages written once (descriptors, interned strings) use
:func:`field` and :func:`message`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

VARINT, FIXED64, BYTES = 0, 1, 2
MAX_WIDTH = 8  # the most bytes a varying part takes (a varint of up to 56 bits)
MAX_VALUE = (1 << 56) - 1
MAX_STRING = (1 << 14) - 1
_LIMITS = [1 << (7 * k) for k in range(1, 10)]  # a varint of k + 1 bytes is below the k-th


def varint(value: int) -> bytes:
    """One varint (a negative value as its 64 bits, in ten bytes)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire: int) -> bytes:
    """A field's key."""
    return varint(number << 3 | wire)


def field(number: int, value: int | str | bytes) -> bytes:
    """One field: an int as a varint, a string or bytes length-delimited."""
    if isinstance(value, int):
        return tag(number, VARINT) + varint(value)
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return tag(number, BYTES) + varint(len(data)) + data


def message(number: int, *fields: bytes) -> bytes:
    """A nested message of already encoded ``fields``."""
    return field(number, b"".join(fields))


def varint_width(values: NDArray[np.int64] | int) -> int:
    """The bytes the largest of ``values`` (not negative) takes as a varint."""
    top = int(np.max(values)) if np.size(values) else 0
    return 1 + sum(top >= limit for limit in _LIMITS)


def padded(values: NDArray[np.int64], width: int) -> NDArray[np.uint64]:
    """Each value as a varint of exactly ``width`` bytes (at most 8), little-endian in a 64-bit word."""
    v = np.asarray(values).astype(np.uint64)
    word = v & np.uint64(0x7F)
    part = np.empty_like(v)
    for k in range(1, width):
        np.right_shift(v, np.uint64(7 * k), out=part)
        part &= np.uint64(0x7F)
        part <<= np.uint64(8 * k)
        word |= part
    word |= np.uint64(sum(0x80 << (8 * k) for k in range(width - 1)))  # every byte but the last continues
    return word


def padded_bytes(value: int, width: int) -> bytes:
    """One value as a varint of exactly ``width`` bytes."""
    return bytes((value >> (7 * k)) & 0x7F | (0x80 if k < width - 1 else 0) for k in range(width))


@dataclasses.dataclass
class Const:
    """The same bytes in every row."""

    data: bytes

    @property
    def width(self) -> int:
        return len(self.data)


@dataclasses.dataclass
class Raw:
    """``width`` bytes per row (at most 8), little-endian in ``words``."""

    words: NDArray[np.uint64]
    width: int


@dataclasses.dataclass
class Msg:
    """A length-delimited field ``number`` made of ``parts``."""

    number: int
    parts: Sequence[Part]

    @property
    def width(self) -> int:
        inner = _width(self.parts)
        return len(tag(self.number, BYTES)) + len(varint(inner)) + inner


Part = Const | Raw | Msg


def var(number: int, values: NDArray[np.int64] | int) -> list[Const | Raw]:
    """A varint field, as wide in every row as the largest value needs.

    Values are taken between 0 and :data:`MAX_VALUE` (2^56 - 1: over two
    years in ns); only a damaged trace holds others."""
    key = Const(tag(number, VARINT))
    if isinstance(values, int):
        return [Const(key.data + varint(values))]
    values = np.clip(values, 0, MAX_VALUE)
    width = varint_width(values)
    return [key, Raw(padded(values, width), width)]


def choice(table: Sequence[bytes], index: NDArray[np.intp]) -> Raw:
    """One of ``table``'s entries (all of one length, at most 8) per row."""
    width = len(table[0])
    words = np.array([int.from_bytes(entry, "little") for entry in table], dtype=np.uint64)
    return Raw(words[index], width)


def encode(parts: Sequence[Part], n: int) -> NDArray[np.uint8]:
    """``n`` rows of ``parts``, one after the other."""
    flat = _flatten(parts)
    size = sum(p.width for p in flat)
    template = b"".join(p.data if isinstance(p, Const) else bytes(p.width) for p in flat)
    out = np.empty(n * size + MAX_WIDTH, dtype=np.uint8)
    rows = out[: n * size].reshape(n, size)
    rows[:] = np.frombuffer(template, dtype=np.uint8)
    at = 0
    for p in flat:
        if isinstance(p, Raw):
            _store(out, n, size, at, p.words, p.width)
        at += p.width
    return out[: n * size]


def encode_strings(prefix: Sequence[Const | Raw], number: int, strings: list[bytes], wrap: Sequence[int]) -> bytes:
    """Rows of ``prefix``, then field ``number`` holding each row's string, inside the length-delimited fields
    ``wrap`` (outermost first): strings of any length, each row as long as its string needs.

    A string takes at most 16,383 bytes (its length a padded 2-byte varint; longer ones are cut), a row at
    most 2 MiB (the wrappers' lengths padded to 3 bytes).
    """
    n = len(strings)
    if n == 0:
        return b""
    strings = [b[:MAX_STRING] for b in strings]
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    parts: list[Const | Raw] = [*prefix, Const(tag(number, BYTES)), Raw(padded(lengths, 2), 2)]
    inner = sum(p.width for p in parts) + lengths
    for outer in reversed(wrap):
        key = tag(outer, BYTES)
        parts = [Const(key), Raw(padded(inner, 3), 3), *parts]
        inner = inner + len(key) + 3
    fixed = encode(parts, n)
    width = len(fixed) // n
    starts = np.cumsum(inner) - inner  # each row's first byte in the output
    out = np.empty(int(inner.sum()), dtype=np.uint8)
    out[(starts[:, None] + np.arange(width)).ravel()] = fixed
    blob = np.frombuffer(b"".join(strings), dtype=np.uint8)
    row = np.repeat(np.arange(n), lengths)
    out[starts[row] + width + np.arange(len(blob)) - (np.cumsum(lengths) - lengths)[row]] = blob
    return out.tobytes()


def _width(parts: Sequence[Part]) -> int:
    return sum(p.width for p in parts)


def _flatten(parts: Sequence[Part]) -> list[Const | Raw]:
    out: list[Const | Raw] = []
    for p in parts:
        if isinstance(p, Msg):
            out.append(Const(tag(p.number, BYTES) + varint(_width(p.parts))))
            out.extend(_flatten(p.parts))
        else:
            out.append(p)
    return out


def _store(out: NDArray[np.uint8], n: int, stride: int, offset: int, words: NDArray[np.uint64], width: int) -> None:
    """The low ``width`` bytes of each word at ``offset`` in each row: 8, 4, 2 and 1 byte stores, strided."""
    shift = 0
    for size, dtype in ((8, "<u8"), (4, "<u4"), (2, "<u2"), (1, "u1")):
        if width - shift >= size:
            view = np.ndarray((n,), dtype=dtype, buffer=out, offset=offset + shift, strides=(stride,))
            view[:] = words >> np.uint64(8 * shift) if shift else words
            shift += size
