"""exectracer: an execution tracer for Python, in the spirit of Go's ``runtime/trace``.

Recording (standard library only)::

    import exectracer
    with exectracer.trace("out.xtrace"):
        ...

Reading::

    trace = exectracer.load("out.xtrace")

Live: ``exectracer.serve_debug()``,
``exectracer.asgi.TraceMiddleware``, ``exectracer.wsgi.TraceMiddleware``,
``exectracer.aiohttp.add_debug_routes`` serve ``/debug/pprof/trace``;
``exectracer.FlightRecorder`` keeps the last seconds in memory (all
standard library but the aiohttp routes).

PYTEST_DONT_REWRITE: pytest rewrites the asserts of every package that
brings a plugin (exectracer's, ``exectracer_pytest``), and warns when one
was imported before it started, which it was under ``exectracer run -m
pytest``; a suite that makes warnings errors would not start. These words
tell pytest to leave exectracer as it is.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .live.debug_server import serve_debug
    from .live.flight import FlightRecorder
    from .reader import Trace, TraceFormatError
    from .record.annotations import log, region, task
    from .record.recorder import Options, TracingError, is_tracing, start, stop, trace

# name -> module, imported on first use: reading a trace does not load the
# recorder (nor asyncio), and recording does not load the reader (nor NumPy)
_LAZY = {
    "Trace": "reader",
    "TraceFormatError": "reader",
    "FlightRecorder": "live.flight",
    "serve_debug": "live.debug_server",
    **dict.fromkeys(("log", "region", "task"), "record.annotations"),
    **dict.fromkeys(("Options", "TracingError", "is_tracing", "start", "stop", "trace"), "record.recorder"),
}


def load(path: Any, **kwargs: Any) -> Trace:
    """Read a trace file into a :class:`exectracer.reader.Trace` (needs NumPy)."""
    from .reader import load as _load

    return _load(path, **kwargs)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext exectracer`` in IPython and Jupyter: the ``%%exectrace`` cell magic (see exectracer.jupyter)."""
    from .jupyter import load_ipython_extension as load_extension

    load_extension(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext exectracer``."""
    from .jupyter import unload_ipython_extension as unload_extension

    unload_extension(shell)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'exectracer' has no attribute {name!r}")
    value = globals()[name] = getattr(
        importlib.import_module(f".{module}", __name__), name
    )  # found directly from now on
    return value


__all__ = [
    "FlightRecorder",
    "Options",
    "Trace",
    "TraceFormatError",
    "TracingError",
    "__version__",
    "is_tracing",
    "load",
    "log",
    "region",
    "serve_debug",
    "start",
    "stop",
    "task",
    "trace",
]
