"""The summary of a real recorded web server: top waits keyed by the program's own code, the report's width,
the main thread's label, a truncated trace's unknown duration; ``exectracer summary`` run for real.

Not a recorder test (it reads what the recorder makes): on Python 3.12+, aiohttp starts its handler tasks
with ``asyncio.Task(..., eager_start=True)``, whose waits the recorder does not see yet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = Path(__file__).parent / "programs" / "web_waits.py"
CLI = [sys.executable, "-m", "exectracer"]
SOURCE = PROGRAM.read_text().splitlines()


def line_of(text: str, after: str) -> int:
    """The number of the first line holding ``text`` after the line that starts with ``after``."""
    start = next(i for i, line in enumerate(SOURCE) if line.startswith(after))
    return next(i for i, line in enumerate(SOURCE[start:], start) if text in line) + 1


SLEEP_LINE = line_of("await asyncio.sleep", "async def sleep_handler")
LOCK_SLEEP_LINE = line_of("await asyncio.sleep", "async def lock_handler")
LOCK_LINE = line_of("async with shared.lock", "async def lock_handler")


def summary(trace: Path, *args: str, columns: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [*CLI, "summary", *args, str(trace)], capture_output=True, text=True, timeout=300, env=env, check=True
    )


@pytest.fixture(scope="module")
def web_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trace of ``programs/web_waits.py``, recorded by ``exectracer run``."""
    path = tmp_path_factory.mktemp("web") / "web.xtrace"
    run = subprocess.run(
        [*CLI, "run", "-o", str(path), str(PROGRAM)], capture_output=True, text=True, timeout=300, cwd=path.parent
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["slept"] * 4 + ["locked"] * 4
    return path


@pytest.fixture(scope="module")
def doc(web_trace: Path) -> dict:
    return json.loads(summary(web_trace, "--json").stdout)


def waits_from(doc: dict, category: str, site: str, handler: str) -> list[dict]:
    return [
        w
        for w in doc["top_waits"]
        if w["category"] == category
        and w["function"] == site
        and w["caller"]
        and w["caller"]["function"] == f"__main__.{handler}"
    ]


def test_top_waits_tell_the_endpoints_apart_by_the_programs_code(doc: dict) -> None:
    (sleep,) = waits_from(doc, "sleep", "asyncio.tasks.sleep", "sleep_handler")
    (lock_sleep,) = waits_from(doc, "sleep", "asyncio.tasks.sleep", "lock_handler")
    (acquire,) = waits_from(doc, "sync", "asyncio.locks.Lock.acquire", "lock_handler")
    assert sleep["count"] == lock_sleep["count"] == 4  # every request slept once, in its own handler
    assert 1 <= acquire["count"] <= 3  # the first /lock request held the lock until the others had come
    assert (sleep["caller"]["line"], lock_sleep["caller"]["line"], acquire["caller"]["line"]) == (
        SLEEP_LINE,
        LOCK_SLEEP_LINE,
        LOCK_LINE,
    )
    assert sleep["caller"]["file"].endswith("web_waits.py") and "site-packages" not in sleep["file"]
    # a wait in aiohttp's own keep-alive loop has no frame of the program
    assert any(w["caller"] is None and w["function"].startswith("aiohttp.") for w in doc["top_waits"])
    # each key is one row
    keys = [(w["category"], w["function"], w["line"], json.dumps(w["caller"])) for w in doc["top_waits"]]
    assert len(keys) == len(set(keys))


def test_the_report_fits_80_columns_and_keeps_the_rows_apart(web_trace: Path, doc: dict) -> None:
    report = summary(web_trace, columns="80").stdout
    lines = report.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    waits = lines[next(i for i, line in enumerate(lines) if line.startswith("Top waits")) :]
    handlers = {}
    for handler, line in (("sleep_handler", SLEEP_LINE), ("lock_handler", LOCK_SLEEP_LINE)):
        (row,) = [r for r in waits if r.split()[:1] == ["sleep"] and re.search(rf"{handler[-9:]}( \S+)?:{line}$", r)]
        handlers[handler] = row
    assert handlers["sleep_handler"] != handlers["lock_handler"]
    # the numbers are whole: every group's count is in its row
    groups = lines[next(i for i, line in enumerate(lines) if line.startswith("Goroutines")) :]
    for grp in doc["groups"][:5]:
        assert any(f"  {grp['kind']}" in row and f" {grp['count']:,} " in row for row in groups)


@pytest.mark.parametrize("columns", ["60", "100", "132", "200"])
def test_the_report_fits_other_widths(web_trace: Path, columns: str) -> None:
    lines = summary(web_trace, columns=columns).stdout.splitlines()
    limit = max(int(columns), 72)  # the narrowest the tables of groups fit in
    assert max(len(line) for line in lines) <= limit, max(lines, key=len)


def test_width_0_shortens_nothing(web_trace: Path, doc: dict) -> None:
    report = summary(web_trace, "--width", "0", columns="80").stdout
    for grp in doc["groups"]:
        assert grp["label"] in report
    for wait in doc["top_waits"]:
        assert wait["function"] in report
    assert "…" not in report


def test_the_main_thread_is_labelled(web_trace: Path, doc: dict) -> None:
    (main,) = [grp for grp in doc["groups"] if grp["kind"] == "thread" and grp["start_function"] is None]
    assert main["label"] == "MainThread (main program)" and main["role"] == "main program" and main["count"] == 1
    assert "MainThread (main program)" in summary(web_trace, columns="80").stdout
    assert "(no start function)" not in summary(web_trace, "--width", "0").stdout


def test_a_truncated_traces_duration_is_unknown(web_trace: Path, tmp_path: Path) -> None:
    data = web_trace.read_bytes()
    cut = tmp_path / "cut.xtrace"
    cut.write_bytes(data[:-1])  # the END chunk, last, is torn: the recording's end is unknown
    doc = json.loads(summary(cut, "--json").stdout)
    assert doc["trace"]["duration_known"] is False and doc["trace"]["events"] > 0
    report = summary(cut, columns="80").stdout
    header = report.split("\n\n")[0]
    assert "duration unknown (no end recorded; the events read span " in " ".join(header.split())
    assert not re.search(r", 0, ", header)
