"""Sets of time ranges, and how much of any span they cover (vectorized)."""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

GRID_BITS = 16  # may_overlap's grid has at most 2**16 + 2 cells


class RangeSet:
    """The union of ranges ``[starts[i], ends[i])``, kept as disjoint sorted ranges."""

    def __init__(self, starts: NDArray[np.int64], ends: NDArray[np.int64]) -> None:
        self.starts, self.ends = _union(np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))
        self._before = np.concatenate(([0], np.cumsum(self.ends - self.starts)))

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def total(self) -> int:
        """Nanoseconds covered."""
        return int(self._before[-1])

    def covered(self, a: NDArray[np.int64] | int, b: NDArray[np.int64] | int) -> NDArray[np.int64]:
        """How much of each span ``[a, b)`` the set covers (vectorized over ``a`` and ``b``)."""
        return self._elapsed(np.asarray(b)) - self._elapsed(np.asarray(a))

    def may_overlap(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each span ``[a, b)`` may meet the set: true for every span that does, and for few that do not.

        A test on a grid of about ``2**GRID_BITS`` cells over the set's extent
        (a cell is marked if some range meets it): two table lookups per span,
        far cheaper on millions of spans than a binary search.
        """
        if len(self.starts) == 0:
            return np.zeros(len(a), dtype=bool)
        origin, top, shift, marked_before = self._grid
        first_cell = _cell(a, origin, top, shift)
        last_cell = _cell(b - 1, origin, top, shift)
        return marked_before[last_cell + 1] > marked_before[first_cell]

    @functools.cached_property
    def _grid(self) -> tuple[int, int, int, NDArray[np.int32]]:
        """:meth:`may_overlap`'s grid: its first and last instants, log2 of its cell width,
        and the marked cells before each cell."""
        lo, hi = int(self.starts[0]), int(self.ends[-1])
        shift = max((hi - lo).bit_length() - GRID_BITS, 0)
        origin = lo - (1 << shift)  # cell 0 lies before the first range and is never marked,
        top = hi + (1 << shift)  # and so does the cell of ``top``, after the last one
        cells = ((top - origin) >> shift) + 1
        marks = np.zeros(cells + 1, dtype=np.int32)
        np.add.at(marks, (self.starts - origin) >> shift, 1)
        np.add.at(marks, ((self.ends - 1 - origin) >> shift) + 1, -1)
        marked_before = np.zeros(cells + 1, dtype=np.int32)
        np.cumsum(np.cumsum(marks[:-1]) > 0, out=marked_before[1:])
        return origin, top, shift, marked_before

    def _elapsed(self, t: NDArray[np.int64]) -> NDArray[np.int64]:
        """Covered time before each instant ``t``."""
        if len(self.starts) == 0:
            return np.zeros(np.shape(t), dtype=np.int64)
        k = np.searchsorted(self.starts, t, side="right") - 1
        at = np.maximum(k, 0)
        inside = np.clip(t - self.starts[at], 0, self.ends[at] - self.starts[at])
        return np.where(k >= 0, self._before[at] + inside, 0)


def _cell(t: NDArray[np.int64], origin: int, top: int, shift: int) -> NDArray[np.int64]:
    """The grid cell of each instant (clamped to the grid)."""
    cell = np.maximum(t, origin)
    np.minimum(cell, top, out=cell)
    cell -= origin
    cell >>= shift
    return cell


def _union(starts: NDArray[np.int64], ends: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Merge possibly overlapping ranges into disjoint sorted ones (empty ranges vanish)."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > e[:-1]
    last = np.append(
        np.flatnonzero(new)[1:] - 1, len(s) - 1
    )  # a merged range ends at its last member's running maximum
    return s[new], e[last]
