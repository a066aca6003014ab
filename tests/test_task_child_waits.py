"""A task awaiting asyncio's ``Process.wait`` or ``communicate`` names the child it waited for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.format.events import Kind
from exectracer.web.api import ViewerAPI

from support.process_waits import run_printing_pids

PROGRAM = Path(__file__).parent / "programs" / "task_child_waits.py"

pytestmark = pytest.mark.recorder


@pytest.mark.parametrize("pure_python", [False, True], ids=["C hooks", "Python hooks"])
def test_a_task_waiting_for_a_child_names_it(tmp_path: Path, pure_python: bool) -> None:
    """The task's wait for each child is followed by a PROCESS_WAIT naming it, by the task, after the TASK_READY
    that ended the wait and before the task's next step; the viewer links that wait to the child."""
    out, printed = run_printing_pids(PROGRAM, tmp_path, pure_python, follow=False)
    pids = {name: numbers[0] for name, numbers in printed.items()}
    trace = exectracer.load(out)
    ev = trace.events
    main = next(t.id for t in trace.tasks if t.start_function == "__main__.main")
    waits = np.flatnonzero((ev.kind == Kind.PROCESS_WAIT) & (ev.g == main))  # (the child watcher's thread's too)
    assert pids["wait"] in ev.arg[waits].tolist()  # communicate's final wait may find the child reaped already
    assert set(ev.arg[waits].tolist()) <= set(pids.values())
    mine = (ev.g == main) & np.isin(ev.kind, (Kind.TASK_READY, Kind.TASK_STEP))
    for i in waits.tolist():
        ts = int(ev.ts[i])
        before = ev.kind[mine & (ev.ts <= ts)]
        after = ev.kind[mine & (ev.ts > ts)]
        assert before[-1] == Kind.TASK_READY and after[0] == Kind.TASK_STEP  # between the wake-up and the step
    api = ViewerAPI(trace)
    s = api.lanes.states
    gi = int(api.analysis.goroutines.index_of(np.array([main]))[0])
    rows = api.lanes.rows_of(gi)
    linked = set()
    for i in range(rows.start, rows.stop):
        span = api.span({"g": str(main), "t": str(int(s.start[i]) - trace.start_ns)})
        if span is not None and span["waits_on"]:
            assert span["waits_on"]["kind"] == "process"
            linked.update(p["pid"] for p in span["waits_on"]["processes"])
    assert pids["wait"] in linked
    assert trace.lost.hook_errors == ()
