"""The fault campaign's signals: a busy traced program killed, terminated or interrupted at seeded moments.

SIGKILL leaves a readable trace that lacks at most its last second
(``--flush-interval 0.5`` here, so a loaded machine keeps within it);
SIGTERM and SIGINT lose nothing: the trace ends with its END chunk, and the
process ends as it would untraced (by the signal). ``EXECTRACER_FAULT_SEED``
chooses the moments.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import exectracer
from exectracer.reader import TraceFormatError, TraceWarning

pytestmark = pytest.mark.recorder

SEED = int(os.environ.get("EXECTRACER_FAULT_SEED", "2026"))

BUSY = """
import asyncio, threading, time

def spin():
    lock = threading.Lock()
    while True:
        with lock:
            time.sleep(0.001)

async def ping():
    while True:
        await asyncio.sleep(0.001)

threading.Thread(target=spin, daemon=True).start()
print("ready", flush=True)
asyncio.run(asyncio.wait_for(ping(), 30))
"""


def start(tmp_path: Path) -> subprocess.Popen[str]:
    (tmp_path / "busy.py").write_text(textwrap.dedent(BUSY))
    proc = subprocess.Popen(
        [sys.executable, "-m", "exectracer", "run", "--flush-interval", "0.5", "-o", "t.xtrace", "busy.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def signalled(tmp_path: Path, signum: int, case: int) -> tuple[subprocess.Popen[str], str, int]:
    """Run the busy program, send ``signum`` at a seeded moment; the process, its stderr and when it was sent."""
    delay = random.Random(f"{SEED}:{signum}:{case}").uniform(0.05, 1.5)
    proc = start(tmp_path)
    try:
        time.sleep(delay)
        sent = time.perf_counter_ns()  # CLOCK_MONOTONIC, as the trace's times
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc, err, sent


def load(path: Path) -> exectracer.Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return exectracer.load(path)


@pytest.mark.parametrize("case", range(3))
def test_sigkill_loses_at_most_the_last_second(tmp_path: Path, case: int) -> None:
    proc, _, sent = signalled(tmp_path, signal.SIGKILL, case)
    assert proc.returncode == -signal.SIGKILL
    try:
        trace = load(tmp_path / "t.xtrace")
    except TraceFormatError as exc:  # killed before its first chunk reached the file: only the start
        pytest.fail(f"the trace of a program killed after it started working is unreadable: {exc}")
    assert not trace.lost.clean_end
    recorded_to = max(trace.start_ns, int(trace.events.ts.max()) if trace.event_count else 0)
    lost = sent - recorded_to  # killed before the first flush: all since the start, less than a flush interval
    assert lost <= 1_000_000_000, f"{lost / 1e9:.2f} s lost"


@pytest.mark.parametrize(("signum", "case"), [(signal.SIGTERM, 0), (signal.SIGTERM, 1), (signal.SIGINT, 0)])
def test_sigterm_and_sigint_lose_nothing(tmp_path: Path, signum: int, case: int) -> None:
    proc, err, sent = signalled(tmp_path, signum, case)
    assert proc.returncode == -signum, err
    trace = load(tmp_path / "t.xtrace")
    assert trace.lost.clean_end and trace.lost.complete, trace.lost
    assert int(trace.events.ts.max()) >= sent - 200_000_000  # it recorded up to the signal
    assert "Traceback" not in err.replace("KeyboardInterrupt", "") or signum == signal.SIGINT
