"""SQL over traces (docs/sql.md): the tables against the state model, every documented example on real traces,
``exectracer sql`` and its errors, read-only databases, and DuckDB left out of everything else."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.analysis.states import STATE_NAMES
from exectracer.sql.database import TABLE_NAMES, Database, QueryError

from programs import annotated_requests, talk
from support.tracebuilder import TraceBuilder

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sql.md"
CLI = [sys.executable, "-m", "exectracer", "sql"]
SITUATIONS = {
    "proxy": talk.proxy_scenario,
    "lock": talk.lock_scenario,
    "collections": talk.gc_scenario,
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The talk's three situations on asyncio, and the annotated requests, each recorded into its own trace."""
    folder = tmp_path_factory.mktemp("sql")
    out = {}
    for name, scenario in SITUATIONS.items():
        out[name] = folder / f"{name}.xtrace"
        with exectracer.trace(out[name]):
            talk.run(functools.partial(scenario, talk.Measured()), "asyncio")
    out["annotated"] = folder / "annotated.xtrace"
    with exectracer.trace(out["annotated"]):
        annotated_requests.main()
    return out


@pytest.fixture(scope="module")
def traces(paths: dict[str, Path]) -> dict[str, exectracer.Trace]:
    return {name: exectracer.load(path, strict=True) for name, path in paths.items()}


@pytest.fixture(scope="module")
def db(traces: dict[str, exectracer.Trace]) -> Database:
    """All four traces in one database, each named as its file's stem (``proxy``, ``lock``, ...)."""
    return Database([(t, t.analysis, name) for name, t in traces.items()])


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# -- the tables ------------------------------------------------------------------------------------------------


