"""File names for traces that live captures and flight recorder snapshots make."""

from __future__ import annotations

import datetime
import os
import re


def trace_file_name(kind: str, reason: str = "") -> str:
    """``<kind>-<pid>-<UTC time>[-<reason>].xtrace``, e.g. ``flight-4242-20261126T191600.123456Z-signal.xtrace``."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    suffix = "-" + re.sub(r"[^A-Za-z0-9_.]+", "-", reason)[:40] if reason else ""
    return f"{kind}-{os.getpid()}-{when}{suffix}.xtrace"
