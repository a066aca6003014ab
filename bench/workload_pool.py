"""A ``multiprocessing.Pool`` workload for bench_pool.py: ``--items`` tasks of a little CPU work each, mapped
over ``--processes`` workers in chunks of ``--chunksize``, with the start method given."""

from __future__ import annotations

import argparse
import multiprocessing


def task(n: int) -> int:
    """A little pure-Python work, as a request handler or a batch job's step does."""
    total = 0
    for i in range(2000):
        total += (i * n) % 7
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--chunksize", type=int, default=16)
    parser.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"])
    args = parser.parse_args()
    context = multiprocessing.get_context(args.start_method)
    with context.Pool(args.processes) as pool:
        results = pool.map(task, range(args.items), chunksize=args.chunksize)
        pool.close()
        pool.join()
    print(sum(results))


if __name__ == "__main__":
    main()
