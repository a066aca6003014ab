"""How fast ``exectracer.load`` reads a large real trace, in events per second.

Records ``workload_async.py`` under exectracer (a few million events with the
default sizes), then loads the trace ``--runs`` times two ways and prints the
medians:

* cold: each load in a fresh interpreter (imports done before the clock
  starts), as a command-line tool would load a trace;
* warm: repeated loads in one process.

::

    python bench/bench_load.py --runs 7
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
WORKLOAD = HERE / "workload_async.py"
COLD = (
    "import sys, time, exectracer.reader as t; s = time.perf_counter();"
    " n = t.load(sys.argv[1]).event_count; print(time.perf_counter() - s, n)"
)


def env() -> dict[str, str]:
    """The environment that runs this checkout's exectracer."""
    return dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def record(path: Path, rounds: int, messages: int) -> float:
    """Record the workload into ``path``; return the seconds it took."""
    command = [
        sys.executable,
        str(WORKLOAD),
        "--rounds",
        str(rounds),
        "--messages",
        str(messages),
        "--trace",
        str(path),
    ]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, env=env(), stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def workload_trace(args: argparse.Namespace, tmp: str) -> Path:
    """``args.trace``, else a new recording of the workload (``args.rounds``, ``args.messages``) in ``tmp``."""
    if args.trace is not None:
        return args.trace
    path = Path(tmp) / "workload.xtrace"
    seconds = record(path, args.rounds, args.messages)
    print(f"recorded workload_async.py --rounds {args.rounds} --messages {args.messages} in {seconds:.1f} s")
    return path


def cold_load(path: Path) -> tuple[float, int]:
    """Seconds for one load in a fresh interpreter, and the event count."""
    out = subprocess.run(
        [sys.executable, "-c", COLD, str(path)], check=True, env=env(), capture_output=True, text=True
    ).stdout
    seconds, count = out.split()
    return float(seconds), int(count)


def warm_loads(path: Path, runs: int) -> list[float]:
    """Seconds for ``runs`` loads in this process."""
    sys.path.insert(0, str(SRC))
    import exectracer

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        exectracer.load(path)
        times.append(time.perf_counter() - t0)
    return times


def report(label: str, times: list[float], events: int) -> None:
    median = statistics.median(times)
    runs = " ".join(f"{t:.3f}" for t in times)
    print(f"{label}: median {median:.3f} s = {events / median / 1e6:.2f} M events/s  (runs: {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="loads of each kind (at least 5)")
    parser.add_argument("--rounds", type=int, default=4500, help="workload ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=1800, help="workload echo messages per connection")
    parser.add_argument("--trace", type=Path, help="load this trace instead of recording one")
    args = parser.parse_args()
    runs = max(args.runs, 5)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp:
        path = workload_trace(args, tmp)
        cold = [cold_load(path) for _ in range(runs)]
        events = cold[0][1]
        size = path.stat().st_size
        print(f"trace: {events} events, {size / 1e6:.1f} MB ({size / events:.2f} bytes/event)")
        report("cold (fresh process per load)", [t for t, _ in cold], events)
        report("warm (same process)", warm_loads(path, runs), events)


if __name__ == "__main__":
    main()
