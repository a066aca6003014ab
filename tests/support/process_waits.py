"""A recorded ``exectracer run`` of tests/programs/process_waits.py: the trace of every process, the children's pids."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import exectracer
from exectracer.reader import TraceWarning

from .waiting import wait_for

PROGRAM = Path(__file__).parent.parent / "programs" / "process_waits.py"


@dataclass
class Recorded:
    path: Path  # the run's file (its children's beside it)
    subprocess: int  # the pid of the subprocess.run child
    pool: list[int]  # the pool's workers
    process: int  # the multiprocessing.Process joined
    trace: exectracer.Trace  # once every recording ended


def run_printing_pids(
    program: Path, directory: Path, pure_python: bool = False, follow: bool = True
) -> tuple[Path, dict[str, list[int]]]:
    """Run ``program`` under ``exectracer run`` (the C hooks, or the Python ones) in ``directory``: its trace's path,
    and the numbers each line it printed gives after its first word (``name pid...``)."""
    env = {**os.environ, "EXECTRACER_PURE_PYTHON": "1"} if pure_python else None
    path = directory / "out.xtrace"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exectracer",
            "run",
            *([] if follow else ["--no-follow"]),
            "-o",
            str(path),
            str(program),
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return path, {line.split()[0]: [int(x) for x in line.split()[1:]] for line in done.stdout.splitlines()}


def record(directory: Path, pure_python: bool = False) -> Recorded:
    """Run the program under ``exectracer run`` (the C hooks, or the Python ones) and load its trace."""
    path, lines = run_printing_pids(PROGRAM, directory, pure_python)

    def ended() -> exectracer.Trace | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TraceWarning)
            trace = exectracer.load(path)
        return trace if all(p.clean_end for p in trace.processes) else None

    trace = wait_for(ended, "every process's recording to end")
    return Recorded(path, lines["subprocess"][0], lines["pool"], lines["process"][0], trace)
