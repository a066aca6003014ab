"""The container: a file header, then a stream of self-checking chunks.

Layout (all integers little-endian)::

    file header  = MAGIC (8 bytes) | version u16 | flags u16
    chunk        = header (24 bytes) | payload (length bytes)
    chunk header = b"XTCK" | kind u8 | codec u8 | reserved u16
                 | seq u32 | length u32 | raw_length u32 | crc32 u32

``crc32`` covers the first 20 header bytes and the payload, so a damaged
length is caught as surely as a damaged payload. ``raw_length`` is the
payload's size once decoded; readers refuse sizes over
``MAX_CHUNK_BYTES`` before allocating anything.

``codec`` says how the payload is stored: as it is (``RAW``), compressed by
zlib (``ZLIB``), or, for an EVENTS chunk only, its byte planes (``planes``)
compressed by zlib (``ZLIB_PLANES``, what the C extension's writer makes).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable, Iterator

from . import planes

MAGIC = b"\x89XTRACE\n"
FORMAT_VERSION = 1
MERGED_VERSION = 2  # a file of several processes' recordings, one section each (``exectracer merge``)
FILE_HEADER = struct.Struct("<8sHH")
CHUNK_MAGIC = b"XTCK"
CHUNK_HEADER = struct.Struct("<4sBBHIIII")
MAX_CHUNK_BYTES = 64 << 20


class ChunkKind(enum.IntEnum):
    """What a chunk's payload holds."""

    METADATA = 1  # JSON object: the trace's metadata
    STRINGS = 2  # JSON [[id, str], ...]: new interned strings
    STACKS = 3  # JSON {"frames": [[id, func, file, line]], "stacks": [[id, [frame, ...]]]}
    EVENTS = 4  # column-major int64 rows (code, ts, g), see encoder.encode_event_rows
    END = 5  # JSON object: written by a clean stop (totals)


class Codec(enum.IntEnum):
    """How a payload is stored."""

    RAW = 0
    ZLIB = 1
    ZLIB_PLANES = 2  # an EVENTS payload's byte planes (see ``planes``), compressed by zlib


def file_header(version: int = FORMAT_VERSION) -> bytes:
    """The bytes every trace file starts with (``version`` :data:`MERGED_VERSION` for a merged file)."""
    return FILE_HEADER.pack(MAGIC, version, 0)


def make_chunk(
    kind: ChunkKind,
    seq: int,
    raw: bytes,
    level: int = 1,
    compress: Callable[[bytes, int], bytes] = zlib.compress,
    codec: Codec = Codec.ZLIB,
) -> bytes:
    """Frame ``raw`` as a chunk, compressing it with zlib at ``level`` (level 0: stored as it is).

    ``compress`` does what ``zlib.compress`` does to the payload as ``codec``
    stores it: for ``ZLIB_PLANES``, to the byte planes of ``raw`` (an EVENTS
    payload).
    """
    if codec == Codec.ZLIB_PLANES and kind != ChunkKind.EVENTS:
        raise ValueError("only an EVENTS chunk can be stored as byte planes")
    payload = compress(raw, level) if level else raw
    codec = codec if level else Codec.RAW
    head = CHUNK_HEADER.pack(CHUNK_MAGIC, kind, codec, 0, seq & 0xFFFFFFFF, len(payload), len(raw), 0)
    crc = zlib.crc32(payload, zlib.crc32(head[:20]))
    return head[:20] + crc.to_bytes(4, "little") + payload


def split_chunks(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """The ``(kind, chunk)`` pairs in ``data``: whole chunks as the writer makes them, after an optional file header.

    For data this process made, not for reading files (the decoder checks
    everything; this trusts the lengths).
    """
    view = memoryview(data)
    offset = FILE_HEADER.size if view[: len(MAGIC)] == MAGIC else 0
    while offset < len(view):
        _, kind, _, _, _, length, _, _ = CHUNK_HEADER.unpack_from(view, offset)
        end = offset + CHUNK_HEADER.size + length
        yield kind, view[offset:end]
        offset = end


def renumbered_header(chunk: bytes | memoryview, seq: int) -> bytes:
    """The header of ``chunk`` with sequence number ``seq`` and its crc32 recomputed.

    The payload is unchanged: write this header, then ``chunk[24:]``.
    """
    head = bytearray(chunk[:20])
    struct.pack_into("<I", head, 8, seq & 0xFFFFFFFF)
    crc = zlib.crc32(chunk[CHUNK_HEADER.size :], zlib.crc32(head))
    return bytes(head) + crc.to_bytes(4, "little")


def chunk_payload(chunk: bytes | memoryview) -> bytes:
    """The decoded payload of a chunk this process made."""
    _, _, codec, _, _, _, raw_length, _ = CHUNK_HEADER.unpack_from(chunk)
    payload = memoryview(chunk)[CHUNK_HEADER.size :]
    if codec == Codec.RAW:
        return bytes(payload)
    # room for the whole payload and a byte more: zlib lets go of the GIL once, not once per block of a growing buffer
    raw = zlib.decompress(payload, zlib.MAX_WBITS, raw_length + 1)
    return planes.from_planes(raw) if codec == Codec.ZLIB_PLANES else raw
