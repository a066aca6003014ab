"""Signals reach a traced program as they reach it untraced: the tracer's threads block them all.

Each program runs twice, ``python program`` and ``exectracer run program``, and
must print the same and exit with the same status.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from exectracer.tracer_thread import TracerThread, signals_blocked

pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(not hasattr(__import__("signal"), "pthread_sigmask"), reason="no pthread_sigmask"),
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
    import signal

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
