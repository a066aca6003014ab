"""Waits for any child process (``os.wait``, ``wait3``, ``wait4``, ``waitid``) name the child they reaped."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.format.events import Kind

from support.process_waits import run_printing_pids

PROGRAM = Path(__file__).parent / "programs" / "any_child_waits.py"

pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(os, "wait4"), reason="POSIX waits"),
]


@pytest.mark.parametrize("pure_python", [False, True], ids=["C hooks", "Python hooks"])
def test_a_wait_for_any_child_names_the_child_it_reaped(tmp_path: Path, pure_python: bool) -> None:
    """Each call's wait is followed by a PROCESS_WAIT naming the pid the call returned, at the end of that wait
    (the THREAD_UNBLOCK of the same goroutine and time), and of a wait of the syscall category."""
    out, printed = run_printing_pids(PROGRAM, tmp_path, pure_python, follow=False)
    reaped = {name: pids[0] for name, pids in printed.items()}
    assert list(reaped) == ["wait", "wait3", "wait4", "waitid"]
    trace = exectracer.load(out)
    ev = trace.events
    waits = np.flatnonzero(ev.kind == Kind.PROCESS_WAIT)
    assert sorted(ev.arg[waits].tolist()) == sorted(reaped.values())  # each child once: every wait was long
    unblocks = set(
        zip(ev.g[ev.kind == Kind.THREAD_UNBLOCK].tolist(), ev.ts[ev.kind == Kind.THREAD_UNBLOCK].tolist(), strict=True)
    )
    for i in waits.tolist():
        assert (int(ev.g[i]), int(ev.ts[i])) in unblocks
    assert trace.lost.hook_errors == ()
