"""The viewer's Query page on the server (``/api/sql``), over real HTTP on loopback, on a recorded trace and on its
Parquet dataset: results, DuckDB's one-line errors as HTTP 400, nothing read or written beyond the trace or the
dataset, row and time limits."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import pytest

import exectracer
from exectracer.examples import service
from exectracer.sql.dataset import export
from exectracer.web.dataset_api import DatasetAPI
from exectracer.web.query import MAX_ROWS, QueryAPI
from exectracer.web.server import ViewerServer


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> exectracer.Trace:
    path = tmp_path_factory.mktemp("viewer-query") / "demo.xtrace"
    with exectracer.trace(path):
        service.main(0.5)
    return exectracer.load(path, strict=True)


@pytest.fixture(scope="module")
def server(trace: exectracer.Trace):
    srv = ViewerServer(trace)
    srv.serve_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def sql(server: ViewerServer, query: str) -> tuple[int, dict]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", f"/api/sql?{urllib.parse.urlencode({'q': query})}")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body


def test_a_query(server: ViewerServer, trace: exectracer.Trace) -> None:
    status, body = sql(server, "SELECT state, count(*) AS n FROM states GROUP BY state ORDER BY state")
    assert status == 200, body
    assert body["columns"] == ["state", "n"] and body["types"] == ["VARCHAR", "BIGINT"] and not body["truncated"]
    assert sum(n for _, n in body["rows"]) == len(trace.analysis.states)
    status, body = sql(server, "SELECT argv, ppid, 1.5 AS d, 0.0 / 0.0 AS nan FROM processes")
    assert status == 200, body
    assert body["rows"] == [[trace.metadata["argv"], trace.metadata["ppid"], 1.5, None]]


def test_rows_are_limited(server: ViewerServer, trace: exectracer.Trace) -> None:
    assert trace.event_count > MAX_ROWS
    status, body = sql(server, "SELECT * FROM events")
    assert status == 200 and len(body["rows"]) == MAX_ROWS and body["truncated"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "no query"),
        ("SELEC 1", "Parser Error: syntax error at or near"),
        ("SELECT * FROM stats", "Catalog Error: Table with name stats does not exist!"),
        ("CREATE TABLE t AS SELECT 1", "Permission Error"),
        ("SELECT 1; DROP VIEW states", "Permission Error"),
        ("SET enable_external_access = true", "Permission Error"),
        ("INSTALL httpfs", "Permission Error"),
    ],
)
def test_bad_queries(server: ViewerServer, query: str, error: str) -> None:
    status, body = sql(server, query)
    assert status == 400 and body["error"].startswith(error) and "\n" not in body["error"], body


def test_no_file_is_read_or_written(server: ViewerServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    out = tmp_path / "out.csv"
    for query in (
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM '{secret}'",
        f"SELECT * FROM read_text('{secret}')",
        f"COPY (SELECT 1) TO '{out}'",
        f"ATTACH '{tmp_path / 'db.duckdb'}' AS other",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
    ):
        status, body = sql(server, query)
        assert status == 400 and "Permission Error" in body["error"], (query, body)
        assert "hunter2" not in json.dumps(body)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv"]
    status, _ = sql(server, "SELECT count(*) FROM goroutines")  # the database still answers
    assert status == 200


def test_a_long_query_is_stopped(trace: exectracer.Trace) -> None:
    query = QueryAPI(trace, max_seconds=0.2)
    with pytest.raises(ValueError, match=r"ran longer than 0.2 s and was stopped"):
        query.run("SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b")
    assert query.run("SELECT 1 AS one")["rows"] == [[1]]


# -- a Parquet dataset ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(trace: exectracer.Trace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trace exported as a Parquet dataset, in a folder with a file beside it that must stay unread."""
    folder = tmp_path_factory.mktemp("viewer-dataset")
    (folder / "secret.csv").write_text("password\nhunter2\n")
    list(export([(trace, trace.analysis, "demo.xtrace")], str(folder / "ds")))
    return folder / "ds"


@pytest.fixture(scope="module")
def dataset_server(dataset: Path):
    srv = ViewerServer(DatasetAPI(str(dataset)))
    srv.serve_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(server: ViewerServer, path: str) -> tuple[int, dict]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body


