"""A query's result as ``exectracer sql`` prints it: an aligned text table, CSV or JSON."""

from __future__ import annotations

import csv
import decimal
import json
import math
from collections.abc import Iterator
from typing import Any, TextIO

FORMATS = ("table", "csv", "json")
NULL = "NULL"
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def write(out: TextIO, fmt: str, names: list[str], types: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    """Write the result (column ``names`` and SQL ``types``, rows in ``batches``) to ``out`` in ``fmt``
    (one of :data:`FORMATS`); returns the number of rows."""
    if fmt == "csv":
        return _csv(out, names, batches)
    if fmt == "json":
        return _json(out, names, batches)
    if fmt == "table":
        return _table(out, names, types, batches)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def _csv(out: TextIO, names: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    count = 0
    for rows in batches:
        writer.writerows(tuple(_csv_value(v) for v in row) for row in rows)
        count += len(rows)
    return count


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


def _json(out: TextIO, names: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    """A JSON array of one object per row (NaN and infinities as null, as JSON has none)."""
    count = 0
    out.write("[")
    for rows in batches:
        for row in rows:
            out.write(",\n" if count else "\n")
            out.write(json.dumps(dict(zip(names, map(_json_value, row), strict=True)), default=str))
            count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        value = float(value)
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _table(out: TextIO, names: list[str], types: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    """Columns aligned (numbers to the right), a rule under the header, and the row count."""
    cells = [[_cell(v) for v in row] for rows in batches for row in rows]
    header = [_printable(n) for n in names]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(header)]
    right = [t.split("(")[0] in NUMERIC or t.startswith(("DECIMAL", "DOUBLE", "FLOAT")) for t in types]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    out.write(line(header) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    out.write(f"({len(cells):,} row{'' if len(cells) == 1 else 's'})\n")
    return len(cells)


def _cell(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, float):
        return f"{value:.10g}"
    return _printable(value)


def _printable(value: Any) -> str:
    """``value`` as text, control characters escaped: names from a traced program are untrusted."""
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
