"""``serve_debug``: the debug endpoints on a small HTTP server of their own, like Go's ``net/http/pprof``.

For programs without a web framework. Its threads are the tracer's own:
they never appear in a trace.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import socketserver
import sys
import warnings
from typing import Any

from ..tracer_thread import TracerThread
from .endpoint import TRACE_PATH, DebugEndpoints, DebugRequest, DebugResponse

DEFAULT_PORT = 6060  # as Go programs usually serve net/http/pprof
REQUEST_TIMEOUT = 60.0  # seconds a connection may stay silent


class _Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose request threads are the tracer's own."""

    daemon_threads = True
    block_on_close = False
    endpoints: DebugEndpoints

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: it looks the host name up in DNS
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        TracerThread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="exectracer-debug-request",
            daemon=True,
        ).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that went away is no error of ours
            super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "exectracer"
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # even a garbled request line gets a status line back
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s.\n"
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        endpoints = self.server.endpoints
        path, _, query = self.path.partition("?")
        if path not in endpoints.paths:
            served = ", ".join(sorted(endpoints.paths))
            self._send(DebugResponse.error(404, f"{path[:200]} is not here; this server serves {served}"))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(endpoints.respond(DebugRequest(self.command, path, query, headers, self.client_address[0])))

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _send(self, response: DebugResponse) -> None:
        self.send_response(response.status, response.reason)
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a debug server does not log every request on stderr."""


class DebugServer:
    """The running debug server: ``url``, ``port``, ``close()``; also a context manager."""

    def __init__(self, host: str, port: int, endpoints: DebugEndpoints) -> None:
        self._server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self._server.endpoints = endpoints
        self.host = host
        self.port: int = self._server.server_address[1]
        self.endpoints = endpoints
        self._thread = TracerThread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="exectracer-debug-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and close the socket (a capture in progress still finishes)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> DebugServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_debug(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, path: str = TRACE_PATH, **settings: Any
) -> DebugServer:
    """Serve ``/debug/pprof/trace`` (and ``/debug/pprof/flight``) from background threads; return the server.

    Binds to loopback unless told otherwise; port 0 picks a free one.
    Settings are those of :class:`exectracer.live.endpoint.DebugEndpoints`
    (``token``, ``allow``, ``max_seconds``, ...). Anyone who can reach the
    port can read the process's code paths, names and timing: on any other
    address, set a ``token``.
    """
    endpoints = DebugEndpoints(path, **settings)
    if settings.get("token") is None and not _is_loopback(host):
        warnings.warn(
            f"exectracer: serving traces on {host} without a token: anyone who reaches it can trace this process",
            RuntimeWarning,
            stacklevel=2,
        )
    return DebugServer(host, port, endpoints)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
