"""Recording cost per short asyncio task: the case of a service that makes a task per request.

Runs batches of ``--batch`` tasks gathered together (each task yields once
with ``asyncio.sleep(0)`` and ends), ``--tasks`` in all, alternating untraced
and traced runs inside one process (default options, sampler off so that its
ticks do not blur a sub-second run), and prints the medians and the cost per
task::

    python bench/bench_tasks.py --runs 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import exectracer


async def short() -> None:
    await asyncio.sleep(0)


async def batches(tasks: int, batch: int) -> None:
    for _ in range(tasks // batch):
        await asyncio.gather(*[asyncio.create_task(short()) for _ in range(batch)])


def run(tasks: int, batch: int, trace: str | None) -> float:
    """Wall seconds of one run, traced into ``trace`` if given."""
    t0 = time.perf_counter()
    if trace is None:
        asyncio.run(batches(tasks, batch))
    else:
        with exectracer.trace(trace, sample_interval=0):
            asyncio.run(batches(tasks, batch))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each kind (at least 5)")
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100, help="tasks gathered together")
    args = parser.parse_args()
    runs = max(args.runs, 5)
    with tempfile.TemporaryDirectory() as tmp:
        trace = str(Path(tmp) / "tasks.xtrace")
        run(args.tasks, args.batch, None), run(args.tasks, args.batch, trace)  # warm-up
        plain, traced = [], []
        for _ in range(runs):
            plain.append(run(args.tasks, args.batch, None))
            traced.append(run(args.tasks, args.batch, trace))
        events = exectracer.load(trace).event_count
    p, t = statistics.median(plain), statistics.median(traced)
    print(
        f"python {sys.version.split()[0]}, {args.tasks} tasks in batches of {args.batch},"
        f" {runs} runs of each, alternating"
    )
    print(
        f"untraced median {p:.3f} s ({p / args.tasks * 1e6:.2f} us a task), traced median {t:.3f} s, ratio {t / p:.3f}"
    )
    print(f"recording costs {(t - p) / args.tasks * 1e6:.2f} us a task ({events / args.tasks:.1f} events a task)")


if __name__ == "__main__":
    main()
