"""Level of detail: spans of a time window, merged where narrower than a pixel.

A lane's answer then holds O(width) spans however many the window contains,
so the browser never holds more than it can draw.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Spans = tuple[Ints, Ints, Ints, Ints, Ints]  # start, end, value, count, row: what merge and a query give


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


def visible(starts: Ints, ends: Ints, window: Window) -> slice:
    """The rows of time-ordered, non-overlapping spans that meet ``window``."""
    lo = int(np.searchsorted(ends, window.start, side="right"))
    hi = int(np.searchsorted(starts, window.end, side="left"))
    return slice(lo, max(lo, hi))


def merge(
    starts: Ints,
    ends: Ints,
    value: Ints,
    window: Window,
    values: int,
    weight: NDArray[np.number[Any]] | None = None,
    count: Ints | None = None,
) -> Spans:
    """Spans at least a pixel wide as they are; narrower ones merged per pixel.

    ``starts`` are in time order; ``value`` is a small category
    (``0..values-1``, a state say): a merged span takes the value that covers
    most of its pixels. Returns start, end, value, count (how many spans each
    stands for: 1 is a span as it is) and the row of one span it stands for,
    in time order. ``weight`` and ``count``, if given, replace a narrow
    span's visible length and its count of 1 (for spans that summarize
    others, as :class:`SpanIndex` makes).
    """
    pixel = window.pixel_ns
    seen = np.minimum(ends, window.end) - np.maximum(starts, window.start)
    wide = np.flatnonzero(seen >= pixel)
    if len(wide) == len(starts):
        return starts, ends, value, np.ones(len(starts), dtype=np.int64), wide
    narrow = np.flatnonzero(seen < pixel)
    px = np.clip(
        ((np.maximum(starts[narrow], window.start) - window.start) / pixel).astype(np.int64), 0, window.width - 1
    )
    weights = (seen if weight is None else weight)[narrow]
    cells = np.bincount(px * values + value[narrow], weights=weights, minlength=window.width * values).reshape(
        window.width, values
    )
    last = np.ones(len(px), dtype=bool)  # px never decreases: each pixel's narrow spans are one run
    last[:-1] = px[1:] != px[:-1]
    used = px[last]
    if count is None:
        rep = narrow[last]
        counts = np.diff(np.concatenate(([0], np.flatnonzero(last) + 1)))
    else:
        first = np.concatenate(([True], last[:-1]))
        rep = narrow[first]
        counts = np.add.reduceat(count[narrow], np.flatnonzero(first))
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


def _runs(starts: Ints, ends: Ints, value: Ints, count: Ints, rep: Ints) -> Spans:
    """Merged pixels that touch and share a value, joined into one span (a zoomed-out lane is mostly such runs)."""
    joins = np.zeros(len(starts), dtype=bool)
    joins[1:] = (starts[1:] <= ends[:-1]) & (value[1:] == value[:-1])
    first = np.flatnonzero(~joins)
    if len(first) == len(starts):
        return starts, ends, value, count, rep
    return starts[first], np.maximum.reduceat(ends, first), value[first], np.add.reduceat(count, first), rep[first]


class SpanIndex:
    """One lane's time-ordered spans, with a summary that answers zoomed-out windows quickly.

    Lanes of many spans keep, per bucket of ``1/BUCKETS`` of their time,
    how long their short spans (shorter than a bucket) spent in each value
    and how many there were. A window whose pixels span several buckets is
    drawn from the long spans and those buckets, not from every span.
    """

    BUCKETS = 1 << 16
    MIN_SPANS = 100_000
    ZOOM = 4  # buckets per pixel at least, to use the summary

    def __init__(self, starts: Ints, ends: Ints, value: NDArray[np.integer[Any]], values: int) -> None:
        self.starts, self.ends, self.value, self.values = starts, ends, value.astype(np.int64), values
        self.sorted_end = np.maximum.accumulate(ends) if len(ends) else ends  # nested spans end early
        self.bucket_ns = 0
        if len(starts) < self.MIN_SPANS:
            return
        t0 = int(starts[0])
        self.bucket_ns = max(1, -(-(int(self.sorted_end[-1]) - t0) // self.BUCKETS))
        length = ends - starts
        short = np.flatnonzero(length < self.bucket_ns)
        bucket = (starts[short] - t0) // self.bucket_ns
        weights = np.bincount(
            bucket * values + self.value[short], weights=length[short], minlength=(self.BUCKETS + 1) * values
        ).reshape(-1, values)
        counts = np.bincount(bucket, minlength=self.BUCKETS + 1)
        used = np.flatnonzero(counts)
        first = short[np.searchsorted(bucket, used)]  # short spans are in time order, so buckets never decrease
        # one pseudo-span per used bucket and value (at least its main one), in time order
        present = weights[used] > 0
        present[np.arange(len(used)), weights[used].argmax(axis=1)] = True
        b, v = np.nonzero(present)
        self.b_start = t0 + used[b] * self.bucket_ns
        self.b_value = v
        self.b_weight = weights[used][b, v]
        is_first = np.concatenate(([True], b[1:] != b[:-1]))
        self.b_count = np.where(is_first, counts[used][b], 0)
        self.b_rep = first[b]
        self.long = np.flatnonzero(length >= self.bucket_ns)

    def query(self, window: Window) -> Spans:
        """:func:`merge` of the spans that meet ``window``: start, end, value, count and a row each stands for."""
        if not self.bucket_ns or window.pixel_ns < self.ZOOM * self.bucket_ns:
            part = visible(self.starts, self.sorted_end, window)
            start, end, value, count, rep = merge(
                self.starts[part], self.ends[part], self.value[part], window, self.values
            )
            return start, end, value, count, rep + part.start
        long = self.long[(self.starts[self.long] < window.end) & (self.ends[self.long] > window.start)]
        lo, hi = np.searchsorted(self.b_start, [window.start - self.bucket_ns, window.end])
        n_long = len(long)
        starts = np.concatenate((self.starts[long], self.b_start[lo:hi]))
        order = np.argsort(starts, kind="stable")
        ends = np.concatenate((self.ends[long], self.b_start[lo:hi] + 1))[order]
        value = np.concatenate((self.value[long], self.b_value[lo:hi]))[order]
        seen_long = np.minimum(self.ends[long], window.end) - np.maximum(self.starts[long], window.start)
        weight = np.concatenate((seen_long, self.b_weight[lo:hi]))[order]
        count = np.concatenate((np.ones(n_long, dtype=np.int64), self.b_count[lo:hi]))[order]
        rows = np.concatenate((long, self.b_rep[lo:hi]))[order]
        start, end, value, count, rep = merge(starts[order], ends, value, window, self.values, weight, count)
        real = rows[rep]
        single = count == 1  # one span: shown as it is, not as its bucket
        return (
            np.where(single, self.starts[real], start),
            np.where(single, self.ends[real], end),
            np.where(single, self.value[real], value),
            count,
            real,
        )


def thin_points(ts: Ints, window: Window) -> NDArray[np.intp]:
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
