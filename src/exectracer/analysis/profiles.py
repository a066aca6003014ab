"""Profiles of waiting (and of CPU), keyed by stack, as ``go tool trace -pprof`` makes them.

===========  ==================================================  ==========================
type         what is summed                                      stack
===========  ==================================================  ==========================
``net``      time blocked on the network (not idle loops)        where it started waiting
``sync``     time blocked on locks, events, queues, joins        where it started waiting
``syscall``  time blocked in subprocesses, executors, os calls   where it started waiting
``sleep``    time blocked in sleeps                              where it started waiting
``other``    time blocked in waits no rule could file, and       where it started waiting;
             threads' waits no hook saw (estimated from          estimated: where the
             samples, under :data:`ESTIMATED`)                   samples found it
``sched``    time runnable (ready queue, GIL, not yet started)   where it resumes
``gil``      threads' estimated GIL waits                        where it resumes
``cpu``      the CPU time the OS counted, per thread sample      the sampled stack
===========  ==================================================  ==========================

The ``other`` profile keys a wait estimated from samples (``other_estimated``
in the state model) by its stack with one more, innermost, pseudo-frame,
:data:`ESTIMATED`: the call no hook covers that the thread waited in. So
every reader of the profile (``top``, the viewer's flame graph, pprof) shows
which part is an estimate.

The ``cpu`` profile sums each thread's CPU time between two samples (from
the OS: THREAD_CPU, see :mod:`.cpu`) at the later sample's stack, and puts
what the process used beyond its sampled threads (the tracer's own threads,
threads it does not know) under one pseudo-frame, so that its total is the
process's CPU time over the recording. A thread waiting for the GIL or for a
CPU uses none: the ``gil`` profile estimates those waits apart. Traces
without CPU times (older ones; no ``/proc``) count a sampling period for
each sample that found the thread running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from ..format.decoder import Frame
from ..format.events import CATEGORY_MASK, CATEGORY_SHIFT, Kind, ThreadState
from ..trace_data import NONE, TraceData, lookup
from .cpu import cpu_time, spread_over_steps
from .goroutines import Goroutines
from .ranges import RangeSet
from .states import LOOP_IDLE_STACK, NO_STACK, State, StateIntervals, loop_threads
from .sums import sums_by_key

BLOCKING_TYPES = {
    "net": State.NETWORK,
    "sync": State.SYNC,
    "syscall": State.SYSCALL,
    "sleep": State.SLEEP,
    "other": State.OTHER,
}
ESTIMATED_TYPES = {"other": State.OTHER_ESTIMATED}  # the estimated waits a blocking profile also holds
PROFILE_TYPES = (*BLOCKING_TYPES, "sched", "gil", "cpu")
WAIT_SAMPLE_TYPES = (("contentions", "count"), ("delay", "nanoseconds"))
CPU_SAMPLE_TYPES = (("samples", "count"), ("cpu", "nanoseconds"))
UNKNOWN = Frame("[unknown]", "?", 0)  # a stack the trace does not define
UNSAMPLED_STACK = -3  # cpu: the process's CPU time beyond its sampled threads
UNSAMPLED = Frame("[threads not sampled: exectracer's own, or unknown to it]", "?", 0)
ESTIMATED = Frame("[estimated from samples: a wait in a call no hook covers]", "?", 0)
_ESTIMATED_KEY = 1 << 40  # a stack key below -2**39 is an estimated wait's stack, offset by this


def estimated_key(stack: NDArray[np.int64]) -> NDArray[np.int64]:
    """The keys of estimated waits' stacks in a profile (see :meth:`Profile.is_estimated`)."""
    return stack - _ESTIMATED_KEY


@dataclasses.dataclass(frozen=True)
class TopEntry:
    """One function's share of a profile: ``flat`` where it is innermost, ``cum`` anywhere on the stack."""

    function: str
    file: str
    line: int
    flat: int
    cum: int


