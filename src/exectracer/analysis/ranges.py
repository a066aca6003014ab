"""Sets of time ranges, and how much of any span they cover (vectorized)."""

from __future__ import annotations

import numpy as np


class RangeSet:
    """The union of ranges ``[starts[i], ends[i])``, kept as disjoint sorted ranges."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        self.starts, self.ends = _union(np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))
        self._before = np.concatenate(([0], np.cumsum(self.ends - self.starts)))

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def total(self) -> int:
        """Nanoseconds covered."""
        return int(self._before[-1])

    def covered(self, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        """How much of each span ``[a, b)`` the set covers (vectorized over ``a`` and ``b``)."""
        return self._elapsed(np.asarray(b)) - self._elapsed(np.asarray(a))

    def overlaps(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each span ``[a, b)`` meets the set (cheaper than :meth:`covered` on many spans)."""
        if len(self.starts) == 0:
            return np.zeros(len(a), dtype=bool)
        k = np.searchsorted(self.ends, a, side="right")  # the first range ending after a
        return (k < len(self.ends)) & (self.starts[np.minimum(k, len(self.ends) - 1)] < b)

    def _elapsed(self, t: np.ndarray) -> np.ndarray:
        """Covered time before each instant ``t``."""
        if len(self.starts) == 0:
            return np.zeros(np.shape(t), dtype=np.int64)
        k = np.searchsorted(self.starts, t, side="right") - 1
        at = np.maximum(k, 0)
        inside = np.clip(t - self.starts[at], 0, self.ends[at] - self.starts[at])
        return np.where(k >= 0, self._before[at] + inside, 0)


def _union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge possibly overlapping ranges into disjoint sorted ones (empty ranges vanish)."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > e[:-1]
    last = np.append(np.flatnonzero(new)[1:] - 1, len(s) - 1)  # a merged range ends at its last member's running maximum
    return s[new], e[last]
