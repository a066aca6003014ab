"""The reading side's answers on recorded traces equal those frozen before the goroutine tables became columns.

Each trace in ``tests/data/frozen`` (asyncio, uvloop, threads, trio, user
annotations, several processes, a generated service trace) has beside it
the summary, profiles, tables, SQL tables and exports the earlier code
computed (``tests/support/frozen.py``); the code now must compute the same,
and ``summary --json`` (written a batch of goroutine rows at a time) the
same text as ``json.dumps`` of the earlier summary.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import exectracer
from exectracer.analysis import summary

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


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_summary_json_in_batches_is_the_frozen_text(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "ROW_BATCH", 7)  # several batches even on a small trace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = exectracer.load(path)
    text = "".join(trace.analysis.summary_json())
    assert hashlib.sha256(text.encode()).hexdigest() == reference(path)["summary_json_sha256"]


def test_summary_json_command_writes_the_frozen_text() -> None:
    path = FROZEN / "generated.xtrace"
    done = subprocess.run(
        [sys.executable, "-m", "exectracer", "summary", "--json", str(path)], capture_output=True, check=True
    )
    assert done.stdout.endswith(b"\n")
    assert hashlib.sha256(done.stdout[:-1]).hexdigest() == reference(path)["summary_json_sha256"]
