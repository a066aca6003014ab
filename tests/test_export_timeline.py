"""``exectracer export --format perfetto|chrome`` on a real recording of the bundled example service.

The Perfetto file is decoded with Perfetto's published schema (the
``perfetto`` package); its tracks, slices and flows are checked against
the state model, as are the Chrome JSON file's events.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.analysis.states import BLOCKED, STATE_NAMES, State
from exectracer.format.events import WAKER_MASK, WAKER_SHIFT, Kind, Waker

perfetto_pb2 = pytest.importorskip("perfetto.protos.perfetto.trace.perfetto_trace_pb2")

CLI = [sys.executable, "-m", "exectracer"]
GOROUTINE_UUID = 16
BEGIN, END, INSTANT, COUNTER = 1, 2, 3, 4


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example service (asyncio tasks, threads, user tasks, regions, logs, collections), traced for a second."""
    path = tmp_path_factory.mktemp("export") / "demo.xtrace"
    result = run("demo", "--seconds", "1", "--no-view", "-o", str(path), cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def trace(recorded: Path) -> exectracer.Trace:
    return exectracer.load(recorded)


@pytest.fixture(scope="module")
def perfetto_file(recorded: Path) -> Path:
    out = recorded.parent / "demo.pftrace"
    result = run("export", str(recorded), "--format", "perfetto", "-o", str(out), cwd=recorded.parent)
    assert result.returncode == 0, result.stderr
    assert "ui.perfetto.dev" in result.stdout
    return out


@pytest.fixture(scope="module")
def chrome_file(recorded: Path) -> Path:
    out = recorded.parent / "demo.json"
    result = run("export", str(recorded), "--format", "chrome", "-o", str(out), cwd=recorded.parent)
    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())["traceEvents"]
    assert f"Wrote {len(written):,} events" in result.stdout  # the count checked against the limit is the file's
    return out


class Decoded:
    """A Perfetto file's packets: its tracks, interned strings, and its slices rebuilt as trace processor does."""

    def __init__(self, path: Path) -> None:
        trace = perfetto_pb2.Trace()
        trace.ParseFromString(path.read_bytes())
        self.packets = list(trace.packet)
        self.tracks = {
            p.track_descriptor.uuid: p.track_descriptor for p in self.packets if p.HasField("track_descriptor")
        }
        interned = [p.interned_data for p in self.packets if p.HasField("interned_data")]
        assert len(interned) == 1
        self.names = {e.iid: e.name for e in interned[0].event_names}
        self.categories = {e.iid: e.name for e in interned[0].event_categories}
        self.locations = {e.iid: e for e in interned[0].source_locations}
        self.annotation_names = {e.iid: e.name for e in interned[0].debug_annotation_names}
        events = [(p.timestamp, i, p.track_event) for i, p in enumerate(self.packets) if p.HasField("track_event")]
        for _, i, e in events:  # one sequence, whose interned data an event that uses it asks for
            assert self.packets[i].trusted_packet_sequence_id == 1
            assert self.packets[i].sequence_flags == (0 if e.type == END else 2)
        events.sort(key=lambda e: (e[0], e[1]))  # by time, in file order at equal times
        self.slices: dict[int, list[tuple[str, int, int, object]]] = defaultdict(list)
        self.instants: dict[int, list[tuple[int, object]]] = defaultdict(list)
        self.counters: dict[int, list[tuple[int, int]]] = defaultdict(list)
        stacks: dict[int, list[tuple[int, object]]] = defaultdict(list)
        for ts, _, e in events:
            if e.type == BEGIN:
                stacks[e.track_uuid].append((ts, e))
            elif e.type == END:
                begin_ts, begin = stacks[e.track_uuid].pop()
                self.slices[e.track_uuid].append((self.names[begin.name_iid], begin_ts, ts, begin))
            elif e.type == INSTANT:
                self.instants[e.track_uuid].append((ts, e))
            else:
                self.counters[e.track_uuid].append((ts, e.counter_value))
        assert not any(stacks.values()), "slices begun and never ended"

    def child_tracks(self, parent: int, name: str | None = None) -> list[int]:
        return [u for u, t in self.tracks.items() if t.parent_uuid == parent and (name is None or t.name == name)]


