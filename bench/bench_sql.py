"""``exectracer sql`` of a grouped sum over ``states`` on a large trace: wall time (load included) and peak memory.

Records ``workload_async.py`` under exectracer (about 10 million events with
the default sizes) unless ``--trace`` names a trace, then runs
``exectracer sql TRACE QUERY`` in a fresh process ``--runs`` times and
prints the medians of wall time and peak RSS (from ``wait4``), plus one
in-process run split into its stages.

::

    python bench/bench_sql.py --runs 5
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_load import workload_trace
from bench_summary import measure

QUERY = "SELECT state, count(*) AS intervals, sum(end_ns - start_ns) AS total_ns FROM states GROUP BY state"
SQL = [sys.executable, "-m", "exectracer", "sql", "--format", "csv"]
BASELINE = [sys.executable, "-c", "import exectracer.cli, exectracer.analysis, exectracer.sql.database, duckdb"]


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
    args = parser.parse_args()
    runs = max(args.runs, 3)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        path = workload_trace(args, tmp)
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


if __name__ == "__main__":
    main()
