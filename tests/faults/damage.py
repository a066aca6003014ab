"""Damaged traces, made from intact ones by a seeded random generator: what a hostile world does to files.

Each kind of damage is one function ``(chunks, rng) -> bytes`` over the
trace's chunks (the file header excluded). ``damaged(original, seed, case)``
picks one kind and its details from ``seed`` and ``case`` alone, so any
failure can be made again from those two numbers.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

from exectracer.format.chunks import (
    CHUNK_HEADER,
    ChunkKind,
    chunk_payload,
    file_header,
    renumbered_header,
    split_chunks,
)
from exectracer.format.encoder import events_chunk, json_chunk
from exectracer.format.events import Kind

Chunks = list[bytes]
Damage = Callable[[Chunks, random.Random], bytes]

KINDS = [int(k) for k in Kind]


def chunks_of(trace: bytes) -> Chunks:
    """The chunks of an intact trace this process made, in file order."""
    return [bytes(chunk) for _, chunk in split_chunks(trace)]


def join(chunks: Chunks) -> bytes:
    return file_header() + b"".join(chunks)


def _kind(chunk: bytes) -> int:
    return chunk[4]


def _seq(chunk: bytes) -> int:
    return int.from_bytes(chunk[8:12], "little")


def _pick(chunks: Chunks, rng: random.Random, kind: int | None = None) -> int:
    """The index of a random chunk (of ``kind``, if there is one)."""
    fitting = [i for i, c in enumerate(chunks) if kind is None or _kind(c) == kind]
    return rng.choice(fitting or range(len(chunks)))


def flip_bits(chunks: Chunks, rng: random.Random) -> bytes:
    data = bytearray(join(chunks))
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(chunks: Chunks, rng: random.Random) -> bytes:
    data = join(chunks)
    return data[: rng.randrange(len(data) + 1)]


def duplicate_chunk(chunks: Chunks, rng: random.Random) -> bytes:
    """A chunk written twice: right after itself, at the end, or the whole trace appended to itself."""
    how = rng.randrange(3)
    if how == 2:
        return join(chunks + chunks)
    i = _pick(chunks, rng, ChunkKind.EVENTS)
    out = list(chunks)
    out.insert(i + 1 if how == 0 else len(out), chunks[i])
    return join(out)


def duplicate_with_new_seq(chunks: Chunks, rng: random.Random) -> bytes:
    """An EVENTS chunk repeated under the next free sequence number: valid, and indistinguishable by seq."""
    i = _pick(chunks, rng, ChunkKind.EVENTS)
    seq = max(_seq(c) for c in chunks) + 1
    copy = renumbered_header(chunks[i], seq) + chunks[i][CHUNK_HEADER.size :]
    return join([*chunks, copy])


def reorder(chunks: Chunks, rng: random.Random) -> bytes:
    out = list(chunks)
    if rng.random() < 0.5 and len(out) > 1:
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    else:
        rng.shuffle(out)
    return join(out)


def remove_chunks(chunks: Chunks, rng: random.Random) -> bytes:
    keep = [c for c in chunks if rng.random() > 0.3] or chunks[:1]
    return join(keep)


def _event_rows(chunk: bytes) -> list[int]:
    """The flat ``[code, ts, g, ...]`` rows of an EVENTS chunk."""
    raw = chunk_payload(chunk)
    n = len(raw) // 24
    columns = [int.from_bytes(raw[8 * i : 8 * i + 8], "little", signed=True) for i in range(3 * n)]
    return [v for row in zip(columns[:n], columns[n : 2 * n], columns[2 * n :], strict=True) for v in row]


def _any_int(rng: random.Random) -> int:
    return rng.choice([0, 1, -1, rng.randrange(-(1 << 63), 1 << 63), (1 << 63) - 1, -(1 << 63), rng.randrange(64)])


def scramble_events(chunks: Chunks, rng: random.Random) -> bytes:
    """An EVENTS chunk rewritten (valid crc) with events no recorder makes: the analyses must take any sequence."""
    i = _pick(chunks, rng, ChunkKind.EVENTS)
    rows = _event_rows(chunks[i])
    goroutines = sorted({rows[k + 2] for k in range(0, len(rows), 3)}) or [1]
    for k in range(0, len(rows), 3):
        if rng.random() < 0.3:
            kind = rng.choice(KINDS)
            arg = _any_int(rng) if rng.random() < 0.3 else rng.randrange(-4, 64)
            rows[k] = kind | ((arg << 8) & ((1 << 64) - 1))
            rows[k] = rows[k] - (1 << 64) if rows[k] >= 1 << 63 else rows[k]
        if rng.random() < 0.1:
            rows[k + 1] = _any_int(rng) if rng.random() < 0.2 else rows[k + 1] + rng.randrange(-(10**9), 10**9)
        if rng.random() < 0.1:
            rows[k + 2] = rng.choice(goroutines) if rng.random() < 0.7 else _any_int(rng)
    extra = [rng.choice(KINDS) | (rng.randrange(64) << 8), rng.randrange(1 << 40), rng.choice(goroutines)]
    rows.extend(extra * rng.randrange(3))
    out = list(chunks)
    out[i] = events_chunk(_seq(chunks[i]), rows, 1)
    return join(out)


def out_of_range_json(chunks: Chunks, rng: random.Random) -> bytes:
    """A METADATA, END, STRINGS or STACKS chunk, valid, saying what no recorder says."""
    out = list(chunks)
    kind = rng.choice([ChunkKind.METADATA, ChunkKind.END, ChunkKind.STRINGS, ChunkKind.STACKS])
    i = _pick(chunks, rng, kind)
    huge = rng.choice([-(1 << 63), 1 << 64, -1, "x", None, 1.5])
    if kind in (ChunkKind.METADATA, ChunkKind.END):
        value: object = {rng.choice(["start_ns", "stop_ns", "start_wall_ns", "pid", "events_lost"]): huge}
    elif kind == ChunkKind.STRINGS:
        value = [[huge, "text"], [1, huge]]
    else:
        value = {"frames": [[huge, 1, 1, huge]], "stacks": [[huge, [huge, 1]]]}
    out[i] = json_chunk(kind, _seq(chunks[i]), value)
    return join(out)


def inflate_bomb(chunks: Chunks, rng: random.Random) -> bytes:
    """Valid EVENTS chunks of zeros that each inflate about a thousand times."""
    size = rng.choice([24 << 10, 24 << 16, 48 << 20])
    zeros = zlib.compress(bytes(size), 9)
    head = CHUNK_HEADER.pack(b"XTCK", ChunkKind.EVENTS, 1, 0, 0, len(zeros), size, 0)[:20]
    bombs = []
    for n in range(rng.randint(1, 40)):
        seq_head = bytearray(head)
        seq_head[8:12] = (1000 + n).to_bytes(4, "little")
        bombs.append(bytes(seq_head) + zlib.crc32(zeros, zlib.crc32(bytes(seq_head))).to_bytes(4, "little") + zeros)
    return join(chunks + bombs)


DAMAGES: dict[str, Damage] = {
    "flip bits": flip_bits,
    "truncate": truncate,
    "duplicate chunk": duplicate_chunk,
    "duplicate with a new seq": duplicate_with_new_seq,
    "reorder": reorder,
    "remove chunks": remove_chunks,
    "scramble events": scramble_events,
    "out-of-range JSON": out_of_range_json,
    "inflate bomb": inflate_bomb,
}


def damaged(original: bytes, seed: int, case: int) -> tuple[str, bytes]:
    """Case ``case`` of campaign ``seed``: the damage's name and the damaged file."""
    rng = random.Random(f"{seed}:{case}")
    name = rng.choice(sorted(DAMAGES))
    return name, DAMAGES[name](chunks_of(original), rng)
