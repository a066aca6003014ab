"""A decoded trace: its events as NumPy columns, and the tables built from them.

::

    trace.events.ts, trace.events.kind      # NumPy columns, in time order
    trace.tasks, trace.threads, trace.loops # who ran
    trace.lost                              # what the trace does not hold
    trace.processes, trace.proc             # the processes recorded; each event's process (index)

Tables other than ``events`` are built on first use, with NumPy masks over
the events, so loading stays fast however large the trace is. This is what
the analyses read; :mod:`exectracer.reader` loads files into it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .format import decoder
from .format.decoder import Frame, Problem
from .format.events import ARG_SHIFT, CATEGORY_MASK, CATEGORY_SHIFT, Kind, Outcome
from .processes import Combined, Process, combine
from .table import Table, dataframe_library, distinct, kinds_mask, match_spans

__all__ = [
    "NONE",
    "HookError",
    "Loop",
    "Lost",
    "Process",
    "Task",
    "Thread",
    "TraceData",
    "UserTask",
    "lookup",
    "objects",
]

_DEFAULT_TASK_PREFIX = "Task-"


@dataclasses.dataclass(frozen=True)
class Thread:
    """An OS thread seen by the trace (``id`` is its goroutine id)."""

    id: int
    name: str
    start_function: str | None  # module.qualname of its target (or run method)
    file: str | None
    line: int | None
    parent_id: int | None  # goroutine that started it; None if it ran before tracing began
    native_id: int | None
    ident: int | None  # threading.get_ident()
    created_ns: int | None
    started_ns: int | None
    ended_ns: int | None
    pid: int | None = None  # the process it ran in


@dataclasses.dataclass(frozen=True)
class Task:
    """An asyncio task (``id`` is its goroutine id)."""

    id: int
    name: str
    start_function: str | None  # module.qualname of its coroutine
    file: str | None
    line: int | None
    parent_id: int | None  # goroutine that created it, if known
    loop_id: int | None
    created_ns: int | None
    ended_ns: int | None
    outcome: Outcome | None  # None while it had not finished
    eager: bool  # its first step ran inside create_task
    pid: int | None = None  # the process it ran in


@dataclasses.dataclass(frozen=True)
class Loop:
    """An asyncio event loop."""

    id: int
    class_name: str
    thread_id: int | None  # goroutine id of the thread that last ran it
    started_ns: int | None  # first LOOP_START
    stopped_ns: int | None  # last LOOP_STOP


@dataclasses.dataclass(frozen=True)
class UserTask:
    """A task made with ``exectracer.task``."""

    id: int
    name: str
    parent_id: int | None
    g: int | None  # goroutine that began it
    begin_ns: int | None
    end_ns: int | None


@dataclasses.dataclass(frozen=True)
class HookError:
    """A recording hook that failed while recording: the events it was making are missing."""

    hook: str  # which hook, e.g. "asyncio.step" or "thread_wait"
    count: int  # how many times it failed
    first: str  # the first error, as "Type: message"


@dataclasses.dataclass(frozen=True)
class Lost:
    """What the trace does not hold, and why."""

    events_lost: int  # dropped by the recorder (its buffer limit)
    chunks_skipped: int  # damaged chunks the reader skipped
    truncated_bytes: int  # bytes of an incomplete last chunk
    seq_gaps: tuple[tuple[int, int], ...]  # (first, last) missing chunk sequence numbers
    clean_end: bool  # the END chunk is present: the recording was stopped cleanly
    problems: tuple[Problem, ...]
    hook_errors: tuple[HookError, ...] = ()  # hooks that failed while recording (their events are missing)
    unseen: tuple[str, ...] = ()  # what the recorder could not see (a loop no hook sees, uvloop's C callbacks, ...)

    @property
    def hook_error_count(self) -> int:
        """How many times recording hooks failed."""
        return sum(error.count for error in self.hook_errors)

    @property
    def chunks_missing(self) -> int:
        """How many chunk sequence numbers are missing."""
        return sum(last - first + 1 for first, last in self.seq_gaps)

    @property
    def complete(self) -> bool:
        """Whether nothing at all is missing."""
        return self.clean_end and not (
            self.events_lost or self.chunks_skipped or self.truncated_bytes or self.seq_gaps or self.hook_errors
        )


class TraceData:
    """A trace's events as NumPy columns, and the tables built from them: what the analyses read.

    :class:`exectracer.reader.Trace`, what :func:`exectracer.load` returns, adds the analyses.
    """

    def __init__(self, decoded: decoder.Decoded | Combined, name: str = "<trace>") -> None:
        combined = decoded if isinstance(decoded, Combined) else combine([decoded], [name])
        decoded = combined.decoded
        self.name = name
        self.version = decoded.version
        self.processes: list[Process] = combined.processes  # by index; the first is the one recorded first
        self.proc = combined.proc  # each event's process: an index into ``processes``
        self.metadata: dict[str, Any] = {**decoded.metadata, "processes": [_process_row(p) for p in self.processes]}
        self.summary: dict[str, Any] | None = decoded.summary  # the END chunk, if the recording stopped cleanly
        self.strings: dict[int, str] = decoded.strings
        self.stacks: dict[int, list[Frame]] = decoded.stacks
        kind = decoded.code.astype(np.uint8)
        arg = np.right_shift(decoded.code, ARG_SHIFT, out=decoded.code)  # reuses the code column
        self.events = Table(kind=kind, arg=arg, ts=decoded.ts, g=decoded.g)
        totals = _ints((decoded.summary or {}).get("events_lost"))
        self.lost = Lost(
            events_lost=max([int(arg[kind == Kind.EVENTS_LOST].sum()), *totals]),
            chunks_skipped=decoded.chunks_skipped,
            truncated_bytes=decoded.truncated_bytes,
            seq_gaps=tuple(decoded.seq_gaps),
            clean_end=decoded.summary is not None,
            problems=tuple(decoded.problems),
            hook_errors=_hook_errors((decoded.summary or {}).get("hook_errors")),
            unseen=_notes((decoded.summary or {}).get("unseen")),
        )

    def __repr__(self) -> str:
        several = f", {len(self.processes)} processes" if len(self.processes) > 1 else ""
        return f"<Trace {self.name}: {self.event_count} events{several}, {self.duration_ns / 1e9:.3f}s>"

    @functools.cached_property
    def goroutine_proc_table(self) -> Table:
        """Each goroutine id that an event of its lifecycle names (``g``, ascending) and its process (``proc``, an
        index into :attr:`processes`), from the process of its first such event."""
        ev = self.events
        rows = np.flatnonzero(kinds_mask(ev.kind, *_GOROUTINE_KINDS) & (ev.g != 0))
        ids, first = np.unique(ev.g[rows], return_index=True)
        return Table(g=ids, proc=self.proc[rows[first]].astype(np.int64))

    @functools.cached_property
    def goroutine_procs(self) -> dict[int, int]:
        """Each goroutine id's process (an index into :attr:`processes`), from the process of its first event."""
        t = self.goroutine_proc_table
        return dict(zip(t.g.tolist(), t.proc.tolist(), strict=True))

    def procs_of(self, ids: NDArray[np.int64], missing: int = -1) -> NDArray[np.int64]:
        """The process (an index into :attr:`processes`) of each goroutine id in ``ids``; ``missing`` for an id
        no lifecycle event names."""
        t = self.goroutine_proc_table
        return lookup(ids, t.g, t.proc, missing)[0]

    def _own_procs(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """:meth:`procs_of` of goroutine ids that lifecycle events name (the thread and task tables' own), without
        :attr:`goroutine_proc_table` when there is one process: all of them are its (but 0, no goroutine's id)."""
        if len(self.processes) == 1:
            return np.where(ids != 0, 0, -1)
        return self.procs_of(ids)

    def pids_of(self, ids: NDArray[np.int64]) -> NDArray[np.object_]:
        """:meth:`pid_of` of each goroutine id in ``ids`` (an object array: ints and None)."""
        if len(self.processes) == 1:
            return np.full(len(ids), self.processes[0].pid, dtype=object)
        pids = np.array([p.pid for p in self.processes] + [None], dtype=object)
        return pids[self.procs_of(ids)]  # -1, unknown, is the last: None

    def pid_of(self, g: int) -> int | None:
        """The process id of goroutine ``g`` (None if unknown)."""
        if len(self.processes) == 1:
            return self.processes[0].pid
        proc = self.goroutine_procs.get(int(g))
        return self.processes[proc].pid if proc is not None else None

    def procs_of_pid(self, pid: int) -> list[int]:
        """The indices of the processes with process id ``pid`` (several hosts may share one)."""
        return [p.index for p in self.processes if p.pid == pid]

    @property
    def event_count(self) -> int:
        """The number of events."""
        return len(self.events)

    @property
    def start_ns(self) -> int:
        """When the recording started (``perf_counter_ns``): metadata ``start_ns`` or the first event."""
        ts = self.events.ts
        return min(_ints(self.metadata.get("start_ns"), ts[0] if len(ts) else None), default=0)

    @property
    def end_ns(self) -> int:
        """When the recording stopped: END ``stop_ns`` or the last event."""
        ts = self.events.ts
        return max(_ints((self.summary or {}).get("stop_ns"), ts[-1] if len(ts) else None), default=self.start_ns)

    @property
    def duration_ns(self) -> int:
        """How long the recording ran, in nanoseconds."""
        return self.end_ns - self.start_ns

    @property
    def sample_interval_ns(self) -> int | None:
        """The sampler's interval (the recording's option), in ns; None if it did not sample or the trace does
        not say."""
        return self._seconds_option_ns("sample_interval")

    @property
    def sampler_ticks_skipped(self) -> int:
        """Sampler ticks missed because it ran (or got the GIL) late: each SAMPLER_LATE says how many."""
        ev = self.events
        return int(ev.arg[ev.kind == Kind.SAMPLER_LATE].sum())

    @property
    def flush_interval_ns(self) -> int | None:
        """The longest the writer was to leave events in memory (the recording's option), in ns; None if the trace
        does not say."""
        return self._seconds_option_ns("flush_interval")

    def _seconds_option_ns(self, name: str) -> int | None:
        """The recording's option ``name``, a positive number of seconds, in ns; None if the trace does not say."""
        options = self.metadata.get("options")
        seconds = options.get(name) if isinstance(options, dict) else None
        return int(float(seconds) * 1e9) if isinstance(seconds, (int, float)) and seconds > 0 else None

    @property
    def takes_ns(self) -> NDArray[np.int64]:
        """For each time the writer took the recorded events from memory (EVENTS_TAKEN), how long it had been since
        the time before: the longest any of those events waited in memory. Empty for traces recorded before the
        writer said so."""
        ev = self.events
        return np.asarray(ev.arg[ev.kind == Kind.EVENTS_TAKEN], dtype=np.int64)

    def string(self, sid: int) -> str:
        """The interned string ``sid`` (``"?"`` if the trace does not define it)."""
        return self.strings.get(int(sid), "?")

    def frame(self, stack_id: int) -> Frame | None:
        """The innermost frame of a stack, if it has any."""
        frames = self.stacks.get(int(stack_id))
        return frames[0] if frames else None

    def task_name(self, arg: int) -> str:
        """The name a TASK_NAME argument stands for."""
        return f"{_DEFAULT_TASK_PREFIX}{-arg}" if arg < 0 else self.string(arg)

    # -- tables ------------------------------------------------------------------

    @functools.cached_property
    def thread_table(self) -> Table:
        """Every thread, by id, as columns: ``id``, ``name`` (string id), ``func`` (stack id of its target),
        ``parent_id``, ``native_id``, ``ident``, ``created_ns``, ``started_ns``, ``ended_ns`` and ``proc`` (an
        index into :attr:`processes`, -1 unknown); :data:`NONE` where :class:`Thread` has None."""
        ev = self.events
        created, started, ended = (
            _Keyed.first(ev, k) for k in (Kind.THREAD_CREATE, Kind.THREAD_START, Kind.THREAD_END)
        )
        names, funcs, idents = (_Keyed.last(ev, k) for k in (Kind.THREAD_NAME, Kind.THREAD_FUNC, Kind.THREAD_IDENT))
        ids = _union(created.keys, started.keys)
        return Table(
            id=ids,
            name=names.value(ids),
            func=funcs.value(ids),
            parent_id=_zero_none(created.value(ids)),
            native_id=_zero_none(started.value(ids)),
            ident=idents.value(ids),
            created_ns=created.ts(ids),
            started_ns=started.ts(ids),
            ended_ns=ended.ts(ids),
            proc=self._own_procs(ids),
        )

    @functools.cached_property
    def threads(self) -> list[Thread]:
        """Every thread, by id (objects made from :attr:`thread_table`)."""
        t = self.thread_table
        functions = self.functions_of(t.func)
        columns = (
            t.id.tolist(),
            self.strings_of(t.name).tolist(),
            *(c.tolist() for c in functions),
            *(objects(c) for c in (t.parent_id, t.native_id, t.ident, t.created_ns, t.started_ns, t.ended_ns)),
            self.pids_of(t.id).tolist(),
        )
        return [Thread(*row) for row in zip(*columns, strict=True)]

    @functools.cached_property
    def task_table(self) -> Table:
        """Every asyncio task, by id, as columns: ``id``, ``name`` (a TASK_NAME argument, see :meth:`task_name`),
        ``func`` (stack id of its coroutine), ``parent_id``, ``loop_id``, ``created_ns``, ``ended_ns``,
        ``outcome``, ``eager`` (bool) and ``proc`` (an index into :attr:`processes`, -1 unknown); :data:`NONE`
        where :class:`Task` has None."""
        ev = self.events
        created, loops, funcs, done, eager = (
            _Keyed.first(ev, k)
            for k in (Kind.TASK_CREATE, Kind.TASK_LOOP, Kind.TASK_FUNC, Kind.TASK_DONE, Kind.TASK_EAGER)
        )
        names = _Keyed.last(ev, Kind.TASK_NAME)
        ids = _union(created.keys, names.keys, done.keys)
        outcome = done.value(ids)
        known = np.isin(outcome, _OUTCOME_VALUES)
        return Table(
            id=ids,
            name=names.value(ids),
            func=funcs.value(ids),
            parent_id=_zero_none(created.value(ids)),
            loop_id=loops.value(ids),
            created_ns=created.ts(ids),
            ended_ns=done.ts(ids),
            outcome=np.where(known, outcome, NONE),
            eager=eager.has(ids),
            proc=self._own_procs(ids),
        )

    @functools.cached_property
    def tasks(self) -> list[Task]:
        """Every asyncio task, by id (objects made from :attr:`task_table`)."""
        t = self.task_table
        outcomes = np.array([None, *(_OUTCOMES[v] for v in _OUTCOME_VALUES.tolist())], dtype=object)
        outcome = outcomes[np.searchsorted(_OUTCOME_VALUES, t.outcome) + 1]
        outcome[t.outcome == NONE] = None
        columns = (
            t.id.tolist(),
            self.task_names(t.name).tolist(),
            *(c.tolist() for c in self.functions_of(t.func)),
            *(objects(c) for c in (t.parent_id, t.loop_id, t.created_ns, t.ended_ns)),
            outcome.tolist(),
            t.eager.tolist(),
            self.pids_of(t.id).tolist(),
        )
        return [Task(*row) for row in zip(*columns, strict=True)]

    def task_names(self, args: NDArray[np.int64]) -> NDArray[np.object_]:
        """:meth:`task_name` of each TASK_NAME argument in ``args`` (``"?"`` for :data:`NONE`), as an object
        array."""
        uniq, inverse = np.unique(args, return_inverse=True)
        values = uniq.tolist()
        unnamed = int(len(values) > 0 and values[0] == NONE)  # the smallest value: first if present
        cut = int(np.searchsorted(uniq, 0))  # negative: a default name (as task_name makes them)
        default = f"{_DEFAULT_TASK_PREFIX}%d".__mod__
        names = ["?"] * unnamed + list(map(default, (-uniq[unnamed:cut]).tolist()))
        names += [self.string(a) for a in values[cut:]]
        return np.array(names, dtype=object)[inverse.reshape(-1)]

    def functions_of(
        self, stack_ids: NDArray[np.int64]
    ) -> tuple[NDArray[np.object_], NDArray[np.object_], NDArray[np.object_]]:
        """The function, file and line of the innermost frame of each stack in ``stack_ids`` (object arrays,
        None where the stack is :data:`NONE` or has no frame)."""
        uniq, inverse = np.unique(stack_ids, return_inverse=True)
        frames = [self.frame(i) if i != NONE else None for i in uniq.tolist()]
        at = inverse.reshape(-1)
        return tuple(  # type: ignore[return-value]
            np.array([getattr(f, part) if f else None for f in frames] or [None], dtype=object)[at]
            for part in ("function", "file", "line")
        )

    @functools.cached_property
    def loops(self) -> list[Loop]:
        """Every event loop, by id."""
        ev = self._select(Kind.LOOP_CLASS, Kind.LOOP_START, Kind.LOOP_STOP)
        classes, starts = _first(ev, Kind.LOOP_CLASS), _first(ev, Kind.LOOP_START)
        last_start, stops = _last(ev, Kind.LOOP_START), _last(ev, Kind.LOOP_STOP)
        return [
            Loop(
                id=lid,
                class_name=self.string(classes[lid][0]) if lid in classes else "?",
                thread_id=last_start[lid][0] or None if lid in last_start else None,
                started_ns=starts[lid][1] if lid in starts else None,
                stopped_ns=stops[lid][1] if lid in stops else None,
            )
            for lid in sorted(classes.keys() | starts.keys())
        ]

    @functools.cached_property
    def user_task_table(self) -> Table:
        """Tasks made with ``exectracer.task``, by id, as columns: ``id``, ``name`` (string id), ``parent_id``,
        ``g`` (the goroutine that began it), ``begin_ns`` and ``end_ns``; :data:`NONE` where :class:`UserTask`
        has None."""
        ev = self.events
        names, parents = _Keyed.first(ev, Kind.USER_TASK_NAME), _Keyed.first(ev, Kind.USER_TASK_PARENT)
        begins, ends = _Keyed.first(ev, Kind.USER_TASK_BEGIN, by="arg"), _Keyed.first(ev, Kind.USER_TASK_END, by="arg")
        ids = _union(names.keys, begins.keys)
        return Table(
            id=ids,
            name=names.value(ids),
            parent_id=_zero_none(parents.value(ids)),
            g=begins.value(ids),
            begin_ns=begins.ts(ids),
            end_ns=ends.ts(ids),
        )

    @functools.cached_property
    def user_tasks(self) -> list[UserTask]:
        """Tasks made with ``exectracer.task``, by id (objects made from :attr:`user_task_table`)."""
        t = self.user_task_table
        columns = (
            t.id.tolist(),
            self.strings_of(t.name).tolist(),
            *(objects(c) for c in (t.parent_id, t.g, t.begin_ns, t.end_ns)),
        )
        return [UserTask(*row) for row in zip(*columns, strict=True)]

    @functools.cached_property
    def regions(self) -> Table:
        """Regions (``exectracer.region``): ``g``, ``name``, ``task`` (user task id, 0 for none),
        ``begin_ns`` and ``end_ns`` (-1 if the region had not ended), ordered by begin."""
        ev = self.events
        where = np.flatnonzero(kinds_mask(ev.kind, Kind.REGION_BEGIN, Kind.REGION_END))
        opens = ev.kind[where] == Kind.REGION_BEGIN
        begin, end = match_spans(ev.g[where], opens)
        begin, end = where[begin], np.where(end >= 0, where[end], -1)
        return Table(
            g=ev.g[begin],
            name=self.strings_of(ev.arg[begin]),
            task=self._follower(begin, Kind.REGION_TASK),
            begin_ns=ev.ts[begin],
            end_ns=np.where(end >= 0, ev.ts[end], -1),
        )

    @functools.cached_property
    def logs(self) -> Table:
        """Log records (``exectracer.log``): ``ts``, ``g``, ``category``, ``message``, ``task`` (0 for none)."""
        ev = self.events
        at = np.flatnonzero(ev.kind == Kind.LOG_MESSAGE)
        before = np.maximum(at - 1, 0)
        has_category = (ev.kind[before] == Kind.LOG_CATEGORY) & (ev.g[before] == ev.g[at]) & (at > 0)
        return Table(
            ts=ev.ts[at],
            g=ev.g[at],
            category=self.strings_of(np.where(has_category, ev.arg[before], 0)),
            message=self.strings_of(ev.arg[at]),
            task=self._follower(at, Kind.LOG_TASK),
        )

    def suspend_reasons(self) -> Table:
        """TASK_SUSPEND events unpacked: ``ts``, ``g``, ``stack`` id and ``category``."""
        sel = self._of(Kind.TASK_SUSPEND)
        return Table(
            ts=sel.ts, g=sel.g, stack=sel.arg >> CATEGORY_SHIFT, category=(sel.arg & CATEGORY_MASK).astype(np.uint8)
        )

    def to_dataframe(self, library: str = "pandas") -> Any:
        """The events as a DataFrame (``ts``, ``g``, ``kind``, ``event`` name, ``arg``) of
        ``library``: ``"pandas"`` or ``"polars"``, which must be installed."""
        frames = dataframe_library(library)
        ev = self.events
        used = np.flatnonzero(np.bincount(ev.kind, minlength=256))
        lut = np.zeros(256, dtype=np.int16)
        lut[used] = np.arange(len(used))
        names = [_kind_name(k) for k in used.tolist()]
        if library == "polars":
            event = frames.Series("event", names, dtype=frames.Enum(names)).gather(lut[ev.kind])
        else:
            event = frames.Categorical.from_codes(lut[ev.kind], categories=names)
        return frames.DataFrame({"ts": ev.ts, "g": ev.g, "kind": ev.kind, "event": event, "arg": ev.arg})

    # -- helpers -----------------------------------------------------------------

    def _of(self, kind: Kind) -> Table:
        mask: NDArray[np.bool_] = self.events.kind == kind
        return self.events[mask]

    def _select(self, *kinds: Kind) -> Table:
        return self.events[kinds_mask(self.events.kind, *kinds)]

    def strings_of(self, ids: NDArray[np.int64]) -> NDArray[np.object_]:
        """An object array of the strings that ``ids`` name (``"?"`` for one the trace does not define)."""
        uniq, inverse = np.unique(ids, return_inverse=True)
        table = np.array([self.string(i) for i in uniq.tolist()], dtype=object)
        return table[inverse.reshape(-1)]

    def _follower(self, at: NDArray[np.intp], kind: Kind) -> NDArray[np.int64]:
        """The arg of a ``kind`` event right after each event in ``at`` (same g and ts), else 0."""
        ev = self.events
        nxt = np.minimum(at + 1, max(len(ev) - 1, 0))
        ok = (ev.kind[nxt] == kind) & (ev.g[nxt] == ev.g[at]) & (ev.ts[nxt] == ev.ts[at]) & (nxt != at)
        return np.where(ok, ev.arg[nxt], 0)


NONE = np.iinfo(np.int64).min  # in a table's integer column: what its object has as None
_OUTCOMES = {int(o): o for o in Outcome}
_OUTCOME_VALUES = np.array(sorted(_OUTCOMES), dtype=np.int64)
_GOROUTINE_KINDS = (
    Kind.THREAD_CREATE,
    Kind.THREAD_START,
    Kind.THREAD_NAME,
    Kind.THREAD_END,
    Kind.TASK_CREATE,
    Kind.TASK_NAME,
    Kind.TASK_DONE,
)


def _process_row(p: Process) -> dict[str, Any]:
    """A process as the metadata's ``processes`` list (and ``summary --json``) give it."""
    return {
        "pid": p.pid,
        "ppid": p.ppid,
        "host": p.host,
        "argv": list(p.argv),
        "start_ns": p.start_ns,
        "end_ns": p.end_ns,
        "aligned_by": p.aligned_by,
        "clean_end": p.clean_end,
    }


_KIND_NAMES = {int(k): k.name for k in Kind}


def _kind_name(kind: int) -> str:
    return _KIND_NAMES.get(kind, f"KIND_{kind}")


def _notes(recorded: Any) -> tuple[str, ...]:
    """The END record's ``unseen`` notes (a list of strings; anything else is left out)."""
    return tuple(note for note in recorded if isinstance(note, str)) if isinstance(recorded, list) else ()


def _hook_errors(recorded: Any) -> tuple[HookError, ...]:
    """The END record's ``hook_errors`` (``{hook: {"count": n, "first": text}}``);
    entries of another shape are left out."""
    if not isinstance(recorded, dict):
        return ()
    errors = []
    for hook, entry in recorded.items():
        if not (isinstance(hook, str) and isinstance(entry, dict)):
            continue
        count = _ints(entry.get("count"))
        if count and count[0] > 0:
            first = entry.get("first")
            errors.append(HookError(hook, count[0], first if isinstance(first, str) else "?"))
    return tuple(errors)


def _ints(*values: Any) -> list[int]:
    return [int(v) for v in values if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]


def _pairs(ev: Table, kind: Kind, by: str) -> tuple[list[int], list[tuple[int, int]]]:
    sel = ev.kind == kind
    keys = ev[by][sel].tolist()
    other = "g" if by == "arg" else "arg"
    return keys, list(zip(ev[other][sel].tolist(), ev.ts[sel].tolist(), strict=True))


def _first(ev: Table, kind: Kind, by: str = "g") -> dict[int, tuple[int, int]]:
    """``key -> (value, ts)`` of the first ``kind`` event per key (``by`` g, value arg, or the reverse)."""
    keys, values = _pairs(ev, kind, by)
    return dict(zip(reversed(keys), reversed(values), strict=True))


def _last(ev: Table, kind: Kind, by: str = "g") -> dict[int, tuple[int, int]]:
    """Like :func:`_first`, for the last event per key."""
    keys, values = _pairs(ev, kind, by)
    return dict(zip(keys, values, strict=True))


def lookup(
    ids: NDArray[np.int64], keys: NDArray[np.int64], column: NDArray[Any], missing: Any
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """``column``'s value at each of ``ids`` in the ascending ``keys`` (``missing`` where an id is not one of them),
    and where it was found."""
    if len(keys) == 0:
        return np.full(len(ids), missing, dtype=column.dtype), np.zeros(len(ids), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
    found = keys[pos] == ids
    return np.where(found, column[pos], missing), found


@dataclasses.dataclass(frozen=True)
class _Keyed:
    """The first (or last) event of one kind per key (``g``, or ``arg``): its other field and time, by key."""

    keys: NDArray[np.int64]  # ascending
    values: NDArray[np.int64]
    times: NDArray[np.int64]

    @classmethod
    def first(cls, ev: Table, kind: Kind, by: str = "g", last: bool = False) -> _Keyed:
        sel = np.flatnonzero(ev.kind == kind)  # one pass over the kinds; the other columns are read at these rows only
        if last:
            sel = sel[::-1]
        keys, at = np.unique(ev[by][sel], return_index=True)  # the first occurrence of each key
        rows = sel[at]
        return cls(keys, ev["g" if by == "arg" else "arg"][rows], ev.ts[rows])

    @classmethod
    def last(cls, ev: Table, kind: Kind, by: str = "g") -> _Keyed:
        return cls.first(ev, kind, by, last=True)

    def value(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        return lookup(ids, self.keys, self.values, NONE)[0]

    def ts(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        return lookup(ids, self.keys, self.times, NONE)[0]

    def has(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        return lookup(ids, self.keys, self.keys, NONE)[1]


def _union(*keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """The distinct values of ascending distinct ``keys``: the first, if all are equal (a goroutine's lifecycle
    events name the same ids), without sorting them again."""
    if all(np.array_equal(other, keys[0]) for other in keys[1:]):
        return keys[0]
    return distinct(*keys)


def _zero_none(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """``values`` with 0 (a goroutine or task id that names none) as :data:`NONE`."""
    return np.where(values == 0, NONE, values)


def objects(values: NDArray[np.int64]) -> list[int | None]:
    """``values`` as Python ints, None for :data:`NONE`."""
    out: list[int | None] = values.tolist()
    if (values == NONE).any():
        out = [None if v == NONE else v for v in out]
    return out
