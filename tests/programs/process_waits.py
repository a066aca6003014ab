"""Waits on child processes, for the viewer's links from a wait to the child: ``process_waits.py``.

In order: ``subprocess.run`` of a Python child whose command line holds
HTML (CHILD_ARG: it must stay text), which sleeps 0.3 s (the parent waits
in ``Popen.communicate``); a fork ``multiprocessing.Pool(2)``'s ``map``
(the parent waits for its result), then its ``close``/``join`` (waits in
``Process.join``); a ``multiprocessing.Process`` joined. Prints the
children's pids, one line each: ``subprocess PID``, ``pool PID PID``,
``process PID``.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

CHILD_ARG = "<img src=x onerror=alert(7)>"
CHILD = "import os, sys, time\ntime.sleep(0.3)\nprint(os.getpid())\n"


def square_slowly(n: int) -> tuple[int, int]:
    time.sleep(0.1)
    return n * n, os.getpid()


def nap() -> None:
    time.sleep(0.2)


def main() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, CHILD_ARG], capture_output=True, text=True, check=True)
    print("subprocess", done.stdout.strip(), flush=True)
    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map(square_slowly, range(4), chunksize=1)
    print("pool", *sorted(p.pid for p in pool._pool), flush=True)  # type: ignore[attr-defined]
    pool.close()
    pool.join()
    child = multiprocessing.get_context("fork").Process(target=nap)
    child.start()
    child.join()
    print("process", child.pid, flush=True)


if __name__ == "__main__":
    main()
