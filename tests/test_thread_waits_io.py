"""Threads waiting on sockets, select, SSL, sleeps and subprocesses, with real threads and loopback sockets."""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

import exectracer
from exectracer.format.events import Category, Kind
from exectracer.record import io_waits

from support.waiting import wait_until_blocked

pytestmark = pytest.mark.recorder


def g_of(rec, name):
    (thread,) = [t for t in rec.trace.threads if t.name == name]
    return thread.id


def connected_pair():
    """A TCP connection over loopback: (client, server side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


def network_wait_of(record, target, name, delay):
    """Run ``target(client)`` in a thread called ``name``, the peer sending ``delay`` s after it blocked there.

    That thread's one network wait, checked to last from before the send until after it.
    """
    client, server = connected_pair()
    sent = {}

    def run():
        t = threading.Thread(target=target, args=(client,), name=name)
        t.start()
        wait_until_blocked(t, target.__name__)
        time.sleep(delay)
        sent["ns"] = time.perf_counter_ns()
        server.sendall(b"late")
        t.join()
        sent["joined"] = time.perf_counter_ns()

    with client, server:
        rec = record(run)
    (wait,) = [w for w in rec.thread_waits(Category.NETWORK) if w[0] == g_of(rec, name)]
    assert wait[1] <= sent["ns"] - delay * 1e9 and sent["ns"] <= wait[2] <= sent["joined"]
    return wait


def here():
    """The caller's line number."""
    return sys._getframe(1).f_lineno


def test_recv_waits_are_network_at_the_calling_line(record):
    where = {}

    def reader(sock):
        where["line"] = here() + 1
        assert sock.recv(100) == b"late"

    wait = network_wait_of(record, reader, "reader", 0.2)
    _, start, end, stack, _ = wait
    assert 0.2e9 <= end - start  # and it spans the send (checked by network_wait_of)
    assert stack[0].function.endswith(".reader") and stack[0].line == where["line"]


def test_waits_go_to_the_thread_that_waited(record):
    delays = {"t-short": 0.08, "t-long": 0.25, "t-file": 0.16}

    sent, returned = {}, {}
    send_line = []

    def reader(sock, name):
        if name == "t-file":
            with sock.makefile("rb") as f:
                f.readline()
        else:
            sock.recv(100)
        returned[name] = time.perf_counter_ns()

    pairs = {name: connected_pair() for name in delays}

    def run():
        threads = [threading.Thread(target=reader, args=(pairs[n][0], n), name=n) for n in delays]
        for t in threads:
            t.start()
        for t in threads:
            wait_until_blocked(t, "reader")
        t0 = time.perf_counter()
        for name in sorted(delays, key=delays.get):
            time.sleep(max(0.0, t0 + delays[name] - time.perf_counter()))
            sent[name] = time.perf_counter_ns()
            send_line.append(here() + 1)
            pairs[name][1].sendall(b"x\n")
        for t in threads:
            t.join()

    rec = record(run)
    for client, server in pairs.values():
        client.close()
        server.close()
    network = rec.thread_waits(Category.NETWORK)
    for name, delay in delays.items():
        (wait,) = [w for w in network if w[0] == g_of(rec, name)]
        # blocked before the first send, woken by its own data: after it was sent, before its recv returned
        assert wait[1] <= sent[name] - delay * 1e9 and sent[name] <= wait[2] <= returned[name], name
    # the main thread only sent (a loopback send may take some microseconds, more on a busy machine)
    assert all(w[3][0].line == send_line[0] for w in network if w[0] == g_of(rec, "MainThread"))


def test_sleep_is_a_sleep_wait(record):
    where = {}

    def run():
        where["before"] = time.perf_counter_ns()
        where["line"] = here() + 1
        time.sleep(0.1)
        where["after"] = time.perf_counter_ns()

    rec = record(run)
    (wait,) = [w for w in rec.thread_waits(Category.SLEEP) if w[0] == g_of(rec, "MainThread")]
    assert 0.09e9 < wait[2] - wait[1] and where["before"] <= wait[1] < wait[2] <= where["after"]
    assert wait[3][0].line == where["line"]


def test_subprocess_run_is_one_syscall_wait_not_nested_ones(record):
    def run():
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.1)"], check=True, capture_output=True)

    rec = record(run)
    syscall = rec.thread_waits(Category.SYSCALL)  # waits() also checks that none nests in another
    long = [w for w in syscall if w[2] - w[1] > 0.09e9]
    assert len(long) == 1
    stack = long[0][3]
    assert stack[0].function == "subprocess.run"  # communicate() was called there
    assert any(f.file == __file__ and f.function.endswith(".run") for f in stack)
    assert not rec.thread_waits(Category.NETWORK)  # communicate's selector is part of its wait


@pytest.mark.parametrize("how", ["selector", "select.select"])
def test_select_in_a_thread_is_a_network_wait(record, how):
    where = {}

    def waiter(sock):
        if how == "selector":
            with selectors.DefaultSelector() as sel:
                sel.register(sock, selectors.EVENT_READ)
                where["line"] = here() + 1
                assert sel.select(timeout=5)
        else:
            where["line"] = here() + 1
            assert select.select([sock], [], [], 5)[0]

    wait = network_wait_of(record, waiter, "waiter", 0.15)
    assert 0.15e9 <= wait[2] - wait[1]  # and it spans the send (checked by network_wait_of)
    assert wait[3][0].function.endswith(".waiter") and wait[3][0].line == where["line"]


