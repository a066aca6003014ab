"""The SQL tables as a Hive-partitioned Parquet dataset (docs/sql.md, "Parquet datasets"): write, append, read.

A dataset is a directory::

    DIR/_exectracer_dataset.json                                      the schema: version, columns and types
    DIR/table=traces/part-<trace id>.parquet                          one row per exported trace
    DIR/table=frames/part-<trace id>.parquet                          tables without a process
    DIR/table=states/host=<host>/pid=<pid>/part-<trace id>-0.parquet  the others, by the process of their rows

Each trace's files are written by DuckDB's ``COPY ... (FORMAT parquet)``
into a temporary directory inside ``DIR``, then renamed into place, its
``table=traces`` file last: a trace is in the dataset once that file is
there, and exporting it again is skipped. A table whose rows are all of one
process (a trace of one process: every table) is written straight into its
partition's folder; the rows of several processes go through DuckDB's
``PARTITION_BY (host, pid)``. The files are Parquet 2 (``PARQUET_VERSION
v2``: delta-encoded integers, data pages v2) with Snappy: smaller and
cheaper to write than version 1 pages (bench/LOG.md), read by DuckDB,
Spark 3.3 and later, PyArrow and Polars.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..analysis import Analysis
from ..trace_data import TraceData
from .database import TABLE_NAMES, Database, QueryError

SCHEMA_VERSION = 1
SCHEMA_FILE = "_exectracer_dataset.json"
FORMAT_NAME = "exectracer-parquet-dataset"
VERSION_KEY = "exectracer_schema_version"  # key-value metadata of every Parquet file
TRACES = "traces"
DATASET_TABLES = (TRACES, *TABLE_NAMES)
WITHOUT_ANALYSIS = (TRACES, "processes", "frames", "heap", "events")  # tables written while the analysis runs
UNPARTITIONED = frozenset({TRACES, "frames"})  # tables whose rows belong to no one process
PARTITIONS = ("host", "pid")
PARTITION_TYPES = {"host": "VARCHAR", "pid": "BIGINT"}
PARQUET_OPTIONS = "COMPRESSION snappy, PARQUET_VERSION v2"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a host name DuckDB's PARTITION_BY writes as it is
_TRACES_SELECT = (
    "SELECT {name} AS trace, {trace_id} AS trace_id, CAST({wall} AS BIGINT) AS start_wall_ns,"
    " CAST({duration} AS BIGINT) AS duration_ns, CAST({events} AS BIGINT) AS events,"
    " CAST({processes} AS BIGINT) AS processes, CAST({version} AS INTEGER) AS format_version,"
    " CAST({schema} AS INTEGER) AS schema_version"
)


class DatasetError(ValueError):
    """A directory that cannot be written or read as a dataset; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Written:
    """One trace's export: its id, and its rows (0 and ``skipped`` if the dataset already held it)."""

    name: str
    trace_id: str
    rows: int
    files: int
    skipped: bool = False