def documented_tables() -> dict[str, list[tuple[str, str]]]:
    """Each table docs/sql.md lists (a ``### name`` heading and its table): its columns and their types."""
    tables: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in DOCS.read_text().split("## Examples")[0].splitlines():
        heading = re.fullmatch(r"### (\w+)", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
        row = re.fullmatch(r"\| `(\w+)` \| ([\w\[\]]+) \|.*", line)
        if row and current is not None:
            current.append((row.group(1), row.group(2)))
    return tables


def test_tables_are_as_documented(db: Database) -> None:
    documented = documented_tables()
    assert list(documented) == list(TABLE_NAMES)
    for name, columns in documented.items():
        described = [(c, t) for c, t, *_ in db.relation(f"DESCRIBE {name}").fetchall()]
        assert described == columns, name
    issue = {  # the columns issue 28 names, first and in its order
        "processes": "pid ppid host argv start_ns end_ns",
        "goroutines": "id pid kind name start_function parent_id created_ns ended_ns",
        "states": "goroutine_id pid state start_ns end_ns stack_id waker_id",
        "frames": "stack_id depth function file line",
        "gc": "start_ns end_ns generation",
        "heap": "ts_ns blocks rss",
        "user_tasks": "id name parent_id start_ns end_ns goroutine_id",
        "user_regions": "name goroutine_id start_ns end_ns task_id",
        "logs": "ts_ns goroutine_id category message task_id",
    }
    for name, columns in issue.items():
        assert [c for c, _ in documented[name]][: len(columns.split())] == columns.split()
    assert all(columns[-1] == ("trace", "VARCHAR") for columns in documented.values())


def test_states_are_the_state_model(traces: dict[str, exectracer.Trace]) -> None:
    """Every interval of the state model, as it is, in ns from the trace's start; nothing else."""
    for trace in traces.values():
        s = trace.analysis.states
        df = trace.sql("SELECT goroutine_id, state, start_ns, end_ns, stack_id, pid FROM states")
        assert len(df) == len(s) > 0
        order = np.lexsort((df.start_ns.to_numpy(), df.goroutine_id.to_numpy()))
        df = df.iloc[order]
        ids = trace.analysis.goroutines.ids[s.gi]
        expected = np.lexsort((s.start, ids))
        assert (df.goroutine_id.to_numpy() == ids[expected]).all()
        assert (df.start_ns.to_numpy() == s.start[expected] - trace.start_ns).all()
        assert (df.end_ns.to_numpy() == s.end[expected] - trace.start_ns).all()
        assert list(df.state) == [STATE_NAMES[x] for x in s.state[expected].tolist()]
        stacks = df.stack_id.to_numpy(dtype=float, na_value=-1)
        assert (stacks == np.where(s.stack[expected] >= 0, s.stack[expected], -1)).all()
        assert set(df.pid) == {trace.metadata["pid"]}


def test_every_table_of_several_traces(db: Database, traces: dict[str, exectracer.Trace]) -> None:
    """Each row names its trace: per trace, each table holds that trace's rows."""
    for name, trace in traces.items():
        counts = dict(db.relation(f"SELECT 'events', count(*) FROM events WHERE trace = '{name}'").fetchall())
        assert counts["events"] == trace.event_count
        goroutines = db.relation(f"SELECT count(*) FROM goroutines WHERE trace = '{name}'").fetchall()
        assert goroutines == [(len(trace.threads) + len(trace.tasks),)]
        [(pid,)] = db.relation(f"SELECT pid FROM processes WHERE trace = '{name}'").fetchall()
        assert pid == trace.metadata["pid"]
    [(frames,)] = db.relation("SELECT count(*) FROM frames WHERE trace = 'lock'").fetchall()
    assert frames == sum(len(f) for f in traces["lock"].stacks.values())


def test_a_trace_with_nothing_in_it(tmp_path: Path) -> None:
    """No events, no pid in the metadata: every table answers, empty; the process's pid is NULL."""
    builder = TraceBuilder()
    del builder.metadata["pid"]
    trace = exectracer.load(builder.write(tmp_path / "nothing.xtrace", stop_ns=10))
    for name in TABLE_NAMES:
        assert len(trace.sql(f"SELECT * FROM {name}")) == (name == "processes"), name
    assert trace.sql("SELECT pid IS NULL AS unknown, end_ns FROM processes").to_dict("records") == [
        {"unknown": True, "end_ns": 10}
    ]


# -- the documented examples -----------------------------------------------------------------------------------


def examples() -> dict[str, str]:
    """The example queries of docs/sql.md, by the id of their first line (``-- example: ID``)."""
    blocks = re.findall(r"```sql\n(-- example: .*?)```", DOCS.read_text(), re.S)
    return {re.match(r"-- example: ([\w-]+)", b).group(1): b for b in blocks}


def rows_of(df, **where: str) -> list:
    return [r for r in df.itertuples() if all(getattr(r, k) == v for k, v in where.items())]


def check_traces(df) -> None:
    assert sorted(df.trace) == ["annotated", "collections", "lock", "proxy"]
    assert (df.seconds > 0).all() and df.pid.notna().all()


def check_time_by_state(df) -> None:
    assert set(df.state) <= {*STATE_NAMES.values()} - {"ended"}
    for trace in ("proxy", "lock", "collections", "annotated"):
        assert {"running", "runnable"} <= set(df[df.trace == trace].state)
    assert rows_of(df, trace="lock", state="sync") and rows_of(df, trace="proxy", state="network")


def check_goroutines_by_function(df) -> None:
    by = dict(zip(df.started_by, df.goroutines, strict=True))
    assert by["programs.talk.busy"] == 3
    assert by["programs.talk.proxy_handler.<locals>.handle_client"] == talk.CLIENTS


def check_long_network_waits(df) -> None:
    assert len(df) == talk.CLIENTS and set(df.trace) == {"proxy"}
    assert set(df.start_function) == {"programs.talk.proxy_handler.<locals>.handle_client"}
    assert set(df.handler_line) == {line_of("answer = await read_backend(backend_reader)")}
    assert (df.waited_s >= talk.SLOW_BACKEND * 0.9).all()


def line_of(text: str) -> int:
    """The line of ``programs/talk.py`` that holds ``text``."""
    (line,) = [i for i, source in enumerate(Path(talk.__file__).read_text().splitlines(), 1) if text in source]
    return line


def check_blocked_after_clients_left(df) -> None:
    assert len(df) == talk.CLIENTS and df.goroutine_id.is_unique
    assert (df.ms_blocked_after_clients_left > 0).all()


def check_network_waits_by_line(df) -> None:
    assert df.function.iloc[0] == "asyncio.streams.StreamReader._wait_for_data"


def check_lock_wait_vs_wall(df) -> None:
    (row,) = df.itertuples()
    assert row.trace == "lock" and row.lock_wait_s > 0
    assert row.ratio > 1  # the threads wait in turn: more waiting than wall time


def check_runnable_during_collections(df) -> None:
    busy = rows_of(df, trace="collections", start_function="programs.talk.busy")
    assert len(busy) == 1 and busy[0].goroutines == 3 and busy[0].runnable_ms_during_gc > 0
    assert df.runnable_ms_during_gc.iloc[0] == busy[0].runnable_ms_during_gc


def check_scheduler_latency(df) -> None:
    busy = rows_of(df, start_function="programs.talk.busy")
    assert len(busy) == 1 and 0 < busy[0].p50_us <= busy[0].p99_us <= busy[0].max_us


def check_who_wakes_whom(df) -> None:
    workers = rows_of(df, waker="concurrent.futures.thread._worker", woken="concurrent.futures.thread._worker")
    assert any(r.woken_from == "sync" for r in workers)  # a worker that released the lock another waited on


def check_collections(df) -> None:
    full = rows_of(df, trace="collections", generation=2)
    assert len(full) == 1 and full[0].collections >= talk.FULL_COLLECTIONS and full[0].longest_ms > 0


def check_heap(df) -> None:
    assert set(df.trace) >= {"collections"} and (df.peak_blocks > 0).all()
    assert (df.peak_rss_mb.dropna() > 0).all()


def check_regions(df) -> None:
    assert list(df.name) == list(annotated_requests.REGIONS)
    assert (df.regions == annotated_requests.REQUESTS).all() and (df.user_tasks == annotated_requests.REQUESTS).all()
    assert (df.mean_ms > 0).all()


def check_logs_in_tasks(df) -> None:
    assert len(df) == annotated_requests.REQUESTS and set(df.task) == {"request"} and set(df.category) == {"http"}
    assert sorted(df.message) == [f"GET /item/{i}" for i in range(annotated_requests.REQUESTS)]
    assert (df.ms_into_task >= 0).all()


def check_events(df) -> None:
    assert {"TASK_STEP", "TASK_READY"} <= set(df.event) and (df.events > 0).all()


CHECKS: dict[str, Callable] = {
    "traces": check_traces,
    "time-by-state": check_time_by_state,
    "goroutines-by-function": check_goroutines_by_function,
    "long-network-waits": check_long_network_waits,
    "blocked-after-clients-left": check_blocked_after_clients_left,
    "network-waits-by-line": check_network_waits_by_line,
    "lock-wait-vs-wall": check_lock_wait_vs_wall,
    "runnable-during-collections": check_runnable_during_collections,
    "scheduler-latency": check_scheduler_latency,
    "who-wakes-whom": check_who_wakes_whom,
    "collections": check_collections,
    "heap": check_heap,
    "regions": check_regions,
    "logs-in-tasks": check_logs_in_tasks,
    "events": check_events,
}


def test_every_example_is_checked() -> None:
    assert len(examples()) >= 10
    assert set(examples()) == set(CHECKS)


@pytest.mark.parametrize("example", list(CHECKS))
def test_example(db: Database, example: str) -> None:
    df = db.df(examples()[example])
    assert len(df) > 0, example
    CHECKS[example](df)


# -- the command -----------------------------------------------------------------------------------------------


def test_command_formats(paths: dict[str, Path]) -> None:
    query = "SELECT trace, state, count(*) AS n FROM states GROUP BY ALL ORDER BY trace, state"
    files = [paths["proxy"].name, paths["lock"].name]
    cwd = paths["proxy"].parent
    table = run(*files, query, cwd=cwd)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["trace", "state", "n"] and set(lines[1]) == {"-", " "}
    by_csv = run(*files, query, "--format", "csv", cwd=cwd)
    assert by_csv.returncode == 0, by_csv.stderr
    rows = list(csv.DictReader(io.StringIO(by_csv.stdout)))
    assert {r["trace"] for r in rows} == set(files)
    assert lines[-1] == f"({len(rows)} rows)"
    by_json = run(*files, query, "--format", "json", cwd=cwd)
    assert by_json.returncode == 0, by_json.stderr
    assert json.loads(by_json.stdout) == [{**r, "n": int(r["n"])} for r in rows]
    process = run(files[0], "SELECT ppid, argv FROM processes", "--format", "json", cwd=cwd)
    (row,) = json.loads(process.stdout)
    assert row["ppid"] == os.getppid() and isinstance(row["argv"], list)  # recorded in this process


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELEC 1", "Parser Error: syntax error at or near"),
        ("SELECT * FROM stats", 'Catalog Error: Table with name stats does not exist! Did you mean "states"?'),
        ("SELECT nope FROM gc", 'Binder Error: Referenced column "nope" not found'),
        ("SELECT 'a'::INTEGER", "Conversion Error: Could not convert string 'a' to INT32"),
        ("", "no SQL statement in the query"),
        (" ; ", "no SQL statement in the query"),
    ],
)
def test_command_bad_query(paths: dict[str, Path], query: str, message: str) -> None:
    result = run(str(paths["proxy"]), query, cwd=paths["proxy"].parent)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"exectracer: error: {message}") and result.stderr.count("\n") == 1, result.stderr


