"""The running recording, as the hooks see it.

``recording`` is set by :func:`exectracer.record.recorder.start_recorder`
and cleared when it stops (or in a forked child); every hook that may
outlive a recording (a timed wrapper kept by the program, a region, a lock)
reads it at each call and does nothing when it is ``None``. The hooks
depend on this module only, not on the recorder that imports them.
"""

from __future__ import annotations

from types import FrameType
from typing import Any, Protocol

from .gil import GilLateness
from .interner import Interner
from .registry import Registry
from .store import EventStore

__all__ = ["Recording", "WaitRecorder", "recording"]


class WaitRecorder(Protocol):
    """Where thread waits go (:class:`exectracer.record.blocking.Waits`)."""

    threshold_ns: int  # shorter waits are not recorded

    def record(self, start: int, end: int, category: int, frame: FrameType | None, waker: int = 0) -> bool:
        """Record a wait of the calling thread; False if it was left to an enclosing timed call."""
        ...

    def note_process(self, end: int, pid: int) -> None:
        """The calling thread's wait that ended at ``end``, just recorded, was for child process ``pid``."""
        ...


class Recording(Protocol):
    """What the hooks use of a running recording (:class:`exectracer.record.recorder.Recorder`)."""

    @property
    def events(self) -> EventStore: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def interner(self) -> Interner: ...
    @property
    def waits(self) -> WaitRecorder | None: ...
    @property
    def gil(self) -> GilLateness: ...
    # the C hooks' event columns (the same store as ``events``); None: the hooks run in Python
    @property
    def rows(self) -> Any: ...


recording: Recording | None = None
