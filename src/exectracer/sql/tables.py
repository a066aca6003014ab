"""The SQL tables of a trace (docs/sql.md): NumPy columns for DuckDB to scan in place, and the views over them.

Each table is built per trace as *raw* columns (what the trace and its
analysis already hold: absolute times, dense codes, ids) and read through a
view that turns them into the documented columns: times in ns from the
trace's start, names for codes, NULL for unknown. The view's expressions run
inside DuckDB, vectorized; nothing here loops over events or intervals in
Python (the goroutines, stacks and user tables are built from the trace's
per-goroutine and per-stack tables, as the rest of the reading side is).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..analysis import Analysis
from ..analysis.states import STATE_NAMES, State
from ..format.events import WAKER_MASK, WAKER_SHIFT, Kind, Waker
from ..table import Table
from ..trace_data import TraceData
from .processes import UNKNOWN, Processes, object_array, process_table, processes

Columns = dict[str, NDArray[Any]]
NONE = np.iinfo(np.int64).min  # a raw integer column's NULL
ENUM_PREFIX = "_xt_names_"


@dataclasses.dataclass(frozen=True)
class Source:
    """One trace as the tables read it: its data, analysis, processes, and the name its rows carry (``trace``).

    The analysis is used only by the tables that need it: ``events``,
    ``heap``, ``frames`` and ``processes`` can be written while it is
    computed."""

    trace: TraceData
    analysis: Analysis
    name: str

    @functools.cached_property
    def process_table(self) -> Table:
        """The processes (:attr:`Processes.table`), without the analysis."""
        return process_table(self.trace)

    @functools.cached_property
    def processes(self) -> Processes:
        """The processes and each goroutine's pid (the analysis's goroutines)."""
        return processes(self.trace, self.analysis.goroutines, self.process_table)

    @functools.cached_property
    def uniform_pid(self) -> int | None:
        """The pid of every goroutine if they all share one process, else None."""
        pids = np.unique(self.processes.pid_of)
        if len(pids) == 0:
            return int(self.processes.table.pid[0]) if len(self.processes.table) == 1 else None
        return int(pids[0]) if len(pids) == 1 else None

    def pids(self, g: NDArray[np.int64]) -> NDArray[np.int64]:
        """The pid of each goroutine id in ``g`` (:data:`UNKNOWN` for ids the trace does not name)."""
        index = self.analysis.goroutines.index_of(g)
        return np.where(index >= 0, self.processes.pid_of[np.maximum(index, 0)], UNKNOWN)


def source(trace: TraceData, analysis: Analysis, name: str) -> Source:
    """``trace`` read as ``name``."""
    return Source(trace, analysis, name)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A documented table: its columns as SQL expressions over the raw columns ``build`` makes.

    In an expression ``{t0}`` is the trace's start (absolute ns) and
    ``{pid}`` the pid of the row's goroutine (see :meth:`pid_column`).
    ``pid_of``: the raw column of goroutine ids ``{pid}`` is looked up by
    (None: the table has no ``pid``).
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    build: Callable[[Source], Columns]
    pid_of: str | None = None
    per_process: bool = False  # rows of the process (events, heap): ``build`` gives each row's ``proc``

    def raw(self, src: Source) -> Columns:
        """The raw columns of ``src``, with ``pid`` where the trace's rows are of several processes."""
        columns = self.build(src)
        proc = columns.pop("proc", None)
        if self.per_process and proc is not None and _pid(src, self) is None:
            columns["pid"] = src.process_table.pid[proc] if len(proc) else np.empty(0, np.int64)
        elif self.pid_of is not None and src.uniform_pid is None and not self.per_process:
            columns["pid"] = src.pids(columns[self.pid_of])
        return columns

    def pid(self, src: Source) -> int | None:
        """The pid of every row of this table for ``src``, if they are of one known process; else None."""
        if self.pid_of is None and not self.per_process:
            return None
        pid = _pid(src, self)
        return None if pid == UNKNOWN else pid

    def select(self, src: Source, raw_name: str, enums: bool = False) -> str:
        """The SELECT of the view over ``src``'s raw columns registered as ``raw_name``; ``enums``: names of codes
        (``state``, ``event``) as the ENUMs :func:`enum_types` makes instead of VARCHAR."""
        if self.pid_of is not None or self.per_process:
            pid = _pid(src, self)
            if pid is not None:
                pid_sql = "CAST(NULL AS BIGINT)" if pid == UNKNOWN else f"CAST({pid} AS BIGINT)"
            else:
                pid_sql = f"NULLIF(pid, {UNKNOWN})"
        else:
            pid_sql = "NULL"
        lists = {key: _names(names) for key, names in NAMES.items()}
        if enums:
            lists = {key: f"CAST({names} AS {ENUM_PREFIX}{key}[])" for key, names in lists.items()}
        exprs = [
            f"{expr.format(t0=src.trace.start_ns, pid=pid_sql, **lists)} AS {column}" for column, expr in self.columns
        ]
        exprs.append(f"{_literal(src.name)} AS trace")
        return f"SELECT {', '.join(exprs)} FROM {raw_name}"


