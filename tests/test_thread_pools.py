"""Thread pool work: submission, queueing and the worker that ran it."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from exectracer.format.events import Kind

pytestmark = pytest.mark.recorder


def work_items(rec):
    """work id -> {"submit": (ts, g), "begin": (ts, g), "end": (ts, g)}"""
    items = {}
    for kind, name in ((Kind.POOL_SUBMIT, "submit"), (Kind.POOL_WORK_BEGIN, "begin"), (Kind.POOL_WORK_END, "end")):
        for i in rec.of(kind):
            items.setdefault(int(rec.arg[i]), {})[name] = (int(rec.ts[i]), int(rec.g[i]))
    return items


def test_queued_job_shows_its_queueing_time(record):
    done = {}

    def run():
        with ThreadPoolExecutor(max_workers=1) as pool:
            release = threading.Event()
            first = pool.submit(release.wait)  # busy until released, however late the worker starts
            second = pool.submit(sum, [1, 2, 3])  # waits behind the first
            time.sleep(0.1)
            release.set()
            assert second.result() == 6 and first.result() is True
            done["ns"] = time.perf_counter_ns()

    rec = record(run)
    items = work_items(rec)
    assert len(items) == 2
    first, second = (items[k] for k in sorted(items))
    main = next(t.id for t in rec.trace.threads if t.name == "MainThread")
    assert first["submit"][1] == second["submit"][1] == main
    queued = second["begin"][0] - second["submit"][0]
    assert 0.1e9 <= queued and second["begin"][0] <= done["ns"]  # queued from before the sleep to after the release
    assert second["begin"][0] >= first["end"][0]
    worker = next(t for t in rec.trace.threads if t.id == second["begin"][1])
    assert worker.name.startswith("ThreadPoolExecutor")


def test_run_in_executor_work_is_submitted_by_the_awaiting_task(record):
    async def main():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, time.sleep, 0.05)

    rec = record(lambda: asyncio.run(main()))
    (item,) = work_items(rec).values()
    task = next(t for t in rec.trace.tasks if (t.start_function or "").endswith("<locals>.main"))
    assert item["submit"][1] == task.id
    assert item["end"][0] - item["begin"][0] >= 0.04e9
    (link,) = rec.of(Kind.TASK_AWAITS_WORK, task.id)
    assert int(rec.arg[link]) == next(iter(work_items(rec)))
