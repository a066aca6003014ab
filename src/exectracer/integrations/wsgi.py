"""The debug endpoints as WSGI middleware (Flask, Django, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..live.endpoint import TRACE_PATH, DebugEndpoints, DebugRequest

WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class TraceMiddleware:
    """Serves ``/debug/pprof/trace`` (and ``/debug/pprof/flight``) in front of a WSGI ``app``.

    Every other request goes straight to ``app``. A capture holds its
    worker thread for its duration. Settings are those of
    :class:`exectracer.live.endpoint.DebugEndpoints` (``token``, ``allow``,
    ``max_seconds``, ``flight_path``, ``options``, ``max_bytes``).
    """

    def __init__(self, app: WSGIApp, path: str = TRACE_PATH, **settings: Any) -> None:
        self.app = app
        self.endpoints = DebugEndpoints(path, **settings)
        self._paths = self.endpoints.paths

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in self._paths:
            return self.app(environ, start_response)
        request = DebugRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=path,
            query=environ.get("QUERY_STRING", ""),
            headers={
                key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
            },
            client=environ.get("REMOTE_ADDR"),
        )
        response = self.endpoints.respond(request)
        start_response(f"{response.status} {response.reason}", response.headers)
        return [response.body]
