"""Parquet datasets (docs/sql.md, "Parquet datasets"): ``exectracer export --format parquet``'s layout and schema,
its tables against ``exectracer sql``'s, appending, bad input, and the same answers from DuckDB and from Apache
Spark reading the dataset unchanged."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import exectracer
from exectracer.sql import dataset as dataset_module
from exectracer.sql.database import TABLE_NAMES, Database
from exectracer.sql.dataset import SCHEMA_FILE, SCHEMA_VERSION, DatasetError, read_dataset, trace_id

from programs import annotated_requests, talk
from support.process_traces import WALL, collecting_parent, process, runnable_child
from support.waiting import wait_for

EXPORT = [sys.executable, "-m", "exectracer", "export", "--format", "parquet"]
SQL = [sys.executable, "-m", "exectracer", "sql"]


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two recorded traces (the talk's lock situation, the annotated requests) and a two-host, two-process one."""
    out = tmp_path_factory.mktemp("parquet")
    with exectracer.trace(out / "lock.xtrace"):
        talk.run(functools.partial(talk.lock_scenario, talk.Measured()), "asyncio")
    with exectracer.trace(out / "annotated.xtrace"):
        annotated_requests.main()
    here = collecting_parent(process(10, 1, start_ns=5_000))
    there = runnable_child(process(11, None, host="other", start_ns=90_000, wall=WALL + 1000))
    here.rows = [v + 5_000 if i % 3 == 1 else v for i, v in enumerate(here.rows)]
    there.rows = [v + 90_000 if i % 3 == 1 else v for i, v in enumerate(there.rows)]
    here.write(out / "parent.xtrace", 7_000)
    (out / "hosts").mkdir()
    there.write(out / "hosts" / "child.xtrace", 92_000)
    shutil.copy(out / "parent.xtrace", out / "hosts" / "parent.xtrace")
    return out


