"""Read the chunked trace format: validate, recover from damage, decode payloads.

The reader never trusts a size it has not checked: a chunk header must pass
its crc32 before anything it says is used, sizes over ``MAX_CHUNK_BYTES``
are refused before allocating, and zlib output is capped at the declared
``raw_length``; the declared sizes of all chunks together may not exceed
:func:`inflate_budget` (a file of valid chunks that each inflate to the
limit would otherwise take memory without bound). After a damaged chunk the reader resynchronises on the next
``XTCK`` whose header and crc validate; a file that ends inside a chunk is a
truncated tail. A chunk whose sequence number an earlier chunk has is a repeat
(a file appended to itself, a chunk copied): it is dropped and reported.

A merged file (version :data:`MERGED_VERSION`) holds several processes'
recordings, one section each, every section starting with its METADATA
chunk: :func:`read_all` decodes one :class:`Decoded` per section.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import json
import mmap
import os
import select
import stat
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

from .chunks import (
    CHUNK_HEADER,
    CHUNK_MAGIC,
    FILE_HEADER,
    FORMAT_VERSION,
    MAGIC,
    MAX_CHUNK_BYTES,
    MERGED_VERSION,
    ChunkKind,
    Codec,
)
from .encoder import COLUMNS, EVENT_BYTES
from .planes import from_planes

if TYPE_CHECKING:  # checked as zlib, whose API it has (isal's stub declares its ``error`` an instance, not a class)
    import zlib as fast_zlib
else:
    try:  # ISA-L: zlib's API, inflating twice as fast and computing crc32 eight times as fast
        from isal import isal_zlib as fast_zlib
    except ImportError:  # a platform without its wheels
        fast_zlib = zlib

HEADER_BYTES = CHUNK_HEADER.size
ROW_BYTES = COLUMNS * 8  # one event: code, ts, g as int64
MAX_ZLIB_RATIO = 1032  # deflate never expands a byte of input to more than this
DECODE_THREADS = 4  # EVENTS chunks inflated at once
SORT_CHECK_ROWS = 1 << 16
MERGE_BUDGET = 4  # merging sorted chunks may move up to a quarter of the rows; more, and all are sorted at once
RESYNC_BUDGET = 8  # crc bytes spent checking resync candidates, per byte of file
_KINDS = frozenset(int(k) for k in ChunkKind)
_CODECS = frozenset(int(c) for c in Codec)

MAX_ID = 1 << 62  # ids, lines and times in JSON payloads are below this: NumPy and pprof compute with them
INFLATE_RATIO = 40  # recorded traces compress 6 to 20 times; a file inflating more is refused (inflate_budget)
INFLATE_FLOOR = 256 << 20  # bytes any trace may inflate to, however small
PIPE_WAIT = 5.0  # seconds a pipe with nothing written to it yet is waited for

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]
Data = bytes | bytearray | mmap.mmap  # a whole file: what decode reads (it has .find)
FrameIds = tuple[int, int, int]  # a frame as a STACKS payload gives it: function and file string ids, line
T = TypeVar("T")
Progress = Callable[[int], None]  # told how many more bytes of the file were decoded


class TraceFormatError(ValueError):
    """The input is not a readable exectracer trace."""


class ChunkError(ValueError):
    """One chunk's payload cannot be decoded."""


class Problem(NamedTuple):
    """Damage found at byte ``offset`` of the file."""

    offset: int
    reason: str

    def __str__(self) -> str:
        return f"at byte {self.offset}: {self.reason}"


class Chunk(NamedTuple):
    """A chunk whose header and crc validated; its payload follows the header."""

    offset: int
    kind: int
    codec: int
    seq: int
    length: int
    raw_length: int

    @property
    def end(self) -> int:
        """The offset just past the payload."""
        return self.offset + HEADER_BYTES + self.length


class Frame(NamedTuple):
    """One frame of a stack: ``module.qualname``, file and line."""

    function: str
    file: str
    line: int


UNKNOWN_FRAME = Frame("?", "?", 0)


@dataclasses.dataclass
class Scan:
    """The valid chunks of a file and the damage between them."""

    version: int
    chunks: list[Chunk]
    problems: list[Problem]
    truncated_bytes: int = 0


