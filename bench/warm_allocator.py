"""Run a script or module in a process whose allocator looks like a long-running one's.

glibc serves large allocations (128 KiB and more, at first) with their own
``mmap`` and unmaps them when freed, until the process frees such a block:
then it raises that threshold and serves them from the heap. asyncio's
transports read into 256 KiB buffers, so a fresh untraced asyncio process
maps and unmaps one per ``recv`` (measured: 120 000 page faults and 0.6 s
more on the echo half of ``workload_async.py``), while the tracer's own
buffers raise the threshold in a traced process at once. Freeing one large
block first gives both the state any process that has run for a while has,
so that a ratio measures the tracer and not this accident::

    python bench/warm_allocator.py SCRIPT [ARGS...]
    python bench/warm_allocator.py -m MODULE [ARGS...]
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BLOCK = 4 << 20  # larger than any buffer the benchmarks allocate


def raise_mmap_threshold() -> None:
    """Allocate and free one block served by ``mmap``: glibc then serves smaller ones from its heap."""
    block = bytearray(BLOCK)
    del block


def main() -> None:
    if len(sys.argv) < 2 or (sys.argv[1] == "-m" and len(sys.argv) < 3):
        sys.exit(__doc__)
    raise_mmap_threshold()
    if sys.argv[1] == "-m":
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        sys.path[0] = str(Path(sys.argv[0]).resolve().parent)
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
