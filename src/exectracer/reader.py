"""Load a trace file: :func:`load` returns a :class:`Trace`, its events, tables and analyses.

(Not ``exectracer.trace``: that name is the recording context manager.)

::

    trace = exectracer.load("out.xtrace")
    trace.events.ts, trace.events.kind      # NumPy columns, in time order
    trace.tasks, trace.threads, trace.loops # who ran
    trace.lost                              # what the trace does not hold
    trace.analysis.summary()                # the analyses (exectracer.analysis)

The events and tables are :class:`exectracer.trace_data.TraceData`'s; this
module adds the analyses and the checks and warnings of loading a file.
"""

from __future__ import annotations

import functools
import html
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from .analysis import Analysis
from .format import decoder
from .format.decoder import Frame, Problem, TraceFormatError
from .processes import AlignmentError, combine
from .table import Table
from .trace_data import HookError, Loop, Lost, Process, Task, Thread, TraceData, UserTask
from .trace_set import Source, child_files, trace_files_of

if TYPE_CHECKING:
    from .sql.database import Database

__all__ = [
    "Frame",
    "HookError",
    "Loop",
    "Lost",
    "Problem",
    "Process",
    "Table",
    "Task",
    "Thread",
    "Trace",
    "TraceFormatError",
    "TraceWarning",
    "UserTask",
    "child_files",
    "load",
]


class TraceWarning(UserWarning):
    """A trace was loaded, but part of it was damaged or missing."""


class Trace(TraceData):
    """A loaded trace: its events and tables (:class:`TraceData`) and their analyses. Use :func:`load` to make one."""

    @functools.cached_property
    def analysis(self) -> Analysis:
        """The trace's analyses: summary, profiles, states, MMU."""
        return Analysis(self)

    def _repr_html_(self) -> str:
        """A notebook's view of the trace: its text summary (``exectracer summary``), every string escaped."""
        from .report import render

        text = render(self.analysis.summary(), os.path.basename(self.name), width=110)
        return f'<pre style="white-space:pre;font-size:12px;line-height:1.25">{html.escape(text)}</pre>'

    def show(self, height: int = 640) -> Any:
        """The viewer (timeline, goroutines, profiles) in a notebook's output, served from this process on loopback.

        Needs IPython. The viewer sits above the reader in the package's layers, so it is found by name here.
        """
        return importlib.import_module("exectracer.jupyter").show(self, height)

    def sql(self, query: str) -> Any:
        """The result of a SQL ``query`` over this trace's tables (docs/sql.md) as a pandas DataFrame.

        Needs DuckDB and pandas (``pip install 'exectracer[sql]'``). Raises
        :class:`exectracer.sql.QueryError`, with DuckDB's message on one
        line, for a query DuckDB cannot run.
        """
        return self._database.df(query)

    @functools.cached_property
    def _database(self) -> Database:
        from .sql.database import Database

        return Database([(self, self.analysis, self.name)])


def _describe(d: decoder.Decoded) -> list[str]:
    """What was wrong with the file, for the warning or the error."""
    out = []
    if d.problems:
        what = f"{d.chunks_skipped} damaged chunk(s) skipped" if d.chunks_skipped else "damaged values left out"
        out.append(f"{what} (" + "; ".join(map(str, d.problems)) + ")")
    if d.truncated_bytes:
        out.append(f"truncated: the last {d.truncated_bytes} bytes are an incomplete chunk")
    if d.seq_gaps:
        gaps = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in d.seq_gaps)
        out.append(f"chunk(s) missing from the sequence: {gaps}")
    if not d.metadata:
        out.append("no metadata")
    if d.summary is None:
        out.append("no END chunk: the recording did not stop cleanly")
    return out


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside exectracer."""
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "exectracer":
        frame, level = frame.f_back, level + 1
    return level


def load(
    path: Source | Sequence[str | os.PathLike[str]],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    max_inflated: int | None = None,
    children: bool = True,
) -> Trace:
    """Read a trace: a file (or its bytes), a directory of trace files, or a list of files.

    Several processes' recordings open as one trace (``trace.processes``):
    a merged file (``exectracer merge``), a directory (every ``*.xtrace`` in
    it), a list of files, or, unless ``children`` is false, a file recorded
    by ``exectracer run`` with the files its child processes recorded beside
    it (:func:`child_files`).

    Raises :class:`TraceFormatError` for input that is not a readable trace.
    Damage the reader can recover from (corrupt chunks, a truncated tail,
    missing chunks, no END chunk) is reported with a :class:`TraceWarning`,
    or raised as a :class:`TraceFormatError` when ``strict`` is true.
    ``progress``, if given, is called with the number of bytes decoded as
    the events are read. ``max_inflated`` bounds the bytes the compressed
    chunks may inflate to (default: 40 times the file's size, at least
    256 MiB), so that a crafted file cannot take memory without bound.
    """
    files = trace_files_of(path, children)
    sections: list[decoder.Decoded] = []
    sources: list[str] = []
    for one in files:
        name = "<bytes>" if isinstance(one, (bytes, bytearray, memoryview)) else os.fspath(one)
        try:
            decoded = decoder.read_all(one, progress, max_inflated)
        except TraceFormatError as exc:
            raise TraceFormatError(f"{name}: {exc}") from None
        for part in decoded:
            _check(part, str(name), strict)
        sections += decoded
        sources += [str(name)] * len(decoded)
    _check_distinct(sections, sources)
    try:
        combined = combine(sections, sources)
    except AlignmentError as exc:
        raise TraceFormatError(str(exc)) from None
    return Trace(combined, sources[0] if len(set(sources)) == 1 else _set_name(path, sources))


def _check(decoded: decoder.Decoded, name: str, strict: bool) -> None:
    issues = _describe(decoded)
    if issues and strict:
        raise TraceFormatError(f"{name}: " + "; ".join(issues))
    if issues:
        warnings.warn(
            f"{name}: loaded what was readable: " + "; ".join(issues), TraceWarning, stacklevel=_caller_level()
        )


def _set_name(path: object, sources: list[str]) -> str:
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path) if isinstance(os.fspath(path), str) else sources[0]
    return f"{sources[0]} (+{len(set(sources)) - 1} files)"


def _check_distinct(sections: list[decoder.Decoded], sources: list[str]) -> None:
    """TraceFormatError if two recordings are of the same process (pid, host and start): one file given twice."""
    seen: dict[tuple[object, object, object], str] = {}
    for d, source in zip(sections, sources, strict=True):
        key = (d.metadata.get("pid"), d.metadata.get("hostname"), d.metadata.get("start_ns"))
        if key[0] is None:
            continue
        if key in seen:
            raise TraceFormatError(
                f"{source}: the same recording as {seen[key]} (pid {key[0]}, same start): a file given twice?"
            )
        seen[key] = source