@dataclasses.dataclass
class Decoded:
    """Everything a trace file holds, decoded; events in time order."""

    version: int
    metadata: dict[str, Any]
    summary: dict[str, Any] | None
    strings: dict[int, str]
    stacks: dict[int, list[Frame]]
    code: NDArray[np.int64]
    ts: NDArray[np.int64]
    g: NDArray[np.int64]
    problems: list[Problem]
    chunks_skipped: int
    truncated_bytes: int
    seq_gaps: list[tuple[int, int]]


# -- scanning ----------------------------------------------------------------


def read_version(data: Data) -> int:
    """Check the file header and return its format version."""
    size = len(data)
    if size == 0:
        raise TraceFormatError("empty file: not an exectracer trace")
    head = bytes(data[: FILE_HEADER.size])
    if not MAGIC.startswith(head[: len(MAGIC)]):
        raise TraceFormatError(f"not an exectracer trace (it starts with {head[:8]!r}, expected {MAGIC!r})")
    if size < FILE_HEADER.size:
        raise TraceFormatError(f"truncated file header ({size} of {FILE_HEADER.size} bytes): nothing readable")
    version: int = FILE_HEADER.unpack(head)[1]  # after the magic; before the flags
    if version not in (FORMAT_VERSION, MERGED_VERSION):
        hint = "written by a newer exectracer; upgrade to read it" if version > MERGED_VERSION else "not supported"
        raise TraceFormatError(
            f"unknown trace format version {version} (this reader knows versions {FORMAT_VERSION} and "
            f"{MERGED_VERSION}): {hint}"
        )
    return version


def check_header(view: memoryview, offset: int) -> Chunk | str:
    """The chunk whose header starts at ``offset``, or why the header is invalid.

    Only fields that need no payload are checked here; :meth:`Scanner.read` does the rest.
    """
    magic, kind, codec, reserved, seq, length, raw_length, _crc = CHUNK_HEADER.unpack_from(view, offset)
    if magic != CHUNK_MAGIC:
        return "bad chunk magic"
    if kind not in _KINDS or codec not in _CODECS or reserved:
        return f"bad chunk header (kind {kind}, codec {codec})"
    if length > MAX_CHUNK_BYTES or raw_length > MAX_CHUNK_BYTES:
        return f"chunk size over the {MAX_CHUNK_BYTES}-byte limit (length {length}, raw_length {raw_length})"
    if codec == Codec.RAW and length != raw_length:
        return f"impossible lengths for an uncompressed chunk ({length} != {raw_length})"
    if codec != Codec.RAW and raw_length > length * MAX_ZLIB_RATIO + 1024:
        return f"impossible compression ratio ({length} bytes cannot inflate to {raw_length})"
    if codec == Codec.ZLIB_PLANES and (kind != ChunkKind.EVENTS or raw_length % EVENT_BYTES):
        return f"byte planes of {raw_length} bytes in a {_kind_name(kind)} chunk: only whole events are stored so"
    return Chunk(offset, kind, codec, seq, length, raw_length)


def crc_ok(view: memoryview, chunk: Chunk) -> bool:
    """Whether the chunk's crc32 matches its first 20 header bytes and payload."""
    start = chunk.offset
    stored = int.from_bytes(view[start + 20 : start + HEADER_BYTES], "little")
    return fast_zlib.crc32(view[start + HEADER_BYTES : chunk.end], fast_zlib.crc32(view[start : start + 20])) == stored


