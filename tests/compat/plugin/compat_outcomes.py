"""A pytest plugin writing each test's outcome as one JSON line the moment the test ends.

The compat runner loads it into a suite's run with ``-p compat_outcomes --compat-outcomes PATH``; a run killed
part-way still leaves the outcomes of the tests it finished. Each line is
``{"test": node id, "outcome": word, "message": the failure in one line, "seconds": setup, call and teardown}``,
the word one of passed, failed, error (setup or teardown failed, or the module could not be collected), skipped,
xfailed and xpassed.
"""

from __future__ import annotations

import json
import re
from typing import TextIO

import pytest

# a line naming an exception, as pytest prints it ("E   ValueError: …") or inside an exception group ("| …")
EXCEPTION_LINE = re.compile(
    r"^(?:E\s+|\s*\|\s*)*((?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Warning|Group|Failed|Exit|Interrupt)\b.*)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--compat-outcomes", metavar="PATH", help="append each test's outcome to PATH, as JSON lines")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--compat-outcomes")
    if path:
        config.pluginmanager.register(OutcomeWriter(open(path, "a", encoding="utf-8")), "compat-outcome-writer")


class OutcomeWriter:
    """Folds a test's setup, call and teardown reports into one outcome and appends it to the file."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.pending: dict[str, tuple[str, str, float]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        word = phase_outcome(report)
        outcome, message, seconds = self.pending.get(report.nodeid, ("passed", "", 0.0))
        if RANK[word] > RANK[outcome]:
            outcome, message = word, one_line(report.longreprtext) if word in ("failed", "error") else ""
        self.pending[report.nodeid] = (outcome, message, seconds + report.duration)
        if report.when == "teardown":
            self.write(report.nodeid, *self.pending.pop(report.nodeid))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.write(report.nodeid, "error", one_line(report.longreprtext), 0.0)

    def write(self, test: str, outcome: str, message: str, seconds: float) -> None:
        line = {"test": test, "outcome": outcome, "message": message, "seconds": round(seconds, 3)}
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()

    def pytest_unconfigure(self) -> None:
        self.file.close()


RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 1, "failed": 2, "error": 3}  # the worst phase wins


def phase_outcome(report: pytest.TestReport) -> str:
    """The outcome one phase gives the test: a failed setup or teardown is an error, not a failure."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "skipped" if report.skipped else "passed"


def one_line(text: str) -> str:
    """The failure in a line of at most 200 characters: the innermost exception named, else the first ``E`` line."""
    lines = text.splitlines()
    named = [m.group(1) for m in map(EXCEPTION_LINE.match, lines) if m]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    chosen = named[-1] if named else errors[0] if errors else next((s for s in reversed(lines) if s.strip()), "")
    return chosen.strip()[:200]
