"""The viewer's Query page on the server: ``/api/sql`` runs one reading SQL statement over the trace or the Parquet
dataset (docs/sql.md).

Queries run on a read-only database (DuckDB's access to files and the
network off but for a dataset's own directory, its configuration locked,
one statement that reads), one at a time, each stopped after
:data:`MAX_SECONDS`; the answer holds at most :data:`MAX_ROWS` rows.
"""

from __future__ import annotations

import datetime
import decimal
import math
import threading
from collections.abc import Mapping
from typing import Any

from ..reader import Trace
from ..sql.database import Database, QueryError
from ..sql.dataset import read_dataset

MAX_ROWS = 1000
MAX_SECONDS = 30.0


class QueryAPI:
    """Runs the Query page's queries over one trace, or the Parquet dataset in a directory; the database is opened
    at the first query (or by :meth:`open`)."""

    def __init__(self, trace: Trace | str, max_rows: int = MAX_ROWS, max_seconds: float = MAX_SECONDS) -> None:
        self.trace = trace
        self.max_rows, self.max_seconds = max_rows, max_seconds
        self._database: Database | None = None
        self._lock = threading.Lock()

    def run(self, query: str) -> dict[str, Any]:
        """``columns``, ``types``, ``rows`` (lists of JSON values), ``truncated``. :class:`ValueError` (a bad
        request) with DuckDB's one-line message for a query it refuses, or if DuckDB is not installed."""
        if not query.strip():
            raise ValueError("no query: write one SQL statement that reads (SELECT ...)")
        with self._lock:
            database = self.open()
            timer = threading.Timer(self.max_seconds, database.interrupt)
            timer.daemon = True
            timer.start()
            try:
                names, types, batches = database.batches(query, self.max_rows + 1)
                try:
                    rows = next(batches, [])
                finally:
                    batches.close()
            except QueryError as exc:
                message = str(exc)
                if not timer.is_alive() and "Interrupt" in message:
                    message = f"the query ran longer than {self.max_seconds:g} s and was stopped"
                raise ValueError(message) from None
            finally:
                timer.cancel()
        return {
            "columns": names,
            "types": types,
            "rows": [[_json(v) for v in row] for row in rows[: self.max_rows]],
            "truncated": len(rows) > self.max_rows,
        }

    def open(self) -> Database:
        """The read-only database, opened now if it is not yet. ValueError (one line) if DuckDB is missing or the
        dataset cannot be read."""
        if self._database is None:
            try:
                if isinstance(self.trace, str):
                    self._database = read_dataset(self.trace, read_only=True)
                else:
                    self._database = Database([(self.trace, self.trace.analysis, self.trace.name)], read_only=True)
            except ImportError as exc:
                raise ValueError(str(exc)) from None
        return self._database


def _json(value: Any) -> Any:
    """A result's value as JSON: numbers, strings, null, lists and objects; anything else as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return _json(float(value))
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return str(value)
    return str(value)
