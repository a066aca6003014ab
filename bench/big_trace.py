"""Write a realistic trace of any size, fast: a service's event loop serving requests, worker threads, collections.

What a recording of an asyncio service under load holds, at the rates one
records: one event loop on the main thread runs request tasks
(``--concurrency`` in flight, each of ``--steps`` steps; between steps a
request waits on the network, a lock, a sleep or a worker thread, and is
woken by I/O, another task, a timer or that thread), each inside a user task
and a region; worker threads block on locks and in system calls; the
collector runs now and then in the middle of a step, holding up every task
that is ready; the sampler samples every thread every 10 ms, with their CPU
times; the heap is sampled each second. Every event sequence is one the
recorder makes, so the analyses take the trace as a real one (no anomaly).

Events are made in NumPy, a window of requests at a time, and written as
the recorder writes them (chunks of at most 65,536 events, zlib level 1):
about 10 M events a second on one core here::

    python bench/big_trace.py --events 10_000_000 -o big.xtrace
    python bench/big_trace.py --events 300_000_000 -o huge.xtrace --concurrency 256
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from exectracer.format.chunks import FORMAT_VERSION, ChunkKind, file_header, make_chunk
from exectracer.format.encoder import encode_event_columns, json_chunk
from exectracer.format.events import (
    ARG_SHIFT,
    CATEGORY_SHIFT,
    WAKER_SHIFT,
    Category,
    Kind,
    Outcome,
    ThreadState,
    Waker,
    pack_waker,
)

CHUNK_EVENTS = 65536
SAMPLE_NS = 10_000_000  # the sampler's interval
HEAP_NS = 1_000_000_000
START_NS = 1_000_000_000
LOOP = 1  # loop id
MAIN = 1  # the main thread's goroutine id
GC_EVERY = 2000  # one step in this many runs a collection
CATEGORIES = np.array([Category.NETWORK, Category.SYNC, Category.SLEEP, Category.SYSCALL, Category.OTHER])
CATEGORY_SHARE = np.array([0.55, 0.15, 0.15, 0.1, 0.05])  # of the waits between steps

# strings, frames and stacks: ids fixed here, defined once at the start of the file
STRINGS = {
    1: "MainThread",
    2: "app.handlers.handle_request",
    3: "app/handlers.py",
    4: "app.db.Pool.fetch",
    5: "app/db.py",
    6: "asyncio.locks.Lock.acquire",
    7: "asyncio/locks.py",
    8: "asyncio.tasks.sleep",
    9: "asyncio/tasks.py",
    10: "asyncio.base_events.BaseEventLoop.run_in_executor",
    11: "asyncio/base_events.py",
    12: "app.cache.Cache.get",
    13: "app/cache.py",
    14: "handle request",
    15: "request",
    16: "uvloop I/O (handled in C)",
    17: "asyncio.events.TimerHandle",
    18: "app.workers.work",
    19: "app/workers.py",
    20: "threading.Lock.acquire",
    21: "threading.py",
    22: "asyncio.base_events.BaseEventLoop.run_forever",
    23: "asyncio.unix_events._UnixSelectorEventLoop",
    24: "app.callbacks.done",
    25: "selectors.EpollSelector.select",
    26: "selectors.py",
}
# frame id: (function, file, line)
FRAMES = {1: (2, 3, 40), 2: (4, 5, 88), 3: (6, 7, 114), 4: (8, 9, 639), 5: (10, 11, 828), 6: (12, 13, 21),
          7: (18, 19, 12), 8: (20, 21, 312), 9: (22, 11, 603), 10: (25, 26, 468)}  # fmt: skip
# stack id: frames innermost first; the handler's entry, its waits by category, the workers' waits
STACKS = {1: [1], 2: [2, 1], 3: [3, 1], 4: [4, 1], 5: [5, 1], 6: [6, 1], 7: [7], 8: [8, 7], 9: [9], 10: [10, 7]}
WAIT_STACK = {Category.NETWORK: 2, Category.SYNC: 3, Category.SLEEP: 4, Category.SYSCALL: 5, Category.OTHER: 6}


def pack(kind: int, arg: NDArray[np.int64] | int) -> NDArray[np.int64] | int:
    return kind | np.left_shift(arg, ARG_SHIFT)


class Out:
    """Events gathered for one window, then sorted by time and written in chunks."""

    def __init__(self, file: object, level: int) -> None:
        self.file = file
        self.level = level
        self.seq = 0
        self.events = 0
        self.parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = []

    def add(self, code: NDArray[np.int64] | int, ts: NDArray[np.int64], g: NDArray[np.int64] | int) -> None:
        ts = np.asarray(ts, dtype=np.int64)
        code, g = (np.broadcast_to(np.asarray(v, np.int64), ts.shape) for v in (code, g))
        self.parts.append((code.ravel(), ts.ravel(), g.ravel()))

    def json(self, kind: ChunkKind, value: object) -> None:
        self.seq += 1
        self.file.write(json_chunk(kind, self.seq, value, self.level))  # type: ignore[attr-defined]

    def flush(self) -> None:
        if not self.parts:
            return
        code, ts, g = (np.concatenate([part[i] for part in self.parts]) for i in range(3))
        self.parts = []
        order = np.argsort(ts, kind="stable")
        code, ts, g = code[order], ts[order], g[order]
        for at in range(0, len(ts), CHUNK_EVENTS):
            cut = slice(at, at + CHUNK_EVENTS)
            raw = encode_event_columns(*(memoryview(np.ascontiguousarray(c[cut])) for c in (code, ts, g)))
            self.seq += 1
            self.file.write(make_chunk(ChunkKind.EVENTS, self.seq, raw, self.level))  # type: ignore[attr-defined]
        self.events += len(ts)


def requests_window(out: Out, rng: np.random.Generator, first: int, batches: int, args: argparse.Namespace,
                    t: int, threads: int) -> tuple[int, int]:  # fmt: skip
    """The events of ``batches`` batches of requests, their loop's steps starting at ``t``; (end time, requests)."""
    c, s = args.concurrency, args.steps
    n = batches * c  # requests
    slots = n * s
    durations = rng.integers(8_000, 60_000, slots)  # a step's length, ns
    gc_slots = rng.random(slots) < 1 / GC_EVERY
    durations = np.where(gc_slots, durations + rng.integers(500_000, 5_000_000, slots), durations)
    gaps = rng.integers(500, 5_000, slots)
    starts = t + np.concatenate(([0], np.cumsum(durations + gaps)[:-1]))
    ends = starts + durations
    # slot of request i (in its batch b) at step k: b*c*s + k*c + i
    b, i = np.divmod(np.arange(n), c)
    request_slot = (b * c * s)[:, None] + (np.arange(s) * c)[None, :] + i[:, None]  # (n, s)
    g = (threads + 2 + first + np.arange(n)).astype(np.int64)  # task goroutine ids after the threads'
    step_start, step_end = starts[request_slot], ends[request_slot]
    # ready: between the previous step's end (or the creation) and this step's start
    before = np.concatenate(((step_start[:, :1] - rng.integers(2_000, 40_000, (n, 1))), step_end[:, :-1]), axis=1)
    ready = before + ((step_start - before) * rng.uniform(0.8, 0.99, (n, s))).astype(np.int64)
    created = before[:, 0] - 1_000
    gs = np.repeat(g[:, None], s, axis=1)
    # creation (by the main thread: the server's protocol), its loop, entry, default name
    out.add(pack(Kind.TASK_CREATE, MAIN), created, g)
    out.add(pack(Kind.TASK_LOOP, LOOP), created, g)
    out.add(pack(Kind.TASK_FUNC, 1), created, g)
    out.add(pack(Kind.TASK_NAME, -(first + np.arange(n) + 1)), created, g)
    # waits between steps: a category, its stack, and who ends it
    cats = CATEGORIES[rng.choice(len(CATEGORIES), (n, s - 1), p=CATEGORY_SHARE)]
    stacks = np.select([cats == c_ for c_ in CATEGORIES], [WAIT_STACK[Category(int(c_))] for c_ in CATEGORIES])
    out.add(pack(Kind.TASK_SUSPEND, (stacks << CATEGORY_SHIFT) | cats), step_end[:, :-1], gs[:, :-1])
    other_task = np.roll(g, 1)[:, None] * np.ones((1, s - 1), np.int64)  # a lock's holder: another request
    worker = (2 + rng.integers(0, max(threads, 1), (n, s - 1))).astype(np.int64)
    wakers = np.select(
        [cats == Category.NETWORK, cats == Category.SYNC, cats == Category.SLEEP, cats == Category.SYSCALL],
        [
            pack_waker(Waker.IO, 16),
            pack_waker(Waker.TASK, 0) | (other_task << WAKER_SHIFT),
            pack_waker(Waker.TIMER, 17),
            pack_waker(Waker.THREAD, 0) | (worker << WAKER_SHIFT),
        ],
        pack_waker(Waker.CALLBACK, 24),
    )
    first_waker = np.full((n, 1), pack_waker(Waker.THREAD, MAIN), np.int64)
    out.add(pack(Kind.TASK_READY, np.concatenate((first_waker, wakers), axis=1)), ready, gs)
    out.add(pack(Kind.TASK_STEP, 0), step_start, gs)
    out.add(pack(Kind.TASK_DONE, Outcome.RETURNED), step_end[:, -1], g)
    # a user task and a region around the whole request, in its first and last steps
    user = (first + np.arange(n) + 1).astype(np.int64)
    out.add(pack(Kind.USER_TASK_NAME, 15), step_start[:, 0] + 100, user)
    out.add(pack(Kind.USER_TASK_PARENT, 0), step_start[:, 0] + 100, user)
    out.add(pack(Kind.USER_TASK_BEGIN, user), step_start[:, 0] + 100, g)
    out.add(pack(Kind.REGION_BEGIN, 14), step_start[:, 0] + 200, g)
    out.add(pack(Kind.REGION_TASK, user), step_start[:, 0] + 200, g)
    out.add(pack(Kind.REGION_END, 14), step_end[:, -1] - 200, g)
    out.add(pack(Kind.USER_TASK_END, user), step_end[:, -1] - 100, g)
    # collections in the long steps, on the main thread
    gc_at = starts[gc_slots] + 1_000
    out.add(pack(Kind.GC_START, rng.integers(0, 3, len(gc_at))), gc_at, MAIN)
    out.add(pack(Kind.GC_END, rng.integers(0, 5_000, len(gc_at))), ends[gc_slots] - 1_000, MAIN)
    return int(ends[-1] + 10_000), n


