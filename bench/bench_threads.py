"""Recording overhead on a threaded workload: socket I/O, lock handoffs and CPU work.

Eight worker threads each send requests to a loopback echo server (one
server thread on a selector) while holding a shared ``threading.Lock``
(created after tracing starts, so the handoffs are recorded), wait for the
echo, then do some pure-Python work (``--work``). Runs the workload as
fresh processes (started through ``warm_allocator.py``, like
``bench_overhead.py``'s), alternating untraced and traced (default
options), and prints the medians and the traced/untraced wall-time ratio.
Each run's ratio moves by about 0.05 on a shared machine, so the default is
15 runs of each (a median of 7 moved from 1.01 to 1.11 between sets)::

    python bench/bench_threads.py --runs 15

``--workload`` runs the workload once in this process (``--trace PATH`` to
record it).
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys
import threading
from pathlib import Path

from bench_overhead import compare_processes

WORKERS = 8
MESSAGE = b"x" * 64


def cpu(n: int) -> int:
    """Pure-Python work holding the GIL."""
    return sum(i * i for i in range(n))


def serve(listener: socket.socket, clients: int) -> None:
    """Echo every connection on one selector until all ``clients`` have closed."""
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        closed = 0
        while closed < clients:
            for key, _ in sel.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    sel.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                data = conn.recv(4096)
                if data:
                    conn.sendall(data)
                else:
                    sel.unregister(conn)
                    conn.close()
                    closed += 1


def worker(port: int, lock: threading.Lock, shared: dict, rounds: int, work: int) -> None:
    """Send a request under the shared lock, wait for the echo, compute."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(rounds):
            with lock:  # like a client library that serializes its sends
                shared["requests"] += 1
                sock.sendall(MESSAGE)
            got = 0
            while got < len(MESSAGE):
                got += len(sock.recv(4096))
            cpu(work)


def workload(rounds: int, work: int) -> None:
    """The whole workload: a server thread and WORKERS client threads."""
    lock = threading.Lock()
    shared = {"requests": 0}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=serve, args=(listener, WORKERS), name="server")
        server.start()
        port = listener.getsockname()[1]
        threads = [
            threading.Thread(target=worker, args=(port, lock, shared, rounds, work), name=f"worker-{i}")
            for i in range(WORKERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        server.join()
    assert shared["requests"] == WORKERS * rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each kind (at least 5)")
    parser.add_argument("--rounds", type=int, default=2500, help="requests per worker")
    parser.add_argument("--work", type=int, default=2000, help="CPU work per request (about 35 ns per unit on 3.11)")
    parser.add_argument("--workload", action="store_true", help="run the workload once in this process")
    parser.add_argument("--trace", help="with --workload: record into this trace file")
    args = parser.parse_args()
    if args.workload:
        if args.trace:
            import exectracer

            with exectracer.trace(args.trace):
                workload(args.rounds, args.work)
        else:
            workload(args.rounds, args.work)
        return
    script = Path(__file__).resolve()
    work = ["--workload", "--rounds", str(args.rounds), "--work", str(args.work)]
    p, t, events, size = compare_processes(work, script, args.runs)
    print(
        f"python {sys.version.split()[0]}, {WORKERS} workers x {args.rounds} requests (work {args.work}),"
        f" {args.runs} runs of each, alternating"
    )
    print(f"untraced median {p:.3f} s, traced median {t:.3f} s, ratio {t / p:.3f}")
    print(f"trace: {events} events, {size} bytes")


if __name__ == "__main__":
    main()
