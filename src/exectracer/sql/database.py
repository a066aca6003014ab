"""SQL over one or more traces, on an embedded DuckDB: :class:`Database`.

A table is built the first time a query names it (a query of the catalog,
such as ``SHOW TABLES``, builds them all), so that a question about the
collections never runs the state model. The trace's NumPy columns are
handed to DuckDB as they are: it scans them in place.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Collection, Generator, Iterator, Sequence
from typing import Any

from ..analysis import Analysis
from ..trace_data import TraceData
from .tables import TABLES, Source, Spec, enum_types, source

__all__ = ["TABLE_NAMES", "Database", "QueryError"]

TABLE_NAMES = tuple(spec.name for spec in TABLES)
_SPECS = {spec.name: spec for spec in TABLES}
_RAW_PREFIX = "_xt_"
BATCH_ROWS = 65_536  # rows fetched at a time by :meth:`Database.batches`


class QueryError(ValueError):
    """A query DuckDB could not run; the message is DuckDB's, on one line."""


def duckdb_module() -> Any:
    """The ``duckdb`` module, or an ImportError that says how to install it."""
    try:
        import duckdb
    except ImportError:
        raise ImportError("SQL over traces needs DuckDB: pip install 'exectracer[sql]'") from None
    return duckdb


class Database:
    """The documented tables (docs/sql.md) of ``traces``, each a ``(trace, analysis, name)``; every row's
    ``trace`` column is the name of the trace it came from.

    ``read_only``: queries may not change the tables nor read or write
    files (DuckDB's ``enable_external_access`` off, no spill files, the
    configuration locked), as the viewer's Query page runs them; files are
    read only under the directories ``readable`` (DuckDB's
    ``allowed_directories``: a Parquet dataset's).
    """

    def __init__(
        self,
        traces: Sequence[tuple[TraceData, Analysis, str]],
        *,
        read_only: bool = False,
        readable: Sequence[str] = (),
        enums: bool = False,
    ) -> None:
        """``enums``: ``states.state`` and ``events.event`` are ENUMs instead of VARCHAR (cheaper to write)."""
        self._duckdb = duckdb_module()
        self._con = self._duckdb.connect(":memory:")
        if read_only:
            for setting in _locked_down(readable):
                self._con.execute(setting)
        self._sources: list[Source] = [source(trace, analysis, name) for trace, analysis, name in traces]
        self._built: set[str] = set()
        self.read_only = read_only
        self._enums = enums
        for statement in enum_types() if enums else ():
            self._con.execute(statement)

    def close(self) -> None:
        """Close the connection (the tables' memory stays with the traces)."""
        self._con.close()

    def relation(self, query: str, tables: Collection[str] | None = None) -> Any:
        """The DuckDB relation of ``query`` (run as it is read). :class:`QueryError` if DuckDB refuses it.

        ``tables``: the documented tables ``query`` reads, built first (None: those it names, or all of them if
        it names none)."""
        with self._errors():
            self._prepare(query, tables)
            return self._con.sql(query)

    def df(self, query: str) -> Any:
        """The result of ``query`` as a pandas DataFrame (empty for a statement that returns nothing)."""
        relation = self.relation(query)
        if relation is None:
            return importlib.import_module("pandas").DataFrame()
        with self._errors():
            return relation.df()

    def batches(
        self, query: str, rows: int = BATCH_ROWS, tables: Collection[str] | None = None
    ) -> tuple[list[str], list[str], Generator[list[tuple[Any, ...]], None, None]]:
        """The result of ``query``: its column names, their SQL types and its rows, ``rows`` at a time (close the
        iterator of rows if it is not read to its end); ``tables`` as :meth:`relation`'s."""
        with self._errors():
            self._prepare(query, tables)
            result = self._con.execute(query)
        if result is None:  # nothing to return
            return [], [], _no_rows()
        described = result.description or []
        return [d[0] for d in described], [str(d[1]) for d in described], self._rows(result, rows)

    def pid(self, name: str) -> int | None:
        """The pid of every row of table ``name``, if the database is of one trace and they are of one known
        process; else None."""
        if len(self._sources) != 1 or name not in _SPECS:
            return None
        return _SPECS[name].pid(self._sources[0])

    def interrupt(self) -> None:
        """Stop the query running now (from another thread): it raises :class:`QueryError`."""
        self._con.interrupt()

    def _rows(self, result: Any, size: int) -> Generator[list[tuple[Any, ...]], None, None]:
        """The rows of ``result``, ``size`` at a time; closing the iterator early lets the connection run the next
        query (DuckDB refuses one while a result is unfinished)."""
        try:
            while True:
                with self._errors():
                    rows = result.fetchmany(size)
                if not rows:
                    return
                yield rows
        finally:
            abort = getattr(result, "abort", None)  # DuckDB 2; before it, the next query replaces the result
            if abort is not None:
                abort()

    def _prepare(self, query: str, tables: Collection[str] | None = None) -> None:
        """Build the tables ``query`` names; in a read-only database, refuse anything but one query that reads."""
        statements = self._duckdb.extract_statements(query)
        if not statements:
            raise QueryError("no SQL statement in the query")
        self._build(_named_tables(self._duckdb, query) if tables is None else set(tables) & _SPECS.keys())
        if self.read_only and not _reads_only(statements):
            raise QueryError("Permission Error: only one statement that reads (SELECT, WITH, ...) may run here")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """DuckDB's errors as :class:`QueryError`, on one line."""
        try:
            yield
        except self._duckdb.Error as exc:
            raise QueryError(one_line(str(exc))) from exc

    def _build(self, names: set[str]) -> None:
        """Register the raw columns of the tables ``names`` for every trace, and the view of each over them."""
        for name in sorted(names - self._built):
            spec = _SPECS[name]
            selects = []
            for k, src in enumerate(self._sources):
                raw = f"{_RAW_PREFIX}{name}_{k}"
                self._con.register(raw, spec.raw(src))
                selects.append(spec.select(src, raw, self._enums))
            self._con.execute(f"CREATE TEMP VIEW {name} AS {' UNION ALL '.join(selects) or _empty(spec)}")
            self._built.add(name)


