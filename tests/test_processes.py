"""Several processes' recordings as one trace: ids kept apart, clocks aligned, analyses per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import exectracer
from exectracer.reader import TraceFormatError

from support.model_trace import END, model_trace
from support.process_traces import WALL, collecting_parent, process, runnable_child

CLI = [sys.executable, "-m", "exectracer"]


@pytest.fixture
def two(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    collecting_parent(process(10, 1)).write(folder / "a.xtrace", stop_ns=2000)
    runnable_child(process(11, 10)).write(folder / "b.xtrace", stop_ns=2000)
    return folder


def test_a_directory_opens_as_one_trace_of_its_processes(two: Path) -> None:
    trace = exectracer.load(two)
    assert [(p.pid, p.ppid, p.host) for p in trace.processes] == [(10, 1, "box"), (11, 10, "box")]
    assert [row["pid"] for row in trace.metadata["processes"]] == [10, 11]
    ids = sorted(t.id for t in trace.tasks)
    assert len(ids) == len(set(ids)) == 2 and ids[0] == 2  # the first keeps its ids; the other's are moved
    by_function = {t.start_function: t for t in trace.tasks}
    assert by_function["parent.handler"].pid == 10 and by_function["child.work"].pid == 11
    child = by_function["child.work"]
    assert child.id == 2 + 10 and child.parent_id == 1 + 10  # ids below 10: the next process's are 10 apart
    assert {t.pid for t in trace.threads} == {10, 11}
    assert trace.pid_of(child.id) == 11


def test_a_collection_holds_up_only_its_own_processs_goroutines(two: Path) -> None:
    trace = exectracer.load(two)
    doc = trace.analysis.summary([100])
    rows = {g["start_function"] or g["name"]: g for g in doc["goroutines"]}
    assert all(g["pid"] in (10, 11) for g in doc["goroutines"])
    child = rows["child.work"]
    assert child["time_ns"]["runnable"] == 250 and child["time_ns"]["gc"] == 0  # runnable through 10's GC
    main = next(g for g in doc["goroutines"] if g["pid"] == 10 and g["kind"] == "thread")
    assert main["time_ns"]["gc"] == 100
    by_pid = {p["pid"]: p for p in doc["processes"]}
    assert by_pid[10]["gc"]["collections"] == 1 and by_pid[11]["gc"]["collections"] == 0
    assert by_pid[11]["mmu"][0]["utilization"] == 1.0 and by_pid[10]["mmu"][0]["utilization"] == 0.0
    assert doc["mmu"][0]["utilization"] == 0.0  # the worst process's
    assert trace.analysis.mmu([100], pid=11)[0].utilization == 1.0


def test_profiles_can_be_limited_to_a_process(two: Path) -> None:
    a = exectracer.load(two).analysis
    assert {e.function for e in a.profile("net").top()} == {"parent.fetch"}
    assert a.profile("net", pid=11).total() == 0
    assert a.profile("sched", pid=11).total() == 250
    with pytest.raises(ValueError, match="no process 99"):
        a.profile("net", pid=99)


def test_summary_json_and_text_group_by_process(two: Path) -> None:
    out = subprocess.run([*CLI, "summary", "--json", str(two)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [{k: p[k] for k in ("pid", "ppid", "host", "argv", "start_ns", "end_ns")} for p in doc["processes"]] == [
        {"pid": 10, "ppid": 1, "host": "box", "argv": ["app.py", "10"], "start_ns": 0, "end_ns": 2000},
        {"pid": 11, "ppid": 10, "host": "box", "argv": ["app.py", "11"], "start_ns": 0, "end_ns": 2000},
    ]
    assert all("pid" in g for g in doc["goroutines"])
    text = subprocess.run([*CLI, "summary", "--width", "0", str(two)], capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    first, second = text.stdout.index("Process 10 (app.py 10)"), text.stdout.index("Process 11 (app.py 11)")
    assert "Processes (2)" in text.stdout
    assert first < text.stdout.index("parent.handler") < second < text.stdout.index("child.work")


def test_pprof_takes_a_pid(two: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.pb.gz"
    args = [*CLI, "pprof", "-t", "sched", "--pid", "11", "-o", str(out), str(two)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 waits" in result.stdout
    args[args.index("11")] = "12"
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "no process 12 in the trace" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_host_is_aligned_by_its_wall_clock(tmp_path: Path) -> None:
    here = collecting_parent(process(10, 1, start_ns=5_000))
    # started 1000 ns after the first by the wall clock; its monotonic clock reads 90_000 then
    there = runnable_child(process(11, None, host="other", start_ns=90_000, wall=WALL + 1000))
    here.rows = [v + 5_000 if i % 3 == 1 else v for i, v in enumerate(here.rows)]
    there.rows = [v + 90_000 if i % 3 == 1 else v for i, v in enumerate(there.rows)]
    trace = exectracer.load([here.write(tmp_path / "a.xtrace", 7_000), there.write(tmp_path / "b.xtrace", 92_000)])
    other = trace.processes[1]
    assert other.aligned_by == "wall clock" and other.offset_ns == 5_000 + 1000 - 90_000
    assert (trace.processes[0].start_ns, other.start_ns) == (5_000, 6_000)
    child = next(t for t in trace.tasks if t.start_function == "child.work")
    assert child.created_ns == 6_000 and child.pid == 11


def test_same_host_processes_keep_their_clock(tmp_path: Path) -> None:
    a = collecting_parent(process(10, 1, start_ns=0))
    b = runnable_child(process(11, 10, start_ns=0, wall=WALL + 123_456))  # wall clocks ignored on one host
    trace = exectracer.load([a.write(tmp_path / "a.xtrace", 2000), b.write(tmp_path / "b.xtrace", 2000)])
    assert [p.offset_ns for p in trace.processes] == [0, 0]
    assert [p.aligned_by for p in trace.processes] == ["monotonic clock", "monotonic clock"]


def test_the_same_recording_twice_is_an_error(two: Path) -> None:
    with pytest.raises(TraceFormatError, match=r"the same recording as .*a.xtrace \(pid 10"):
        exectracer.load([two / "a.xtrace", two / "a.xtrace"])


def test_another_host_without_a_wall_clock_anchor_is_an_error(tmp_path: Path) -> None:
    a = collecting_parent(process(10, 1))
    b = runnable_child(process(11, None, host="other"))
    del b.metadata["start_wall_ns"]
    with pytest.raises(TraceFormatError, match="pid 11 on host other has no wall-clock anchor"):
        exectracer.load([a.write(tmp_path / "a.xtrace", 2000), b.write(tmp_path / "b.xtrace", 2000)])


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="a directory without any"):
        exectracer.load(tmp_path)


def test_a_runs_file_opens_with_its_childrens_files_of_the_same_run(tmp_path: Path) -> None:
    parent, child, stale = process(10, 1), process(11, 10), process(12, 10)
    parent.metadata["run_id"] = child.metadata["run_id"] = "run-a"
    stale.metadata["run_id"] = "run-b"  # an earlier run with the same -o
    out = collecting_parent(parent).write(tmp_path / "out.xtrace", stop_ns=2000)
    runnable_child(child).write(tmp_path / "out.11.xtrace", stop_ns=2000)
    runnable_child(stale).write(tmp_path / "out.12.xtrace", stop_ns=2000)
    (tmp_path / "out.13.xtrace").write_bytes(b"not a trace")
    assert [p.pid for p in exectracer.load(out).processes] == [10, 11]
    assert [p.pid for p in exectracer.load(out, children=False).processes] == [10]


def test_two_copies_of_one_recording_analyse_as_it_does_twice(tmp_path: Path) -> None:
    """Every id space renumbered (goroutines, loops, user tasks, work items, strings, stacks, wakers) keeps each
    process's analysis what it is alone."""
    one = model_trace()
    one.metadata.update(pid=1, hostname="box")
    other = model_trace()
    other.metadata.update(pid=2, hostname="box")
    alone = exectracer.load(one.write(tmp_path / "one.xtrace", stop_ns=END)).analysis.summary([100])
    both = exectracer.load([tmp_path / "one.xtrace", other.write(tmp_path / "other.xtrace", stop_ns=END)])
    doc = both.analysis.summary([100])
    step = 10 ** len(str(max(g["id"] for g in alone["goroutines"])))

    def rows(pid: int, shift: int) -> list[tuple]:
        found = [g for g in doc["goroutines"] if g["pid"] == pid]
        return sorted((g["id"] - shift, g["label"], g["kind"], json.dumps(g["time_ns"])) for g in found)

    expected = sorted((g["id"], g["label"], g["kind"], json.dumps(g["time_ns"])) for g in alone["goroutines"])
    assert rows(1, 0) == expected and rows(2, step) == expected
    assert [(w["function"], w["count"] * 2, w["total_ns"] * 2) for w in alone["top_waits"]] == [
        (w["function"], w["count"], w["total_ns"]) for w in doc["top_waits"]
    ]
    assert doc["gc"]["collections"] == 2 * alone["gc"]["collections"]
    assert [len(both.analysis.profile(t, pid=2).stacks) for t in ("net", "sync", "sched")] == [
        len(exectracer.load(tmp_path / "one.xtrace").analysis.profile(t).stacks) for t in ("net", "sync", "sched")
    ]


def test_a_process_that_ended_first_ends_its_goroutines_with_it(tmp_path: Path) -> None:
    """A child whose recording stopped at 600 of a trace that runs to 2000: its goroutines' last states end at
    600 (they were not running, nor waiting, after their process was gone), the parent's at 2000."""
    folder = tmp_path / "run"
    folder.mkdir()
    collecting_parent(process(10, 1)).write(folder / "a.xtrace", stop_ns=2000)
    runnable_child(process(11, 10)).write(folder / "b.xtrace", stop_ns=600)
    trace = exectracer.load(folder)
    states = trace.analysis.states
    pids = trace.pids_of(trace.analysis.goroutines.ids[states.gi])
    ends = {pid: int(states.end[pids == pid].max()) - trace.start_ns for pid in (10, 11)}
    assert ends == {10: 2000, 11: 600}
    rows = {g["start_function"] or g["name"]: g for g in trace.analysis.summary()["goroutines"]}
    assert sum(rows["child.work"]["time_ns"]["blocked"].values()) == 600 - 400  # asleep from 400 until it ended
