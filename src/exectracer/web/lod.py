"""Level of detail: spans of a time window, merged where narrower than a pixel.

A lane's answer then holds O(width) spans however many the window contains,
so the browser never holds more than it can draw.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Window:
    """A time window (absolute ns) drawn ``width`` pixels wide."""

    start: int
    end: int
    width: int

    @property
    def pixel_ns(self) -> float:
        """Nanoseconds per pixel."""
        return (self.end - self.start) / self.width


def visible(starts: np.ndarray, ends: np.ndarray, window: Window) -> slice:
    """The rows of time-ordered, non-overlapping spans that meet ``window``."""
    lo = int(np.searchsorted(ends, window.start, side="right"))
    hi = int(np.searchsorted(starts, window.end, side="left"))
    return slice(lo, max(lo, hi))


def merge(starts: np.ndarray, ends: np.ndarray, value: np.ndarray, window: Window, values: int) -> tuple[np.ndarray, ...]:
    """Spans at least a pixel wide as they are; narrower ones merged per pixel.

    ``starts`` are in time order; ``value`` is a small category
    (``0..values-1``, a state say): a merged span takes the value that covers
    most of its pixels. Returns start, end, value, count (how many spans each
    stands for: 1 is a span as it is) and the row of one span it stands for,
    in time order.
    """
    pixel = window.pixel_ns
    seen = np.minimum(ends, window.end) - np.maximum(starts, window.start)
    wide = np.flatnonzero(seen >= pixel)
    if len(wide) == len(starts):
        return starts, ends, value, np.ones(len(starts), dtype=np.int64), wide
    narrow = np.flatnonzero(seen < pixel)
    px = np.clip(((np.maximum(starts[narrow], window.start) - window.start) / pixel).astype(np.int64), 0, window.width - 1)
    cells = np.bincount(px * values + value[narrow], weights=seen[narrow], minlength=window.width * values).reshape(window.width, values)
    last = np.ones(len(px), dtype=bool)  # px never decreases: each pixel's narrow spans are one run
    last[:-1] = px[1:] != px[:-1]
    used, rep = px[last], narrow[last]
    counts = np.diff(np.concatenate(([0], np.flatnonzero(last) + 1)))
    single = counts == 1  # a pixel with one narrow span shows that span as it is
    m_start, m_end, m_value, counts, rep = _runs(
        np.where(single, starts[rep], window.start + np.floor(used * pixel).astype(np.int64)),
        np.where(single, ends[rep], window.start + np.ceil((used + 1) * pixel).astype(np.int64)),
        np.where(single, value[rep], cells[used].argmax(axis=1)),
        counts,
        rep,
    )
    out_start = np.concatenate((starts[wide], m_start))
    order = np.argsort(out_start, kind="stable")
    return (
        out_start[order],
        np.concatenate((ends[wide], m_end))[order],
        np.concatenate((value[wide], m_value))[order],
        np.concatenate((np.ones(len(wide), dtype=np.int64), counts))[order],
        np.concatenate((wide, rep))[order],
    )


def _runs(starts: np.ndarray, ends: np.ndarray, value: np.ndarray, count: np.ndarray, rep: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merged pixels that touch and share a value, joined into one span (a zoomed-out lane is mostly such runs)."""
    joins = np.zeros(len(starts), dtype=bool)
    joins[1:] = (starts[1:] <= ends[:-1]) & (value[1:] == value[:-1])
    first = np.flatnonzero(~joins)
    if len(first) == len(starts):
        return starts, ends, value, count, rep
    return starts[first], np.maximum.reduceat(ends, first), value[first], np.add.reduceat(count, first), rep[first]


def thin_points(ts: np.ndarray, window: Window) -> np.ndarray:
    """Indices of at most about two points per pixel (each pixel's first and last) within ``window``."""
    lo, hi = np.searchsorted(ts, [window.start, window.end])
    lo, hi = max(int(lo) - 1, 0), min(int(hi) + 1, len(ts))
    rows = np.arange(lo, hi)
    if len(rows) <= 2 * window.width:
        return rows
    px = ((ts[rows] - window.start) / window.pixel_ns).astype(np.int64)
    first = np.ones(len(rows), dtype=bool)
    first[1:] = px[1:] != px[:-1]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = first[1:]
    return rows[first | last]
