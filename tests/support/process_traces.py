"""Hand-built recordings of two processes whose goroutine ids collide, for the multi-process reader."""

from __future__ import annotations

from exectracer.format.events import Category, Kind, Waker

from support.tracebuilder import TraceBuilder

WALL = 1_700_000_000_000_000_000


def process(pid: int, ppid: int | None, host: str = "box", start_ns: int = 0, wall: int = WALL) -> TraceBuilder:
    b = TraceBuilder(start_ns=start_ns)
    b.metadata.update(pid=pid, ppid=ppid, hostname=host, argv=["app.py", str(pid)], start_wall_ns=wall)
    return b


def collecting_parent(b: TraceBuilder) -> TraceBuilder:
    """Its main thread (goroutine 1) runs 0-2000 and collects from 100 to 200; task 2 waits on the network."""
    b.thread(1, 0, None, "MainThread")
    b.event(Kind.GC_START, 100, 1, 2).event(Kind.GC_END, 200, 1, 5)
    b.task(2, 0, "parent.handler", parent=1)
    b.ready(0, 2).event(Kind.TASK_STEP, 10, 2)
    b.wait(Kind.TASK_SUSPEND, 20, 2, Category.NETWORK, b.stack(("parent.fetch", "parent.py", 7)))
    return b


def runnable_child(b: TraceBuilder) -> TraceBuilder:
    """Task 2 (same id as the parent's) runnable from 50 to 300, through the parent's collection; thread 1 names
    itself differently."""
    b.thread(1, 0, None, "MainThread")
    b.task(2, 0, "child.work", parent=1)
    b.ready(50, 2, Waker.TASK, 1).event(Kind.TASK_STEP, 300, 2)
    b.wait(Kind.TASK_SUSPEND, 400, 2, Category.SLEEP, b.stack(("child.pause", "child.py", 3)))
    return b
