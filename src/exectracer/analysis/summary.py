"""The summary of a trace as one JSON-ready dict (``exectracer summary --json``).

Times are nanoseconds; timestamps are relative to the trace's start.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from ..allocator import collections_paused
from ..format.decoder import Frame
from ..table import Table
from ..trace_data import NONE, TraceData
from .blocks import blocks
from .gc import Collections
from .goroutines import BEFORE_TRACING, MAIN_PROGRAM, NOT_RECORDED, Goroutines
from .mmu import DEFAULT_WINDOWS_NS, MMUPoint, mmu
from .parallel import run_all
from .program_code import ProgramCode
from .states import BLOCKED, LOOP_IDLE_STACK, STATE_NAMES, State, StateIntervals
from .sums import sums_by_key

TOP_WAITS = 10
ROW_BATCH = 10_000  # goroutine rows made (and written, as JSON) at a time
_ROWS_MARK = "\x00exectracer: the goroutine rows\x00"
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
    doc, times = _parts(trace, states, collections, windows_ns)
    goroutines = states.goroutines
    with collections_paused():  # the rows hold no cycles: a collection every 700 of them would find nothing
        doc["goroutines"] = [
            row
            for i in range(0, len(goroutines), ROW_BATCH)
            for row in _goroutine_rows(goroutines, times, trace.start_ns, slice(i, i + ROW_BATCH))
        ]
    return doc


def summary_json(
    trace: TraceData, states: StateIntervals, collections: Collections, windows_ns: tuple[int, ...] = DEFAULT_WINDOWS_NS
) -> Iterator[str]:
    """``json.dumps(summarize(...))`` in pieces, the goroutine rows made and written :data:`ROW_BATCH` at a time
    (a trace of a million tasks has a million rows: they are never all held)."""
    doc, times = _parts(trace, states, collections, windows_ns)
    goroutines = states.goroutines
    with collections_paused():  # the encoder makes a list of items per dict: no cycles to find among them
        head, marker, tail = json.dumps({**doc, "goroutines": _ROWS_MARK}).partition(json.dumps(_ROWS_MARK))
        if not marker or _ROWS_MARK in tail:  # the marker's text in the document itself: no shortcut
            doc["goroutines"] = _goroutine_rows(goroutines, times, trace.start_ns)
            yield json.dumps(doc)
            return
        texts = (
            _goroutine_rows_json(goroutines, times, trace.start_ns, slice(i, i + ROW_BATCH))
            for i in range(0, len(goroutines), ROW_BATCH)
        )
        yield head + "["
        separator = ""
        for batch in texts:
            if batch:
                yield separator + batch
                separator = ", "
        yield "]" + tail


def _parts(
    trace: TraceData, states: StateIntervals, collections: Collections, windows_ns: tuple[int, ...]
) -> tuple[dict[str, Any], NDArray[np.int64]]:
    """The summary document with ``goroutines`` left None, and the time table its goroutine rows are made from
    (:func:`_time_per_goroutine`)."""
    times, latency, waits = run_all(
        (
            functools.partial(_time_per_goroutine, states, collections),
            lambda: latency_stats(_durations_in(states, State.RUNNABLE)),
            functools.partial(top_waits, trace, states),
        )
    )
    doc = {
        "trace": _trace_info(trace, states.anomalies),
        "processes": [_process(trace, collections, p.index, windows_ns) for p in trace.processes],
        "goroutines": None,
        "groups": _groups(states.goroutines, times, trace.start_ns),
        "gc": collections.stats(),
        "scheduler_latency_ns": latency,
        "mmu": _mmu_rows(process_mmu(trace, collections, windows_ns), trace.start_ns),
        "user_tasks": [
            _named_latency(name, spans.end - spans.begin) for name, spans in by_name(finished(trace, "tasks"))
        ],
        "user_regions": [
            _named_latency(name, spans.end - spans.begin) for name, spans in by_name(finished(trace, "regions"))
        ],
        "top_waits": waits,
    }
    return doc, times


def process_mmu(
    trace: TraceData, collections: Collections, windows_ns: tuple[int, ...], proc: int | None = None
) -> list[MMUPoint]:
    """The MMU of process ``proc`` (an index into the trace's processes) over its recording; without one,
    the worst process's at each window length (a collection holds up only its own process)."""
    if len(trace.processes) == 1:
        return mmu(collections.busy, trace.start_ns, trace.end_ns, windows_ns)
    if proc is not None:
        p = trace.processes[proc]
        return mmu(collections.busy_in(proc), p.start_ns, p.end_ns, windows_ns)
    curves = [process_mmu(trace, collections, windows_ns, p.index) for p in trace.processes]
    return [min(points, key=lambda point: point.utilization) for points in zip(*curves, strict=True)]


def _mmu_rows(points: list[MMUPoint], trace_start: int) -> list[dict[str, Any]]:
    return [
        {
            "window_ns": p.window_ns,
            "utilization": p.utilization,
            "worst": [
                {"start_ns": w.start_ns - trace_start, "end_ns": w.end_ns - trace_start, "utilization": w.utilization}
                for w in p.worst
            ],
        }
        for p in points
    ]


def _process(trace: TraceData, collections: Collections, proc: int, windows_ns: tuple[int, ...]) -> dict[str, Any]:
    """One process: who it is, when it ran (ns from the trace's start), its collections and MMU."""
    p = trace.processes[proc]
    row = dict(trace.metadata["processes"][proc])
    row["start_ns"], row["end_ns"] = p.start_ns - trace.start_ns, p.end_ns - trace.start_ns
    if len(trace.processes) > 1:
        row["gc"] = collections.stats(proc)
        row["mmu"] = _mmu_rows(process_mmu(trace, collections, windows_ns, proc), trace.start_ns)
    return row


def latency_stats(durations: NDArray[np.int64]) -> dict[str, int]:
    """Count, median, 90th and 99th percentile and maximum (observed values, not interpolated)."""
    if len(durations) == 0:
        return {"count": 0, "p50": 0, "p90": 0, "p99": 0, "max": 0}
    p50, p90, p99 = np.percentile(durations, (50, 90, 99), method="inverted_cdf")
    return {"count": len(durations), "p50": int(p50), "p90": int(p90), "p99": int(p99), "max": int(durations.max())}


def top_waits(trace: TraceData, states: StateIntervals, n: int = TOP_WAITS) -> list[dict[str, Any]]:
    """The ``n`` places where goroutines spent the most time blocked, keyed by category, blocking site (the
    innermost frame) and ``caller``, the innermost frame of the program's own code (:mod:`.program_code`)."""
    stack_keys, counts, totals = _blocked_by_stack(states)
    program = ProgramCode(trace)
    places: dict[tuple[str, Frame | None, Frame | None], list[float]] = {}  # key -> [count, total ns]
    for key, count, total in zip(stack_keys.tolist(), counts.tolist(), totals.tolist(), strict=True):
        stack_id, state_code = divmod(key, _SLOTS)
        stack_id -= 1
        site = trace.frame(stack_id) if stack_id >= 0 else None
        caller = program.caller(stack_id) if stack_id >= 0 else None
        sums = places.setdefault((STATE_NAMES[State(state_code)], site, caller), [0, 0.0])
        sums[0] += count
        sums[1] += total
    top = sorted(places.items(), key=lambda item: -item[1][1])[:n]  # stable: ties keep the order of stack ids
    return [
        {
            "category": category,
            "function": site.function if site else None,
            "file": site.file if site else None,
            "line": site.line if site else None,
            "caller": caller._asdict() if caller else None,
            "count": int(count),
            "total_ns": round(total),
        }
        for (category, site, caller), (count, total) in top
    ]


def _blocked_by_stack(states: StateIntervals) -> tuple[NDArray[np.int64], NDArray[np.intp], NDArray[np.float64]]:
    """Blocked time (not in an idle loop) summed per stack and category: keys ``(stack + 1) * slots + state``
    (an unknown stack, -1, counts from 0), how many intervals and how many ns each."""
    parts = []
    for rows in blocks(len(states)):
        state, stack = states.state[rows], states.stack[rows]
        blocked = np.flatnonzero((state >= State.NETWORK) & (stack != LOOP_IDLE_STACK))
        key = (stack[blocked].astype(np.int64) + 1) * _SLOTS + state[blocked]
        block_keys, block_count, (block_total,) = sums_by_key(
            key, [states.end[rows][blocked] - states.start[rows][blocked]]
        )
        parts.append((block_keys, block_count, block_total))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.intp), np.zeros(0, np.float64)
    all_keys, all_counts, all_totals = (np.concatenate(column) for column in zip(*parts, strict=True))
    keys, _, (count, total) = sums_by_key(all_keys, [all_counts, all_totals])
    return keys, count.astype(np.intp), total


def _trace_info(trace: TraceData, anomalies: dict[str, int]) -> dict[str, Any]:
    python = trace.metadata.get("python")
    if not isinstance(python, dict):
        python = {}
    lost = trace.lost
    return {
        "format_version": trace.version,
        "python": " ".join(str(python[k]) for k in ("implementation", "version") if k in python) or None,
        "pid": trace.metadata.get("pid"),
        "duration_ns": trace.duration_ns,
        "duration_known": lost.clean_end,  # else the recording's end is unknown: duration_ns spans the events read
        "events": trace.event_count,
        "lost": {
            "events": lost.events_lost,
            "chunks_skipped": lost.chunks_skipped,
            "chunks_missing": lost.chunks_missing,
            "truncated_bytes": lost.truncated_bytes,
            "clean_end": lost.clean_end,
            "hook_errors": lost.hook_error_count,
            "anomalies": dict(anomalies),  # events that fit no goroutine's states, left out (a damaged trace)
        },
        "unseen": list(lost.unseen),  # what the recorder could not see (a loop no hook sees, ...)
        "sampler": _sampler_info(trace),
        "writer": _writer_info(trace),
        "missing_workers": _missing_workers(trace),
    }


def _missing_workers(trace: TraceData) -> list[dict[str, Any]]:
    """The workers of a service a live capture asked and did not get (``pid``, ``reason``): docs/live.md."""
    note = trace.metadata.get("service_capture")
    missing = note.get("missing") if isinstance(note, dict) else None
    return [m for m in missing if isinstance(m, dict)] if isinstance(missing, list) else []


def _sampler_info(trace: TraceData) -> dict[str, int] | None:
    """The sampler's interval, the ticks due in the recording and those it skipped (fallen behind); None if it
    did not sample."""
    interval = trace.sample_interval_ns
    if interval is None:
        return None
    return {
        "interval_ns": interval,
        "ticks_due": trace.duration_ns // interval,
        "ticks_skipped": trace.sampler_ticks_skipped,
    }


def _writer_info(trace: TraceData) -> dict[str, int | None] | None:
    """How long events waited in memory before the writer took them: its interval (the recording's
    ``flush_interval``), how many times it took them, the longest wait; None for a trace that does not say."""
    takes = trace.takes_ns
    if not len(takes):
        return None
    return {"flush_interval_ns": trace.flush_interval_ns, "takes": len(takes), "longest_in_memory_ns": int(takes.max())}


def _time_per_goroutine(states: StateIntervals, collections: Collections) -> NDArray[np.int64]:
    """Nanoseconds per goroutine and state, plus a last column for time in garbage collection.

    GC time overlaps: it is the part of running and runnable time during
    which a collection ran (CPython stops every thread for it).
    """
    width = _SLOTS + 1
    size = len(states.goroutines) * width
    times = np.zeros(size)
    several = len(set(states.goroutines.proc.tolist())) > 1
    procs = sorted(set(collections.table.proc.tolist()))  # processes that collected
    for rows in blocks(len(states)):
        gi, state, start, end = states.gi[rows], states.state[rows], states.start[rows], states.end[rows]
        # a block holds few goroutines (the intervals are grouped by goroutine): its sums go to their rows only
        first = int(gi.min()) * width
        slot = gi.astype(np.int64) * width - first
        mine = times[first : first + int(slot.max()) + width]
        mine += np.bincount(slot + state, weights=end - start, minlength=len(mine))
        for proc in procs:  # a collection holds up its own process's goroutines only
            busy = collections.busy_in(proc)
            ours = (state <= State.RUNNABLE) & (states.goroutines.proc[gi] == proc if several else True)
            active = np.flatnonzero(ours & busy.may_overlap(start, end))
            in_gc = busy.covered(start[active], end[active])
            mine += np.bincount(slot[active] + _SLOTS, weights=in_gc, minlength=len(mine))
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


def _time_rows(times: NDArray[np.int64]) -> list[TimeNs]:
    """:func:`_time_ns` of each row of ``times`` (dict displays: several times faster than ``dict(zip(...))``)."""
    network, sync, sleep, syscall, other, estimated = (STATE_NAMES[s] for s in BLOCKED)
    columns = [times[:, column].tolist() for column in (State.RUNNING, State.RUNNABLE, _SLOTS, *BLOCKED)]
    return [
        {
            "running": running,
            "runnable": runnable,
            "gc": gc,
            "blocked": {network: n, sync: y, sleep: s, syscall: c, other: o, estimated: e},
        }
        for running, runnable, gc, n, y, s, c, o, e in zip(*columns, strict=True)
    ]


def _goroutine_rows(
    goroutines: Goroutines, times: NDArray[np.int64], trace_start: int, rows: slice | NDArray[np.intp] = slice(None)
) -> list[dict[str, Any]]:
    """The summary's row of each goroutine (of dense indices ``rows``), made from the columns."""
    role = goroutines.role[rows]
    columns = (
        goroutines.ids[rows].tolist(),
        goroutines.pid[rows].tolist(),
        goroutines.kind[rows].tolist(),
        goroutines.name[rows].tolist(),
        goroutines.start_function[rows].tolist(),
        goroutines.labels(role, rows).tolist(),
        role.tolist(),
        _relative(goroutines.parent_id[rows], 0),
        _relative(goroutines.created_ns[rows], trace_start),
        _relative(goroutines.ended_ns[rows], trace_start),
        _time_rows(times[rows]),
    )
    return [
        {
            "id": gid,
            "pid": pid,
            "kind": kind,
            "name": name,
            "start_function": function,
            "label": label,
            "role": role,
            "parent_id": parent,
            "created_ns": created,
            "ended_ns": ended,
            "time_ns": time_ns,
        }
        for gid, pid, kind, name, function, label, role, parent, created, ended, time_ns in zip(*columns, strict=True)
    ]


def _row_template() -> tuple[str, tuple[int, ...]]:
    """A ``%`` format that makes the JSON text of one goroutine row as ``json.dumps`` writes it, from its values
    each already JSON text (or an int), in the order of :data:`_ROW_KEYS` then the time columns it returns (as
    :func:`_time_per_goroutine` numbers them): the keys, their order and separators are those of ``json.dumps`` of
    a row itself."""
    row: dict[str, Any] = {key: f"{_SLOT_MARK}{key}" for key in _ROW_KEYS}
    slots: list[Any] = [f"{_SLOT_MARK}{i}" for i in range(_SLOTS + 1)]  # marks where _time_ns takes numbers
    row["time_ns"] = _time_ns(slots)
    marker = re.escape(json.dumps(_SLOT_MARK)[:-1]) + r'([^"]*)"'
    text = json.dumps(row).replace("%", "%%")
    names = re.findall(marker, text)
    assert tuple(names[: len(_ROW_KEYS)]) == _ROW_KEYS, "a row's keys come first, in order"
    return re.sub(marker, "%s", text), tuple(int(name) for name in names[len(_ROW_KEYS) :])


_encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_SLOT_MARK = "\x00exectracer: a value\x00"
_ROW_KEYS = ("id", "pid", "kind", "name", "start_function", "label", "role", "parent_id", "created_ns", "ended_ns")
_ROW_TEMPLATE, _ROW_TIME_SLOTS = _row_template()


def _goroutine_rows_json(goroutines: Goroutines, times: NDArray[np.int64], trace_start: int, rows: slice) -> str:
    """The JSON text of :func:`_goroutine_rows` (the rows at ``rows``) without its brackets, made column by column:
    each column's values encoded at once, then each row's text by one ``%`` of :data:`_ROW_TEMPLATE`."""
    role = goroutines.role[rows]
    columns = (
        goroutines.ids[rows].tolist(),
        _json_strings(goroutines.pid[rows].tolist()),
        np.where(goroutines.is_task[rows], '"task"', '"thread"').tolist(),
        _json_strings(goroutines.name[rows].tolist()),
        _json_strings(goroutines.start_function[rows].tolist()),
        _json_strings(goroutines.labels(role, rows).tolist()),
        _json_strings(role.tolist()),
        _relative_json(goroutines.parent_id[rows], 0),
        _relative_json(goroutines.created_ns[rows], trace_start),
        _relative_json(goroutines.ended_ns[rows], trace_start),
        *(times[rows, slot].tolist() for slot in _ROW_TIME_SLOTS),
    )
    return ", ".join(map(_ROW_TEMPLATE.__mod__, zip(*columns, strict=True)))


def _json_strings(values: list[Any]) -> list[str]:
    """Each of ``values`` (strings, ints and None, many repeated) as ``json.dumps`` writes it: each distinct value
    encoded once, by the json module's own string encoder where all are strings (C loops throughout)."""
    known = dict.fromkeys(values)
    encode = _encode_string if set(map(type, known)) <= {str} else json.dumps
    table = dict(zip(known, map(encode, known), strict=True))
    return list(map(table.__getitem__, values))


def _relative_json(values: NDArray[np.int64], origin: int) -> list[int | str]:
    """``values - origin`` as Python ints, ``"null"`` where a value is :data:`NONE`."""
    known = values != NONE
    out: list[int | str] = np.where(known, values - origin, 0).tolist()
    if not known.all():
        out = [v if k else "null" for v, k in zip(out, known.tolist(), strict=True)]
    return out


def _relative(values: NDArray[np.int64], origin: int) -> list[int | None]:
    """``values - origin`` as Python ints, None where a value is :data:`NONE`."""
    known = values != NONE
    out: list[int | None] = np.where(known, values - origin, 0).tolist()
    if not known.all():
        out = [v if k else None for v, k in zip(out, known.tolist(), strict=True)]
    return out


def _groups(goroutines: Goroutines, times: NDArray[np.int64], trace_start: int) -> list[dict[str, Any]]:
    """Goroutines with the same start function and kind (without one: the same role), their ``times`` summed;
    the largest total first."""
    pid_codes = _codes(goroutines.pid_of_proc.tolist())[goroutines.proc]  # processes may share a pid (hosts)
    role = goroutines.role
    role_codes = np.select([np.equal(role, r) for r in (MAIN_PROGRAM, BEFORE_TRACING, NOT_RECORDED)], [1, 2, 3], 0)
    columns = [pid_codes, _codes(goroutines.start_function.tolist()), goroutines.is_task.astype(np.int64), role_codes]
    key = np.zeros(len(goroutines), dtype=np.int64)
    for codes in columns:  # (pid, function, kind, role): each a code, the four packed into one number
        key = key * (int(codes.max(initial=0)) + 1) + codes
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in the order of their first member
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group, first = rank[group.reshape(-1)], first[order]
    sums = np.zeros((len(first), times.shape[1]), dtype=np.int64)
    np.add.at(sums, group, times)
    counts = np.bincount(group, minlength=len(first))
    groups: list[dict[str, Any]] = []
    members = _goroutine_rows(goroutines, times, trace_start, first)  # each group's first member
    for g, count, row in zip(members, counts.tolist(), sums.tolist(), strict=True):
        groups.append(
            {
                "pid": g["pid"],
                "start_function": g["start_function"],
                "kind": g["kind"],
                "role": g["role"],
                "label": _group_label(g["start_function"], g["kind"], g["role"], count, g["label"]),
                "count": count,
                "time_ns": _time_ns(row),
            }
        )
    return sorted(groups, key=lambda grp: (-total_time(grp["time_ns"]), str(grp["start_function"]), grp["label"]))


def _codes(values: list[Any]) -> NDArray[np.int64]:
    """A number per distinct value (hashable), in the order of first appearance."""
    code = {value: i for i, value in enumerate(dict.fromkeys(values))}  # a dict keeps the order of first appearance
    return np.fromiter(map(code.__getitem__, values), dtype=np.int64, count=len(values))


def _group_label(function: str | None, kind: str, role: str | None, count: int, first: str) -> str:
    """A group's start function; without one, its one member's label, or what its members are known to be."""
    if function is not None or count == 1:
        return first
    return f"({kind}s {role})" if role == BEFORE_TRACING else f"({kind}s, {role})"


def total_time(time_ns: TimeNs) -> int:
    """Running, runnable and blocked time (GC overlaps them, so it is not added)."""
    return time_ns["running"] + time_ns["runnable"] + sum(time_ns["blocked"].values())


def finished(trace: TraceData, what: str) -> Table:
    """User tasks (``what="tasks"``) or regions (``"regions"``) that ended in the trace:
    ``name``, ``g`` (the goroutine that began it), ``begin``, ``end`` (absolute ns)."""
    if what == "tasks":
        u = trace.user_task_table
        done = np.flatnonzero((u.begin_ns != NONE) & (u.end_ns != NONE))
        return Table(
            name=trace.strings_of(u.name[done]),
            g=np.where(u.g[done] == NONE, 0, u.g[done]),
            begin=u.begin_ns[done],
            end=u.end_ns[done],
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
