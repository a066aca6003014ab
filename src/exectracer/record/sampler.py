"""The sampler: every thread's Python stack, OS state and CPU time, at a fixed rate.

Each tick takes ``sys._current_frames()`` and, for every thread the registry
knows, appends a THREAD_SAMPLE (stack and state), when the thread sleeps in a
syscall a THREAD_SYSCALL, and the CPU time it has used so far (THREAD_CPU);
then the process's CPU time (THREAD_CPU, g = 0). On Linux the state and
syscall come from ``/proc/self/task/<tid>/{stat,syscall}``, kept open per
thread and read with ``pread``, and the CPU time from the thread's CPU-time
clock; elsewhere the state is UNKNOWN and no CPU time is read. A stack is walked again only when the thread's top
frame moved. Failures never leave the sampler: a thread whose ``/proc`` files
cannot be read is sampled without its state, and a thread whose sample fails
otherwise is no longer sampled.

The CPU times are what the CPU profile sums: the OS's own count of the time
each thread spent on a CPU (the clock ``time.thread_time_ns`` reads for the
calling thread, read for any thread of the process by the clock id Linux
gives a thread id: ``_thread_clock``), so neither the state a sample happened to see nor
how many ticks the sampler got decides it. The recording's first sample is
taken by ``sample_now`` at start and its last by ``stop``, so the CPU times
span the whole recording.

The sampler holds the GIL while it reads, so a thread that was running Python
code is usually seen waiting for the GIL at its current line: asleep in a futex
of the interpreter's own state, which the sampler reports as GIL where it knows
where that state is (``gil_futex``), else as SLEEPING; RUNNING means running
without the GIL (C code that released it) or runnable.
"""

from __future__ import annotations

import _thread
import functools
import gc
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from ..format.events import ARG_SHIFT, CATEGORY_SHIFT, Kind, ThreadState
from ..tracer_thread import TracerThread
from .gil import GilLateness
from .gil_futex import first_argument, gil_futexes
from .handoff import NEVER, SAMPLER, GilHandoff
from .hook_errors import caught
from .native import speedups
from .procfs import ProcFile, start_reader
from .registry import Registry
from .store import EventStore
from .thread_stacks import MAX_DEPTH, FrameStacks

SAMPLE = int(Kind.THREAD_SAMPLE)
SYSCALL = int(Kind.THREAD_SYSCALL)
CPU = int(Kind.THREAD_CPU)
LATE = int(Kind.SAMPLER_LATE)
TASKS = "/proc/self/task"
# generator, coroutine, async generator: resumed from anywhere, so the same
# frame at the same offset does not mean the same callers
_RESUMABLE = 0x20 | 0x80 | 0x200
_STATES = {
    ord(c): int(s)
    for c, s in (
        ("R", ThreadState.RUNNING),
        ("S", ThreadState.SLEEPING),
        ("D", ThreadState.DISK),
        ("T", ThreadState.STOPPED),
        ("t", ThreadState.STOPPED),
    )
}
_OTHER = int(ThreadState.OTHER)
_RUNNING = int(ThreadState.RUNNING)
_WAITING = (int(ThreadState.SLEEPING), int(ThreadState.DISK))
_SLEEPING, _GIL = int(ThreadState.SLEEPING), int(ThreadState.GIL)
_process_cpu = time.process_time_ns  # bound now, before any hook could wrap it
_clock_ns = time.clock_gettime_ns if hasattr(time, "clock_gettime_ns") else None
# On 3.11, collections wait while sys._current_frames() runs: one started by the
# frame objects it makes can deadlock (CPython gh-106883). And every frame object
# of another thread's stack is made then, as deep as a walk goes (MAX_DEPTH): a
# collection started by one made later, in the walk's f_back, runs Python code
# (gc.callbacks), where that thread can return from the frame being made, and the
# object is left on a popped frame (under load, the walk then died of a
# segmentation fault). Frame objects of other threads are never kept between
# ticks: on 3.11 under load, keeping them went with segfaults in f_back.
_PAUSE_GC = (3, 11) <= sys.version_info < (3, 12)
WATCHDOG_TICKS = 3  # while a busy loop takes the samples, the thread takes them back after this many ticks without one


