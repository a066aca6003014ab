"""The pytest plugin: an execution trace of each test, kept for the slow or failing ones.

Registered through the ``pytest11`` entry point (the top-level module
``exectracer_pytest``, which imports nothing of exectracer: a test session
that does not ask for traces does not load the package) and off unless
asked::

    pytest --exectracer=traces/                              # every test
    pytest --exectracer=traces/ --exectracer-slower-than=2   # tests that took over 2 s
    pytest --exectracer=traces/ --exectracer-failed          # tests that failed (a flaky one, say)

A test is traced from before its fixtures are set up to after they are torn
down, into ``DIR/<test id>-<hash>.xtrace``. With both filters a trace is kept if
either holds. Under pytest-xdist each worker traces the tests it runs; the
traces kept travel to the controller in the reports' ``user_properties``
(``exectracer_trace``), and the terminal summary lists them with their top
waits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROPERTY = "exectracer_trace"  # the user property holding a kept trace's path, on a test's teardown report
LISTED = 10  # kept traces the terminal summary lists with their top waits (the slowest)
TOP_WAITS = 3  # waits listed for each
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.=-]+")
_MAX_NAME = 120  # characters of a file name from the test's id, before its hash


@dataclasses.dataclass
class _Running:
    """The recording of the test being run, and what its phases reported."""

    recorder: Any
    path: Path
    duration: float = 0.0
    failed: bool = False


@dataclasses.dataclass(frozen=True)
class Kept:
    """A trace kept for the terminal summary."""

    nodeid: str
    path: str
    duration: float
    failed: bool


def trace_name(nodeid: str) -> str:
    """A file name for the trace of the test ``nodeid``: readable, safe, and distinct for distinct ids."""
    readable = _NAME_CHARS.sub("-", nodeid.replace("::", ".")).strip("-.")[:_MAX_NAME] or "test"
    digest = hashlib.sha1(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}.xtrace"


class TestTracer:
    """Traces each test while ``--exectracer`` is given; keeps, lists and summarizes the traces."""

    __test__ = False  # not a test class, whatever pytest collects

    def __init__(self, config: pytest.Config, directory: Path) -> None:
        self.directory = directory
        self.slower_than: float | None = config.getoption("exectracer_slower_than")
        self.failed_only: bool = config.getoption("exectracer_failed")
        self.kept: list[Kept] = []
        self.untraced: list[str] = []  # tests run while tracing was already on (by the test run itself)
        self.errors: list[str] = []
        self._running: _Running | None = None
        self._phases: dict[str, tuple[float, bool]] = {}  # a test's time and failure so far, from its reports

    # -- recording, around each test (on the process that runs it: the controller, or an xdist worker) --

    # old-style wrappers: a pytest whose pluggy lacks ``wrapper=True`` still loads this module
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        self._start(item)
        try:
            yield
        finally:
            self._stop()  # teardown's report stopped it, unless pytest never made one

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome: Any = yield
        report: pytest.TestReport = outcome.get_result()
        running = self._running
        if running is not None:
            running.duration += report.duration
            running.failed |= report.failed
            if report.when == "teardown" and self._stop() is not None and self._keeps(running):
                report.user_properties.append((PROPERTY, str(running.path)))

    def _start(self, item: pytest.Item) -> None:
        from .record.recorder import is_tracing, start_recorder

        if is_tracing():
            self.untraced.append(item.nodeid)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._free_path(self.directory / trace_name(item.nodeid))
        try:
            self._running = _Running(start_recorder(path), path)
        except Exception as error:  # the test runs untraced; the summary says why
            self.errors.append(f"{item.nodeid}: tracing did not start: {error}")

    def _stop(self) -> _Running | None:
        """Stop the running test's recording, if any; what it was (None if none ran)."""
        running, self._running = self._running, None
        if running is None:
            return None
        from .record.recorder import TracingError, stop_recorder

        try:
            stop_recorder(running.recorder)
        except TracingError as error:  # stopped by the test itself: what it wrote is kept as it is
            self.errors.append(f"{running.path.name}: {error}")
        except Exception as error:  # the session goes on; the summary says what went wrong
            self.errors.append(f"{running.path.name}: stopping failed: {type(error).__name__}: {error}")
        if not self._keeps(running):
            running.path.unlink(missing_ok=True)
        return running

    def _keeps(self, running: _Running) -> bool:
        if self.slower_than is None and not self.failed_only:
            return True
        return (self.failed_only and running.failed) or (
            self.slower_than is not None and running.duration > self.slower_than
        )

    @staticmethod
    def _free_path(path: Path) -> Path:
        """``path``, or with ``-2``, ``-3``, ... added if a test of that id was traced already (a rerun)."""
        n = 1
        found = path
        while found.exists():
            n += 1
            found = path.with_name(f"{path.stem}-{n}{path.suffix}")
        return found

    # -- reporting (on the controller, from every process's reports) --

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        duration, failed = self._phases.pop(report.nodeid, (0.0, False))
        duration, failed = duration + report.duration, failed or report.failed
        if report.when != "teardown":
            self._phases[report.nodeid] = (duration, failed)
            return
        for name, value in report.user_properties:
            if name == PROPERTY:
                self.kept.append(Kept(report.nodeid, str(value), duration, failed))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("exectracer")
        filters = _describe_filters(self.slower_than, self.failed_only)
        write(f"{len(self.kept)} trace(s) kept in {self.directory}{filters}")
        for line in self.errors:
            write(f"  {line}")
        if self.untraced:
            write(f"  {len(self.untraced)} test(s) not traced: tracing was already running (exectracer run?)")
        slowest = sorted(self.kept, key=lambda kept: -kept.duration)
        for kept in slowest[:LISTED]:
            write("")
            write(f"{kept.nodeid}  {kept.duration:.2f} s{'  FAILED' if kept.failed else ''}")
            write(f"  {kept.path}")
            for line in _top_waits(kept.path):
                write(f"    {line}")
        if len(slowest) > LISTED:
            write("")
            write(f"... and {len(slowest) - LISTED} more (the slowest are listed); open any with `exectracer view`")


def _describe_filters(slower_than: float | None, failed_only: bool) -> str:
    parts = ([f"slower than {slower_than:g} s"] if slower_than is not None else []) + (
        ["failed"] if failed_only else []
    )
    return f" (tests {' or '.join(parts)})" if parts else ""


def _top_waits(path: str) -> list[str]:
    """One line for each of a trace's top waits: category, total, count and where; or why there are none."""
    from . import report as text
    from .reader import load

    try:
        with warnings.catch_warnings():  # a trace cut short still lists its waits
            warnings.simplefilter("ignore")
            waits = load(path).analysis.summary()["top_waits"][:TOP_WAITS]
    except Exception as error:  # a damaged or unreadable file: say so, list the others
        return [f"cannot read it: {text.printable(str(error)).splitlines()[0] if str(error) else type(error).__name__}"]
    if not waits:
        return ["no waits"]
    lines = []
    for wait in waits:
        place = _place(wait)
        caller = wait.get("caller")
        if caller and _place(caller) != place:
            place += f", from {_place(caller)}"
        lines.append(f"{wait['category']:<8} {text.duration(wait['total_ns']):>9}  {wait['count']:>6,}x  {place}")
    return lines


def _place(frame: dict[str, Any]) -> str:
    """``function (file:line)`` of a frame of the summary's top waits."""
    from .report import printable

    function, file, line = frame.get("function"), frame.get("file"), frame.get("line")
    if not function:
        return "(stack unknown)"
    return f"{printable(function)} ({printable(os.path.basename(file or '?'))}:{line})"
