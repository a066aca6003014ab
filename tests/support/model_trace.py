"""A hand-built trace with known answers: the model the analysis tests and the CLI's analysis tests read."""

from __future__ import annotations

from exectracer.format.events import Category, Kind, Outcome, Waker

from .tracebuilder import TraceBuilder

MAIN, TASK, WORKER, POOL, SPAWNER = 1, 2, 3, 4, 5
LOOP = 9  # a loop id that is no goroutine's: its idle events belong to the thread running it
END = 10_000


def model_trace() -> TraceBuilder:
    """A loop thread, one task through every state, a worker thread and a pool worker.

    Expected per-state times are spelled out in ``tests/test_analysis.py``.
    """
    b = TraceBuilder()
    b.thread(MAIN, 0, None, "MainThread")
    b.event(Kind.LOOP_START, 0, LOOP, MAIN)
    b.task(TASK, 90, "app.handler", parent=MAIN)
    recv = b.stack(("app.read_backend", "app.py", 20), ("app.handler", "app.py", 10))
    lock = b.stack(("app.update", "app.py", 30), ("app.handler", "app.py", 11))
    b.ready(100, TASK, Waker.TASK, MAIN)
    b.event(Kind.TASK_STEP, 150, TASK)
    b.wait(Kind.TASK_SUSPEND, 200, TASK, Category.NETWORK, recv)
    b.ready(500, TASK, Waker.IO, 0)
    b.event(Kind.TASK_STEP, 520, TASK)
    b.event(Kind.GC_START, 560, TASK, 2)
    b.event(Kind.GC_END, 580, TASK, 7)
    b.wait(Kind.TASK_SUSPEND, 600, TASK, Category.SYNC, lock)
    b.ready(900, TASK, Waker.TASK, MAIN)
    b.event(Kind.TASK_STEP, 950, TASK)
    b.ready(980, TASK, Waker.TASK, TASK)  # queued inside the step: a bare yield
    b.wait(Kind.TASK_SUSPEND, 1000, TASK, Category.YIELD, lock)
    b.event(Kind.TASK_STEP, 1100, TASK)
    b.event(Kind.TASK_DONE, 1200, TASK, Outcome.RETURNED)
    # the loop's thread idles in its selector
    b.event(Kind.LOOP_IDLE_BEGIN, 1300, LOOP)
    b.event(Kind.LOOP_IDLE_END, 1800, LOOP, 1)
    # a worker thread: created, started, sleeps (the GIL comes back late), waits on a lock
    sleep = b.stack(("app.pause", "app.py", 40), ("app.work", "app.py", 41))
    held = b.stack(("app.take", "app.py", 50), ("app.work", "app.py", 51))
    b.thread(WORKER, 10, "app.work", "worker", created=0)
    b.wait(Kind.THREAD_BLOCK, 100, WORKER, Category.SLEEP, sleep)
    b.event(Kind.THREAD_UNBLOCK, 400, WORKER, 0)
    b.event(Kind.GIL_WAIT, 400, WORKER, 50)
    b.wait(Kind.THREAD_BLOCK, 500, WORKER, Category.SYNC, held)
    b.event(Kind.THREAD_UNBLOCK, 700, WORKER, MAIN)
    b.event(Kind.THREAD_END, 1000, WORKER)
    # a task that waits on a subprocess, then on something unclassified
    b.task(SPAWNER, 2000, "app.spawn")
    b.ready(2000, SPAWNER).event(Kind.TASK_STEP, 2010, SPAWNER)
    b.wait(
        Kind.TASK_SUSPEND,
        2020,
        SPAWNER,
        Category.SYSCALL,
        b.stack(("asyncio.subprocess.Process.wait", "subprocess.py", 9)),
    )
    b.ready(2100, SPAWNER).event(Kind.TASK_STEP, 2110, SPAWNER)
    b.wait(Kind.TASK_SUSPEND, 2120, SPAWNER, Category.OTHER, b.stack(("app.custom_future", "app.py", 60)))
    b.ready(2200, SPAWNER).event(Kind.TASK_STEP, 2210, SPAWNER).event(Kind.TASK_DONE, 2220, SPAWNER, Outcome.RAISED)
    # a pool worker: runs two work items and waits for work in between
    b.thread(POOL, 2000, "concurrent.futures.thread._worker", "pool-0")
    b.event(Kind.POOL_WORK_BEGIN, 2000, POOL, 1)
    b.event(Kind.POOL_WORK_END, 2500, POOL, 1)
    b.event(Kind.POOL_WORK_BEGIN, 4000, POOL, 2)
    b.event(Kind.POOL_WORK_END, 4500, POOL, 2)
    return b
