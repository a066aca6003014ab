"""The goroutine, thread, task and user-task tables as columns say what the events say, in every odd case.

Each table keeps one event per goroutine and kind: the first (creation,
start, end, loop, coroutine) or the last (names, ident); a value that names
nothing (a parent 0, an OS id 0) or an event that never came is None in the
objects made from the columns. The expected objects are written out by hand.
"""

from __future__ import annotations

import exectracer
from exectracer.analysis import Goroutine
from exectracer.format.events import Kind, Outcome
from exectracer.reader import Task, Thread, UserTask

from support.tracebuilder import TraceBuilder


def odd_trace() -> exectracer.Trace:
    b = TraceBuilder(start_ns=0)
    work, other = b.stack(("app.work", "app.py", 3)), b.stack(("app.other", "app.py", 9))
    b.event(Kind.THREAD_START, 0, 1, 1)  # the main thread: started before tracing, OS id = pid
    b.event(Kind.THREAD_NAME, 0, 1, b.string("MainThread"))
    b.event(Kind.THREAD_IDENT, 0, 1, 0)  # an ident 0 stays 0
    b.event(Kind.LOOP_CLASS, 1, 7, b.string("Loop"))
    b.event(Kind.LOOP_START, 1, 7, 1)
    b.event(Kind.TASK_CREATE, 10, 5, 1).event(Kind.TASK_CREATE, 11, 5, 2)  # created twice: the first counts
    b.event(Kind.TASK_LOOP, 10, 5, 7).event(Kind.TASK_EAGER, 10, 5)
    b.event(Kind.TASK_FUNC, 10, 5, work).event(Kind.TASK_FUNC, 12, 5, other)  # the first is its start function
    b.event(Kind.TASK_NAME, 10, 5, -4).event(Kind.TASK_NAME, 13, 5, b.string("renamed"))  # the last name counts
    b.event(Kind.TASK_DONE, 20, 5, int(Outcome.CANCELLED)).event(Kind.TASK_DONE, 21, 5, int(Outcome.RETURNED))
    b.event(Kind.TASK_NAME, 14, 3, -9)  # a task seen only by its default name
    b.event(Kind.TASK_CREATE, 15, 4, 0).event(Kind.TASK_LOOP, 15, 4, 0)  # no parent; loop 0 is a loop id
    b.event(Kind.TASK_NAME, 15, 4, 999).event(Kind.TASK_FUNC, 15, 4, 999)  # undefined string and stack
    b.event(Kind.TASK_DONE, 30, 4, 99)  # an outcome no version writes
    b.event(Kind.THREAD_CREATE, 16, 6, 1).event(Kind.THREAD_NAME, 16, 6, b.string("worker"))
    b.event(Kind.THREAD_FUNC, 16, 6, work).event(Kind.THREAD_START, 17, 6, 0)  # OS id 0: unknown
    b.event(Kind.THREAD_START, 18, 6, 77).event(Kind.THREAD_END, 40, 6)
    b.event(Kind.THREAD_CREATE, 19, 8, 6)  # created, never started
    b.event(Kind.USER_TASK_NAME, 20, 1, b.string("job")).event(Kind.USER_TASK_PARENT, 20, 1, 0)
    b.event(Kind.USER_TASK_BEGIN, 20, 5, 1).event(Kind.USER_TASK_BEGIN, 21, 6, 1)  # begun twice: the first counts
    b.event(Kind.USER_TASK_END, 25, 5, 1)
    b.event(Kind.USER_TASK_BEGIN, 22, 6, 2)  # no name, never ended
    b.event(Kind.USER_TASK_NAME, 23, 3, b.string("unbegun")).event(Kind.USER_TASK_PARENT, 23, 3, 1)
    return exectracer.load(b.data(stop_ns=50))


def test_threads() -> None:
    trace = odd_trace()
    assert trace.threads == [
        Thread(1, "MainThread", None, None, None, None, 1, 0, None, 0, None, 1),
        Thread(6, "worker", "app.work", "app.py", 3, 1, None, None, 16, 17, 40, 1),
        Thread(8, "?", None, None, None, 6, None, None, 19, None, None, 1),
    ]


def test_tasks() -> None:
    trace = odd_trace()
    assert trace.tasks == [
        Task(3, "Task-9", None, None, None, None, None, None, None, None, False, 1),
        Task(4, "?", None, None, None, None, 0, 15, 30, None, False, 1),
        Task(5, "renamed", "app.work", "app.py", 3, 1, 7, 10, 20, Outcome.CANCELLED, True, 1),
    ]


def test_user_tasks() -> None:
    trace = odd_trace()
    assert trace.user_tasks == [
        UserTask(1, "job", None, 5, 20, 25),
        UserTask(2, "?", None, 6, 22, None),
        UserTask(3, "unbegun", 1, None, None, None),
    ]


def test_goroutines_by_id_and_role() -> None:
    goroutines = odd_trace().analysis.goroutines
    main = Goroutine(0, 1, "thread", "MainThread", None, None, None, None, -1, True, 1, 0)
    task = Goroutine(3, 5, "task", "renamed", "app.work", 1, 10, 20, 2, False, 1, 0)  # its last TASK_FUNC: stack 2
    assert goroutines.ids.tolist() == [1, 3, 4, 5, 6, 8]
    assert goroutines.list[0] == main and goroutines.get(1) == main and goroutines.get(5) == task
    assert goroutines.get(2) is None
    assert [g.role for g in goroutines.list] == [
        "main program",
        "start function not recorded",
        "start function not recorded",
        None,
        None,
        "start function not recorded",
    ]
    assert [g.label for g in goroutines.list] == [g.label for g in map(goroutines.at, range(len(goroutines)))]
    assert goroutines.labels().tolist() == [g.label for g in goroutines.list]