def enum_types() -> list[str]:
    """The statements that make the ENUM types of :meth:`Spec.select`'s ``enums``: DuckDB looks an ENUM's name up
    in its type and writes it to Parquet as a dictionary, without making a string per row."""
    return [f"CREATE TYPE {ENUM_PREFIX}{key} AS ENUM ({_names(names)[1:-1]})" for key, names in NAMES.items()]


def _pid(src: Source, spec: Spec) -> int | None:
    """The pid of every row of ``spec``'s table for ``src`` if it is one, else None (each row has its own)."""
    if spec.per_process:
        pids = src.process_table.pid
        return int(pids[0]) if len(pids) == 1 else None
    return src.uniform_pid


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _names(names: list[str]) -> str:
    """A DuckDB list literal of ``names``, indexed from 1."""
    return "[" + ", ".join(_literal(n) for n in names) + "]"


def _text(column: str) -> str:
    return f"CAST({column} AS VARCHAR)"


def _time(column: str) -> str:
    return f"NULLIF({column}, {NONE}) - {{t0}}"


def _nullable(column: str, none: int = NONE) -> str:
    return f"NULLIF({column}, {none})"


# -- building the raw columns --------------------------------------------------------------------------------------


def _processes(src: Source) -> Columns:
    t = src.process_table
    return {name: t[name] for name in t.columns}


def _goroutines(src: Source) -> Columns:
    gs = src.analysis.goroutines
    return {
        "id": gs.ids,
        "kind": gs.kind,
        "name": gs.name,
        "start_function": gs.start_function,
        "parent_id": gs.parent_id,
        "created_ns": gs.created_ns,
        "ended_ns": gs.ended_ns,
    }


def _states(src: Source) -> Columns:
    s = src.analysis.states
    ids = src.analysis.goroutines.ids
    return {
        "g": ids[s.gi] if len(ids) else np.empty(0, np.int64),
        "state": s.state,
        "start": s.start,
        "end": s.end,
        "stack": s.stack,
        "waker": s.waker,
    }


def _frames(src: Source) -> Columns:
    stacks = src.trace.stacks
    ids = np.fromiter(stacks.keys(), dtype=np.int64, count=len(stacks))
    lengths = np.fromiter((len(f) for f in stacks.values()), dtype=np.int64, count=len(stacks))
    frames = [frame for frames in stacks.values() for frame in frames]
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return {
        "stack_id": np.repeat(ids, lengths),
        "depth": np.arange(len(frames), dtype=np.int64) - starts,
        "function": object_array([f.function for f in frames]),
        "file": object_array([f.file for f in frames]),
        "line": np.array([f.line for f in frames], dtype=np.int64),
    }


def _gc(src: Source) -> Columns:
    t = src.analysis.collections.table
    return {"start": t.start, "end": t.end, "generation": t.generation, "g": t.g, "collected": t.collected}


def _heap(src: Source) -> Columns:
    ev = src.trace.events
    at = np.flatnonzero(ev.kind == Kind.HEAP_BLOCKS)
    nxt = np.minimum(at + 1, max(len(ev) - 1, 0))
    paired = (nxt > at) & (ev.kind[nxt] == Kind.HEAP_RSS) & (ev.ts[nxt] == ev.ts[at])
    columns = {"ts": ev.ts[at], "blocks": ev.arg[at], "rss": np.where(paired, ev.arg[nxt], NONE)}
    return columns | ({"proc": src.trace.proc[at]} if len(src.trace.processes) > 1 else {})


def _user_tasks(src: Source) -> Columns:
    t = src.trace.user_task_table
    return {
        "id": t.id,
        "name": src.trace.strings_of(t.name),
        "parent_id": t.parent_id,
        "start": t.begin_ns,
        "end": t.end_ns,
        "g": t.g,
    }


def _user_regions(src: Source) -> Columns:
    r = src.trace.regions
    return {"name": r.name, "g": r.g, "start": r.begin_ns, "end": r.end_ns, "task": r.task}


def _logs(src: Source) -> Columns:
    t = src.trace.logs
    return {"ts": t.ts, "g": t.g, "category": t.category, "message": t.message, "task": t.task}


