"""A deterministic threaded program whose waits go through every kind of thread wait hook.

Traced twice by ``test_native_hooks``, with the C hooks and with the Python
ones: both must record the same waits.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for its support package
from support.waiting import wait_until_blocked


def receive(sock: socket.socket) -> bytes:
    return sock.recv(10)  # waits for the sender: recorded by the C wrapper itself


def wait_readable(fd: int) -> None:
    select.select([fd], [], [])  # also in C


def read_pipe(fd: int) -> bytes:
    return os.read(fd, 10)  # also in C


def take(lock: threading.Lock) -> None:
    with lock:  # a contended lock: the lock wrapper
        pass


def take_again(rlock: threading.RLock) -> None:
    with rlock:  # a contended reentrant lock, released by the main thread
        pass


def wait_notified(cond: threading.Condition) -> None:
    with cond:
        cond.wait()  # one wait, the Condition's: not its lock's too, taken back inside it


async def release_in_task(lock: threading.Lock) -> None:
    lock.release()  # the waiter's waker is this task, not the main thread


def main() -> None:
    left, right = socket.socketpair()
    selected, to_select = os.pipe()
    read, to_read = os.pipe()
    lock, task_lock, rlock, cond = (
        threading.Lock(),
        threading.Lock(),
        threading.RLock(),
        threading.Condition(threading.Lock()),
    )
    for held in (lock, task_lock, rlock):
        held.acquire()
    threads = [
        threading.Thread(target=receive, args=(left,), name="receiver"),
        threading.Thread(target=wait_readable, args=(selected,), name="selector"),
        threading.Thread(target=read_pipe, args=(read,), name="reader"),
        threading.Thread(target=take, args=(lock,), name="locker"),
        threading.Thread(target=take, args=(task_lock,), name="task-locker"),
        threading.Thread(target=take_again, args=(rlock,), name="rlocker"),
        threading.Thread(target=wait_notified, args=(cond,), name="notified"),
    ]
    for thread in threads:
        thread.start()
    functions = ("receive", "wait_readable", "read_pipe", "take", "take", "take_again", "wait_notified")
    for thread, function in zip(threads, functions, strict=True):
        wait_until_blocked(thread, function, sleep=threading.Event().wait)  # each in its wait before what ends it comes
    time.sleep(0.05)  # a sleep: its GIL estimate makes it a Python-recorded wait
    right.sendall(b"x")
    os.write(to_select, b"y")
    os.write(to_read, b"z")
    lock.release()
    asyncio.run(release_in_task(task_lock))
    rlock.release()
    with cond:
        cond.notify()
        time.sleep(0.01)  # the waiter, woken, waits to take the lock back: still inside its Condition.wait
    for thread in threads:
        thread.join()
    for closing in (left, right):
        closing.close()
    for fd in (selected, to_select, read, to_read):
        os.close(fd)


if __name__ == "__main__":
    main()