def threads_window(out: Out, rng: np.random.Generator, threads: int, lo: int, hi: int, cpu: dict[int, int]) -> None:
    """Worker threads' waits, every thread's samples and CPU times, and heap samples in [lo, hi)."""
    span = hi - lo
    for w in range(threads):
        g = 2 + w
        k = max(span // 600_000, 1)  # a block about every 0.6 ms
        begin = np.sort(rng.integers(lo, hi, k))
        length = np.minimum(rng.integers(20_000, 400_000, k), np.diff(np.append(begin, hi)) - 1_000)
        keep = length > 0
        begin, length = begin[keep], length[keep]
        syscall = rng.random(len(begin)) < 0.5  # else a lock
        waits = np.where(syscall, (10 << CATEGORY_SHIFT) | Category.SYSCALL, (8 << CATEGORY_SHIFT) | Category.SYNC)
        out.add(pack(Kind.THREAD_BLOCK, waits), begin, g)
        out.add(pack(Kind.THREAD_UNBLOCK, 0), begin + length, g)
    ticks = np.arange(lo - lo % SAMPLE_NS + SAMPLE_NS, hi, SAMPLE_NS, dtype=np.int64)
    for g, running_share in [(MAIN, 0.9)] + [(2 + w, 0.2) for w in range(threads)]:
        state = ThreadState.RUNNING if g == MAIN else ThreadState.SLEEPING
        out.add(pack(Kind.THREAD_SAMPLE, ((9 if g == MAIN else 7) << CATEGORY_SHIFT) | state), ticks, g)
        used = cpu.get(g, 0) + (np.arange(1, len(ticks) + 1) * SAMPLE_NS * running_share).astype(np.int64)
        out.add(pack(Kind.THREAD_CPU, used), ticks, g)
        cpu[g] = int(used[-1]) if len(used) else cpu.get(g, 0)
    process = cpu.get(0, 0) + (np.arange(1, len(ticks) + 1) * SAMPLE_NS * (0.9 + 0.2 * threads)).astype(np.int64)
    out.add(pack(Kind.THREAD_CPU, process), ticks, 0)
    cpu[0] = int(process[-1]) if len(process) else cpu.get(0, 0)
    heap = np.arange(lo - lo % HEAP_NS + HEAP_NS, hi, HEAP_NS, dtype=np.int64)
    out.add(pack(Kind.HEAP_BLOCKS, rng.integers(200_000, 300_000, len(heap))), heap, 0)
    out.add(pack(Kind.HEAP_RSS, rng.integers(80 << 20, 120 << 20, len(heap))), heap, 0)


def write(path: Path, events: int, args: argparse.Namespace) -> tuple[int, float]:
    """Write a trace of about ``events`` events to ``path``; (events written, seconds taken)."""
    rng = np.random.default_rng(args.seed)
    began = time.perf_counter()
    threads = args.threads
    per_request = 14 + 3 * (args.steps - 1)  # create 4, ready+step per step, suspends, done, user task 5, region 3
    requests_total = max(events // per_request, args.concurrency)
    batches_per_window = max(1, 200_000 // (args.concurrency * per_request))
    with open(path, "wb") as file:
        file.write(file_header())
        out = Out(file, args.level)
        out.json(ChunkKind.METADATA, metadata(args))
        out.json(ChunkKind.STRINGS, [[sid, text] for sid, text in STRINGS.items()])
        out.json(
            ChunkKind.STACKS,
            {"frames": [[fid, *frame] for fid, frame in FRAMES.items()], "stacks": [[k, v] for k, v in STACKS.items()]},
        )
        t = START_NS
        for g, name in [(MAIN, 1)] + [(2 + w, 18) for w in range(threads)]:
            out.add(pack(Kind.THREAD_CREATE, 0 if g == MAIN else MAIN), np.array([t]), g)
            out.add(pack(Kind.THREAD_START, 10_000 + g), np.array([t]), g)
            out.add(pack(Kind.THREAD_NAME, name), np.array([t]), g)
            out.add(pack(Kind.THREAD_FUNC, 9 if g == MAIN else 7), np.array([t]), g)
            out.add(pack(Kind.THREAD_IDENT, 140_000_000 + g), np.array([t]), g)
        out.add(pack(Kind.LOOP_CLASS, 23), np.array([t]), LOOP)
        out.add(pack(Kind.LOOP_START, MAIN), np.array([t]), LOOP)
        t += 100_000
        done, cpu, lo = 0, {}, START_NS
        while done < requests_total:
            batches = min(batches_per_window, -(-(requests_total - done) // args.concurrency))
            t, n = requests_window(out, rng, done, batches, args, t, threads)
            threads_window(out, rng, threads, lo, t, cpu)
            out.flush()
            done, lo = done + n, t
        out.add(pack(Kind.LOOP_STOP, 0), np.array([t]), LOOP)
        for g in [MAIN] + [2 + w for w in range(threads)]:
            out.add(pack(Kind.THREAD_END, 0), np.array([t]), g)
        out.flush()
        out.json(ChunkKind.END, {"clean": True, "stop_ns": t + 1_000, "events": out.events, "events_lost": 0})
    return out.events, time.perf_counter() - began


def metadata(args: argparse.Namespace) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "tracer": "exectracer",
        "tracer_version": "bench/big_trace.py",
        "python": {"version": sys.version.split()[0], "implementation": "CPython", "gil": True},
        "hostname": "big-trace",
        "pid": 4242,
        "argv": ["bench/big_trace.py", "--events", str(args.events)],
        "start_ns": START_NS,
        "start_wall_ns": 1_765_000_000_000_000_000,
        "switch_interval": 0.005,
        "options": {"sample_interval": SAMPLE_NS / 1e9, "compression": args.level},
        "generated": {"seed": args.seed, "concurrency": args.concurrency, "steps": args.steps, "threads": args.threads},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=lambda text: int(text.replace("_", "")), default=10_000_000)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight on the loop")
    parser.add_argument("--steps", type=int, default=4, help="steps of each request (2 or more)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--level", type=int, default=1, help="zlib level of the chunks")
    args = parser.parse_args()
    if args.steps < 2 or args.concurrency < 1 or args.threads < 1:
        parser.error("--steps must be 2 or more, --concurrency and --threads 1 or more")
    if args.output.exists():
        parser.error(f"{args.output} exists")
    events, took = write(args.output, args.events, args)
    size = os.path.getsize(args.output)
    print(f"{args.output}: {events:,} events, {size:,} bytes ({size / events:.2f} bytes/event) in {took:.1f} s"
          f" ({events / took / 1e6:.1f} M events/s)")  # fmt: skip


if __name__ == "__main__":
    main()
