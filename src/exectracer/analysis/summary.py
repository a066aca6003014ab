"""The summary of a trace as one JSON-ready dict (``exectracer summary --json``).

Times are nanoseconds; timestamps are relative to the trace's start.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from ..table import Table
from ..trace_data import TraceData
from .blocks import blocks
from .gc import Collections
from .goroutines import Goroutine
from .mmu import DEFAULT_WINDOWS_NS, mmu
from .parallel import run_all
from .states import BLOCKED, LOOP_IDLE_STACK, STATE_NAMES, State, StateIntervals
from .sums import sums_by_key

TOP_WAITS = 10
_SLOTS = len(State)


class TimeNs(TypedDict):
    """Where a goroutine's (or a group's) time went, in ns; ``blocked`` by category (GC time overlaps the others)."""

    running: int
    runnable: int
    gc: int
    blocked: dict[str, int]


def summarize(
    trace: TraceData, states: StateIntervals, collections: Collections, windows_ns: tuple[int, ...] = DEFAULT_WINDOWS_NS
) -> dict[str, Any]:
    """Everything ``exectracer summary`` reports, as plain data."""
    times, latency, waits = run_all(
        (
            functools.partial(_time_per_goroutine, states, collections),
            lambda: latency_stats(_durations_in(states, State.RUNNABLE)),
            functools.partial(top_waits, trace, states),
        )
    )
    start = trace.start_ns
    goroutines = [_goroutine(g, row, start) for g, row in zip(states.goroutines.list, times.tolist(), strict=True)]
    return {
        "trace": _trace_info(trace),
        "goroutines": goroutines,
        "groups": _groups(goroutines, times),
        "gc": collections.stats(),
        "scheduler_latency_ns": latency,
        "mmu": [
            {
                "window_ns": p.window_ns,
                "utilization": p.utilization,
                "worst": [
                    {
                        "start_ns": w.start_ns - trace.start_ns,
                        "end_ns": w.end_ns - trace.start_ns,
                        "utilization": w.utilization,
                    }
                    for w in p.worst
                ],
            }
            for p in mmu(collections.busy, trace.start_ns, trace.end_ns, windows_ns)
        ],
        "user_tasks": [
            _named_latency(name, spans.end - spans.begin) for name, spans in by_name(finished(trace, "tasks"))
        ],
        "user_regions": [
            _named_latency(name, spans.end - spans.begin) for name, spans in by_name(finished(trace, "regions"))
        ],
        "top_waits": waits,
    }


def latency_stats(durations: NDArray[np.int64]) -> dict[str, int]:
    """Count, median, 90th and 99th percentile and maximum (observed values, not interpolated)."""
    if len(durations) == 0:
        return {"count": 0, "p50": 0, "p90": 0, "p99": 0, "max": 0}
    p50, p90, p99 = np.percentile(durations, (50, 90, 99), method="inverted_cdf")
    return {"count": len(durations), "p50": int(p50), "p90": int(p90), "p99": int(p99), "max": int(durations.max())}


def top_waits(trace: TraceData, states: StateIntervals, n: int = TOP_WAITS) -> list[dict[str, Any]]:
    """The ``n`` code locations where goroutines spent the most time blocked, by category."""
    parts = []
    for rows in blocks(len(states)):
        state, stack = states.state[rows], states.stack[rows]
        blocked = np.flatnonzero((state >= State.NETWORK) & (stack != LOOP_IDLE_STACK))
        key = (stack[blocked].astype(np.int64) + 1) * _SLOTS + state[blocked]  # unknown stacks (-1) count from 0
        block_keys, block_count, (block_total,) = sums_by_key(
            key, [states.end[rows][blocked] - states.start[rows][blocked]]
        )
        parts.append((block_keys, block_count, block_total))
    if parts:
        all_keys, all_counts, all_totals = (np.concatenate(column) for column in zip(*parts, strict=True))
    else:
        all_keys = all_counts = all_totals = np.zeros(0, np.int64)
    keys, _, (count, total) = sums_by_key(all_keys, [all_counts, all_totals])
    out = []
    for i in np.argsort(-total, kind="stable")[:n].tolist():
        stack_id, state_code = divmod(int(keys[i]), _SLOTS)
        stack_id -= 1
        frame = trace.frame(stack_id) if stack_id >= 0 else None
        out.append(
            {
                "category": STATE_NAMES[State(state_code)],
                "function": frame.function if frame else None,
                "file": frame.file if frame else None,
                "line": frame.line if frame else None,
                "count": int(count[i]),
                "total_ns": round(float(total[i])),
            }
        )
    return out


def _trace_info(trace: TraceData) -> dict[str, Any]:
    python = trace.metadata.get("python")
    if not isinstance(python, dict):
        python = {}
    lost = trace.lost
    return {
        "format_version": trace.version,
        "python": " ".join(str(python[k]) for k in ("implementation", "version") if k in python) or None,
        "pid": trace.metadata.get("pid"),
        "duration_ns": trace.duration_ns,
        "events": trace.event_count,
        "lost": {
            "events": lost.events_lost,
            "chunks_skipped": lost.chunks_skipped,
            "chunks_missing": lost.chunks_missing,
            "truncated_bytes": lost.truncated_bytes,
            "clean_end": lost.clean_end,
            "hook_errors": lost.hook_error_count,
        },
    }


def _time_per_goroutine(states: StateIntervals, collections: Collections) -> NDArray[np.int64]:
    """Nanoseconds per goroutine and state, plus a last column for time in garbage collection.

    GC time overlaps: it is the part of running and runnable time during
    which a collection ran (CPython stops every thread for it).
    """
    width = _SLOTS + 1
    size = len(states.goroutines) * width
    times = np.zeros(size)
    busy = collections.busy
    for rows in blocks(len(states)):
        gi, state, start, end = states.gi[rows], states.state[rows], states.start[rows], states.end[rows]
        slot = gi.astype(np.int64) * width
        times += np.bincount(slot + state, weights=end - start, minlength=size)
        if len(busy):
            active = np.flatnonzero((state <= State.RUNNABLE) & busy.may_overlap(start, end))
            in_gc = busy.covered(start[active], end[active])
            times += np.bincount(slot[active] + _SLOTS, weights=in_gc, minlength=size)
    return np.rint(times).astype(np.int64).reshape(-1, width)


def _durations_in(states: StateIntervals, state: State) -> NDArray[np.int64]:
    """How long each interval in ``state`` lasted."""
    parts = [(states.end[rows] - states.start[rows])[states.state[rows] == state] for rows in blocks(len(states))]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _time_ns(row: list[int]) -> TimeNs:
    """One row of :func:`_time_per_goroutine`'s table (or a sum of rows) in the summary's shape."""
    return {
        "running": row[State.RUNNING],
        "runnable": row[State.RUNNABLE],
        "gc": row[_SLOTS],
        "blocked": {STATE_NAMES[s]: row[s] for s in BLOCKED},
    }


def _goroutine(g: Goroutine, row: list[int], trace_start: int) -> dict[str, Any]:
    def rel(ts: int | None) -> int | None:
        return ts - trace_start if ts is not None else None

    return {
        "id": g.id,
        "kind": g.kind,
        "name": g.name,
        "start_function": g.start_function,
        "parent_id": g.parent_id,
        "created_ns": rel(g.created_ns),
        "ended_ns": rel(g.ended_ns),
        "time_ns": _time_ns(row),
    }


def _groups(goroutines: list[dict[str, Any]], times: NDArray[np.int64]) -> list[dict[str, Any]]:
    """Goroutines with the same start function and kind, their ``times`` summed; the largest total first."""
    keys: dict[tuple[str | None, str], int] = {}  # (start function, kind) -> group
    group = np.array([keys.setdefault((g["start_function"], g["kind"]), len(keys)) for g in goroutines], dtype=np.intp)
    sums = np.zeros((len(keys), times.shape[1]), dtype=np.int64)
    np.add.at(sums, group, times)
    counts = np.bincount(group, minlength=len(keys))
    groups: list[dict[str, Any]] = [
        {"start_function": function, "kind": kind, "count": count, "time_ns": _time_ns(row)}
        for (function, kind), count, row in zip(keys, counts.tolist(), sums.tolist(), strict=True)
    ]
    return sorted(groups, key=lambda grp: (-total_time(grp["time_ns"]), str(grp["start_function"])))


def total_time(time_ns: TimeNs) -> int:
    """Running, runnable and blocked time (GC overlaps them, so it is not added)."""
    return time_ns["running"] + time_ns["runnable"] + sum(time_ns["blocked"].values())


def finished(trace: TraceData, what: str) -> Table:
    """User tasks (``what="tasks"``) or regions (``"regions"``) that ended in the trace:
    ``name``, ``g`` (the goroutine that began it), ``begin``, ``end`` (absolute ns)."""
    if what == "tasks":
        done = [u for u in trace.user_tasks if u.begin_ns is not None and u.end_ns is not None]
        return Table(
            name=np.array([u.name for u in done], dtype=object),
            g=np.array([u.g or 0 for u in done], dtype=np.int64),
            begin=np.array([u.begin_ns for u in done], dtype=np.int64),
            end=np.array([u.end_ns for u in done], dtype=np.int64),
        )
    regions = trace.regions
    ended = regions.end_ns >= 0
    return Table(name=regions.name[ended], g=regions.g[ended], begin=regions.begin_ns[ended], end=regions.end_ns[ended])


def by_name(spans: Table) -> Iterator[tuple[str, Table]]:
    """The rows of each name, names in order."""
    for name in sorted(set(spans.name.tolist())):
        yield name, spans[spans.name == name]


def _named_latency(name: str, durations: NDArray[np.int64]) -> dict[str, Any]:
    stats = latency_stats(durations)
    return {"name": name, "count": stats["count"], **{f"{k}_ns": stats[k] for k in ("p50", "p90", "p99", "max")}}
