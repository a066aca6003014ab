"""Minimum mutator utilization (MMU), as Go's trace tool computes it.

For a window length ``w``, the MMU is the smallest fraction of any ``w``-long
window of the trace not spent in garbage collection. CPython collects while
holding the GIL (or, without one, with the world stopped), so during a
collection no Python code runs anywhere: utilization is 0 for its whole
duration.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from .ranges import RangeSet

DEFAULT_WINDOWS_NS = (1_000_000, 10_000_000, 100_000_000, 1_000_000_000)
WORST_WINDOWS = 5


@dataclasses.dataclass(frozen=True)
class Window:
    """One window of the trace (absolute ns) and its utilization."""

    start_ns: int
    end_ns: int
    utilization: float


@dataclasses.dataclass(frozen=True)
class MMUPoint:
    """The MMU for one window length, with the worst windows (disjoint, worst first)."""

    window_ns: int
    utilization: float
    worst: tuple[Window, ...]


def mmu(
    gc_busy: RangeSet,
    trace_start: int,
    trace_end: int,
    windows_ns: tuple[int, ...] = DEFAULT_WINDOWS_NS,
    worst: int = WORST_WINDOWS,
) -> list[MMUPoint]:
    """The MMU curve at each window length in ``windows_ns``; ``gc_busy`` is when collections ran.

    A window longer than the trace is the whole trace. A window's collection
    time is largest where one of its edges meets a collection's edge, so
    only those placements are tried.
    """
    starts, ends = gc_busy.starts, gc_busy.ends
    duration = max(trace_end - trace_start, 1)
    points = []
    for w in windows_ns:
        if w <= 0:
            raise ValueError(f"MMU window must be positive, not {w}")
        span = min(int(w), duration)
        edges = np.concatenate((starts, ends, starts - span, ends - span))
        lefts = np.unique(np.clip(edges, trace_start, trace_end - span)) if len(edges) else np.array([trace_start])
        covered = gc_busy.covered(lefts, lefts + span)
        utilization = 1.0 - covered / span
        points.append(MMUPoint(int(w), float(utilization.min()), _worst(lefts, span, utilization, worst)))
    return points


def _worst(lefts: NDArray[np.int64], span: int, utilization: NDArray[np.float64], count: int) -> tuple[Window, ...]:
    """Up to ``count`` disjoint windows of least utilization (only those with some collection)."""
    chosen: list[Window] = []
    for i in np.argsort(utilization, kind="stable").tolist():
        if len(chosen) == count or utilization[i] >= 1.0:
            break
        left = int(lefts[i])
        if all(left + span <= c.start_ns or left >= c.end_ns for c in chosen):
            chosen.append(Window(left, left + span, float(utilization[i])))
    return tuple(chosen)
