"""The summary document's top waits, labels and duration, and the report's layout, on hand-built traces."""

from __future__ import annotations

from pathlib import Path

import pytest

import exectracer
from exectracer.analysis.summary import total_time
from exectracer.format.events import Category, Kind
from exectracer.reader import TraceWarning
from exectracer.report import duration, flow, render, shorten

from support.model_trace import END, model_trace
from support.tracebuilder import TraceBuilder

STDLIB = "/usr/lib/python3.12/asyncio/"
PACKAGES = "/srv/venv/lib/python3.12/site-packages/"


def waiting_tasks(b: TraceBuilder, stacks: list[int], category: int = Category.SLEEP) -> None:
    """One task per stack, blocked in it from 100 to 1100 ns."""
    for i, stack in enumerate(stacks):
        g = 10 + i
        b.task(g, 0, "app.handler")
        b.ready(0, g).event(Kind.TASK_STEP, 50, g)
        b.wait(Kind.TASK_SUSPEND, 100, g, category, stack)
        b.ready(1100, g).event(Kind.TASK_STEP, 1100, g).event(Kind.TASK_DONE, 1200, g)


def load(b: TraceBuilder, tmp_path: Path, stop_ns: int | None = 2000) -> exectracer.Trace:
    path = b.write(tmp_path / "t.xtrace", stop_ns=stop_ns)
    if stop_ns is not None:
        return exectracer.load(path)
    with pytest.warns(TraceWarning, match="no END chunk"):
        return exectracer.load(path)


def test_top_waits_are_keyed_by_site_and_the_programs_caller(tmp_path: Path) -> None:
    b = TraceBuilder()
    sleep = ("asyncio.tasks.sleep", STDLIB + "tasks.py", 649)
    framework = ("web.Server.handle", PACKAGES + "web/server.py", 70)
    via_one_route = b.stack(sleep, ("app.pause", "/srv/app/app.py", 5), framework)
    via_another_route = b.stack(sleep, ("app.pause", "/srv/app/app.py", 5), ("app.retry", "/srv/app/app.py", 9))
    elsewhere = b.stack(sleep, ("app.poll", "/srv/app/app.py", 20), framework)
    library_only = b.stack(sleep, framework)
    waiting_tasks(b, [via_one_route, via_another_route, elsewhere, library_only])
    waits = load(b, tmp_path).analysis.summary()["top_waits"]
    by_caller = {(w["caller"] or {}).get("function"): w for w in waits}
    assert set(by_caller) == {"app.pause", "app.poll", None} and len(waits) == 3
    pause = by_caller["app.pause"]  # two stacks, one site, one caller: one row
    assert (pause["count"], pause["total_ns"]) == (2, 2000)
    assert pause["caller"] == {"function": "app.pause", "file": "/srv/app/app.py", "line": 5}
    assert all((w["function"], w["file"], w["line"]) == sleep for w in waits)
    assert by_caller[None]["count"] == 1


def test_a_site_in_the_programs_code_is_its_own_caller(tmp_path: Path) -> None:
    b = TraceBuilder()
    waiting_tasks(b, [b.stack(("app.main", "app.py", 3))], Category.SYNC)
    (wait,) = load(b, tmp_path).analysis.summary()["top_waits"]
    assert wait["caller"] == {"function": "app.main", "file": "app.py", "line": 3}
    assert "(the same)" in render(load(b, tmp_path).analysis.summary(), "t", 80)


def test_goroutines_without_a_start_function_are_labelled_by_what_is_known(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.thread(1, 0, None, "MainThread")
    b.thread(2, 0, None, "Dummy-1")  # running before tracing began
    b.thread(3, 0, None, "Dummy-2")
    b.thread(4, 10, None, "partial-target", created=5)  # its target had no code to name
    b.thread(5, 10, "app.work", "worker", created=5)
    doc = load(b, tmp_path).analysis.summary()
    labels = {g["id"]: g["label"] for g in doc["goroutines"]}
    assert labels == {
        1: "MainThread (main program)",
        2: "Dummy-1 (started before tracing)",
        3: "Dummy-2 (started before tracing)",
        4: "partial-target (start function not recorded)",
        5: "app.work",
    }
    groups = {grp["label"]: grp["count"] for grp in doc["groups"]}
    assert groups == {
        "MainThread (main program)": 1,
        "(threads started before tracing)": 2,
        "partial-target (start function not recorded)": 1,
        "app.work": 1,
    }


def test_the_main_thread_is_known_by_its_os_id(tmp_path: Path) -> None:
    b = TraceBuilder()
    b.metadata["pid"] = 4242
    b.thread(1, 0, None, "Dummy-1")
    b.event(Kind.THREAD_START, 0, 2, 4242).event(Kind.THREAD_NAME, 0, 2, b.string("server"))  # renamed
    labels = {g["id"]: g["label"] for g in load(b, tmp_path).analysis.summary()["goroutines"]}
    assert labels == {1: "Dummy-1 (started before tracing)", 2: "server (main program)"}


def test_a_trace_without_its_end_has_an_unknown_duration(tmp_path: Path) -> None:
    nothing = TraceBuilder()
    doc = load(nothing, tmp_path, stop_ns=None).analysis.summary()
    assert doc["trace"]["duration_known"] is False and doc["trace"]["duration_ns"] == 0
    assert "duration unknown (no end recorded, no event read), 0 events" in render(doc, "t")
    b = model_trace()
    doc = load(b, tmp_path, stop_ns=None).analysis.summary()
    assert "duration unknown (no end recorded; the events read span 4.5µs)" in render(doc, "t")
    doc = load(b, tmp_path, stop_ns=END).analysis.summary()
    assert doc["trace"]["duration_known"] is True and ", 10µs, " in render(doc, "t")


@pytest.mark.parametrize("width", [72, 80, 100, 120, 160])
def test_the_report_fits_the_width_and_keeps_its_numbers(tmp_path: Path, width: int) -> None:
    b = model_trace()
    deep = "app." + ".".join(f"layer{i}" for i in range(30)) + ".handler"
    b.task(50, 10, deep)
    doc = load(b, tmp_path, stop_ns=END).analysis.summary()
    lines = render(doc, "/very/long/" * 20 + "t.xtrace", width).splitlines()
    assert max(len(line) for line in lines) <= width
    for grp in doc["groups"]:  # each row keeps its label's end and its whole numbers
        (row,) = [line for line in lines if grp["label"][-10:] in line and f"  {grp['kind']} " in line]
        assert duration(total_time(grp["time_ns"])) in row.split()
    full = render(doc, "t", 0)
    assert deep in full and "…" not in full


def test_shorten_and_flow() -> None:
    assert shorten("asyncio.tasks.sleep", 10, "start") == "…sks.sleep"
    assert shorten("MainThread (main program)", 12) == "MainT…ogram)"
    assert shorten("short", 10) == "short"
    text = flow("Lead words here:", ["p50 1ms", "p90 20ms", "p99 300ms"], 24)
    assert text.splitlines() == ["Lead words here:", "  p50 1ms, p90 20ms,", "  p99 300ms"]
    assert flow("Lead words here:", ["p50 1ms", "p90 20ms", "p99 300ms"], 0).count("\n") == 0
