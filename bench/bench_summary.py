"""``exectracer summary --json`` on a large trace: events per second end to end, and peak memory per event.

Records ``workload_async.py`` under exectracer (about 10 million events with
the default sizes) unless ``--trace`` names a trace, then runs
``exectracer summary --json TRACE`` in a fresh process ``--runs`` times and
prints the medians of wall time and peak RSS (from ``wait4``), plus one
in-process run split into its stages.

::

    python bench/bench_summary.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_load import env, workload_trace

SUMMARY = [sys.executable, "-m", "exectracer", "summary", "--json"]
BASELINE = [sys.executable, "-c", "import exectracer.cli, exectracer.analysis, exectracer.export.pprof"]


def measure(command: list[str], output: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes of one run of ``command``, its output going to ``output``.

    Run before this process holds a trace: a child's peak RSS counts what
    its parent held when it forked.
    """
    t0 = time.perf_counter()
    with open(output, "wb") as out:
        child = subprocess.Popen(command, env=env(), stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{shlex.join(command)} failed with status {child.returncode}")
    return seconds, usage.ru_maxrss * 1024


def stages(path: Path) -> list[tuple[str, float]]:
    """Seconds of each stage of one ``summary --json`` in this process (its text written to /dev/null)."""
    import exectracer

    marks = [("start", time.perf_counter())]
    trace = exectracer.load(path)
    marks.append(("load", time.perf_counter()))
    analysis = trace.analysis
    # each read below computes and caches that table (a cached_property), so each stage is timed on its own
    _ = analysis.goroutines
    marks.append(("goroutines", time.perf_counter()))
    _ = analysis.states
    marks.append(("state model", time.perf_counter()))
    _ = analysis.collections
    marks.append(("collections", time.perf_counter()))
    with open(os.devnull, "w") as out:
        for piece in analysis.summary_json():
            out.write(piece)
    marks.append(("summary", time.perf_counter()))
    return [(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="summaries to time (at least 3)")
    parser.add_argument("--rounds", type=int, default=12500, help="workload ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=5000, help="workload echo messages per connection")
    parser.add_argument("--trace", type=Path, help="summarize this trace instead of recording one")
    args = parser.parse_args()
    runs = max(args.runs, 3)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        path = workload_trace(args, tmp)
        output = Path(tmp) / "summary.json"
        _, base_rss = measure(BASELINE, output)
        results = [measure([*SUMMARY, str(path)], output) for _ in range(runs)]
        events = json.loads(output.read_text())["trace"]["events"]
        print(f"trace: {events:,} events, {path.stat().st_size / 1e6:.1f} MB")
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        wall = statistics.median(t for t, _ in results)
        peak = statistics.median(r for _, r in results)
        print(
            f"summary --json: median {wall:.2f} s = {events / wall / 1e6:.2f} M events/s"
            f"  (runs: {' '.join(f'{t:.2f}' for t, _ in results)})"
        )
        print(
            f"peak RSS: median {peak / 1e6:.0f} MB = {peak / events:.0f} bytes/event;"
            f" above the {base_rss / 1e6:.0f} MB of the interpreter with exectracer imported:"
            f" {(peak - base_rss) / events:.0f} bytes/event"
        )
        print("one run in this process: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in stages(path)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stages-of"]:  # bench_compare.py --stages: one run's stages, as JSON
        print(json.dumps(stages(Path(sys.argv[2]))))
    else:
        main()
