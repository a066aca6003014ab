"""The viewer's HTTP server: the page and its assets, and the JSON API over one trace (or a Parquet dataset).

Binds to loopback unless told otherwise, and answers only requests whose
``Host`` is an address, ``localhost`` or a name it was told to accept (so a
page elsewhere cannot read the trace through DNS rebinding). Static files
come only from the package's ``static`` folder; a malformed request gets a
4xx answer and the server keeps serving.
"""

from __future__ import annotations

import json
import mimetypes
import threading
import urllib.parse
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from .. import host_names
from ..reader import Trace
from .api import BadRequest, Download, NotFound, ViewerAPI
from .dataset_api import DatasetAPI

STATIC = Path(__file__).resolve().parent / "static"
MAX_URL = 8192
CONTENT_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors {}"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_POLICY.format("'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ViewerServer(ThreadingHTTPServer):
    """Serves one trace's viewer until :meth:`shutdown`."""

    daemon_threads = True

    def __init__(
        self,
        trace: Trace | DatasetAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_hosts: Iterable[str] = (),
        frame_ancestors: str = "'none'",
    ) -> None:
        """``trace``: the trace, or a Parquet dataset's :class:`DatasetAPI` (its Query page only).
        ``frame_ancestors``: the pages that may show the viewer in a frame (a CSP source list; a notebook's)."""
        self.api: ViewerAPI | DatasetAPI = trace if isinstance(trace, DatasetAPI) else ViewerAPI(trace)
        self.allowed_hosts = host_names.names((host, *allowed_hosts))
        self.security_headers = {**SECURITY_HEADERS, "Content-Security-Policy": CONTENT_POLICY.format(frame_ancestors)}
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """Where the viewer is (an IPv6 host in brackets)."""
        host, port = self.socket.getsockname()[:2]  # the bound address (what server_address holds), its host a str
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def serve_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread (tests, notebooks); stop with ``shutdown()``."""
        thread = threading.Thread(target=self.serve_forever, name="exectracer-viewer", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"
    server_version = "exectracer-viewer"
    sys_version = ""

    def do_GET(self) -> None:
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # never let one request stop the server
            self._json({"error": f"internal error: {type(exc).__name__}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_HEAD(self) -> None:
        self._json({"error": "use GET"}, HTTPStatus.METHOD_NOT_ALLOWED)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows the URL only
        pass

    def _route(self) -> None:
        host = self.headers.get("Host")
        if host is not None and not host_names.accepts_host(host, self.server.allowed_hosts):
            self._json(
                {"error": f"host {host[:100]!r} is not served here: open {self.server.url} (or view --allow-host)"},
                HTTPStatus.FORBIDDEN,
            )
            return
        if len(self.path) > MAX_URL:
            self._json({"error": "request URL too long"}, HTTPStatus.REQUEST_URI_TOO_LONG)
            return
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if path in ("/", "/index.html"):
            self._file(STATIC / "index.html")
            return
        if path.startswith("/static/"):
            self._static(path[len("/static/") :])
            return
        handler = self.server.api.routes.get(path)
        if handler is None:
            self._json({"error": f"no such page: {path[:200]}"}, HTTPStatus.NOT_FOUND)
            return
        try:
            params = dict(
                urllib.parse.parse_qsl(url.query, keep_blank_values=True, strict_parsing=False, max_num_fields=100)
            )
            result = handler(params)
        except (BadRequest, ValueError) as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
            return
        except NotFound as exc:
            self._json({"error": str(exc)}, HTTPStatus.NOT_FOUND)
            return
        if isinstance(result, Download):
            self._send(
                result.data,
                "application/octet-stream",
                extra={"Content-Disposition": f'attachment; filename="{result.filename}"'},
            )
        else:
            self._json(result)

    def _static(self, relative: str) -> None:
        try:
            target = (STATIC / relative).resolve()
            found = STATIC in target.parents and target.is_file()
        except (OSError, ValueError):  # a NUL byte, a name too long
            found = False
        if not found:
            self._json({"error": "no such file"}, HTTPStatus.NOT_FOUND)
            return
        self._file(target)

    def _file(self, path: Path) -> None:
        if not path.is_file():
            self._json({"error": "the viewer's page is missing from the package"}, HTTPStatus.NOT_FOUND)
            return
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".js":
            kind = "text/javascript"
        self._send(path.read_bytes(), f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)

    def _json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(value, separators=(",", ":"), default=_plain, allow_nan=False).encode()
        self._send(body, "application/json", status)

    def _send(
        self, body: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.security_headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _plain(value: Any) -> Any:
    """JSON for NumPy values that slipped through."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")
