"""One capture of every worker of a multi-process service: gunicorn (sync, gthread, UvicornWorker) and
``uvicorn --workers``, real servers on loopback under load (``tests/programs/worker_service.py``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

import exectracer
from exectracer.live import rendezvous

from support.live import ClientThreads, get
from support.waiting import wait_for

PROGRAMS = os.path.join(os.path.dirname(__file__), "programs")
TRACE = "/debug/pprof/trace"
WORKERS = 2
SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "worker_service:wsgi_app"],
    "gunicorn-gthread": ["-m", "gunicorn", "--threads", "4", "worker_service:wsgi_app"],
    # the master loads the application (and sets the endpoints up) before it listens and forks the workers
    "gunicorn-preload": ["-m", "gunicorn", "--preload", "--threads", "4", "worker_service:wsgi_app"],
    "gunicorn-uvicorn": ["-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "worker_service:asgi_app"],
    "uvicorn": ["-m", "uvicorn", "--lifespan", "off", "--log-level", "warning", "worker_service:asgi_app"],
}


class Service:
    """A running server of ``WORKERS`` (or more) worker processes: its URL, master and registered workers."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc, self.url = proc, url

    def directory(self) -> str | None:
        base = rendezvous.base_directory()
        found = [d for d in os.listdir(base) if d.startswith(f"service-{self.proc.pid}-")] if base else []
        return os.path.join(base, found[0]) if len(found) == 1 else None

    def workers(self) -> set[int]:
        """The pids of the workers registered now."""
        directory = self.directory()
        return {pid for pid, _ in rendezvous.sockets_in(directory)} if directory else set()