def test_ready_recvs_and_asyncio_sockets_are_not_waits(record):
    async def echo(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    async def talk():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        for i in range(50):
            writer.write(b"%d\n" % i)
            await reader.readline()
            await asyncio.sleep(0.002)  # the loop idles in its selector
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    client, server = connected_pair()
    server.sendall(b"ready" * 20)
    time.sleep(0.05)  # let it arrive

    where = {}
    took = []  # how long each ready recv took, as seen from here

    def run():
        where["line"] = here() + 3
        for _ in range(20):
            began = time.perf_counter_ns()
            assert client.recv(5) == b"ready"
            took.append(time.perf_counter_ns() - began)
        asyncio.run(talk())

    with client, server:
        rec = record(run)
    network = rec.thread_waits(Category.NETWORK)
    # asyncio's calls are never waits; a ready recv is not either, but one that gives up the GIL may get it back
    # late from a busy thread (the tracer's writer, say), or lose the CPU on a busy machine: only a recv that took
    # the block threshold (20 µs) may show as a wait
    assert all(stack[0].line == where["line"] for _, _, _, stack, _ in network), [
        stack[0] for _, _, _, stack, _ in network
    ]
    assert len(network) <= sum(t >= 20_000 for t in took), (len(network), sorted(took)[-3:])
    assert len(rec.of(Kind.LOOP_IDLE_BEGIN)) >= 50


def test_exceptions_propagate_unchanged_and_the_wait_is_recorded(record):
    caught = []

    client, server = connected_pair()

    def run():
        client.settimeout(0.15)
        caught.append(time.perf_counter_ns())
        try:
            client.recv(10)
        except TimeoutError as exc:
            caught.append(exc)
        caught.append(time.perf_counter_ns())

    with client, server:
        rec = record(run)
    before, exc, after = caught
    assert type(exc) is socket.timeout and str(exc) == "timed out"
    assert exc.__traceback__.tb_frame.f_code is run.__code__  # caught where it was raised from, through the wrapper
    (wait,) = rec.thread_waits(Category.NETWORK)
    assert 0.12e9 < wait[2] - wait[1] and before <= wait[1] < wait[2] <= after  # the recv's timeout, and no more


def test_ssl_reads_are_one_wait_at_the_callers_line(record, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    where = {}
    main = threading.current_thread()

    def serve(sock):
        with server_ctx.wrap_socket(sock, server_side=True) as tls:
            wait_until_blocked(main, "recv")
            time.sleep(0.2)
            where["sent"] = time.perf_counter_ns()
            tls.sendall(b"late")
            tls.recv(1)

    def run():
        client, server = connected_pair()
        t = threading.Thread(target=serve, args=(server,), name="server")
        t.start()
        with client_ctx.wrap_socket(client, server_hostname="localhost") as tls:
            where["line"] = here() + 1
            assert tls.recv(100) == b"late"
            tls.sendall(b"!")
        t.join()

    rec = record(run)
    main_waits = [w for w in rec.thread_waits(Category.NETWORK) if w[0] == g_of(rec, "MainThread")]
    (late,) = [w for w in main_waits if w[1] <= where["sent"] <= w[2]]  # the wait for the server's data
    assert late[2] - late[1] > 0.2e9
    assert late[3][0].line == where["line"] and late[3][0].function.endswith(".run")


def patched_attributes():
    """(owner, name) of every attribute io_waits may replace."""
    owners = [
        (socket.socket, io_waits.SOCKET_METHODS),
        (socket, ("getaddrinfo",)),
        (ssl.SSLSocket, io_waits.SSL_METHODS),
        (select, ("select",)),
        (time, ("sleep",)),
        (subprocess.Popen, ("wait", "communicate")),
        (os, io_waits.OS_FUNCTIONS),
        (signal, io_waits.SIGNAL_FUNCTIONS),
        (fcntl, io_waits.FCNTL_FUNCTIONS),
    ]
    owners += [
        (getattr(selectors, name), ("select",)) for name in io_waits.SELECTOR_CLASSES if hasattr(selectors, name)
    ]
    return [(owner, name) for owner, names in owners for name in names if hasattr(owner, name)]


def test_stop_restores_every_patched_attribute(tmp_path):
    attrs = patched_attributes()
    assert len(attrs) > 30
    before = [(getattr(owner, name), vars(owner).get(name)) for owner, name in attrs]
    with exectracer.trace(tmp_path / "t.xtrace"):
        during = [getattr(owner, name) for owner, name in attrs]
    after = [(getattr(owner, name), vars(owner).get(name)) for owner, name in attrs]
    assert all(a[0] is b[0] and a[1] is b[1] for a, b in zip(after, before, strict=True))
    assert all(d is not b[0] for d, b in zip(during, before, strict=True))
    assert "recv" not in vars(socket.socket)  # inherited from _socket.socket again


def test_calls_on_non_blocking_sockets_are_never_waits(record) -> None:
    client, server = connected_pair()
    blocking_lines = []

    def run():
        server.sendall(b"x" * 10)
        blocking_lines.append(here() - 1)
        time.sleep(0.05)
        client.recv(5)  # data ready
        blocking_lines.append(here() - 1)
        client.setblocking(False)
        client.recv(5)  # data ready
        with pytest.raises(BlockingIOError):
            client.recv(5)  # nothing left: it would block, so it returns at once

    with client, server:
        rec = record(run, block_threshold=0)  # every timed call counts, however short
    waits = [w for w in rec.thread_waits(Category.NETWORK) if w[3] and w[3][0].file == __file__]
    assert [w[3][0].line for w in waits] == blocking_lines
