"""Where a thread waiting for the GIL sleeps, checked against the interpreter that runs the tests.

A thread spinning in Python while this one holds the GIL must wait for it:
read with a ``pread`` that keeps the GIL (``procfs.start_reader``), its
``/proc`` syscall line shows the futex it sleeps on, which must lie where
``gil_futexes`` says; a thread blocked on a lock of its own must not.
"""

from __future__ import annotations

import os
import queue
import threading

import pytest

from exectracer.record.gil import gil_enabled
from exectracer.record.gil_futex import first_argument, gil_futexes
from exectracer.record.procfs import open_proc, start_reader

from support.waiting import wait_for, wait_until_blocked

pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc"),
    pytest.mark.skipif(not gil_enabled(), reason="no GIL to wait for"),
]


def asleep_on(thread: threading.Thread, read) -> int:
    """The address ``thread`` sleeps on, read keeping the GIL; -1 while it does not sleep in a syscall."""
    fd = open_proc(f"/proc/self/task/{thread.native_id}/syscall")
    try:
        line = read(fd)
    finally:
        os.close(fd)
    return -1 if line.startswith(b"running") else first_argument(line)


def test_a_thread_waiting_for_the_gil_sleeps_where_gil_futexes_says() -> None:
    span = gil_futexes()
    assert span is not None and span[0] < span[1]
    read = start_reader()
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(i * i for i in range(100))

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        # this thread holds the GIL while it reads: the spinner, once it asked for it, sleeps waiting for it
        address = wait_for(lambda: max(asleep_on(spinner, read), 0), "the spinner asleep waiting for the GIL")
        assert span[0] <= address < span[1], (hex(address), [hex(a) for a in span])
    finally:
        stop.set()
        spinner.join()


def test_a_thread_blocked_on_a_lock_of_its_own_does_not() -> None:
    span = gil_futexes()
    assert span is not None
    read = start_reader()
    q: queue.SimpleQueue[None] = queue.SimpleQueue()
    event, lock = threading.Event(), threading.Lock()
    lock.acquire()
    waits = {"SimpleQueue.get": (q.get, lambda: q.put(None)), "Event.wait": (event.wait, event.set)}
    waits["Lock.acquire"] = (lock.acquire, lock.release)
    for name, (wait, wake) in waits.items():
        thread = threading.Thread(target=wait, name=name)
        thread.start()
        try:
            wait_until_blocked(thread, "run")
            address = asleep_on(thread, read)
        finally:
            wake()
            thread.join()
        assert address >= 0 and not span[0] <= address < span[1], (name, hex(address))
