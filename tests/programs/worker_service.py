"""A small service for multi-process servers, with the debug endpoints: ``asgi_app`` (uvicorn ``--workers``,
gunicorn's ``UvicornWorker``) and ``wsgi_app`` (gunicorn's sync and gthread workers).

``/`` answers the worker's pid after 10 ms of blocking work in an ``exectracer.region("handler")`` (a
worker busy with it leaves new connections to its siblings). ``WORKER_TIMEOUT`` (environment) sets the
endpoints' ``worker_timeout``; ``FLIGHT=1`` runs a flight recorder in each worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import exectracer
from exectracer.asgi import TraceMiddleware as AsgiTraceMiddleware
from exectracer.wsgi import TraceMiddleware as WsgiTraceMiddleware

SETTINGS = {"worker_timeout": float(os.environ.get("WORKER_TIMEOUT", "30"))}


def handle() -> bytes:
    with exectracer.region("handler"):
        total = sum(i * i for i in range(2000))
        time.sleep(0.01)
    return f"{os.getpid()} {total}\n".encode()


async def _asgi(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":
        return
    body = handle()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = handle()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if os.environ.get("FLIGHT") == "1":
    exectracer.FlightRecorder(max_bytes=8 << 20, min_age=5.0).start()

asgi_app = AsgiTraceMiddleware(_asgi, **SETTINGS)
wsgi_app = WsgiTraceMiddleware(_wsgi, **SETTINGS)
