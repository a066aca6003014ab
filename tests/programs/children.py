"""Child processes of every kind, each doing recognisable work: ``children.py KIND...``.

Kinds: fork, spawn, forkserver (a multiprocessing.Pool of 2 on that start
method, closed and joined), terminate (a fork Pool left by its ``with``
block, which terminates its workers with SIGTERM), executor (a ProcessPoolExecutor), subprocess (a Python child that
prints what it sees and exits with 7), os_exit (os.fork, then os._exit(3)).
Prints one line per kind.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import time

CHILD = (
    "import os, sys, time\n"
    "def child_sleeps(): time.sleep(0.05)\n"
    "child_sleeps()\n"
    "print('child', sys.argv, repr(sys.path[0]), __name__, 'sitecustomize' in sys.modules)\n"
    "sys.exit(7)\n"
)


def square_slowly(n: int) -> int:
    time.sleep(0.02)
    return n * n


def main(kinds: list[str]) -> None:
    for kind in kinds:
        if kind in ("fork", "spawn", "forkserver", "terminate"):
            with multiprocessing.get_context("fork" if kind == "terminate" else kind).Pool(2) as pool:
                print(kind, pool.map(square_slowly, range(4)))
                if kind != "terminate":
                    pool.close()
                    pool.join()
        elif kind == "executor":
            with concurrent.futures.ProcessPoolExecutor(2) as pool:
                print(kind, list(pool.map(square_slowly, range(4))))
        elif kind == "subprocess":
            done = subprocess.run([sys.executable, "-c", CHILD, "an", "argument"], capture_output=True, text=True)
            print(kind, done.returncode, done.stdout.strip())
        elif kind == "os_exit":
            pid = os.fork()
            if pid == 0:
                square_slowly(2)
                os._exit(3)
            print(kind, os.waitpid(pid, 0)[1] >> 8)


if __name__ == "__main__":
    main(sys.argv[1:])