def test_a_dataset_is_queried(dataset_server: ViewerServer, trace: exectracer.Trace) -> None:
    """The viewer of a dataset answers the Query page's queries from its files, and says it is a dataset."""
    status, body = sql(dataset_server, "SELECT trace, host, pid, count(*) AS n FROM states GROUP BY ALL")
    assert status == 200, body
    assert body["rows"] == [
        ["demo.xtrace", trace.metadata["hostname"], trace.metadata["pid"], len(trace.analysis.states)]
    ]
    status, info = get(dataset_server, "/api/info")
    assert status == 200 and info["dataset"] is True and info["name"] == "ds" and "states" in info["tables"]
    assert get(dataset_server, "/api/lanes")[0] == 404  # no trace: no timeline


def test_a_dataset_reads_no_other_file(dataset_server: ViewerServer, dataset: Path) -> None:
    """Only the dataset's own files can be read: not a file beside it (by its path or through ``..``), not the
    system's; nothing is written, inside the dataset or out of it."""
    secret = dataset.parent / "secret.csv"
    before = sorted(str(p.relative_to(dataset.parent)) for p in dataset.parent.rglob("*"))
    for query in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM read_text('{dataset}/../secret.csv')",
        f"SELECT * FROM glob('{dataset.parent}/*')",
        f"COPY (SELECT 1) TO '{dataset}/out.csv'",
        f"COPY (SELECT 1) TO '{dataset.parent}/out.csv'",
        f"ATTACH '{dataset}/db.duckdb' AS other",
        "SET allowed_directories = ['/']",
        "SET enable_external_access = true",
    ):
        status, body = sql(dataset_server, query)
        assert status == 400 and "Permission Error" in body["error"], (query, body)
        assert "hunter2" not in json.dumps(body) and "root:" not in json.dumps(body)
    assert sorted(str(p.relative_to(dataset.parent)) for p in dataset.parent.rglob("*")) == before
    status, body = sql(dataset_server, f"SELECT count(*) > 0 FROM read_parquet('{dataset}/table=states/*/*/*.parquet')")
    assert status == 200 and body["rows"] == [[True]], body  # the dataset's own files, by their paths


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("SELEC 1", "Parser Error: syntax error at or near"),
        ("SELECT * FROM stats", "Catalog Error: Table with name stats does not exist!"),
        ("SELECT nope FROM states", 'Binder Error: Referenced column "nope" not found'),
    ],
)
def test_bad_queries_over_a_dataset(dataset_server: ViewerServer, query: str, error: str) -> None:
    status, body = sql(dataset_server, query)
    assert status == 400 and body["error"].startswith(error) and "\n" not in body["error"], body


def test_the_command_views_a_dataset(dataset: Path, tmp_path: Path) -> None:
    """``exectracer view DIR`` serves a dataset's Query page; a directory that is not a readable dataset gets one
    line and exit status 1."""
    viewer = subprocess.Popen(
        [sys.executable, "-m", "exectracer", "view", str(dataset), "--no-browser"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = viewer.stderr.readline() if viewer.stderr else ""
        url = re.search(r"http://\S+/", line)
        assert url, line
        with urllib.request.urlopen(f"{url.group(0)}api/sql?{urllib.parse.urlencode({'q': 'SELECT 1 AS one'})}") as r:
            assert json.loads(r.read())["rows"] == [[1]]
    finally:
        viewer.terminate()
        viewer.wait(timeout=60)
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    later = broken / "table=states" / "host=h" / "pid=1" / "part-later-0.parquet"
    later.parent.mkdir(parents=True)
    duckdb.sql(f"COPY (SELECT 1 AS x) TO '{later}' (FORMAT parquet, KV_METADATA {{exectracer_schema_version: '2'}})")
    done = subprocess.run(
        [sys.executable, "-m", "exectracer", "view", str(broken), "--no-browser"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        done.returncode == 1
        and done.stderr.startswith("exectracer: error: ")
        and "mixes schema versions" in done.stderr
    )
    assert len(done.stderr.splitlines()) == 1, done.stderr
