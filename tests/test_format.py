"""The trace container as the reader sees it: hand-built chunk streams, intact and damaged."""

from __future__ import annotations

import gc
import io
import json
import re
import struct
import threading
import time
import tracemalloc
import warnings
import zlib
from unittest import mock

import numpy as np
import pytest

import exectracer
from exectracer.format import decoder, planes
from exectracer.format.chunks import (
    CHUNK_HEADER,
    CHUNK_MAGIC,
    FILE_HEADER,
    FORMAT_VERSION,
    MAGIC,
    MAX_CHUNK_BYTES,
    MERGED_VERSION,
    ChunkKind,
    Codec,
    chunk_payload,
    file_header,
    make_chunk,
    split_chunks,
)
from exectracer.format.encoder import encode_event_rows, events_chunk, json_chunk
from exectracer.format.events import ARG_KINDS, SUBJECT_KINDS, SUBJECT_OF, Kind, Subject, pack
from exectracer.reader import TraceFormatError, TraceWarning
from exectracer.record import native

pytestmark = pytest.mark.recorder

EVENTS_A = [pack(Kind.THREAD_START, 77), 100, 1, pack(Kind.THREAD_NAME, 1), 100, 1, pack(Kind.TASK_NAME, -5), 300, 2]
EVENTS_B = [
    pack(Kind.TASK_CREATE, 1),
    200,
    2,
    pack(Kind.TASK_FUNC, 1),
    200,
    2,
    pack(Kind.TASK_SUSPEND, 1 << 4 | 1),
    400,
    2,
]
STRINGS = [[1, "MainThread"], [2, "mod.work"], [3, "/src/mod.py"]]
STACKS = {"frames": [[1, 2, 3, 10]], "stacks": [[1, [1]]]}


def stream_chunks(level: int = 1) -> list[bytes]:
    """A small, complete trace as its list of chunks (the file header excluded)."""
    return [
        json_chunk(ChunkKind.METADATA, 1, {"format_version": FORMAT_VERSION, "start_ns": 50}, level),
        json_chunk(ChunkKind.STRINGS, 2, STRINGS, level),
        json_chunk(ChunkKind.STACKS, 3, STACKS, level),
        events_chunk(4, EVENTS_A, level),
        events_chunk(5, EVENTS_B, level),
        json_chunk(ChunkKind.END, 6, {"clean": True, "stop_ns": 500, "events": 6, "events_lost": 0}, level),
    ]


def build(chunks: list[bytes]) -> bytes:
    return file_header() + b"".join(chunks)


def offsets(chunks: list[bytes]) -> list[int]:
    """Where each chunk starts in the built file."""
    return list(np.cumsum([FILE_HEADER.size] + [len(c) for c in chunks[:-1]]))


def load_quietly(data: bytes, **kwargs: object) -> exectracer.Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return exectracer.load(data, **kwargs)