@pytest.fixture(scope="module")
def dataset(folder: Path) -> Path:
    """``lock.xtrace`` and ``annotated.xtrace`` exported into ``ds`` by the command, in two runs."""
    for names in (["lock.xtrace"], ["annotated.xtrace"]):
        result = run(*EXPORT, *names, "-o", "ds", cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder / "ds"


def rows(relation: duckdb.DuckDBPyRelation) -> list[tuple]:
    return sorted(relation.fetchall(), key=repr)


# -- layout and schema -----------------------------------------------------------------------------------------


def test_layout(dataset: Path, folder: Path) -> None:
    """Each table a folder; per process, host and pid as Hive partitions; one file per trace named by its id."""
    trace = exectracer.load(folder / "lock.xtrace")
    tid, host, pid = trace_id(trace), trace.metadata["hostname"], trace.metadata["pid"]
    files = {str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file()}
    assert SCHEMA_FILE in files
    assert f"table=traces/part-{tid}.parquet" in files and f"table=frames/part-{tid}.parquet" in files
    for table in ("processes", "goroutines", "states", "gc", "heap", "events"):
        assert f"table={table}/host={host}/pid={pid}/part-{tid}-0.parquet" in files, table
    assert not [f for f in files if f.startswith(".")], "the staging directories are gone"


def test_schema_is_versioned_and_typed(dataset: Path) -> None:
    """The schema file and every file's key-value metadata carry the version; times are plain int64 (no
    timestamp logical type), so that no reader turns them into dates."""
    schema = json.loads((dataset / SCHEMA_FILE).read_text())
    assert schema["schema_version"] == SCHEMA_VERSION and list(schema["tables"]) == ["traces", *TABLE_NAMES]
    files = str(dataset / "table=*" / "**" / "*.parquet")
    versions = duckdb.sql(
        f"SELECT DISTINCT decode(value) FROM parquet_kv_metadata('{files}') "
        "WHERE decode(key) = 'exectracer_schema_version'"
    ).fetchall()
    assert versions == [(str(SCHEMA_VERSION),)]
    columns = duckdb.sql(
        f"SELECT name, type, logical_type FROM parquet_schema('{files}') WHERE name LIKE '%\\_ns' ESCAPE '\\'"
    ).fetchall()
    assert {"start_ns", "end_ns", "ts_ns", "start_wall_ns", "duration_ns"} <= {name for name, *_ in columns}
    assert {(t, logical) for _, t, logical in columns} == {("INT64", None)}
    db = read_dataset(str(dataset))
    for table, types in schema["tables"].items():
        described = [(c, t) for c, t, *_ in db.relation(f"DESCRIBE {table}").fetchall()]
        assert described == list(types.items()), table


def test_tables_are_the_sql_tables(dataset: Path, folder: Path) -> None:
    """Every table of the dataset holds exactly the rows ``exectracer sql`` gives for the same traces, plus the
    trace's id (and host)."""
    traces = {name: exectracer.load(folder / name) for name in ("lock.xtrace", "annotated.xtrace")}
    direct = Database([(t, t.analysis, name) for name, t in traces.items()])
    db = read_dataset(str(dataset))
    for table in TABLE_NAMES:
        columns = ", ".join(f'"{c}"' for c, *_ in direct.relation(f"DESCRIBE {table}").fetchall())
        assert rows(db.relation(f"SELECT {columns} FROM {table}")) == rows(
            direct.relation(f"SELECT {columns} FROM {table}")
        ), table
    ids = {name: trace_id(t) for name, t in traces.items()}
    assert dict(db.relation("SELECT DISTINCT trace, trace_id FROM states").fetchall()) == ids
    [(hosts,)] = db.relation("SELECT count(DISTINCT host) FROM events WHERE host IS NOT NULL").fetchall()
    assert hosts == 1


def test_the_traces_table_anchors_each_trace(dataset: Path, folder: Path) -> None:
    trace = exectracer.load(folder / "lock.xtrace")
    db = read_dataset(str(dataset))
    [row] = db.relation("SELECT * FROM traces WHERE trace = 'lock.xtrace'").df().to_dict("records")
    assert row["start_wall_ns"] == trace.metadata["start_wall_ns"] and row["trace_id"] == trace_id(trace)
    assert row["events"] == trace.event_count and row["duration_ns"] == trace.duration_ns
    assert row["schema_version"] == SCHEMA_VERSION and row["processes"] == 1


def test_the_command_reads_the_dataset(dataset: Path) -> None:
    query = "SELECT trace, count(*) AS n FROM states GROUP BY trace ORDER BY trace"
    result = run(*SQL, "ds", query, "--format", "json", cwd=dataset.parent)
    assert result.returncode == 0, result.stderr
    assert [r["trace"] for r in json.loads(result.stdout)] == ["annotated.xtrace", "lock.xtrace"]


def test_a_known_partition_is_written_as_duckdb_partitions(folder: Path, tmp_path: Path, monkeypatch) -> None:
    """Tables whose one partition (host, pid) is known are written straight into it: the same files, Parquet
    columns and rows as DuckDB's ``PARTITION_BY`` writes."""
    trace = exectracer.load(folder / "lock.xtrace")
    list(dataset_module.export([(trace, trace.analysis, "lock.xtrace")], str(tmp_path / "direct")))
    monkeypatch.setattr(dataset_module, "_partition", lambda *args: None)
    list(dataset_module.export([(trace, trace.analysis, "lock.xtrace")], str(tmp_path / "by-duckdb")))
    direct, by_duckdb = tmp_path / "direct", tmp_path / "by-duckdb"
    files = sorted(str(p.relative_to(direct)) for p in direct.rglob("*.parquet"))
    assert files == sorted(str(p.relative_to(by_duckdb)) for p in by_duckdb.rglob("*.parquet"))
    assert any("/host=" in f for f in files)
    for file in files:
        schema = "SELECT name, type, logical_type, converted_type FROM parquet_schema(?)"
        assert (
            duckdb.execute(schema, [str(direct / file)]).fetchall()
            == duckdb.execute(schema, [str(by_duckdb / file)]).fetchall()
        ), file
    for table in TABLE_NAMES:
        query = f"SELECT * FROM {table}"
        assert rows(read_dataset(str(direct)).relation(query)) == rows(read_dataset(str(by_duckdb)).relation(query))


def test_tables_without_the_analysis_are_written_while_it_runs(folder: Path, tmp_path: Path) -> None:
    """The events (and the other tables that need no analysis) are written while the analysis is computed: the
    export's ``analyse`` sees their files appear before it computes anything, then the export completes."""
    trace = exectracer.load(folder / "lock.xtrace")
    seen = []

    def analyse(traced: object, analysis: object) -> None:
        files = lambda: list(tmp_path.glob("ds/.export-*/table=events/**/*.parquet"))  # noqa: E731
        seen.extend(wait_for(files, "the events' file, written while the analysis waits"))
        _ = trace.analysis.goroutines, trace.analysis.states, trace.analysis.collections

    [written] = dataset_module.export([(trace, trace.analysis, "lock.xtrace")], str(tmp_path / "ds"), analyse)
    assert seen and written.rows > 0 and not written.skipped
    assert rows(read_dataset(str(tmp_path / "ds")).relation("SELECT count(*) FROM states")) == [
        (len(trace.analysis.states),)
    ]


# -- several processes and hosts -------------------------------------------------------------------------------


def test_processes_of_two_hosts(folder: Path, tmp_path: Path) -> None:
    """Rows go to their process's partition, events included; the wall-clock anchor is the first process's."""
    result = run(*EXPORT, "hosts", "-o", tmp_path / "ds", cwd=folder)
    assert result.returncode == 0, result.stderr
    db = read_dataset(str(tmp_path / "ds"))
    assert rows(db.relation("SELECT DISTINCT host, pid FROM states")) == [("box", 10), ("other", 11)]
    assert rows(db.relation("SELECT host, pid, start_ns FROM processes")) == [("box", 10, 0), ("other", 11, 1000)]
    assert rows(db.relation("SELECT DISTINCT host, pid FROM events")) == [("box", 10), ("other", 11)]
    assert db.relation("SELECT start_wall_ns, processes FROM traces").fetchall() == [(WALL, 2)]
    assert (tmp_path / "ds" / "table=states" / "host=other" / "pid=11").is_dir()


# -- appending -------------------------------------------------------------------------------------------------


def test_appending_skips_a_trace_already_there(dataset: Path, folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "ds"
    shutil.copytree(dataset, target)
    before = sorted(p for p in target.rglob("*") if p.is_file())
    shutil.copy(folder / "lock.xtrace", tmp_path / "lock-copy.xtrace")
    result = run(*EXPORT, folder / "lock.xtrace", "lock-copy.xtrace", "-o", "ds", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Skipped {folder / 'lock.xtrace'}: ds already holds it (trace id ")
    assert lines[1].startswith("Skipped lock-copy.xtrace: ds already holds it")
    assert sorted(p for p in target.rglob("*") if p.is_file()) == before
    result = run(*EXPORT, "parent.xtrace", "-o", target, cwd=folder)
    assert result.returncode == 0, result.stderr
    db = read_dataset(str(target))
    assert rows(db.relation("SELECT trace, processes FROM traces")) == [
        ("annotated.xtrace", 1),
        ("lock.xtrace", 1),
        ("parent.xtrace", 1),
    ]
    assert db.relation("SELECT count(DISTINCT trace_id) FROM goroutines").fetchall() == [(3,)]


# -- bad input -------------------------------------------------------------------------------------------------


def test_bad_targets_and_inputs(folder: Path, tmp_path: Path) -> None:
    """A target that is a file, or a folder of something else; an input that is not a trace: one line, exit 1,
    nothing written."""
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    (tmp_path / "notes.txt").write_text("not a trace")
    cases = {
        ("file",): "exectracer: error: file exists and is not a directory; nothing written",
        ("other",): "exectracer: error: other is not empty and holds no exectracer dataset",
        ("new", "notes.txt"): "exectracer: error: notes.txt: not an exectracer trace (it starts with",
    }
    for (target, *extra), message in cases.items():
        result = run(*EXPORT, folder / "lock.xtrace", *extra, "-o", target, cwd=tmp_path)
        assert result.returncode == 1 and result.stderr.startswith(message), result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert (tmp_path / "file").read_text() == "keep me" and os.listdir(tmp_path / "other") == ["notes.txt"]
    assert not (tmp_path / "new").exists()
    result = run(*EXPORT, folder / "lock.xtrace", "-o", "new", "--start", "1", cwd=tmp_path)
    assert result.returncode == 2 and "--start and --end do not apply" in result.stderr


def test_mixed_schema_versions_are_refused(dataset: Path, tmp_path: Path) -> None:
    """A file of another schema version among the dataset's: reading names both versions on one line; a
    dataset of another version is not appended to."""
    target = tmp_path / "ds"
    shutil.copytree(dataset, target)
    later = target / "table=states" / "host=h" / "pid=1" / "part-later-0.parquet"
    later.parent.mkdir(parents=True)
    duckdb.sql(f"COPY (SELECT 1 AS x) TO '{later}' (FORMAT parquet, KV_METADATA {{exectracer_schema_version: '2'}})")
    with pytest.raises(DatasetError, match=f"{target} mixes schema versions 1 and 2; this exectracer reads version 1"):
        read_dataset(str(target))
    result = run(*SQL, "ds", "SELECT 1", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == (
        f"exectracer: error: ds mixes schema versions 1 and 2; this exectracer reads version {SCHEMA_VERSION}\n"
    )
    schema = json.loads((target / SCHEMA_FILE).read_text())
    (target / SCHEMA_FILE).write_text(json.dumps({**schema, "schema_version": 2}))
    result = run(*EXPORT, dataset.parent / "parent.xtrace", "-o", "ds", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == (
        "exectracer: error: ds is a dataset of schema version 2, this exectracer writes version 1; "
        "nothing written (export into a new directory)\n"
    )


def test_a_failed_export_leaves_nothing(dataset: Path, folder: Path, tmp_path: Path) -> None:
    """A trace whose tables do not fit the dataset's schema is refused after it was written to the staging
    directory: nothing of it is left, in place or staged."""
    target = tmp_path / "ds"
    shutil.copytree(dataset, target)
    schema = json.loads((target / SCHEMA_FILE).read_text())
    schema["tables"]["states"]["goroutine_id"] = "INTEGER"
    (target / SCHEMA_FILE).write_text(json.dumps(schema))
    before = sorted(os.path.relpath(p, target) for p in target.rglob("*"))
    result = run(*EXPORT, "parent.xtrace", "-o", target, cwd=folder)
    assert result.returncode == 1 and result.stderr.startswith("exectracer: error: table states of this trace has")
    assert result.stderr.endswith("; nothing written\n") and len(result.stderr.splitlines()) == 1
    assert sorted(os.path.relpath(p, target) for p in target.rglob("*")) == before


def test_a_dataset_is_queried_alone(dataset: Path, folder: Path) -> None:
    result = run(*SQL, dataset, "lock.xtrace", "SELECT 1", cwd=folder)
    assert result.returncode == 2 and f"{dataset} is a Parquet dataset: query it alone" in result.stderr


# -- Apache Spark ----------------------------------------------------------------------------------------------

STATE_TIME = (
    "SELECT trace_id, host, pid, state, count(*) AS intervals, sum(end_ns - start_ns) AS total_ns "
    "FROM states GROUP BY trace_id, host, pid, state"
)
WAITS_BY_FRAME = (
    "SELECT s.trace_id, f.function, f.line, count(*) AS waits, sum(s.end_ns - s.start_ns) AS total_ns "
    "FROM states s JOIN frames f ON f.trace_id = s.trace_id AND f.stack_id = s.stack_id AND f.depth = 0 "
    "WHERE s.state <> 'running' GROUP BY s.trace_id, f.function, f.line"
)


def spark_missing() -> str | None:
    if shutil.which("java") is None:
        return "no Java runtime (java) is installed: Spark cannot run (.ci/system-packages installs one)"
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (it is in the test extra)"
    return None


@pytest.mark.timeout(300)
@pytest.mark.skipif(spark_missing() is not None, reason=spark_missing() or "")
def test_spark_reads_the_dataset_as_duckdb_does(dataset: Path) -> None:
    """Apache Spark, in local mode and with no configuration of ours, reads the dataset's folders as they are:
    the same column types (partition columns included, times as integers) and the same aggregates as DuckDB.
    Spark runs in a process of its own (its JVM's threads would outlive the test in this one)."""
    program = Path(__file__).parent / "programs" / "spark_aggregates.py"
    done = subprocess.run(
        [sys.executable, str(program), str(dataset), STATE_TIME, WAITS_BY_FRAME],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spark = json.loads(done.stdout.strip().splitlines()[-1])
    types = spark["types"]
    assert types["pid"] == "int" and types["host"] == "string", types  # partition columns, from the paths
    assert types["start_ns"] == types["end_ns"] == "bigint" and types["stack_id"] == "bigint", types
    db = read_dataset(str(dataset))
    for query, found in zip((STATE_TIME, WAITS_BY_FRAME), spark["results"], strict=True):
        from_spark = sorted((tuple(row) for row in found), key=repr)
        from_duckdb = rows(db.relation(query))
        assert from_spark == from_duckdb and from_duckdb, query
