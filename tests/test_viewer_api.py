"""The viewer's server and JSON API, over real HTTP on loopback, on a recorded trace."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse

import numpy as np
import pytest

import exectracer
from exectracer.examples import service
from exectracer.format.events import Kind
from exectracer.web.server import ViewerServer

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("viewer") / "demo.xtrace"
    with exectracer.trace(path):
        service.main(0.8)
        exectracer.log("xss", XSS)
    srv = ViewerServer(exectracer.load(path, strict=True))
    srv.serve_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(
    server: ViewerServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict, bytes]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def api(server: ViewerServer, path: str, **params) -> object:
    status, headers, body = get(server, f"{path}?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def test_serves_on_loopback_with_a_strict_policy(server: ViewerServer) -> None:
    assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    status, headers, _ = get(server, "/api/info")
    assert (
        status == 200
        and "script-src 'self'" in headers["Content-Security-Policy"]
        and headers["X-Content-Type-Options"] == "nosniff"
    )


def test_info_and_lanes(server: ViewerServer) -> None:
    info = api(server, "/api/info")
    trace = server.api.trace
    assert info["events"] == trace.event_count and info["duration_ns"] == trace.duration_ns and info["warnings"] == []
    assert info["states"] == ["running", "runnable", "network", "sync", "sleep", "syscall", "other", "other_estimated"]
    lanes = api(server, "/api/lanes")
    assert [lp["id"] for lp in lanes["loops"]] == [lp.id for lp in trace.loops]
    g = lanes["goroutines"]
    assert len(g["id"]) == len(trace.tasks) + len(trace.threads)
    clients = [
        i
        for i, f in zip(g["id"], g["function"], strict=True)
        if f >= 0 and lanes["functions"][f] == "exectracer.examples.service.client"
    ]
    assert len(clients) == 4
    group = next(
        grp
        for grp in lanes["groups"]
        if grp["function"] >= 0 and lanes["functions"][grp["function"]] == "exectracer.examples.service.client"
    )
    assert sorted(group["ids"]) == sorted(clients) and group["count"] == 4


def client_id(server: ViewerServer) -> int:
    return next(t.id for t in server.api.trace.tasks if t.start_function == "exectracer.examples.service.client")


def test_spans_are_merged_to_the_pixel(server: ViewerServer) -> None:
    g = client_id(server)
    duration = server.api.trace.duration_ns
    lanes = f"g:{g},loop:{server.api.trace.loops[0].id},gc,heap"
    coarse = api(server, "/api/spans", lanes=lanes, start=0, end=duration, width=50)["lanes"]
    fine = api(server, "/api/spans", lanes=lanes, start=0, end=duration, width=5000)["lanes"]
    for key in (f"g:{g}", f"loop:{server.api.trace.loops[0].id}"):
        assert 0 < len(coarse[key]["start"]) <= 2 * 50 + 5
        assert len(fine[key]["start"]) > len(coarse[key]["start"])
        assert coarse[key]["start"] == sorted(coarse[key]["start"])
    exact = server.api.analysis.states
    rows = exact.gi == int(server.api.analysis.goroutines.index_of(np.array([g]))[0])
    assert sum(c for c in coarse[f"g:{g}"]["count"]) == int(rows.sum())  # every interval is drawn, merged or not
    assert set(coarse["gc"]) == {"start", "end", "generation"} and len(coarse["gc"]["start"]) >= 1
    assert len(coarse["heap"]["ts"]) <= 2 * 50 + 2


def test_zoomed_in_spans_are_exact(server: ViewerServer) -> None:
    g = client_id(server)
    detail = api(server, "/api/span", g=g, t=server.api.trace.duration_ns // 2)
    window = api(server, "/api/spans", lanes=f"g:{g}", start=detail["start"], end=detail["end"], width=1000)["lanes"][
        f"g:{g}"
    ]
    assert window["count"] == [1] and window["start"] == [detail["start"]] and window["end"] == [detail["end"]]


def test_blocked_span_has_stack_and_waker(server: ViewerServer) -> None:
    trace = server.api.trace
    s = server.api.analysis.states
    gi = int(server.api.analysis.goroutines.index_of(np.array([client_id(server)]))[0])
    network = next(
        i
        for i in np.flatnonzero((s.gi == gi) & (s.state == 2))
        if trace.stacks[int(s.stack[i])][0].function.endswith("_wait_for_data")
    )
    detail = api(server, "/api/span", g=client_id(server), t=int(s.start[network] - trace.start_ns) + 1)
    assert detail["state"] == "network" and detail["blocked"] is True
    assert detail["stack"][0]["function"] == "asyncio.streams.StreamReader._wait_for_data"
    assert any(f["function"] == "exectracer.examples.service.client" for f in detail["stack"])
    assert detail["waker"]["kind"] in ("io", "task", "callback") and detail["waker"]["at"] == detail["end"]
    assert detail["user_task"] is not None and detail["user_task"]["name"] == "request"
    assert api(server, "/api/span", g=client_id(server), t=-(10**12)) is None
    assert "wait for reply" in detail["regions"]
    related = api(server, "/api/related", g=client_id(server))
    assert related["woken_by"] or related["woke"]


def test_loop_span(server: ViewerServer) -> None:
    trace = server.api.trace
    loop = trace.loops[0].id
    idle = trace.events.ts[(trace.events.kind == Kind.LOOP_IDLE_BEGIN) & (trace.events.g == loop)][5]
    detail = api(server, "/api/span", loop=loop, t=int(idle - trace.start_ns) + 1)
    assert detail["what"] == 2 and detail["label"] == "idle"
    assert api(server, "/api/span", loop=loop, t=-5) is None


def test_range_summary_and_groups(server: ViewerServer) -> None:
    totals = api(server, "/api/range", start=0, end=server.api.trace.duration_ns)
    assert totals["totals"]["running"] > 0 and totals["goroutines"] == len(server.api.analysis.goroutines)
    summary = api(server, "/api/summary")
    assert "goroutines" not in summary and summary["groups"]
    rows = api(server, "/api/goroutines", function="exectracer.examples.service.client", kind="task")
    assert len(rows) == 4 and all(r["time_ns"]["blocked"]["network"] > 0 for r in rows)


def test_groups_carry_the_summarys_labels(server: ViewerServer) -> None:
    groups = {grp["label"]: grp for grp in api(server, "/api/lanes")["groups"]}
    main = groups["MainThread (main program)"]  # the thread that ran the test, there before tracing began
    assert main["kind"] == "thread" and main["function"] == -1 and main["count"] == 1
    assert groups["exectracer.examples.service.client"]["count"] == 4
    (row,) = api(server, "/api/goroutines", function="", kind="thread", role="main program")
    assert row["label"] == "MainThread (main program)" and row["id"] in main["ids"]


def test_profiles_and_pprof_download(server: ViewerServer) -> None:
    prof = api(server, "/api/profile", type="net")
    assert prof["total"] > 0 and prof["tree"]["value"] == prof["total"]
    assert sum(c["value"] for c in prof["tree"]["children"]) == prof["total"]
    assert prof["top"][0]["function"] == "asyncio.streams.StreamReader._wait_for_data"
    half = api(server, "/api/profile", type="net", start=0, end=server.api.trace.duration_ns // 2)
    assert 0 < half["total"] < prof["total"]
    other = api(server, "/api/profile", type="other")  # what no rule could file: listed too, never hidden
    assert other["type"] == "other" and other["tree"]["value"] == other["total"] >= 0
    status, headers, body = get(server, "/api/pprof?type=sync")
    assert (
        status == 200
        and headers["Content-Disposition"] == 'attachment; filename="sync.pb.gz"'
        and body[:2] == b"\x1f\x8b"
    )


def test_mmu_latency_and_logs(server: ViewerServer) -> None:
    mmu = api(server, "/api/mmu", points=12)["curve"]
    windows = [p["window_ns"] for p in mmu]
    assert windows == sorted(windows) and windows[0] == 10_000
    assert [p["utilization"] for p in mmu] == sorted(p["utilization"] for p in mmu)  # longer windows never do worse
    regions = api(server, "/api/latency", what="regions")
    handle = next(r for r in regions if r["name"] == "handle request")
    assert sum(b["count"] for b in handle["buckets"]) == handle["count"]
    slowest = max((i for b in handle["buckets"] for i in b["instances"]), key=lambda i: i["end"] - i["start"])
    assert slowest["end"] - slowest["start"] == handle["max_ns"]
    assert api(server, "/api/latency", what="tasks")
    logs = api(server, "/api/logs", q="xss")
    assert logs["total"] == 1 and logs["records"][0]["message"] == XSS  # JSON carries it as data; the page escapes it
    request_log = api(server, "/api/logs", q="asks for")["records"][0]
    assert request_log["task"] > 0 and request_log["task_name"] == "request"
    assert api(server, "/api/logs", limit=3)["records"].__len__() == 3


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/spans?lanes=g:5&width=0", 400),
        ("/api/spans?lanes=g:5&start=10&end=5", 400),
        ("/api/spans?lanes=g:abc", 400),
        ("/api/spans?lanes=bogus", 400),
        ("/api/spans", 400),
        ("/api/spans?lanes=g:999999", 404),
        ("/api/spans?lanes=loop:77", 404),
        ("/api/span?g=5", 400),
        ("/api/profile?type=disk", 400),
        ("/api/profile?type=net&start=9&end=3", 400),
        ("/api/mmu?points=1", 400),
        ("/api/latency?what=x", 400),
        ("/api/logs?limit=0", 400),
        ("/api/logs?offset=-1", 400),
        ("/api/nothing", 404),
        ("/static/../server.py", 404),
        ("/static/%2e%2e/server.py", 404),
        ("/static/..%2f..%2fcli.py", 404),
        ("/static//etc/passwd", 404),
        ("/static/%00", 404),
        ("/static/" + "a" * 5000, 404),
        ("/" + "a" * 9000, 414),
    ],
)
def test_bad_requests_get_clear_errors(server: ViewerServer, path: str, status: int) -> None:
    got, _headers, body = get(server, path)
    assert got == status, body
    assert "error" in json.loads(body)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8080", "localhost", "LOCALHOST:1", "app.localhost", "[::1]:80", "10.1.2.3"]
)
def test_addresses_and_localhost_are_served(server: ViewerServer, host: str) -> None:
    assert get(server, "/api/info", headers={"Host": host})[0] == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "[", "", ":80"])
def test_other_host_names_are_refused(server: ViewerServer, host: str) -> None:
    """A page on another site whose name was rebound to 127.0.0.1 must not read the trace."""
    for path in ("/api/info", "/", "/static/app.js"):
        status, _headers, body = get(server, path, headers={"Host": host})
        assert status == 403 and "is not served here" in json.loads(body)["error"]


def test_host_names_it_was_told_to_accept_are_served(tmp_path) -> None:
    path = tmp_path / "t.xtrace"
    with exectracer.trace(path):
        pass
    srv = ViewerServer(exectracer.load(path), allowed_hosts=["viewer.internal"])
    srv.serve_in_thread()
    try:
        assert get(srv, "/api/info", headers={"Host": "viewer.internal:9000"})[0] == 200
        assert get(srv, "/api/info", headers={"Host": "other.internal"})[0] == 403
    finally:
        srv.shutdown()
        srv.server_close()


def test_other_methods_and_garbage_do_not_stop_the_server(server: ViewerServer) -> None:
    assert get(server, "/api/info", method="POST")[0] == 405
    host, port = server.server_address[:2]
    for junk in (
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET /api/info HTTP/9.9\r\n\r\n",
        b"GET " + b"x" * 70000 + b"\r\n\r\n",
    ):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(junk)
            sock.recv(1024)
    threads = [threading.Thread(target=get, args=(server, "/api/summary")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert get(server, "/api/info")[0] == 200