class Scanner:
    """Walks a file chunk by chunk, resynchronising after damage."""

    def __init__(self, data: Data, view: memoryview) -> None:
        self.data = data
        self.view = view
        self.size = len(view)
        self.budget = RESYNC_BUDGET * self.size + MAX_CHUNK_BYTES

    def run(self, version: int) -> Scan:
        """All valid chunks after the file header, and the problems found."""
        scan = Scan(version, [], [])
        offset = FILE_HEADER.size
        while offset < self.size:
            found = self.read(offset)
            if isinstance(found, Chunk):
                scan.chunks.append(found)
                offset = found.end
                continue
            resume = self.resync(offset + 1)
            if resume is None and found == "torn":
                scan.truncated_bytes = self.size - offset
            elif resume is None:
                scan.problems.append(
                    Problem(offset, f"{found}; no valid chunk follows ({self.size - offset} bytes unreadable)")
                )
            else:
                reason = "chunk runs past the end of the file" if found == "torn" else found
                scan.problems.append(Problem(offset, f"{reason}; skipped {resume - offset} bytes"))
            offset = self.size if resume is None else resume
        return scan

    def read(self, offset: int) -> Chunk | str:
        """The valid chunk at ``offset``, ``"torn"`` if the file ends inside it, or what is wrong."""
        left = self.size - offset
        if left < HEADER_BYTES:
            tail = bytes(self.view[offset : offset + 4])
            return "torn" if CHUNK_MAGIC.startswith(tail) else "bad chunk magic"
        found = check_header(self.view, offset)
        if isinstance(found, str):
            return found
        if found.end > self.size:
            return "torn"
        return (
            found if crc_ok(self.view, found) else f"bad crc32 (chunk seq {found.seq}, kind {_kind_name(found.kind)})"
        )

    def resync(self, start: int) -> int | None:
        """The offset of the next valid chunk at or after ``start``."""
        while self.budget > 0:
            offset = self.data.find(CHUNK_MAGIC, start)
            if offset < 0 or self.size - offset < HEADER_BYTES:
                return None
            found = check_header(self.view, offset)
            if isinstance(found, Chunk) and found.end <= self.size:
                self.budget -= found.length
                if crc_ok(self.view, found):
                    return offset
            start = offset + 1
        return None


def _kind_name(kind: int) -> str:
    return ChunkKind(kind).name if kind in _KINDS else str(kind)


# -- payloads ----------------------------------------------------------------


def payload(view: memoryview, chunk: Chunk) -> bytes:
    """A chunk's decompressed payload, never larger than its ``raw_length``.

    The slice of the file is released on the way out, even if something
    (a sampling profiler, a traceback) keeps this frame alive: a slice still
    exported would stop the memory-mapped file from closing.
    """
    with view[chunk.offset + HEADER_BYTES : chunk.end] as data:
        if chunk.codec == Codec.RAW:
            return bytes(data)
        inflater = fast_zlib.decompressobj()
        try:
            raw = inflater.decompress(data, chunk.raw_length + 1)  # one byte more tells a bomb
        except (zlib.error, fast_zlib.error) as exc:
            raise ChunkError(f"bad zlib data: {exc}") from None
    if len(raw) > chunk.raw_length:
        raise ChunkError(f"payload inflates to more than its raw_length of {chunk.raw_length} bytes; refused")
    if not inflater.eof or len(raw) != chunk.raw_length:
        raise ChunkError(f"payload inflates to {len(raw)} bytes, not its raw_length of {chunk.raw_length}")
    return from_planes(raw) if chunk.codec == Codec.ZLIB_PLANES else raw


def json_payload(raw: bytes, kind: type[T]) -> T:
    """A JSON payload, checked to be a ``kind`` (dict or list)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ChunkError(f"bad JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ChunkError(f"JSON payload is a {type(value).__name__}, not a {kind.__name__}")
    return value


def add_strings(strings: dict[int, str], raw: bytes) -> None:
    """Add a STRINGS payload (``[[id, text], ...]``) to ``strings``."""
    try:
        new = dict(json_payload(raw, list))
    except (TypeError, ValueError) as exc:
        raise ChunkError(f"bad STRINGS payload: {exc}") from None
    if not all(type(sid) is int and 0 <= sid < MAX_ID and type(text) is str for sid, text in new.items()):
        raise ChunkError(f"bad STRINGS payload: ids must be integers from 0 to {MAX_ID - 1} and texts strings")
    strings.update(new)


def add_stacks(frames: dict[int, FrameIds], stacks: dict[int, list[int]], raw: bytes) -> None:
    """Add a STACKS payload's frames and stacks (ids still unresolved)."""
    value = json_payload(raw, dict)
    try:
        # a line of null (unknown, written by recorders before 0 stood for it) is read as 0
        new_frames = {
            fid: (func, file, 0 if line is None else line) for fid, func, file, line in value.get("frames", ())
        }
        new_stacks = {sid: list(ids) for sid, ids in value.get("stacks", ())}
    except (TypeError, ValueError) as exc:
        raise ChunkError(f"bad STACKS payload: {exc}") from None
    numbers = [
        *new_frames,
        *(v for f in new_frames.values() for v in f),
        *new_stacks,
        *(v for ids in new_stacks.values() for v in ids),
    ]
    if not all(type(v) is int and 0 <= v < MAX_ID for v in numbers):
        raise ChunkError(f"bad STACKS payload: ids and lines must be integers from 0 to {MAX_ID - 1}")
    frames.update(new_frames)
    stacks.update(new_stacks)