def test_command_bad_input(tmp_path: Path) -> None:
    missing = run("missing.xtrace", "SELECT 1", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "missing.xtrace" in missing.stderr
    (tmp_path / "not.xtrace").write_bytes(b"not a trace at all")
    bad = run("not.xtrace", "SELECT 1", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "not.xtrace" in bad.stderr
    usage = run("--format", "xml", "a.xtrace", "SELECT 1", cwd=tmp_path)
    assert usage.returncode == 2 and "xml" in usage.stderr
    no_query = run(cwd=tmp_path)
    assert no_query.returncode == 2


def test_python_errors(traces: dict[str, exectracer.Trace]) -> None:
    with pytest.raises(QueryError, match=r"^Catalog Error: Table with name nope does not exist!") as caught:
        traces["proxy"].sql("SELECT * FROM nope")
    assert "\n" not in str(caught.value)
    assert list(traces["proxy"].sql("CREATE TEMP TABLE mine AS SELECT 1 AS x").columns) == ["Count"]


# -- read only ---------------------------------------------------------------------------------------------------


def test_read_only(traces: dict[str, exectracer.Trace], tmp_path: Path) -> None:
    trace = traces["proxy"]
    db = Database([(trace, trace.analysis, "proxy")], read_only=True)
    assert db.df("SELECT count(*) AS n FROM goroutines").n[0] > 0
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    refused = {
        f"SELECT * FROM read_csv('{secret}')": "Permission Error",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'": "Permission Error",
        "CREATE TABLE t AS SELECT 1": "Permission Error",
        "DROP VIEW states": "Permission Error",
        "SELECT 1; DROP VIEW gc": "Permission Error",
        "SET enable_external_access = true": "Permission Error",
        f"ATTACH '{tmp_path / 'db.duckdb'}'": "Permission Error",
    }
    for query, error in refused.items():
        with pytest.raises(QueryError, match=error):
            db.df(query)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "db.duckdb").exists()
    assert db.df("SELECT count(*) AS n FROM states").n[0] > 0  # still there


# -- DuckDB only where a query runs --------------------------------------------------------------------------------


def test_duckdb_only_when_a_query_runs(paths: dict[str, Path]) -> None:
    """Importing exectracer, recording, loading and analysing a trace, and the command line import neither DuckDB
    nor pandas; a query does."""
    code = (
        "import sys, exectracer, exectracer.cli, exectracer.reader\n"
        "with exectracer.trace(sys.argv[2]):\n"
        "    pass\n"
        "t = exectracer.load(sys.argv[1]); t.analysis.summary()\n"
        "before = sorted(m for m in ('duckdb', 'pandas') if m in sys.modules)\n"
        "t.sql('SELECT 1')\n"
        "print(before, 'duckdb' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(paths["proxy"]), str(paths["proxy"].parent / "empty.xtrace")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split("\n")[0] == "[] True"


def test_user_tasks_are_the_traces(traces: dict[str, exectracer.Trace], tmp_path: Path) -> None:
    """The user_tasks table, found with NumPy, holds ``TraceData.user_tasks`` as they are: on a recorded trace,
    and on one with a task named but never begun, one begun twice and one begun but never named."""
    from exectracer.format.events import Kind

    b = TraceBuilder()
    b.event(Kind.USER_TASK_NAME, 1, 7, b.string("named only")).event(Kind.USER_TASK_PARENT, 1, 7, 0)
    b.event(Kind.USER_TASK_NAME, 2, 8, b.string("twice")).event(Kind.USER_TASK_PARENT, 2, 8, 7)
    b.event(Kind.USER_TASK_BEGIN, 3, 1, 8).event(Kind.USER_TASK_BEGIN, 4, 2, 8).event(Kind.USER_TASK_END, 5, 1, 8)
    b.event(Kind.USER_TASK_BEGIN, 6, 1, 9)
    built = exectracer.load(b.write(tmp_path / "tasks.xtrace", stop_ns=10))
    for trace in [traces["annotated"], built]:
        query = "SELECT id, name, parent_id, start_ns, end_ns, goroutine_id FROM user_tasks ORDER BY id"
        got = Database([(trace, trace.analysis, "t")]).relation(query).fetchall()
        t0 = trace.start_ns
        expected = [
            (t.id, t.name, t.parent_id, *(None if v is None else v - t0 for v in (t.begin_ns, t.end_ns)), t.g)
            for t in trace.user_tasks
        ]
        assert got == expected and expected
    assert [t.name for t in built.user_tasks] == ["named only", "twice", "?"]
