"""Recording overhead on the scheduling-heavy trio workload (``workload_trio.py``).

As ``bench_overhead.py`` does for asyncio: runs the workload as a fresh
process, alternating untraced and traced runs (each started through
``warm_allocator.py``), and prints medians, the traced/untraced ratios of
wall time and of CPU time (the process's, its threads' included: on a
loaded machine the steadier figure) and the trace size per recorded
event::

    python bench/bench_trio.py --runs 7

``--python-hooks`` adds a third run to each round, traced with the Python
versions of the hooks the C extension provides (the trio hooks are Python
either way). ``--no-thread-waits`` traces without recording thread waits.
``--warm`` alternates the two inside one process after a warm-up run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_overhead import events_in

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workload_trio.py"


def run_once(extra: list[str], python_hooks: bool = False) -> tuple[float, float]:
    """Wall and CPU time (user and system, all its threads) of one workload process, in seconds."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("EXECTRACER_PURE_PYTHON", None)
    if python_hooks:
        env["EXECTRACER_PURE_PYTHON"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(HERE / "warm_allocator.py"), str(WORKLOAD), *extra],
        check=True,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(work: list[str], runs: int, python_hooks: bool) -> None:
    """Alternate untraced and traced runs (and, with ``python_hooks``, traced with the Python hooks); print medians."""
    compileall.compile_dir(str(HERE.parent / "src" / "exectracer"), quiet=1)
    kinds = ["untraced", "traced"] + (["traced with the Python hooks"] if python_hooks else [])
    times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "bench.xtrace")
        for i in range(runs):
            times["untraced"].append(run_once(work))
            times["traced"].append(run_once([*work, "--trace", trace]))
            if python_hooks:
                python = [*work, "--trace", os.path.join(tmp, "python.xtrace")]
                times["traced with the Python hooks"].append(run_once(python, python_hooks=True))
            line = ", ".join(f"{kind} {times[kind][-1][0]:.3f} s ({times[kind][-1][1]:.3f} s CPU)" for kind in kinds)
            print(f"run {i + 1}: {line}", flush=True)
        size, events = os.path.getsize(trace), events_in(trace)
    wall = {kind: statistics.median(t[0] for t in times[kind]) for kind in kinds}
    cpu = {kind: statistics.median(t[1] for t in times[kind]) for kind in kinds}
    print(f"python {sys.version.split()[0]}, trio workload, {runs} runs of each, alternating")
    for kind in kinds:
        ratio = "" if kind == "untraced" else f", ratio {wall[kind] / wall['untraced']:.3f}"
        cpu_ratio = "" if kind == "untraced" else f", ratio {cpu[kind] / cpu['untraced']:.3f}"
        print(f"{kind}: wall median {wall[kind]:.3f} s{ratio}; CPU median {cpu[kind]:.3f} s{cpu_ratio}")
    print(f"trace: {events} events, {size} bytes, {size / events:.2f} bytes/event")


def warm_ratio(runs: int, rounds: int, messages: int, thread_waits: bool) -> None:
    """Alternate untraced and traced runs in this process; print the medians."""
    sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
    import workload_trio
    from warm_allocator import raise_mmap_threshold

    import exectracer

    raise_mmap_threshold()  # as the fresh processes do
    workload_trio.run(rounds, messages)  # warm-up
    plain, traced = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            t0 = time.perf_counter()
            workload_trio.run(rounds, messages)
            plain.append(time.perf_counter() - t0)
            with exectracer.trace(os.path.join(tmp, "warm.xtrace"), thread_waits=thread_waits):
                t0 = time.perf_counter()
                workload_trio.run(rounds, messages)
                traced.append(time.perf_counter() - t0)
            print(f"run {i + 1}: untraced {plain[-1]:.3f} s, traced {traced[-1]:.3f} s", flush=True)
    p, t = statistics.median(plain), statistics.median(traced)
    print(f"python {sys.version.split()[0]}, warm process, {runs} runs of each, alternating")
    print(f"untraced median {p:.3f} s, traced median {t:.3f} s, ratio {t / p:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each kind (at least 5)")
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--warm", action="store_true", help="measure inside one warmed-up process")
    parser.add_argument("--no-thread-waits", action="store_true", help="trace without recording thread waits")
    parser.add_argument(
        "--python-hooks", action="store_true", help="also trace with the Python hooks (not the C ones), alternating"
    )
    args = parser.parse_args()
    if args.warm:
        warm_ratio(args.runs, args.rounds, args.messages, not args.no_thread_waits)
        return
    work = ["--rounds", str(args.rounds), "--messages", str(args.messages)]
    if args.no_thread_waits:
        work.append("--no-thread-waits")
    compare(work, args.runs, args.python_hooks)


if __name__ == "__main__":
    main()
