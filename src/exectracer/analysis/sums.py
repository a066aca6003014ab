"""Sums per distinct key: the "group by" of the summary's and the profiles' tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DENSE_KEYS = 1 << 22  # keys below this are counted in a table; larger or negative ones are sorted


def sums_by_key(key: np.ndarray, weights: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The distinct values of ``key`` in ascending order, how many rows have each, and each of ``weights`` summed over those rows."""
    if len(key) == 0 or key.min() < 0 or key.max() >= DENSE_KEYS:
        uniq, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.reshape(-1)
        return uniq, np.bincount(inverse, minlength=len(uniq)), [np.bincount(inverse, weights=w, minlength=len(uniq)) for w in weights]
    counts = np.bincount(key)
    uniq = np.flatnonzero(counts)
    return uniq, counts[uniq], [np.bincount(key, weights=w)[uniq] for w in weights]
