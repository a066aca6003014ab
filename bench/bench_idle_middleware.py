"""What an idle TraceMiddleware adds to each request that is not for it, in nanoseconds.

Calls a trivial WSGI application and a trivial ASGI application directly
and through ``exectracer.wsgi.TraceMiddleware`` / ``exectracer.asgi.TraceMiddleware``,
alternating the two, and prints the medians per call and their difference::

    python bench/bench_idle_middleware.py --runs 7

The difference is the middleware's whole cost on a request; divided by a
real request's time (``bench_live.py``) it is the idle overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from exectracer.asgi import TraceMiddleware as AsgiMiddleware
from exectracer.wsgi import TraceMiddleware as WsgiMiddleware

ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/work", "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1"}
SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/work",
    "query_string": b"",
    "headers": [],
    "client": ("127.0.0.1", 1),
}


def wsgi_app(environ: dict, start_response: Callable) -> list[bytes]:
    return [b""]


async def asgi_app(scope: dict, receive: Any, send: Any) -> None:
    return None


def time_wsgi(app: Callable, calls: int) -> float:
    start_response = None
    began = time.perf_counter_ns()
    for _ in range(calls):
        app(ENVIRON, start_response)
    return (time.perf_counter_ns() - began) / calls


def time_asgi(app: Callable, calls: int) -> float:
    async def loop() -> float:
        began = time.perf_counter_ns()
        for _ in range(calls):
            await app(SCOPE, None, None)
        return (time.perf_counter_ns() - began) / calls

    return asyncio.run(loop())


def compare(name: str, timer: Callable, plain: Callable, wrapped: Callable, runs: int, calls: int) -> None:
    timer(plain, calls), timer(wrapped, calls)  # warm-up
    a, b = [], []
    for _ in range(runs):
        a.append(timer(plain, calls))
        b.append(timer(wrapped, calls))
    ma, mb = statistics.median(a), statistics.median(b)
    print(
        f"{name}: application alone {ma:.0f} ns, through the idle middleware {mb:.0f} ns: {mb - ma:.0f} ns per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, medians of {args.runs} alternating runs of {args.calls:,} calls")
    compare("WSGI", time_wsgi, wsgi_app, WsgiMiddleware(wsgi_app), args.runs, args.calls)
    compare("ASGI", time_asgi, asgi_app, AsgiMiddleware(asgi_app), args.runs, args.calls)


if __name__ == "__main__":
    main()