@pytest.fixture(scope="module")
def decoded(perfetto_file: Path) -> Decoded:
    return Decoded(perfetto_file)


def test_tracks_are_the_process_its_threads_and_its_tasks_under_their_loops_thread(
    trace: exectracer.Trace, decoded: Decoded
) -> None:
    process = decoded.tracks[1].process
    assert process.pid == trace.metadata["pid"] and list(process.cmdline) == trace.metadata["argv"]
    goroutines = trace.analysis.goroutines
    loop_thread = {loop.id: loop.thread_id for loop in trace.loops}
    for thread in trace.threads:
        track = decoded.tracks[GOROUTINE_UUID + goroutines.get(thread.id).index]
        assert track.thread.pid == process.pid and track.thread.thread_name == thread.name
        assert track.thread.tid == thread.native_id
    assert trace.tasks
    for task in trace.tasks:
        track = decoded.tracks[GOROUTINE_UUID + goroutines.get(task.id).index]
        assert track.name.startswith(task.name)
        home = loop_thread.get(task.loop_id)
        assert track.parent_uuid == GOROUTINE_UUID + goroutines.get(home).index
        assert decoded.tracks[track.parent_uuid].HasField("thread")


def test_state_slices_are_the_state_model(trace: exectracer.Trace, decoded: Decoded) -> None:
    s = trace.analysis.states
    start = trace.start_ns
    for gi in range(len(trace.analysis.goroutines)):
        rows = np.flatnonzero(s.gi == gi)
        expected = [(STATE_NAMES[State(int(s.state[r]))], int(s.start[r] - start), int(s.end[r] - start)) for r in rows]
        got = [(name, b, e) for name, b, e, _ in decoded.slices[GOROUTINE_UUID + gi]]
        assert got == expected
    blocked = [
        e for track in decoded.slices.values() for name, _, _, e in track if name in ("network", "sync", "sleep")
    ]
    assert blocked
    for event in blocked:
        cats = [decoded.categories[c] for c in event.category_iids]
        assert cats == ["blocked", decoded.names[event.name_iid]]


def test_a_blocked_slice_shows_where_the_program_waited(trace: exectracer.Trace, decoded: Decoded) -> None:
    s = trace.analysis.states
    start = trace.start_ns
    checked = 0
    for gi in np.unique(s.gi[np.isin(s.state, [State.NETWORK, State.SLEEP])]).tolist():
        rows = np.flatnonzero(s.gi == gi)
        for row, (_, _, _, event) in zip(rows.tolist(), decoded.slices[GOROUTINE_UUID + gi], strict=True):
            if s.state[row] in (State.NETWORK, State.SLEEP) and s.stack[row] >= 0:
                stack = trace.stacks[int(s.stack[row])]
                frame = next(
                    (f for f in stack if "exectracer/examples" in f.file), stack[0]
                )  # the program's, else innermost
                location = decoded.locations[event.source_location_iid]
                assert (location.file_name, location.function_name, location.line_number) == (
                    frame.file,
                    frame.function,
                    frame.line,
                ), int(s.start[row] - start)
                checked += 1
    assert checked > 10