@dataclasses.dataclass(frozen=True)
class Profile:
    """Values summed per stack. ``values[i]`` holds one figure per sample type for ``stacks[i]``."""

    type: str
    sample_types: tuple[tuple[str, str], ...]
    stacks: NDArray[np.int64]  # stack ids; -1 unknown, UNSAMPLED_STACK, or an estimated wait's (estimated_key)
    values: NDArray[np.int64]  # shape (len(stacks), len(sample_types))
    frames: Mapping[int, list[Frame]] = dataclasses.field(repr=False)
    start_ns: int  # the span covered, relative to the trace's start
    end_ns: int
    wall_start_ns: int  # wall-clock time of the span's start
    period_ns: int  # for cpu: the sampling interval; else 0

    def total(self, sample_type: int = -1) -> int:
        """The sum of one sample type (by default the last: the delay or CPU time)."""
        return int(self.values[:, sample_type].sum()) if len(self.values) else 0

    def stack_frames(self, stack_id: int) -> list[Frame]:
        """The frames of a stack, innermost first (``[unknown]`` if the trace lacks it); an estimated wait's
        begin with :data:`ESTIMATED`."""
        if stack_id == UNSAMPLED_STACK:
            return [UNSAMPLED]
        if self.is_estimated(stack_id):
            return [ESTIMATED, *self.stack_frames(int(stack_id) + _ESTIMATED_KEY)]
        return self.frames.get(int(stack_id)) or [UNKNOWN]

    @staticmethod
    def is_estimated(stack_id: int) -> bool:
        """Whether the value at this stack key is estimated from samples (a wait no hook saw)."""
        return int(stack_id) < -(_ESTIMATED_KEY >> 1)

    def estimated_total(self, sample_type: int = -1) -> int:
        """The part of :meth:`total` estimated from samples."""
        mine = self.stacks < -(_ESTIMATED_KEY >> 1)
        return int(self.values[mine, sample_type].sum()) if len(self.values) else 0

    def top(self, n: int = 10, sample_type: int = -1) -> list[TopEntry]:
        """The ``n`` functions with the most flat value."""
        flat: dict[Frame, int] = {}
        cum: dict[Frame, int] = {}
        for sid, value in zip(self.stacks.tolist(), self.values[:, sample_type].tolist(), strict=True):
            frames = self.stack_frames(sid)
            flat[frames[0]] = flat.get(frames[0], 0) + value
            for frame in set(frames):
                cum[frame] = cum.get(frame, 0) + value
        ranked = sorted(flat, key=lambda f: (-flat[f], f))[:n]
        return [TopEntry(f.function, f.file, f.line, flat[f], cum[f]) for f in ranked]


@dataclasses.dataclass(frozen=True)
class Selection:
    """What part of a trace a profile covers: a time span (ns from the trace's start), a group, a user region."""

    start_ns: int | None = None
    end_ns: int | None = None
    group: str | None = None  # start function of the goroutines to keep
    region: str | None = None  # only time inside regions of this name, on the goroutine that opened them
    pid: int | None = None  # only the goroutines of this process


@dataclasses.dataclass
class _Rows:
    """What a profile sums before grouping by stack: one row per wait or sample."""

    gi: NDArray[np.int32]  # dense goroutine index
    start: NDArray[np.int64]  # absolute ns: the wait's (clipped) start, or the sample's time
    stack: NDArray[np.int64]
    values: NDArray[np.int64]  # one column per sample type; the last is the time
    estimated: NDArray[np.bool_] | None = None  # waits estimated from samples (None: none)

    def take(self, keep: NDArray[np.bool_]) -> _Rows:
        estimated = self.estimated[keep] if self.estimated is not None else None
        return _Rows(self.gi[keep], self.start[keep], self.stack[keep], self.values[keep], estimated)


def profile(trace: TraceData, states: StateIntervals, type: str, selection: Selection = Selection()) -> Profile:
    """Build the ``type`` profile (one of :data:`PROFILE_TYPES`) of ``trace``."""
    if type not in PROFILE_TYPES:
        raise ValueError(f"unknown profile type {type!r}: choose one of {', '.join(PROFILE_TYPES)}")
    lo, hi = _span(trace, selection)
    goroutines = states.goroutines
    procs = _procs(trace, selection.pid)
    unsampled = np.zeros(2, dtype=np.int64)  # cpu: (count, ns) of the process's CPU time beyond its sampled threads
    if type == "cpu":
        period = _sample_period(trace)
        rows, unsampled = _cpu_samples(trace, states, lo, hi, period, procs)
        sample_types = CPU_SAMPLE_TYPES
    else:
        period = 0
        rows, sample_types = _waits(states, type, lo, hi), WAIT_SAMPLE_TYPES
    rows = rows.take(_in_group(goroutines, rows.gi, selection.group))
    if selection.pid is not None:
        rows = rows.take(np.isin(goroutines.proc[rows.gi], procs))
    if selection.region is not None:
        rows.values[:, -1] = _inside_regions(trace, goroutines, rows, selection.region, points=type == "cpu")
        rows = rows.take(rows.values[:, -1] > 0)
    stacks = _known_stacks(trace, goroutines, rows.gi, rows.stack)
    if rows.estimated is not None:
        stacks = np.where(rows.estimated, estimated_key(stacks), stacks)
    if unsampled[-1] > 0 and selection.group is None and selection.region is None:
        rows.values = np.concatenate((rows.values, unsampled[None, :]))
        stacks = np.append(stacks, UNSAMPLED_STACK)
    uniq, _, sums = sums_by_key(stacks, [rows.values[:, col] for col in range(len(sample_types))])
    summed = np.rint(np.stack(sums, axis=1)).astype(np.int64)
    wall = int(trace.metadata.get("start_wall_ns", 0) or 0)
    return Profile(
        type=type,
        sample_types=sample_types,
        stacks=uniq,
        values=summed,
        frames=trace.stacks,
        start_ns=lo - trace.start_ns,
        end_ns=hi - trace.start_ns,
        wall_start_ns=wall + (lo - trace.start_ns) if wall else 0,
        period_ns=period,
    )


