"""The debug endpoints through ``serve_debug``, on real loopback sockets, and ``exectracer capture``.

``serve_debug`` runs in the test process, so captures trace this process:
its worker threads are the "service".
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import exectracer
from exectracer.format.chunks import ChunkKind, split_chunks
from exectracer.record.recorder import MAX_CHUNK_EVENTS

from support.live import get
from support.waiting import DEADLINE, wait_for

TRACE = "/debug/pprof/trace"
FLIGHT = "/debug/pprof/flight"


@pytest.fixture
def workers():
    """Three threads doing short regions of work until the test ends."""
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            with exectracer.region("work"):
                sum(range(2000))
            time.sleep(0.001)

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    yield threads
    stop.set()
    for thread in threads:
        thread.join()


@pytest.fixture
def serve():
    """Starts debug servers on free loopback ports and closes them at the end."""
    servers = []

    def start(**settings) -> exectracer.live.debug_server.DebugServer:
        servers.append(exectracer.serve_debug(port=0, **settings))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
    assert not exectracer.is_tracing()


def test_capture_while_serving(serve, workers):
    server = serve()
    assert server.host == "127.0.0.1" and server.url == f"http://127.0.0.1:{server.port}"

    asked = time.perf_counter_ns()
    reply = get(f"{server.url}{TRACE}?seconds=0.5")
    answered = time.perf_counter_ns()

    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "application/octet-stream"
    assert re.fullmatch(
        rf'attachment; filename="trace-{os.getpid()}-\d{{8}}T\d{{6}}\.\d{{6}}Z\.xtrace"',
        reply.headers["content-disposition"],
    )
    assert reply.headers["x-exectracer-seconds"] == "0.5" and "x-exectracer-capped" not in reply.headers
    assert int(reply.headers["content-length"]) == len(reply.body)
    trace = exectracer.load(reply.body, strict=True)
    assert 0.5e9 <= trace.duration_ns <= answered - asked  # the half second asked for, within the request
    threads = {t.id: t.name for t in trace.threads}
    assert {"worker-0", "worker-1", "worker-2"} <= set(threads.values())
    assert not [name for name in threads.values() if name.startswith("exectracer")]  # the server's threads are ours
    work_g = set(trace.regions.g[trace.regions.name == "work"].tolist())
    assert {threads[g] for g in work_g} == {"worker-0", "worker-1", "worker-2"}


def test_one_capture_at_a_time(serve, workers, tmp_path):
    server = serve()
    first = {}
    capture = threading.Thread(target=lambda: first.update(reply=get(f"{server.url}{TRACE}?seconds=2")))
    capture.start()
    wait_for(exectracer.is_tracing, "the first capture")

    second = get(f"{server.url}{TRACE}?seconds=0.1")  # asked while the first one runs
    capture.join()

    assert second.status == 409 and "a trace capture is already running" in second.text
    assert first["reply"].status == 200
    exectracer.load(first["reply"].body, strict=True)
    with exectracer.trace(tmp_path / "mine.xtrace"):
        other = get(f"{server.url}{TRACE}?seconds=0.1")
        assert exectracer.is_tracing()  # the refused capture left the running trace alone
    assert other.status == 409 and "tracing is already running" in other.text
    assert get(f"{server.url}{TRACE}?seconds=0.05").status == 200  # free again


@pytest.mark.parametrize(
    "query, message",
    [
        ("seconds=-1", "seconds must be a positive number, not '-1'"),
        ("seconds=0", "seconds must be a positive number"),
        ("seconds=abc", "seconds must be a number, not 'abc'"),
        ("seconds=", "seconds must be a number"),
        ("seconds=nan", "positive number"),
        ("seconds=inf", "positive number"),
        ("seconds=1&seconds=2", "give seconds once"),
        ("&".join(f"p{i}=1" for i in range(20)), "too many query parameters"),
    ],
)
def test_bad_parameters_get_400(serve, query, message):
    reply = get(f"{serve().url}{TRACE}?{query}")
    assert reply.status == 400
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.text.startswith("400 Bad Request: ") and message in reply.text
    assert not exectracer.is_tracing()


def test_long_captures_are_capped_and_the_default_is_one_second(serve):
    server = serve(max_seconds=0.3)
    began = time.perf_counter()
    capped = get(f"{server.url}{TRACE}?seconds=1e9")
    took = time.perf_counter() - began
    default = get(f"{serve().url}{TRACE}")

    assert capped.status == 200 and 0.3 <= took < DEADLINE  # 0.3 s, not 1e9 (the client gives up after DEADLINE s)
    assert capped.headers["x-exectracer-seconds"] == "0.3" and "maximum" in capped.headers["x-exectracer-capped"]
    assert 0.3e9 <= exectracer.load(capped.body, strict=True).duration_ns <= took * 1e9
    assert default.status == 200 and default.headers["x-exectracer-seconds"] == "1.0"
    assert exectracer.load(default.body, strict=True).duration_ns >= 1e9


def test_captures_make_few_chunks_unless_told_otherwise(serve):
    default = exectracer.load(get(f"{serve().url}{TRACE}?seconds=0.05").body, strict=True)
    told = exectracer.load(get(f"{serve(options={'flush_interval': 0.5}).url}{TRACE}?seconds=0.05").body, strict=True)

    assert {k: default.metadata["options"][k] for k in ("flush_interval", "heap_interval", "chunk_events")} == {
        "flush_interval": 5.0,
        "heap_interval": 5.0,
        "chunk_events": MAX_CHUNK_EVENTS,
    }
    assert (
        told.metadata["options"]["flush_interval"] == 0.5
        and told.metadata["options"]["chunk_events"] == MAX_CHUNK_EVENTS
    )


def test_a_capture_makes_its_chunks_once_it_ends(serve):
    """300 000 events in a capture's window: one EVENTS chunk, made after it (chunks of 262 144 made three)."""
    server = serve()
    # the events take about 0.1 s here: a capture ten times as long, longer if they did not fit (a busy machine)
    for seconds in (1, 4, 16):
        replies: list = []

        def ask(seconds: int = seconds, replies: list = replies) -> None:
            replies.append(get(f"{server.url}{TRACE}?seconds={seconds}"))

        asking = threading.Thread(target=ask)
        asking.start()
        wait_for(exectracer.is_tracing, "the capture")
        for _ in range(150_000):  # two events each
            with exectracer.region("many"):
                pass
        all_in = exectracer.is_tracing()
        asking.join()
        if all_in:
            break

    (reply,) = replies
    events_chunks = [kind for kind, _ in split_chunks(reply.body) if kind == ChunkKind.EVENTS]
    assert exectracer.load(reply.body, strict=True).event_count >= 300_000
    assert len(events_chunks) == 1