def _locked_down(readable: Sequence[str]) -> list[str]:
    """The settings of a read-only connection: no spill files (DuckDB lets its temporary directory be read),
    files only under the directories ``readable``, no network, no extensions, and no changing these."""
    directories = ", ".join("'" + d.replace("'", "''") + "'" for d in readable)
    return [
        "SET temp_directory = ''",
        *([f"SET allowed_directories = [{directories}]"] if readable else []),
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ]


def _no_rows() -> Generator[list[tuple[Any, ...]], None, None]:
    yield from ()


def _empty(spec: Spec) -> str:
    return "SELECT " + ", ".join(f"NULL AS {column}" for column, _ in spec.columns) + ", NULL AS trace WHERE false"


def _named_tables(duckdb: Any, query: str) -> set[str]:
    """The documented tables whose names appear in ``query`` as identifiers; all of them if none does (a query of
    the catalog: ``SHOW TABLES``, ``information_schema``)."""
    named = {word.lower() for word in _identifiers(duckdb, query)} & _SPECS.keys()
    return named or set(_SPECS)


def _identifiers(duckdb: Any, query: str) -> Iterator[str]:
    tokens = duckdb.tokenize(query)
    ends = [position for position, _ in tokens[1:]] + [len(query)] if tokens else []
    for (position, kind), end in zip(tokens, ends, strict=True):
        if kind == duckdb.token_type.identifier:
            yield query[position:end].strip().strip('"')


def _reads_only(statements: list[Any]) -> bool:
    """Whether ``statements`` (DuckDB's parse of a query) are one statement that only reads."""
    reading = {"SELECT", "EXPLAIN"}
    return len(statements) == 1 and statements[0].type.name in reading


def one_line(message: str) -> str:
    """DuckDB's error message on one line: its first line, and its suggestion (``Did you mean``) if it has one."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "DuckDB error"
    hints = [line for line in lines[1:] if line.startswith("Did you mean")]
    return " ".join([lines[0], *hints[:1]])
