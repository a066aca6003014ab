"""The state model, summary, profiles and MMU on hand-built traces with known answers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.analysis import parallel, states
from exectracer.analysis.goroutines import group_order
from exectracer.analysis.ranges import RangeSet
from exectracer.analysis.states import StateIntervals
from exectracer.analysis.summary import total_time
from exectracer.format.events import Kind, Waker
from exectracer.reader import TraceWarning

from support.model_trace import END, MAIN, POOL, SPAWNER, TASK, WORKER, model_trace
from support.tracebuilder import TraceBuilder


@pytest.fixture
def model(tmp_path: Path) -> exectracer.Trace:
    return exectracer.load(model_trace().write(tmp_path / "model.xtrace", stop_ns=END), strict=True)


def by_id(doc: dict, gid: int) -> dict:
    return next(g for g in doc["goroutines"] if g["id"] == gid)


def test_task_goes_through_every_state(model: exectracer.Trace) -> None:
    t = by_id(model.analysis.summary(), TASK)
    assert t["kind"] == "task" and t["start_function"] == "app.handler" and t["parent_id"] == MAIN
    assert t["created_ns"] == 90 and t["ended_ns"] == 1200
    times = t["time_ns"]
    assert times["running"] == 50 + 80 + 50 + 100
    assert (
        times["runnable"] == 50 + 20 + 50 + 100
    )  # the yield: runnable from the step's end, not from the wake-up inside it
    assert times["blocked"] == {"network": 300, "sync": 300, "sleep": 0, "syscall": 0, "other": 0, "other_estimated": 0}
    assert times["gc"] == 20


def test_syscall_and_other_waits(model: exectracer.Trace) -> None:
    times = by_id(model.analysis.summary(), SPAWNER)["time_ns"]
    assert times["blocked"] == {"network": 0, "sync": 0, "sleep": 0, "syscall": 80, "other": 80, "other_estimated": 0}
    assert times["running"] == 30 and times["runnable"] == 30
    assert model.analysis.profile("syscall").top(1)[0].function == "asyncio.subprocess.Process.wait"


def test_thread_states_with_gil_estimate(model: exectracer.Trace) -> None:
    w = by_id(model.analysis.summary(), WORKER)["time_ns"]
    assert w["runnable"] == 10 + 50  # created to started, then the GIL wait at the end of the sleep
    assert w["blocked"]["sleep"] == 250
    assert w["blocked"]["sync"] == 200
    assert w["running"] == 90 + 100 + 300


def test_loop_thread_idle_is_a_network_wait(model: exectracer.Trace) -> None:
    m = by_id(model.analysis.summary(), MAIN)["time_ns"]
    assert m["blocked"]["network"] == 500
    assert m["running"] == END - 500
    assert m["gc"] == 20  # the collection ran while the thread ran the task


def test_pool_worker_waits_for_work(model: exectracer.Trace) -> None:
    p = by_id(model.analysis.summary(), POOL)["time_ns"]
    assert p["running"] == 500 + 500
    assert p["blocked"]["sync"] == 1500 + (END - 4500)


def test_state_intervals_cover_each_goroutine_without_gaps(model: exectracer.Trace) -> None:
    s = model.analysis.states
    table = s.table()
    for g in (MAIN, TASK, WORKER, POOL, SPAWNER):
        rows = table.g == g
        start, end = table.start_ns[rows], table.end_ns[rows]
        assert np.all(start[1:] == end[:-1]), g
        assert np.all(end > start)
    task = table.g == TASK
    assert list(table.state[task]) == [
        "runnable",
        "running",
        "network",
        "runnable",
        "running",
        "sync",
        "runnable",
        "running",
        "runnable",
        "running",
    ]


@pytest.mark.parametrize("max_merged_groups", [states.MAX_MERGED_GROUPS, 1])
def test_state_model_in_two_halves_matches_one(
    model: exectracer.Trace, monkeypatch: pytest.MonkeyPatch, max_merged_groups: int
) -> None:
    whole = StateIntervals(model)
    single_rows, single_counts, single_unplaced = states._grouped_rows(model, whole.goroutines)
    monkeypatch.setattr(states, "WORKERS", 2)
    monkeypatch.setattr(states, "MIN_PART_ROWS", 1)
    monkeypatch.setattr(states, "MAX_MERGED_GROUPS", max_merged_groups)  # 1: the halves' indices sorted as one
    rows, counts, unplaced = states._grouped_rows(model, whole.goroutines)
    assert np.array_equal(rows, single_rows) and np.array_equal(counts, single_counts)
    assert np.array_equal(unplaced, single_unplaced)
    gi = np.repeat(np.arange(len(counts)), counts)
    first, second = states._halves(gi)
    assert first.stop == second.start and gi[first.stop - 1] != gi[second.start]
    halves = StateIntervals(model)
    for column in ("gi", "state", "start", "end", "stack", "waker"):
        assert np.array_equal(getattr(halves, column), getattr(whole, column)), column
    assert halves.anomalies == whole.anomalies == {}


def test_wakers_and_resume_stacks(model: exectracer.Trace) -> None:
    s = model.analysis.states
    rows = np.flatnonzero(s.goroutines.ids[s.gi] == TASK)
    network = rows[s.state[rows] == 2][0]
    assert s.waker[network] & 7 == Waker.IO
    frames = model.stacks[int(s.stack[network])]
    assert frames[0].function == "app.read_backend"
    resumed = rows[(s.state[rows] == 1) & (s.start[rows] == 500)][0]
    assert model.stacks[int(s.stack[resumed])][0].function == "app.read_backend"
    worker_sync = np.flatnonzero((s.goroutines.ids[s.gi] == WORKER) & (s.state == 3))[0]
    assert s.waker[worker_sync] == Waker.THREAD | MAIN << 3


def test_gc_stats_and_mmu(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(MAIN, 0, None, "MainThread")
    ms = 1_000_000
    for start, gen, length in ((100 * ms, 0, 1 * ms), (400 * ms, 2, 8 * ms), (700 * ms, 1, 2 * ms)):
        b.event(Kind.GC_START, start, MAIN, gen).event(Kind.GC_END, start + length, MAIN, 5)
    trace = exectracer.load(b.write(tmp_path / "gc.xtrace", stop_ns=1000 * ms))
    doc = trace.analysis.summary()
    assert doc["gc"]["collections"] == 3 and doc["gc"]["total_ns"] == 11 * ms and doc["gc"]["max_ns"] == 8 * ms
    assert doc["gc"]["by_generation"]["2"] == {"collections": 1, "total_ns": 8 * ms, "max_ns": 8 * ms}
    mmu = {p["window_ns"]: p for p in doc["mmu"]}
    assert mmu[1 * ms]["utilization"] == 0.0
    assert mmu[10 * ms]["utilization"] == pytest.approx(0.2)
    assert mmu[100 * ms]["utilization"] == pytest.approx(0.92)
    assert mmu[1000 * ms]["utilization"] == pytest.approx(1 - 0.011)
    worst = mmu[10 * ms]["worst"][0]
    assert worst["start_ns"] <= 400 * ms and worst["end_ns"] >= 408 * ms
    points = trace.analysis.mmu([5 * ms, 2 * ms])
    assert [p.utilization for p in points] == [0.0, 0.0]
    assert len(trace.analysis.mmu([200 * ms])[0].worst) >= 2  # disjoint windows around different collections
    assert by_id(doc, MAIN)["time_ns"]["gc"] == 11 * ms


def test_no_gc_means_full_utilization(model: exectracer.Trace, tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(MAIN, 0, None, "MainThread")
    trace = exectracer.load(b.write(tmp_path / "nogc.xtrace", stop_ns=END))
    assert all(p["utilization"] == 1.0 and p["worst"] == [] for p in trace.analysis.summary()["mmu"])


def test_scheduler_latency_and_user_latency(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(MAIN, 0, None, "MainThread")
    for i, wait in enumerate((10, 20, 30, 40, 1000)):
        g = 10 + i
        b.task(g, 100, "app.t")
        b.ready(100, g).event(Kind.TASK_STEP, 100 + wait, g).event(Kind.TASK_DONE, 2000, g)
    name, other = b.string("checkout"), b.string("render")
    b.event(Kind.USER_TASK_NAME, 0, 1, name).event(Kind.USER_TASK_BEGIN, 100, MAIN, 1).event(
        Kind.USER_TASK_END, 600, MAIN, 1
    )
    b.event(Kind.USER_TASK_NAME, 0, 2, name).event(Kind.USER_TASK_BEGIN, 200, MAIN, 2).event(
        Kind.USER_TASK_END, 400, MAIN, 2
    )
    b.event(Kind.REGION_BEGIN, 300, MAIN, other).event(Kind.REGION_END, 350, MAIN, other)
    doc = exectracer.load(b.write(tmp_path / "lat.xtrace", stop_ns=3000)).analysis.summary()
    assert doc["scheduler_latency_ns"] == {"count": 5, "p50": 30, "p90": 1000, "p99": 1000, "max": 1000}
    assert doc["user_tasks"] == [
        {"name": "checkout", "count": 2, "p50_ns": 200, "p90_ns": 500, "p99_ns": 500, "max_ns": 500}
    ]
    assert doc["user_regions"] == [
        {"name": "render", "count": 1, "p50_ns": 50, "p90_ns": 50, "p99_ns": 50, "max_ns": 50}
    ]
    (group,) = [grp for grp in doc["groups"] if grp["start_function"] == "app.t"]
    assert group["count"] == 5 and group["time_ns"]["runnable"] == 1100


def test_summary_document_shape(model: exectracer.Trace) -> None:
    doc = model.analysis.summary()
    assert set(doc) >= {
        "trace",
        "goroutines",
        "groups",
        "gc",
        "scheduler_latency_ns",
        "mmu",
        "user_tasks",
        "user_regions",
    }
    assert set(doc["trace"]) >= {"format_version", "python", "pid", "duration_ns", "events", "lost"}
    assert doc["trace"]["python"] == "CPython 3.x" and doc["trace"]["duration_ns"] == END
    for g in doc["goroutines"]:
        assert set(g) >= {"id", "kind", "name", "start_function", "parent_id", "created_ns", "ended_ns", "time_ns"}
        assert set(g["time_ns"]) == {"running", "runnable", "gc", "blocked"}
        assert set(g["time_ns"]["blocked"]) == {"network", "sync", "sleep", "syscall", "other", "other_estimated"}
    assert [p["window_ns"] for p in doc["mmu"]][:4] == [1_000_000, 10_000_000, 100_000_000, 1_000_000_000]
    assert set(doc["gc"]["by_generation"]) == {"0", "1", "2"}


def flat(time_ns: dict) -> list[int]:
    return [time_ns["running"], time_ns["runnable"], time_ns["gc"], *time_ns["blocked"].values()]


def test_groups_sum_their_goroutines(model: exectracer.Trace) -> None:
    doc = model.analysis.summary()
    assert sum(grp["count"] for grp in doc["groups"]) == len(doc["goroutines"]) and len(doc["groups"]) > 2
    for grp in doc["groups"]:
        members = [
            g for g in doc["goroutines"] if (g["start_function"], g["kind"]) == (grp["start_function"], grp["kind"])
        ]
        assert grp["count"] == len(members)
        assert flat(grp["time_ns"]) == [
            sum(column) for column in zip(*(flat(g["time_ns"]) for g in members), strict=True)
        ]
    totals = [total_time(grp["time_ns"]) for grp in doc["groups"]]
    assert totals == sorted(totals, reverse=True)


def test_blocking_profiles(model: exectracer.Trace) -> None:
    a = model.analysis
    net = a.profile("net")
    assert net.sample_types == (("contentions", "count"), ("delay", "nanoseconds"))
    assert net.values.tolist() == [[1, 300]]
    assert net.stack_frames(int(net.stacks[0]))[0].function == "app.read_backend"
    sync = {
        net.stack_frames(int(sid))[0].function: v
        for sid, v in zip(a.profile("sync").stacks.tolist(), a.profile("sync").values.tolist(), strict=True)
    }
    assert sync["app.update"] == [1, 300] and sync["app.take"] == [1, 200]
    assert sync["concurrent.futures.thread._worker"] == [2, 1500 + END - 4500]
    assert a.profile("sleep").total() == 250
    assert a.profile("syscall").total() == 80


def test_sched_and_gil_profiles_use_the_resume_point(model: exectracer.Trace) -> None:
    a = model.analysis
    sched = a.profile("sched")
    per_function = {}
    for sid, (_count, delay) in zip(sched.stacks.tolist(), sched.values.tolist(), strict=True):
        per_function[sched.stack_frames(sid)[0].function] = (
            per_function.get(sched.stack_frames(sid)[0].function, 0) + delay
        )
    assert per_function["app.read_backend"] == 20
    assert per_function["app.update"] == 50 + 100
    assert per_function["app.handler"] == 50  # the first step: its entry point
    assert per_function["app.pause"] == 50
    assert per_function["app.work"] == 10  # the thread's start
    gil = a.profile("gil")
    assert gil.values.tolist() == [[1, 50]] and gil.stack_frames(int(gil.stacks[0]))[0].function == "app.pause"


def test_profile_selections(model: exectracer.Trace, tmp_path: Path) -> None:
    a = model.analysis
    assert a.profile("net", start_ns=300, end_ns=450).total() == 150
    assert a.profile("sync", group="app.work").total() == 200
    assert a.profile("net", group="app.work").total() == 0
    with pytest.raises(ValueError, match="empty time range"):
        a.profile("net", start_ns=500, end_ns=400)
    with pytest.raises(ValueError, match="unknown profile type"):
        a.profile("disk")
    b = model_trace()
    region = b.string("fetch")
    b.event(Kind.REGION_BEGIN, 250, TASK, region).event(Kind.REGION_END, 400, TASK, region)
    trace = exectracer.load(b.write(tmp_path / "region.xtrace", stop_ns=END))
    assert trace.analysis.profile("net", region="fetch").total() == 150
    assert trace.analysis.profile("sync", region="fetch").total() == 0


def test_cpu_profile_from_samples(tmp_path: Path) -> None:
    b = TraceBuilder(sample_interval=0.005)
    b.thread(MAIN, 0, None, "MainThread")
    hot = b.stack(("app.hot", "app.py", 5), ("app.main", "app.py", 1))
    idle = b.stack(("app.idle", "app.py", 9))
    for i in range(10):
        b.event(Kind.THREAD_SAMPLE, 100 + i, MAIN, hot << 4 | 1)  # running
    for i in range(5):
        b.event(Kind.THREAD_SAMPLE, 200 + i, MAIN, idle << 4 | 2)  # sleeping: not CPU
    cpu = exectracer.load(b.write(tmp_path / "cpu.xtrace", stop_ns=1000)).analysis.profile("cpu")
    assert cpu.sample_types == (("samples", "count"), ("cpu", "nanoseconds"))
    assert cpu.values.tolist() == [[10, 10 * 5_000_000]] and cpu.period_ns == 5_000_000
    top = cpu.top()
    assert [(e.function, e.flat, e.cum) for e in top] == [("app.hot", 50_000_000, 50_000_000)]


def test_torn_tail_still_analyses(tmp_path: Path) -> None:
    builder = model_trace()
    last_chunk = 4  # the pool worker's work items, added last
    path = builder.write(
        tmp_path / "torn.xtrace", stop_ns=None, truncate=20, chunk_events=(len(builder.rows) // 3) - last_chunk
    )
    with pytest.warns(TraceWarning, match="truncated"):
        trace = exectracer.load(path)
    doc = trace.analysis.summary()
    assert doc["trace"]["lost"]["clean_end"] is False and doc["trace"]["lost"]["truncated_bytes"] > 0
    assert by_id(doc, TASK)["time_ns"]["blocked"]["network"] == 300
    assert by_id(doc, WORKER)["time_ns"]["blocked"]["sync"] == 200
    assert by_id(doc, POOL)["time_ns"]["blocked"]["sync"] == 0  # its work items were in the torn chunk
    assert doc["trace"]["duration_ns"] == 2220  # up to the last event read


def test_unknown_goroutines_and_empty_trace(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.event(Kind.TASK_STEP, 10, 99).event(Kind.TASK_SUSPEND, 20, 99)  # never created: seen anyway
    b.event(Kind.HEAP_RSS, 30, 0, 1)
    doc = exectracer.load(b.write(tmp_path / "odd.xtrace", stop_ns=100)).analysis.summary()
    assert [g["id"] for g in doc["goroutines"]] == []  # steps of a task the trace never names are skipped
    assert doc["scheduler_latency_ns"]["count"] == 0


def test_group_order_is_stable_for_many_goroutines() -> None:
    rng = np.random.default_rng(1)
    for groups in (5, 70_000):
        index = rng.integers(0, groups, 50_000)
        order = group_order(index, groups)
        assert np.array_equal(order, np.argsort(index, kind="stable"))


def test_range_set_union_and_coverage() -> None:
    r = RangeSet(np.array([10, 15, 40, 50]), np.array([20, 30, 45, 50]))
    assert r.starts.tolist() == [10, 40] and r.ends.tolist() == [30, 45] and r.total == 25
    assert r.covered(np.array([0, 12, 25, 31]), np.array([100, 13, 42, 39])).tolist() == [25, 1, 7, 0]


def test_range_set_may_overlap_never_misses_and_rarely_errs() -> None:
    rng = np.random.default_rng(7)
    starts = np.sort(rng.integers(1_000_000, 9_000_000, 40))
    r = RangeSet(starts, starts + rng.integers(1, 5_000, 40))
    a = rng.integers(0, 10_000_000, 200_000)
    b = a + rng.integers(0, 20_000, len(a))
    exact = r.covered(a, b) > 0
    maybe = r.may_overlap(a, b)
    assert exact.any() and np.all(maybe[exact])
    assert (maybe & ~exact).sum() < 0.05 * len(a)
    assert not r.may_overlap(
        np.array([0, 9_900_000, 5]), np.array([999_999, 10_000_000, 5])
    ).any()  # before, after, empty
    assert not RangeSet(np.empty(0, np.int64), np.empty(0, np.int64)).may_overlap(a, b).any()


@pytest.mark.parametrize("dropped", [0, 1, 300, states.MAX_PACK_MOVES + 1])
@pytest.mark.parametrize("to_end", [False, True])
def test_pack_moves_kept_rows_to_one_side(dropped: int, to_end: bool) -> None:
    rng = np.random.default_rng(dropped)
    n = 20_000
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(n, dropped, replace=False)] = False
    keep[:3] = keep[-3:] = dropped == 0  # runs at both edges are dropped too
    a, b = rng.integers(0, 1 << 40, n), rng.integers(0, 100, n).astype(np.int8)
    want = a[keep], b[keep]
    packed = states._pack((a, b), keep, to_end)
    assert [p.tolist() for p in packed] == [w.tolist() for w in want]
    offset = (packed[0].__array_interface__["data"][0] - a.__array_interface__["data"][0]) // a.itemsize
    assert offset == (len(a) - len(want[0]) if to_end else 0)  # in place, at the chosen side


def test_run_all_keeps_order_and_hands_on_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "WORKERS", 2)
    assert parallel.run_all([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
    with pytest.raises(ZeroDivisionError):
        parallel.run_all([lambda: 1, lambda: 1 // 0])


def test_analysis_threads_stay_out_of_a_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "WORKERS", 2)
    path = tmp_path / "t.xtrace"
    with exectracer.trace(path):
        threads = parallel.run_all([threading.current_thread, threading.current_thread])
    assert threads[1] is not threading.current_thread()
    names = [t.name for t in exectracer.load(path).threads]
    assert names and not [n for n in names if n.startswith("exectracer")]