@pytest.fixture(params=["zlib", "isal"])
def zlib_library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each library the reader may inflate and check crcs with: ISA-L where installed, else zlib."""
    if request.param == "zlib":
        monkeypatch.setattr(decoder, "fast_zlib", zlib)
    elif decoder.fast_zlib is zlib:
        pytest.skip("isal is not installed here")


def raw_chunk(kind: int, seq: int, payload: bytes, raw_length: int, codec: int = Codec.ZLIB) -> bytes:
    """A chunk with any header values and a valid crc."""
    head = CHUNK_HEADER.pack(CHUNK_MAGIC, kind, codec, 0, seq, len(payload), raw_length, 0)[:20]
    return head + zlib.crc32(payload, zlib.crc32(head)).to_bytes(4, "little") + payload


@pytest.mark.parametrize("level", [0, 1, 9])
def test_intact_stream_decodes_sorted(level: int, zlib_library: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = exectracer.load(build(stream_chunks(level)))
    ev = trace.events
    assert trace.event_count == 6
    assert ev.ts.tolist() == [100, 100, 200, 200, 300, 400]  # chunk B's events sorted in among A's
    assert ev.kind.tolist() == [
        Kind.THREAD_START,
        Kind.THREAD_NAME,
        Kind.TASK_CREATE,
        Kind.TASK_FUNC,
        Kind.TASK_NAME,
        Kind.TASK_SUSPEND,
    ]
    assert ev.arg.tolist() == [77, 1, 1, 1, -5, 1 << 4 | 1]
    assert ev.g.tolist() == [1, 1, 2, 2, 2, 2]
    assert ev.kind.dtype == np.uint8 and ev.arg.dtype == ev.ts.dtype == ev.g.dtype == np.int64
    assert trace.strings == {0: "?", 1: "MainThread", 2: "mod.work", 3: "/src/mod.py"}
    assert trace.stacks == {0: [], 1: [decoder.Frame("mod.work", "/src/mod.py", 10)]}
    assert trace.metadata["format_version"] == FORMAT_VERSION
    assert trace.lost.complete and trace.lost.clean_end
    assert (trace.start_ns, trace.end_ns, trace.duration_ns) == (50, 500, 450)
    assert trace.tasks[0].name == "Task-5" and trace.tasks[0].start_function == "mod.work"


def test_stable_sort_keeps_file_order_of_equal_timestamps() -> None:
    flat = []
    for i in range(50):
        flat += [pack(Kind.LOG_MESSAGE, i), 1000 - (i // 10), 1]
    trace = load_quietly(build([events_chunk(1, flat)]))
    assert np.all(np.diff(trace.events.ts) >= 0)
    for ts in np.unique(trace.events.ts):
        args = trace.events.arg[trace.events.ts == ts]
        assert np.all(np.diff(args) > 0)


# -- files that are not traces ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"hello, world\n" * 10, "not an exectracer trace"),
        (bytes(range(256)) * 4, "not an exectracer trace"),
        (b"XTCK" + bytes(40), "not an exectracer trace"),
        (MAGIC[:5], "truncated file header"),
        (file_header(), "nothing readable"),
        (file_header() + b"\x00" * 100, "nothing readable"),
        (
            FILE_HEADER.pack(MAGIC, MERGED_VERSION + 1, 0) + stream_chunks()[0],
            f"unknown trace format version {MERGED_VERSION + 1}",
        ),
        (FILE_HEADER.pack(MAGIC, 0, 0) + stream_chunks()[0], "unknown trace format version 0"),
    ],
)
def test_not_a_trace(data: bytes, message: str) -> None:
    with pytest.raises(TraceFormatError, match=message):
        exectracer.load(data)


def test_future_version_says_upgrade() -> None:
    with pytest.raises(TraceFormatError, match="newer exectracer"):
        exectracer.load(FILE_HEADER.pack(MAGIC, 99, 0) + b"".join(stream_chunks()))


def test_error_names_the_file(tmp_path) -> None:
    path = tmp_path / "empty.xtrace"
    path.write_bytes(b"")
    with pytest.raises(TraceFormatError, match=re.escape("empty.xtrace: empty file")):
        exectracer.load(path)
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(TraceFormatError, match=re.escape("empty.xtrace: not an exectracer trace")):
        exectracer.load(str(path))


def test_trace_format_error_is_a_value_error() -> None:
    assert issubclass(exectracer.TraceFormatError, ValueError)


# -- damage inside a trace ---------------------------------------------------------


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("where", ["magic", "header", "length", "crc", "payload"])
def test_flipped_byte_skips_one_chunk(index: int, where: str, zlib_library: None) -> None:
    chunks = stream_chunks()
    start = offsets(chunks)[index]
    position = start + {"magic": 1, "header": 10, "length": 13, "crc": 21, "payload": CHUNK_HEADER.size + 3}[where]
    data = bytearray(build(chunks))
    data[position] ^= 0x40
    if index == 5 and where == "length":  # the last chunk now seems to run past the end: a torn tail
        assert load_quietly(bytes(data)).lost.truncated_bytes == len(chunks[5])
        return
    with pytest.warns(TraceWarning, match=f"at byte {start}: ") as caught:
        trace = exectracer.load(bytes(data))
    assert "1 damaged chunk(s) skipped" in str(caught[0].message)
    assert trace.lost.chunks_skipped == 1
    assert [p.offset for p in trace.lost.problems] == [start]
    expected = {3: 3, 4: 3}.get(index, 0)  # events lost with an EVENTS chunk
    assert trace.event_count == 6 - expected
    assert trace.lost.seq_gaps == (() if index == 5 else ((index + 1, index + 1),))  # END is the highest seq
    assert trace.lost.clean_end == (index != 5)


def test_strict_refuses_damage() -> None:
    data = bytearray(build(stream_chunks()))
    data[offsets(stream_chunks())[3] + 30] ^= 1
    with pytest.raises(TraceFormatError, match="damaged chunk"):
        exectracer.load(bytes(data), strict=True)


def test_garbage_between_chunks_is_skipped() -> None:
    chunks = stream_chunks()
    junk = b"XTCK" + b"\xff" * 37 + b"XTCK\x04\x01" + bytes(30)  # two false chunk starts
    data = build(chunks[:3] + [junk] + chunks[3:])
    with pytest.warns(TraceWarning, match=f"at byte {offsets(chunks)[3]}: .*skipped {len(junk)} bytes"):
        trace = exectracer.load(data)
    assert trace.event_count == 6
    assert trace.lost.seq_gaps == ()


def test_resync_ignores_false_magic_inside_a_damaged_payload(zlib_library: None) -> None:
    chunks = stream_chunks()
    fake = make_chunk(ChunkKind.STRINGS, 2, json.dumps([[9, "XTCK" * 20]]).encode(), level=0)
    damaged = bytearray(fake)
    damaged[-2] ^= 1
    data = build([chunks[0], bytes(damaged)] + chunks[2:])
    trace = load_quietly(data)
    assert trace.event_count == 6
    assert [p.offset for p in trace.lost.problems] == [offsets(chunks)[1]]


def test_truncated_at_every_offset() -> None:
    chunks = stream_chunks()
    data = build(chunks)
    bounds = offsets(chunks) + [len(data)]
    events_after = {bounds[4]: 3, bounds[5]: 6, bounds[6]: 6}  # complete chunks -> events
    first_chunk_end = bounds[1]
    for cut in range(len(data)):
        if cut < first_chunk_end:
            with pytest.raises(TraceFormatError):
                exectracer.load(data[:cut])
            continue
        last = max(b for b in bounds if b <= cut)
        with pytest.warns(TraceWarning) as caught:
            trace = exectracer.load(data[:cut])
        message = str(caught[0].message)
        assert trace.lost.truncated_bytes == cut - last
        assert ("truncated" in message) == (cut != last)
        assert "no END chunk" in message
        assert trace.event_count == max([n for b, n in events_after.items() if b <= cut], default=0)
        assert not trace.lost.problems
        with pytest.raises(TraceFormatError):
            exectracer.load(data[:cut], strict=True)


def test_missing_chunks_are_reported() -> None:
    chunks = stream_chunks()
    with pytest.warns(TraceWarning, match="missing from the sequence: 3, 5"):
        trace = exectracer.load(build(chunks[:2] + [chunks[3]] + [chunks[5]]))
    assert trace.lost.seq_gaps == ((3, 3), (5, 5))
    assert trace.lost.chunks_missing == 2
    assert trace.stacks == {0: []}


def test_events_lost_counts_reports_and_totals() -> None:
    chunks = stream_chunks()
    lost = events_chunk(5, [pack(Kind.EVENTS_LOST, 1000), 450, 0])
    end = json_chunk(ChunkKind.END, 6, {"clean": True, "events_lost": 1500})
    trace = load_quietly(build(chunks[:4] + [lost, end]))
    assert trace.lost.events_lost == 1500
    assert not trace.lost.complete


# -- sizes the reader must refuse ------------------------------------------------------


def peak_allocation(func) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("length", [0xFFFFFFFF, MAX_CHUNK_BYTES + 1, MAX_CHUNK_BYTES // 2])
def test_huge_length_field_allocates_nothing(length: int) -> None:
    chunks = stream_chunks()
    head = bytearray(chunks[3][: CHUNK_HEADER.size])
    struct.pack_into("<I", head, 12, length)
    data = build(chunks[:3] + [bytes(head) + chunks[3][CHUNK_HEADER.size :]] + chunks[4:])
    peak = peak_allocation(lambda: load_quietly(data))
    assert peak < 4 << 20
    trace = load_quietly(data)
    assert trace.event_count == 3 and trace.lost.chunks_skipped == 1


def test_huge_raw_length_with_valid_crc_is_refused() -> None:
    chunk = raw_chunk(ChunkKind.EVENTS, 4, zlib.compress(b"\0" * 24), raw_length=MAX_CHUNK_BYTES + 24)
    data = build(stream_chunks()[:3] + [chunk])
    with pytest.warns(TraceWarning, match="over the .*-byte limit"):
        peak = peak_allocation(lambda: exectracer.load(data))
    assert peak < 4 << 20


def test_impossible_compression_ratio_is_refused() -> None:
    chunk = raw_chunk(ChunkKind.EVENTS, 4, zlib.compress(b"\0" * 24), raw_length=MAX_CHUNK_BYTES - 8)
    with pytest.warns(TraceWarning, match="impossible compression ratio"):
        peak = peak_allocation(lambda: exectracer.load(build(stream_chunks()[:3] + [chunk])))
    assert peak < 4 << 20


def test_zlib_bomb_is_refused_without_inflating_it(zlib_library: None) -> None:
    bomb = zlib.compress(b"\0" * (48 << 20), 9)  # 48 MiB of zeros in ~50 KiB
    chunk = raw_chunk(ChunkKind.EVENTS, 4, bomb, raw_length=24 * 1000)
    data = build(stream_chunks()[:3] + [chunk] + stream_chunks()[4:])
    with pytest.warns(TraceWarning, match="inflates to more than its raw_length"):
        peak = peak_allocation(lambda: exectracer.load(data))
    assert peak < 4 << 20
    assert load_quietly(data).event_count == 3


def test_chunks_that_inflate_far_beyond_the_files_size_are_refused_before_inflating(zlib_library: None) -> None:
    """Each chunk valid (48 MiB of zero events in ~50 KiB), 40 of them: a 2 MB file asking for 1.9 GB."""
    zeros = zlib.compress(b"\0" * (48 << 20), 9)
    bombs = [raw_chunk(ChunkKind.EVENTS, 4 + i, zeros, raw_length=48 << 20) for i in range(40)]
    data = build(stream_chunks()[:3] + bombs)
    with pytest.raises(TraceFormatError, match=r"inflate to [\d,]+ bytes, over the [\d,]+ allowed for a file of"):
        exectracer.load(data)

    def refused() -> None:
        with pytest.raises(TraceFormatError):
            exectracer.load(data)

    assert peak_allocation(refused) < 4 << 20


def test_the_inflate_budget_can_be_set() -> None:
    data = build(stream_chunks())
    assert exectracer.load(data).event_count == 6  # within the default budget
    with pytest.raises(TraceFormatError, match="max_inflated=N"):
        exectracer.load(data, max_inflated=10)


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (json_chunk(ChunkKind.METADATA, 1, {"format_version": FORMAT_VERSION, "start_ns": -(2**63)}), "start_ns"),
        (json_chunk(ChunkKind.METADATA, 1, {"start_ns": 50, "start_wall_ns": 2**64}), "start_wall_ns"),
        (json_chunk(ChunkKind.END, 6, {"clean": True, "stop_ns": "soon"}), "stop_ns"),
        (json_chunk(ChunkKind.STACKS, 3, {"frames": [[2**64, 1, 2, 3]], "stacks": [[1, [2**64]]]}), "from 0 to"),
        (json_chunk(ChunkKind.STRINGS, 2, [[-5, "negative"]]), "from 0 to"),
    ],
    ids=["start_ns", "start_wall_ns", "stop_ns", "stack ids", "string ids"],
)
def test_checksummed_values_out_of_range_are_left_out_by_the_reader(chunk: bytes, message: str) -> None:
    """Valid chunks saying what no recorder writes: every analysis and pprof still work on what is left."""
    from exectracer.analysis import PROFILE_TYPES
    from exectracer.export import pprof

    chunks = stream_chunks()
    kind = chunk[4]
    index = next(i for i, c in enumerate(chunks) if c[4] == kind)
    chunks[index] = chunk
    with pytest.warns(TraceWarning, match=message):
        trace = exectracer.load(build(chunks))
    assert trace.analysis.summary()["goroutines"] is not None
    for kind_name in PROFILE_TYPES:
        pprof.to_proto(trace.analysis.profile(kind_name)).SerializeToString()


def test_payload_shorter_than_raw_length_is_refused(zlib_library: None) -> None:
    chunk = raw_chunk(ChunkKind.EVENTS, 4, zlib.compress(b"\0" * 48), raw_length=72)
    with pytest.warns(TraceWarning, match="inflates to 48 bytes, not its raw_length of 72"):
        exectracer.load(build(stream_chunks()[:3] + [chunk]))


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (ChunkKind.EVENTS, b"\0" * 25, "not a whole number of 24-byte events"),
        (ChunkKind.STRINGS, b"[[1, ", "bad JSON"),
        (ChunkKind.STRINGS, b'{"a": 1}', "not a list"),
        (ChunkKind.STRINGS, b"[[1, 2, 3]]", "bad STRINGS payload"),
        (ChunkKind.STACKS, b'{"frames": [[1]]}', "bad STACKS payload"),
        (ChunkKind.METADATA, b"[]", "not a dict"),
    ],
)
def test_bad_payload_with_valid_crc_is_skipped(kind: ChunkKind, payload: bytes, message: str) -> None:
    chunks = stream_chunks()
    bad = make_chunk(kind, 7, payload, level=1)
    with pytest.warns(TraceWarning, match=message):
        trace = exectracer.load(build(chunks[:5] + [bad] + chunks[5:]))
    assert trace.event_count == 6
    assert trace.lost.chunks_skipped == 1


def test_a_frame_line_of_null_reads_as_0() -> None:
    """Recorders before 0 stood for "no line" wrote null there: the chunk is read, not skipped."""
    chunks = stream_chunks()
    chunks[2] = json_chunk(ChunkKind.STACKS, 3, {"frames": [[1, 2, 3, None]], "stacks": [[1, [1]]]})
    trace = exectracer.load(build(chunks), strict=True)
    assert [(frame.function, frame.line) for frame in trace.stacks[1]] == [("mod.work", 0)]


def test_bad_zlib_data_is_skipped(zlib_library: None) -> None:
    chunk = raw_chunk(ChunkKind.EVENTS, 4, b"not zlib at all", raw_length=24)
    with pytest.warns(TraceWarning, match="bad zlib data"):
        exectracer.load(build(stream_chunks()[:3] + [chunk]))


def test_unknown_chunk_kind_is_damage() -> None:
    chunks = stream_chunks()
    odd = raw_chunk(42, 4, b"{}", raw_length=2, codec=Codec.RAW)
    with pytest.warns(TraceWarning, match="bad chunk header"):
        trace = exectracer.load(build(chunks[:3] + [odd] + chunks[3:]))
    assert trace.event_count == 6


def planes_chunk(seq: int, rows: list[int], level: int = 1) -> bytes:
    """An EVENTS chunk stored as byte planes (``ZLIB_PLANES``), as the C extension's writer makes them."""
    return make_chunk(
        ChunkKind.EVENTS,
        seq,
        encode_event_rows(rows),
        level,
        lambda raw, level: zlib.compress(planes.python_to_planes(raw), level),
        Codec.ZLIB_PLANES,
    )


