"""The viewer's Query page on the server (``/api/sql``), over real HTTP on loopback, on a recorded trace: results,
DuckDB's one-line errors as HTTP 400, nothing read or written beyond the trace, row and time limits."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

import exectracer
from exectracer.examples import service
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
