"""The CPU profile from THREAD_CPU and the waits estimated from samples, on hand-built traces with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.analysis.profiles import ESTIMATED, UNSAMPLED
from exectracer.analysis.states import State
from exectracer.format.events import Category, Kind, ThreadState
from exectracer.report import render
from exectracer.web.api import ViewerAPI

from support.tracebuilder import TraceBuilder

MAIN, WORKER, TASK = 1, 2, 3
LOOP = 9
MS = 1_000_000
END = 100 * MS
RUNNING, SLEEPING, GIL = int(ThreadState.RUNNING), int(ThreadState.SLEEPING), int(ThreadState.GIL)


def sample(b: TraceBuilder, ts: int, g: int, stack: int, state: int, cpu: int | None) -> None:
    """A THREAD_SAMPLE, and the THREAD_CPU the sampler writes with it."""
    b.event(Kind.THREAD_SAMPLE, ts, g, stack << 4 | state)
    if cpu is not None:
        b.event(Kind.THREAD_CPU, ts, g, cpu)


def load(b: TraceBuilder, tmp_path: Path) -> exectracer.Trace:
    return exectracer.load(b.write(tmp_path / "t.xtrace", stop_ns=END), strict=True)


def flat(profile) -> dict[str, int]:
    return {e.function: e.flat for e in profile.top(20)}


def test_cpu_profile_sums_the_os_cpu_time_between_samples(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(MAIN, 0, None, "MainThread")  # there before the recording: its first reading is the baseline
    b.thread(WORKER, 5 * MS, "app.work", "worker", created=5 * MS)  # created in it: counts from zero
    hot = b.stack(("app.hot", "app.py", 5))
    wait = b.stack(("app.wait", "app.py", 9))
    b.event(Kind.THREAD_CPU, 1 * MS, 0, 0)  # the process, at the first sample
    sample(b, 1 * MS, MAIN, hot, RUNNING, 500 * MS)
    sample(b, 11 * MS, MAIN, hot, SLEEPING, 508 * MS)  # asleep when sampled (a GIL wait): its CPU counts all the same
    sample(b, 11 * MS, WORKER, wait, RUNNING, 1 * MS)  # running when sampled, yet used 1 ms in all
    b.event(Kind.THREAD_CPU, 11 * MS, 0, 12 * MS)  # 3 ms more than the threads: the tracer's own
    b.event(Kind.THREAD_CPU, 15 * MS, WORKER, 4 * MS).event(Kind.THREAD_END, 15 * MS, WORKER)  # at its end
    sample(b, 21 * MS, MAIN, wait, SLEEPING, 508 * MS)
    b.event(Kind.THREAD_CPU, 21 * MS, 0, 15 * MS)
    cpu = load(b, tmp_path).analysis.profile("cpu")
    assert flat(cpu) == {"app.hot": 8 * MS, "app.wait": 1 * MS + 3 * MS, UNSAMPLED.function: 3 * MS}
    assert cpu.total() == 15 * MS  # the process's CPU time between its first and last reading
    assert cpu.total(0) == 4  # readings that found CPU time used


def test_cpu_profile_of_a_group_or_a_region_leaves_the_process_out(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(WORKER, 0, "app.work", "worker", created=0)
    hot = b.stack(("app.hot", "app.py", 5))
    b.event(Kind.THREAD_CPU, 0, 0, 0)
    sample(b, 10 * MS, WORKER, hot, RUNNING, 7 * MS)
    b.event(Kind.THREAD_CPU, 10 * MS, 0, 10 * MS)
    trace = load(b, tmp_path)
    assert flat(trace.analysis.profile("cpu")) == {"app.hot": 7 * MS, UNSAMPLED.function: 3 * MS}
    assert flat(trace.analysis.profile("cpu", group="app.work")) == {"app.hot": 7 * MS}
    assert trace.analysis.profile("cpu", start_ns=11 * MS).total() == 0


def test_cpu_a_busy_loop_samples_in_its_select_goes_to_the_task_steps(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(MAIN, 0, None, "MainThread")
    b.event(Kind.LOOP_START, 0, LOOP, MAIN)
    b.task(TASK, 0, "app.handler", parent=MAIN)
    b.event(Kind.TASK_LOOP, 0, TASK, LOOP)
    select = b.stack(("selectors.EpollSelector.select", "selectors.py", 468))
    inside = b.stack(("app.compute", "app.py", 7), ("app.handler", "app.py", 3))
    sample(b, 0, MAIN, select, RUNNING, 100 * MS)  # the baseline
    b.event(Kind.TASK_STEP, 2 * MS, TASK).wait(Kind.TASK_SUSPEND, 8 * MS, TASK, Category.SLEEP)
    sample(b, 10 * MS, MAIN, select, RUNNING, 110 * MS)  # 10 ms of CPU, 6 of the 10 ms in the task's step
    b.event(Kind.TASK_STEP, 12 * MS, TASK)
    sample(b, 15 * MS, MAIN, inside, RUNNING, 114 * MS)  # caught inside the step: keeps it
    b.wait(Kind.TASK_SUSPEND, 18 * MS, TASK, Category.SLEEP)
    sample(b, 20 * MS, MAIN, select, RUNNING, 118 * MS)  # 3 of 5 ms in the step since the last sample
    trace = load(b, tmp_path)
    assert flat(trace.analysis.profile("cpu")) == {
        "app.handler": 6 * MS + int(4 * MS * 3 / 5),  # the task's entry point: where in it is not known
        "selectors.EpollSelector.select": 4 * MS + 4 * MS - int(4 * MS * 3 / 5),
        "app.compute": 4 * MS,
    }
    assert trace.analysis.profile("cpu", group="app.handler").total() == 6 * MS + int(4 * MS * 3 / 5)


def test_old_traces_without_cpu_times_count_running_samples(tmp_path: Path) -> None:
    b = TraceBuilder(sample_interval=0.005)
    b.thread(MAIN, 0, None, "MainThread")
    hot = b.stack(("app.hot", "app.py", 5))
    for i in range(4):
        sample(b, i * MS, MAIN, hot, RUNNING if i % 2 else SLEEPING, None)
    assert flat(load(b, tmp_path).analysis.profile("cpu")) == {"app.hot": 2 * 5 * MS}


def blocked_in_c(b: TraceBuilder, cpu: list[int], states: list[int] | None = None, first: int = 20) -> int:
    """A running worker sampled every 10 ms from ``first`` ms, in the stack of a C call; the stack id."""
    b.thread(WORKER, 0, "app.work", "worker", created=0)
    stack = b.stack(("queue.SimpleQueue.get", "?", 0), ("app.work", "app.py", 4))
    for i, value in enumerate(cpu):
        sample(b, (first + 10 * i) * MS, WORKER, stack, (states or [SLEEPING] * len(cpu))[i], value)
    return stack


def intervals(trace: exectracer.Trace, g: int) -> list[tuple[str, int, int]]:
    table = trace.analysis.states.table()
    mine = table.g == g
    return [
        (state, start // MS, end // MS)
        for state, start, end in zip(
            table.state[mine].tolist(), table.start_ns[mine].tolist(), table.end_ns[mine].tolist(), strict=True
        )
    ]


def test_consecutive_samples_asleep_without_cpu_make_an_estimated_wait(tmp_path: Path) -> None:
    b = TraceBuilder()
    stack = blocked_in_c(b, [5 * MS, 6 * MS, 6 * MS, 6 * MS, 6 * MS, 7 * MS])
    trace = load(b, tmp_path)
    # from the first sample that saw it asleep with the CPU time the next ones had, to the last of them
    assert intervals(trace, WORKER) == [("running", 0, 30), ("other_estimated", 30, 60), ("running", 60, 100)]
    s = trace.analysis.states
    assert s.stack[s.state == State.OTHER_ESTIMATED].tolist() == [stack]
    doc = trace.analysis.summary()
    worker = next(g for g in doc["goroutines"] if g["id"] == WORKER)
    assert worker["time_ns"]["blocked"]["other_estimated"] == 30 * MS and worker["time_ns"]["running"] == 70 * MS
    assert doc["top_waits"][0]["category"] == "other_estimated"
    assert "other (est.)" in render(doc, "t.xtrace")
    waits = trace.analysis.profile("other")  # with the hooked other waits, under a frame that says it is estimated
    assert [(e.function, e.flat) for e in waits.top(1)] == [(ESTIMATED.function, 30 * MS)]
    frames = [f.function for f in waits.stack_frames(int(waits.stacks[0]))]
    assert frames[:2] == [ESTIMATED.function, "queue.SimpleQueue.get"]
    assert waits.estimated_total() == waits.total() == 30 * MS
    assert trace.analysis.profile("cpu").total() == 7 * MS  # all its CPU time, since it was created


@pytest.mark.parametrize(
    ("cpu", "states"),
    [
        ([5 * MS, 6 * MS, 6 * MS + 1, 6 * MS + 2], None),  # it ran a little between samples: woken (a GIL wait)
        ([5 * MS, 6 * MS, 6 * MS, 6 * MS], [SLEEPING, RUNNING, RUNNING, SLEEPING]),  # never twice asleep in a row
        ([5 * MS, 6 * MS, 6 * MS, 6 * MS], [GIL] * 4),  # asleep waiting for the GIL, the sampler saw: runnable
        ([5 * MS, 6 * MS, 6 * MS, 6 * MS], [SLEEPING, GIL, SLEEPING, GIL]),  # no two in a row asleep in a call
        ([None, None, None, None], None),  # no CPU time (an older trace, no /proc): nothing to tell a GIL wait by
    ],
)
def test_no_estimated_wait_without_two_samples_asleep_and_no_cpu(tmp_path: Path, cpu, states) -> None:
    b = TraceBuilder()
    blocked_in_c(b, cpu, states)
    assert intervals(load(b, tmp_path), WORKER) == [("running", 0, 100)]


def test_no_estimated_wait_shorter_than_the_switch_interval(tmp_path: Path) -> None:
    # a thread waiting for the GIL wakes once a switch interval: two samples closer than that prove nothing
    b = TraceBuilder()
    b.thread(WORKER, 0, "app.work", "worker", created=0)
    stack = b.stack(("app.work", "app.py", 4))
    for ts in (20 * MS, 24 * MS):  # the sampler fell behind: two ticks 4 ms apart
        sample(b, ts, WORKER, stack, SLEEPING, 5 * MS)
    assert intervals(load(b, tmp_path), WORKER) == [("running", 0, 100)]
    b = TraceBuilder()
    b.metadata["switch_interval"] = 0.05  # the program made it 50 ms
    blocked_in_c(b, [5 * MS] * 4)  # 30 ms asleep
    assert intervals(load(b, tmp_path), WORKER) == [("running", 0, 100)]


def test_hooked_waits_are_left_as_they_are(tmp_path: Path) -> None:
    b = TraceBuilder()
    lock = b.stack(("app.take", "app.py", 8))
    blocked_in_c(b, [5 * MS] * 6)  # asleep with no CPU from 20 to 70 ms: in a wait a hook saw
    b.wait(Kind.THREAD_BLOCK, 10 * MS, WORKER, Category.SYNC, lock)
    b.event(Kind.THREAD_UNBLOCK, 80 * MS, WORKER)
    assert intervals(load(b, tmp_path), WORKER) == [("running", 0, 10), ("sync", 10, 80), ("running", 80, 100)]


def test_a_transition_inside_the_samples_wait_ends_the_estimate_before_it(tmp_path: Path) -> None:
    # a hooked wait that began between a sample's time and its read of the thread: the samples saw that wait
    b = TraceBuilder()
    sleep = b.stack(("time.sleep", "?", 0))
    blocked_in_c(b, [5 * MS] * 3)  # asleep with no CPU from 20 to 40 ms
    b.wait(Kind.THREAD_BLOCK, 20 * MS + 100, WORKER, Category.SLEEP, sleep)
    b.event(Kind.THREAD_UNBLOCK, 50 * MS, WORKER)
    assert intervals(load(b, tmp_path), WORKER) == [("running", 0, 20), ("sleep", 20, 50), ("running", 50, 100)]


def test_tasks_are_not_estimated(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.task(TASK, 0, "app.handler")
    b.event(Kind.TASK_STEP, 0, TASK)
    stack = b.stack(("app.handler", "app.py", 3))
    for i in range(4):
        sample(b, (10 + 10 * i) * MS, TASK, stack, SLEEPING, 5 * MS)  # no sampler writes these: ignored
    assert intervals(load(b, tmp_path), TASK) == [("running", 0, 100)]


def test_viewer_shows_an_estimated_wait(tmp_path: Path) -> None:
    b = TraceBuilder()
    blocked_in_c(b, [5 * MS, 6 * MS, 6 * MS, 6 * MS])
    api = ViewerAPI(load(b, tmp_path))
    assert "other_estimated" in api.info({})["states"]
    span = api.span({"g": str(WORKER), "t": str(40 * MS)})
    assert span is not None and span["state"] == "other_estimated" and span["blocked"] and span["estimated"]
    assert span["stack"][0]["function"] == "queue.SimpleQueue.get"
    assert not api.span({"g": str(WORKER), "t": str(10 * MS)})["estimated"]
    totals = api.range_totals({"start": "0", "end": str(END)})["totals"]
    assert totals["other_estimated"] == 20 * MS and totals["running"] == 80 * MS
    lane = api.spans({"lanes": f"g:{WORKER}", "start": "0", "end": str(END), "width": "1000"})["lanes"][f"g:{WORKER}"]
    names = api.info({})["states"]
    assert [names[s] for s in lane["state"]] == ["running", "other_estimated", "running"]
    assert np.array_equal(lane["start"], [0, 30 * MS, 50 * MS])


def test_a_sample_and_its_cpu_reading_pair_up_in_either_order(tmp_path: Path) -> None:
    b = TraceBuilder()
    stack = blocked_in_c(b, [], first=0)
    for ts in (30 * MS, 40 * MS, 50 * MS):
        b.event(Kind.THREAD_CPU, ts, WORKER, 5 * MS)  # written before its sample: the same time
        b.event(Kind.THREAD_SAMPLE, ts, WORKER, stack << 4 | SLEEPING)
    assert intervals(load(b, tmp_path), WORKER) == [
        ("running", 0, 30),
        ("other_estimated", 30, 50),
        ("running", 50, 100),
    ]
