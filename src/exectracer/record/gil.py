"""GIL wait estimates: how late a thread runs Python again after a timed sleep.

A thread that sleeps until ``t`` wakes in the OS shortly after ``t``, then
must take the GIL before its next bytecode. The delay past ``t`` is the OS's
wake-up latency plus the GIL wait; the smallest delay seen so far stands for
the OS part, and the rest is recorded as a GIL_WAIT estimate. Where the
sleep itself tells when it ended in the OS (the sampler's, in C), the wait
is measured instead, and that OS delay also lowers the floor the others use.
On a build without a GIL nothing is recorded.
"""

from __future__ import annotations

import sys

from ..format.events import Kind, pack
from .store import EventStore

GIL_WAIT = int(Kind.GIL_WAIT)
MIN_REPORTED_NS = 20_000  # shorter estimates are noise


def gil_enabled() -> bool:
    """Whether this interpreter has a GIL (free-threaded builds may not)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return check() if check is not None else True


class GilLateness:
    """Turns sleep lateness into GIL_WAIT events."""

    def __init__(self, events: EventStore) -> None:
        self._emit = events.extend
        self._floor: int | None = None  # the smallest lateness seen: the OS's own delay
        self.enabled = gil_enabled()

    def observe(self, g: int, due_ns: int, resumed_ns: int, woke_ns: int = 0) -> None:
        """A thread due to wake at ``due_ns`` ran Python again at ``resumed_ns``;
        ``woke_ns``: when its sleep ended in the OS, if known (else 0)."""
        if not self.enabled:
            return
        os_late = max((woke_ns if woke_ns else resumed_ns) - due_ns, 0)
        if self._floor is None or os_late < self._floor:
            self._floor = os_late
        excess = resumed_ns - woke_ns if woke_ns else os_late - self._floor
        if excess >= MIN_REPORTED_NS:
            self._emit((pack(GIL_WAIT, excess), resumed_ns, g))
