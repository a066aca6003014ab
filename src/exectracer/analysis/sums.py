"""Sums per distinct key: the "group by" of the summary's and the profiles' tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

DENSE_KEYS = 1 << 22  # keys below this are counted in a table; larger or negative ones are sorted


def sums_by_key(
    key: NDArray[np.int64], weights: Sequence[NDArray[Any]]
) -> tuple[NDArray[np.int64], NDArray[np.intp], list[NDArray[np.float64]]]:
    """The distinct values of ``key`` in ascending order, how many rows have each,
    and each of ``weights`` summed over those rows."""
    if len(key) == 0 or key.min() < 0 or key.max() >= DENSE_KEYS:
        uniq, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.reshape(-1)
        return (
            uniq,
            np.bincount(inverse, minlength=len(uniq)),
            [_weighted_bincount(inverse, w, len(uniq)) for w in weights],
        )
    counts = np.bincount(key)
    uniq = np.flatnonzero(counts)
    return uniq, counts[uniq], [_weighted_bincount(key, w)[uniq] for w in weights]


def _weighted_bincount(x: NDArray[np.integer[Any]], weights: NDArray[Any], minlength: int = 0) -> NDArray[np.float64]:
    """``np.bincount`` with weights: the sum of the weights of each value, as float64."""
    return np.bincount(x, weights=weights, minlength=minlength)  # type: ignore[return-value]  # NumPy's stub says intp, as without weights
