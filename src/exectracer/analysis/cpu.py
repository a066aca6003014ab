"""The threads' samples with the CPU time the OS counted, as the CPU profile and the sampled waits read them.

The sampler writes, for each sampled thread, a THREAD_SAMPLE (stack and OS
state) and a THREAD_CPU with the same time: the CPU time the thread has used
since it started. A thread also writes one at its end, and the process's
total (``g = 0``, counted from the recording's start) follows each tick.
The CPU a thread used between two of its THREAD_CPUs is the difference of
the two, spent where the later one's sample (or, at its end, its last
sample) stood. A thread's first THREAD_CPU counts from zero if the thread
was created after the first process total (everything it used is in the
trace), else it is the baseline the next ones count from.

An event loop takes its samples itself once it is busy, in its ``select``
(``record/handoff.py``): the CPU its thread used since the previous sample
went into the task steps that ran meanwhile, not into ``select``.
:func:`spread_over_steps` hands it to them, in proportion to how long each
ran since that sample; what the steps do not account for (callbacks, the
loop's own work) stays where the sample was taken.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from ..format.events import CATEGORY_MASK, CATEGORY_SHIFT, Kind
from ..table import kinds_mask
from ..trace_data import TraceData
from .goroutines import Goroutines, group_order

NO_CPU = -1


@dataclasses.dataclass(frozen=True)
class Samples:
    """Every thread sample, grouped by goroutine id and in time order within one.

    ``cpu``: the thread's CPU time at the sample (ns since it started), or
    ``NO_CPU`` where the trace has none (older traces, no ``/proc``).
    """

    g: NDArray[np.int64]
    ts: NDArray[np.int64]
    state: NDArray[np.int64]  # ThreadState
    stack: NDArray[np.int64]
    cpu: NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class CpuTime:
    """The CPU time the OS counted, as the parts between consecutive readings.

    Threads: ``g``, ``ts`` (the later reading), ``prev`` (the earlier one;
    ``ts`` for a thread's first), ``stack`` (where it was spent: the sample at
    that reading, or the thread's last before it; -1 none) and ``ns``. The
    process: ``process_ts`` and ``process_ns``, its whole CPU time (every
    thread's, the tracer's own included) between ticks.
    """

    g: NDArray[np.int64]
    ts: NDArray[np.int64]
    prev: NDArray[np.int64]
    stack: NDArray[np.int64]
    ns: NDArray[np.int64]
    process_ts: NDArray[np.int64]
    process_ns: NDArray[np.int64]
    process_proc: NDArray[np.uint16]  # which process each tick is of (an index into the trace's processes)


@dataclasses.dataclass(frozen=True)
class _Rows:
    """THREAD_SAMPLE and THREAD_CPU rows of threads, grouped by goroutine id, then time, a sample before its CPU."""

    g: NDArray[np.int64]
    ts: NDArray[np.int64]
    arg: NDArray[np.int64]
    is_sample: NDArray[np.bool_]


def samples(trace: TraceData, goroutines: Goroutines) -> Samples:
    """Every THREAD_SAMPLE of a goroutine the trace names, with the CPU time read with it."""
    r = _thread_rows(trace, goroutines)
    at = np.flatnonzero(r.is_sample)
    nxt = np.minimum(at + 1, len(r.g) - 1)
    paired = (nxt > at) & ~r.is_sample[nxt] & (r.g[nxt] == r.g[at]) & (r.ts[nxt] == r.ts[at])
    return Samples(
        g=r.g[at],
        ts=r.ts[at],
        state=r.arg[at] & CATEGORY_MASK,
        stack=r.arg[at] >> CATEGORY_SHIFT,
        cpu=np.where(paired, r.arg[nxt], NO_CPU),
    )


def cpu_time(trace: TraceData, goroutines: Goroutines) -> CpuTime:
    """The CPU time of every thread between its readings, and of the process between ticks."""
    ev = trace.events
    process = np.flatnonzero((ev.kind == Kind.THREAD_CPU) & (ev.g == 0))
    process_ts, process_ns = ev.ts[process], _steps_per_process(ev.arg[process], trace.proc[process])
    r = _thread_rows(trace, goroutines)
    n = len(r.g)
    last_sample = np.maximum.accumulate(np.where(r.is_sample, np.arange(n), -1)) if n else np.zeros(0, np.int64)
    at = np.flatnonzero(~r.is_sample)
    src = last_sample[at]
    known = (src >= 0) & (r.g[np.maximum(src, 0)] == r.g[at])
    stack = np.where(known, r.arg[np.maximum(src, 0)] >> CATEGORY_SHIFT, -1)
    g, ts, value = r.g[at], r.ts[at], r.arg[at]
    first = np.ones(len(g), dtype=bool)
    np.not_equal(g[1:], g[:-1], out=first[1:])
    ns = np.empty(len(g), dtype=np.int64)
    ns[1:] = np.maximum(value[1:] - value[:-1], 0)
    since = process_ts[0] if len(process_ts) else None
    ns[first] = np.where(_created_in_trace(goroutines, g[first], since), value[first], 0)
    prev = np.empty(len(g), dtype=np.int64)
    prev[1:] = ts[:-1]
    prev[first] = ts[first]
    return CpuTime(g, ts, prev, stack, ns, process_ts, process_ns, trace.proc[process])


def spread_over_steps(
    cpu: CpuTime, rows: NDArray[np.intp], start: NDArray[np.int64], end: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The CPU time of a loop's thread (its readings at ``rows`` of ``cpu``, in time order) given to the task steps
    of its loop (``start``, ``end``, by start): each step's share, and what each reading keeps.

    A reading taken inside a step (the sampler's thread caught the loop
    running a task) keeps its time. One taken outside every step (the loop
    sampling itself in its ``select``) gives each step that ended since the
    previous reading its CPU time times the part of the time between the two
    readings the step ran in (all of it if the steps ran longer, as nested
    eager steps can).
    """
    ts, prev, ns = cpu.ts[rows], cpu.prev[rows], cpu.ns[rows].copy()
    share = np.zeros(len(start), dtype=np.int64)
    if len(start) == 0 or len(ts) == 0:
        return share, ns
    latest_end = np.maximum.accumulate(end)
    before = np.searchsorted(start, ts, side="left") - 1
    outside = (before < 0) | (latest_end[np.maximum(before, 0)] <= ts)
    k = np.searchsorted(ts, end, side="left")  # the first reading at or after each step's end
    step = np.flatnonzero((k < len(ts)) & outside[np.minimum(k, len(ts) - 1)])
    k = k[step]
    ran = end[step] - np.maximum(start[step], prev[k])
    wall = (ts - prev).astype(np.float64)
    steps_ran = np.bincount(k, weights=np.maximum(ran, 0), minlength=len(ts))
    fraction = np.divide(steps_ran, np.maximum(wall, steps_ran), out=np.zeros(len(ts)), where=steps_ran > 0)
    given = ns * fraction  # what each reading gives to its steps, split by how long each ran
    share[step] = np.rint(given[k] * np.maximum(ran, 0) / np.maximum(steps_ran[k], 1)).astype(np.int64)
    ns -= np.bincount(k, weights=share[step], minlength=len(ts)).astype(np.int64)
    return share, np.maximum(ns, 0)


def _steps(cumulative: NDArray[np.int64]) -> NDArray[np.int64]:
    """How much a running total grew at each reading (the first is the baseline: 0)."""
    out = np.zeros(len(cumulative), dtype=np.int64)
    out[1:] = np.maximum(np.diff(cumulative), 0)
    return out


def _steps_per_process(cumulative: NDArray[np.int64], proc: NDArray[np.uint16]) -> NDArray[np.int64]:
    """:func:`_steps` of each process's running total (readings of several processes interleave)."""
    if not len(proc) or proc.min() == proc.max():
        return _steps(cumulative)
    out = np.zeros(len(cumulative), dtype=np.int64)
    for p in np.unique(proc).tolist():
        mine = proc == p
        out[mine] = _steps(cumulative[mine])
    return out


def _created_in_trace(goroutines: Goroutines, g: NDArray[np.int64], since: int | None) -> NDArray[np.bool_]:
    """Whether each thread was created (THREAD_CREATE) at or after ``since`` (None: anywhere in the trace)."""
    out = np.zeros(len(g), dtype=bool)
    for i, gid in enumerate(g.tolist()):
        thread = goroutines.get(gid)
        created = thread.created_ns if thread is not None else None
        out[i] = created is not None and (since is None or created >= since)
    return out


def _thread_rows(trace: TraceData, goroutines: Goroutines) -> _Rows:
    """The THREAD_SAMPLE and THREAD_CPU rows of goroutines the trace names, grouped (see :class:`_Rows`).

    The events are in time order already: a stable radix sort on the
    goroutine index groups them. The sampler writes a thread's THREAD_CPU
    right after its THREAD_SAMPLE; where two with the same time came out the
    other way round, they are swapped back.
    """
    ev = trace.events
    rows = np.flatnonzero(kinds_mask(ev.kind, Kind.THREAD_SAMPLE, Kind.THREAD_CPU) & (ev.g > 0))
    gi = goroutines.index_of(ev.g[rows])
    rows = rows[gi >= 0]
    rows = rows[group_order(gi[gi >= 0], max(len(goroutines), 1))]
    g, ts, arg, is_sample = ev.g[rows], ev.ts[rows], ev.arg[rows], ev.kind[rows] == Kind.THREAD_SAMPLE
    swap = np.flatnonzero(~is_sample[:-1] & is_sample[1:] & (g[:-1] == g[1:]) & (ts[:-1] == ts[1:]))
    for column in (arg, is_sample):
        column[swap], column[swap + 1] = column[swap + 1], column[swap].copy()
    return _Rows(g, ts, arg, is_sample)
