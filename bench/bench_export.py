"""``exectracer export --format perfetto`` on a large trace: events per second end to end, and peak memory per event.

Records ``workload_async.py`` under exectracer (about 10 million events with
the default sizes) unless ``--trace`` names a trace, then runs
``exectracer export TRACE --format perfetto -o OUT --force`` in a fresh
process ``--runs`` times and prints the medians of wall time and peak RSS
(from ``wait4``), plus one in-process run split into its stages.
``--format chrome`` measures the Chrome JSON export of ``--start/--end``
instead (the whole trace is more than that format's viewers load).

::

    python bench/bench_export.py --runs 5
    python bench/bench_export.py --format chrome --start 0 --end 0.5
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_load import workload_trace
from bench_summary import measure

EXPORT = [sys.executable, "-m", "exectracer", "export"]
BASELINE = [sys.executable, "-c", "import exectracer.cli, exectracer.analysis, exectracer.export.perfetto"]


def stages(path: Path, out: Path) -> list[tuple[str, float]]:
    """Seconds of each stage of one Perfetto export in this process."""
    import exectracer
    from exectracer.export import perfetto
    from exectracer.export.timeline import Timeline

    marks = [("start", time.perf_counter())]
    trace = exectracer.load(path)
    marks.append(("load", time.perf_counter()))
    _ = trace.analysis.states
    marks.append(("state model", time.perf_counter()))
    _ = trace.analysis.collections
    timeline = Timeline(trace.analysis)
    marks.append(("timeline", time.perf_counter()))
    perfetto.write(timeline, out)
    marks.append(("encode and write", time.perf_counter()))
    return [(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="exports to time (at least 3)")
    parser.add_argument("--rounds", type=int, default=12500, help="workload ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=5000, help="workload echo messages per connection")
    parser.add_argument("--trace", type=Path, help="export this trace instead of recording one")
    parser.add_argument("--format", choices=("perfetto", "chrome"), default="perfetto")
    parser.add_argument("--start", help="--start of the export (chrome: default 0)")
    parser.add_argument("--end", help="--end of the export (chrome: default 0.5)")
    args = parser.parse_args()
    runs = max(args.runs, 3)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        path = workload_trace(args, tmp)
        out = Path(tmp) / f"out.{args.format}"
        command = [*EXPORT, str(path), "--format", args.format, "-o", str(out), "--force"]
        if args.format == "chrome":
            command += ["--start", args.start or "0", "--end", args.end or "0.5"]
        else:
            command += [*(["--start", args.start] if args.start else []), *(["--end", args.end] if args.end else [])]
        log = Path(tmp) / "export.log"
        _, base_rss = measure(BASELINE, log)
        results = [measure(command, log) for _ in range(runs)]
        print(log.read_text().strip())
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        import exectracer

        events = exectracer.load(path).event_count
        print(f"trace: {events:,} events, {path.stat().st_size / 1e6:.1f} MB; output {out.stat().st_size / 1e6:.1f} MB")
        wall = statistics.median(t for t, _ in results)
        peak = statistics.median(r for _, r in results)
        print(
            f"export --format {args.format}: median {wall:.2f} s = {events / wall / 1e6:.2f} M trace events/s"
            f"  (runs: {' '.join(f'{t:.2f}' for t, _ in results)})"
        )
        print(
            f"peak RSS: median {peak / 1e6:.0f} MB = {peak / events:.0f} bytes/event;"
            f" above the {base_rss / 1e6:.0f} MB of the interpreter with exectracer imported:"
            f" {(peak - base_rss) / events:.0f} bytes/event"
        )
        if args.format == "perfetto":
            split = stages(path, out)
            print("one run in this process: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in split))
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