def trace_id(trace: TraceData) -> str:
    """The trace's id: 16 hex digits that name the capture (its processes' hosts, pids and clock anchors, its
    span and event count), the same however the file is compressed or named."""
    identity = [
        [p.host, p.pid, p.start_wall_ns, p.start_ns - p.offset_ns, p.end_ns - p.offset_ns] for p in trace.processes
    ]
    text = json.dumps([identity, trace.event_count], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def start_wall_ns(trace: TraceData) -> int | None:
    """The wall-clock time (ns since the Unix epoch) of the trace's time 0, from its first process's anchor."""
    first = trace.processes[0] if trace.processes else None
    if first is None or first.start_wall_ns is None:
        return None
    return first.start_wall_ns - (first.start_ns - trace.start_ns)


# -- writing -------------------------------------------------------------------------------------------------------


def export(
    traces: Sequence[tuple[TraceData, Analysis, str]],
    directory: str,
    analyse: Callable[[TraceData, Analysis], object] | None = None,
) -> Iterator[Written]:
    """Add each of ``traces`` (``(trace, analysis, name)``) to the dataset in ``directory`` (made if missing),
    one at a time; a trace the dataset already holds is skipped.

    ``analyse(trace, analysis)`` computes the parts of the analysis the tables read (its goroutines, states and
    collections; by default without a word), while the tables that need none are written."""
    schema = check_target(directory)
    made = not os.path.exists(directory)
    try:
        for trace, analysis, name in traces:
            tid = trace_id(trace)
            if _holds(directory, tid):
                yield Written(name, tid, 0, 0, skipped=True)
                continue
            yield _export_one(trace, analysis, name, tid, directory, schema, analyse or _analyse)
    finally:
        if made and os.path.isdir(directory) and not os.listdir(directory):
            os.rmdir(directory)  # a failed first export leaves no empty directory behind


def check_target(directory: str) -> dict[str, Any]:
    """The schema of the dataset in ``directory``, made there if it does not exist; :class:`DatasetError` if the
    path is a file, a directory of something else, or a dataset of another schema version."""
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise DatasetError(f"{directory} exists and is not a directory; nothing written")
    path = os.path.join(directory, SCHEMA_FILE)
    if os.path.isdir(directory) and not os.path.exists(path):
        if any(not entry.startswith(".") for entry in os.listdir(directory)):
            raise DatasetError(
                f"{directory} is not empty and holds no exectracer dataset ({SCHEMA_FILE}); nothing written"
            )
    if os.path.exists(path):
        schema = read_schema(directory)
        if schema["schema_version"] != SCHEMA_VERSION:
            raise DatasetError(
                f"{directory} is a dataset of schema version {schema['schema_version']}, this exectracer writes "
                f"version {SCHEMA_VERSION}; nothing written (export into a new directory)"
            )
        return schema
    return {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "tables": {}}


def _holds(directory: str, tid: str) -> bool:
    return os.path.exists(os.path.join(directory, f"table={TRACES}", f"part-{tid}.parquet"))


def _analyse(trace: TraceData, analysis: Analysis) -> None:
    _ = analysis.goroutines, analysis.states, analysis.collections


def _export_one(
    trace: TraceData,
    analysis: Analysis,
    name: str,
    tid: str,
    directory: str,
    schema: dict[str, Any],
    analyse: Callable[[TraceData, Analysis], object],
) -> Written:
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".export-{tid}-", dir=directory)
    try:
        db = Database([(trace, analysis, name)], enums=True)
        try:
            tables, rows = _write_tables(db, trace, name, tid, staging, lambda: analyse(trace, analysis))
        finally:
            db.close()
        _merge_schema(schema, tables, directory)
        files = _move_into_place(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Written(name, tid, rows, files)


def _write_tables(
    db: Database, trace: TraceData, name: str, tid: str, staging: str, analyse: Callable[[], object]
) -> tuple[dict[str, dict[str, str]], int]:
    """COPY each table of ``db`` into ``staging``; each table's columns and types, and the rows written. The
    tables of :data:`WITHOUT_ANALYSIS` are written by a thread of their own while ``analyse`` runs in this one
    (DuckDB writes without Python's lock), which then reads the trace's user tasks, regions and logs; then the
    tables that need the analysis are written."""
    db.relation(_traces_view(trace, name, tid), tables=())
    distinct = "SELECT DISTINCT host FROM processes WHERE host IS NOT NULL"
    hosts = [host for (host,) in db.relation(distinct, tables=["processes"]).fetchall()]
    constants = _constants(db, name, tid, hosts)

    def write(names: Iterable[str], then: Callable[[], object] = lambda: None) -> dict[str, tuple[dict[str, str], int]]:
        written = {}
        for table in names:
            select = _select(table, constants, multi_host=len(hosts) > 1)
            described = db.relation(f"DESCRIBE {select}", tables=[table, "processes"]).fetchall()
            columns = {column: _schema_type(column, str(kind)) for column, kind, *_ in described}
            written[table] = columns, _copy(db, table, select, tid, staging, _partition(db, table, hosts))
        then()
        return written

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="exectracer-parquet") as pool:
        first = pool.submit(write, WITHOUT_ANALYSIS, then=lambda: (trace.user_task_table, trace.regions, trace.logs))
        try:
            analyse()
        except BaseException:
            db.interrupt()
            concurrent.futures.wait([first])
            raise
        written = first.result()
    written |= write(t for t in DATASET_TABLES if t not in WITHOUT_ANALYSIS)
    return {t: written[t][0] for t in DATASET_TABLES}, sum(rows for _, rows in written.values())


