"""What following child processes costs: ``exectracer run`` of a ``multiprocessing.Pool`` workload.

Runs ``workload_pool.py`` as a fresh process, untraced (``python workload_pool.py``) and traced
(``python -m exectracer run -o OUT workload_pool.py``: the parent and every pool worker record, each into its
own file), alternating the two, and prints the medians of the whole processes' wall times and their ratio,
and of the CPU time the whole process tree used (user and system: on a machine loaded by others, less moved
by their load than the wall time), with the events and files the last traced run wrote::

    python bench/bench_pool.py --runs 7
    python bench/bench_pool.py --runs 7 --start-method spawn
    python bench/bench_pool.py --runs 7 --run-args="--sample-interval 0"   # options of exectracer run
"""

from __future__ import annotations

import argparse
import compileall
import glob
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workload_pool.py"


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall time and CPU time of one whole process tree, in seconds."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each, alternating")
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"])
    parser.add_argument("--run-args", default="", help="more options of exectracer run, in one string")
    args = parser.parse_args()
    work = ["--items", str(args.items), "--processes", str(args.processes), "--start-method", args.start_method]
    run_args = shlex.split(args.run_args)
    compileall.compile_dir(str(HERE.parent / "src" / "exectracer"), quiet=1)
    plain, traced = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.xtrace")
        for i in range(args.runs):
            for path in glob.glob(os.path.join(tmp, "*.xtrace")):
                os.unlink(path)
            untraced_first = i % 2 == 0  # alternate which goes first
            runs = [
                ("untraced", [sys.executable, str(WORKLOAD), *work]),
                ("traced", [sys.executable, "-m", "exectracer", "run", *run_args, "-o", out, str(WORKLOAD), *work]),
            ]
            for name, command in runs if untraced_first else runs[::-1]:
                (plain if name == "untraced" else traced).append(run_once(command))
            print(f"run {i + 1}: untraced {plain[-1][0]:.3f} s, traced {traced[-1][0]:.3f} s", flush=True)
        sys.path.insert(0, str(HERE.parent / "src"))
        import exectracer

        trace = exectracer.load(out)
        files = len(glob.glob(os.path.join(tmp, "*.xtrace")))
        size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(tmp, "*.xtrace")))
        events, processes = trace.event_count, len(trace.processes)
    p, t = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in traced)
    pc, tc = statistics.median(c for _, c in plain), statistics.median(c for _, c in traced)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Pool({args.processes}) {args.start_method},"
        f" {args.items} items, {args.runs} runs of each, alternating" + (f", run {args.run_args}" if run_args else "")
    )
    print(f"untraced median {p:.3f} s, traced median {t:.3f} s, ratio {t / p:.3f}")
    if args.start_method == "forkserver":  # its workers are the forkserver's children: RUSAGE_CHILDREN misses them
        print("CPU time: not counted with forkserver (the workers are not reaped by the benchmark's children)")
    else:
        print(f"CPU time: untraced median {pc:.3f} s, traced median {tc:.3f} s, ratio {tc / pc:.3f}")
    print(f"last traced run: {processes} processes, {files} files, {events:,} events, {size:,} bytes")


if __name__ == "__main__":
    main()
