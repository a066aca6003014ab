"""A sampler's walk up another thread's stack, with a collection starting inside it.

On CPython 3.11, reading ``f_back`` of another thread's frame makes the
caller's frame object, and that allocation can start a collection, which
runs Python code (``gc.callbacks``: the recorder's own GC hook is one) and
so can let the GIL go. If the other thread returns from the caller
meanwhile, the new frame object is left pointing at that popped frame: what
the walk reads next is whatever the thread put there since (a sampler that
walked on died of a segmentation fault under load).

Here the collection is made to start at that allocation, and the other
thread returns from ``outer`` and calls deeper while it runs. The walk
starts from the frames the sampler reads (``sampler._frames_reader``).
Prints the names the walk found above ``inner``: ``outer``, then the
thread's ``run``, when the frames were right.
"""

from __future__ import annotations

import _thread
import gc
import sys
import threading

from exectracer.record.native import speedups
from exectracer.record.sampler import _frames_reader

in_inner = threading.Event()
gate = _thread.allocate_lock()  # held: inner blocks on it in C, with no frame above its own
gate.acquire()
moved_on = threading.Event()
finish = threading.Event()


def inner() -> None:
    in_inner.set()
    gate.acquire()


def outer() -> None:
    inner()


def deeper(levels: int) -> None:
    """Frames where ``outer``'s and ``inner``'s were."""
    if levels:
        deeper(levels - 1)
        return
    moved_on.set()
    finish.wait()


def run() -> None:
    outer()
    deeper(10)


def main() -> None:
    read = _frames_reader(speedups())
    thread = threading.Thread(target=run, name="walked", daemon=True)
    thread.start()
    in_inner.wait()
    top = read()[thread.ident]  # inner's frame
    assert top.f_code.co_name == "inner"
    armed = [True]

    def on_collection(phase: str, info: dict) -> None:
        if phase == "start" and armed:
            armed.clear()
            gate.release()  # the thread returns from outer and calls deeper, while this collection runs
            moved_on.wait()

    thresholds = gc.get_threshold()
    gc.callbacks.append(on_collection)
    gc.set_threshold(1)  # the next object the collector tracks starts a collection: outer's frame, if made here
    back = top.f_back
    gc.set_threshold(*thresholds)
    gc.callbacks.remove(on_collection)
    if armed:  # no collection started in the walk (its frame objects were made before): let the thread go on
        gate.release()
    moved_on.wait()
    names = []
    while back is not None and len(names) < 2:
        names.append(back.f_code.co_name)
        back = back.f_back
    finish.set()
    thread.join()
    print(" ".join(names))


if __name__ == "__main__":
    sys.exit(main())