def test_events_stored_as_byte_planes_read_as_any_others(zlib_library: None) -> None:
    chunks = stream_chunks()
    as_planes = chunks[:3] + [planes_chunk(4, EVENTS_A), planes_chunk(5, EVENTS_B)] + chunks[5:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected, trace = exectracer.load(build(chunks)), exectracer.load(build(as_planes), strict=True)
    assert [CHUNK_HEADER.unpack_from(chunk)[2] for chunk in as_planes[3:5]] == [Codec.ZLIB_PLANES] * 2
    for column in ("kind", "arg", "ts", "g"):
        assert getattr(trace.events, column).tolist() == getattr(expected.events, column).tolist()


def test_a_recording_stores_its_events_as_byte_planes_where_the_c_extension_is_built() -> None:
    sink = io.BytesIO()
    with exectracer.trace(sink):
        time.sleep(0.01)
    codecs = {CHUNK_HEADER.unpack_from(chunk)[2] for kind, chunk in split_chunks(sink.getvalue()) if kind == 4}
    built = hasattr(native.speedups(), "compress_whole")
    assert codecs == {Codec.ZLIB_PLANES if built else Codec.ZLIB}
    assert exectracer.load(sink.getvalue(), strict=True).event_count > 0


@pytest.mark.parametrize(
    ("kind", "raw_length"), [(ChunkKind.STRINGS, 24), (ChunkKind.EVENTS, 25), (ChunkKind.EVENTS, 23)]
)
def test_byte_planes_of_anything_but_whole_events_are_damage(kind: ChunkKind, raw_length: int) -> None:
    payload = zlib.compress(b"\0" * raw_length)
    odd = raw_chunk(kind, 4, payload, raw_length=raw_length, codec=Codec.ZLIB_PLANES)
    chunks = stream_chunks()
    with pytest.warns(TraceWarning, match="byte planes of"):
        trace = exectracer.load(build(chunks[:3] + [odd] + chunks[3:]))
    assert trace.event_count == 6


def test_only_events_can_be_made_into_byte_planes() -> None:
    with pytest.raises(ValueError, match="only an EVENTS chunk"):
        make_chunk(ChunkKind.STRINGS, 1, b"[]", 1, zlib.compress, Codec.ZLIB_PLANES)


def test_trailing_garbage_is_reported() -> None:
    data = build(stream_chunks()) + b"\x00garbage" * 10
    with pytest.warns(TraceWarning, match="no valid chunk follows"):
        trace = exectracer.load(data)
    assert trace.event_count == 6


# -- properties ----------------------------------------------------------------------


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None

if given is not None:
    int64 = st.integers(-(1 << 63), (1 << 63) - 1)
    times = st.integers(0, decoder.MAX_ID - 1)  # a clock's: the reader leaves out others (next test)

    @given(
        st.lists(st.lists(st.tuples(int64, times, int64), max_size=40), min_size=1, max_size=5), st.sampled_from([0, 1])
    )
    @settings(max_examples=60, deadline=None)
    def test_any_events_round_trip(pieces: list[list[tuple[int, int, int]]], level: int) -> None:
        chunks = [events_chunk(i + 1, [v for row in rows for v in row], level) for i, rows in enumerate(pieces)]
        decoded = decoder.read(build(chunks))
        rows = [row for rows in pieces for row in rows]
        expected = sorted(rows, key=lambda r: r[1])  # stable: file order among equal ts
        assert list(zip(decoded.code.tolist(), decoded.ts.tolist(), decoded.g.tolist(), strict=True)) == expected

    @given(st.lists(st.tuples(int64, int64, int64), max_size=60))
    @settings(max_examples=100, deadline=None)
    def test_any_events_round_trip_through_byte_planes(rows: list[tuple[int, int, int]]) -> None:
        """The Python reference, NumPy's inverse and zlib: any values (times wrapping around 2**64 too) come back."""
        raw = encode_event_rows([v for row in rows for v in row])
        stored = planes.python_to_planes(raw)
        assert len(stored) == len(raw)
        assert planes.python_from_planes(stored) == raw == planes.from_planes(stored)
        assert chunk_payload(planes_chunk(1, [v for row in rows for v in row])) == raw

    @given(
        st.lists(st.lists(st.tuples(int64, st.integers(0, 20), int64), max_size=40), min_size=1, max_size=6),
        st.sampled_from([1e-12, 1 << 62]),
    )
    @settings(max_examples=80, deadline=None)
    def test_chunks_merged_by_time_as_one_stable_sort(
        pieces: list[list[tuple[int, int, int]]], merge_budget: float
    ) -> None:
        # few distinct times: many ties between chunks.
        # 1e-12: merging may move any number of rows; 2**62: none (all sorted at once)
        chunks = [events_chunk(i + 1, [v for row in rows for v in row], 1) for i, rows in enumerate(pieces)]
        with mock.patch.object(decoder, "MERGE_BUDGET", merge_budget):
            decoded = decoder.read(build(chunks))
        expected = sorted((row for rows in pieces for row in rows), key=lambda r: r[1])
        assert list(zip(decoded.code.tolist(), decoded.ts.tolist(), decoded.g.tolist(), strict=True)) == expected

    @given(st.data())
    @settings(max_examples=150, deadline=None)
    def test_random_damage_never_escapes(data: st.DataObject) -> None:
        original = build(stream_chunks())
        damaged = bytearray(original)
        for _ in range(data.draw(st.integers(1, 6))):
            position = data.draw(st.integers(0, len(damaged) - 1))
            damaged[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(damaged)))
        try:
            trace = load_quietly(bytes(damaged[:cut]))
        except TraceFormatError:
            return
        assert trace.event_count <= 6
        assert np.all(np.diff(trace.events.ts) >= 0)

    @given(st.lists(st.tuples(int64, int64, int64), min_size=1, max_size=40))
    @settings(max_examples=60, deadline=None)
    def test_events_with_times_out_of_range_are_left_out(rows: list[tuple[int, int, int]]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TraceWarning)
            decoded = decoder.read(build([events_chunk(1, [v for row in rows for v in row], 1)]))
        kept = sorted((r for r in rows if 0 <= r[1] < decoder.MAX_ID), key=lambda r: r[1])
        assert list(zip(decoded.code.tolist(), decoded.ts.tolist(), decoded.g.tolist(), strict=True)) == kept
        assert any("out of range" in p.reason for p in decoded.problems) == (len(kept) < len(rows))

    def _chunk(kind: int, seq: int, payload: bytes, raw_length: int, codec: int) -> bytes:
        compressed = codec in (Codec.ZLIB, Codec.ZLIB_PLANES)
        return raw_chunk(kind, seq, zlib.compress(payload) if compressed else payload, raw_length, codec)

    any_chunk = st.builds(
        _chunk,
        st.integers(0, 9),
        st.integers(0, 8),
        st.binary(max_size=200) | st.sampled_from([b"[]", b"{}", b"[[1, 2]]", b'{"frames": [[1, 1, 1, 1]]}']),
        st.integers(0, 1 << 12) | st.sampled_from([0, 24, 48, MAX_CHUNK_BYTES]),
        st.sampled_from([Codec.RAW, Codec.ZLIB, Codec.ZLIB_PLANES, 7]),
    )

    @given(
        st.binary(max_size=2048)
        | st.builds(lambda tail: file_header() + tail, st.binary(max_size=2048))
        | st.builds(lambda chunks: file_header() + b"".join(chunks), st.lists(any_chunk, max_size=8))
    )
    @settings(max_examples=300, deadline=None)
    def test_any_bytes_are_a_trace_or_a_format_error(data: bytes) -> None:
        """The reader's fuzz target: any input, valid chunks with any contents among them, gives a trace
        (its events in time order) or a TraceFormatError, with little memory."""
        outcome: list[exectracer.Trace] = []

        def read() -> None:
            try:
                outcome.append(load_quietly(data))
            except TraceFormatError:
                pass

        assert peak_allocation(read) < 16 << 20
        for trace in outcome:
            assert np.all(np.diff(trace.events.ts) >= 0)


