"""Which child processes a goroutine's wait was for: the viewer's link from a wait to the child's lanes.

* A wait the recorder saw end for one child (``Popen.wait``,
  ``communicate``, ``os.waitpid`` of one pid, so ``Process.join``) is
  followed by a PROCESS_WAIT event naming the child's pid, at the time the
  wait ended; for a task (asyncio's ``Process.wait``, ``communicate``),
  right after it: within the task's next interval (runnable, until its step).
* A wait for a process pool's result (``Pool.map``, ``apply``, a
  ``ProcessPoolExecutor`` future's ``result``) is a wait on a condition
  that the pool's result thread notifies; the recorder does not know which
  worker computed it. Such a wait (woken by a thread whose start function
  is one of :data:`POOL_RESULT_THREADS`) is shown as waiting on the child
  processes of the waiting process that ran during the wait: the pool's
  workers, when one pool runs at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis import Analysis
from ..format.events import Kind
from ..processes import Process, host_key

POOL_RESULT_THREADS = {
    "multiprocessing.pool.Pool._handle_results": "multiprocessing pool",
    "concurrent.futures.process._ExecutorManagerThread.run": "ProcessPoolExecutor",
}


class ChildWaits:
    """The PROCESS_WAIT events of a trace, looked up by goroutine and time."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        trace = analysis.trace
        ev = trace.events
        rows = np.flatnonzero(ev.kind == Kind.PROCESS_WAIT)
        order = np.lexsort((ev.ts[rows], ev.g[rows]))
        rows = rows[order]
        self.g, self.ts, self.pid = ev.g[rows], ev.ts[rows], ev.arg[rows]
        self._hosts = [host_key(_meta(p)) for p in trace.processes]

    def of_wait(
        self, gid: int, start: int, end: int, waker_g: int | None, until: int | None = None
    ) -> dict[str, Any] | None:
        """What the wait of goroutine ``gid`` from ``start`` to ``end`` (absolute ns) was for, or None; ``until``:
        where the goroutine's next interval ends (a task's PROCESS_WAIT comes in it).

        ``{"kind": "process" | "pool", "pool": which pool, "processes": [{pid, proc, argv}, ...]}``,
        ``proc`` being the child's index in the trace's processes (None: it left no recording)."""
        trace = self.analysis.trace
        waiter = trace.goroutine_procs.get(gid, 0) if len(trace.processes) > 1 else 0
        lo = np.searchsorted(self.g, gid, side="left")
        hi = np.searchsorted(self.g, gid, side="right")
        at = lo + np.flatnonzero(self.ts[lo:hi] == end)
        if not len(at) and until is not None:
            at = lo + np.flatnonzero((self.ts[lo:hi] > end) & (self.ts[lo:hi] < until))[:1]
        if len(at):
            pids = sorted({int(p) for p in self.pid[at].tolist()})
            return {"kind": "process", "pool": None, "processes": [self._child(waiter, pid) for pid in pids]}
        helper = self.analysis.goroutines.get(waker_g) if waker_g is not None else None
        pool = POOL_RESULT_THREADS.get(helper.start_function or "") if helper is not None else None
        if pool is None:
            return None
        parent = trace.processes[waiter]
        workers = [
            p
            for p in trace.processes
            if p.ppid == parent.pid
            and p.index != waiter
            and self._hosts[p.index] == self._hosts[waiter]
            and p.start_ns < end
            and p.end_ns > start
        ]
        return {"kind": "pool", "pool": pool, "processes": [_entry(p.pid, p) for p in workers]}

    def _child(self, waiter: int, pid: int) -> dict[str, Any]:
        """The recording of child ``pid`` of process index ``waiter``: of its host, preferably its child."""
        trace = self.analysis.trace
        parent = trace.processes[waiter]
        same_host = [p for p in trace.processes if p.pid == pid and self._hosts[p.index] == self._hosts[waiter]]
        mine = [p for p in same_host if p.ppid == parent.pid] or same_host
        return _entry(pid, mine[0] if mine else None)


def _entry(pid: int | None, process: Process | None) -> dict[str, Any]:
    return {
        "pid": pid,
        "proc": process.index if process is not None else None,
        "argv": list(process.argv) if process is not None else None,
    }


def _meta(p: Process) -> dict[str, Any]:
    """What :func:`host_key` reads, of a process (its boot id is not kept: the host name decides)."""
    return {"hostname": p.host}
