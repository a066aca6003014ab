"""The tracer's threads are not the program's: ``threading.enumerate()`` and ``active_count()`` never list them,
and threading's own bookkeeping (shutdown, fork, ``threading._active``) works as untraced."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

import exectracer
from exectracer.tracer_thread import TracerThread, is_tracer_thread

pytestmark = pytest.mark.recorder
PROGRAM = str(Path(__file__).parent / "programs" / "thread_census.py")
TIMEOUT = 100  # seconds


def run(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return done


def test_a_program_under_exectracer_run_sees_its_own_threads_only(tmp_path):
    untraced = run(PROGRAM, "plain")
    traced = run("-m", "exectracer", "run", "-o", str(tmp_path / "t.xtrace"), PROGRAM, "plain")
    assert traced.stdout == untraced.stdout
    assert "forked child: 1 ['MainThread'] MainThread" in traced.stdout


def test_the_debug_server_and_its_capture_are_not_the_programs_threads():
    lines = run(PROGRAM, "debug-server").stdout.splitlines()
    assert lines == [
        "start: 1 ['MainThread'] MainThread",
        "capturing: 2 ['MainThread', 'client'] MainThread",
        "capture: [200]",
        "after the server: 1 ['MainThread'] MainThread",
    ]


def test_a_flight_recorder_and_its_snapshot_writer_are_not_the_programs_threads(tmp_path):
    lines = run(PROGRAM, "flight", str(tmp_path)).stdout.splitlines()
    assert lines == [
        f"{when}: 1 ['MainThread'] MainThread" for when in ("start", "recording", "after a snapshot", "stopped")
    ]


def test_while_tracing_in_this_process():
    before = (threading.active_count(), list(threading.enumerate()))
    with exectracer.trace(io.BytesIO(), sample_interval=0.001):
        during = (threading.active_count(), list(threading.enumerate()))
        worker = threading.Thread(target=lambda: None)
        worker.start()
        worker.join()
    assert during == before
    assert (threading.active_count(), list(threading.enumerate())) == before


def test_a_tracer_thread_runs_joins_and_reports_itself():
    seen: list[object] = []

    def look(x: int) -> None:
        listed = any(t.name == "helper" for t in threading.enumerate())  # (its ident may be a dead dummy's)
        seen.append((x, is_tracer_thread(), listed))

    thread = TracerThread(target=look, args=(1,), name="helper")
    with pytest.raises(RuntimeError):
        thread.join()
    thread.start()
    thread.join()
    assert seen == [(1, True, False)]
    assert not thread.is_alive() and thread.ident is not None
    assert not is_tracer_thread() and not is_tracer_thread(thread.ident)
    with pytest.raises(RuntimeError):
        thread.start()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_does_not_wait_for_the_parents_tracer_threads():
    release = threading.Event()
    thread = TracerThread(target=release.wait)
    thread.start()
    try:
        with warnings.catch_warnings():  # 3.12+: a multi-threaded process forking warns (this child calls no lock)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: the thread was not copied; joining it returns at once
            code = 0 if not thread.is_alive() else 3
            thread.join()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert thread.is_alive()
    finally:
        release.set()
        thread.join()
