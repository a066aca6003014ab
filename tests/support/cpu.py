"""How long this process's threads waited for a CPU: what a busy machine adds to any wall-clock delay.

Linux counts, per thread, the time it was runnable but not running (the second field of
``/proc/self/task/TID/schedstat``). A test that bounds a delay the tracer measures (a GIL wait
estimate, say) can allow what the OS withheld meanwhile instead of a fixed margin.
"""

from __future__ import annotations

import os


def cpu_waits() -> dict[str, int]:
    """Nanoseconds each thread of this process has spent runnable but not running (none where the OS does not say)."""
    waits = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return waits
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                waits[tid] = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):  # ended meanwhile, or no scheduler statistics
            pass
    return waits


def waited_for_a_cpu(since: dict[str, int]) -> int:
    """Nanoseconds the threads alive at ``since`` (a ``cpu_waits()``) and now waited for a CPU in between, in all."""
    now = cpu_waits()
    return sum(now[tid] - before for tid, before in since.items() if tid in now)
