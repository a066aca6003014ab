"""``exectracer merge``: several processes' traces into one file that opens as they do together."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import exectracer
from exectracer.merge import MergeError, merge
from exectracer.reader import TraceWarning

from support.process_traces import collecting_parent, process, runnable_child
from support.tracebuilder import TraceBuilder

CLI = [sys.executable, "-m", "exectracer"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    return [
        collecting_parent(process(10, 1)).write(tmp_path / "a.xtrace", stop_ns=2000),
        runnable_child(process(11, 10)).write(tmp_path / "b.xtrace", stop_ns=2000),
    ]


def comparable(trace: exectracer.Trace) -> dict:
    doc = trace.analysis.summary([100, 1000])
    del doc["trace"]["format_version"]  # 2 for a merged file
    return doc


def test_a_merged_file_reads_as_its_inputs_do_together(inputs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "all.xtrace"
    result = run("merge", *map(str, inputs), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Merged 2 processes" in result.stderr
    merged = exectracer.load(out)
    assert [p.pid for p in merged.processes] == [10, 11]
    assert comparable(merged) == comparable(exectracer.load(inputs))
    assert merged.version == 2


def test_merged_files_merge_again(inputs: list[Path], tmp_path: Path) -> None:
    first = tmp_path / "first.xtrace"
    merge(inputs, first)
    third = runnable_child(process(12, 10)).write(tmp_path / "c.xtrace", stop_ns=2500)
    merge([first, third], tmp_path / "all.xtrace")
    assert [p.pid for p in exectracer.load(tmp_path / "all.xtrace").processes] == [10, 11, 12]


def test_a_killed_process_is_merged_as_far_as_it_got(inputs: list[Path], tmp_path: Path) -> None:
    killed = runnable_child(process(12, 10)).write(tmp_path / "c.xtrace", stop_ns=None, truncate=30)
    result = run("merge", *map(str, inputs), str(killed), "-o", str(tmp_path / "all.xtrace"))
    assert result.returncode == 0, result.stderr
    assert f"warning: {killed}: merged what was readable" in result.stderr
    with pytest.warns(TraceWarning, match="no END chunk"):
        trace = exectracer.load(tmp_path / "all.xtrace")
    assert [p.clean_end for p in trace.processes] == [True, True, False]


@pytest.mark.parametrize(
    "case",
    ["not a trace", "twice", "a copy", "out exists", "unalignable", "missing", "empty directory"],
)
def test_bad_input_is_one_clear_line(case: str, inputs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "all.xtrace"
    args = [str(p) for p in inputs]
    if case == "not a trace":
        (tmp_path / "notes.txt").write_text("hello\n")
        args.append(str(tmp_path / "notes.txt"))
        expected = "notes.txt: not an exectracer trace"
    elif case == "twice":
        args.append(args[0])
        expected = "a.xtrace: given twice"
    elif case == "a copy":
        shutil.copy(inputs[0], tmp_path / "copy.xtrace")
        args.append(str(tmp_path / "copy.xtrace"))
        expected = "copy.xtrace: the same recording as"
    elif case == "out exists":
        out.write_bytes(b"mine")
        expected = "all.xtrace exists: not overwritten"
    elif case == "unalignable":
        b = TraceBuilder()
        b.metadata.update(pid=30, hostname="elsewhere")
        del b.metadata["start_wall_ns"]
        args.append(str(b.write(tmp_path / "far.xtrace", 10)))
        expected = "pid 30 on host elsewhere has no wall-clock anchor"
    elif case == "missing":
        args.append(str(tmp_path / "nowhere.xtrace"))
        expected = "nowhere.xtrace: No such file or directory"
    else:
        (tmp_path / "empty").mkdir()
        args = [str(tmp_path / "empty")]
        expected = "a directory without any *.xtrace file"
    result = run("merge", *args, "-o", str(out))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exectracer: error:") and expected in lines[0], result.stderr
    if case == "out exists":
        assert out.read_bytes() == b"mine"
    else:
        assert not out.exists()


def test_merge_needs_an_output(inputs: list[Path]) -> None:
    result = run("merge", str(inputs[0]))
    assert result.returncode == 2 and "Missing option '-o'" in result.stderr


def test_merge_api_refuses_an_existing_output(inputs: list[Path]) -> None:
    with warnings.catch_warnings(), pytest.raises(MergeError, match="exists: not overwritten"):
        merge(inputs, inputs[0])