def _procs(trace: TraceData, pid: int | None) -> list[int]:
    """The processes (indices) a profile covers: those of ``pid``, or all; ValueError if none has it."""
    if pid is None:
        return [p.index for p in trace.processes]
    procs = trace.procs_of_pid(pid)
    if not procs:
        pids = ", ".join(str(p.pid) for p in trace.processes)
        raise ValueError(f"no process {pid} in the trace (its processes: {pids})")
    return procs


def _span(trace: TraceData, selection: Selection) -> tuple[int, int]:
    """The selection's span in absolute ns, checked (a whole trace of no duration: an empty span, no error)."""
    lo = trace.start_ns + (selection.start_ns or 0)
    hi = trace.start_ns + selection.end_ns if selection.end_ns is not None else trace.end_ns
    if selection.start_ns is None and selection.end_ns is None:
        return lo, max(lo, hi)  # the whole trace, however short: a trace that spans no time has an empty profile
    if hi <= lo:
        start = selection.start_ns or 0
        end = "its end" if selection.end_ns is None else f"{selection.end_ns} ns"
        raise ValueError(f"empty time range: {start} ns to {end} of a trace {trace.duration_ns} ns long")
    return lo, hi


def _waits(states: StateIntervals, type: str, lo: int, hi: int) -> _Rows:
    """The intervals a waiting profile sums, clipped to ``[lo, hi)``."""
    estimated = ESTIMATED_TYPES.get(type)
    if type in BLOCKING_TYPES:
        wanted = [BLOCKING_TYPES[type]] + ([estimated] if estimated is not None else [])
        selected = np.isin(states.state, wanted) & (states.stack != LOOP_IDLE_STACK)
    else:
        selected = states.state == State.RUNNABLE
        if type == "gil" and len(states.goroutines):
            g = states.goroutines
            created = np.array([x.created_ns if x.created_ns is not None else -1 for x in g.list], dtype=np.int64)
            selected &= ~g.is_task[states.gi] & (states.start != created[states.gi])  # not the wait to start
    rows = np.flatnonzero(selected)
    start = np.maximum(states.start[rows], lo)
    delay = np.minimum(states.end[rows], hi) - start
    inside = delay > 0
    rows, start, delay = rows[inside], start[inside], delay[inside]
    values = np.stack((np.ones_like(delay), delay), axis=1)
    flags = states.state[rows] == estimated if estimated is not None else None
    return _Rows(states.gi[rows], start, states.stack[rows].astype(np.int64), values, flags)


def _sample_period(trace: TraceData) -> int:
    """The sampler's interval in ns (the recording's option; 10 ms if the trace does not say)."""
    return trace.sample_interval_ns or 10_000_000


def _cpu_samples(
    trace: TraceData, states: StateIntervals, lo: int, hi: int, period: int, procs: list[int]
) -> tuple[_Rows, NDArray[np.int64]]:
    """The CPU time within ``[lo, hi)`` by sample (a loop's, by task step), and (count, ns) of the process's
    beyond its threads.

    Threads the trace has no CPU time for count ``period`` per sample that
    found them running.
    """
    goroutines = states.goroutines
    cpu = cpu_time(trace, goroutines)
    g, ts, stack, ns = cpu.g, cpu.ts, cpu.stack, cpu.ns.copy()
    for thread, (start, end, task) in _loop_steps(trace, states).items():
        mine = np.flatnonzero(cpu.g == thread)
        share, ns[mine] = spread_over_steps(cpu, mine, start, end)
        g, ts = np.concatenate((g, goroutines.ids[task])), np.concatenate((ts, end))
        stack, ns = np.concatenate((stack, np.full(len(task), NO_STACK))), np.concatenate((ns, share))
    inside = (ts >= lo) & (ts < hi) & (ns > 0)
    g, ts, stack, ns = g[inside], ts[inside], stack[inside], ns[inside]
    ev = trace.events
    rows = np.flatnonzero(ev.kind == Kind.THREAD_SAMPLE)
    rows = rows[((ev.arg[rows] & CATEGORY_MASK) == ThreadState.RUNNING) & (ev.ts[rows] >= lo) & (ev.ts[rows] < hi)]
    rows = rows[~np.isin(ev.g[rows], cpu.g)]
    g, ts = np.concatenate((g, ev.g[rows])), np.concatenate((ts, ev.ts[rows]))
    stack = np.concatenate((stack, ev.arg[rows] >> CATEGORY_SHIFT))
    ns = np.concatenate((ns, np.full(len(rows), period, dtype=np.int64)))
    ticks = (cpu.process_ts >= lo) & (cpu.process_ts < hi)
    gi = goroutines.index_of(g)
    if len(trace.processes) == 1:
        beyond = _beyond_threads(cpu.process_ts[ticks], cpu.process_ns[ticks], ts, ns)
    else:  # each process's time beyond its own threads'
        proc = np.where(gi >= 0, goroutines.proc[gi], -1)
        beyond = np.zeros(2, dtype=np.int64)
        for p in procs:
            mine, tick = proc == p, ticks & (cpu.process_proc == p)
            beyond += _beyond_threads(cpu.process_ts[tick], cpu.process_ns[tick], ts[mine], ns[mine])
    known = gi >= 0
    values = np.stack((np.ones(int(known.sum()), dtype=np.int64), ns[known]), axis=1)
    return _Rows(gi[known], ts[known], stack[known], values), beyond


