"""What a flight recorder's window must restate about the time before it.

Threads, tasks, loops and user tasks are described once, when they first
appear (THREAD_START and THREAD_NAME, TASK_CREATE and TASK_NAME, ...), and
regions are opened once. When the ring drops old EVENTS chunks, the
descriptions of those still alive go with them, so a snapshot would show
goroutines without names. :class:`LiveDescriptions` reads each dropped chunk,
keeps the describing events of what is still alive (and forgets what ended),
and gives them back to be written at the start of a snapshot, like a
recording that started at the window's start: threads already running,
tasks first seen then.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..format.events import KIND_MASK, Kind, pack
from ..record.native import speedups

MAX_ENTRIES = 16384  # per table (threads, tasks, loops, user tasks, goroutines with open regions): the oldest go first
MAX_OPEN_REGIONS = 64  # per goroutine

# the describing kinds of each table, in the order a snapshot writes them
THREAD_KINDS = (Kind.THREAD_START, Kind.THREAD_IDENT, Kind.THREAD_NAME, Kind.THREAD_FUNC)
TASK_KINDS = (Kind.TASK_CREATE, Kind.TASK_LOOP, Kind.TASK_FUNC, Kind.TASK_NAME)
LOOP_KINDS = (Kind.LOOP_CLASS, Kind.LOOP_START)
USER_TASK_KINDS = (Kind.USER_TASK_NAME, Kind.USER_TASK_PARENT)
ENDINGS = (Kind.THREAD_END, Kind.TASK_DONE, Kind.LOOP_STOP, Kind.USER_TASK_BEGIN, Kind.USER_TASK_END)
REGION_KINDS = (Kind.REGION_BEGIN, Kind.REGION_TASK, Kind.REGION_END)

_LOW_BYTE = 0 if sys.byteorder == "little" else 7  # where an int64's low byte (the kind) is
# bytes.translate table: 1 for a kind this module reads, 0 for the others
_WANTED = bytes(
    1 if k in {*THREAD_KINDS, *TASK_KINDS, *LOOP_KINDS, *USER_TASK_KINDS, *ENDINGS, *REGION_KINDS} else 0
    for k in range(256)
)
_TASK_DONE = bytes(1 if k == Kind.TASK_DONE else 0 for k in range(256))
_OF_TASK = frozenset(int(k) for k in (*TASK_KINDS, Kind.TASK_DONE, *REGION_KINDS))  # kinds whose g may be a task
_OF_TASK_TABLE = bytes(1 if k in _OF_TASK else 0 for k in range(256))

V = TypeVar("V")


class LiveDescriptions:
    """The describing events of what was alive when the ring's oldest kept chunk began."""

    def __init__(self) -> None:
        self._threads: dict[int, dict[int, int]] = {}  # g -> {kind: arg}
        self._tasks: dict[int, dict[int, int]] = {}  # g -> {kind: arg}
        self._loops: dict[int, dict[int, int]] = {}  # loop id -> {kind: arg}
        self._user_tasks: dict[int, dict[int, int]] = {}  # user task id -> {kind: arg}, and the goroutine that began it
        self._regions: dict[int, list[list[int]]] = {}  # g -> open regions, outermost first: [name, user task]

    def absorb(self, codes: array[int] | memoryview, gs: array[int] | memoryview) -> None:
        """Take in the events of a dropped chunk (its ``code`` and ``g`` columns, in file order).

        The same as taking in each event in turn, faster: a task's describing
        and region events before its TASK_DONE in the chunk are passed over,
        since that end forgets them (and most tasks of a service begin and end
        in one chunk); nor do they push older entries out of a full table. So
        is a TASK_DONE with nothing to forget (its task began in the chunk).
        The events to take in are found in C where the extension is built.
        """
        live = set(self._tasks).union(self._regions)  # what a TASK_DONE can forget
        native = speedups()
        if native is not None:
            positions = native.kept_positions(codes, gs, _WANTED, _OF_TASK_TABLE, live)
        else:
            positions = _kept_positions(codes, gs, live)
        for i in positions:
            code = codes[i]
            self._absorb_one(code & KIND_MASK, code >> 8, gs[i])

    def rows(self, ts: int) -> array[int]:
        """The describing events, all at ``ts``, as flat ``code, ts, g`` rows:
        loops, threads, tasks, user tasks, regions."""
        out = array("q")
        for table, kinds in ((self._loops, LOOP_KINDS), (self._threads, THREAD_KINDS), (self._tasks, TASK_KINDS)):
            for ident, described in table.items():
                for kind in kinds:
                    if kind in described:
                        out.extend((pack(kind, described[kind]), ts, ident))
        for uid, described in self._user_tasks.items():
            for kind in USER_TASK_KINDS:
                if kind in described:
                    out.extend((pack(kind, described[kind]), ts, uid))
            if Kind.USER_TASK_BEGIN in described:
                out.extend((pack(Kind.USER_TASK_BEGIN, uid), ts, described[Kind.USER_TASK_BEGIN]))
        for g, regions in self._regions.items():
            for name, user_task in regions:
                out.extend((pack(Kind.REGION_BEGIN, name), ts, g))
                if user_task:
                    out.extend((pack(Kind.REGION_TASK, user_task), ts, g))
        return out

    @property
    def count(self) -> int:
        """How many events :meth:`rows` would give."""
        described = sum(
            len(d) for table in (self._threads, self._tasks, self._loops, self._user_tasks) for d in table.values()
        )
        return described + sum(len(r) + sum(1 for _, task in r if task) for r in self._regions.values())

    def _absorb_one(self, kind: int, arg: int, g: int) -> None:
        if kind in THREAD_KINDS:
            _entry(self._threads, g, dict)[kind] = arg
        elif kind in TASK_KINDS:
            _entry(self._tasks, g, dict)[kind] = arg
        elif kind in LOOP_KINDS:
            _entry(self._loops, g, dict)[kind] = arg
        elif kind in USER_TASK_KINDS:
            _entry(self._user_tasks, g, dict)[kind] = arg
        elif kind == Kind.USER_TASK_BEGIN:
            _entry(self._user_tasks, arg, dict)[kind] = g
        elif kind == Kind.USER_TASK_END:
            self._user_tasks.pop(arg, None)
        elif kind == Kind.THREAD_END:
            self._threads.pop(g, None)
            self._regions.pop(g, None)
        elif kind == Kind.TASK_DONE:
            self._tasks.pop(g, None)
            self._regions.pop(g, None)
        elif kind == Kind.LOOP_STOP:
            self._loops.get(g, {}).pop(Kind.LOOP_START, None)
        else:
            self._absorb_region(kind, arg, g)

    def _absorb_region(self, kind: int, arg: int, g: int) -> None:
        regions = self._regions.get(g)
        if kind == Kind.REGION_BEGIN:
            if regions is None:
                regions = _entry(self._regions, g, list)
            if len(regions) < MAX_OPEN_REGIONS:
                regions.append([arg, 0])
        elif regions:
            if kind == Kind.REGION_TASK:
                regions[-1][1] = arg
            else:  # REGION_END closes the innermost open region
                regions.pop()
                if not regions:
                    del self._regions[g]