def _partition(db: Database, table: str, hosts: list[str]) -> str | None:
    """The one partition's folder (``host=.../pid=...``) of all of ``table``'s rows, if it is known before they
    are written (one host with a plain name, one known pid); else None."""
    pid = db.pid(table)
    if table in UNPARTITIONED or pid is None or len(hosts) != 1 or not _PLAIN.fullmatch(hosts[0]):
        return None
    return os.path.join(f"host={hosts[0]}", f"pid={pid}")


def _copy(db: Database, table: str, select: str, tid: str, staging: str, partition: str | None) -> int:
    """Write ``select``'s rows as ``table``'s files under ``staging``: one file, directly where its partition is
    known (without its partition columns, as DuckDB's ``PARTITION_BY`` writes them), else partitioned by DuckDB.
    The rows written."""
    meta = f"KV_METADATA {{{VERSION_KEY}: '{SCHEMA_VERSION}', exectracer_table: '{table}'}}"
    folder = os.path.join(staging, f"table={table}")
    if table in UNPARTITIONED or partition is not None:
        folder = os.path.join(folder, partition or "")
        os.makedirs(folder)
        target = os.path.join(folder, f"part-{tid}.parquet" if partition is None else f"part-{tid}-0.parquet")
        select = select if partition is None else f"SELECT * EXCLUDE ({', '.join(PARTITIONS)}) FROM ({select})"
        options = meta
    else:
        target = folder
        options = f"PARTITION_BY ({', '.join(PARTITIONS)}), FILENAME_PATTERN 'part-{tid}-{{i}}', {meta}"
    copy = f"COPY ({select}) TO {_literal(target)} (FORMAT parquet, {PARQUET_OPTIONS}, {options})"
    _, _, batches = db.batches(copy, tables=[table, "processes"])
    rows = int(sum(count for batch in batches for (count,) in batch))
    if partition is not None and rows == 0:  # as PARTITION_BY: no rows, no file
        shutil.rmtree(os.path.join(staging, f"table={table}"))
    return rows


def _constants(db: Database, name: str, tid: str, hosts: list[str]) -> dict[str, str]:
    """SQL for the trace's name, its id and its host (NULL: unknown, or several), each cast to an ENUM of its
    values: DuckDB writes those to Parquet as dictionaries of strings without making one string per row."""
    out = {}
    for key, values in (("trace", [name]), ("trace_id", [tid]), ("host", hosts)):
        if values:
            db.relation(f"CREATE TYPE _xt_enum_{key} AS ENUM ({', '.join(_literal(v) for v in values)})", tables=())
        out[key] = f"CAST({{}} AS _xt_enum_{key})" if values else "CAST({} AS VARCHAR)"
    out["trace"] = out["trace"].format("trace")
    out["trace_id"] = out["trace_id"].format(_literal(tid))
    out["host_of"] = out.pop("host")
    out["host"] = out["host_of"].format(_literal(hosts[0]) if len(hosts) == 1 else "NULL")
    return out


def _schema_type(column: str, kind: str) -> str:
    """The type a dataset's reader sees: ENUMs are strings, partition columns have their fixed type."""
    return PARTITION_TYPES.get(column) or ("VARCHAR" if kind.startswith("ENUM") else kind)


