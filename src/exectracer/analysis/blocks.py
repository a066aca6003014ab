"""Row blocks small enough that a block's temporaries stay in the CPU's cache.

A NumPy expression over ten million rows writes each intermediate result to
memory; over a block of 2^18 rows (2 MB for 8-byte values) they stay in the
cache. Smaller blocks would fit better but make more calls, and each call
takes the GIL that another analysis thread may be waiting for.
"""

from __future__ import annotations

from collections.abc import Iterator

BLOCK_ROWS = 1 << 18


def blocks(n: int, size: int = BLOCK_ROWS) -> Iterator[slice]:
    """Slices of ``size`` rows covering ``0..n``."""
    for at in range(0, n, size):
        yield slice(at, min(at + size, n))
