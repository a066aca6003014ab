"""The viewer's JSON API (docs/viewer-api.md): one function per path, over one loaded trace."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..analysis import PROFILE_TYPES, Analysis, Profile
from ..analysis.profiles import ESTIMATED
from ..analysis.states import BLOCKED, LOOP_IDLE_STACK, STATE_NAMES, State
from ..analysis.summary import by_name, finished, latency_stats
from ..export import pprof
from ..format.events import WAKER_MASK, WAKER_SHIFT, Waker
from ..reader import Trace
from .child_waits import ChildWaits
from .lanes import Lanes
from .lod import Window
from .query import QueryAPI

MAX_WIDTH = 10_000
MAX_LOG_LIMIT = 1000
BUCKET_INSTANCES = 100
MMU_POINTS = 40
MIN_MMU_WINDOW_NS = 10_000
STATES = [STATE_NAMES[s] for s in State if s != State.ENDED]
_WAKER_KINDS = {
    Waker.UNKNOWN: "unknown",
    Waker.TASK: "task",
    Waker.THREAD: "thread",
    Waker.IO: "io",
    Waker.TIMER: "timer",
    Waker.CALLBACK: "callback",
}

Params = Mapping[str, str]


class BadRequest(ValueError):
    """A request the API cannot answer as asked (HTTP 400)."""


class NotFound(LookupError):
    """Nothing at what the request names (HTTP 404)."""


class Download:
    """A file to send as an attachment."""

    def __init__(self, data: bytes, filename: str) -> None:
        self.data, self.filename = data, filename


class ViewerAPI:
    """Answers API requests about one trace; everything heavy is computed once, up front."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.analysis: Analysis = trace.analysis
        self.lanes = Lanes(self.analysis)
        self.child_waits = ChildWaits(self.analysis)
        self.summary = self.analysis.summary()
        _ = trace.regions, trace.logs  # cached properties, computed now: before requests arrive on several threads
        self.query = QueryAPI(trace)
        self.routes: dict[str, Callable[[Params], Any]] = {
            "/api/info": self.info,
            "/api/lanes": self.lane_list,
            "/api/spans": self.spans,
            "/api/span": self.span,
            "/api/related": self.related,
            "/api/range": self.range_totals,
            "/api/summary": self.summary_doc,
            "/api/goroutines": self.group_goroutines,
            "/api/profile": self.profile,
            "/api/pprof": self.pprof_file,
            "/api/mmu": self.mmu,
            "/api/latency": self.latency,
            "/api/logs": self.logs,
            "/api/sql": self.sql,
        }

    # -- helpers -----------------------------------------------------------------

    def _abs(self, rel: int) -> int:
        return self.trace.start_ns + rel

    def _window(self, p: Params) -> Window:
        start = _int(p, "start", 0)
        end = _int(p, "end", self.trace.duration_ns)
        width = _int(p, "width", 1000)
        if end <= start:
            raise BadRequest("end must be after start")
        if not 1 <= width <= MAX_WIDTH:
            raise BadRequest(f"width must be between 1 and {MAX_WIDTH}")
        return Window(self._abs(start), self._abs(end), width)

    def _goroutine_index(self, p: Params, name: str = "g") -> int:
        gid = _int(p, name)
        gi = int(self.analysis.goroutines.index_of(np.array([gid]))[0])
        if gi < 0:
            raise NotFound(f"no goroutine {gid}")
        return gi

    def _proc(self, gid: int) -> int:
        """The process (an index into the trace's processes) of goroutine ``gid``."""
        return self.trace.goroutine_procs.get(gid, 0) if len(self.trace.processes) > 1 else 0

    def _process_index(self, ident: str) -> int:
        proc = _int({"proc": ident}, "proc")
        if not 0 <= proc < len(self.trace.processes):
            raise NotFound(f"no process {proc}: the trace has {len(self.trace.processes)}")
        return proc

    def _rel(self, values: NDArray[np.integer[Any]]) -> list[int]:
        return (np.asarray(values, dtype=np.int64) - self.trace.start_ns).tolist()

    # -- endpoints -----------------------------------------------------------------

    def info(self, p: Params) -> dict:
        t = self.trace
        return {
            "name": t.name,
            "metadata": t.metadata,
            "duration_ns": t.duration_ns,
            "events": t.event_count,
            "lost": self.summary["trace"]["lost"],
            "warnings": _warnings(t),
            "states": STATES,
        }

    def lane_list(self, p: Params) -> dict:
        gs = self.analysis.goroutines
        functions = sorted({g.start_function for g in gs.list if g.start_function is not None})
        index: dict[str | None, int] = {f: i for i, f in enumerate(functions)}  # None, no start function: not there
        procs = [self._proc(g.id) for g in gs.list]
        proc_of = dict(zip((g.id for g in gs.list), procs, strict=True))
        groups: dict[tuple, list[int]] = {}
        for g in sorted(gs.list, key=lambda g: (g.created_ns is not None, g.created_ns or 0, g.id)):
            groups.setdefault((g.pid, g.start_function, g.kind, g.role), []).append(g.id)
        summary = {
            (grp.get("pid"), grp["start_function"], grp["kind"], grp["role"]): grp for grp in self.summary["groups"]
        }
        order = {key: i for i, key in enumerate(summary)}

        def rel(ns: int | None) -> int | None:
            return None if ns is None else ns - self.trace.start_ns

        return {
            "processes": [
                {
                    "index": p.index,
                    "pid": p.pid,
                    "ppid": p.ppid,
                    "host": p.host,
                    "argv": list(p.argv),
                    "start_ns": rel(p.start_ns),
                    "end_ns": rel(p.end_ns),
                    "clean_end": p.clean_end,
                    "heap": bool(len(self.lanes.heaps[p.index][0])),
                }
                for p in self.trace.processes
            ],
            "loops": [
                {
                    "id": lp.id,
                    "class_name": lp.class_name,
                    "thread_id": lp.thread_id,
                    "proc": proc_of.get(lp.thread_id, 0) if lp.thread_id is not None else 0,
                }
                for lp in self.trace.loops
            ],
            "threads": [g.id for g in gs.list if g.kind == "thread"],
            "heap": bool(len(self.lanes.heap[0])),
            "functions": functions,
            "goroutines": {
                "id": [g.id for g in gs.list],
                "kind": [g.kind for g in gs.list],
                "name": [g.name for g in gs.list],
                "function": [index.get(g.start_function, -1) for g in gs.list],
                "parent": [g.parent_id if g.parent_id is not None else -1 for g in gs.list],
                "pid": [g.pid for g in gs.list],  # its process (trace.metadata["processes"])
                "proc": procs,  # the same, as an index into "processes" (pids of two hosts may be equal)
                "created_ns": [rel(g.created_ns) for g in gs.list],
                "ended_ns": [rel(g.ended_ns) for g in gs.list],
            },
            "groups": [
                {
                    "function": index.get(fn, -1),
                    "kind": kind,
                    "label": summary[pid, fn, kind, role]["label"],
                    "pid": pid,
                    "proc": proc_of[ids[0]],
                    "count": len(ids),
                    "ids": ids,
                }
                for (pid, fn, kind, role), ids in sorted(groups.items(), key=lambda item: order[item[0]])
            ],
        }

    def spans(self, p: Params) -> dict:
        window = self._window(p)
        keys = [k for k in p.get("lanes", "").split(",") if k]
        if not keys:
            raise BadRequest("lanes is required: comma-separated g:<id>, loop:<id>, gc, heap, gc:<proc>, heap:<proc>")
        if len(keys) > 2000:
            raise BadRequest("at most 2000 lanes per request")
        out = {}
        for key in keys:
            out[key] = self._lane(key, window)
        return {
            "start": window.start - self.trace.start_ns,
            "end": window.end - self.trace.start_ns,
            "width": window.width,
            "lanes": out,
        }

    def _lane(self, key: str, window: Window) -> dict:
        kind, _, ident = key.partition(":")
        if kind == "gc":
            cols = self.lanes.gc_strip(window, self._process_index(ident) if ident else None)
            return {
                "start": self._rel(cols["start"]),
                "end": self._rel(cols["end"]),
                "generation": cols["generation"].tolist(),
            }
        if kind == "heap":
            cols = self.lanes.heap_graph(window, self._process_index(ident) if ident else 0)
            return {"ts": self._rel(cols["ts"]), "blocks": cols["blocks"].tolist(), "rss": cols["rss"].tolist()}
        if kind == "g":
            cols = self.lanes.goroutine(self._goroutine_index({"g": ident}), window)
            return {
                "start": self._rel(cols["start"]),
                "end": self._rel(cols["end"]),
                "state": cols["state"].tolist(),
                "count": cols["count"].tolist(),
            }
        if kind == "loop":
            loop = _int({"loop": ident}, "loop")
            if loop not in self.lanes.loops:
                raise NotFound(f"no loop {loop}")
            cols = self.lanes.loop(loop, window)
            return {
                "start": self._rel(cols["start"]),
                "end": self._rel(cols["end"]),
                "what": cols["what"].tolist(),
                "g": cols["g"].tolist(),
                "label": cols["label"],
            }
        raise BadRequest(f"unknown lane {key!r}: use g:<id>, loop:<id>, gc, heap, gc:<proc> or heap:<proc>")

    def span(self, p: Params) -> dict | None:
        """The interval of a goroutine (or the loop span) at a time; None if there is none."""
        if "loop" in p:
            return self._loop_span(p)
        gi = self._goroutine_index(p)
        t = self._abs(_int(p, "t"))
        s = self.lanes.states
        rows = self.lanes.rows_of(gi)
        ends = self.lanes.ends
        i = rows.start + int(np.searchsorted(s.start[rows], t, side="right")) - 1
        if i < rows.start or ends[i] <= t:
            return None
        g = self.analysis.goroutines.list[gi]
        state = State(int(s.state[i]))
        stack_id = int(s.stack[i])
        waker = self._waker(int(s.waker[i]), state, int(s.start[i]), int(ends[i]))
        waker_g = waker["g"] if waker is not None and waker["kind"] == "thread" else None
        return {
            "g": g.id,
            "name": g.name,
            "kind": g.kind,
            "pid": g.pid,
            "proc": self._proc(g.id),
            "function": g.start_function,
            "state": STATE_NAMES[state],
            "blocked": state in BLOCKED,
            "estimated": state == State.OTHER_ESTIMATED,  # a wait no hook saw, estimated from samples
            "start": int(s.start[i]) - self.trace.start_ns,
            "end": int(ends[i]) - self.trace.start_ns,
            "stack": [] if stack_id == LOOP_IDLE_STACK else [f._asdict() for f in self.trace.stacks.get(stack_id, [])],
            "waker": waker,
            "waits_on": self.child_waits.of_wait(
                g.id, int(s.start[i]), int(ends[i]), waker_g, int(ends[i + 1]) if i + 1 < rows.stop else None
            )
            if state in BLOCKED
            else None,
            **self._annotations(g.id, t),
        }

    def _loop_span(self, p: Params) -> dict | None:
        loop = _int(p, "loop")
        lane = self.lanes.loops.get(loop)
        if lane is None:
            raise NotFound(f"no loop {loop}")
        t = self._abs(_int(p, "t"))
        inside = np.flatnonzero((lane.start <= t) & (lane.end > t))
        if len(inside) == 0:
            return None
        i = int(inside[-1])  # the innermost (an eager task's step inside its creator's)
        return {
            "loop": loop,
            "what": int(lane.what[i]),
            "g": int(lane.g[i]),
            "label": self.lanes.loop_label(int(lane.what[i]), int(lane.g[i]), int(lane.label[i])),
            "start": int(lane.start[i]) - self.trace.start_ns,
            "end": int(lane.end[i]) - self.trace.start_ns,
        }

    def _waker(self, packed: int, state: State, start: int, end: int) -> dict | None:
        if packed == 0 or state == State.RUNNING:
            return None
        low = packed & ((1 << WAKER_SHIFT) - 1)
        source = Waker(low) if low in _WAKER_KINDS else Waker.UNKNOWN
        ident = packed >> WAKER_SHIFT
        at = (end if state in BLOCKED else start) - self.trace.start_ns
        if source in (Waker.TASK, Waker.THREAD):
            g = self.analysis.goroutines.get(ident)
            return {"kind": _WAKER_KINDS[source], "g": ident, "name": g.name if g else f"goroutine {ident}", "at": at}
        name = self.trace.string(ident) if source in (Waker.IO, Waker.TIMER, Waker.CALLBACK) else ""
        return {"kind": _WAKER_KINDS[source], "g": None, "name": name, "at": at}

    def _annotations(self, gid: int, t: int) -> dict:
        regions = self.trace.regions
        end = np.where(regions.end_ns >= 0, regions.end_ns, self.trace.end_ns)
        open_now = np.flatnonzero((regions.g == gid) & (regions.begin_ns <= t) & (end > t))
        task_id = int(regions.task[open_now[-1]]) if len(open_now) else 0
        task = next((u for u in self.trace.user_tasks if u.id == task_id), None) if task_id else None
        return {
            "regions": regions.name[open_now].tolist(),
            "user_task": {"id": task.id, "name": task.name} if task else None,
        }

    def related(self, p: Params) -> dict:
        gi = self._goroutine_index(p)
        gid = int(self.analysis.goroutines.ids[gi])
        s = self.lanes.states
        by_goroutine = (s.waker & WAKER_MASK == Waker.TASK) | (s.waker & WAKER_MASK == Waker.THREAD)
        mine = s.waker[self.lanes.rows_of(gi)]
        woken_by = np.unique(mine[by_goroutine[self.lanes.rows_of(gi)]] >> WAKER_SHIFT)
        woke = np.unique(s.gi[by_goroutine & ((s.waker >> WAKER_SHIFT) == gid)])
        return {
            "woken_by": [int(x) for x in woken_by if x != gid],
            "woke": [int(x) for x in self.analysis.goroutines.ids[woke] if x != gid],
        }

    def range_totals(self, p: Params) -> dict:
        window = self._window(p)
        s = self.lanes.states
        seen = np.minimum(s.end, window.end) - np.maximum(s.start, window.start)
        inside = seen > 0
        totals = np.bincount(s.state[inside], weights=seen[inside], minlength=len(STATES))
        return {
            "start": window.start - self.trace.start_ns,
            "end": window.end - self.trace.start_ns,
            "totals": {name: int(totals[i]) for i, name in enumerate(STATES)},
            "goroutines": len(np.unique(s.gi[inside])),
        }

    def summary_doc(self, p: Params) -> dict:
        return {k: v for k, v in self.summary.items() if k != "goroutines"}

    def group_goroutines(self, p: Params) -> list:
        function = p.get("function", "") or None
        kind, role = p.get("kind"), p.get("role")
        return [
            g
            for g in self.summary["goroutines"]
            if g["start_function"] == function
            and (kind is None or g["kind"] == kind)
            and (function is not None or role is None or g["role"] == role)
        ]

    def _profile(self, p: Params) -> Profile:
        kind = p.get("type", "")
        if kind not in PROFILE_TYPES:
            raise BadRequest(f"type must be one of {', '.join(PROFILE_TYPES)}")
        start = _int(p, "start") if "start" in p else None
        end = _int(p, "end") if "end" in p else None
        try:
            return self.analysis.profile(
                kind, start_ns=start, end_ns=end, group=p.get("group") or None, region=p.get("region") or None
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def profile(self, p: Params) -> dict:
        prof = self._profile(p)
        return {
            "type": prof.type,
            "sample_types": [list(t) for t in prof.sample_types],
            "total": prof.total(),
            "estimated": prof.estimated_total(),
            "count": prof.total(0),
            "tree": _flame_tree(prof),
            "top": [{**e.__dict__, "estimated": e.function == ESTIMATED.function} for e in prof.top(50)],
        }

    def pprof_file(self, p: Params) -> Download:
        prof = self._profile(p)
        out = io.BytesIO()
        pprof.write(prof, out, comment=f"exectracer {prof.type} profile")
        return Download(out.getvalue(), f"{prof.type}.pb.gz")

    def mmu(self, p: Params) -> dict:
        points = _int(p, "points", MMU_POINTS)
        if not 2 <= points <= 200:
            raise BadRequest("points must be between 2 and 200")
        longest = max(self.trace.duration_ns, MIN_MMU_WINDOW_NS * 2)
        windows = np.unique(np.geomspace(MIN_MMU_WINDOW_NS, longest, points).astype(np.int64))
        curve = self.analysis.mmu(windows.tolist())
        return {
            "curve": [
                {
                    "window_ns": c.window_ns,
                    "utilization": c.utilization,
                    "worst": [
                        {
                            "start": w.start_ns - self.trace.start_ns,
                            "end": w.end_ns - self.trace.start_ns,
                            "utilization": w.utilization,
                        }
                        for w in c.worst
                    ],
                }
                for c in curve
            ]
        }

    def latency(self, p: Params) -> list:
        what = p.get("what", "")
        if what not in ("tasks", "regions"):
            raise BadRequest("what must be tasks or regions")
        return [
            self._histogram(name, spans.g, spans.begin, spans.end)
            for name, spans in by_name(finished(self.trace, what))
        ]

    def _histogram(
        self, name: str, g: NDArray[np.int64], begin: NDArray[np.int64], end: NDArray[np.int64]
    ) -> dict[str, Any]:
        duration = end - begin
        stats = latency_stats(duration)
        edges = _log_edges(duration)
        bucket = np.clip(np.searchsorted(edges, duration, side="right") - 1, 0, len(edges) - 2)
        buckets = []
        for b in range(len(edges) - 1):
            rows = np.flatnonzero(bucket == b)
            slowest = rows[np.argsort(-duration[rows], kind="stable")[:BUCKET_INSTANCES]]
            buckets.append(
                {
                    "lo_ns": int(edges[b]),
                    "hi_ns": int(edges[b + 1]),
                    "count": len(rows),
                    "instances": [
                        {
                            "g": int(g[i]),
                            "start": int(begin[i]) - self.trace.start_ns,
                            "end": int(end[i]) - self.trace.start_ns,
                        }
                        for i in slowest.tolist()
                    ],
                }
            )
        return {
            "name": name,
            "count": stats["count"],
            **{f"{k}_ns": stats[k] for k in ("p50", "p90", "p99", "max")},
            "buckets": buckets,
        }

    def logs(self, p: Params) -> dict:
        offset = _int(p, "offset", 0)
        limit = _int(p, "limit", 200)
        if offset < 0 or not 1 <= limit <= MAX_LOG_LIMIT:
            raise BadRequest(f"offset must be >= 0 and limit between 1 and {MAX_LOG_LIMIT}")
        logs = self.trace.logs
        rows: NDArray[np.int64] = np.arange(len(logs), dtype=np.int64)
        query = p.get("q", "").lower()
        if query:
            rows = np.array(
                [
                    i
                    for i, (c, m) in enumerate(zip(logs.category.tolist(), logs.message.tolist(), strict=True))
                    if query in c.lower() or query in m.lower()
                ],
                dtype=np.int64,
            )
        page = rows[offset : offset + limit]
        tasks = {u.id: u.name for u in self.trace.user_tasks}
        return {
            "total": len(rows),
            "records": [
                {
                    "ts": int(logs.ts[i]) - self.trace.start_ns,
                    "g": int(logs.g[i]),
                    "category": logs.category[i],
                    "message": logs.message[i],
                    "task": int(logs.task[i]),
                    "task_name": tasks.get(int(logs.task[i])),
                }
                for i in page.tolist()
            ],
        }

    def sql(self, p: Params) -> dict:
        """One reading SQL statement (``q``) over the trace's tables (docs/sql.md), read-only."""
        return self.query.run(p.get("q", ""))


def _warnings(trace: Trace) -> list[str]:
    """What the trace lacks, in words, for the info page's warning."""
    lost = trace.lost
    out = [f"{lost.events_lost:,} events were dropped by the recorder (its buffer limit)"] if lost.events_lost else []
    out += [f"damaged chunk skipped {problem}" for problem in lost.problems]
    if lost.truncated_bytes:
        out.append(f"the file is truncated: its last {lost.truncated_bytes:,} bytes are an incomplete chunk")
    if lost.seq_gaps:
        out.append(f"{lost.chunks_missing:,} chunks are missing from the sequence")
    if not lost.clean_end:
        out.append("the recording did not stop cleanly (no END chunk)")
    out += [
        f"the recording hook {error.hook} failed {error.count:,} time(s), so some of its events are missing "
        f"(first error: {error.first})"
        for error in lost.hook_errors
    ]
    out += [f"not seen by the recorder: {note}" for note in lost.unseen]
    anomalies = trace.analysis.states.anomalies
    out += [f"{count:,} {what}: left out of the states (a damaged trace)" for what, count in anomalies.items()]
    return out


def _int(p: Params, name: str, default: int | None = None) -> int:
    """An integer parameter (a bad or missing one is a :class:`BadRequest`)."""
    text = p.get(name)
    if text is None or text == "":
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {text[:40]!r}") from None
    if abs(value) > 1 << 62:
        raise BadRequest(f"{name} is out of range")
    return value


def _log_edges(duration: NDArray[np.int64]) -> NDArray[np.int64]:
    """Bucket edges: four per factor of ten, from the shortest to the longest duration."""
    if len(duration) == 0:
        return np.array([0, 1], dtype=np.int64)
    lo = max(int(duration.min()), 1)
    hi = max(int(duration.max()), lo + 1)
    first, last = np.floor(np.log10(lo) * 4), np.ceil(np.log10(hi) * 4 + 1e-9)
    edges = np.unique(np.round(10 ** (np.arange(first, last + 1) / 4)).astype(np.int64))
    return edges if len(edges) >= 2 else np.array([lo, hi + 1])


def _flame_tree(prof: Profile) -> dict:
    """The profile as a tree, outermost frame at the root's children."""
    root: dict = {"name": "all", "file": "", "line": 0, "value": 0, "self": 0, "children": {}}
    for sid, value in zip(prof.stacks.tolist(), prof.values[:, -1].tolist(), strict=True):
        node = root
        node["value"] += value
        for frame in reversed(prof.stack_frames(sid)):
            key = (frame.function, frame.file, frame.line)
            child = node["children"].get(key)
            if child is None:
                child = node["children"][key] = {
                    "name": frame.function,
                    "file": frame.file,
                    "line": frame.line,
                    "value": 0,
                    "self": 0,
                    "estimated": frame == ESTIMATED,
                    "children": {},
                }
            child["value"] += value
            node = child
        node["self"] += value
    return _listed(root)


def _listed(node: dict) -> dict:
    children = sorted(node["children"].values(), key=lambda c: -c["value"])
    return {**node, "children": [_listed(c) for c in children]}
