"""Several processes' recordings as one trace: align their clocks, keep their ids apart.

Each process records on its own (a file, or one section of a merged file);
:func:`combine` makes one set of event columns of them, which
:class:`exectracer.trace_data.TraceData` reads like any other:

* **Clocks.** Processes on one host (same host name and, where recorded,
  boot id) share ``CLOCK_MONOTONIC``: their times are kept as they are.
  Another host's times are moved by the difference between the two
  recordings' anchors, ``start_wall_ns - start_ns`` (wall clock and
  monotonic clock read together when each recording started), so they are
  as right as the two hosts' wall clocks agree (:func:`align`).
* **Ids.** The first process keeps its goroutine, loop, user task and work
  item ids; the n-th process (from 0) adds ``n * B`` to each, ``B`` the power
  of ten above the largest id of that kind in any process, so goroutine
  ``3005`` is goroutine 5 of process 3. Strings and stacks are renumbered
  into one table.
* **Which process.** The events' ``proc`` column is the index of their
  process in :data:`Combined.processes`; events about the process itself
  (``g`` 0: memory, its CPU time, events lost) keep ``g`` 0.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .format.decoder import MAX_ID, Decoded, Frame, Problem
from .format.events import (
    ARG_KINDS,
    ARG_SHIFT,
    CALLBACK_SHIFT,
    CATEGORY_SHIFT,
    KIND_MASK,
    SUBJECT_KINDS,
    WAKER_MASK,
    WAKER_SHIFT,
    Arg,
    Kind,
    Subject,
    Waker,
)

__all__ = ["AlignmentError", "Combined", "Process", "align", "combine", "host_key"]


class AlignmentError(ValueError):
    """The recordings' clocks cannot be put on one time line."""


@dataclasses.dataclass(frozen=True)
class Process:
    """One recorded process. Times are on the trace's clock (``perf_counter_ns`` of the first process's host)."""

    index: int  # its position in the trace's processes (events' ``proc`` column)
    pid: int | None
    ppid: int | None
    host: str | None
    argv: tuple[str, ...]
    start_ns: int
    end_ns: int
    start_wall_ns: int | None
    offset_ns: int  # added to the process's own clock to put it on the trace's
    aligned_by: str  # "monotonic clock" (same host) or "wall clock" (another host)
    clean_end: bool  # its recording stopped cleanly (END chunk)
    source: str  # the file it came from


@dataclasses.dataclass
class Combined:
    """Several decoded recordings as one: a :class:`Decoded` of all events, and which process each came from."""

    decoded: Decoded
    proc: NDArray[np.uint16]
    processes: list[Process]
    sections: list[Decoded]  # in the order of ``processes``


def host_key(metadata: dict[str, Any]) -> tuple[str, str]:
    """What tells whether two recordings share a monotonic clock: host name and boot id (``""`` if unknown)."""
    host, boot = metadata.get("hostname"), metadata.get("boot_id")
    return (host if isinstance(host, str) else "", boot if isinstance(boot, str) else "")


