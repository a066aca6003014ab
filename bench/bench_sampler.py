"""CPU used by the stack and state sampler with many threads.

Starts ``--threads`` threads blocked in various waits (``time.sleep`` in a
loop, ``Event.wait``, ``socket.recv``) plus ``--busy`` busy-looping ones,
runs the sampler on its own (no other hooks, no writer) for ``--seconds``
and prints the sampler thread's CPU time as a share of one core, and the
sampling rate reached (with busy threads the sampler waits for the GIL at
each tick, so it samples less often than asked)::

    python bench/bench_sampler.py --threads 50 --busy 4 --seconds 5
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from exectracer.format.events import ARG_SHIFT, CATEGORY_SHIFT, KIND_MASK, Kind, ThreadState
from exectracer.record.interner import Interner
from exectracer.record.registry import Registry
from exectracer.record.sampler import Sampler
from exectracer.record.thread_stacks import FrameStacks


def cpu_seconds(ident: int, native_id: int) -> float:
    """CPU time (user + system) of one thread of this process."""
    if hasattr(time, "pthread_getcpuclockid"):
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    with open(f"/proc/self/task/{native_id}/stat", "rb") as f:  # pragma: no cover - fallback
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_waiters(n: int, busy: int, done: threading.Event) -> list[socket.socket]:
    """Start ``n`` blocked threads and ``busy`` spinning ones; return the sockets to close."""
    sockets = []

    def sleeper() -> None:
        while not done.is_set():
            time.sleep(0.05)

    def spinner() -> None:
        x = 0
        while not done.is_set():
            for i in range(1000):
                x += i * i

    def receiver(sock: socket.socket) -> None:
        sock.recv(1)

    for i in range(n):
        kind = i % 3
        if kind == 0:
            target, args = sleeper, ()
        elif kind == 1:
            target, args = done.wait, ()
        else:
            a, b = socket.socketpair()
            sockets += (a, b)
            target, args = receiver, (a,)
        threading.Thread(target=target, args=args, daemon=True).start()
    for _ in range(busy):
        threading.Thread(target=spinner, daemon=True).start()
    return sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=50, help="blocked threads")
    parser.add_argument("--busy", type=int, default=4, help="busy-looping threads")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between samples")
    args = parser.parse_args()

    done = threading.Event()
    sockets = start_waiters(args.threads, args.busy, done)
    time.sleep(0.2)
    events: list[int] = []
    interner = Interner()
    own: set[int] = set()
    registry = Registry(events, interner, own)
    sampler = Sampler(events, registry, FrameStacks(interner), args.interval, own)
    sampler.start()
    for thread in threading.enumerate():
        registry.adopt_thread(thread, thread.ident)
    sampling = sampler._thread  # a TracerThread: threading does not list it
    del events[:]

    wall0, cpu0 = time.perf_counter(), cpu_seconds(sampling.ident, sampling.native_id)
    time.sleep(args.seconds)
    cpu1, wall1 = cpu_seconds(sampling.ident, sampling.native_id), time.perf_counter()
    sampler.stop()
    done.set()
    for sock in sockets:
        sock.close()

    codes = events[0::3]
    samples = [c >> ARG_SHIFT for c in codes if c & KIND_MASK == Kind.THREAD_SAMPLE]
    syscalls = sum(1 for c in codes if c & KIND_MASK == Kind.THREAD_SYSCALL)
    states = collections.Counter(ThreadState(s & ((1 << CATEGORY_SHIFT) - 1)).name for s in samples)
    wall, cpu = wall1 - wall0, cpu1 - cpu0
    sampled = len(registry.threads)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {sampled} threads sampled"
        f" ({args.threads} blocked, {args.busy} busy, main), interval {args.interval * 1e3:g} ms"
    )
    print(f"wall {wall:.2f} s, sampler CPU {cpu * 1e3:.0f} ms = {100 * cpu / wall:.2f}% of one core")
    print(
        f"samples {len(samples)} ({len(samples) / wall / max(sampled, 1):.1f} per thread per second,"
        f" target {1 / args.interval:g}), syscall events {syscalls}"
    )
    print(f"CPU per thread sample {1e6 * cpu / max(len(samples), 1):.1f} us; states {dict(states)}")


if __name__ == "__main__":
    main()