def _traces_view(trace: TraceData, name: str, tid: str) -> str:
    wall = start_wall_ns(trace)
    select = _TRACES_SELECT.format(
        name=_literal(name),
        trace_id=_literal(tid),
        wall="NULL" if wall is None else wall,
        duration=trace.duration_ns,
        events=trace.event_count,
        processes=len(trace.processes),
        version=trace.version,
        schema=SCHEMA_VERSION,
    )
    return f"CREATE TEMP VIEW {TRACES} AS {select}"


def _select(table: str, constants: dict[str, str], *, multi_host: bool) -> str:
    """The rows of ``table`` as the dataset holds them: the trace's table with ``trace_id`` and, for a
    partitioned table, ``host`` (the host of the rows' process; with several hosts, NULL where the pid is)."""
    trace, tid = constants["trace"], constants["trace_id"]
    if table == TRACES:
        return f"SELECT * REPLACE ({trace} AS trace, {tid} AS trace_id) FROM {TRACES}"
    if table in UNPARTITIONED:
        return f"SELECT * REPLACE ({trace} AS trace), {tid} AS trace_id FROM {table}"
    if table == "processes":
        host = constants["host_of"].format("host")
        return f"SELECT * REPLACE ({trace} AS trace, {host} AS host), {tid} AS trace_id FROM {table}"
    if not multi_host:
        return f"SELECT * REPLACE ({trace} AS trace), {tid} AS trace_id, {constants['host']} AS host FROM {table}"
    host = constants["host_of"].format("h.host")
    return (
        f"SELECT t.* REPLACE ({trace} AS trace), {tid} AS trace_id, {host} AS host FROM {table} t"
        " LEFT JOIN (SELECT pid, any_value(host) AS host FROM processes GROUP BY pid) h ON h.pid = t.pid"
    )


def _merge_schema(schema: dict[str, Any], tables: dict[str, dict[str, str]], directory: str) -> None:
    """Record the tables' columns in the dataset's schema file; a trace whose columns differ from the dataset's
    is refused (its files are not yet in place)."""
    known = schema["tables"]
    for table, columns in tables.items():
        if table in known and list(known[table].items()) != list(columns.items()):
            raise DatasetError(
                f"table {table} of this trace has columns {_columns(columns)}, the dataset's are "
                f"{_columns(known[table])}; nothing written"
            )
    if not known:
        schema["tables"] = tables
        _write_json(os.path.join(directory, SCHEMA_FILE), schema)


def _columns(columns: dict[str, str]) -> str:
    return ", ".join(f"{c} {t}" for c, t in columns.items())


