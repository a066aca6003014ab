"""bench/big_trace.py, the generator of big traces the scale benchmarks read: what it writes is a trace the
analyses take as a real one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import exectracer

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_a_generated_trace_is_a_real_service_trace_without_anomalies(tmp_path: Path) -> None:
    path = tmp_path / "big.xtrace"
    done = subprocess.run(
        [sys.executable, str(BENCH / "big_trace.py"), "--events", "60000", "-o", str(path), "--concurrency", "16"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    trace = exectracer.load(path, strict=True)
    summary = trace.analysis.summary()
    assert summary["trace"]["lost"]["anomalies"] == {} and summary["trace"]["duration_known"]
    assert 50_000 <= trace.event_count <= 70_000
    handlers = next(group for group in summary["groups"] if group["start_function"] == "app.handlers.handle_request")
    assert handlers["count"] == len(trace.tasks) > 1000
    assert all(handlers["time_ns"]["blocked"][category] > 0 for category in ("network", "sync", "sleep", "syscall"))
    assert handlers["time_ns"]["runnable"] > 0 and summary["gc"]["collections"] > 0
    assert {thread.name for thread in trace.threads} == {"MainThread", "app.workers.work"}
    assert summary["user_tasks"][0]["count"] == summary["user_regions"][0]["count"] == len(trace.tasks)
    again = subprocess.run(
        [sys.executable, str(BENCH / "big_trace.py"), "--events", "1000", "-o", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten
