"""Goroutines (threads and asyncio tasks) as dense indices, for vectorized analysis.

Goroutine ids in a trace are small integers handed out in order, so a lookup
table maps each id to a dense index ``0..n-1``; per-goroutine figures are
then ``np.bincount`` over that index, and grouping events by goroutine is a
radix sort on it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from ..format.events import Kind
from ..table import kinds_mask
from ..trace_data import TraceData

MAX_LOOKUP_ID = 1 << 26  # ids above this (a damaged trace) fall back to np.unique
RADIX = 1 << 16
MAIN_PROGRAM = "main program"  # what a goroutine without a start function is known to be
BEFORE_TRACING = "started before tracing"
NOT_RECORDED = "start function not recorded"


@dataclasses.dataclass(frozen=True)
class Goroutine:
    """One thread or asyncio task, with what the summary says about it."""

    index: int  # dense index
    id: int
    kind: str  # "task" or "thread"
    name: str
    start_function: str | None
    parent_id: int | None
    created_ns: int | None  # absolute perf_counter_ns; None if created before the trace began
    ended_ns: int | None  # None if it had not ended when the trace did
    func_stack: int  # stack id of the coroutine or thread target, -1 if unknown
    main_thread: bool = False  # the process's main thread, as far as the trace tells
    pid: int | None = None  # the process it ran in
    proc: int = 0  # that process's index in the trace's processes

    @property
    def role(self) -> str | None:
        """What is known of a goroutine without a start function: :data:`MAIN_PROGRAM`, :data:`BEFORE_TRACING`
        or :data:`NOT_RECORDED`; None if it has one."""
        if self.start_function is not None:
            return None
        if self.main_thread:
            return MAIN_PROGRAM
        return BEFORE_TRACING if self.kind == "thread" and self.created_ns is None else NOT_RECORDED

    @property
    def label(self) -> str:
        """Its start function; without one, its name and role: ``MainThread (main program)``."""
        return self.start_function if self.start_function is not None else f"{self.name} ({self.role})"


class Goroutines:
    """Every goroutine a trace names, with a dense index for each."""

    def __init__(self, trace: TraceData) -> None:
        funcs = _func_stacks(trace)
        items = [
            (t.id, "thread", t.name, t.start_function, t.parent_id, t.created_ns, t.ended_ns) for t in trace.threads
        ] + [(t.id, "task", t.name, t.start_function, t.parent_id, t.created_ns, t.ended_ns) for t in trace.tasks]
        items.sort()
        main = _main_threads(trace)
        procs = trace.goroutine_procs if len(trace.processes) > 1 else {}
        pids = [p.pid for p in trace.processes]
        self.list = [
            Goroutine(
                i,
                *item,
                func_stack=funcs.get(item[0], -1),
                main_thread=item[0] in main,
                pid=pids[procs.get(item[0], 0)],
                proc=procs.get(item[0], 0),
            )
            for i, item in enumerate(items)
        ]
        self.ids = np.array([g.id for g in self.list], dtype=np.int64)
        self.is_task = np.array([g.kind == "task" for g in self.list], dtype=bool)
        self.func_stack = np.array([g.func_stack for g in self.list], dtype=np.int64)
        self.proc = np.array([g.proc for g in self.list], dtype=np.int64)  # each goroutine's process (index)
        self._by_id = {g.id: g for g in self.list}

    def __len__(self) -> int:
        return len(self.list)

    def get(self, gid: int) -> Goroutine | None:
        """The goroutine with id ``gid``, if the trace names it."""
        return self._by_id.get(int(gid))

    def index_of(self, g: NDArray[np.int64], out: NDArray[np.int32] | None = None) -> NDArray[np.int32]:
        """Dense indices of goroutine ids ``g``; -1 for ids the trace does not name. ``out``: int32 room for them."""
        if out is None:
            out = np.empty(len(g), dtype=np.int32)
        if len(self.ids) == 0:
            out.fill(-1)
            return out
        top = int(self.ids[-1])
        if 0 <= self.ids[0] and top < MAX_LOOKUP_ID:  # small ids (a trace's are; a damaged one's may be any): a table
            lut = np.full(top + 2, -1, dtype=np.int32)
            lut[self.ids] = np.arange(len(self.ids), dtype=np.int32)
            if len(g) and (g.min() < 0 or g.max() > top):
                g = np.clip(g, -1, top + 1)  # -1 and top + 1 map to -1
            return np.take(lut, g, out=out, mode="wrap")  # "wrap": -1 is the last entry
        pos = np.minimum(np.searchsorted(self.ids, g), len(self.ids) - 1)
        out[:] = np.where(self.ids[pos] == g, pos, -1)
        return out


def _func_stacks(trace: TraceData) -> dict[int, int]:
    """Goroutine id -> stack id of its coroutine or thread target."""
    ev = trace.events
    sel = kinds_mask(ev.kind, Kind.TASK_FUNC, Kind.THREAD_FUNC)
    return dict(zip(ev.g[sel].tolist(), ev.arg[sel].tolist(), strict=True))


def _main_threads(trace: TraceData) -> set[int]:
    """The goroutine ids of each process's main thread: a thread running before tracing began, with no start
    function, whose OS id is the process id (Linux) or, failing that, named ``MainThread``."""
    main = set()
    for pid in {p.pid for p in trace.processes}:
        early = [t for t in trace.threads if t.created_ns is None and t.start_function is None and t.pid == pid]
        by_id = [t.id for t in early if t.native_id is not None and t.native_id == pid]
        by_name = [t.id for t in early if t.name == "MainThread"]
        found = by_id or by_name
        main.update(found[:1])
    return main


def group_order(index: NDArray[np.int32], groups: int) -> NDArray[np.intp]:
    """A stable order that groups rows by ``index`` (values ``0..groups-1``), keeping row order within a group.

    A least-significant-digit radix sort on 16-bit digits: NumPy sorts
    16-bit integers stably by counting, far faster than a comparison sort.
    """
    if groups <= RADIX:
        return np.argsort(index.astype(np.uint16), kind="stable")
    order = np.argsort((index & (RADIX - 1)).astype(np.uint16), kind="stable")
    high = (index[order] >> 16).astype(np.uint32 if groups > RADIX * RADIX else np.uint16)
    return order[np.argsort(high, kind="stable")]
