"""Two versions of the reading side side by side on one trace: ``summary --json``, a SQL query, the Perfetto export.

Each command runs in a fresh process, the two versions alternating
(``--runs`` times each), with the ``src`` of a git revision (``--before``,
written to a temporary directory, the C extension copied from this
checkout) against this checkout's; prints the median wall time, CPU time, events
per second and peak RSS (``wait4``) of each, and whether their outputs are the
same bytes (the Perfetto file's and the summary's). ``--only`` runs the commands whose name starts with it;
``--stages`` adds the median seconds of each stage of ``summary --json`` (``bench_summary.py``'s split, one
process per run, alternating too)::

    python bench/bench_compare.py --trace /tmp/big.xtrace --before main --runs 3
    python bench/bench_compare.py --trace /tmp/big.xtrace --before main --runs 5 --only summary --stages
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench_sql import QUERY

HERE = Path(__file__).resolve().parent

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
COMMANDS = {
    "summary --json": ["summary", "--json", "{trace}"],
    "sql (grouped sum)": ["sql", "{trace}", QUERY],
    "export --format perfetto": ["export", "{trace}", "--format", "perfetto", "-o", "{out}.pftrace", "--force"],
    "export --format parquet": ["export", "{trace}", "--format", "parquet", "-o", "{out}.dataset"],
}


def checkout(revision: str, into: Path) -> Path:
    """The ``src`` of ``revision`` under ``into``, with this checkout's built C extension."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    for built in (SRC / "exectracer" / "record").glob("_speedups*.so"):
        shutil.copy(built, into / "src" / "exectracer" / "record")
    return into / "src"


def run(src: Path, args: list[str], output: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user and system) and peak RSS (bytes) of ``python -m exectracer ARGS`` with
    ``src`` first on the path."""
    environ = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    with open(output, "wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "exectracer", *args], env=environ, stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{shlex.join(args)} with {src} failed with status {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def stage_split(versions: dict[str, Path], trace: Path, runs: int) -> None:
    """Print the median seconds of each stage of ``summary --json`` per version, the versions alternating."""
    seconds: dict[str, list[list[tuple[str, float]]]] = {version: [] for version in versions}
    for _ in range(runs):
        for version, src in versions.items():
            command = [sys.executable, str(HERE / "bench_summary.py"), "--stages-of", str(trace)]
            out = subprocess.run(command, env=dict(os.environ, PYTHONPATH=str(src)), check=True, capture_output=True)
            seconds[version].append(json.loads(out.stdout))
    print("summary --json stages (median s, in one process each):")
    for version, split in seconds.items():
        names = [name for name, _ in split[0]]
        medians = [statistics.median(run[i][1] for run in split) for i in range(len(names))]
        print(f"  {version:>14}: " + ", ".join(f"{n} {m:.2f}" for n, m in zip(names, medians, strict=True)))


def output_of(name: str, out: Path) -> Path:
    """Where the command ``name`` run with ``{out}`` as ``out`` wrote its output."""
    if "perfetto" in name:
        return Path(f"{out}.pftrace")
    return Path(f"{out}.dataset") if "parquet" in name else out


def same_dataset(datasets: dict[str, Path], tmp: Path, events: int) -> str:
    """Each dataset's size, and whether ``exectracer sql DATASET`` (this checkout) answers the same to every
    table's row count and :data:`QUERY` on the last run's datasets of each version."""
    answers, sizes = [], []
    for dataset in datasets.values():
        sizes.append(sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file()))
        query = "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM states), (SELECT count(*) FROM frames)"
        answer = [
            subprocess.run(
                [sys.executable, "-m", "exectracer", "sql", str(dataset), q, "--format", "csv"],
                env=dict(os.environ, PYTHONPATH=str(SRC)),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for q in (query, QUERY + " ORDER BY state")
        ]
        answers.append(answer)
    same = all(a == answers[0] for a in answers)
    listed = ", ".join(
        f"{v} {s / 1e6:.1f} MB = {s / events:.1f} bytes/event" for v, s in zip(datasets, sizes, strict=True)
    )
    return f"datasets {listed}; queries over them {'identical' if same else 'DIFFER'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--before", default="main", help="git revision to compare this checkout with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, help="the trace's event count (else read from the summary)")
    parser.add_argument("--only", action="append", help="run only the commands whose name holds this (repeatable)")
    parser.add_argument("--stages", action="store_true", help="also split summary --json into its stages")
    args = parser.parse_args()
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        versions = {args.before: checkout(args.before, Path(tmp) / "before"), "this checkout": SRC}
        events = args.events
        for name, template in COMMANDS.items():
            if args.only and not any(word in name for word in args.only):
                continue
            results: dict[str, list[tuple[float, float, int]]] = {version: [] for version in versions}
            outputs = {}
            for i in range(args.runs):
                for k, (version, src) in enumerate(versions.items()):
                    out = Path(tmp) / f"{name.split()[-1]}-{k}-{i}"  # a new output for each run (a dataset appends)
                    argv = [a.format(trace=args.trace, out=out) for a in template]
                    results[version].append(run(src, argv, out))
                    outputs[version] = output_of(name, out)
            if events is None:
                events = json.loads(outputs["this checkout"].read_text())["trace"]["events"]
            if "parquet" in name:
                print(f"{name}: {same_dataset(outputs, Path(tmp), events)}")
            else:
                print(f"{name}: outputs {'identical' if filecmp.cmp(*outputs.values(), shallow=False) else 'DIFFER'}")
            for version, runs in results.items():
                wall = statistics.median(t for t, _, _ in runs)
                cpu = statistics.median(c for _, c, _ in runs)
                peak = statistics.median(r for _, _, r in runs)
                print(
                    f"  {version:>14}: median {wall:6.2f} s = {events / wall / 1e6:5.2f} M events/s"
                    f" (CPU {cpu:6.2f} s = {events / cpu / 1e6:5.2f} M events/s),"
                    f" peak RSS {peak / 1e6:5.0f} MB = {peak / events:4.0f} B/event"
                    f"  (runs: {' '.join(f'{t:.2f}' for t, _, _ in runs)})"
                )
        if args.stages:
            stage_split(versions, args.trace, args.runs)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