def _loop_steps(
    trace: TraceData, states: StateIntervals
) -> dict[int, tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]]:
    """Per thread that ran event loops: the running intervals of their tasks (start, end, goroutine index),
    by start."""
    goroutines = states.goroutines
    tasks = trace.task_table
    if not len(tasks) or not len(goroutines):
        return {}
    task_threads = loop_threads(trace, np.where(tasks.loop_id == NONE, 0, tasks.loop_id))
    thread = lookup(goroutines.ids, tasks.id, task_threads, 0)[0]
    running = np.flatnonzero((states.state == State.RUNNING) & (thread[states.gi] > 0))
    out = {}
    for one in np.unique(thread[states.gi[running]]).tolist():
        rows = running[thread[states.gi[running]] == one]
        rows = rows[np.argsort(states.start[rows], kind="stable")]
        out[one] = (states.start[rows], states.end[rows], states.gi[rows])
    return out


def _beyond_threads(
    tick_ts: NDArray[np.int64], tick_ns: NDArray[np.int64], ts: NDArray[np.int64], ns: NDArray[np.int64]
) -> NDArray[np.int64]:
    """(count, ns): the process's CPU time beyond its threads' (``ts``, ``ns``) over the ticks, and in how many
    ticks it used more than they did."""
    if len(tick_ts) == 0:
        return np.zeros(2, dtype=np.int64)
    tick = np.searchsorted(tick_ts, ts)  # the tick whose reading covers each thread reading (the same or the next)
    mine = tick < len(tick_ts)
    threads = np.bincount(tick[mine], weights=ns[mine], minlength=len(tick_ts))
    more = tick_ns - threads
    return np.array([int((more > 0).sum()), max(int(tick_ns.sum() - ns[mine].sum()), 0)], dtype=np.int64)


def _in_group(goroutines: Goroutines, gi: NDArray[np.int32], group: str | None) -> NDArray[np.bool_]:
    if group is None:
        return np.ones(len(gi), dtype=bool)
    members: NDArray[np.bool_] = goroutines.start_function == group
    return members[gi]


def _inside_regions(
    trace: TraceData, goroutines: Goroutines, rows: _Rows, region: str, points: bool
) -> NDArray[np.int64]:
    """The time column, kept only inside ``region`` on the goroutine that opened it.

    A wait keeps its overlap with the regions; a sample (``points``) is kept
    whole if taken inside one.
    """
    regions = trace.regions
    mine = regions.name == region
    rg = goroutines.index_of(regions.g[mine])
    begin, end = regions.begin_ns[mine], np.where(regions.end_ns[mine] >= 0, regions.end_ns[mine], trace.end_ns)
    time = rows.values[:, -1]
    out = np.zeros(len(rows.gi), dtype=np.int64)
    for g in np.unique(rg[rg >= 0]).tolist():
        at = np.flatnonzero(rows.gi == g)
        spans = RangeSet(begin[rg == g], end[rg == g])
        if points:
            out[at] = np.where(spans.covered(rows.start[at], rows.start[at] + 1) > 0, time[at], 0)
        else:
            out[at] = spans.covered(rows.start[at], rows.start[at] + time[at])
    return out


def _known_stacks(
    trace: TraceData, goroutines: Goroutines, gi: NDArray[np.int32], stacks: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Stacks the trace defines; others fall back to the goroutine's entry point, else -1."""
    defined = np.array(sorted(trace.stacks), dtype=np.int64)
    known = np.isin(stacks, defined)
    fallback = goroutines.func_stack[gi] if len(goroutines) else np.full(len(gi), NO_STACK)
    return np.where(known, stacks, np.where(np.isin(fallback, defined), fallback, NO_STACK))