def _events(src: Source) -> Columns:
    ev = src.trace.events
    columns = {"ts": ev.ts, "g": ev.g, "kind": ev.kind, "arg": ev.arg}
    return columns | ({"proc": src.trace.proc} if len(src.trace.processes) > 1 else {})


_KIND_NAMES = {int(k): k.name for k in Kind}
NAMES = {  # the names of codes, by code: a column ``{states}[state + 1]`` is a state's name
    "states": [STATE_NAMES[s] for s in State if s != State.ENDED],
    "kinds": [_KIND_NAMES.get(k, f"KIND_{k}") for k in range(256)],
}
# a blocked or runnable interval's waker, where it is a goroutine (a task or a thread)
_WAKER_ID = (
    f"CASE WHEN state <> {int(State.RUNNING)} AND (waker & {WAKER_MASK}) IN ({int(Waker.TASK)}, {int(Waker.THREAD)})"
    f" THEN waker >> {WAKER_SHIFT} END"
)

TABLES = (
    Spec(
        "processes",
        (
            ("pid", _nullable("pid", UNKNOWN)),
            ("ppid", _nullable("ppid", UNKNOWN)),
            ("host", _text("host")),
            ("argv", "CAST(argv AS VARCHAR[])"),
            ("start_ns", "start_ns - {t0}"),
            ("end_ns", "end_ns - {t0}"),
        ),
        _processes,
    ),
    Spec(
        "goroutines",
        (
            ("id", "id"),
            ("pid", "{pid}"),
            ("kind", _text("kind")),
            ("name", _text("name")),
            ("start_function", _text("start_function")),
            ("parent_id", _nullable("parent_id")),
            ("created_ns", _time("created_ns")),
            ("ended_ns", _time("ended_ns")),
        ),
        _goroutines,
        pid_of="id",
    ),
    Spec(
        "states",
        (
            ("goroutine_id", "g"),
            ("pid", "{pid}"),
            ("state", "{states}[state + 1]"),
            ("start_ns", "start - {t0}"),
            ("end_ns", '"end" - {t0}'),
            ("stack_id", "CASE WHEN stack >= 0 THEN CAST(stack AS BIGINT) END"),
            ("waker_id", _WAKER_ID),
        ),
        _states,
        pid_of="g",
    ),
    Spec(
        "frames",
        (
            ("stack_id", "stack_id"),
            ("depth", "depth"),
            ("function", _text("function")),
            ("file", _text("file")),
            ("line", "line"),
        ),
        _frames,
    ),
    Spec(
        "gc",
        (
            ("start_ns", "start - {t0}"),
            ("end_ns", '"end" - {t0}'),
            ("generation", "generation"),
            ("goroutine_id", "g"),
            ("collected", "NULLIF(collected, -1)"),
            ("pid", "{pid}"),
        ),
        _gc,
        pid_of="g",
    ),
    Spec(
        "heap",
        (("ts_ns", "ts - {t0}"), ("blocks", "blocks"), ("rss", _nullable("rss")), ("pid", "{pid}")),
        _heap,
        per_process=True,
    ),
    Spec(
        "user_tasks",
        (
            ("id", "id"),
            ("name", _text("name")),
            ("parent_id", _nullable("parent_id")),
            ("start_ns", _time("start")),
            ("end_ns", _time('"end"')),
            ("goroutine_id", _nullable("g")),
            ("pid", "{pid}"),
        ),
        _user_tasks,
        pid_of="g",
    ),
    Spec(
        "user_regions",
        (
            ("name", _text("name")),
            ("goroutine_id", "g"),
            ("start_ns", "start - {t0}"),
            ("end_ns", 'CASE WHEN "end" >= 0 THEN "end" - {t0} END'),
            ("task_id", "NULLIF(task, 0)"),
            ("pid", "{pid}"),
        ),
        _user_regions,
        pid_of="g",
    ),
    Spec(
        "logs",
        (
            ("ts_ns", "ts - {t0}"),
            ("goroutine_id", "g"),
            ("category", _text("category")),
            ("message", _text("message")),
            ("task_id", "NULLIF(task, 0)"),
            ("pid", "{pid}"),
        ),
        _logs,
        pid_of="g",
    ),
    Spec(
        "events",
        (
            ("ts_ns", "ts - {t0}"),
            ("g", "g"),
            ("kind", "CAST(kind AS INTEGER)"),
            ("event", "{kinds}[kind + 1]"),
            ("arg", "arg"),
            ("pid", "{pid}"),
        ),
        _events,
        per_process=True,
    ),
)
