"""Install every thread-wait hook of a recording."""

from __future__ import annotations

from . import sync_waits
from .blocking import Waits
from .patcher import Patcher


def install(patcher: Patcher, waits: Waits) -> None:
    """Patch what threads block in; ``patcher.restore()`` undoes it."""
    sync_waits.install(patcher, waits)