def _write_json(path: str, doc: dict[str, Any]) -> None:
    partial = f"{path}.part"
    with open(partial, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(partial, path)


def _move_into_place(staging: str, directory: str) -> int:
    """Rename every file under ``staging`` to the same place under ``directory``, the traces table last (a
    file left by an export that stopped half-way is replaced)."""
    files = sorted(
        (os.path.relpath(os.path.join(root, f), staging) for root, _, names in os.walk(staging) for f in names),
        key=lambda rel: rel.startswith(f"table={TRACES}{os.sep}"),
    )
    for rel in files:
        target = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(os.path.join(staging, rel), target)
    return len(files)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- reading -------------------------------------------------------------------------------------------------------


def is_dataset(path: str) -> bool:
    """Whether ``path`` is a dataset's directory."""
    return os.path.isfile(os.path.join(path, SCHEMA_FILE))


def read_schema(directory: str) -> dict[str, Any]:
    """The dataset's schema file; :class:`DatasetError` if it is missing or not one."""
    path = os.path.join(directory, SCHEMA_FILE)
    try:
        with open(path) as f:
            schema = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{directory} is not an exectracer dataset (no {SCHEMA_FILE})") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from None
    if (
        not isinstance(schema, dict)
        or schema.get("format") != FORMAT_NAME
        or not isinstance(schema.get("schema_version"), int)
    ):
        raise DatasetError(f"{path} is not an exectracer dataset's schema")
    return schema


class DatasetDatabase(Database):
    """The tables of a Parquet dataset (:func:`export`), read in place: the same queries as over traces."""

    def __init__(self, directory: str, *, read_only: bool = False) -> None:
        """``read_only``: as :class:`~exectracer.sql.Database`'s, and no file but the dataset's may be read."""
        schema = read_schema(directory)
        self._root = os.path.realpath(directory)  # the files' paths in SQL: where DuckDB's allowed directory is
        super().__init__([], read_only=read_only, readable=[os.path.join(self._root, "")])
        self.directory = directory
        self.schema = schema
        self._check_versions(schema)

    def _check_versions(self, schema: dict[str, Any]) -> None:
        """Every file's schema version is the schema file's, and one this exectracer reads."""
        versions = {str(schema["schema_version"])}
        files = os.path.join(glob.escape(self._root), "table=*", "**", "*.parquet")
        if glob.glob(files, recursive=True):
            with self._errors():
                found = self._con.execute(
                    "SELECT DISTINCT CAST(value AS VARCHAR) FROM parquet_kv_metadata(?) WHERE CAST(key AS VARCHAR) = ?",
                    [files, VERSION_KEY],
                ).fetchall()
            versions |= {v for (v,) in found}
        if versions != {str(SCHEMA_VERSION)}:
            listed = " and ".join(sorted(versions, key=lambda v: (len(v), v)))
            raise DatasetError(
                f"{self.directory} mixes schema versions {listed}; this exectracer reads version {SCHEMA_VERSION}"
                if len(versions) > 1
                else f"{self.directory} is of schema version {listed}; this exectracer reads version {SCHEMA_VERSION}"
            )

    def _build(self, names: set[str]) -> None:
        for name in sorted((names | {TRACES}) - self._built):
            columns = self.schema["tables"].get(name)
            if columns is None:
                continue
            self._con.execute(f"CREATE TEMP VIEW {name} AS {self._view(name, columns)}")
            self._built.add(name)

    def _view(self, name: str, columns: dict[str, str]) -> str:
        folder = os.path.join(self._root, f"table={name}")
        names = ", ".join(f'"{c}"' for c in columns)
        if not glob.glob(os.path.join(glob.escape(folder), "**", "*.parquet"), recursive=True):
            return "SELECT " + ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in columns.items()) + " WHERE false"
        pattern = os.path.join(folder, "*.parquet" if name in UNPARTITIONED else "*/*/*.parquet")
        options = "hive_partitioning = false, union_by_name = true"
        if name not in UNPARTITIONED:
            types = ", ".join(f"{k}: {v}" for k, v in PARTITION_TYPES.items())
            options = f"hive_partitioning = true, hive_types = {{{types}}}, union_by_name = true"
        return f"SELECT {names} FROM read_parquet({_literal(pattern)}, {options})"


def read_dataset(directory: str, *, read_only: bool = False) -> DatasetDatabase:
    """The dataset in ``directory`` as a :class:`~exectracer.sql.Database` (``.df(query)``, ``.relation(query)``);
    ``read_only``: one statement that reads, and no file outside the dataset (the viewer's Query page).

    Raises :class:`DatasetError` if it is not a dataset, or mixes schema versions."""
    try:
        return DatasetDatabase(directory, read_only=read_only)
    except QueryError as exc:
        raise DatasetError(f"{directory}: {exc}") from None


__all__ = [
    "DATASET_TABLES",
    "SCHEMA_VERSION",
    "DatasetDatabase",
    "DatasetError",
    "Written",
    "check_target",
    "export",
    "is_dataset",
    "read_dataset",
    "read_schema",
    "start_wall_ns",
    "trace_id",
]