def test_flows_run_from_the_waker_to_the_slice_after_the_wait(trace: exectracer.Trace, decoded: Decoded) -> None:
    s = trace.analysis.states
    goroutines = trace.analysis.goroutines
    start = trace.start_ns
    expected = set()
    for row in np.flatnonzero(np.isin(s.state[:-1], BLOCKED)).tolist():
        source = int(s.waker[row]) & WAKER_MASK
        by = goroutines.get(int(s.waker[row]) >> WAKER_SHIFT)
        if (
            source in (Waker.TASK, Waker.THREAD)
            and by is not None
            and by.index != s.gi[row]
            and s.gi[row + 1] == s.gi[row]
        ):
            expected.add((GOROUTINE_UUID + by.index, GOROUTINE_UUID + int(s.gi[row]), int(s.end[row] - start)))
    assert len(expected) > 10
    starts = {fid: (track, ts) for track, events in decoded.instants.items() for ts, e in events for fid in e.flow_ids}
    ends = {
        fid: (track, b)
        for track, slices in decoded.slices.items()
        for _, b, _, e in slices
        for fid in e.terminating_flow_ids
    }
    assert starts.keys() == ends.keys()
    got = set()
    for fid, (from_track, ts) in starts.items():
        to_track, begin = ends[fid]
        assert begin == ts
        got.add((from_track, to_track, ts))
    assert got == expected


def test_heap_counters_collections_logs_regions_and_user_tasks(trace: exectracer.Trace, decoded: Decoded) -> None:
    ev, start = trace.events, trace.start_ns
    by_name = {t.name: u for u, t in decoded.tracks.items() if t.parent_uuid == 1}
    heap = ev.kind == Kind.HEAP_BLOCKS
    assert heap.any()
    assert decoded.counters[by_name["heap blocks"]] == list(
        zip((ev.ts[heap] - start).tolist(), ev.arg[heap].tolist(), strict=True)
    )
    gc = trace.analysis.collections.table
    got = [(name, b, e) for name, b, e, _ in decoded.slices[by_name["GC"]]]
    assert got == [
        (f"gc gen {g}", b - start, e - start)
        for g, b, e in zip(gc.generation.tolist(), gc.start.tolist(), gc.end.tolist(), strict=True)
    ]
    logs = trace.logs
    assert len(logs)
    got_logs = sorted(
        (ts, decoded.names[e.name_iid]) for events in decoded.instants.values() for ts, e in events if e.name_iid != 1
    )
    assert got_logs == sorted(zip((logs.ts - start).tolist(), logs.message.tolist(), strict=True))
    regions = trace.regions
    assert len(regions)
    got_regions = sorted(
        (b, decoded.names[event.name_iid])
        for u in decoded.tracks
        if u >= 1 << 40 and u < 2 << 40
        for _, b, _, event in decoded.slices[u]
    )
    assert got_regions == sorted(zip((regions.begin_ns - start).tolist(), regions.name.tolist(), strict=True))
    tasks = [t for t in trace.user_tasks if t.begin_ns is not None]
    assert tasks
    got_tasks = sorted(decoded.tracks[u].name for u in decoded.tracks if u >= 2 << 40)
    assert got_tasks == sorted(f"user task {t.name}" for t in tasks)


def test_chrome_json_holds_the_same_timeline(trace: exectracer.Trace, chrome_file: Path) -> None:
    doc = json.loads(chrome_file.read_text())
    events = doc["traceEvents"]
    s = trace.analysis.states
    ids = trace.analysis.goroutines.ids
    start = trace.start_ns
    slices = sorted(
        (e["tid"], round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000), e["name"])
        for e in events
        if e["ph"] == "X" and e["cat"] not in ("gc", "region")
    )
    expected = sorted(
        (int(ids[g]), int(b - start), int(e - start), STATE_NAMES[State(int(st))])
        for g, b, e, st in zip(s.gi, s.start, s.end, s.state, strict=True)
    )
    assert len(slices) == len(expected)
    assert all(
        a[0] == b[0] and a[3] == b[3] and abs(a[1] - b[1]) <= 1 and abs(a[2] - b[2]) <= 2
        for a, b in zip(slices, expected, strict=True)
    )
    named = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {t.id for t in trace.threads} | {t.id for t in trace.tasks} <= named.keys()
    flows_s = {e["id"]: e for e in events if e["ph"] == "s"}
    flows_f = {e["id"]: e for e in events if e["ph"] == "f"}
    assert flows_s and flows_s.keys() == flows_f.keys()
    assert all(flows_s[i]["ts"] == flows_f[i]["ts"] and flows_s[i]["tid"] != flows_f[i]["tid"] for i in flows_s)
    assert any(e["ph"] == "C" for e in events) and any(e["ph"] == "i" for e in events)
    assert {e["ph"] for e in events if e.get("cat") == "user_task"} == {"b", "e"}


