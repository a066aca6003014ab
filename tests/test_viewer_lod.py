"""Level of detail: merging per pixel, and the bucket summary of lanes with many spans."""

from __future__ import annotations

import numpy as np

from exectracer.web.lod import SpanIndex, Window, merge, visible


def lane(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` touching spans: mostly short (value 0 or 1), every 1000th long (value 2)."""
    rng = np.random.default_rng(seed)
    length = rng.integers(1, 50, n)
    length[::1000] = 200_000
    starts = np.concatenate(([0], np.cumsum(length)[:-1]))
    value = np.where(length >= 200_000, 2, rng.integers(0, 2, n))
    return starts, starts + length, value


def test_merge_keeps_wide_spans_and_counts_every_span() -> None:
    starts, ends, value = lane(5000)
    window = Window(int(starts[0]), int(ends[-1]), 300)
    start, end, _v, count, rep = merge(starts, ends, value, window, 3)
    assert count.sum() == len(starts)
    assert np.all(np.diff(start) >= 0) and len(start) <= 2 * 300 + 10
    exact = count == 1
    assert np.array_equal(start[exact], starts[rep[exact]]) and np.array_equal(end[exact], ends[rep[exact]])
    wide = (ends - starts) >= window.pixel_ns
    assert set(np.flatnonzero(wide).tolist()) <= set(rep[exact].tolist())


def test_summary_answers_zoomed_out_windows_like_a_full_merge() -> None:
    starts, ends, value = lane(300_000)
    index = SpanIndex(starts, ends, value, 3)
    assert index.bucket_ns > 0
    for lo, hi, width in ((0, int(ends[-1]), 1500), (int(ends[-1]) // 3, int(ends[-1]) // 2, 800)):
        window = Window(lo, hi, width)
        assert window.pixel_ns >= SpanIndex.ZOOM * index.bucket_ns
        start, end, v, count, rep = index.query(window)
        part = visible(starts, np.maximum.accumulate(ends), window)
        full = merge(starts[part], ends[part], value[part], window, 3)
        assert abs(int(count.sum()) - int(full[3].sum())) <= 2 * 1500 // 1000 + 2  # buckets at the window's edges
        assert np.all(np.diff(start) >= 0) and len(start) <= 2 * width + 50
        long_rows = np.flatnonzero((value == 2) & (starts >= lo) & (ends <= hi))
        assert set(long_rows.tolist()) <= set(rep[count == 1].tolist())  # long spans stay exact
        exact = count == 1
        assert np.array_equal(start[exact], starts[rep[exact]]) and np.array_equal(v[exact], value[rep[exact]])
        covered = np.zeros(3)
        np.add.at(covered, v, np.minimum(end, hi) - np.maximum(start, lo))
        truth = np.zeros(3)
        np.add.at(truth, value[part], np.minimum(ends[part], hi) - np.maximum(starts[part], lo))
        assert abs(covered[2] - truth[2]) <= 0.02 * (hi - lo)


def test_zoomed_in_windows_are_merged_exactly() -> None:
    starts, ends, value = lane(300_000)
    index = SpanIndex(starts, ends, value, 3)
    window = Window(int(starts[1000]), int(starts[1000]) + 50 * index.bucket_ns, 1000)
    got = index.query(window)
    part = visible(starts, ends, window)
    want = merge(starts[part], ends[part], value[part], window, 3)
    for a, b in zip(got[:4], want[:4], strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(got[4], want[4] + part.start)


def test_small_lanes_have_no_summary() -> None:
    starts, ends, value = lane(1000)
    assert SpanIndex(starts, ends, value, 3).bucket_ns == 0