@pytest.mark.parametrize("typecode", ["q", "Q", "l", "L"])
def test_events_of_any_64_bit_array_encode_as_int64(typecode: str) -> None:
    from array import array

    from exectracer.format.encoder import decode_event_rows, encode_event_rows

    if array(typecode).itemsize != 8:
        pytest.skip(f"{typecode!r} is not 64 bits here")
    signed = [pack(Kind.TASK_NAME, -5), 100, 1, (1 << 63) - 1, 200, 2, 0, 300, 3]
    rows = array(typecode, [v & ((1 << 64) - 1) for v in signed]) if typecode in "QL" else array(typecode, signed)
    assert encode_event_rows(rows) == encode_event_rows(signed)
    codes, ts, g = decode_event_rows(encode_event_rows(rows))
    assert list(codes) == signed[0::3] and list(ts) == [100, 200, 300] and list(g) == [1, 2, 3]


def test_column_views_of_a_payload_read_as_its_decoded_columns() -> None:
    from exectracer.format.encoder import decode_event_rows, encode_event_rows, event_column_views

    signed = [pack(Kind.TASK_NAME, -5), 100, 1, (1 << 63) - 1, 200, 2, 0, 300, 3]
    raw = encode_event_rows(signed)
    views = event_column_views(raw)
    assert [list(view) for view in views] == [list(column) for column in decode_event_rows(raw)]
    assert [len(view) for view in views] == [3, 3, 3]