def test_a_time_range_keeps_what_overlaps_it_clipped(recorded: Path, trace: exectracer.Trace, tmp_path: Path) -> None:
    out = tmp_path / "part.pftrace"
    result = run(
        "export", str(recorded), "-f", "perfetto", "-o", str(out), "--start", "200ms", "--end", "0.5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    part = Decoded(out)
    times = [t for track in part.slices.values() for _, b, e, _ in track for t in (b, e)]
    assert times and min(times) >= 200_000_000 and max(times) <= 500_000_000
    chrome = tmp_path / "part.json"
    result = run(
        "export", str(recorded), "-f", "chrome", "-o", str(chrome), "--start", "0.2", "--end", "0.5", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    events = json.loads(chrome.read_text())["traceEvents"]
    assert all(200_000 <= e["ts"] <= 500_000 for e in events if "ts" in e)


def test_too_many_events_for_chrome_is_one_line_and_writes_nothing(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exectracer import cli
    from exectracer.export import chrome

    monkeypatch.setattr(chrome, "MAX_EVENTS", 100)
    out = tmp_path / "big.json"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", str(recorded), "-f", "chrome", "-o", str(out)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than the 100" in err and "--start/--end" in err and "--format perfetto" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "perfetto", "--start", "10"], "holds none of the trace"),
        (["-f", "perfetto", "--end", "0"], "holds none of the trace"),
        (["-f", "chrome", "--start", "0.5", "--end", "0.2"], "must come after --start"),
        (["-f", "perfetto", "--end", "soon"], "is not a duration"),
        (["-f", "svg"], "'svg' is not one of"),
    ],
)
def test_a_bad_range_or_format_is_one_line(recorded: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = run("export", str(recorded), "-o", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_kept_unless_forced(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pftrace"
    out.write_bytes(b"keep me")
    result = run("export", str(recorded), "-f", "perfetto", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 2 and "exists" in result.stderr and result.stderr.count("\n") == 1
    assert out.read_bytes() == b"keep me"
    result = run("export", str(recorded), "-f", "perfetto", "-o", str(out), "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() != b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["out.pftrace"]


def test_input_that_is_no_trace_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a trace\n")
    for fmt in ("perfetto", "chrome"):
        result = run("export", str(bogus), "-f", fmt, "-o", str(tmp_path / "out"), cwd=tmp_path)
        assert result.returncode == 1 and "not an exectracer trace" in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_damaged_trace_exports_what_is_readable_with_a_warning(recorded: Path, tmp_path: Path) -> None:
    data = recorded.read_bytes()
    damaged = tmp_path / "cut.xtrace"
    damaged.write_bytes(data[: len(data) * 2 // 3])
    result = run("export", str(damaged), "-f", "perfetto", "-o", str(tmp_path / "cut.pftrace"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "Traceback" not in result.stderr
    assert 1 in Decoded(tmp_path / "cut.pftrace").tracks  # a well-formed file, with what was readable


def test_padded_varints_and_stand_in_fields_decode_as_protobuf_reads_them() -> None:
    from exectracer.export.protowire import MAX_VALUE, Const, encode, field, var

    values = np.array([0, 1, 127, 128, 300, 1 << 35, MAX_VALUE, MAX_VALUE + 5, -3], dtype=np.int64)
    rows = encode([Const(field(9, 3)), *var(11, values), *var(30, values[::-1].copy())], len(values))
    size = len(rows) // len(values)
    expected = np.clip(values, 0, MAX_VALUE).tolist()
    for i, (track, counter) in enumerate(zip(expected, expected[::-1], strict=True)):
        event = perfetto_pb2.TrackEvent()
        event.ParseFromString(rows[i * size : (i + 1) * size].tobytes())
        assert (event.type, event.track_uuid, event.counter_value) == (3, track, counter)
