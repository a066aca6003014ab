"""How fast ``exectracer merge`` combines large traces, in events per second (target: 10 M/s for four 5-M-event traces).

Writes ``--traces`` synthetic recordings of ``--events`` events each (one
process each, one host; a mix of task and thread events in chunks of 65,536
as the recorder writes them, zlib level 1), then merges them ``--runs`` times
into a fresh file, each in a fresh interpreter (imports done before the
clock starts), and prints the median time and rate. ``--load`` also times
loading the merged file (decoding, aligning and renumbering every event).

::

    python bench/bench_merge.py --runs 5 --load
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exectracer.format.chunks import ChunkKind, file_header, make_chunk
from exectracer.format.encoder import encode_event_columns, json_chunk
from exectracer.format.events import ARG_SHIFT, Kind

CHUNK = 65536
KINDS = np.array([Kind.TASK_READY, Kind.TASK_STEP, Kind.TASK_SUSPEND, Kind.THREAD_SAMPLE, Kind.THREAD_CPU])
TIMED = (
    "import sys, time; from exectracer.merge import merge; s = time.perf_counter();"
    " m = merge(sys.argv[2:], sys.argv[1]); print(time.perf_counter() - s, m.events)"
)
LOADED = (
    "import sys, time, warnings, exectracer; s = time.perf_counter();"
    " n = exectracer.load(sys.argv[1]).event_count; print(time.perf_counter() - s, n)"
)


def synthetic(path: Path, pid: int, events: int, seed: int) -> None:
    """A recording of ``events`` events of 200 tasks and 8 threads, 1 µs apart on average."""
    rng = np.random.default_rng(seed)
    ts = 1_000_000 + np.cumsum(rng.integers(1, 2000, events, dtype=np.int64))
    g = rng.integers(1, 208, events, dtype=np.int64)
    kind = KINDS[rng.integers(0, len(KINDS), events)].astype(np.int64)
    arg = rng.integers(0, 64, events, dtype=np.int64)
    code = kind | arg << ARG_SHIFT
    meta = {"format_version": 1, "pid": pid, "hostname": "bench", "start_ns": int(ts[0]), "start_wall_ns": 1}
    with open(path, "wb") as out:
        out.write(file_header())
        out.write(json_chunk(ChunkKind.METADATA, 0, meta))
        out.write(json_chunk(ChunkKind.STRINGS, 1, [[1, "app.handler"]]))
        for seq, at in enumerate(range(0, events, CHUNK), start=2):
            part = slice(at, at + CHUNK)
            raw = encode_event_columns(*(memoryview(np.ascontiguousarray(c[part])) for c in (code, ts, g)))
            out.write(make_chunk(ChunkKind.EVENTS, seq, raw))
        out.write(json_chunk(ChunkKind.END, seq + 1, {"stop_ns": int(ts[-1]), "events_lost": 0}))


def timed(script: str, *args: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True, text=True)
    seconds, events = out.stdout.split()
    return float(seconds), int(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=4)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--load", action="store_true", help="also time loading the merged file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [Path(tmp) / f"p{i}.xtrace" for i in range(args.traces)]
        t0 = time.perf_counter()
        for i, path in enumerate(inputs):
            synthetic(path, 100 + i, args.events, i)
        size = sum(p.stat().st_size for p in inputs)
        print(f"{args.traces} traces of {args.events:,} events, {size / 1e6:.0f} MB ({time.perf_counter() - t0:.0f} s)")
        times, total = [], 0
        for run in range(args.runs):
            out = Path(tmp) / f"merged{run}.xtrace"
            seconds, total = timed(TIMED, str(out), *map(str, inputs))
            times.append(seconds)
            if run < args.runs - 1:
                os.unlink(out)
        median = statistics.median(times)
        rate = total / median / 1e6
        print(f"merge: {total:,} events in {median:.3f} s (median of {args.runs}): {rate:.1f} M events/s")
        if args.load:
            loads = [timed(LOADED, str(out))[0] for _ in range(max(1, args.runs // 2))]
            median = statistics.median(loads)
            print(f"load of the merged file: {median:.2f} s: {total / median / 1e6:.1f} M events/s")


if __name__ == "__main__":
    main()
