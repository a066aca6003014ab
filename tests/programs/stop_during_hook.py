"""A recording stopped by another thread while a hook of this thread is in a Python call.

``python stop_during_hook.py wait|region [restart]``: records into memory; then this
thread makes a hooked wait (``select``) whose stack is new, so the C hook
asks ``FrameStacks.of_key`` for its id (``wait``), or enters a region whose
name is new, so the C region asks ``Interner.string`` (``region``). That
Python call lets the GIL go, as any can: here, deterministically, it lets
another thread stop the recording and waits for it (a live capture ending
on a server's thread, or ``exectracer.stop()``), and with ``restart``
start the next one. The hook then goes on with a recording that has ended.
Prints whether the region is in either recording, and the waits of this
thread in the next one; exits 0 unless the hook crashed the process.
"""

from __future__ import annotations

import io
import select
import sys
import threading

import numpy as np

import exectracer
from exectracer.format.events import Kind
from exectracer.record import current
from exectracer.record.interner import Interner
from exectracer.record.thread_stacks import FrameStacks

NAME = "a-region-never-seen-before"


def stop_from_another_thread(restart: io.BytesIO | None) -> None:
    def stop() -> None:
        exectracer.stop()
        if restart is not None:
            exectracer.start(restart, threads=True, block_threshold=0, sample_interval=0)

    stopper = threading.Thread(target=stop, name="stopper")
    stopper.start()
    stopper.join()


def main(what: str, restart: bool) -> None:
    second = io.BytesIO() if restart else None
    me = threading.get_ident()
    stopped = []
    of_key, string = FrameStacks.of_key, Interner.string

    def of_key_then_stop(self: FrameStacks, key: tuple, frame: object) -> int:
        sid = of_key(self, key, frame)
        if what == "wait" and threading.get_ident() == me and current.recording is not None and not stopped:
            stopped.append(True)
            stop_from_another_thread(second)
        return sid

    def string_then_stop(self: Interner, text: str) -> int:
        sid = string(self, text)
        if what == "region" and text == NAME and current.recording is not None and not stopped:
            stopped.append(True)
            stop_from_another_thread(second)
        return sid

    FrameStacks.of_key = of_key_then_stop  # type: ignore[method-assign]  # before start: the hooks bind them then
    Interner.string = string_then_stop  # type: ignore[method-assign]
    out = io.BytesIO()
    exectracer.start(out, threads=True, block_threshold=0, sample_interval=0)
    if what == "wait":
        select.select([], [], [], 0.001)  # a wait the C wrapper records, from a stack it has not seen
    else:
        with exectracer.region(NAME):
            pass
    if not stopped:
        raise SystemExit("the recording was not stopped inside the hook: nothing tested")
    traces = [exectracer.load(out.getvalue(), strict=True)]
    if second is not None:
        exectracer.stop()
        traces.append(exectracer.load(second.getvalue(), strict=True))
    print(what, "stopped inside the hook")
    for i, trace in enumerate(traces):
        names = set(trace.regions.name.tolist()) if len(trace.regions.name) else set()
        mine = {t.id for t in trace.threads if t.name == "MainThread"}
        blocks = trace.events.kind == int(Kind.THREAD_BLOCK)
        waits = int(np.isin(trace.events.g[blocks], list(mine)).sum())
        print(f"recording {i + 1}: region {NAME in names}, waits of this thread {waits}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] == ["restart"])