def test_token_and_client_allow_list(serve):
    url = serve(token="s3cret").url + TRACE + "?seconds=0.05"
    missing, wrong, right = get(url), get(url, token="guess"), get(url, token="s3cret")
    lower = get(url, headers={"Authorization": "bearer s3cret"})

    assert missing.status == wrong.status == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="exectracer"'
    assert "Authorization: Bearer <token>" in wrong.text
    assert right.status == lower.status == 200
    refused = get(serve(allow=["10.0.0.0/8", "::1"], token="s3cret").url + TRACE, token="s3cret")
    assert refused.status == 403 and "client address 127.0.0.1 is not allowed" in refused.text
    assert get(serve(allow=["127.0.0.0/8"]).url + TRACE + "?seconds=0.05").status == 200
    with pytest.raises(ValueError):
        exectracer.serve_debug(port=0, allow=["not an address"])


def test_without_a_token_only_addresses_localhost_and_listed_hosts_are_answered(serve):
    """A page whose name was rebound to 127.0.0.1 sends its own name as Host: without a token, refused."""
    url = serve(hosts=["svc.internal"]).url + TRACE + "?seconds=0.05"
    for host in ("127.0.0.1", "localhost:6060", "svc.internal:8000", "[::1]"):
        assert get(url, headers={"Host": host}).status == 200, host
    rebound = get(url, headers={"Host": "evil.example:6060"})
    assert rebound.status == 403 and "is not accepted without a token" in rebound.text
    with_token = serve(token="s3cret").url + TRACE + "?seconds=0.05"
    assert get(with_token, token="s3cret", headers={"Host": "evil.example"}).status == 200


