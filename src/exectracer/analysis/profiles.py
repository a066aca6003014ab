"""Profiles of waiting (and of CPU), keyed by stack, as ``go tool trace -pprof`` makes them.

==========  ==================================================  ==========================
type        what is summed                                       stack
==========  ==================================================  ==========================
``net``     time blocked on the network (not idle loops)         where it started waiting
``sync``    time blocked on locks, events, queues, joins         where it started waiting
``syscall`` time blocked in subprocesses, executors, os calls    where it started waiting
``sleep``   time blocked in sleeps                               where it started waiting
``other``   time blocked in waits no rule could file             where it started waiting
``sched``   time runnable (ready queue, GIL, not yet started)    where it resumes
``gil``     threads' estimated GIL waits                         where it resumes
``cpu``     stack samples of threads on a CPU                    the sampled stack
==========  ==================================================  ==========================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from ..format.decoder import Frame
from ..format.events import CATEGORY_MASK, CATEGORY_SHIFT, Kind, ThreadState
from ..trace_data import TraceData
from .goroutines import Goroutines
from .ranges import RangeSet
from .states import LOOP_IDLE_STACK, NO_STACK, State, StateIntervals
from .sums import sums_by_key

BLOCKING_TYPES = {
    "net": State.NETWORK,
    "sync": State.SYNC,
    "syscall": State.SYSCALL,
    "sleep": State.SLEEP,
    "other": State.OTHER,
}
PROFILE_TYPES = (*BLOCKING_TYPES, "sched", "gil", "cpu")
WAIT_SAMPLE_TYPES = (("contentions", "count"), ("delay", "nanoseconds"))
CPU_SAMPLE_TYPES = (("samples", "count"), ("cpu", "nanoseconds"))
UNKNOWN = Frame("[unknown]", "?", 0)  # a stack the trace does not define


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
    stacks: NDArray[np.int64]  # stack ids, -1 for unknown
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
        """The frames of a stack, innermost first (``[unknown]`` if the trace lacks it)."""
        return self.frames.get(int(stack_id)) or [UNKNOWN]

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


@dataclasses.dataclass
class _Rows:
    """What a profile sums before grouping by stack: one row per wait or sample."""

    gi: NDArray[np.int32]  # dense goroutine index
    start: NDArray[np.int64]  # absolute ns: the wait's (clipped) start, or the sample's time
    stack: NDArray[np.int64]
    values: NDArray[np.int64]  # one column per sample type; the last is the time

    def take(self, keep: NDArray[np.bool_]) -> _Rows:
        return _Rows(self.gi[keep], self.start[keep], self.stack[keep], self.values[keep])


def profile(trace: TraceData, states: StateIntervals, type: str, selection: Selection = Selection()) -> Profile:
    """Build the ``type`` profile (one of :data:`PROFILE_TYPES`) of ``trace``."""
    if type not in PROFILE_TYPES:
        raise ValueError(f"unknown profile type {type!r}: choose one of {', '.join(PROFILE_TYPES)}")
    lo, hi = _span(trace, selection)
    goroutines = states.goroutines
    if type == "cpu":
        period = _sample_period(trace)
        rows, sample_types = _cpu_samples(trace, goroutines, lo, hi, period), CPU_SAMPLE_TYPES
    else:
        period = 0
        rows, sample_types = _waits(states, type, lo, hi), WAIT_SAMPLE_TYPES
    rows = rows.take(_in_group(goroutines, rows.gi, selection.group))
    if selection.region is not None:
        rows.values[:, -1] = _inside_regions(trace, goroutines, rows, selection.region, points=type == "cpu")
        rows = rows.take(rows.values[:, -1] > 0)
    stacks = _known_stacks(trace, goroutines, rows.gi, rows.stack)
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


def _span(trace: TraceData, selection: Selection) -> tuple[int, int]:
    """The selection's span in absolute ns, checked."""
    lo = trace.start_ns + (selection.start_ns or 0)
    hi = trace.start_ns + selection.end_ns if selection.end_ns is not None else trace.end_ns
    if hi <= lo:
        raise ValueError(f"empty time range: {selection.start_ns} to {selection.end_ns} ns")
    return lo, hi


def _waits(states: StateIntervals, type: str, lo: int, hi: int) -> _Rows:
    """The intervals a waiting profile sums, clipped to ``[lo, hi)``."""
    if type in BLOCKING_TYPES:
        rows = (states.state == BLOCKING_TYPES[type]) & (states.stack != LOOP_IDLE_STACK)
    else:
        rows = states.state == State.RUNNABLE
        if type == "gil" and len(states.goroutines):
            g = states.goroutines
            created = np.array([x.created_ns if x.created_ns is not None else -1 for x in g.list], dtype=np.int64)
            rows &= ~g.is_task[states.gi] & (states.start != created[states.gi])  # not the wait to start
    rows = np.flatnonzero(rows)
    start = np.maximum(states.start[rows], lo)
    delay = np.minimum(states.end[rows], hi) - start
    inside = delay > 0
    rows, start, delay = rows[inside], start[inside], delay[inside]
    return _Rows(
        states.gi[rows], start, states.stack[rows].astype(np.int64), np.stack((np.ones_like(delay), delay), axis=1)
    )


def _sample_period(trace: TraceData) -> int:
    """The sampler's interval in ns (the recording's option)."""
    options = trace.metadata.get("options")
    interval = options.get("sample_interval") if isinstance(options, dict) else None
    return int(float(interval) * 1e9) if isinstance(interval, (int, float)) and interval > 0 else 10_000_000


def _cpu_samples(trace: TraceData, goroutines: Goroutines, lo: int, hi: int, period: int) -> _Rows:
    """Samples of threads on a CPU within ``[lo, hi)``."""
    ev = trace.events
    rows = np.flatnonzero(ev.kind == Kind.THREAD_SAMPLE)
    rows = rows[((ev.arg[rows] & CATEGORY_MASK) == ThreadState.RUNNING) & (ev.ts[rows] >= lo) & (ev.ts[rows] < hi)]
    gi = goroutines.index_of(ev.g[rows])
    rows, gi = rows[gi >= 0], gi[gi >= 0]
    values = np.stack((np.ones(len(rows), dtype=np.int64), np.full(len(rows), period, dtype=np.int64)), axis=1)
    return _Rows(gi, ev.ts[rows], ev.arg[rows] >> CATEGORY_SHIFT, values)


def _in_group(goroutines: Goroutines, gi: NDArray[np.int32], group: str | None) -> NDArray[np.bool_]:
    if group is None:
        return np.ones(len(gi), dtype=bool)
    members = np.array([g.start_function == group for g in goroutines.list], dtype=bool)
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