def _kept_positions(codes: array[int] | memoryview, gs: array[int] | memoryview, live: set[int]) -> list[int]:
    """The positions of the events ``absorb`` takes in (``_speedups.kept_positions`` in Python).

    ``live``: the goroutines a TASK_DONE can forget something of; another's end is passed over.
    """
    kinds = codes.tobytes()[_LOW_BYTE::8]
    last_done = {gs[i]: i for i in _positions(kinds.translate(_TASK_DONE))}
    return [
        i
        for i in _positions(kinds.translate(_WANTED))
        if not (kinds[i] in _OF_TASK and i < last_done.get(gs[i], -1)) and (kinds[i] != Kind.TASK_DONE or gs[i] in live)
    ]


def _positions(marks: bytes) -> Iterator[int]:
    """Where ``marks`` (one byte an event) holds a 1."""
    i = marks.find(1)
    while i >= 0:
        yield i
        i = marks.find(1, i + 1)


def _entry(table: dict[int, V], key: int, new: Callable[[], V]) -> V:
    """``table[key]``, added (as ``new()``) if missing; the oldest entry goes past MAX_ENTRIES."""
    found = table.get(key)
    if found is None:
        if len(table) >= MAX_ENTRIES:
            del table[next(iter(table))]
        found = table[key] = new()
    return found
