"""Signals reach a traced program as they reach it untraced: the tracer's threads block them all.

Each program runs twice, ``python program`` and ``exectracer run program``, and
must print the same and exit with the same status.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import exectracer
from exectracer.record.native import speedups
from exectracer.tracer_thread import TracerThread, signals_blocked

pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no pthread_sigmask"),
]
PROGRAMS = Path(__file__).parent / "programs"
TIMEOUT = 50  # seconds: a program that hangs fails here


def run_both(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The program run untraced, then under ``exectracer run``."""
    program = [str(PROGRAMS / "signal_waits.py"), *args]
    untraced = subprocess.run([sys.executable, *program], capture_output=True, text=True, timeout=TIMEOUT)
    trace = str(tmp_path / "t.xtrace")
    traced = subprocess.run(
        [sys.executable, "-m", "exectracer", "run", "-o", trace, *program],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return untraced, traced


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("sigwait", "sigwaitinfo took 10\n"),
        ("sigwait-handler", "sigwaitinfo took 10\n"),
        ("handler", "handled [10]\n"),
    ],
)
@pytest.mark.parametrize("debug_server", [False, True], ids=["", "debug-server"])
def test_a_signal_reaches_the_program_as_untraced(tmp_path, scenario, expected, debug_server):
    args = [scenario, "--debug-server"] if debug_server else [scenario]
    untraced, traced = run_both(tmp_path, *args)
    assert untraced.returncode == 0, untraced.stderr
    assert untraced.stdout.endswith(expected)
    assert (traced.returncode, traced.stdout) == (untraced.returncode, untraced.stdout), traced.stderr
    assert "Traceback" not in traced.stderr


def test_a_tracer_thread_blocks_every_signal_it_can_and_leaves_its_starter_as_it_was():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    seen: list[set[int]] = []
    inner: list[set[int]] = []

    def child() -> None:
        inner.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))

    def body() -> None:
        seen.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        thread = threading.Thread(target=child)  # a thread a tracer thread starts (a request's) inherits it
        thread.start()
        thread.join()

    thread = TracerThread(target=body)
    thread.start()
    thread.join()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    for mask in (seen[0], inner[0]):
        assert {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD, signal.SIGALRM} <= mask
        assert signal.SIGSEGV not in mask  # a fault in the thread still runs faulthandler
    with signals_blocked():
        assert signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


# -- SIGINT and SIGTERM as the trace is finished -----------------------------------------------------------------

END_PROGRAM = str(PROGRAMS / "signals_at_the_end.py")


def complete(path: Path) -> exectracer.Trace:
    """The trace, which must have its END chunk and nothing lost."""
    return exectracer.load(path, strict=True)


def test_a_ctrl_c_during_stop_waits_for_the_trace_to_be_complete(tmp_path):
    path = tmp_path / "t.xtrace"
    done = subprocess.run(
        [sys.executable, END_PROGRAM, "stop-interrupted", str(path)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "KeyboardInterrupt after stop\ntracing: False, sent: True\n"
    assert "Traceback" not in done.stderr
    assert complete(path).logs.message.tolist() == ["before stop"]


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="the FIFO's buffer cannot be made small")
def test_a_ctrl_c_as_exectracer_run_finishes_the_trace_changes_nothing(tmp_path):
    """The runner's stop() waits for the reader of a FIFO with a small buffer while the SIGINT comes."""
    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)
        process = subprocess.Popen(
            [sys.executable, "-m", "exectracer", "run", "-o", str(fifo), END_PROGRAM, "interrupted-at-the-end"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert lines == ["program done\n", "SIGINT sent\n"], process.communicate(timeout=TIMEOUT)
        with contextlib.suppress(subprocess.TimeoutExpired):  # an interrupted stop() would end it now
            process.wait(timeout=1.0)
        data = read_until_closed(reader, process)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(reader)
    assert (process.returncode, stdout) == (0, ""), stderr
    assert "Traceback" not in stderr
    path = tmp_path / "t.xtrace"
    path.write_bytes(data)
    assert len(complete(path).logs) == 2000


def read_until_closed(fd: int, process: subprocess.Popen[str]) -> bytes:
    """Everything written to the FIFO at ``fd`` until its writer closes it (or its process ends)."""
    os.set_blocking(fd, True)
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("scenario", ["terminated", "terminated-with-handler"])
def test_sigterm_under_exectracer_run_finishes_the_trace_then_ends_as_untraced(tmp_path, scenario):
    untraced = subprocess.run([sys.executable, END_PROGRAM, scenario], capture_output=True, text=True, timeout=TIMEOUT)
    path = tmp_path / "t.xtrace"
    traced = subprocess.run(
        [sys.executable, "-m", "exectracer", "run", "-o", str(path), END_PROGRAM, scenario],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    expected = -signal.SIGTERM if scenario == "terminated" else 3
    assert untraced.returncode == expected, untraced.stderr
    assert (traced.returncode, traced.stdout) == (untraced.returncode, untraced.stdout), traced.stderr
    assert "SIGTERM handler: <Handlers.SIG_DFL: 0>" in traced.stdout or scenario != "terminated"
    assert "Traceback" not in traced.stderr
    assert complete(path).logs.message.tolist() == ["before SIGTERM"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.skipif(
    getattr(speedups(), "signal_restarts", None) is None,
    reason="without the C extension, whether a handler restarts calls cannot be read, so it is not put back",
)
def test_a_handler_that_restarts_calls_still_does_after_tracing_stops(tmp_path):
    """stop() holds the program's handlers off and puts them back: a handler set with ``siginterrupt(s, False)``
    must still let the call it interrupts go on, and run once it returns, as untraced."""
    program = str(PROGRAMS / "restarting_signal.py")
    untraced = subprocess.run([sys.executable, program], capture_output=True, text=True, timeout=TIMEOUT)
    trace = str(tmp_path / "t.xtrace")
    traced = subprocess.run([sys.executable, program, "--trace", trace], capture_output=True, text=True, timeout=60)
    assert untraced.stdout == "data then handler\n", untraced.stderr
    assert traced.stdout == untraced.stdout, traced.stderr
