"""What ``threading`` tells a program about its threads, at moments when the tracer's threads run:
``python thread_census.py SCENARIO``, one line per look: ``active_count()`` and the sorted names of
``threading.enumerate()``.

- ``plain``: at the start, after a thread of its own ran, in a forked child and after it.
- ``debug-server``: before ``exectracer.serve_debug()``, then while a capture runs (its request thread and the
  recording's threads busy), the client being a thread of the program's.
- ``flight DIRECTORY``: before and while an ``exectracer.FlightRecorder`` records, then once its triggers' thread
  wrote a snapshot on SIGUSR2.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import threading
import time

import exectracer

DEADLINE = 60.0  # seconds


def census(when: str) -> None:
    names = sorted(t.name for t in threading.enumerate())
    print(f"{when}: {threading.active_count()} {names} {threading.current_thread().name}", flush=True)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"still waiting for {what}")
        time.sleep(0.005)


def plain() -> None:
    census("start")
    worker = threading.Thread(target=census, args=("in a thread",), name="worker")
    worker.start()
    worker.join()
    census("after the thread")
    if hasattr(os, "fork"):
        pid = os.fork()
        if pid == 0:
            census("forked child")
            os._exit(0)
        os.waitpid(pid, 0)
        census("after the fork")


def debug_server() -> None:
    census("start")
    server = exectracer.serve_debug(port=0)
    statuses: list[int] = []

    def fetch() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
        connection.request("GET", "/debug/pprof/trace?seconds=1")
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        connection.close()

    client = threading.Thread(target=fetch, name="client")
    client.start()
    wait_for(exectracer.is_tracing, "the capture")
    census("capturing")
    client.join()
    print(f"capture: {statuses}", flush=True)
    server.close()
    census("after the server")


def flight(directory: str) -> None:
    census("start")
    recorder = exectracer.FlightRecorder(1 << 20, 1.0)
    recorder.start()
    census("recording")
    recorder.snapshot_on_signal(signal.SIGUSR2, directory)  # its snapshots are written by a thread of its own
    os.kill(os.getpid(), signal.SIGUSR2)
    wait_for(lambda: any(name.endswith(".xtrace") for name in os.listdir(directory)), "the snapshot")
    census("after a snapshot")
    recorder.stop()
    census("stopped")


if __name__ == "__main__":
    scenario = sys.argv[1]
    if scenario == "plain":
        plain()
    elif scenario == "debug-server":
        debug_server()
    elif scenario == "flight":
        flight(sys.argv[2])
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
