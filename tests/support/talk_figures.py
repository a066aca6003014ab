"""The figures the analysis gives for the talk's three situations (``programs/talk.py``), normalised.

Each figure is a ratio of two things the same run measured (a time the
trace shows against the program's own ground truth, or against another time
of the same trace), so that it does not depend on the machine's speed and
can be compared from one event loop to another, and from a quiet machine to
a loaded one.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

import exectracer
from exectracer.analysis.states import State
from exectracer.format.events import Kind

from programs import talk

HANDLERS = "proxy_handler.<locals>.handle_client"
BACKEND_READ = "asyncio.streams.StreamReader._wait_for_data"
LOCK_SITE = "MetricsClient.send"


def group(doc: dict, function_suffix: str) -> dict:
    """The one group of goroutines whose start function ends with ``function_suffix``."""
    (found,) = [g for g in doc["groups"] if (g["start_function"] or "").endswith(function_suffix)]
    return found


def full_collections_ns(trace: exectracer.Trace, function_suffix: str) -> list[int]:
    """How long each full collection took while goroutines started by a function ending in ``function_suffix`` ran."""
    ids = [
        g["id"] for g in trace.analysis.summary()["goroutines"] if (g["start_function"] or "").endswith(function_suffix)
    ]
    ev = trace.events
    theirs = ev.ts[np.isin(ev.g, ids)]
    full = ev[(ev.kind == Kind.GC_START) & (ev.arg == 2) | (ev.kind == Kind.GC_END)]
    took = []
    for start, end in itertools.pairwise(full):
        if (
            start.kind == Kind.GC_START
            and start.arg == 2
            and end.kind == Kind.GC_END
            and theirs.min() <= start.ts <= theirs.max()
        ):
            took.append(int(end.ts - start.ts))
    return took


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure of a run, what the program's own measure says it should be (None: nothing says), and whether
    it may be compared with another run's (a figure that depends on how loaded the machine was may not)."""

    value: float | str | None
    truth: float | str | None
    across_runs: bool = True


Figures = dict[str, Figure]


def longest_runnable(trace: exectracer.Trace, function_suffix: str) -> int:
    """The longest time a goroutine started by a function ending in ``function_suffix`` waited, ready, to run."""
    states = trace.analysis.states
    theirs = [i for i, g in enumerate(states.goroutines.list) if (g.start_function or "").endswith(function_suffix)]
    runnable = (states.state == State.RUNNABLE) & np.isin(states.gi, theirs)
    return int((states.end[runnable] - states.start[runnable]).max())


def proxy(trace: exectracer.Trace, measured: talk.Measured) -> Figures:
    """The handlers' time blocked on the network, and the net profile's time at the backend read, against the
    handlers' own timing of their backend reads (about 1: each handler waits out the backend after its client
    left); the function of the top network wait."""
    doc = trace.analysis.summary()
    handlers = group(doc, HANDLERS)
    assert handlers["count"] == talk.CLIENTS == len(measured.waits_ns), (handlers, measured)
    waited = sum(measured.waits_ns)
    waits = [w for w in doc["top_waits"] if w["category"] == "network"]
    net = {e.function: e.flat for e in trace.analysis.profile("net").top(50)}
    return {
        "handlers_network_vs_measured": Figure(handlers["time_ns"]["blocked"]["network"] / waited, 1.0),
        "net_profile_backend_read_vs_measured": Figure(net.get(BACKEND_READ, 0) / waited, 1.0),
        "top_network_wait": Figure(waits[0]["function"] if waits else None, BACKEND_READ),
    }


def lock(trace: exectracer.Trace, measured: talk.Measured) -> Figures:
    """The threads' waits for the metrics client's lock (the summary's top sync waits at it, the sync profile's
    time at it) against the threads' own timing of them, and against the wall time (several times the wall: the
    threads wait in turn); the function of the top sync wait."""
    doc = trace.analysis.summary()
    waited = sum(measured.waits_ns)
    assert len(measured.waits_ns) == talk.LOCK_WORKERS and waited > 0, measured
    at_lock = sum(w["total_ns"] for w in doc["top_waits"] if w["category"] == "sync" and _at_lock(w["function"]))
    sync_waits = [w for w in doc["top_waits"] if w["category"] == "sync"]
    profile = sum(e.flat for e in trace.analysis.profile("sync").top(50) if _at_lock(e.function))
    return {
        "lock_waits_vs_measured": Figure(at_lock / waited, 1.0),
        "lock_waits_vs_wall": Figure(at_lock / measured.wall_ns, waited / measured.wall_ns, across_runs=False),
        "sync_profile_at_lock_vs_measured": Figure(profile / waited, 1.0),
        "top_sync_wait": Figure(sync_waits[0]["function"] if sync_waits else None, f"programs.talk.{LOCK_SITE}"),
    }


def _at_lock(function: str | None) -> bool:
    return (function or "").endswith(LOCK_SITE)


def collections(trace: exectracer.Trace, measured: talk.Measured) -> Figures:
    """The busy tasks against the full collections made while they were ready: their longest scheduler latency
    against the longest time they measured themselves waiting to resume (about 1), the longest of those
    collections as the trace and as the program timed them (about 1), the busy tasks' GC time against the sum of
    those collections (each of the three is held up by each), and the longest latency against the longest
    collection (at least 1, a ready task waits out a whole collection; more when the machine was busy with
    other work meanwhile, so it is not compared from run to run)."""
    doc = trace.analysis.summary()
    while_busy = full_collections_ns(trace, ".busy")
    assert len(while_busy) >= len(measured.waits_ns) == talk.FULL_COLLECTIONS, (while_busy, measured)
    busy = group(doc, ".busy")
    latency = longest_runnable(trace, ".busy")
    return {
        "max_latency_vs_measured": Figure(latency / measured.longest_resume_ns, 1.0),
        "longest_collection_vs_measured": Figure(max(while_busy) / max(measured.waits_ns), 1.0),
        "busy_gc_vs_collections": Figure(busy["time_ns"]["gc"] / (busy["count"] * sum(while_busy)), 1.0),
        "max_latency_vs_longest_collection": Figure(latency / max(while_busy), None, across_runs=False),
    }
