"""The client side: fetch a trace from a running service's debug endpoint."""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from .endpoint import FLIGHT_PATH, TRACE_PATH

MARGIN = 60.0  # seconds to wait for an answer beyond the capture itself


class FetchError(Exception):
    """The trace could not be fetched; the message says why."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A fetched trace: its bytes and the file name the server suggested (if any)."""

    url: str
    data: bytes
    file_name: str | None


def endpoint_url(url: str, seconds: float | None) -> str:
    """The URL to ask: ``url`` with the default path if it has none, and ``seconds`` (None: a flight snapshot)."""
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else (TRACE_PATH if seconds is not None else FLIGHT_PATH)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if seconds is not None:
        query = [(k, v) for k, v in query if k != "seconds"] + [("seconds", repr(float(seconds)))]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), ""))


def fetch(url: str, seconds: float | None, token: str | None = None) -> Fetched:
    """Fetch a capture of ``seconds`` (or, for None, a flight recorder snapshot) from the service at ``url``."""
    target = endpoint_url(url, seconds)
    request = urllib.request.Request(target, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=(seconds or 0) + MARGIN) as response:
            return Fetched(target, response.read(), _file_name(response.headers.get("Content-Disposition", "")))
    except urllib.error.HTTPError as exc:
        message = exc.read(2000).decode("utf-8", "replace").strip() or f"{exc.code} {exc.reason}"
        raise FetchError(f"{target} answered {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot fetch {target}: {reason}") from None


def _file_name(disposition: str) -> str | None:
    """The file name in a Content-Disposition header, reduced to a safe base name."""
    found = re.search(r'filename="?([^";]+)"?', disposition)
    if not found:
        return None
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(found.group(1)))
    return name if name.strip(".") else None
