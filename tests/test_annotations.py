"""User tasks, regions and logs (Go's trace.NewTask / WithRegion / Log)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import exectracer
from exectracer.format.events import Kind
from exectracer.record.interner import MAX_STRING

pytestmark = pytest.mark.recorder


def test_annotations_do_nothing_while_tracing_is_off():
    with exectracer.task("t") as t:
        with exectracer.region("r"):
            exectracer.log("cat", "msg")
    assert t.id == 0


def test_tasks_follow_awaits_create_task_and_threads(record):
    seen = {}

    async def step(name):
        with exectracer.region(name):
            await asyncio.sleep(0.005)
        exectracer.log("step", f"{name} done")

    async def handle_request():
        with exectracer.task("request") as req:
            seen["request"] = req.id
            with exectracer.task("db") as db:
                seen["db"] = db.id
                await asyncio.create_task(step("query"))
            await asyncio.to_thread(lambda: exectracer.log("thread", "in a worker"))

    rec = record(lambda: asyncio.run(handle_request()))
    user = {t.id: t for t in rec.trace.user_tasks}
    assert user[seen["request"]].name == "request"
    assert user[seen["db"]].parent_id == seen["request"]
    assert user[seen["db"]].begin_ns < user[seen["db"]].end_ns
    # the region ran in a child asyncio task but still belongs to the db task
    (begin,) = rec.of(Kind.REGION_BEGIN)
    region_task = rec.of(Kind.REGION_TASK)
    assert int(rec.arg[region_task[0]]) == seen["db"]
    child = next(t for t in rec.trace.tasks if (t.start_function or "").endswith("<locals>.step"))
    assert int(rec.g[begin]) == child.id
    messages = [rec.trace.strings[int(a)] for a in rec.arg[rec.of(Kind.LOG_MESSAGE)]]
    assert messages == ["query done", "in a worker"]
    log_tasks = [int(a) for a in rec.arg[rec.of(Kind.LOG_TASK)]]
    assert log_tasks == [seen["db"], seen["request"]]


def test_region_as_decorator_sync_and_async(record):
    @exectracer.region("sync-work")
    def work(x):
        return x * 2

    @exectracer.region("async-work")
    async def awork(x):
        await asyncio.sleep(0)
        return x + 1

    def run():
        assert work(2) == 4
        assert asyncio.run(awork(1)) == 2
        t = threading.Thread(target=work, args=(3,))
        t.start()
        t.join()

    rec = record(run)
    names = [rec.trace.strings[int(a)] for a in rec.arg[rec.of(Kind.REGION_BEGIN)]]
    assert sorted(names) == ["async-work", "sync-work", "sync-work"]
    assert len(rec.of(Kind.REGION_END)) == 3
    goroutines = {int(g) for g in rec.g[rec.of(Kind.REGION_BEGIN)]}
    assert len(goroutines) == 3  # main thread, the asyncio task, the other thread


class _Name:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        if self.text == "broken":
            raise ValueError("no name")
        return self.text


def test_regions_record_their_names_as_text_and_never_raise(record):
    long_name = "x" * (MAX_STRING + 10)

    def run():
        for name in (_Name("from str()"), long_name, long_name, _Name("broken")):
            with exectracer.region(name):
                pass

    rec = record(run)
    begins, ends = rec.of(Kind.REGION_BEGIN), rec.of(Kind.REGION_END)
    names = [rec.trace.strings[int(a)] for a in rec.arg[begins]]
    assert names == ["from str()", "x" * MAX_STRING, "x" * MAX_STRING]  # the broken name left out
    assert rec.arg[begins[1]] == rec.arg[begins[2]], "a name cut to length is interned once"
    assert list(rec.arg[ends]) == list(rec.arg[begins])
    (error,) = rec.trace.lost.hook_errors  # the broken name's region, left out, is counted
    assert (error.hook, error.count, error.first) == ("region", 1, "ValueError: no name")


def test_a_region_across_the_start_or_the_stop_records_no_half(tmp_path):
    path = tmp_path / "t.xtrace"
    before = exectracer.region("before")
    before.__enter__()
    exectracer.start(path)
    before.__exit__(None, None, None)  # began untraced: no end either
    after = exectracer.region("after")
    after.__enter__()
    exectracer.stop()
    after.__exit__(None, None, None)  # no recording any more: nothing to store, nothing raised
    trace = exectracer.load(path)
    kinds = list(trace.events.kind)
    assert kinds.count(Kind.REGION_BEGIN) == 1 and kinds.count(Kind.REGION_END) == 0
