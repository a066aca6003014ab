"""Waits for any child process: ``any_child_waits.py``.

Forks four children, each sleeping 0.2 s before it exits, and reaps each
with another call: ``os.wait()``, ``os.wait3(0)``, ``os.wait4(-1, 0)``
(calls that wait for any child), ``os.waitid`` of one pid. Prints one line
per call, in that order: the call's name and the pid it reaped.
"""

from __future__ import annotations

import os
import time


def child() -> int:
    pid = os.fork()
    if pid == 0:
        time.sleep(0.2)
        os._exit(0)
    return pid


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
