"""The debug endpoints as aiohttp routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..live.endpoint import TRACE_PATH, DebugEndpoints, DebugRequest


def add_debug_routes(app: web.Application, path: str = TRACE_PATH, **settings: Any) -> DebugEndpoints:
    """Add ``/debug/pprof/trace`` (and ``/debug/pprof/flight``) to ``app``'s router.

    Settings are those of :class:`exectracer.live.endpoint.DebugEndpoints`
    (``token``, ``allow``, ``max_seconds``, ``flight_path``, ``options``,
    ``max_bytes``). Other requests are not touched: the router sends them
    elsewhere.
    """
    endpoints = DebugEndpoints(path, **settings)

    async def handle(request: web.Request) -> web.Response:
        answer = await endpoints.respond_async(
            DebugRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers={name.lower(): value for name, value in request.headers.items()},
                client=request.remote,
            )
        )
        headers = [(name, value) for name, value in answer.headers if name != "Content-Length"]  # aiohttp sets it
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    for route in endpoints.paths:
        app.router.add_route("*", route, handle)
    return endpoints
