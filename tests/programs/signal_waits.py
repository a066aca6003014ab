"""Programs that take signals: ``python signal_waits.py SCENARIO [--debug-server]``.

- ``sigwait``: SIGUSR1 blocked, sent to the process, then taken with ``sigwaitinfo``; prints its number.
- ``sigwait-handler``: the same with a Python handler for SIGUSR1 installed first (it must not run).
- ``handler``: a Python handler for SIGUSR1, the signal sent to the process; prints what the handler saw.

With ``--debug-server``, ``exectracer.serve_debug()`` serves first and one client keeps a connection to it open,
so that its server thread and a request thread are running when the signal comes.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time

DEADLINE = 60.0  # seconds


def on_signal(signum: int, frame: object) -> None:
    print(f"handler ran for {signum}", flush=True)


def take_blocked_signal() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    os.kill(os.getpid(), signal.SIGUSR1)
    info = signal.sigwaitinfo([signal.SIGUSR1])
    print(f"sigwaitinfo took {info.si_signo}", flush=True)


def handle_signal() -> None:
    handled: list[int] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(signum))
    os.kill(os.getpid(), signal.SIGUSR1)
    deadline = time.monotonic() + DEADLINE
    while not handled and time.monotonic() < deadline:
        time.sleep(0.001)
    print(f"handled {handled}", flush=True)


def open_debug_connection() -> http.client.HTTPConnection:
    """A debug server and a kept-alive connection to it: its request thread waits for the next request."""
    import exectracer

    server = exectracer.serve_debug(port=0)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
    connection.request("GET", "/not-here")
    response = connection.getresponse()
    response.read()
    print(f"debug server answered {response.status}", flush=True)
    return connection


def main(scenario: str, debug_server: bool) -> None:
    connection = open_debug_connection() if debug_server else None
    if scenario == "sigwait":
        take_blocked_signal()
    elif scenario == "sigwait-handler":
        signal.signal(signal.SIGUSR1, on_signal)
        take_blocked_signal()
    elif scenario == "handler":
        handle_signal()
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    if connection is not None:
        connection.close()


if __name__ == "__main__":
    main(sys.argv[1], "--debug-server" in sys.argv[2:])