class _Thread:
    """What the sampler keeps per thread: its ``/proc`` files, its last stack and its last wait."""

    __slots__ = ("clock", "failed", "g", "line", "lost", "nr", "prefix", "stack", "stat", "state", "syscall", "top")

    def __init__(self, g: int, native_id: int | None, proc: bool) -> None:
        self.g = g
        self.stat = self.syscall = ProcFile(None)
        self.clock: int | None = None  # its CPU-time clock
        self.top: tuple[int, int, int] | None = None  # id of the top frame, of its code, and its offset
        self.stack = 0
        self.failed = False
        self.lost = False  # a file's descriptor was found closed and taken by the program: open them again
        self.line = b""  # the syscall file when last read with the thread waiting
        self.state = self.nr = 0
        self.prefix = b"%d (" % native_id if native_id else b""  # how its stat file starts
        if proc and native_id:
            self.stat = ProcFile(f"{TASKS}/{native_id}/stat")
            if self.stat.fd >= 0:
                self.syscall = ProcFile(f"{TASKS}/{native_id}/syscall")
                self.clock = _thread_clock(native_id)

    def os_state(self, read: Callable[[int], bytes], gil: tuple[int, int] | None = None) -> tuple[int, int]:
        """Its ThreadState and the syscall it waits in (-1: none); UNKNOWN, files closed, if unreadable.

        The syscall file (number, arguments, stack and instruction pointers)
        is read first: "running" needs nothing more, and the very same wait
        as at the previous sample keeps its state without reading ``stat``.
        A sleep on an address in ``gil`` (see ``gil_futex``) is GIL. A file
        that cannot be read, or reads as something else, may have been
        closed by the program and its number reused (``ProcFile``): such a
        number is dropped unclosed, and the files are opened again at a
        later tick (``lost``).
        """
        try:
            if self.syscall.fd >= 0:
                try:
                    line = read(self.syscall.fd)
                except OSError:  # refused (go on with stat alone), or no longer ours
                    if not self.syscall.mine():
                        return self._lose()
                    self.syscall.close()
                    return self.os_state(read, gil)
                if line.startswith(b"running"):
                    return _RUNNING, -1
                if line == self.line:
                    return self.state, self.nr
            data = read(self.stat.fd)
            if not data.startswith(self.prefix):
                raise ValueError("not this thread's stat file")
            state = _STATES.get(data[data.rindex(b")") + 2], _OTHER)
            if state not in _WAITING or self.syscall.fd < 0:
                self.line = b""
                return state, -1
            if state == _SLEEPING and gil is not None and gil[0] <= first_argument(line) < gil[1]:
                state = _GIL
            self.line, self.state, self.nr = line, state, int(line.split(b" ", 1)[0])
            return state, self.nr
        except (OSError, ValueError, IndexError):  # the thread ended, /proc says something unexpected, or not ours
            if not (self.stat.mine() and (self.syscall.fd < 0 or self.syscall.mine())):
                return self._lose()
            self.close()
            return 0, -1

    def cpu_ns(self) -> int:
        """The CPU time it has used since it started, in ns; -1 if unknown (it is then no longer read)."""
        if self.clock is None or _clock_ns is None:
            return -1
        try:
            return _clock_ns(self.clock)
        except OSError:  # the thread ended (EINVAL: no such thread in this process)
            self.clock = None
            return -1

    def _lose(self) -> tuple[int, int]:
        """A descriptor is no longer ours: close what still is, touch nothing else, open them again later."""
        self.close()
        self.lost = True
        return 0, -1

    def close(self) -> None:
        """Close its files (those still its own) and forget its stack."""
        self.stat.close()
        self.syscall.close()
        self.clock = None
        self.top = None


