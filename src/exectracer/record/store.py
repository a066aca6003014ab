"""Where a recording's hooks put their events: one stream, in the order they were recorded.

Each event is three 64-bit integers (code, ts, g). With the C module the
store is a ``_speedups.Rows``: three columns of unsigned integers, filled by
the C hooks directly and by the Python hooks through ``extend``, so no int
objects are kept; the writer's thread sleeps without the GIL until a
chunk's worth is there. Without it, a ``ListStore``: a list of ints whose
length the writer looks at every few milliseconds. Both are filled while
holding the GIL, so one call's events are never interleaved with another
thread's.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol

from ..format.encoder import encode_event_columns
from ..format.events import MASK64
from .interner import take_all

# Each column is taken as unsigned 64-bit integers (the same bits as int64 for
# the non-negative values recorded): from Python ints, C's unsigned long is the
# fastest conversion, two to five times faster than ``q``.
_UNSIGNED = next(code for code in "LQ" if array(code).itemsize == 8)


class EventStore(Protocol):
    """What the hooks append events to, and the writer takes them from."""

    def extend(self, values: Sequence[int], /) -> None:
        """Append the events in ``values`` (code, ts, g, code, ts, g, ...)."""

    def __len__(self) -> int:
        """How many events are stored."""

    def take(self) -> tuple[bytes, int, int]:
        """Remove every stored event as one EVENTS payload.

        Returns the payload (every code, then every ts, then every g, each a
        little-endian 64-bit integer), how many events it holds, and how
        many were lost since the last take.
        """

    def wait(self, count: int, timeout: float, /) -> bool:
        """Block until ``count`` events are stored (a ``ListStore`` does not count), ``wake`` is called
        or ``timeout`` passes."""

    def wake(self) -> None:
        """Let a thread in ``wait`` go now."""

    def clear(self) -> None:
        """Forget the events stored."""


class ListStore:
    """The event store without the C module: a list of ints (three per event)."""

    def __init__(self) -> None:
        self._values: list[int] = []
        self.extend = self._values.extend  # the hooks call the list's own method
        self._woken = threading.Event()

    def __len__(self) -> int:
        return len(self._values) // 3

    def take(self) -> tuple[bytes, int, int]:
        events = take_all(self._values)  # the hooks store whole events: a multiple of three
        columns = []
        for column in (events[0::3], events[1::3], events[2::3]):
            try:
                columns.append(array(_UNSIGNED, column))
            except OverflowError:  # a negative value (the hooks give them as their bits, unsigned): keep its int64 bits
                columns.append(array(_UNSIGNED, [v & MASK64 for v in column]))
        return encode_event_columns(*columns), len(events) // 3, 0

    def wait(self, count: int, timeout: float, /) -> bool:
        woken = self._woken.wait(timeout)
        self._woken.clear()
        return woken

    def wake(self) -> None:
        self._woken.set()

    def clear(self) -> None:
        self._values.clear()


def new_store(native: ModuleType | None) -> EventStore:
    """A ``Rows`` where the C module is in use, else a ``ListStore``."""
    return native.Rows() if native is not None else ListStore()