def _same_host(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return a[0] == b[0] and (not a[1] or not b[1] or a[1] == b[1])


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None


def align(metadatas: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    """The offset (ns) to add to each recording's times, and how it was found, relative to the first.

    Raises :class:`AlignmentError` when a recording of another host lacks the
    wall-clock anchor (``start_wall_ns`` and ``start_ns``)."""
    keys = [host_key(m) for m in metadatas]
    anchors: dict[int, int] = {}  # index of a host's first recording -> its offset
    out = []
    for i, key in enumerate(keys):
        first = next(j for j in range(i + 1) if _same_host(keys[j], key))
        if first == 0:
            out.append((0, "monotonic clock"))
            continue
        if first not in anchors:
            anchors[first] = _anchor(metadatas[first], i) - _anchor(metadatas[0], 0)
        out.append((anchors[first], "monotonic clock" if first != i else "wall clock"))
    return out


def _anchor(metadata: dict[str, Any], index: int) -> int:
    wall, mono = _int(metadata.get("start_wall_ns")), _int(metadata.get("start_ns"))
    if wall is None or mono is None:
        pid = metadata.get("pid", "?")
        raise AlignmentError(
            f"the recording of pid {pid} on host {host_key(metadata)[0] or '?'} has no wall-clock anchor "
            "(start_wall_ns, start_ns): its clock cannot be aligned with another host's"
        )
    return wall - mono


def combine(sections: Sequence[Decoded], sources: Sequence[str]) -> Combined:
    """One trace of several processes' recordings (see the module's docstring)."""
    offsets = align([d.metadata for d in sections])
    starts = [_start(d) + off for d, (off, _) in zip(sections, offsets, strict=True)]
    shift = max(0, -min(starts))  # a host whose clock is behind: move everything up so no time is negative
    order = sorted(range(len(sections)), key=lambda i: (i != 0, starts[i], i))  # the first recording stays first
    sections = [sections[i] for i in order]
    sources = [sources[i] for i in order]
    offsets = [(offsets[i][0] + shift, offsets[i][1]) for i in order]
    if len(sections) == 1 and not shift:
        only = sections[0]
        procs = np.zeros(len(only.ts), dtype=np.uint16)
        return Combined(only, procs, [_process(0, only, sources[0], offsets[0])], list(sections))
    remap = _Remap(sections)
    parts = [remap.section(i, d, offsets[i][0]) for i, d in enumerate(sections)]
    code, ts, g, proc = (np.concatenate(column) for column in zip(*parts, strict=True))
    order_ts = np.argsort(ts, kind="stable")  # equal times keep each process's events together, in their order
    code, ts, g, proc = code[order_ts], ts[order_ts], g[order_ts], proc[order_ts]
    problems = [p for d in sections for p in d.problems]
    keep = (ts >= 0) & (ts < MAX_ID)
    if not keep.all():
        problems.append(Problem(0, f"{int((~keep).sum())} events out of range once the clocks were aligned"))
        code, ts, g, proc = code[keep], ts[keep], g[keep], proc[keep]
    decoded = Decoded(
        version=max(d.version for d in sections),
        metadata=dict(sections[0].metadata),
        summary=_summary(sections, offsets),
        strings=remap.strings,
        stacks=remap.stacks,
        code=code,
        ts=ts,
        g=g,
        problems=sorted(problems),
        chunks_skipped=sum(d.chunks_skipped for d in sections),
        truncated_bytes=sum(d.truncated_bytes for d in sections),
        seq_gaps=[gap for d in sections for gap in d.seq_gaps],
    )
    processes = [_process(i, d, sources[i], offsets[i]) for i, d in enumerate(sections)]
    return Combined(decoded, proc.astype(np.uint16), processes, list(sections))


def _start(d: Decoded) -> int:
    start = _int(d.metadata.get("start_ns"))
    if start is not None:
        return start
    return int(d.ts[0]) if len(d.ts) else 0


def _end(d: Decoded) -> int:
    stop = _int((d.summary or {}).get("stop_ns"))
    last = int(d.ts[-1]) if len(d.ts) else None
    return max([v for v in (stop, last) if v is not None], default=_start(d))


def _process(index: int, d: Decoded, source: str, offset: tuple[int, str]) -> Process:
    meta = d.metadata
    argv = meta.get("argv")
    host = meta.get("hostname")
    return Process(
        index=index,
        pid=_int(meta.get("pid")),
        ppid=_int(meta.get("ppid")),
        host=host if isinstance(host, str) else None,
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        start_ns=_start(d) + offset[0],
        end_ns=_end(d) + offset[0],
        start_wall_ns=_int(meta.get("start_wall_ns")),
        offset_ns=offset[0],
        aligned_by=offset[1],
        clean_end=d.summary is not None,
        source=source,
    )


def _summary(sections: Sequence[Decoded], offsets: Sequence[tuple[int, str]]) -> dict[str, Any] | None:
    """The END records as one: present only if every recording stopped cleanly; totals added, the last stop."""
    if any(d.summary is None for d in sections):
        return None
    ends = [d.summary or {} for d in sections]
    out = dict(ends[0])
    out["stop_ns"] = max(_end(d) + off for d, (off, _) in zip(sections, offsets, strict=True))
    for key in ("events", "events_lost"):
        out[key] = sum(_int(e.get(key)) or 0 for e in ends)
    out["warnings"] = [w for e in ends if isinstance(e.get("warnings"), list) for w in e["warnings"]]
    out["unseen"] = sorted({n for e in ends if isinstance(e.get("unseen"), list) for n in e["unseen"]}, key=str)
    errors: dict[str, Any] = {}
    for e in ends:
        for hook, entry in (e.get("hook_errors") or {}).items() if isinstance(e.get("hook_errors"), dict) else ():
            if hook in errors and isinstance(entry, dict) and isinstance(errors[hook], dict):
                errors[hook] = {
                    **errors[hook],
                    "count": (_int(errors[hook].get("count")) or 0) + (_int(entry.get("count")) or 0),
                }
            else:
                errors[hook] = entry
    out["hook_errors"] = errors
    return out


# -- ids ---------------------------------------------------------------------

_LOOP_G = np.zeros(256, dtype=bool)
_LOOP_G[list(SUBJECT_KINDS[Subject.LOOP])] = True
_USER_TASK_G = np.zeros(256, dtype=bool)
_USER_TASK_G[list(SUBJECT_KINDS[Subject.USER_TASK])] = True
_USER_TASK_ARG = ARG_KINDS[Arg.USER_TASK]
_WORK_ARG = ARG_KINDS[Arg.WORK]
_SPACES = ("goroutine", "loop", "user_task", "work")
_G_SPACE = np.zeros(256, dtype=np.intp)  # which ids an event's g is: 0 goroutine (or the process), 1 loop, 2 user task
_G_SPACE[_LOOP_G] = 1
_G_SPACE[_USER_TASK_G] = 2
# what an event's arg is, as small numbers for one counting sort; 0 (Arg.VALUE): nothing to renumber
_G_ARG, _L_ARG, _U_ARG, _W_ARG, _S_ARG, _CB_ARG, _K_ARG, _KS_ARG, _WAKER = range(1, 10)
_ARG_CATEGORY = np.zeros(256, dtype=np.uint8)
for _arg, _category in (
    (Arg.GOROUTINE, _G_ARG),
    (Arg.LOOP, _L_ARG),
    (Arg.USER_TASK, _U_ARG),
    (Arg.WORK, _W_ARG),
    (Arg.STRING, _S_ARG),  # TASK_NAME's negative (asyncio's default name) is kept
    (Arg.CALLBACK, _CB_ARG),
    (Arg.STACK, _K_ARG),
    (Arg.STACK_AND_STATE, _KS_ARG),
    (Arg.WAKER, _WAKER),
):
    _ARG_CATEGORY[list(ARG_KINDS[_arg])] = _category


def _by_category(kind: NDArray[np.uint8]) -> list[NDArray[np.intp]]:
    """The rows of each argument category (:data:`_ARG_CATEGORY`), by one counting sort of the kinds."""
    category = _ARG_CATEGORY[kind]
    order = np.argsort(category, kind="stable")
    bounds = np.searchsorted(category[order], np.arange(_WAKER + 2)).tolist()
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def _mask(kind: NDArray[np.uint8], kinds: Sequence[Kind]) -> NDArray[np.bool_]:
    lut = np.zeros(256, dtype=bool)
    lut[list(kinds)] = True
    return lut[kind]


def _step(largest: int) -> int:
    """The power of ten above ``largest``: the distance between two processes' ids."""
    return 10 ** len(str(max(largest, 1)))


class _Remap:
    """Renumbers each recording's ids into the combined trace's."""

    def __init__(self, sections: Sequence[Decoded]) -> None:
        self.columns = [((d.code & KIND_MASK).astype(np.uint8), d.code >> ARG_SHIFT) for d in sections]
        largest = dict.fromkeys(_SPACES, 0)
        for d, (kind, arg) in zip(sections, self.columns, strict=True):
            for space, ids in _ids(kind, arg, d.g).items():
                if len(ids):
                    largest[space] = max(largest[space], int(np.abs(ids).max()))
        self.step = {space: _step(n) for space, n in largest.items()}
        first = sections[0]  # keeps its strings and stacks: its events need no change
        self.strings: dict[int, str] = {**first.strings, 0: "?"}
        self.stacks: dict[int, list[Frame]] = dict(first.stacks)
        self._by_text: dict[str, int] = {text: sid for sid, text in sorted(self.strings.items(), reverse=True)}
        self._next_string = max(self.strings) + 1

    def section(self, index: int, d: Decoded, offset: int) -> tuple[NDArray[Any], ...]:
        """One recording's events on the combined trace's clock and ids: code, ts, g and proc columns."""
        procs = np.full(len(d.g), index, dtype=np.uint16)
        if not index:
            return d.code, d.ts + offset if offset else d.ts, d.g, procs
        kind, arg = self.columns[index]
        strings, stacks = self._lookup_strings(d), self._lookup_stacks(d)
        step = {space: index * n for space, n in self.step.items()}
        g_steps = np.array([step["goroutine"], step["loop"], step["user_task"]], dtype=np.int64)
        g = d.g + np.where(d.g != 0, g_steps[_G_SPACE[kind]], 0)
        rows = _by_category(kind)
        for category, space in ((_G_ARG, "goroutine"), (_L_ARG, "loop"), (_U_ARG, "user_task")):
            a = arg[rows[category]]
            arg[rows[category]] = np.where(a > 0, a + step[space], a)
        a = arg[rows[_W_ARG]]
        arg[rows[_W_ARG]] = np.where(a != 0, a + step["work"], a)
        a = arg[rows[_S_ARG]]
        arg[rows[_S_ARG]] = np.where(a > 0, strings(a), a)  # TASK_NAME's negative: asyncio's default name, kept
        a = arg[rows[_CB_ARG]]
        arg[rows[_CB_ARG]] = strings(a >> CALLBACK_SHIFT) << CALLBACK_SHIFT | a & ((1 << CALLBACK_SHIFT) - 1)
        arg[rows[_K_ARG]] = stacks(arg[rows[_K_ARG]])
        a = arg[rows[_KS_ARG]]
        arg[rows[_KS_ARG]] = stacks(a >> CATEGORY_SHIFT) << CATEGORY_SHIFT | a & ((1 << CATEGORY_SHIFT) - 1)
        arg[rows[_WAKER]] = self._wakers(arg[rows[_WAKER]], strings, index)
        code = kind.astype(np.int64) | arg << ARG_SHIFT
        return code, d.ts + offset, g, procs

    def _wakers(self, arg: NDArray[np.int64], strings: Any, index: int) -> NDArray[np.int64]:
        """TASK_READY arguments renumbered: a goroutine id or a string id above 3 bits of source."""
        source, ident = arg & WAKER_MASK, arg >> WAKER_SHIFT
        by_goroutine = ((source == Waker.TASK) | (source == Waker.THREAD)) & (ident > 0)
        ident[by_goroutine] += index * self.step["goroutine"]
        named = (source == Waker.IO) | (source == Waker.TIMER) | (source == Waker.CALLBACK)
        ident[named] = strings(ident[named])
        return ident << WAKER_SHIFT | source

    def _lookup_strings(self, d: Decoded) -> Any:
        local = np.array(sorted(d.strings), dtype=np.int64)
        mapped = np.array([self._string_id(d.strings[int(i)]) for i in local.tolist()], dtype=np.int64)
        return _lookup(local, mapped)

    def _string_id(self, text: str) -> int:
        sid = self._by_text.get(text)
        if sid is None:
            sid = self._by_text[text] = self._next_string
            self.strings[sid] = text
            self._next_string += 1
        return sid

    def _lookup_stacks(self, d: Decoded) -> Any:
        local = np.array(sorted(k for k in d.stacks if k), dtype=np.int64)
        base = max(self.stacks, default=0)
        mapped = np.arange(base + 1, base + 1 + len(local), dtype=np.int64)
        for old, new in zip(local.tolist(), mapped.tolist(), strict=True):
            self.stacks[new] = d.stacks[old]
        return _lookup(local, mapped)


def _lookup(local: NDArray[np.int64], mapped: NDArray[np.int64]) -> Any:
    """A function mapping ids in ``local`` (sorted) to ``mapped``; other ids (never defined) to 0."""

    def apply(ids: NDArray[np.int64]) -> NDArray[np.int64]:
        if not len(local):
            return np.zeros_like(ids)
        at = np.minimum(np.searchsorted(local, ids), len(local) - 1)
        return np.where(local[at] == ids, mapped[at], 0)

    return apply


def _ids(kind: NDArray[np.uint8], arg: NDArray[np.int64], g: NDArray[np.int64]) -> dict[str, NDArray[np.int64]]:
    """The ids of each space a recording uses (goroutines, loops, user tasks, work items)."""
    goroutine = ~_LOOP_G[kind] & ~_USER_TASK_G[kind]
    return {
        "goroutine": g[goroutine],
        "loop": g[_LOOP_G[kind]],
        "user_task": np.concatenate((g[_USER_TASK_G[kind]], arg[_mask(kind, _USER_TASK_ARG)])),
        "work": arg[_mask(kind, _WORK_ARG)],
    }
