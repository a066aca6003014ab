"""The sampler's walk up other threads' stacks reads their frames, even when a collection starts inside it.

On CPython 3.11 a frame object of another thread made during the walk (its
``f_back``) could be left on a frame that thread had popped meanwhile, when
the allocation started a collection whose callbacks let the GIL go: a
loaded server under capture died of it (``bench/stress_live.py``). The
sampler's frame reader now makes every frame object a walk reads with
collections held off. ``programs/frame_walk_under_collection.py`` starts
the collection at that allocation and has the thread return meanwhile.

Only the C reader does that: Python code walking another thread's stack lets
the GIL go between frames whatever it does, and a Python twin that walked them
each tick lost tasks' wake-ups on 3.11 (see ``sampler._frames_without_collections``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exectracer.record.native import speedups

pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(speedups() is None, reason="the C frame reader is not built or is switched off"),
]

PROGRAM = Path(__file__).parent / "programs" / "frame_walk_under_collection.py"


def test_a_walk_up_another_threads_stack_finds_its_callers_though_a_collection_runs_in_it():
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(PROGRAM)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["outer", "run"]  # not the frames the thread made since in the same place
