"""Helpers for the live capture tests: a plain HTTP client, a steady load, and example servers in subprocesses."""

from __future__ import annotations

import dataclasses
import http.client
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import TypeVar


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def get(
    url: str, token: str | None = None, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 60
) -> Reply:
    """One request on a fresh connection."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=sent)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


_Threads = TypeVar("_Threads", bound="ClientThreads")


class ClientThreads:
    """``concurrency`` threads running ``_run`` (a subclass's: asking ``url`` until ``_stop`` is set) while the
    ``with`` block runs; what went wrong in ``failures``."""

    def __init__(self, url: str, concurrency: int = 4) -> None:
        self.url = url
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"load-{i}") for i in range(concurrency)]

    def __enter__(self: _Threads) -> _Threads:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class Load(ClientThreads):
    """``concurrency`` client threads asking ``url`` over keep-alive connections until stopped."""

    def __init__(self, url: str, concurrency: int = 4) -> None:
        self.done: list[float] = []  # when each successful response arrived (perf_counter)
        super().__init__(url, concurrency)

    def between(self, start: float, end: float) -> int:
        """Responses that arrived between two perf_counter times."""
        return sum(start <= t <= end for t in self.done)

    def _run(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while not self._stop.is_set():
            try:
                conn.request("GET", parts.path)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.done.append(time.perf_counter())
                else:
                    self.failures.append(f"status {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                conn.close()
                time.sleep(0.01)
        conn.close()


def running_example(framework: str, *args: str) -> Iterator[str]:
    """The URL of ``python -m exectracer.examples.web FRAMEWORK --port 0 ARGS``, stopped when the generator ends.

    Its stderr goes to a file (a pipe nobody reads could fill up and stall
    it), checked for tracebacks at the end.
    """
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exectracer.examples.web", framework, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert line.startswith("listening on "), f"{framework} example did not start: {line!r}"
            yield line.split()[-1]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            finally:
                proc.kill()
                proc.stdout.close()
            err.seek(0)
            errors = err.read()
        assert "Traceback" not in errors, errors
