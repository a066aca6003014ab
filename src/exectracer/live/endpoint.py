"""``/debug/pprof/trace`` and ``/debug/pprof/flight``, whatever serves them.

:class:`DebugEndpoints` holds everything the integrations share: which
paths are ours, access control (client allow-list, shared token),
parameters, and the work itself. An integration turns its framework's
request into a :class:`DebugRequest`, calls :meth:`DebugEndpoints.respond`
(threads) or :meth:`DebugEndpoints.respond_async` (asyncio), and sends the
:class:`DebugResponse` back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import http
import io
import ipaddress
import math
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from ..host_names import accepts_host, names
from ..record.recorder import Options, TracingError
from . import flight
from .capture import Capture, CaptureBusy
from .naming import trace_file_name

TRACE_PATH = "/debug/pprof/trace"
FLIGHT_PATH = "/debug/pprof/flight"
DEFAULT_SECONDS = 1.0
MAX_QUERY_FIELDS = 16


@dataclasses.dataclass(frozen=True)
class DebugRequest:
    """What the endpoints need from an HTTP request."""

    method: str
    path: str
    query: str  # the raw query string, without "?"
    headers: Mapping[str, str]  # names in lower case
    client: str | None  # the peer's IP address, if known


@dataclasses.dataclass(frozen=True)
class DebugResponse:
    """Status, headers (Content-Length included) and body of the answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def reason(self) -> str:
        """The status line's reason phrase."""
        return http.HTTPStatus(self.status).phrase

    @classmethod
    def error(cls, status: int, message: str, extra: Iterable[tuple[str, str]] = ()) -> DebugResponse:
        """A plain-text error."""
        body = f"{status} {http.HTTPStatus(status).phrase}: {message}\n".encode()
        return cls(status, [("Content-Type", "text/plain; charset=utf-8"), *extra, *_common(body)], body)

    @classmethod
    def trace(cls, kind: str, body: bytes, extra: Iterable[tuple[str, str]] = ()) -> DebugResponse:
        """A trace file to download."""
        disposition = f'attachment; filename="{trace_file_name(kind)}"'
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", disposition),
            *extra,
            *_common(body),
        ]
        return cls(200, headers, body)


class _Job:
    """Work for one accepted request: ``begin()``, wait ``seconds``, ``finish()`` for the response."""

    seconds = 0.0

    def begin(self) -> None:
        """Start; raises :class:`CaptureBusy` when it cannot."""

    def finish(self) -> DebugResponse:
        raise NotImplementedError


class _CaptureJob(_Job):
    def __init__(self, seconds: float, capped: bool, options: dict[str, Any], max_bytes: int) -> None:
        self.seconds = seconds
        self._capped = capped
        self._capture = Capture(options, max_bytes, seconds)

    def begin(self) -> None:
        self._capture.begin()

    def finish(self) -> DebugResponse:
        body = self._capture.finish()
        extra = [("X-Exectracer-Seconds", repr(self.seconds))]
        if self._capped:
            extra.append(("X-Exectracer-Capped", "seconds was more than the maximum"))
        return DebugResponse.trace("trace", body, extra)


class _FlightJob(_Job):
    def finish(self) -> DebugResponse:
        recorder = flight.running()
        if recorder is None:
            return _no_flight_recorder()
        out = io.BytesIO()
        try:
            recorder.snapshot(out)
        except TracingError:  # stopped meanwhile
            return _no_flight_recorder()
        return DebugResponse.trace("flight", out.getvalue())


