"""``exectracer sql`` of a grouped sum over ``states`` on a large trace: wall time (load included) and peak memory.

Records ``workload_async.py`` under exectracer (about 10 million events with
the default sizes) unless ``--trace`` names a trace, then runs
``exectracer sql TRACE QUERY`` in a fresh process ``--runs`` times and
prints the medians of wall time and peak RSS (from ``wait4``), plus one
in-process run split into its stages.

``--parquet`` measures ``exectracer export --format parquet TRACE -o DIR``
the same way (each run into a new directory: events/s, peak RSS, the
dataset's bytes per event), one in-process export split into its stages,
and the same query over the dataset (``exectracer sql DIR QUERY``).

::

    python bench/bench_sql.py --runs 5
    python bench/bench_sql.py --runs 3 --parquet --trace big.xtrace   # bench/big_trace.py -o big.xtrace
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_load import workload_trace
from bench_summary import measure

QUERY = "SELECT state, count(*) AS intervals, sum(end_ns - start_ns) AS total_ns FROM states GROUP BY state"
SQL = [sys.executable, "-m", "exectracer", "sql", "--format", "csv"]
BASELINE = [sys.executable, "-c", "import exectracer.cli, exectracer.analysis, exectracer.sql.database, duckdb"]
EXPORT = [sys.executable, "-m", "exectracer", "export", "--format", "parquet"]


def stages(path: Path) -> tuple[list[tuple[str, float]], int, int]:
    """Seconds of each stage of one query in this process; the trace's events and the states' rows."""
    import exectracer
    from exectracer.sql.database import Database, duckdb_module

    marks = [("start", time.perf_counter())]
    trace = exectracer.load(path)
    marks.append(("load", time.perf_counter()))
    _ = trace.analysis.goroutines
    marks.append(("goroutines", time.perf_counter()))
    states = trace.analysis.states
    marks.append(("state model", time.perf_counter()))
    duckdb_module()
    marks.append(("import duckdb", time.perf_counter()))
    db = Database([(trace, trace.analysis, str(path))])
    db.relation("SELECT 1 FROM states LIMIT 0")
    marks.append(("tables", time.perf_counter()))
    db.relation(QUERY).fetchall()
    marks.append(("query", time.perf_counter()))
    return [(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])], trace.event_count, len(states)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="queries to time (at least 3)")
    parser.add_argument("--rounds", type=int, default=12500, help="workload ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=5000, help="workload echo messages per connection")
    parser.add_argument("--trace", type=Path, help="query this trace instead of recording one")
    parser.add_argument("--parquet", action="store_true", help="measure the Parquet export instead")
    args = parser.parse_args()
    runs = max(args.runs, 3)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        path = workload_trace(args, tmp)
        if args.parquet:
            parquet(path, Path(tmp), runs)
            return
        output = Path(tmp) / "result.csv"
        _, base_rss = measure(BASELINE, output)
        results = [measure([*SQL, str(path), QUERY], output) for _ in range(runs)]
        print(output.read_text().strip())
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        split, events, intervals = stages(path)
        print(f"trace: {events:,} events, {intervals:,} state intervals, {path.stat().st_size / 1e6:.1f} MB")
        wall = statistics.median(t for t, _ in results)
        peak = statistics.median(r for _, r in results)
        print(f"exectracer sql: median {wall:.2f} s  (runs: {' '.join(f'{t:.2f}' for t, _ in results)})")
        print(
            f"peak RSS: median {peak / 1e6:.0f} MB = {peak / events:.0f} bytes/event;"
            f" above the {base_rss / 1e6:.0f} MB of the interpreter with exectracer and DuckDB imported:"
            f" {(peak - base_rss) / events:.0f} bytes/event"
        )
        print("one run in this process: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in split))


def parquet(path: Path, tmp: Path, runs: int) -> None:
    """``exectracer export --format parquet`` of ``path``, ``runs`` times in fresh processes, then the query on
    the dataset; one export in this process split into its stages."""
    output = tmp / "export.txt"
    _, base_rss = measure(BASELINE, output)
    results = []
    for run in range(runs):
        target = tmp / f"dataset-{run}"
        results.append(measure([*EXPORT, str(path), "-o", str(target)], output))
        size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
        if run < runs - 1:
            shutil.rmtree(target)
    query = [measure([*SQL, str(target), QUERY], output) for _ in range(runs)]
    print(output.read_text().strip())
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    split, events = export_stages(path, tmp / "in-process")
    wall = statistics.median(t for t, _ in results)
    peak = statistics.median(r for _, r in results)
    print(f"trace: {events:,} events, {path.stat().st_size / 1e6:.1f} MB")
    print(
        f"export --format parquet: median {wall:.2f} s = {events / wall / 1e6:.2f} M events/s"
        f"  (runs: {' '.join(f'{t:.2f}' for t, _ in results)})"
    )
    print(
        f"peak RSS: median {peak / 1e6:.0f} MB = {peak / events:.0f} bytes/event;"
        f" above the {base_rss / 1e6:.0f} MB of the interpreter with exectracer and DuckDB imported:"
        f" {(peak - base_rss) / events:.0f} bytes/event"
    )
    print(f"dataset: {size / 1e6:.1f} MB = {size / events:.1f} bytes/event")
    print(f"exectracer sql DATASET (query above): median {statistics.median(t for t, _ in query):.2f} s")
    print("one export in this process: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in split))


def export_stages(path: Path, target: Path) -> tuple[list[tuple[str, float]], int]:
    """Seconds of each stage of one export in this process, and the trace's events."""
    import exectracer
    from exectracer.sql import dataset

    marks = [("start", time.perf_counter())]
    trace = exectracer.load(path)
    marks.append(("load", time.perf_counter()))

    def analyse(trace: object, analysis: Any) -> None:
        _ = analysis.goroutines, analysis.states, analysis.collections
        marks.append(("analysis (events, heap, frames written meanwhile)", time.perf_counter()))

    list(dataset.export([(trace, trace.analysis, str(path))], str(target), analyse))
    marks.append(("the other tables", time.perf_counter()))
    return [(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])], trace.event_count


if __name__ == "__main__":
    main()