class _LockWatch:
    """``_speedups.Watch`` in Python, for when the C module is not in use: each look at the marks takes the GIL."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()  # held: released to wake the waiting thread
        self._marks = 0
        self.woke_ns = 0  # when a wait ended in the OS: unknown here (it ends with the GIL taken back)

    def wait(self, timeout: float, check_every: float, stale_checks: int, first_check: float = -1.0) -> bool:
        """Sleep until ``wake`` (True), ``timeout``, or ``stale_checks`` looks ``check_every`` apart with no ``mark``
        (the first look after ``first_check`` seconds, if given, as ``Watch.wait``'s)."""
        step = (
            check_every * stale_checks if check_every > 0 else timeout
        )  # one look per stale period: each takes the GIL
        if first_check >= 0 and check_every > 0:
            step, later = first_check + check_every * (stale_checks - 1), step
        else:
            later = step
        seen = self._marks
        while timeout > 0:
            if self._lock.acquire(True, min(step, timeout, threading.TIMEOUT_MAX)):
                return True
            timeout -= step
            step = later
            if check_every > 0:
                if self._marks == seen:
                    return False
                seen = self._marks
        return False

    def wake(self) -> None:
        """Let the waiting thread go (or the next ``wait`` return at once)."""
        try:
            self._lock.release()
        except RuntimeError:  # already woken
            pass

    def mark(self) -> None:
        """The work watched for was done."""
        self._marks += 1


class Sampler:
    """Samples every known thread's stack and state each ``interval`` seconds.

    From a daemon thread; while a busy event loop takes the ticks
    (``sample_inline``, see ``handoff``), from the loop's own thread; and,
    with the C hooks, from any thread about to make a hooked I/O, sleep or
    system call once a sample is due, and from an event loop's thread
    between two of its steps or callbacks (``sample_from_hook``; the one way
    on uvloop, which has no Python select to give way at): the daemon
    thread then takes the GIL only for the ticks no hook took.
    """

    def __init__(
        self,
        events: EventStore,
        registry: Registry,
        stacks: FrameStacks,
        interval: float,
        own_threads: set[int],
        gil: GilLateness | None = None,
        handoff: GilHandoff | None = None,
    ) -> None:
        self._emit = events.extend
        self._gil = gil  # told how late each tick resumes: the GIL wait probe
        self._handoff = handoff or GilHandoff()  # told when each tick is due
        self._registry = registry
        self._stacks = stacks
        self._interval_ns = int(interval * 1e9)
        self._own = own_threads
        self._proc = os.path.isdir(TASKS)
        self._read = start_reader()
        self._gil_futexes = gil_futexes() if self._proc else None  # where a thread waiting for the GIL sleeps
        self._threads: dict[int, _Thread] = {}  # threading ident -> state
        native = speedups()
        self._current_frames = _frames_reader(native)
        self._watch = native.Watch() if native is not None else _LockWatch()  # what the thread sleeps on
        self._hooks = native  # whose Timed calls take due samples (None: only this thread and a busy loop)
        # with the hooks, this thread waits that long past each due time for a hook to take the sample
        self._grace = self._interval_ns // 2 if native is not None else 0
        self._stopping = False
        self._busy = _thread.allocate_lock()  # held while a sample is taken, by either thread
        self._files_pending = False  # a hook's sample left a thread's /proc files to open or close
        self._due = NEVER  # perf_counter ns of the next sample
        self._cpu_base = _process_cpu() if self._proc else -1  # the process's CPU time at the recording's start
        self._thread = TracerThread(target=self._run, name="exectracer-sampler", daemon=True)

    def start(self) -> None:
        """Start sampling (the sampler's thread joins ``own_threads``)."""
        if self._hooks is not None:
            self._hooks.set_hook_sampler(self.sample_from_hook)
        self._thread.start()
        self._own.add(self._thread.ident)  # type: ignore[arg-type]  # set by start()

    def sample_now(self) -> None:
        """Take a sample at once, on the calling thread: at the recording's start, once its threads are known,
        so that every thread's CPU time counts from there."""
        with self._busy:
            try:
                self._sample(sys._getframe(1))
            except Exception:
                caught("sampler.first")

    def stop(self, last_sample: bool = True) -> None:
        """Stop sampling, wait for the thread, take a last sample on the calling thread (unless not
        ``last_sample``: every thread's CPU time up to here) and close every file."""
        self._stopping = True
        if self._hooks is not None:
            self._hooks.set_hook_sampler(None)
        if self._handoff.inline_sampler is self:
            self._handoff.inline_sampler = None
        self.wake()
        if self._thread.ident is not None:
            self._thread.join()
        with self._busy:  # a busy loop may be taking a sample
            if last_sample:
                try:
                    self._sample(sys._getframe(1))
                except Exception:
                    caught("sampler.last")
            for state in self._threads.values():
                state.close()
            self._threads.clear()

    def abandon_after_fork(self) -> None:
        """In a forked child: stop without waiting on anything the parent's threads held at the fork."""
        self._busy = _thread.allocate_lock()  # the parent's loop may have been sampling
        self.stop(last_sample=False)

    def wake(self) -> None:
        """Wake the sampler's thread (to stop, or to take its ticks back from a loop going idle)."""
        self._watch.wake()

    def sample_inline(self) -> None:
        """Take the due sample on a busy event loop's thread, which holds the GIL already.

        The loop's own stack is the one that called ``GilHandoff.give_way``
        (its ``select``), as when the sampler's thread samples a loop waiting
        for it. Does nothing while the sampler's thread is sampling.
        """
        self._sample_here(sys._getframe(2))

    def sample_from_hook(self) -> None:
        """Take the due sample on a thread about to make a hooked call (a Timed one), or on a loop's thread between
        two steps (the C step runner), which holds the GIL.

        Called from C: the thread's own stack starts at the caller of the
        hooked function (between steps: the loop's own frames). Not on the tracer's own threads.
        """
        if self._files_pending or threading.get_ident() in self._own:
            return  # this tick is left to the sampler's thread (the hooks wait for its next plan)
        self._sample_here(sys._getframe(1), opens_files=False)

    def _sample_here(self, own_frame: FrameType, opens_files: bool = True) -> None:
        """Take the due sample on the calling thread (``own_frame``: its stack), then plan the next."""
        if self._stopping or not self._busy.acquire(False):
            return
        try:
            now = time.perf_counter_ns()
            self._sample(own_frame, opens_files)
            self._plan_after(now)
            self._watch.mark()
        except Exception:  # never raise into the program: the sampler's thread takes the ticks back
            caught("sampler.inline")
            self._handoff.inline_sampler = None
            self.wake()
        finally:
            self._busy.release()

    def _plan(self, due: int) -> None:
        """The next sample falls due at ``due`` (perf_counter ns): tell the hooks, and a busy loop
        when this thread will want the GIL."""
        self._due = due
        self._handoff.plan(SAMPLER, self._wants_gil(due))
        if self._hooks is not None:
            self._hooks.set_hook_sample_due(due)

    def _plan_after(self, now: int) -> None:
        """Plan the tick after the one just taken. One that fell behind (the process short of CPU, or the GIL
        held by code that does not let it go) skips the ticks it missed and says how many (SAMPLER_LATE), so
        that readers know where samples are missing."""
        due = self._due + self._interval_ns
        if now >= due + self._interval_ns:
            self._emit((LATE | ((now - due) // self._interval_ns) << ARG_SHIFT, now, 0))
        self._plan(max(due, now))

    def _wants_gil(self, due: int) -> int:
        """When this thread will want the GIL for the sample due at ``due``."""
        return due + self._grace if due < NEVER else NEVER

    def _run(self) -> None:
        clock = time.perf_counter_ns
        interval = self._interval_ns
        handoff = self._handoff
        grace = self._grace
        self._plan(clock() + interval)
        try:
            while True:
                slept_until_due = handoff.inline_sampler is not self
                if not slept_until_due:  # sleep, without the GIL, until the loop stops taking them or goes idle
                    self._watch.wait(math.inf, interval / 1e9, WATCHDOG_TICKS)
                    if handoff.inline_sampler is self:
                        handoff.inline_sampler = None  # it stopped taking them
                elif grace:  # sleep, without the GIL, until a tick passes that no hook took
                    self._watch.wait(math.inf, interval / 1e9, 1, max(self._due + grace - clock(), 0) / 1e9)
                else:
                    self._watch.wait(max(self._due - clock(), 0) / 1e9, 0, 0)
                if self._stopping:
                    return
                now = clock()
                if now < self._due:
                    continue  # woken early (the loop went idle): sample when due
                if self._gil is not None and slept_until_due:  # how late this thread ran again: a GIL wait estimate
                    self._gil.observe(0, self._due + grace, now, self._watch.woke_ns)
                with self._busy:
                    if clock() < self._due:  # a hook took it meanwhile
                        continue
                    self._sample()
                    self._plan_after(clock())
                if handoff.finished(
                    SAMPLER, self._wants_gil(self._due)
                ):  # a busy loop waited for this sample: let it take the next ones
                    handoff.inline_sampler = self
        except Exception:  # never raise; stop sampling instead
            caught("sampler.thread")
        finally:
            if handoff.inline_sampler is self:
                handoff.inline_sampler = None
            self._plan(NEVER)

    def _sample(self, own_frame: FrameType | None = None, opens_files: bool = True) -> None:
        """One sample of every thread; ``own_frame`` stands for the calling thread's stack.

        Opening and closing a thread's ``/proc`` files lets go of the GIL:
        without ``opens_files`` (a sample taken in a hook, whose thread may
        hold a lock) a thread that needs it is left out, and the next tick
        is left to the sampler's thread (``_files_pending``).
        """
        if opens_files:
            self._files_pending = False
        threads = self._registry.threads.copy()
        ts, stacks, alive = self._walk(threads, own_frame, opens_files)
        states = self._threads
        read, gil = self._read, self._gil_futexes
        out: list[int] = []
        me = threading.get_ident() if own_frame is not None else 0
        for ident, g, stack in stacks:
            state = states[ident]
            try:
                if ident == me:  # the calling thread: running, here
                    os_state, nr = _RUNNING, -1
                else:
                    os_state, nr = state.os_state(read, gil) if state.stat.fd >= 0 else (0, -1)
                out += (SAMPLE | (stack << CATEGORY_SHIFT | os_state) << ARG_SHIFT, ts, g)
                if nr >= 0:
                    out += (SYSCALL | nr << ARG_SHIFT, ts, g)
                cpu = state.cpu_ns()
                if cpu >= 0:
                    out += (CPU | cpu << ARG_SHIFT, ts, g)
            except Exception:
                caught("sampler.states")
                state.close()
                state.failed = True
        if self._cpu_base >= 0:
            out += (CPU | (_process_cpu() - self._cpu_base) << ARG_SHIFT, ts, 0)
        if out:
            self._emit(out)
        ended = [i for i, st in states.items() if i not in alive or threads.get(i) != st.g]  # or ident reused
        if ended and not opens_files:
            self._files_pending = True
            return
        for ident in ended:
            states.pop(ident).close()

    def _walk(
        self, threads: dict[int, int], own_frame: FrameType | None, opens_files: bool
    ) -> tuple[int, list[tuple[int, int, int]], set[int]]:
        """The time, ``(ident, g, stack id)`` of each thread to sample, and the idents of all live threads.

        No frame object is kept once the walk is done (see ``_PAUSE_GC``).
        """
        own = self._own
        states = self._threads
        stacks_of = self._stacks.of
        native_ids = None
        out = []
        frames = self._current_frames()
        if own_frame is not None:
            frames[threading.get_ident()] = own_frame
        ts = time.perf_counter_ns()
        for ident, g in threads.items():
            frame = frames.get(ident)
            if frame is None or not g or ident in own:
                continue
            state = states.get(ident)
            if state is None or state.g != g or state.lost:
                if not opens_files:
                    self._files_pending = True
                    continue
                if state is not None:
                    state.close()
                if native_ids is None:
                    native_ids = {t.ident: t.native_id for t in threading.enumerate()}
                state = states[ident] = _Thread(g, native_ids.get(ident), self._proc)
            if state.failed:
                continue
            try:
                code = frame.f_code
                top = (id(frame), id(code), frame.f_lasti)
                if top != state.top:
                    state.stack = stacks_of(frame)
                    # the same live frame at the same offset has the same callers,
                    # unless it can be resumed from elsewhere
                    state.top = None if code.co_flags & _RESUMABLE else top
                out.append((ident, g, state.stack))
            except Exception:
                caught("sampler.stacks")
                state.close()
                state.failed = True
        alive = set(frames)
        del frames  # no frame object outlives the walk
        frame = own_frame = None  # (there is no `frame` if no thread is known)
        return ts, out, alive


def _thread_clock(native_id: int) -> int | None:
    """The clock id of a thread's CPU time on Linux (as ``pthread_getcpuclockid`` makes it, from the thread id):
    ``clock_gettime`` on it fails for a thread that is not this process's. None where there is none to read."""
    if _clock_ns is None or sys.platform != "linux":
        return None
    return (~native_id << 3) | 6  # CPUCLOCK_PERTHREAD_MASK (4) | CPUCLOCK_SCHED (2)


def _frames_reader(native: object | None) -> Callable[[], dict[int, FrameType]]:
    """``sys._current_frames``, or where it must run with collections held off (``_PAUSE_GC``), a call that does so
    and makes every frame object a walk of ``MAX_DEPTH`` levels reads meanwhile."""
    if not _PAUSE_GC:
        return sys._current_frames
    if native is not None:  # holds the GIL throughout: no other thread sees the collector off
        return functools.partial(native.current_frames, sys._current_frames, MAX_DEPTH)  # type: ignore[attr-defined]
    return _frames_without_collections


def _frames_without_collections() -> dict[int, FrameType]:
    """The Python twin of ``current_frames``, for the frames' tops only.

    Another thread can run between the ``gc`` calls: for that moment it sees
    the collector off, and a ``gc.disable()`` it makes then is undone. It does
    not make the deeper frame objects at once as the C reader does: Python code
    walking other threads' stacks lets the GIL go between frames anyway, and
    walking them here, each tick, lost a task's wake-ups on 3.11 (a proxy's
    handlers in ``tests/test_talk_loops.py`` never saw their backend's answer).
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return sys._current_frames()
    finally:
        if paused:
            gc.enable()
