"""exectracer: an execution tracer for Python, in the spirit of Go's ``runtime/trace``.

Recording (standard library only)::

    import exectracer
    with exectracer.trace("out.xtrace"):
        ...

Reading::

    trace = exectracer.load("out.xtrace")
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .record.annotations import log, region, task
from .record.recorder import Options, TracingError, is_tracing, start, stop, trace

if TYPE_CHECKING:
    from .reader import Trace, TraceFormatError


def load(path: Any, **kwargs: Any) -> "Trace":
    """Read a trace file into a :class:`exectracer.reader.Trace` (needs NumPy)."""
    from .reader import load as _load

    return _load(path, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("Trace", "TraceFormatError"):
        from . import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'exectracer' has no attribute {name!r}")


__all__ = [
    "Options",
    "Trace",
    "TraceFormatError",
    "TracingError",
    "is_tracing",
    "load",
    "log",
    "region",
    "start",
    "stop",
    "task",
    "trace",
]
