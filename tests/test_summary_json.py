"""``summary --json``'s goroutine rows, written column by column, are the text ``json.dumps`` makes of the summary.

The frozen traces hold ordinary names; these hold what the column-wise
writer must encode the way the json module does: quotes, backslashes,
``%`` (the row template's own sign), control characters, text beyond ASCII,
goroutines without a start function, several processes, no goroutine at
all, a goroutine with no state event and a trace whose last chunk is cut
(a live file still being written).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import exectracer
from exectracer.analysis import summary
from exectracer.format.events import Category, Kind
from exectracer.reader import TraceWarning

from support.model_trace import END, model_trace
from support.process_traces import collecting_parent, process, runnable_child
from support.tracebuilder import TraceBuilder

ODD_NAMES = ('say "hi"', "back\\slash", "100% %s %d %(x)s", "tab\tnew\nline\x1b\x00", "café ünïcode ☃ 😀", "")


def _odd_trace() -> TraceBuilder:
    """The model trace, with tasks and threads named every way :data:`ODD_NAMES` says, some without a function."""
    b = model_trace()
    for i, name in enumerate(ODD_NAMES):
        task = 100 + i
        b.task(task, 50, f"app.{i}%s", name=name)
        b.ready(60, task).event(Kind.TASK_STEP, 70, task)
        b.wait(Kind.TASK_SUSPEND, 80, task, Category.OTHER, b.stack(("app.wait", "app.py", 1)))
        b.thread(200 + i, 50, None, name, created=40)  # no start function: its label is its name and role
    b.task(300, 60, "app.quiet")  # no state event: a row of zeros
    return b


def _text(path: Path) -> tuple[str, dict]:
    """The summary's JSON text in batches, and the summary document."""
    analysis = exectracer.load(path).analysis
    return "".join(analysis.summary_json()), analysis.summary()


@pytest.mark.parametrize("batch", [1, 3, 10_000])
def test_rows_are_the_text_json_dumps_makes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    monkeypatch.setattr(summary, "ROW_BATCH", batch)
    text, doc = _text(_odd_trace().write(tmp_path / "odd.xtrace", stop_ns=END))
    assert text == json.dumps(doc)
    names = {row["name"] for row in json.loads(text)["goroutines"]}
    assert set(ODD_NAMES) <= names
    quiet = next(row for row in doc["goroutines"] if row["id"] == 300)
    assert quiet["time_ns"]["running"] == quiet["time_ns"]["runnable"] == 0


def test_a_trace_still_being_written(tmp_path: Path) -> None:
    path = _odd_trace().write(tmp_path / "live.xtrace", stop_ns=None, truncate=7, chunk_events=16)
    with pytest.warns(TraceWarning, match="truncated"):
        text, doc = _text(path)
    assert text == json.dumps(doc) and doc["trace"]["lost"]["truncated_bytes"] > 0


def test_a_trace_of_no_goroutine(tmp_path: Path) -> None:
    text, doc = _text(TraceBuilder().write(tmp_path / "empty.xtrace", stop_ns=100))
    assert text == json.dumps(doc) and doc["goroutines"] == []


def test_several_processes(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    collecting_parent(process(10, 1)).write(folder / "a.xtrace", stop_ns=2000)
    runnable_child(process(11, 10)).write(folder / "b.xtrace", stop_ns=2000)
    text, doc = _text(folder)
    assert text == json.dumps(doc)
    assert {row["pid"] for row in doc["goroutines"]} == {10, 11}
