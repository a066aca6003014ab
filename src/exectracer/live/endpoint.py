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
import functools
import hmac
import http
import io
import ipaddress
import math
import os
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from ..host_names import accepts_host, names
from ..record.hook_errors import caught
from ..record.recorder import Options, TracingError
from . import flight, rendezvous
from .capture import Capture, CaptureBusy
from .naming import trace_file_name
from .workers import Gathering, Missing, Refused, answer, merged

TRACE_PATH = "/debug/pprof/trace"
FLIGHT_PATH = "/debug/pprof/flight"
DEFAULT_SECONDS = 1.0
MAX_QUERY_FIELDS = 16
PROCESS_CHOICES = ("all", "self")  # ?process=: every worker of the service (default), or the one that answers


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
    """Work for one accepted request: ``begin()``, wait ``seconds``, ``finish()`` for the response.

    ``siblings``: the other workers of the service to ask for the same window (empty: this process alone).
    """

    seconds = 0.0
    kind = "trace"

    def __init__(self, siblings: list[tuple[int, str]], timeout: float) -> None:
        self._siblings, self._timeout = siblings, timeout
        self._gathering: Gathering | None = None

    def begin(self) -> None:
        """Start, and ask the siblings; raises :class:`CaptureBusy` when it cannot."""
        self._begin_own()
        if self._siblings:
            try:
                self._gathering = Gathering(self._siblings, self.kind, self.seconds, self._timeout)
            except Exception:  # no thread to ask them with: this worker's trace alone
                caught("live.endpoint.gather")

    def finish(self) -> DebugResponse:
        own = self._finish_own()
        if own is None:
            return _no_flight_recorder()
        extra = self._headers()
        if self._gathering is not None:
            traces, missing = self._gathering.collect()
            own, headers = _service_trace(own, traces, missing)
            extra += headers
        return DebugResponse.trace(self.kind, own, extra)

    def _begin_own(self) -> None:
        pass

    def _finish_own(self) -> bytes | None:
        raise NotImplementedError

    def _headers(self) -> list[tuple[str, str]]:
        return []


class _CaptureJob(_Job):
    def __init__(
        self,
        seconds: float,
        capped: bool,
        options: dict[str, Any],
        max_bytes: int,
        siblings: list[tuple[int, str]],
        timeout: float,
    ) -> None:
        super().__init__(siblings, timeout)
        self.seconds = seconds
        self._capped = capped
        self._capture = Capture(options, max_bytes, seconds)

    def _begin_own(self) -> None:
        self._capture.begin()

    def _finish_own(self) -> bytes:
        return self._capture.finish()

    def _headers(self) -> list[tuple[str, str]]:
        extra = [("X-Exectracer-Seconds", repr(self.seconds))]
        if self._capped:
            extra.append(("X-Exectracer-Capped", "seconds was more than the maximum"))
        return extra


class _FlightJob(_Job):
    kind = "flight"

    def _finish_own(self) -> bytes | None:
        return _flight_snapshot()


def _flight_snapshot() -> bytes | None:
    """A snapshot of the running flight recorder; None if none runs."""
    recorder = flight.running()
    if recorder is None:
        return None
    out = io.BytesIO()
    try:
        recorder.snapshot(out)
    except TracingError:  # stopped meanwhile
        return None
    return out.getvalue()


def _service_trace(own: bytes, traces: list[bytes], missing: list[Missing]) -> tuple[bytes, list[tuple[str, str]]]:
    """This worker's trace merged with its siblings', and the headers saying who is in and who is missing."""
    if not traces and not missing:  # the siblings registered were all gone
        return own, []
    note: dict[str, object] = {
        "answered_by": os.getpid(),
        "workers": 1 + len(traces),
        "missing": [{"pid": m.pid, "reason": m.reason} for m in missing],
    }
    headers = [("X-Exectracer-Workers", str(1 + len(traces)))]
    if missing:
        headers.append(("X-Exectracer-Missing", _header_value("; ".join(str(m) for m in missing))))
    return merged(own, traces, note), headers


def _header_value(text: str) -> str:
    """``text`` as a header value: printable ASCII, one line, 1000 characters at most."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:1000]


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
        workers: bool = True,
        worker_timeout: float = 10.0,
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
        if not (math.isfinite(worker_timeout) and worker_timeout > 0):
            raise ValueError("worker_timeout must be a positive number of seconds")
        self.workers = workers
        self._worker_timeout = worker_timeout
        if workers:
            rendezvous.register(functools.partial(answer, respond=self._answer_sibling))

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
        try:
            fields = _fields(request.query)
            seconds = self._seconds(fields)
            siblings = self._siblings(fields)
        except ValueError as exc:
            return DebugResponse.error(400, str(exc))
        if request.path == self.flight_path:
            return _FlightJob(siblings, self._worker_timeout) if flight.running() is not None else _no_flight_recorder()
        capped = min(seconds, self.max_seconds)
        return _CaptureJob(
            capped, seconds > self.max_seconds, self._options, self._max_bytes, siblings, self._worker_timeout
        )

    def _siblings(self, fields: dict[str, list[str]]) -> list[tuple[int, str]]:
        """The other workers to ask, as ``process`` says (ValueError for a bad value)."""
        given = fields.get("process", ["all"])
        if len(given) > 1 or given[0] not in PROCESS_CHOICES:
            raise ValueError(f"process must be one of {', '.join(PROCESS_CHOICES)}, given once")
        registration = rendezvous.current() if self.workers else None
        if given[0] == "self" or registration is None:
            return []
        return registration.siblings()

    def _answer_sibling(self, kind: str, seconds: float) -> bytes:
        """What a sibling worker asked for: a capture of ``seconds`` (capped) or a flight snapshot."""
        if kind == "flight":
            data = _flight_snapshot()
            if data is None:
                raise Refused("no flight recorder is running there")
            return data
        capture = Capture(self._options, self._max_bytes, min(seconds, self.max_seconds))
        try:
            capture.begin()
        except CaptureBusy as exc:
            raise Refused(str(exc)) from None
        try:
            time.sleep(min(seconds, self.max_seconds))
        finally:
            data = capture.finish()
        return data

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

    def _seconds(self, fields: dict[str, list[str]]) -> float:
        """The ``seconds`` parameter; ValueError with the reason if it is not a positive number."""
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


def _fields(query: str) -> dict[str, list[str]]:
    """The query's parameters; ValueError if there are too many."""
    try:
        return urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise ValueError(f"too many query parameters (at most {MAX_QUERY_FIELDS})") from None


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
