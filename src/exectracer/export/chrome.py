"""Write a :class:`~exectracer.export.timeline.Timeline` in Chrome's JSON Trace Event Format.

For ``chrome://tracing`` and the older tools that read ``{"traceEvents": [...]}``:
``X`` complete events for state slices, GC and regions, ``s``/``f`` flow
events from a waker to the slice it made ready, ``C`` counters for the
heap, ``i`` instants for logs, ``b``/``e`` async events for user tasks and
``M`` metadata naming the process and each goroutine's row (its ``tid``
is the goroutine id). Those tools load a file whole, so above
:data:`MAX_EVENTS` events :func:`write` refuses (:class:`TooLarge`) and
the caller suggests a time range or the Perfetto format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from ..table import distinct
from .timeline import STATE_CATEGORIES, SYNTHETIC_TID, Timeline

MAX_EVENTS = 1_000_000  # chrome://tracing slows to a crawl, and runs out of memory, beyond about this
GC_TID = 0  # the row of collections (goroutine ids start at 1)
REGIONS_TID = 1 << 40  # plus the goroutine id: the row of a goroutine's user regions


class TooLarge(ValueError):
    """The file would hold more events than the JSON format's viewers can load."""

    def __init__(self, events: int) -> None:
        super().__init__(f"{events:,} events")
        self.events = events


def count(timeline: Timeline) -> int:
    """How many events the file would hold."""
    t = timeline
    names = 1 + 2 * len(t.tracks) + (1 if len(t.collections) else 0) + len(distinct(t.regions.g))
    counters = sum(len(c) for _, _, c in t.counters())
    return (
        names
        + len(t.states)
        + 2 * len(t.flows)
        + counters
        + len(t.collections)
        + len(t.logs)
        + len(t.regions)
        + 2 * len(t.user_tasks)
    )


def write(timeline: Timeline, dest: str | os.PathLike[str] | BinaryIO, max_events: int | None = None) -> int:
    """Write ``timeline`` as Trace Event Format JSON to a path or binary file; return how many events it holds.

    Raises :class:`TooLarge` (writing nothing) above ``max_events`` (default :data:`MAX_EVENTS`)."""
    events = count(timeline)
    if events > (MAX_EVENTS if max_events is None else max_events):
        raise TooLarge(events)
    if not isinstance(dest, (str, os.PathLike)):
        _write_to(timeline, dest)
    else:
        with open(dest, "wb") as file:
            _write_to(timeline, file)
    return events


def _write_to(t: Timeline, out: BinaryIO) -> None:
    out.write(b'{"displayTimeUnit":"ns","traceEvents":[\n')
    first = True
    for lines in _parts(t):
        if not lines:
            continue
        out.write(((",\n" if not first else "") + ",\n".join(lines)).encode("utf-8", "surrogatepass"))
        first = False
    out.write(b"\n]}\n")


def _parts(t: Timeline) -> Iterator[list[str]]:
    yield _metadata(t)
    yield _states(t)
    yield _flows(t)
    yield _counters(t)
    yield _collections(t)
    yield _logs(t)
    yield _regions(t)
    yield _user_tasks(t)


def _us(t: Timeline, ns: NDArray[np.int64]) -> list[str]:
    """Absolute ns as microseconds from the trace's start, to the ns."""
    whole, frac = np.divmod(np.maximum(t.rel(ns), 0), 1000)
    return [f"{w}.{f:03d}" for w, f in zip(whole.tolist(), frac.tolist(), strict=True)]


def _dur(ns: NDArray[np.int64]) -> list[str]:
    whole, frac = np.divmod(np.maximum(ns, 0), 1000)
    return [f"{w}.{f:03d}" for w, f in zip(whole.tolist(), frac.tolist(), strict=True)]


