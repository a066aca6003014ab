"""Load generator for bench_live.py: keep-alive HTTP/1.1 GETs from a fixed number of connections.

Runs in its own process (uvloop if installed: the client is not what is
measured). After ``--warmup`` seconds it measures for ``--seconds``:
requests started in the window count, each one's latency is the time from
sending it to the end of its response. With ``--capture N`` it first asks
the server for an N-second trace on another connection and starts the
window 0.1 s later. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse


async def keep_asking(
    host: str, port: int, path: str, start: float, end: float, latencies: list[float], errors: list[str]
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
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {head[:80]!r}")
                await reader.readexactly(_content_length(head))
                if sent >= start:
                    latencies.append(time.perf_counter() - sent)
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()


async def capture(host: str, port: int, seconds: float) -> int:
    """Ask for a trace of ``seconds``; the size of the trace received."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /debug/pprof/trace?seconds={seconds} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the capture was refused: {head[:80]!r}")
    body = await reader.readexactly(_content_length(head))
    writer.close()
    return len(body)


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    raise RuntimeError(f"no Content-Length in {head!r}")


async def main(args: argparse.Namespace) -> dict:
    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port
    latencies: list[float] = []
    errors: list[str] = []
    began = time.perf_counter()
    start = began + args.warmup
    end = start + args.seconds
    loaders = [
        asyncio.create_task(keep_asking(host, port, url.path or "/", start, end, latencies, errors))
        for _ in range(args.concurrency)
    ]
    capture_size = None
    if args.capture:
        await asyncio.sleep(args.warmup - 0.1)
        capturing = asyncio.create_task(capture(host, port, args.capture))
        await asyncio.gather(*loaders)
        capture_size = await capturing
    else:
        await asyncio.gather(*loaders)
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / args.seconds,
        "p50_ms": 1e3 * latencies[len(latencies) // 2],
        "p99_ms": 1e3 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "capture_bytes": capture_size,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
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
    arguments = parser.parse_args()
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    print(json.dumps(run(main(arguments))))