@contextlib.contextmanager
def running(kind: str, workers: int = WORKERS, killing: bool = False, **env: str) -> Iterator[Service]:
    """A server of ``kind`` on a free loopback port, stopped at the end (its output checked for tracebacks, its
    workers' sockets for removal; ``killing``: the test kills a worker, which leaves its socket)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = list(SERVERS[kind])
    if argv[1] == "gunicorn":
        argv += ["-w", str(workers), "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
    else:
        argv += ["--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([PROGRAMS, os.environ.get("PYTHONPATH", "")]), **env}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, *argv], stdout=err, stderr=err, env=environment, cwd=PROGRAMS)
        service = Service(proc, f"http://127.0.0.1:{port}")
        try:
            wait_for(lambda: len(service.workers()) >= workers or proc.poll() is not None, f"{kind}'s workers")
            assert proc.poll() is None, f"{kind} ended"
            yield service
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            finally:
                proc.kill()
            err.seek(0)
            output = err.read()
        assert "Traceback" not in output, output
        directory = service.directory()
        # uvicorn re-raises the SIGTERM it got with the default action: its workers die without exit handlers
        assert directory is None or killing or "uvicorn" in kind, "the workers' sockets are left at exit"
        if directory is not None:  # what is left is removed by the next worker that registers
            rendezvous.sweep(os.path.dirname(directory))
        assert service.directory() is None, "the sockets of a service that ended are left after a sweep"


class Load(ClientThreads):
    """Threads asking ``url`` on a fresh connection each time, so that every worker gets some."""

    def __init__(self, url: str, concurrency: int = 4) -> None:
        self.pids: list[int] = []
        super().__init__(url, concurrency)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = get(self.url + "/", timeout=30)
                self.pids.append(int(reply.text.split()[0]))
            except (OSError, ValueError) as exc:
                self.failures.append(repr(exc))
                time.sleep(0.01)


def handler_pids(trace: exectracer.Trace) -> set[int | None]:
    return {trace.pid_of(g) for g in trace.regions.g[trace.regions.name == "handler"]}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_one_request_captures_every_worker(kind):
    with running(kind) as service, Load(service.url) as load:
        workers = service.workers()
        wait_for(lambda: workers <= set(load.pids), "a response from every worker")
        reply = get(f"{service.url}{TRACE}?seconds=2")
        assert not load.failures, load.failures[:3]

    assert reply.status == 200, reply.text
    assert reply.headers["x-exectracer-workers"] == str(WORKERS) and "x-exectracer-missing" not in reply.headers
    trace = exectracer.load(reply.body, strict=True)
    pids = {p.pid for p in trace.processes}
    assert pids == workers
    answered = trace.metadata["service_capture"]["answered_by"]
    assert answered == trace.processes[0].pid and trace.metadata["service_capture"]["missing"] == []
    # every worker served requests during the capture; a sync worker is held by the capture it answers
    busy = workers - {answered} if kind == "gunicorn-sync" else workers
    assert busy <= handler_pids(trace)


def test_process_self_captures_the_worker_that_answered():
    with running("uvicorn") as service, Load(service.url) as load:
        wait_for(lambda: load.pids, "a first response")
        reply = get(f"{service.url}{TRACE}?seconds=1&process=self")
        bad = get(f"{service.url}{TRACE}?seconds=1&process=other")

    assert reply.status == 200, reply.text
    assert "x-exectracer-workers" not in reply.headers
    trace = exectracer.load(reply.body, strict=True)
    assert len(trace.processes) == 1 and trace.processes[0].pid in service.workers() | set(load.pids)
    assert "service_capture" not in trace.metadata
    assert bad.status == 400 and "process must be one of all, self" in bad.text


def test_exectracer_capture_gets_the_whole_service(tmp_path):
    with running("gunicorn-uvicorn") as service, Load(service.url):
        workers = service.workers()
        out = tmp_path / "service.xtrace"
        done = subprocess.run(
            [sys.executable, "-m", "exectracer", "capture", service.url, "--seconds", "1", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert {p.pid for p in exectracer.load(out, strict=True).processes} == workers
    assert f"{len(workers)} processes, " in done.stdout and "missing worker" not in done.stdout


def test_flight_snapshot_of_every_worker():
    with running("gunicorn-gthread", FLIGHT="1") as service, Load(service.url) as load:
        workers = service.workers()
        wait_for(lambda: workers <= set(load.pids), "a response from every worker")
        reply = get(f"{service.url}/debug/pprof/flight")

    assert reply.status == 200, reply.text
    trace = exectracer.load(reply.body, strict=True)
    assert {p.pid for p in trace.processes} == workers
    assert workers <= handler_pids(trace)


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def test_a_worker_killed_during_the_capture_is_named_and_the_others_kept():
    # gthread keeps the connection: the capture goes to the worker that answered the first request
    with running("gunicorn-gthread", workers=3, killing=True) as service:
        workers = service.workers()
        conn = socket.create_connection(("127.0.0.1", int(service.url.rsplit(":", 1)[1])), timeout=120)
        answering = int(_ask(conn, "/").split()[0])
        victim, survivor = sorted(workers - {answering})
        idle = _threads(victim)
        result: list[str] = []
        asking = threading.Thread(target=lambda: result.append(_ask(conn, f"{TRACE}?seconds=4", raw=True)))
        asking.start()
        # the victim has taken the request: its answering thread and its recording's threads run
        wait_for(lambda: _threads(victim) >= idle + 2, "the sibling capturing")
        os.kill(victim, signal.SIGKILL)
        asking.join()
        conn.close()
        replaced = wait_for(lambda: service.workers() - workers, "gunicorn's new worker registered")

    head, _, body = result[0].partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), head
    assert f"X-Exectracer-Missing: pid {victim}: " in head and "X-Exectracer-Workers: 2" in head
    trace = exectracer.load(body.encode("latin-1"), strict=True)
    assert {p.pid for p in trace.processes} == {answering, survivor}
    (missing,) = trace.metadata["service_capture"]["missing"]
    assert missing["pid"] == victim and "died" in missing["reason"]
    assert replaced and not replaced & workers


def _ask(conn: socket.socket, target: str, raw: bool = False) -> str:
    """One keep-alive request on ``conn``: the body (or, ``raw``, the whole response as latin-1)."""
    conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += conn.recv(65536)
    return (head + b"\r\n\r\n" + body).decode("latin-1") if raw else body.decode()


def test_a_stale_socket_of_a_dead_worker_is_ignored_and_removed():
    with running("uvicorn") as service, Load(service.url) as load:
        wait_for(lambda: load.pids, "a first response")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        stale = os.path.join(service.directory(), f"{int(dead.stdout)}{rendezvous.SUFFIX}")
        with socket.socket(socket.AF_UNIX) as left:
            left.bind(stale)  # bound, never listening: as a worker killed before it could remove it
        reply = get(f"{service.url}{TRACE}?seconds=1")
        workers = service.workers()

    assert reply.status == 200, reply.text
    assert "x-exectracer-missing" not in reply.headers
    assert {p.pid for p in exectracer.load(reply.body, strict=True).processes} == workers
    assert not os.path.exists(stale)


def test_only_peers_of_the_same_user_are_trusted():
    """SO_PEERCRED on real sockets: a UNIX socket pair is ours; a TCP connection's peer is unknown, not trusted."""
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert rendezvous.peer_uid(left) == os.getuid() and rendezvous.trusted(right)
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client, server.accept()[0] as accepted:
            assert rendezvous.peer_uid(client) is None and not rendezvous.trusted(accepted)


