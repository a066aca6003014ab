"""The ``record`` fixture: record a real program, then read its trace back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import exectracer

from support.recorded import Recorded


@pytest.fixture
def record(tmp_path: Path) -> Callable[..., Recorded]:
    """Run ``fn()`` under the tracer and return the loaded trace."""

    def run(fn: Callable[[], object], **options: object) -> Recorded:
        path = tmp_path / "test.xtrace"
        with exectracer.trace(path, **options):
            fn()
        return Recorded(path)

    return run
