"""``exectracer summary`` and ``exectracer pprof``, run for real in subprocesses."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exectracer.format.events import Kind

from support.model_trace import END, TASK, model_trace
from support.tracebuilder import TraceBuilder
from support.waiting import wait_for

CLI = [sys.executable, "-m", "exectracer"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return model_trace().write(tmp_path / "model.xtrace", stop_ns=END)


def test_summary_report(model_path: Path) -> None:
    result = run("summary", "--width", "0", str(model_path), cwd=model_path.parent)  # names in full
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in (
        "Goroutines by start function",
        "app.handler",
        "concurrent.futures.thread._worker",
        "Scheduler latency",
        "Minimum mutator utilization",
        "Top waits",
        "app.read_backend",
    ):
        assert text in out
    assert result.stderr == ""


def test_summary_json(model_path: Path) -> None:
    result = run("summary", "--json", str(model_path), cwd=model_path.parent)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    task = next(g for g in doc["goroutines"] if g["id"] == TASK)
    assert task["time_ns"]["blocked"]["network"] == 300
    assert doc["trace"]["events"] > 0 and doc["trace"]["duration_ns"] == END


def test_summary_json_is_indented_only_on_a_terminal(model_path: Path) -> None:
    piped = run("summary", "--json", str(model_path), cwd=model_path.parent)
    assert piped.returncode == 0 and piped.stdout.count("\n") == 1
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [*CLI, "summary", "--json", str(model_path)], stdout=follower, stderr=subprocess.DEVNULL, cwd=model_path.parent
    )
    os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 65536):
            shown += chunk
    except OSError:  # Linux: the terminal closed with the child
        pass
    finally:
        os.close(leader)
    assert child.wait(timeout=120) == 0
    assert shown.count(b"\n") > 20 and json.loads(shown) == json.loads(piped.stdout)


def test_untrusted_names_are_escaped_in_the_report(tmp_path: Path) -> None:
    b = model_trace()
    b.task(50, 10, "evil\x1b[31mred\x07")
    result = run("summary", str(b.write(tmp_path / "evil.xtrace", stop_ns=END)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\x1b[31mred\\x07" in result.stdout


def test_pprof_writes_a_profile_go_reads(model_path: Path) -> None:
    result = run("pprof", "--type", "net", str(model_path), cwd=model_path.parent)
    assert result.returncode == 0, result.stderr
    out = model_path.parent / "model.net.pb.gz"
    assert "Wrote the net profile (1 waits, 300ns)" in result.stdout
    go = shutil.which("go")
    assert go, "Go is needed for `go tool pprof`"
    top = subprocess.run([go, "tool", "pprof", "-top", "-lines", str(out)], capture_output=True, text=True, timeout=120)
    assert top.returncode == 0, top.stderr
    assert "app.read_backend app.py:20" in top.stdout


def test_pprof_selections(model_path: Path) -> None:
    out = model_path.parent / "sel.pb.gz"
    result = run(
        "pprof",
        "-t",
        "net",
        "--start",
        "300ns",
        "--end",
        "450ns",
        "-o",
        str(out),
        str(model_path),
        cwd=model_path.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "150ns" in result.stdout
    result = run("pprof", "-t", "sync", "--group", "app.work", "-o", str(out), str(model_path), cwd=model_path.parent)
    assert "(1 waits, 200ns)" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["pprof", "-t", "disk", "{trace}"], "'disk' is not one of"),
        (["pprof", "-t", "net", "--start", "soon", "{trace}"], "'soon' is not a duration"),
        (["pprof", "-t", "net", "--start", "2s", "--end", "1s", "{trace}"], "empty time range"),
        (["pprof", "{trace}"], "Missing option '-t' / '--type'"),
        (["summary", "{dir}/missing.xtrace"], "No such file or directory"),
        (["summary", "{dir}/empty.xtrace"], "empty file: not an exectracer trace"),
        (["summary", "{dir}/garbage.xtrace"], "not an exectracer trace"),
        (["summary", "{dir}/headeronly.xtrace"], "nothing readable in the trace"),
        (["summary", "{dir}/fifo.xtrace"], "no data came through the pipe"),
    ],
)
def test_bad_input_is_one_clear_line(model_path: Path, args: list[str], message: str) -> None:
    d = model_path.parent
    (d / "empty.xtrace").write_bytes(b"")
    (d / "garbage.xtrace").write_bytes(b"GIF89a" + bytes(range(256)) * 4)
    (d / "headeronly.xtrace").write_bytes(model_path.read_bytes()[:16])
    TraceBuilder().write(d / "noevents.xtrace", stop_ns=0)
    if not (d / "fifo.xtrace").exists():
        os.mkfifo(d / "fifo.xtrace")  # nobody writes to it: reading must not wait for a writer
    result = run(*(a.format(trace=model_path, dir=d) for a in args), cwd=d)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_damaged_trace_is_summarized_with_a_warning(tmp_path: Path) -> None:
    builder = model_trace()
    builder.event(Kind.THREAD_END, END - 1, 99)
    data = builder.data(stop_ns=None, chunk_events=10)
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF  # corrupt one chunk in the middle
    path = tmp_path / "damaged.xtrace"
    path.write_bytes(bytes(damaged[:-7]))  # and tear the tail
    result = run("summary", "--json", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "damaged chunk" in result.stderr and "truncated" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["trace"]["lost"]["chunks_skipped"] >= 1 and doc["trace"]["lost"]["truncated_bytes"] > 0


def start_viewer(trace: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``exectracer view`` in a subprocess; returns it and the URL it printed."""
    proc = subprocess.Popen([*CLI, "view", str(trace), "--no-browser", *args], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "exectracer viewer for" in line, line
    return proc, line.split(": ", 1)[1].split()[0]


def test_view_serves_until_ctrl_c(model_path: Path) -> None:
    import signal
    import urllib.request

    proc, url = start_viewer(model_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/info", timeout=30) as resp:
            assert json.load(resp)["duration_ns"] == END
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert b"<html" in resp.read().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "viewer stopped" in err and "Traceback" not in err


def test_view_reports_a_busy_port(model_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("view", str(model_path), "--no-browser", "--port", str(port), cwd=model_path.parent)
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_while_reading_a_trace_is_one_line(tmp_path: Path) -> None:
    import os
    import signal

    fifo = tmp_path / "slow.xtrace"
    os.mkfifo(fifo)  # the command waits for a writer to come: it is still reading when interrupted
    proc = subprocess.Popen([*CLI, "summary", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan")
        if wchan.exists():  # Linux: where in the kernel it sleeps (a writer would let it go on, to an empty file)
            wait_for(lambda: "poll" in wchan.read_text(), "the command to wait for the pipe", interval=0.05)
        else:
            time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "exectracer: error: interrupted"


def test_a_trace_can_be_read_from_a_pipe(model_path: Path) -> None:
    """``exectracer summary <(zcat trace.gz)`` and a named pipe: read to the writer's end, like a file
    (the writer may come after the reader has opened the pipe: the reader waits for it)."""
    fifo = model_path.parent / "pipe.xtrace"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", 'cat "$0" > "$1"', str(model_path), str(fifo)])
    try:
        result = run("summary", "--json", str(fifo), cwd=model_path.parent)
    finally:
        writer.wait(timeout=60)
    assert result.returncode == 0, result.stderr
    expected = run("summary", "--json", str(model_path), cwd=model_path.parent)
    assert json.loads(result.stdout) == json.loads(expected.stdout)


def test_pprof_of_a_trace_that_spans_no_time_is_empty(tmp_path: Path) -> None:
    TraceBuilder().write(tmp_path / "noevents.xtrace", stop_ns=0)
    result = run("pprof", "-t", "net", "-o", "empty.pb.gz", "noevents.xtrace", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(0 waits, 0)" in result.stdout and (tmp_path / "empty.pb.gz").stat().st_size > 0