def _times_in_range(record: dict[str, Any], chunk: Chunk, problems: list[Problem]) -> dict[str, Any]:
    """A METADATA or END record without the times (``*_ns`` fields) that are not integers from 0 to
    ``MAX_ID``: each one left out is a problem, so no reader computes with it."""
    kept = {}
    for key, value in record.items():
        if key.endswith("_ns") and not (type(value) is int and 0 <= value < MAX_ID):
            shown = repr(value)[:40]
            problems.append(Problem(chunk.offset, f"{_kind_name(chunk.kind)} {key} {shown} is out of range: left out"))
            continue
        kept[key] = value
    return kept


def resolve_stacks(
    frames: dict[int, FrameIds], stacks: dict[int, list[int]], strings: dict[int, str]
) -> dict[int, list[Frame]]:
    """Stacks as lists of :class:`Frame`, innermost first; stack 0 is empty."""
    by_id = {
        fid: Frame(strings.get(func, "?"), strings.get(file, "?"), line) for fid, (func, file, line) in frames.items()
    }
    resolved = {sid: [by_id.get(fid, UNKNOWN_FRAME) for fid in ids] for sid, ids in stacks.items()}
    resolved[0] = []
    return resolved


class EventColumns:
    """The ``code``/``ts``/``g`` columns of all EVENTS chunks, decoded in parallel.

    Each chunk owns a slice of preallocated columns (sized from the validated
    ``raw_length`` fields); zlib and NumPy copies release the GIL, so worker
    threads inflate, sort by time and place chunks side by side. Chunks
    overlap in time only a little (an event is written when it is complete,
    a TASK_READY when its step starts), so merging the sorted chunks moves few
    rows.
    """

    def __init__(self, view: memoryview, chunks: list[Chunk]) -> None:
        self.view = view
        self.chunks = chunks
        sizes = [c.raw_length // ROW_BYTES for c in chunks]
        self.starts: list[int] = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).tolist()
        self.columns: list[NDArray[np.int64]] = [np.empty(self.starts[-1], "<i8") for _ in range(COLUMNS)]

    def fill(self, progress: Progress | None = None) -> list[Problem]:
        """Decode every chunk into its slice; return the chunks that could not be."""
        workers = min(DECODE_THREADS, len(self.chunks), os.cpu_count() or 1)
        errors: list[str | None] = []
        with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            results = (pool.map if pool is not None else map)(self._fill_one, range(len(self.chunks)))
            for chunk, error in zip(self.chunks, results, strict=True):
                errors.append(error)
                if progress is not None:
                    progress(HEADER_BYTES + chunk.length)
        failed = [(i, e) for i, e in enumerate(errors) if e is not None]
        if failed:
            keep = np.ones(len(self.columns[0]), dtype=bool)
            for i, _ in failed:
                keep[self.starts[i] : self.starts[i + 1]] = False
            self.columns = [col[keep] for col in self.columns]
            sizes = [self.starts[i + 1] - self.starts[i] for i, error in enumerate(errors) if error is None]
            self.starts = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).tolist()
        return [Problem(self.chunks[i].offset, f"EVENTS chunk seq {self.chunks[i].seq}: {e}") for i, e in failed]

    def _fill_one(self, index: int) -> str | None:
        """Place one column-major payload (``n`` codes, ``n`` ts, ``n`` g, little-endian int64)."""
        try:
            raw = payload(self.view, self.chunks[index])
        except ChunkError as exc:
            return str(exc)
        if len(raw) % ROW_BYTES:
            return f"payload of {len(raw)} bytes is not a whole number of {ROW_BYTES}-byte events"
        source = np.frombuffer(raw, "<i8").reshape(COLUMNS, -1)
        lo, hi = self.starts[index], self.starts[index + 1]
        order = None if _in_order(source[1]) else np.argsort(source[1], kind="stable")
        for dest, column in zip(self.columns, source, strict=True):
            if order is None:
                dest[lo:hi] = column
            else:
                np.take(column, order, out=dest[lo:hi], mode="clip")
        return None

    def sorted_by_time(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """``(code, ts, g)`` as native int64, stably sorted by ``ts``."""
        code, ts, g = (col.astype(np.int64, copy=False) for col in self.columns)
        self.columns = []  # let the unsorted columns go as they are replaced
        if not _merge_sorted_runs((code, ts, g), self.starts):
            order = np.argsort(ts, kind="stable")
            # code and g side by side, then ts into the memory code leaves;
            # "clip": no checks, no buffer (the order is valid)
            with ThreadPoolExecutor(1) as pool:
                g_sorted = pool.submit(np.take, g, order, out=np.empty_like(g), mode="clip")
                code_sorted = np.take(code, order, out=np.empty_like(code), mode="clip")
                ts = np.take(ts, order, out=code, mode="clip")
                code, g = code_sorted, g_sorted.result()
        return code, ts, g


def _merge_sorted_runs(columns: tuple[NDArray[np.int64], ...], starts: list[int]) -> bool:
    """Sort ``columns`` stably by their ``ts`` (the second), given that each run of rows ``starts[i]:starts[i + 1]``
    already is: the rows of each run that belong among the rows before it are merged into them.

    Returns False, the columns partly merged, if that would move more than
    ``1 / MERGE_BUDGET`` of the rows (a full sort then does better): equal
    times are still in the order the file gave them.
    """
    ts = columns[1]
    budget = len(ts) // MERGE_BUDGET
    for start, end in itertools.pairwise(starts[1:]):
        if start == end or start == 0:  # an empty run, or nothing before it
            continue
        top = ts[start - 1]  # the latest of the rows before, which are in order
        if ts[start] >= top:
            continue
        lo = int(np.searchsorted(ts[:start], ts[start], side="right"))
        hi = start + int(np.searchsorted(ts[start:end], top, side="left"))
        budget -= hi - lo
        if budget < 0:
            return False
        order = np.argsort(ts[lo:hi], kind="stable")
        for column in columns:
            column[lo:hi] = column[lo:hi][order]
    return True


def _in_order(ts: NDArray[np.int64]) -> bool:
    """Whether ``ts`` never decreases; looked at block by block, so an unsorted column is told early."""
    for start in range(0, len(ts) - 1, SORT_CHECK_ROWS):
        stop = min(start + SORT_CHECK_ROWS, len(ts) - 1)
        if np.any(ts[start + 1 : stop + 1] < ts[start:stop]):
            return False
    return True


# -- the whole file ----------------------------------------------------------


def seq_gaps(seqs: list[int]) -> list[tuple[int, int]]:
    """Ranges ``(first, last)`` of chunk sequence numbers missing from 1 to the highest seen."""
    if not seqs:
        return []
    have = np.unique(np.asarray(seqs, dtype=np.int64))
    have = np.concatenate(([0], have))
    gap = np.flatnonzero(np.diff(have) > 1)
    return [(int(have[i]) + 1, int(have[i + 1]) - 1) for i in gap]


def inflate_budget(size: int) -> int:
    """How many bytes a trace of ``size`` bytes may inflate to: :data:`INFLATE_RATIO` times its size,
    and at least :data:`INFLATE_FLOOR`."""
    return max(INFLATE_FLOOR, INFLATE_RATIO * size)


def decode(data: Data, progress: Progress | None = None, max_inflated: int | None = None) -> Decoded:
    """Decode a whole trace of one process held in ``data`` (bytes-like, or an mmap);
    ``progress`` is told the bytes of each EVENTS chunk done. The chunks may
    inflate to ``max_inflated`` bytes in all (None: :func:`inflate_budget`).
    A merged file of several processes is a :class:`TraceFormatError`: :func:`decode_all` reads it."""
    sections = decode_all(data, progress, max_inflated)
    if len(sections) > 1:
        raise TraceFormatError(f"a merged trace of {len(sections)} processes: read it with decode_all (load does)")
    return sections[0]


def decode_all(data: Data, progress: Progress | None = None, max_inflated: int | None = None) -> list[Decoded]:
    """Like :func:`decode`, one :class:`Decoded` per process the file holds (one, unless it is merged)."""
    version = read_version(data)
    with memoryview(data) as view:
        scan = Scanner(data, view).run(version)
        if not scan.chunks:
            detail = "; ".join(str(p) for p in scan.problems) or f"the file ends after {len(view)} bytes"
            raise TraceFormatError(f"nothing readable in the trace ({detail})")
        sections = split_sections(scan) if version == MERGED_VERSION else [scan]
        for section in sections:
            _drop_repeats(section)
        _check_inflated([c for s in sections for c in s.chunks], len(view), max_inflated)
        return [_decode_chunks(view, section, progress) for section in sections]


def split_sections(scan: Scan) -> list[Scan]:
    """A merged file's chunks, one :class:`Scan` per process: each METADATA chunk starts one.
    The file's problems and truncated tail go with the section they are in."""
    starts = [i for i, chunk in enumerate(scan.chunks) if chunk.kind == ChunkKind.METADATA and i] + [len(scan.chunks)]
    sections = [Scan(scan.version, scan.chunks[a:b], []) for a, b in zip([0, *starts], starts, strict=False)]
    for problem in scan.problems:
        after = [s for s in sections if s.chunks[0].offset <= problem.offset]
        (after[-1] if after else sections[0]).problems.append(problem)
    sections[-1].truncated_bytes = scan.truncated_bytes
    return sections


def _check_inflated(chunks: list[Chunk], size: int, limit: int | None) -> None:
    """TraceFormatError if the chunks declare more bytes than the budget, before any is inflated."""
    budget = inflate_budget(size) if limit is None else limit
    declared = sum(chunk.raw_length for chunk in chunks)
    if declared > budget:
        raise TraceFormatError(
            f"its chunks inflate to {declared:,} bytes, over the {budget:,} allowed for a file of {size:,} bytes "
            f"(traces compress {INFLATE_RATIO} times at most; load(..., max_inflated=N) takes a larger budget)"
        )


def _drop_repeats(scan: Scan) -> None:
    """Drop each chunk whose sequence number an earlier chunk of the file has, as a problem: read twice, its events
    would count twice."""
    first: dict[int, Chunk] = {}
    kept = []
    for chunk in scan.chunks:
        earlier = first.setdefault(chunk.seq, chunk)
        if earlier is chunk:
            kept.append(chunk)
            continue
        reason = f"{_kind_name(chunk.kind)} chunk seq {chunk.seq} repeats the sequence number of the chunk at byte"
        scan.problems.append(Problem(chunk.offset, f"{reason} {earlier.offset}; dropped"))
    scan.chunks = kept


def _decode_chunks(view: memoryview, scan: Scan, progress: Progress | None) -> Decoded:
    events = EventColumns(view, [c for c in scan.chunks if c.kind == ChunkKind.EVENTS])
    metadata: dict[str, Any] = {}
    summary: dict[str, Any] | None = None
    strings: dict[int, str] = {}
    frames: dict[int, FrameIds] = {}
    stacks: dict[int, list[int]] = {}
    problems = scan.problems + events.fill(progress)
    skipped = len(problems)
    for chunk in scan.chunks:
        if chunk.kind == ChunkKind.EVENTS:
            continue
        try:
            raw = payload(view, chunk)
            if chunk.kind == ChunkKind.STRINGS:
                add_strings(strings, raw)
            elif chunk.kind == ChunkKind.STACKS:
                add_stacks(frames, stacks, raw)
            elif chunk.kind == ChunkKind.METADATA:
                metadata = _times_in_range(json_payload(raw, dict), chunk, problems)
            else:
                summary = _times_in_range(json_payload(raw, dict), chunk, problems)
        except ChunkError as exc:
            problems.append(Problem(chunk.offset, f"{_kind_name(chunk.kind)} chunk seq {chunk.seq}: {exc}"))
            skipped += 1
    strings[0] = "?"
    code, ts, g = _events_in_range(*events.sorted_by_time(), problems)
    return Decoded(
        version=scan.version,
        metadata=metadata,
        summary=summary,
        strings=strings,
        stacks=resolve_stacks(frames, stacks, strings),
        code=code,
        ts=ts,
        g=g,
        problems=sorted(problems),
        chunks_skipped=skipped,
        truncated_bytes=scan.truncated_bytes,
        seq_gaps=seq_gaps([c.seq for c in scan.chunks]),
    )


def _events_in_range(
    code: NDArray[np.int64], ts: NDArray[np.int64], g: NDArray[np.int64], problems: list[Problem]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The events (sorted by time) whose time is from 0 to ``MAX_ID``: a clock never gives others, and
    the analyses compute with them. Those left out are one problem."""
    lo, hi = np.searchsorted(ts, [0, MAX_ID])
    if lo == 0 and hi == len(ts):
        return code, ts, g
    problems.append(Problem(0, f"{len(ts) - (hi - lo)} events with times out of range left out"))
    return code[lo:hi], ts[lo:hi], g[lo:hi]


def _read_stream(fd: int) -> bytes:
    """All a pipe or device gives, once something is written to it (:data:`PIPE_WAIT` seconds at most)."""
    waiting = select.poll()
    waiting.register(fd, select.POLLIN)
    if not waiting.poll(PIPE_WAIT * 1000):
        raise TraceFormatError(f"nothing to read: no data came through the pipe or device in {PIPE_WAIT:g} s")
    os.set_blocking(fd, True)
    chunks = []
    while block := os.read(fd, 1 << 20):
        chunks.append(block)
    if not chunks:
        raise TraceFormatError("nothing to read: the pipe or device gave no data, not an exectracer trace")
    return b"".join(chunks)


def read(source: Source, progress: Progress | None = None, max_inflated: int | None = None) -> Decoded:
    """Decode a trace of one process from a path (memory-mapped) or from bytes
    (``progress``, ``max_inflated``: see :func:`decode`)."""
    sections = read_all(source, progress, max_inflated)
    if len(sections) > 1:
        raise TraceFormatError(f"a merged trace of {len(sections)} processes: read it with read_all (load does)")
    return sections[0]


def read_all(source: Source, progress: Progress | None = None, max_inflated: int | None = None) -> list[Decoded]:
    """Like :func:`read`, one :class:`Decoded` per process the file holds (see :func:`decode_all`)."""
    if isinstance(source, memoryview):
        source = source.tobytes()
    if isinstance(source, (bytes, bytearray)):
        return decode_all(source, progress, max_inflated)
    # not blocking in open: a FIFO nobody writes to would hang it
    with open(os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
        status = os.fstat(file.fileno())
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fsdecode(os.fspath(source)))
        if not stat.S_ISREG(status.st_mode):  # a pipe or a device: what it gives until its end
            return decode_all(_read_stream(file.fileno()), progress, max_inflated)
        if status.st_size == 0:
            raise TraceFormatError("empty file: not an exectracer trace")
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return decode_all(mapped, progress, max_inflated)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The METADATA of the trace file at ``path`` (of its first process, if merged), reading only its start;
    None if it is not a trace or its first chunk is not a valid METADATA chunk."""
    with open(path, "rb") as file:
        head = file.read(FILE_HEADER.size + HEADER_BYTES)
        if len(head) < FILE_HEADER.size + HEADER_BYTES or not head.startswith(MAGIC):
            return None
        chunk = check_header(memoryview(head), FILE_HEADER.size)
        if isinstance(chunk, str) or chunk.kind != ChunkKind.METADATA:
            return None
        data = head + file.read(chunk.length)
    with memoryview(data) as view:
        if len(view) < chunk.end or not crc_ok(view, chunk):
            return None
        try:
            return json_payload(payload(view, chunk), dict)
        except ChunkError:
            return None
