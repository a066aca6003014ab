"""Cost of an uncontended ``with lock:`` while tracing, as a traced/untraced ratio.

Alternates untraced and traced timings of the same tight loop in one
process (locks made inside each run, so the traced run uses the recorder's
lock class), medians of ``--runs``::

    python bench/bench_lock.py --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import exectracer


def loop(iterations: int) -> float:
    """Seconds for ``iterations`` rounds of ``with lock: counter += 1``."""
    lock = threading.Lock()
    counter = 0
    t0 = time.perf_counter()
    for _ in range(iterations):
        with lock:
            counter += 1
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=1_000_000)
    args = parser.parse_args()
    plain, traced = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            plain.append(loop(args.iterations))
            with exectracer.trace(os.path.join(tmp, "lock.xtrace")):
                traced.append(loop(args.iterations))
    p, t = statistics.median(plain), statistics.median(traced)
    print(
        f"python {sys.version.split()[0]}, {args.iterations:,} uncontended `with lock:` per run, {args.runs} runs each"
    )
    print(
        f"untraced {p * 1e9 / args.iterations:.1f} ns, traced {t * 1e9 / args.iterations:.1f} ns per iteration,"
        f" ratio {t / p:.3f}"
    )


if __name__ == "__main__":
    main()
