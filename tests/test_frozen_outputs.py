"""The reading side's answers on recorded traces equal those frozen before the goroutine tables became columns.

Each trace in ``tests/data/frozen`` (asyncio, uvloop, threads, trio, user
annotations, several processes, a generated service trace) has beside it
the summary, profiles, tables and SQL tables the earlier code computed
(``tests/support/frozen.py``); the code now must compute the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.frozen import outputs, reference

FROZEN = Path(__file__).parent / "data" / "frozen"
TRACES = sorted(FROZEN.glob("*.xtrace"))


def test_every_kind_of_trace_is_frozen() -> None:
    assert {p.stem for p in TRACES} >= {"asyncio", "uvloop", "threads", "trio", "annotated", "processes", "generated"}


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_outputs_equal_the_frozen_ones(path: Path) -> None:
    pytest.importorskip("duckdb")
    now, before = outputs(path), reference(path)
    assert now.keys() == before.keys()
    for part in before:  # part by part, so that a difference names its part
        assert now[part] == before[part], part