class DebugEndpoints:
    """The debug endpoints with their settings.

    ``path`` serves captures (``?seconds=N``, default 1, capped at
    ``max_seconds``); ``flight_path`` (None: not served) serves a snapshot of
    the running flight recorder. ``token``: clients must send
    ``Authorization: Bearer <token>``. ``allow``: client addresses or
    networks (``"10.0.0.0/8"``) that may ask; others get 403. Without a
    token, a request is answered only if its ``Host`` is an IP address,
    ``localhost`` or one of ``hosts`` (else 403), so that a page on another
    site cannot read traces through DNS rebinding. ``options``:
    recording options for captures (those not given suit a recording kept in
    memory: no chunk made before the capture ends, unless a chunk's worth of
    events, up to 3/8 of ``max_bytes``, piles up first; ``heap_interval``
    5 s); ``max_bytes`` caps a capture's size.
    """

    def __init__(
        self,
        path: str = TRACE_PATH,
        *,
        flight_path: str | None = FLIGHT_PATH,
        token: str | None = None,
        allow: Iterable[str] | None = None,
        hosts: Iterable[str] = (),
        max_seconds: float = 30.0,
        max_bytes: int = 256 << 20,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError("max_seconds must be a positive number of seconds")
        if token is not None and not token:
            raise ValueError("token must not be empty (None: no token)")
        self.trace_path = path
        self.flight_path = flight_path
        self.paths = frozenset(p for p in (path, flight_path) if p is not None)
        self._token = token.encode() if token is not None else None
        self._allow = [ipaddress.ip_network(a, strict=False) for a in allow] if allow is not None else None
        self._hosts = names(hosts)
        self.max_seconds = max_seconds
        self._max_bytes = max_bytes
        self._options = dict(options or {})
        Options.from_kwargs(self._options)  # reject bad options now

    def respond(self, request: DebugRequest) -> DebugResponse:
        """Answer ``request`` (one of :attr:`paths`), blocking the calling thread while a capture runs."""
        job = self._begin(request)
        if isinstance(job, DebugResponse):
            return job
        try:
            time.sleep(job.seconds)
        finally:
            response = job.finish()
        return response

    async def respond_async(self, request: DebugRequest) -> DebugResponse:
        """Answer ``request`` without blocking the event loop; the capture ends even if the request is cancelled."""
        job = self._begin(request)
        if isinstance(job, DebugResponse):
            return job
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(job.seconds)
        finally:
            finished = loop.run_in_executor(None, job.finish)  # stop() waits for the writer: not on the loop
        return await asyncio.shield(finished)

    def _begin(self, request: DebugRequest) -> _Job | DebugResponse:
        """The started job ``request`` asks for, or the error that refuses it (409 while another capture runs)."""
        job = self._accept(request)
        if isinstance(job, DebugResponse):
            return job
        try:
            job.begin()
        except CaptureBusy as exc:
            return DebugResponse.error(409, str(exc))
        return job

    def _accept(self, request: DebugRequest) -> _Job | DebugResponse:
        """The job ``request`` asks for, or the error that refuses it."""
        refusal = self._check_access(request)
        if refusal is not None:
            return refusal
        if request.method != "GET":
            return DebugResponse.error(405, f"use GET, not {request.method}", [("Allow", "GET")])
        if request.path == self.flight_path:
            return _FlightJob() if flight.running() is not None else _no_flight_recorder()
        try:
            seconds = self._seconds(request.query)
        except ValueError as exc:
            return DebugResponse.error(400, str(exc))
        return _CaptureJob(min(seconds, self.max_seconds), seconds > self.max_seconds, self._options, self._max_bytes)

    def _check_access(self, request: DebugRequest) -> DebugResponse | None:
        if self._allow is not None and not _allowed(request.client, self._allow):
            return DebugResponse.error(403, f"client address {request.client or 'unknown'} is not allowed")
        if self._token is None:
            host = request.headers.get("host")
            if host is not None and not accepts_host(host, self._hosts):
                return DebugResponse.error(
                    403, f"host {host[:100]!r} is not accepted without a token: set a token, or list it in hosts"
                )
        else:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
                return DebugResponse.error(
                    401,
                    "a valid token is needed: send 'Authorization: Bearer <token>'",
                    [("WWW-Authenticate", 'Bearer realm="exectracer"')],
                )
        return None

    def _seconds(self, query: str) -> float:
        """The ``seconds`` parameter; ValueError with the reason if it is not a positive number."""
        try:
            fields = urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            raise ValueError(f"too many query parameters (at most {MAX_QUERY_FIELDS})") from None
        given = fields.get("seconds")
        if given is None:
            return DEFAULT_SECONDS
        if len(given) > 1:
            raise ValueError("give seconds once")
        try:
            seconds = float(given[0])
        except ValueError:
            raise ValueError(f"seconds must be a number, not {given[0][:40]!r}") from None
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be a positive number, not {given[0][:40]!r}")
        return seconds


def _allowed(client: str | None, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address((client or "").split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(address in net or (mapped is not None and mapped in net) for net in networks)


def _no_flight_recorder() -> DebugResponse:
    return DebugResponse.error(
        404, "no flight recorder is running in this process (start one with exectracer.FlightRecorder)"
    )


def _common(body: bytes) -> list[tuple[str, str]]:
    return [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), ("Content-Length", str(len(body)))]