def test_a_file_appended_to_itself_counts_each_chunk_once() -> None:
    """A real recording's chunks written twice (as ``cat t.xtrace t.xtrace`` minus the second header would)."""
    sink = io.BytesIO()
    with exectracer.trace(sink, chunk_events=16):
        for _ in range(3):
            gc.collect()
            threading.Thread(target=time.sleep, args=(0.001,)).start()
    data = sink.getvalue()
    chunks = data[FILE_HEADER.size :]
    original = exectracer.load(data, strict=True)
    with pytest.warns(TraceWarning, match="repeats the sequence number of the chunk at byte") as caught:
        doubled = exectracer.load(data + chunks)
    n = len(list(split_chunks(data)))
    assert f"{n} damaged chunk(s) skipped" in str(caught[0].message)
    assert doubled.lost.chunks_skipped == n and doubled.lost.seq_gaps == ()
    assert doubled.event_count == original.event_count
    assert np.array_equal(doubled.events.ts, original.events.ts)
    assert doubled.analysis.summary()["gc"] == original.analysis.summary()["gc"]
    with pytest.raises(TraceFormatError, match="repeats the sequence number"):
        exectracer.load(data + chunks, strict=True)


def test_a_repeated_events_chunk_is_dropped() -> None:
    chunks = stream_chunks()
    first = offsets(chunks)[4]
    with pytest.warns(
        TraceWarning, match=f"EVENTS chunk seq 5 repeats the sequence number of the chunk at byte {first}"
    ):
        trace = exectracer.load(build(chunks[:5] + [chunks[4]] + chunks[5:]))
    assert trace.event_count == 6
    assert trace.lost.chunks_skipped == 1
    assert [p.offset for p in trace.lost.problems] == [offsets(chunks)[5]]
    assert trace.lost.clean_end


def test_every_kind_says_what_its_argument_and_g_hold() -> None:
    placed = [kind for kinds in ARG_KINDS.values() for kind in kinds]
    assert sorted(placed) == sorted(Kind), "each kind belongs in exactly one of format/events.py's ARG_KINDS"
    special = [kind for kinds in SUBJECT_KINDS.values() for kind in kinds]
    assert len(special) == len(set(special))
    assert all(SUBJECT_OF[kind] is Subject.GOROUTINE for kind in Kind if kind not in special)
    # the comments on the kinds say the same as the table
    assert {kind for kind in Kind if kind.name.startswith(("LOOP_", "CALLBACK_"))} == set(SUBJECT_KINDS[Subject.LOOP])
