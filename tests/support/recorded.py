"""A recorded trace, loaded, with small helpers for assertions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import exectracer
from exectracer.format.events import CATEGORY_SHIFT, WAKER_SHIFT, Kind


class Recorded:
    """A loaded trace with small helpers for assertions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.trace = exectracer.load(path)
        ev = self.trace.events
        self.kind, self.arg, self.ts, self.g = ev.kind, ev.arg, ev.ts, ev.g

    def of(self, kind: Kind, g: int | None = None) -> np.ndarray:
        """Indices of events of ``kind`` (for goroutine/loop ``g``)."""
        mask = self.kind == kind
        if g is not None:
            mask &= self.g == g
        return np.flatnonzero(mask)

    def task(self, start_function_suffix: str):
        """The one task whose start function ends with the given text."""
        found = [t for t in self.trace.tasks if (t.start_function or "").endswith(start_function_suffix)]
        assert len(found) == 1, (start_function_suffix, [t.start_function for t in self.trace.tasks])
        return found[0]

    def suspensions(self, g: int) -> list[tuple[int, int, list, int]]:
        """(ts, category, stack frames, index) of each TASK_SUSPEND of goroutine ``g``."""
        out = []
        for i in self.of(Kind.TASK_SUSPEND, g):
            arg = int(self.arg[i])
            out.append(
                (int(self.ts[i]), arg & ((1 << CATEGORY_SHIFT) - 1), self.trace.stacks[arg >> CATEGORY_SHIFT], int(i))
            )
        return out

    def thread_waits(self, category: int | None = None) -> list[tuple[int, int, int, list, int]]:
        """(g, start, end, stack, waker) of each THREAD_BLOCK/UNBLOCK pair, checking that none nests."""
        open_block: dict[int, int] = {}
        out = []
        for i in np.flatnonzero((self.kind == Kind.THREAD_BLOCK) | (self.kind == Kind.THREAD_UNBLOCK)):
            g = int(self.g[i])
            if self.kind[i] == Kind.THREAD_BLOCK:
                assert g not in open_block, "nested waits"
                open_block[g] = i
                continue
            b = open_block.pop(g)
            arg = int(self.arg[b])
            if category is None or arg & ((1 << CATEGORY_SHIFT) - 1) == category:
                out.append(
                    (g, int(self.ts[b]), int(self.ts[i]), self.trace.stacks[arg >> CATEGORY_SHIFT], int(self.arg[i]))
                )
        assert not open_block
        return out

    def ready_after(self, g: int, ts: int) -> tuple[int, int, int]:
        """(ts, waker type, waker id) of the first TASK_READY of ``g`` at or after ``ts``."""
        for i in self.of(Kind.TASK_READY, g):
            if self.ts[i] >= ts:
                arg = int(self.arg[i])
                return int(self.ts[i]), arg & ((1 << WAKER_SHIFT) - 1), arg >> WAKER_SHIFT
        raise AssertionError(f"goroutine {g} never became ready after {ts}")
