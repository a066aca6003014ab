"""A recording stopped (and the next one started) by another thread while a hook is in a Python call.

A live capture ends on one of the server's threads while the others run
hooks: a C hook that calls Python on its way (a new stack's id, a new
region name's) can let the GIL go to that thread mid-hook. The hook must
then neither crash the process (it used the cleared sink: a segmentation
fault, the death of a loaded server under capture) nor put what it was
recording into the next recording (with the ended one's ids).
``programs/stop_during_hook.py`` makes that interleaving happen at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.recorder

PROGRAM = Path(__file__).parent / "programs" / "stop_during_hook.py"


def run(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(PROGRAM), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"status {done.returncode}\n{done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    assert lines[0] == f"{args[0]} stopped inside the hook"
    return lines[1:]


@pytest.mark.parametrize("hook", ["wait", "region"])
def test_a_hook_survives_the_recording_stopped_meanwhile(hook):
    assert run(hook) == ["recording 1: region False, waits of this thread 0"]


@pytest.mark.parametrize("hook", ["wait", "region"])
def test_what_a_hook_recorded_for_an_ended_recording_stays_out_of_the_next(hook):
    assert run(hook, "restart") == [
        "recording 1: region False, waits of this thread 0",
        "recording 2: region False, waits of this thread 0",
    ]
