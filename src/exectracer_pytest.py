"""The ``pytest11`` entry point of exectracer's pytest plugin: its options, and the plugin once they ask for it.

A module of its own, outside the ``exectracer`` package: pytest loads every
installed plugin in every session, and a session that does not ask for
traces must not find exectracer in ``sys.modules`` (``exectracer.pytest_plugin``
does the work, and ``docs/pytest.md`` tells how to use it).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exectracer", "execution traces of tests (exectracer)")
    group.addoption(
        "--exectracer",
        metavar="DIR",
        default=None,
        help="trace each test (its fixtures included) into DIR/<test id>.xtrace",
    )
    group.addoption(
        "--exectracer-slower-than",
        metavar="SECONDS",
        type=_seconds,
        default=None,
        help="keep only the traces of tests that took longer (setup, call and teardown together)",
    )
    group.addoption(
        "--exectracer-failed",
        action="store_true",
        default=False,
        help="keep only the traces of tests that failed or errored (with --exectracer-slower-than: either)",
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("exectracer")
    if directory is None:
        if config.getoption("exectracer_slower_than") is not None or config.getoption("exectracer_failed"):
            raise pytest.UsageError("--exectracer-slower-than and --exectracer-failed need --exectracer=DIR")
        return
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise pytest.UsageError(f"--exectracer: {directory} exists and is not a directory")
    from exectracer.pytest_plugin import TestTracer

    config.pluginmanager.register(TestTracer(config, path), "exectracer-tracer")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise pytest.UsageError(f"--exectracer-slower-than: not a number of seconds: {text!r}") from None
    if not value >= 0:  # NaN too
        raise pytest.UsageError(f"--exectracer-slower-than: must be 0 or more, not {text}")
    return value
