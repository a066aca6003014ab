"""Small web services with the debug endpoints installed, one per integration.

Each serves ``/`` (a short text) and ``/work`` (a little work inside an
``exectracer.region("view")``, answered as JSON; the Starlette ones also
``/nap``: a millisecond's ``asyncio.sleep``, then the same), plus ``/debug/pprof/trace``
and ``/debug/pprof/flight`` through its framework's integration:

* ``starlette``: Starlette under uvicorn on asyncio's loop and h11;
* ``starlette-standard``: the same under uvicorn's default settings, which
  with ``uvicorn[standard]`` installed run uvloop and httptools;
* ``flask``: Flask under waitress (a threaded WSGI server);
* ``aiohttp``: an aiohttp application with ``add_debug_routes``.

The Starlette application also runs under a server of several workers
(``service_app``: ``uvicorn --factory --workers 4
exectracer.examples.web:service_app``), where a capture holds every worker.

Run one with ``python -m exectracer.examples.web starlette --port 8000``
and try ``curl -o out.xtrace 'http://127.0.0.1:8000/debug/pprof/trace?seconds=2'``.
It prints ``listening on URL`` once its socket accepts connections. The
frameworks are not dependencies of exectracer: install the one you run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
from collections.abc import Callable
from typing import Any

import exectracer

FRAMEWORKS = ("starlette", "starlette-standard", "flask", "aiohttp")


def work() -> bytes:
    """What ``/work`` does: a little Python work, as JSON."""
    with exectracer.region("view"):
        numbers = [i * i for i in range(200)]
        return json.dumps({"count": len(numbers), "total": sum(numbers)}).encode()


def starlette_app(settings: dict[str, Any] | None) -> Any:
    """The Starlette application, behind the ASGI middleware with ``settings`` (None: without it)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def index(request: Any) -> Response:
        return PlainTextResponse("hello\n")

    async def work_view(request: Any) -> Response:
        await asyncio.sleep(0)  # a step boundary, as any awaiting handler has
        return Response(work(), media_type="application/json")

    async def nap_view(request: Any) -> Response:
        await asyncio.sleep(0.001)
        return Response(work(), media_type="application/json")

    app: Any = Starlette(routes=[Route("/", index), Route("/work", work_view), Route("/nap", nap_view)])
    if settings is not None:
        from exectracer.asgi import TraceMiddleware

        app = TraceMiddleware(app, **settings)
    return app


def service_app() -> Any:
    """The Starlette application for a server of several workers:
    ``uvicorn --factory --workers 4 exectracer.examples.web:service_app`` (gunicorn: ``-k
    uvicorn.workers.UvicornWorker 'exectracer.examples.web:service_app()'``). With the endpoints, unless
    ``EXECTRACER_EXAMPLE_NO_MIDDLEWARE=1``."""
    return starlette_app(None if os.environ.get("EXECTRACER_EXAMPLE_NO_MIDDLEWARE") == "1" else {})


def serve_starlette(sock: socket.socket, settings: dict[str, Any] | None, threads: int, standard: bool = False) -> None:
    """Starlette under uvicorn: on asyncio's loop and h11, or (``standard``) uvicorn's defaults (uvloop, httptools)."""
    import uvicorn

    servers: dict[str, Any] = {} if standard else {"loop": "asyncio", "http": "h11"}
    config = uvicorn.Config(starlette_app(settings), **servers, lifespan="off", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve_flask(sock: socket.socket, settings: dict[str, Any] | None, threads: int) -> None:
    import waitress
    from flask import Flask, Response

    flask_app = Flask(__name__)
    flask_app.add_url_rule("/", "index", lambda: Response("hello\n", mimetype="text/plain"))
    flask_app.add_url_rule("/work", "work", lambda: Response(work(), mimetype="application/json"))
    app: Any = flask_app
    if settings is not None:
        from exectracer.wsgi import TraceMiddleware

        app = TraceMiddleware(flask_app, **settings)
    waitress.serve(app, sockets=[sock], threads=threads, _quiet=True)


def serve_aiohttp(sock: socket.socket, settings: dict[str, Any] | None, threads: int) -> None:
    from aiohttp import web

    async def index(request: web.Request) -> web.Response:
        return web.Response(text="hello\n")

    async def work_view(request: web.Request) -> web.Response:
        await asyncio.sleep(0)
        return web.Response(body=work(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/work", work_view)
    if settings is not None:
        from exectracer.aiohttp import add_debug_routes

        add_debug_routes(app, **settings)
    web.run_app(app, sock=sock, print=None, access_log=None)


SERVERS: dict[str, Callable[[socket.socket, dict[str, Any] | None, int], None]] = {
    "starlette": serve_starlette,
    "starlette-standard": functools.partial(serve_starlette, standard=True),
    "flask": serve_flask,
    "aiohttp": serve_aiohttp,
}


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose connections send small writes at once.

    The protocol number matters: asyncio sets TCP_NODELAY on a connection
    only if its socket says IPPROTO_TCP, and without it a response written
    in two parts waits for the client's delayed ACK (about 40 ms).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it (waitress)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--no-middleware", action="store_true", help="serve the application alone (no debug endpoints)")
    parser.add_argument("--token", help="token the debug endpoints ask for")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="longest capture")
    parser.add_argument("--flight", action="store_true", help="run a flight recorder")
    parser.add_argument("--flight-min-age", type=float, default=10.0)
    parser.add_argument("--flight-max-bytes", type=int, default=10 << 20)
    parser.add_argument("--sample-interval", type=float, help="recording option for captures and the flight recorder")
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads (flask)")
    args = parser.parse_args(argv)
    options = {} if args.sample_interval is None else {"sample_interval": args.sample_interval}
    settings = (
        None if args.no_middleware else {"token": args.token, "max_seconds": args.max_seconds, "options": options}
    )
    if args.flight:
        exectracer.FlightRecorder(args.flight_max_bytes, args.flight_min_age, **options).start()
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{f'[{host}]' if ':' in host else host}:{port}", flush=True)
    SERVERS[args.framework](sock, settings, args.threads)


if __name__ == "__main__":
    main()
