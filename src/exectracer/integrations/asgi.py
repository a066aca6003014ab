"""The debug endpoints as ASGI middleware (Starlette, FastAPI, Django, Quart, ...): no framework needed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..live.endpoint import TRACE_PATH, DebugEndpoints, DebugRequest

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TraceMiddleware:
    """Serves ``/debug/pprof/trace`` (and ``/debug/pprof/flight``) in front of an ASGI ``app``.

    Every other request goes straight to ``app``. Settings are those of
    :class:`exectracer.live.endpoint.DebugEndpoints` (``token``, ``allow``,
    ``max_seconds``, ``flight_path``, ``options``, ``max_bytes``).
    """

    def __init__(self, app: ASGIApp, path: str = TRACE_PATH, **settings: Any) -> None:
        self.app = app
        self.endpoints = DebugEndpoints(path, **settings)
        self._paths = self.endpoints.paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self._paths:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        request = DebugRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={
                name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", ())
            },
            client=client[0] if client else None,
        )
        response = await self.endpoints.respond_async(request)
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