def _metadata(t: Timeline) -> list[str]:
    pid = t.pid
    process = " ".join(t.argv) or t.process_name
    lines = [_json({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": process}})]
    g = t.tracks
    for gi, (gid, name, tid, home) in enumerate(
        zip(g.id.tolist(), g.name, g.tid.tolist(), g.home.tolist(), strict=True)
    ):
        label = f"{name} (tid {tid})" if not g.is_task[gi] and tid < SYNTHETIC_TID else name
        sort = int(g.id[home]) if g.is_task[gi] and home >= 0 else gid
        lines.append(_json({"ph": "M", "name": "thread_name", "pid": pid, "tid": gid, "args": {"name": label}}))
        lines.append(
            _json({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": gid, "args": {"sort_index": sort}})
        )
    if len(t.collections):
        lines.append(_json({"ph": "M", "name": "thread_name", "pid": pid, "tid": GC_TID, "args": {"name": "GC"}}))
    for owner in distinct(t.regions.g).tolist():
        row = {"name": f"regions of goroutine {owner}"}
        lines.append(_json({"ph": "M", "name": "thread_name", "pid": pid, "tid": REGIONS_TID + owner, "args": row}))
    return lines


def _states(t: Timeline) -> list[str]:
    s = t.states
    if not len(s):
        return []
    ids = t.tracks.id
    heads = {
        int(state): f'{{"ph":"X","name":"{state.name.lower()}","cat":"{",".join(cats)}","pid":{t.pid},"tid":'
        for state, cats in STATE_CATEGORIES.items()
    }
    where = t.locations(s.gi, s.stack, s.state)
    unique, inverse = np.unique(where, return_inverse=True)
    args = [_location(t, int(sid)) for sid in unique.tolist()]
    rows = zip(
        s.state.tolist(),
        ids[s.gi].tolist(),
        _us(t, s.start),
        _dur(s.end - s.start),
        inverse.reshape(-1).tolist(),
        strict=True,
    )
    return [f'{heads[st]}{g},"ts":{ts},"dur":{d}{args[a]}}}' for st, g, ts, d, a in rows]


def _location(t: Timeline, stack_id: int) -> str:
    frame = t.frame(stack_id) if stack_id >= 0 else None
    if frame is None:
        return ""
    return ',"args":' + _json({"function": frame.function, "file": frame.file, "line": frame.line})


def _flows(t: Timeline) -> list[str]:
    f = t.flows
    if not len(f):
        return []
    ids = t.tracks.id
    woken = ids[t.states.gi[f.to_row]].tolist()
    waker = ids[f.from_gi].tolist()
    head = f'"name":"wake-up","cat":"wake-up","pid":{t.pid}'
    out = []
    for i, (ts, a, b) in enumerate(zip(_us(t, f.ts), waker, woken, strict=True)):
        out.append(f'{{"ph":"s","id":{i + 1},{head},"tid":{a},"ts":{ts}}}')
        out.append(f'{{"ph":"f","id":{i + 1},{head},"tid":{b},"ts":{ts}}}')
    return out


def _counters(t: Timeline) -> list[str]:
    out = []
    for name, unit, c in t.counters():
        head = f'{{"ph":"C","name":{_json(name)},"pid":{t.pid},"ts":'
        out += [f'{head}{ts},"args":{{"{unit}":{v}}}}}' for ts, v in zip(_us(t, c.ts), c.value.tolist(), strict=True)]
    return out


def _collections(t: Timeline) -> list[str]:
    c = t.collections
    head = f'"cat":"gc","pid":{t.pid},"tid":{GC_TID}'
    rows = zip(c.generation.tolist(), _us(t, c.start), _dur(c.end - c.start), c.collected.tolist(), strict=True)
    return [
        f'{{"ph":"X","name":"gc gen {gen}",{head},"ts":{ts},"dur":{d}'
        + (f',"args":{{"collected":{n}}}}}' if n >= 0 else "}")
        for gen, ts, d, n in rows
    ]


def _logs(t: Timeline) -> list[str]:
    lg = t.logs
    rows = zip(_us(t, lg.ts), lg.g.tolist(), lg.category.tolist(), lg.message.tolist(), strict=True)
    return [
        _json({"ph": "i", "s": "t", "name": m, "cat": c if c not in ("", "?") else "log", "pid": t.pid, "tid": g})[:-1]
        + f',"ts":{ts}}}'
        for ts, g, c, m in rows
    ]


def _regions(t: Timeline) -> list[str]:
    r = t.regions
    rows = zip(_us(t, r.start), _dur(r.end - r.start), r.g.tolist(), r.name.tolist(), strict=True)
    return [
        _json({"ph": "X", "name": n, "cat": "region", "pid": t.pid, "tid": REGIONS_TID + g})[:-1]
        + f',"ts":{ts},"dur":{d}}}'
        for ts, d, g, n in rows
    ]


def _user_tasks(t: Timeline) -> list[str]:
    u = t.user_tasks
    out = []
    rows = zip(u.id.tolist(), u.name.tolist(), u.g.tolist(), _us(t, u.start), _us(t, u.end), strict=True)
    for tid, name, g, begin, end in rows:
        head = _json({"name": name, "cat": "user_task", "id": tid, "pid": t.pid, "tid": g})[:-1]
        out.append(f'{head},"ph":"b","ts":{begin}}}')
        out.append(f'{head},"ph":"e","ts":{end}}}')
    return out


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
