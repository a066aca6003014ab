"""Waits for any child process: ``any_child_waits.py``.

Forks four children and reaps each with another call: ``os.wait()``,
``os.wait3(0)``, ``os.wait4(-1, 0)`` (calls that wait for any child),
``os.waitid`` of one pid. Each child exits only once it sees its parent
waiting in the kernel (``/proc/PPID/wchan``), and 50 ms later: every call
waits, however slow the machine. Prints one line per call, in that order:
the call's name and the pid it reaped.
"""

from __future__ import annotations

import os
import time

DEADLINE_S = 30.0  # a child that never sees its parent wait exits all the same


def child() -> int:
    pid = os.fork()
    if pid == 0:
        try:
            wait_for_parent_to_wait()
        finally:
            os._exit(0)
    return pid


def wait_for_parent_to_wait() -> None:
    path = f"/proc/{os.getppid()}/wchan"
    end = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < end:
            with open(path) as wchan:
                if wchan.read().strip() == "do_wait":
                    break
            time.sleep(0.005)
    except OSError:  # no /proc: a while is all it can do
        time.sleep(0.3)
    time.sleep(0.05)


def main() -> None:
    child()
    print("wait", os.wait()[0], flush=True)
    child()
    print("wait3", os.wait3(0)[0], flush=True)
    child()
    print("wait4", os.wait4(-1, 0)[0], flush=True)
    pid = child()
    print("waitid", os.waitid(os.P_PID, pid, os.WEXITED).si_pid, flush=True)


if __name__ == "__main__":
    main()
