"""Load generator for bench_live.py: keep-alive HTTP/1.1 GETs from a fixed number of connections.

Runs in its own process (uvloop if installed: the client is not what is
measured). After ``--warmup`` seconds it measures for ``--seconds``:
requests started in the window count, each one's latency is the time from
sending it to the end of its response. With ``--capture N`` it first asks
the server for an N-second trace on another connection and starts the
window 0.1 s later (``--save`` keeps the trace; with ``--repeat``, captures
follow one another until the window ends, the i-th kept as ``SAVE.i``,
counted in ``captures``; ``capture_workers`` is how many worker processes
the first one held); ``--flight PATH`` asks for the flight recorder's
snapshot at the end of the window and keeps it. A response that takes
longer than ``--timeout`` seconds counts as an error (the server stopped
answering). Besides the rates and latencies, ``max_gap_ms`` is the longest
time in the window with no response at all, and ``client_lag_ms`` the
longest this process's own loop was late (a 10 ms sleep's lateness): a
large gap with a small lag is the server's, with a large lag the client's
(starved of CPU). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import urllib.parse


async def keep_asking(
    host: str,
    port: int,
    path: str,
    start: float,
    end: float,
    latencies: list[float],
    errors: list[str],
    timeout: float = 60.0,
    answered: list[float] | None = None,
) -> None:
    """One connection: request after request until ``end``; record the latencies of those sent in [start, end).

    A request that fails (connection closed, not a 200) is counted in
    ``errors``, not in ``latencies``, and the connection is made anew.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    while time.perf_counter() < end:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {head[:80]!r}")
                await asyncio.wait_for(reader.readexactly(_content_length(head)), timeout)
                if answered is not None:
                    answered.append(time.perf_counter())
                if sent >= start:
                    latencies.append(time.perf_counter() - sent)
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        except asyncio.TimeoutError:
            errors.append(f"no answer in {timeout:g} s")
            return
        finally:
            writer.close()


CAPTURED_WORKERS: list[int] = []  # the workers each capture held (X-Exectracer-Workers; 1 without it)


async def capture(host: str, port: int, path: str, save: str | None, timeout: float) -> int:
    """Ask for ``path`` (a trace capture or a flight snapshot); the size of the trace received, kept in ``save``.
    How many workers it held goes into :data:`CAPTURED_WORKERS`."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path} was refused: {head[:80]!r}")
    body = await asyncio.wait_for(reader.readexactly(_content_length(head)), timeout)
    writer.close()
    CAPTURED_WORKERS.append(int(_header(head, b"x-exectracer-workers") or 1))
    if save:
        with open(save, "wb") as out:
            out.write(body)
    return len(body)


async def captures(host: str, port: int, args: argparse.Namespace, end: float) -> tuple[int, int]:
    """One capture of ``args.capture`` seconds, or with ``args.repeat`` one after another until ``end``;
    (the size of the first trace, how many were made)."""
    trace = f"/debug/pprof/trace?seconds={args.capture}"
    first = await capture(host, port, trace, args.save, args.capture + args.timeout)
    count = 1
    while args.repeat and time.perf_counter() < end:
        await capture(host, port, trace, f"{args.save}.{count}" if args.save else None, args.capture + args.timeout)
        count += 1
    return first, count


def _content_length(head: bytes) -> int:
    value = _header(head, b"content-length")
    if value is None:
        raise RuntimeError(f"no Content-Length in {head!r}")
    return int(value)


def _header(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case) in a response's head, if it has one."""
    for line in head.lower().split(b"\r\n"):
        if line.startswith(name + b":"):
            return line.split(b":", 1)[1].strip()
    return None


async def lateness(end: float) -> float:
    """The longest a 10 ms sleep of this loop overslept until ``end``, in seconds."""
    worst = 0.0
    while time.perf_counter() < end:
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - before - 0.01)
    return worst


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] with none of ``times`` in it."""
    inside = sorted(t for t in times if start < t < end)
    edges = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(edges))


async def main(args: argparse.Namespace) -> dict:
    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port
    latencies: list[float] = []
    errors: list[str] = []
    answered: list[float] = []
    began = time.perf_counter()
    start = began + args.warmup
    end = start + args.seconds
    lag = asyncio.create_task(lateness(end))
    loaders = [
        asyncio.create_task(
            keep_asking(host, port, url.path or "/", start, end, latencies, errors, args.timeout, answered)
        )
        for _ in range(args.concurrency)
    ]
    capture_size, count = None, 0
    if args.capture:
        await asyncio.sleep(args.warmup - 0.1)
        capturing = asyncio.create_task(captures(host, port, args, end))
        await asyncio.gather(*loaders)
        capture_size, count = await capturing
    else:
        await asyncio.gather(*loaders)
    if args.flight:
        capture_size = await capture(host, port, "/debug/pprof/flight", args.flight, args.timeout)
    if not latencies:
        raise SystemExit(
            f"no request was answered in the {args.seconds:g} s window"
            f" (the client's loop was up to {1e3 * await lag:.0f} ms late; errors: {errors[:1]})"
        )
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / args.seconds,
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "capture_bytes": capture_size,
        "captures": count,
        "capture_workers": CAPTURED_WORKERS[0] if CAPTURED_WORKERS else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "max_gap_ms": 1e3 * longest_gap(answered, start, end),
        "client_lag_ms": 1e3 * await lag,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the page to ask for, e.g. http://127.0.0.1:8000/work")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--capture", type=float, default=0.0, help="ask for a trace of this many seconds as the window starts"
    )
    parser.add_argument("--save", help="file for the captured trace")
    parser.add_argument("--repeat", action="store_true", help="capture again and again until the window ends")
    parser.add_argument("--flight", help="ask for the flight recorder's snapshot at the end, into this file")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a response may take")
    arguments = parser.parse_args()
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    print(json.dumps(run(main(arguments))))
