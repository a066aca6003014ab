"""Equal-length NumPy columns (:class:`Table`) and the column operations every reader of a trace shares.

Kinds are one byte: :func:`kinds_mask` and :func:`kind_lookup` translate a
kind column through a 256-entry table without NumPy's index copies;
:func:`match_spans` pairs nested begin/end events per goroutine.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from .format.events import Kind

__all__ = ["DATAFRAME_LIBRARIES", "Table", "dataframe_library", "distinct", "kind_lookup", "kinds_mask", "match_spans"]

Column = NDArray[Any]  # a table's column: numbers of any dtype, or objects (strings)
Rows = (
    slice | NDArray[np.bool_] | NDArray[np.integer[Any]] | Sequence[int]
)  # what selects rows: a slice, a mask, indices
G = TypeVar("G", bound=np.generic)


class Table:
    """Equal-length NumPy columns, read as attributes (``t.ts``) or by name (``t["ts"]``).

    Indexing with anything else (a mask, a slice, indices) selects rows and
    returns a new table.
    """

    def __init__(self, **columns: Column) -> None:
        self._columns = columns

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names."""
        return tuple(self._columns)

    def __getattr__(self, name: str) -> Column:
        columns: dict[str, Column] = self.__dict__["_columns"]  # not self._columns: that would recurse before __init__
        try:
            return columns[name]
        except KeyError:
            raise AttributeError(name) from None

    @overload
    def __getitem__(self, key: str) -> Column: ...

    @overload
    def __getitem__(self, key: Rows) -> Table: ...

    def __getitem__(self, key: str | Rows) -> Column | Table:
        if isinstance(key, str):
            return self._columns[key]
        if isinstance(key, np.ndarray) and key.dtype == bool and key.shape == (len(self),) and len(self._columns) > 1:
            key = np.flatnonzero(key)  # the mask is read once, not once per column
        return Table(**{name: col[key] for name, col in self._columns.items()})

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), ()))

    def __repr__(self) -> str:
        return f"<Table of {len(self)} rows: {', '.join(self._columns)}>"

    def to_dataframe(self, library: str = "pandas") -> Any:
        """The table as a DataFrame of ``library`` (``"pandas"`` or ``"polars"``, which must be installed)."""
        if library == "polars":
            return dataframe_library("polars").DataFrame(
                {name: _polars_column(col) for name, col in self._columns.items()}
            )
        return dataframe_library(library).DataFrame(self._columns, copy=False)


def distinct(*columns: NDArray[G]) -> NDArray[G]:
    """The distinct values of one or more integer columns, ascending.

    What ``np.unique`` returns, by sorting: NumPy 2.4's ``np.unique`` without
    indices hashes, about 20 times slower than a sort on a column of
    hundreds of thousands of integers.
    """
    values = np.sort(np.concatenate(columns) if len(columns) != 1 else columns[0])
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def kinds_mask(kind: NDArray[np.uint8], *kinds: Kind) -> NDArray[np.bool_]:
    """Which rows of a uint8 kind column are of one of ``kinds`` (read-only)."""
    lut = np.zeros(256, dtype=bool)
    lut[list(kinds)] = True
    return kind_lookup(lut, kind)


def kind_lookup(table: NDArray[G], kind: NDArray[np.uint8]) -> NDArray[G]:
    """``table[kind]`` (read-only) for a column of uint8 kinds and a table of 256 one-byte values.

    NumPy would first copy the index into 8-byte integers, 80 MB for 10 M
    events; a byte translation needs none and runs several times faster.
    """
    return np.frombuffer(
        np.ascontiguousarray(kind, dtype=np.uint8).tobytes().translate(table.tobytes()), dtype=table.dtype
    )


def match_spans(g: NDArray[np.int64], opens: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Pair nested begin/end events per goroutine, as a stack would.

    ``g`` and ``opens`` describe begin (True) and end (False) events in time
    order. Returns the indices of the begins and, for each, its end's index
    or -1. An end with nothing open is ignored.
    """
    n = len(g)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(g, kind="stable")
    gs, step = g[order], np.where(opens[order], 1, -1)
    first = np.ones(n, dtype=bool)
    first[1:] = gs[1:] != gs[:-1]
    group = np.cumsum(first) - 1
    total = np.cumsum(step)
    depth = total - (total - step)[first][group]  # running sum within each goroutine
    spread = 2 * n + 1  # offsets keep each goroutine's minimum from leaking into the next
    low = np.minimum.accumulate(depth - group * spread) + group * spread
    clamped = depth - np.minimum(low, 0)  # depth after each event; unmatched ends leave it at 0
    before = np.zeros(n, dtype=np.int64)
    before[1:] = clamped[:-1]
    before[first] = 0
    level = np.where(step > 0, clamped, before)
    key = np.lexsort((np.arange(n), level, group))
    is_begin = step[key] > 0
    pair = np.zeros(n, dtype=bool)
    pair[:-1] = (
        is_begin[:-1] & ~is_begin[1:] & (group[key][1:] == group[key][:-1]) & (level[key][1:] == level[key][:-1])
    )
    begins = key[is_begin]
    ends = np.where(pair[is_begin], np.append(key[1:], -1)[is_begin], -1)
    keep = np.argsort(order[begins], kind="stable")
    return order[begins][keep], np.where(ends >= 0, order[np.maximum(ends, 0)], -1)[keep]


DATAFRAME_LIBRARIES = ("pandas", "polars")


def dataframe_library(name: str) -> Any:
    if name not in DATAFRAME_LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(DATAFRAME_LIBRARIES)}, not {name!r}")
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"to_dataframe(library={name!r}) needs {name}: pip install {name}") from None


def _polars_column(column: Column) -> Any:
    """Object columns (strings) as lists, which polars types itself; numbers as they are."""
    return column.tolist() if column.dtype == object else column