def test_the_rendezvous_directory_is_private(tmp_path):
    private = tmp_path / "made"
    assert rendezvous.private_directory(str(private))
    assert (os.stat(private).st_mode & 0o777) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    assert not rendezvous.private_directory(str(shared))


def test_a_worker_busy_with_its_own_capture_is_named(tmp_path):
    with running("gunicorn-gthread") as service:
        port = int(service.url.rsplit(":", 1)[1])
        first = socket.create_connection(("127.0.0.1", port), timeout=120)
        busy = int(_ask(first, "/").split()[0])

        def other_worker() -> socket.socket | None:
            conn = socket.create_connection(("127.0.0.1", port), timeout=120)
            if int(_ask(conn, "/").split()[0]) != busy:
                return conn
            conn.close()
            return None

        second = wait_for(other_worker, "a connection to the other worker")
        idle = _threads(busy)
        own: list[str] = []
        asking = threading.Thread(target=lambda: own.append(_ask(first, f"{TRACE}?seconds=3&process=self", raw=True)))
        asking.start()
        wait_for(lambda: _threads(busy) >= idle + 2, "the first worker capturing")
        reply = _ask(second, f"{TRACE}?seconds=0.5", raw=True)
        asking.join()
        first.close()
        second.close()

    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), head
    assert f"X-Exectracer-Missing: pid {busy}: a trace capture is already running" in head
    trace = exectracer.load(body.encode("latin-1"), strict=True)
    assert busy not in {p.pid for p in trace.processes} and len(trace.processes) == 1
    assert own[0].startswith("HTTP/1.1 200")
    saved = tmp_path / "service.xtrace"
    saved.write_bytes(body.encode("latin-1"))
    text = subprocess.run([sys.executable, "-m", "exectracer", "summary", str(saved)], capture_output=True, text=True)
    assert f"MISSING WORKER: pid {busy}: a trace capture is already running" in text.stdout, text.stderr
    from exectracer.cli import _describe_trace  # what exectracer capture prints about what it fetched

    assert f"missing worker: pid {busy}: a trace capture is already running" in _describe_trace("t", saved.read_bytes())
    document = subprocess.run(
        [sys.executable, "-m", "exectracer", "summary", "--json", str(saved)], capture_output=True, text=True
    )
    (missing,) = json.loads(document.stdout)["trace"]["missing_workers"]
    assert missing["pid"] == busy


def test_a_worker_that_does_not_answer_in_time_is_named():
    with running("uvicorn", WORKER_TIMEOUT="2") as service, Load(service.url) as load:
        workers = service.workers()
        wait_for(lambda: workers <= set(load.pids), "a response from every worker")
        stopped = min(workers)
        os.kill(stopped, signal.SIGSTOP)  # it accepts no connection and answers nothing until SIGCONT
        try:
            began = time.monotonic()
            reply = get(f"{service.url}{TRACE}?seconds=1", timeout=120)
            took = time.monotonic() - began
        finally:
            os.kill(stopped, signal.SIGCONT)

    assert reply.status == 200, reply.text
    assert reply.headers["x-exectracer-missing"] == f"pid {stopped}: did not answer in time"
    assert {p.pid for p in exectracer.load(reply.body, strict=True).processes} == workers - {stopped}
    assert took >= 1 + 2  # it waited the window and the timeout for the stopped worker
