"""The sampler: every thread's Python stack and OS state, at a fixed rate.

Each tick takes ``sys._current_frames()`` and, for every thread the registry
knows, appends a THREAD_SAMPLE (stack and state) and, when the thread sleeps
in a syscall, a THREAD_SYSCALL. On Linux the state and syscall come from
``/proc/self/task/<tid>/{stat,syscall}``, kept open per thread and read with
``pread``; elsewhere the state is UNKNOWN. A stack is walked again only when
the thread's top frame moved. Failures never leave the sampler: a thread whose
``/proc`` files cannot be read is sampled without its state, and a thread whose
sample fails otherwise is no longer sampled.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import time
from types import FrameType

from ..format.events import ARG_SHIFT, CATEGORY_SHIFT, Kind, ThreadState
from .registry import Registry
from .thread_stacks import FrameStacks

SAMPLE = int(Kind.THREAD_SAMPLE)
SYSCALL = int(Kind.THREAD_SYSCALL)
TASKS = "/proc/self/task"
# generator, coroutine, async generator: resumed from anywhere, so the same
# frame at the same offset does not mean the same callers
_RESUMABLE = 0x20 | 0x80 | 0x200
_STATES = {ord(c): int(s) for c, s in (("R", ThreadState.RUNNING), ("S", ThreadState.SLEEPING), ("D", ThreadState.DISK), ("T", ThreadState.STOPPED), ("t", ThreadState.STOPPED))}
_OTHER = int(ThreadState.OTHER)
_WAITING = (int(ThreadState.SLEEPING), int(ThreadState.DISK))
_pread = os.pread  # bound before any hook could wrap os functions


class _Thread:
    """What the sampler keeps per thread: its files and its last stack."""

    __slots__ = ("g", "stat", "syscall", "frame", "lasti", "stack", "failed")

    def __init__(self, g: int, native_id: int | None, proc: bool) -> None:
        self.g = g
        self.stat = self.syscall = -1
        self.frame: FrameType | None = None
        self.lasti = -1
        self.stack = 0
        self.failed = False
        if proc and native_id:
            self.stat = _open(f"{TASKS}/{native_id}/stat")
            if self.stat >= 0:
                self.syscall = _open(f"{TASKS}/{native_id}/syscall")

    def close(self) -> None:
        """Close its files and forget its frame."""
        for fd in (self.stat, self.syscall):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.stat = self.syscall = -1
        self.frame = None


class Sampler:
    """Samples every known thread's stack and state each ``interval`` seconds from a daemon thread."""

    def __init__(self, events: list[int], registry: Registry, stacks: FrameStacks, interval: float, own_threads: set[int]) -> None:
        self._emit = events.extend
        self._registry = registry
        self._stacks = stacks
        self._interval = interval
        self._own = own_threads
        self._proc = os.path.isdir(TASKS)
        self._threads: dict[int, _Thread] = {}  # threading ident -> state
        self._stop = _thread.allocate_lock()  # held while running; released by stop()
        self._thread = threading.Thread(target=self._run, name="exectracer-sampler", daemon=True)

    def start(self) -> None:
        """Start sampling (the sampler's thread joins ``own_threads``)."""
        self._stop.acquire()
        self._thread.start()
        self._own.add(self._thread.ident)

    def stop(self) -> None:
        """Stop sampling, wait for the thread and close every file."""
        if self._stop.locked():
            self._stop.release()
        if self._thread.ident is not None:
            self._thread.join()
        for state in self._threads.values():
            state.close()
        self._threads.clear()

    def _run(self) -> None:
        interval = self._interval
        due = time.monotonic()
        while True:
            due += interval
            delay = due - time.monotonic()
            if delay < 0:  # fell behind: skip the ticks missed
                due -= delay
                delay = 0
            if self._stop.acquire(timeout=delay):
                return
            try:
                self._sample()
            except Exception:  # never raise; stop sampling instead
                return

    def _sample(self) -> None:
        frames = sys._current_frames()
        ts = time.perf_counter_ns()
        own = self._own
        states = self._threads
        stacks_of = self._stacks.of
        native_ids = None
        out: list[int] = []
        seen = 0
        threads = self._registry.threads.copy()
        for ident, g in threads.items():
            frame = frames.get(ident)
            if frame is None or ident in own:
                continue
            seen += 1
            state = states.get(ident)
            if state is None or state.g != g:
                if state is not None:
                    state.close()
                if native_ids is None:
                    native_ids = {t.ident: t.native_id for t in threading.enumerate()}
                state = states[ident] = _Thread(g, native_ids.get(ident), self._proc)
            if state.failed:
                continue
            try:
                lasti = frame.f_lasti
                if frame is state.frame and lasti == state.lasti:
                    stack = state.stack
                else:
                    stack = state.stack = stacks_of(frame)
                    state.lasti = lasti
                    state.frame = None if frame.f_code.co_flags & _RESUMABLE else frame
                os_state = 0
                if state.stat >= 0:
                    os_state = _read_state(state)
                out += (SAMPLE | (stack << CATEGORY_SHIFT | os_state) << ARG_SHIFT, ts, g)
                if os_state in _WAITING and state.syscall >= 0:
                    nr = _read_syscall(state)
                    if nr >= 0:
                        out += (SYSCALL | nr << ARG_SHIFT, ts, g)
            except Exception:
                state.close()
                state.failed = True
        if out:
            self._emit(out)
        if len(states) > seen:  # threads ended, or their idents were reused
            for ident in [i for i, s in states.items() if i not in frames or threads.get(i) != s.g]:
                states.pop(ident).close()


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return -1


def _read_state(state: _Thread) -> int:
    """The thread's ThreadState from its stat file; UNKNOWN (files closed) if unreadable."""
    try:
        data = _pread(state.stat, 256, 0)
        return _STATES.get(data[data.rindex(b")") + 2], _OTHER)
    except (OSError, ValueError, IndexError):  # ended, or /proc refuses
        state.close()
        return 0


def _read_syscall(state: _Thread) -> int:
    """The number of the syscall the thread waits in, or -1 (running, none, or unreadable)."""
    try:
        field = _pread(state.syscall, 64, 0).split(b" ", 1)[0]
        return int(field) if field[:1].isdigit() else -1
    except (OSError, ValueError):
        os.close(state.syscall)
        state.syscall = -1
        return -1
