"""Recording overhead on the scheduling-heavy asyncio workload.

Runs ``workload_async.py`` as a fresh process, alternating untraced and
traced runs, and prints medians, the traced/untraced wall-time ratio and
the trace size per recorded event. Each process starts through
``warm_allocator.py`` (see there why: without it, the untraced run pays
page faults that the tracer happens to spare the traced one)::

    python bench/bench_overhead.py --runs 7

``--python-hooks`` adds a third run to each round, traced with the Python
versions of the hooks the C extension (``_speedups``) provides, as where
it is not built.

``--loop uvloop`` runs the workload on uvloop.

``--warm`` instead alternates the two inside one process after a warm-up
run, which leaves out start-up and first-run costs: the ratio of the
scheduling work alone.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workload_async.py"


def run_once(extra: list[str], script: Path = WORKLOAD, python_hooks: bool = False) -> float:
    """Wall time of one whole workload process (``script`` with ``extra`` arguments), in seconds.

    The process starts through ``warm_allocator.py``, so that the untraced
    and the traced run start from the same allocator state. With
    ``python_hooks``, a traced process uses the Python versions of the hooks
    that the C extension provides.
    """
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("EXECTRACER_PURE_PYTHON", None)
    if python_hooks:
        env["EXECTRACER_PURE_PYTHON"] = "1"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(HERE / "warm_allocator.py"), str(script), *extra],
        check=True,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def warm_ratio(runs: int, rounds: int, messages: int) -> None:
    """Alternate untraced and traced runs in this process; print the medians."""
    sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
    import workload_async
    from warm_allocator import raise_mmap_threshold

    import exectracer

    raise_mmap_threshold()  # as the fresh processes do
    workload_async.run(rounds, messages)  # warm-up
    plain, traced = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            t0 = time.perf_counter()
            workload_async.run(rounds, messages)
            plain.append(time.perf_counter() - t0)
            with exectracer.trace(os.path.join(tmp, "warm.xtrace")):
                t0 = time.perf_counter()
                workload_async.run(rounds, messages)
                traced.append(time.perf_counter() - t0)
            print(f"run {i + 1}: untraced {plain[-1]:.3f} s, traced {traced[-1]:.3f} s", flush=True)
    p, t = statistics.median(plain), statistics.median(traced)
    print(f"python {sys.version.split()[0]}, warm process, {runs} runs of each, alternating")
    print(f"untraced median {p:.3f} s, traced median {t:.3f} s, ratio {t / p:.3f}")


def events_in(path: str) -> int:
    """Events recorded in a trace (read with exectracer.load)."""
    sys.path.insert(0, str(HERE.parent / "src"))
    import exectracer

    return exectracer.load(path).event_count


def compare_processes(
    work: list[str], script: Path, runs: int, python_hooks: list[float] | None = None
) -> tuple[float, float, int, int]:
    """Alternate untraced and traced runs of ``script``; the medians, events and bytes of a trace.

    Given a ``python_hooks`` list, a third run in each round traces with the
    Python hooks instead of the C ones, and its times are appended there.
    """
    # the traced processes import exectracer, the untraced ones only the standard library: both from
    # bytecode files, as an installed package is (PYTHONDONTWRITEBYTECODE would have each compile it anew)
    compileall.compile_dir(str(HERE.parent / "src" / "exectracer"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "bench.xtrace")
        plain, traced = [], []
        for i in range(runs):
            plain.append(run_once(work, script))
            traced.append(run_once([*work, "--trace", trace], script))
            line = f"run {i + 1}: untraced {plain[-1]:.3f} s, traced {traced[-1]:.3f} s"
            if python_hooks is not None:
                python_hooks.append(
                    run_once([*work, "--trace", os.path.join(tmp, "python.xtrace")], script, python_hooks=True)
                )
                line += f", traced with the Python hooks {python_hooks[-1]:.3f} s"
            print(line, flush=True)
        size = os.path.getsize(trace)
        events = events_in(trace)
    return statistics.median(plain), statistics.median(traced), events, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each kind (at least 5)")
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the workload's event loop")
    parser.add_argument("--warm", action="store_true", help="measure inside one warmed-up process")
    parser.add_argument(
        "--python-hooks", action="store_true", help="also trace with the Python hooks (not the C ones), alternating"
    )
    args = parser.parse_args()
    if args.warm:
        warm_ratio(args.runs, args.rounds, args.messages)
        return
    work = ["--rounds", str(args.rounds), "--messages", str(args.messages), "--loop", args.loop]
    python_hooks: list[float] | None = [] if args.python_hooks else None
    p, t, events, size = compare_processes(work, WORKLOAD, args.runs, python_hooks)
    print(f"python {sys.version.split()[0]}, {args.loop}, {args.runs} runs of each, alternating")
    print(f"untraced median {p:.3f} s, traced median {t:.3f} s, ratio {t / p:.3f}")
    if python_hooks:
        py = statistics.median(python_hooks)
        print(f"traced with the Python hooks: median {py:.3f} s, ratio {py / p:.3f}")
    print(f"trace: {events} events, {size} bytes, {size / events:.2f} bytes/event")


if __name__ == "__main__":
    main()