def test_methods_unknown_paths_and_malformed_requests(serve, capfd):
    server = serve()
    post = get(server.url + TRACE, method="POST")
    assert post.status == 405 and post.headers["allow"] == "GET"
    assert get(server.url + "/debug/pprof/").status == 404
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(1000), b""))  # until the server closes
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b"\r\n\r\n400 Bad request syntax ('NONSENSE').\n")
    assert "Traceback" not in capfd.readouterr().err
    assert not exectracer.is_tracing()


def test_flight_endpoint(serve, workers):
    server = serve()
    off = get(server.url + FLIGHT)
    assert off.status == 404 and "no flight recorder is running" in off.text
    assert get(serve(flight_path=None).url + FLIGHT).status == 404

    with exectracer.FlightRecorder(max_bytes=4 << 20, min_age=5):
        time.sleep(0.3)
        busy = get(server.url + TRACE + "?seconds=0.1")
        snapshot = get(server.url + FLIGHT)

    assert busy.status == 409 and "flight recorder" in busy.text
    assert snapshot.status == 200
    assert re.fullmatch(
        rf'attachment; filename="flight-{os.getpid()}-.*\.xtrace"', snapshot.headers["content-disposition"]
    )
    trace = exectracer.load(snapshot.body, strict=True)
    assert {"worker-0", "worker-1", "worker-2"} <= {t.name for t in trace.threads}
    assert trace.duration_ns >= 0.3e9


def test_serve_debug_warns_off_loopback_without_a_token():
    with pytest.warns(RuntimeWarning, match="without a token"):
        exectracer.serve_debug(host="0.0.0.0", port=0).close()


def run_capture(*args: str, env: dict | None = None, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "exectracer", "capture", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_capture_command(serve, workers, tmp_path):
    server = serve(token="s3cret")
    host_port = f"127.0.0.1:{server.port}"

    done = run_capture(
        host_port, "--seconds", "0.3", "-o", "out.xtrace", env={"EXECTRACER_TOKEN": "s3cret"}, cwd=tmp_path
    )
    named = run_capture(server.url + TRACE + "?seconds=9", "--seconds", "0.2", "--token", "s3cret", cwd=tmp_path)
    refused = run_capture(host_port, "--seconds", "0.1", "--token", "guess", cwd=tmp_path)
    no_flight = run_capture(server.url, "--flight", "--token", "s3cret", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    summary = r"out\.xtrace: [\d,]+ events over \d+\.\d\d s, \d+ threads, \d+ tasks, nothing lost \([\d.]+ kB\)\n"
    assert re.fullmatch(summary, done.stdout)
    assert "exectracer view out.xtrace" in done.stderr
    trace = exectracer.load(tmp_path / "out.xtrace", strict=True)
    assert trace.duration_ns >= 0.3e9
    assert {"worker-0", "worker-1", "worker-2"} <= {t.name for t in trace.threads}
    assert named.returncode == 0, named.stderr
    (saved,) = tmp_path.glob("trace-*.xtrace")  # the name the server suggested
    assert named.stdout.startswith(f"{saved.name}: ")
    assert 0.2e9 <= exectracer.load(saved, strict=True).duration_ns < 9e9  # --seconds won over the URL's
    assert refused.returncode == 1 and "answered 401 Unauthorized" in refused.stderr
    assert no_flight.returncode == 1 and "404 Not Found: no flight recorder" in no_flight.stderr
    server.close()
    gone = run_capture(host_port, "--seconds", "0.1", cwd=tmp_path)
    assert gone.returncode == 1 and "cannot fetch" in gone.stderr and not list(tmp_path.glob("*.part"))


def test_capture_writes_nothing_when_the_answer_is_no_trace(tmp_path):
    """A proxy's error page sent with status 200 (or any other body): an error, and no file on disk."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotATrace(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>502 Bad Gateway</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotATrace)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_capture(
            f"127.0.0.1:{server.server_address[1]}", "--seconds", "0.1", "-o", "out.xtrace", cwd=tmp_path
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert "the service sent something that is not a trace" in result.stderr and "nothing written" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_the_recording_side_imports_only_the_standard_library():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import exectracer, exectracer.asgi, exectracer.wsgi\n"
        "exectracer.serve_debug, exectracer.FlightRecorder\n"
        "import exectracer.live.capture, exectracer.live.endpoint, exectracer.live.flight\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(added - set(sys.stdlib_module_names) - {'exectracer'}))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
