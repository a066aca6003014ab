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
from .table import Table, dataframe_library, kinds_mask, match_spans

__all__ = ["HookError", "Loop", "Lost", "Process", "Task", "Thread", "TraceData", "UserTask"]

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
    def goroutine_procs(self) -> dict[int, int]:
        """Each goroutine id's process (an index into :attr:`processes`), from the process of its first event."""
        ev = self.events
        rows = np.flatnonzero(kinds_mask(ev.kind, *_GOROUTINE_KINDS) & (ev.g != 0))
        ids, first = np.unique(ev.g[rows], return_index=True)
        return dict(zip(ids.tolist(), self.proc[rows[first]].tolist(), strict=True))

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
        options = self.metadata.get("options")
        interval = options.get("sample_interval") if isinstance(options, dict) else None
        return int(float(interval) * 1e9) if isinstance(interval, (int, float)) and interval > 0 else None

    @property
    def sampler_ticks_skipped(self) -> int:
        """Sampler ticks missed because it ran (or got the GIL) late: each SAMPLER_LATE says how many."""
        ev = self.events
        return int(ev.arg[ev.kind == Kind.SAMPLER_LATE].sum())

    @property
    def flush_interval_ns(self) -> int | None:
        """The longest the writer was to leave events in memory (the recording's option), in ns; None if the trace
        does not say."""
        options = self.metadata.get("options")
        interval = options.get("flush_interval") if isinstance(options, dict) else None
        return int(float(interval) * 1e9) if isinstance(interval, (int, float)) and interval > 0 else None

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
    def threads(self) -> list[Thread]:
        """Every thread, by id."""
        ev = self._select(
            Kind.THREAD_CREATE,
            Kind.THREAD_START,
            Kind.THREAD_END,
            Kind.THREAD_NAME,
            Kind.THREAD_FUNC,
            Kind.THREAD_IDENT,
        )
        created, started, ended = (_first(ev, k) for k in (Kind.THREAD_CREATE, Kind.THREAD_START, Kind.THREAD_END))
        names, funcs, idents = (_last(ev, k) for k in (Kind.THREAD_NAME, Kind.THREAD_FUNC, Kind.THREAD_IDENT))
        threads = []
        for g in sorted(created.keys() | started.keys()):
            func = self.frame(funcs[g][0]) if g in funcs else None
            threads.append(
                Thread(
                    id=g,
                    name=self.string(names[g][0]) if g in names else "?",
                    start_function=func.function if func else None,
                    file=func.file if func else None,
                    line=func.line if func else None,
                    parent_id=created[g][0] or None if g in created else None,
                    native_id=started[g][0] or None if g in started else None,
                    ident=idents[g][0] if g in idents else None,
                    created_ns=created[g][1] if g in created else None,
                    started_ns=started[g][1] if g in started else None,
                    ended_ns=ended[g][1] if g in ended else None,
                    pid=self.pid_of(g),
                )
            )
        return threads

    @functools.cached_property
    def tasks(self) -> list[Task]:
        """Every asyncio task, by id."""
        ev = self._select(
            Kind.TASK_CREATE, Kind.TASK_LOOP, Kind.TASK_FUNC, Kind.TASK_NAME, Kind.TASK_DONE, Kind.TASK_EAGER
        )
        created, loops, funcs, done, eager = (
            _first(ev, k) for k in (Kind.TASK_CREATE, Kind.TASK_LOOP, Kind.TASK_FUNC, Kind.TASK_DONE, Kind.TASK_EAGER)
        )
        names = _last(ev, Kind.TASK_NAME)
        tasks = []
        for g in sorted(created.keys() | names.keys() | done.keys()):
            made, name, func_at, loop, end = created.get(g), names.get(g), funcs.get(g), loops.get(g), done.get(g)
            func = self.frame(func_at[0]) if func_at else None
            tasks.append(
                Task(
                    id=g,
                    name=self.task_name(name[0]) if name else "?",
                    start_function=func.function if func else None,
                    file=func.file if func else None,
                    line=func.line if func else None,
                    parent_id=made[0] or None if made else None,
                    loop_id=loop[0] if loop else None,
                    created_ns=made[1] if made else None,
                    ended_ns=end[1] if end else None,
                    outcome=_OUTCOMES.get(end[0]) if end else None,
                    eager=g in eager,
                    pid=self.pid_of(g),
                )
            )
        return tasks

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
    def user_tasks(self) -> list[UserTask]:
        """Tasks made with ``exectracer.task``, by id."""
        ev = self._select(Kind.USER_TASK_NAME, Kind.USER_TASK_PARENT, Kind.USER_TASK_BEGIN, Kind.USER_TASK_END)
        names, parents = _first(ev, Kind.USER_TASK_NAME), _first(ev, Kind.USER_TASK_PARENT)
        begins, ends = _first(ev, Kind.USER_TASK_BEGIN, by="arg"), _first(ev, Kind.USER_TASK_END, by="arg")
        return [
            UserTask(
                id=tid,
                name=self.string(names[tid][0]) if tid in names else "?",
                parent_id=parents[tid][0] or None if tid in parents else None,
                g=begins[tid][0] if tid in begins else None,
                begin_ns=begins[tid][1] if tid in begins else None,
                end_ns=ends[tid][1] if tid in ends else None,
            )
            for tid in sorted(names.keys() | begins.keys())
        ]

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
            name=self._strings_of(ev.arg[begin]),
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
            category=self._strings_of(np.where(has_category, ev.arg[before], 0)),
            message=self._strings_of(ev.arg[at]),
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

    def _strings_of(self, ids: NDArray[np.int64]) -> NDArray[np.object_]:
        """An object array of the strings that ``ids`` name."""
        uniq, inverse = np.unique(ids, return_inverse=True)
        table = np.array([self.string(i) for i in uniq.tolist()], dtype=object)
        return table[inverse.reshape(-1)]

    def _follower(self, at: NDArray[np.intp], kind: Kind) -> NDArray[np.int64]:
        """The arg of a ``kind`` event right after each event in ``at`` (same g and ts), else 0."""
        ev = self.events
        nxt = np.minimum(at + 1, max(len(ev) - 1, 0))
        ok = (ev.kind[nxt] == kind) & (ev.g[nxt] == ev.g[at]) & (ev.ts[nxt] == ev.ts[at]) & (nxt != at)
        return np.where(ok, ev.arg[nxt], 0)


_OUTCOMES = {int(o): o for o in Outcome}
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
