"""Start and stop a recording: the public ``start``/``stop``/``trace`` API."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from ..format.chunks import FORMAT_VERSION, MAX_CHUNK_BYTES
from ..format.encoder import EVENT_BYTES
from ..trace_files import RUN_ID_ENV
from ..version import __version__
from . import annotations as _annotations
from . import current as _current
from . import gc_hooks, hook_errors, io_waits, pool_hooks, sync_waits, task_child_waits, thread_hooks
from .blocking import Waits
from .gc_hooks import HeapProbe
from .gil import GilLateness
from .handoff import GilHandoff
from .held_signals import handlers_held
from .imports import ImportHooks
from .interner import Interner
from .native import hook_state as native_hook_state
from .native import speedups
from .patcher import Patcher
from .registry import Registry
from .sampler import Sampler
from .store import new_store
from .thread_stacks import FrameStacks
from .writer import Sink, Writer, open_sink

MAX_CHUNK_EVENTS = MAX_CHUNK_BYTES // EVENT_BYTES  # the most events a chunk can hold: readers refuse larger payloads


class TracingError(RuntimeError):
    """Tracing cannot be started or stopped as asked."""


@dataclasses.dataclass(frozen=True)
class Options:
    """Recording options (keyword arguments of ``start``)."""

    flush_interval: float = 1.0  # seconds between flushes to the file, at most
    chunk_events: int = 65536  # events per chunk, at most
    max_pending_bytes: int = 64 << 20  # encoded bytes waiting for the disk before chunks are dropped
    compression: int = 1  # zlib level, 0 for none
    asyncio: bool = True  # record event loops and tasks
    threads: bool = True  # record thread lifecycles
    gc: bool = True  # record garbage collections
    heap_interval: float = 1.0  # seconds between heap samples (besides one at each collection)
    thread_waits: bool = True  # record what threads wait on (locks, sockets, sleeps, syscalls)
    block_threshold: float = 20e-6  # seconds: shorter waits are not recorded
    sample_interval: float = 0.01  # seconds between stack and state samples of every thread; 0: off

    def __post_init__(self) -> None:
        if not self.flush_interval > 0:
            raise ValueError("flush_interval must be a positive number of seconds")
        if not 1 <= self.chunk_events <= MAX_CHUNK_EVENTS:
            raise ValueError(
                f"chunk_events must be from 1 to {MAX_CHUNK_EVENTS:,}"
                f" (a chunk's events are at most {MAX_CHUNK_BYTES >> 20} MiB)"
            )
        if self.max_pending_bytes < 1:
            raise ValueError("max_pending_bytes must be at least 1")
        if not 0 <= self.compression <= 9:
            raise ValueError("compression must be a zlib level from 0 to 9")
        if not self.heap_interval > 0:
            raise ValueError("heap_interval must be a positive number of seconds")
        if not self.block_threshold >= 0:
            raise ValueError("block_threshold must be a number of seconds, 0 or more")
        if not self.sample_interval >= 0:
            raise ValueError("sample_interval must be a number of seconds, 0 (off) or more")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> Options:
        """Build options, naming unknown keywords in the error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown tracing option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**kwargs)


def in_memory_defaults(max_bytes: int, window: float | None = None) -> dict[str, Any]:
    """Option defaults for a recording kept in memory, ``max_bytes`` at most (a live capture, the flight recorder).

    Nothing reads such a recording before it stops or a snapshot flushes it,
    so chunks are made seldom: making one costs a busy program a few
    hand-overs of the GIL and its compression some CPU, and those set its
    tail latency (see bench/LOG.md). A chunk's raw events stay within 3/8
    of ``max_bytes``, so that a ring of that size holds several chunks.

    ``window``: a recording of that many seconds at most (a capture), whose
    chunks are best made once it ends: then no chunk is made during it,
    unless a chunk's worth of events (up to ``MAX_CHUNK_EVENTS``) piles up first.
    """
    flush_interval, most_events = (5.0, 1 << 18) if window is None else (max(5.0, window + 1.0), MAX_CHUNK_EVENTS)
    return {
        "flush_interval": flush_interval,
        "heap_interval": 5.0,
        "chunk_events": max(1024, min(most_events, max_bytes // 64)),
    }


class Recorder:
    """One recording: the event store, the hooks and the writer."""

    def __init__(self, dest: str | os.PathLike[str] | Sink, options: Options) -> None:
        self.options = options
        self.dest_name = os.fspath(dest) if isinstance(dest, (str, os.PathLike)) else getattr(dest, "name", repr(dest))
        native = speedups()
        self.events = new_store(native)
        self.rows = self.events if native is not None else None  # the same store, for the C hooks (None: no C hooks)
        self.interner = Interner()
        self.active = False
        self.warnings: list[str] = []
        self.unseen: list[str] = []  # what the recorder could not see (the END record's "unseen")
        self._patcher = Patcher()
        self._imports = ImportHooks(self.warn)  # hooks for modules not imported yet (asyncio, ssl, ...)
        self._remove_gc: Callable[[], None] | None = None
        self._before_stop: list[tuple[str, Callable[[], None]]] = []  # (hook name, what it records as tracing stops)
        self._after_fork: list[Callable[[], None]] = []  # what hooks that outlive the patcher's restore do in a child
        self._asyncio_hooks: Any = None  # what the asyncio hooks share, once installed (uvloop's use it too)
        self._heap = HeapProbe()
        self._sink, self._close_sink = open_sink(dest)
        self.handoff = GilHandoff()  # when the threads below want the GIL from a busy loop
        self.writer = Writer(
            self._sink,
            self.events,
            self.interner,
            flush_interval=options.flush_interval,
            chunk_events=options.chunk_events,
            max_pending_bytes=options.max_pending_bytes,
            compression=options.compression,
            on_tick=self._tick,
            tick_interval=options.heap_interval,
            handoff=self.handoff,
        )
        self.registry = Registry(  # with the C hooks, the task ids and current step they share
            self.events,
            self.interner,
            self.writer.thread_idents,
            tasks=native.TaskIds() if native is not None else None,
            local=native_hook_state(native) if native is not None else None,
        )
        self.stacks = FrameStacks(self.interner)  # thread stacks, shared by the sampler and the wait hooks
        self.waits: Waits | None = None
        self.gil = GilLateness(self.events)
        self.sampler: Sampler | None = None
        self.pid = os.getpid()

    def start(self) -> None:
        """Write the header, start the writer and install the hooks."""
        hook_errors.reset()
        self.writer.start(self._metadata())
        opts = self.options
        if opts.sample_interval > 0:  # before any thread is adopted or hooked: it is one of ours
            self.sampler = Sampler(
                self.events,
                self.registry,
                self.stacks,
                opts.sample_interval,
                self.writer.thread_idents,
                self.gil,
                self.handoff,
            )
            self.sampler.start()
        self.active = True
        for thread in threading.enumerate():
            if thread.ident is not None:
                try:
                    self.registry.adopt_thread(thread, thread.ident)
                except Exception:  # that thread is described when it is first seen, if ever: never fail start()
                    hook_errors.caught("threads.adopt")
        try:
            self._install_hooks()
        except BaseException:
            self._unhook()
            self._stop_sampler()
            self.writer.stop({"clean": False})
            raise
        self.events.extend(self._heap.events(0, time.perf_counter_ns(), force=True))
        if self.sampler is not None:  # every thread's CPU time counts from here, the hooks in place
            self.sampler.sample_now()

    def _install_hooks(self) -> None:
        """Install the hooks the options ask for; those of modules not imported yet, once they are."""
        opts, patcher, when_imported = self.options, self._patcher, self._imports.when_imported
        if opts.asyncio:  # first if asyncio is imported: the thread-wait wrappers go around its hooks
            when_imported("asyncio", self._install_asyncio)
            when_imported("uvloop", self._install_uvloop)
            if self._asyncio_hooks is not None:  # both in, if imported: is a loop no hook sees running here?
                self._asyncio_hooks.check_running_loop()
            when_imported("trio", self._install_trio)
            when_imported(
                "asyncio.base_subprocess",
                lambda module: task_child_waits.install(
                    self._patcher, self.events, self.registry, module, lambda: self.active
                ),
            )
        if opts.threads:
            thread_hooks.install(patcher, self.events, self.registry, lambda: self.active)
            when_imported(
                "concurrent.futures.thread",
                lambda module: pool_hooks.install(patcher, self.events, self.registry, module),
            )
        if opts.gc:
            self._remove_gc = gc_hooks.install(self.events, self.registry, self._heap)
        if opts.thread_waits:
            self.waits = Waits(self.events, self.registry, self.stacks, int(opts.block_threshold * 1e9), self.rows)
            sync_waits.install(patcher)
            io_waits.install(patcher)
            when_imported("ssl", lambda module: io_waits.install_ssl(patcher, module))
            when_imported("subprocess", lambda module: io_waits.install_subprocess(patcher, module))

    def _install_asyncio(self, module: object) -> None:
        from . import asyncio_hooks  # imports asyncio: not before the program does

        self._asyncio_hooks = asyncio_hooks.install(
            self._patcher,
            self.events,
            self.registry,
            self.interner,
            self.warn,
            self.handoff,
            self.rows,
            self.note_unseen,
        )
        self._before_stop.append(("asyncio.before_stop", self._asyncio_hooks.before_stop))
        if self.waits is not None:  # imported after start: the selectors' wait wrappers go around its hooks again
            io_waits.install_selectors(self._patcher)

    def _install_uvloop(self, module: ModuleType) -> None:
        if self._asyncio_hooks is None:  # uvloop imports asyncio first: its hooks are in, unless they failed
            return
        from . import uvloop_hooks  # imports nothing the program has not (uvloop is imported)

        if not uvloop_hooks.install(self._patcher, self._asyncio_hooks, module):
            self.warn(f"uvloop {getattr(module, '__version__', '?')}: its loop cannot be hooked")

    def _install_trio(self, module: object) -> None:
        from . import trio_hooks  # imports trio: not before the program does

        hooks = trio_hooks.install(self._patcher, self.events, self.registry, self.interner, self.warn, self.handoff)
        if hooks is not None:
            self._before_stop.append(("trio.before_stop", hooks.stop))
            self._after_fork.append(hooks.abandon)

    def stop(self) -> dict:
        """Remove the hooks, write what is left and close; return the totals."""
        for name, before_stop in self._before_stop:
            try:
                before_stop()
            except Exception:
                hook_errors.caught(name)
        stop_ns = time.perf_counter_ns()  # the recording ends here: the trace must not claim the time unhooking takes
        self.active = False
        self._unhook()
        self._stop_sampler()
        self.events.extend(self._heap.events(0, stop_ns, force=True))  # the heap as it was left, stamped at the end
        errors = hook_errors.take()
        self.writer.stop(
            {"clean": True, "stop_ns": stop_ns, "warnings": self.warnings, "unseen": self.unseen, "hook_errors": errors}
        )
        self._heap.close()
        if self._close_sink is not None:
            self._close_sink()
        if self.writer.write_error:
            warnings.warn(
                f"exectracer: the trace {self.dest_name} is incomplete: {self.writer.write_error}",
                RuntimeWarning,
                stacklevel=3,
            )
        return {
            "events": self.writer.events_written,
            "events_lost": self.writer.events_lost,
            "bytes": self.writer.bytes_written,
            "hook_errors": sum(int(error["count"]) for error in errors.values()),
        }

    def abandon_after_fork(self) -> None:
        """In a forked child: stop recording without touching the parent's file."""
        self.active = False
        self._imports.abandon_after_fork()
        for abandon in self._after_fork:
            try:
                abandon()
            except Exception:
                hook_errors.caught("after_fork")
        self._unhook()
        if self.sampler is not None:
            self.sampler.abandon_after_fork()
            self.sampler = None
        self.writer.abandon()

    def note_unseen(self, note: str) -> None:
        """Note, once, something the recorder cannot see (kept for the trace's END record; readers show it)."""
        if note not in self.unseen:
            self.unseen.append(note)

    def warn(self, message: str) -> None:
        """Warn once per message, and keep it for the trace's END record.

        The warning is issued inside the program's own calls (``asyncio.Runner``, ``set_event_loop``, an import):
        where the program's filters make warnings errors (``-W error``, pytest's ``filterwarnings = error``), it is
        left out rather than raised into the program; the END record still has it.
        """
        if message not in self.warnings:
            self.warnings.append(message)
            with contextlib.suppress(Warning):
                warnings.warn(f"exectracer: {message}", RuntimeWarning, stacklevel=4)

    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None

    def _unhook(self) -> None:
        self._imports.close()  # first: no hook is installed after the restore
        self._patcher.restore()
        if self.waits is not None:
            self.waits.close()
        if self._remove_gc is not None:
            self._remove_gc()
            self._remove_gc = None

    def _tick(self) -> None:  # every heap_interval, from the writer's collector
        if self.active:
            self.events.extend(self._heap.events(0, time.perf_counter_ns()))

    def _metadata(self) -> dict:
        clock = time.get_clock_info("perf_counter")
        gil = getattr(sys, "_is_gil_enabled", None)
        return {
            "format_version": FORMAT_VERSION,
            "tracer": "exectracer",
            "tracer_version": __version__,
            "python": {
                "version": sys.version.split()[0],
                "implementation": _IMPLEMENTATIONS.get(sys.implementation.name, sys.implementation.name),
                "executable": sys.executable,
                "gil": gil() if gil is not None else True,
            },
            "platform": _platform(),
            "hostname": socket.gethostname(),
            "boot_id": _boot_id(),  # with the host name: which recordings share the monotonic clock
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "run_id": os.environ.get(RUN_ID_ENV),  # the exectracer run whose files it is one of (trace_files.py)
            "argv": list(sys.argv),
            "cwd": os.getcwd(),
            "switch_interval": sys.getswitchinterval(),  # how often a thread waiting for the GIL wakes up
            "start_wall_ns": time.time_ns(),
            "start_ns": time.perf_counter_ns(),
            "clock": {
                "name": "perf_counter",
                "implementation": clock.implementation,
                "resolution": clock.resolution,
                "monotonic": clock.monotonic,
            },
            "options": dataclasses.asdict(self.options),
            "native_hooks": self.rows is not None,  # the hottest hooks in C (else in Python)
            "exact": [
                "asyncio tasks and callbacks (loops derived from asyncio.BaseEventLoop)",
                "trio tasks, steps, wake-ups and idle time (trio.abc.Instrument on every trio run)",
                "thread lifecycles",
                "thread waits on locks, conditions and joins made or started while tracing",
                "thread waits in hooked blocking calls (sockets, select, sleep, subprocess, os)",
                "thread pool work items",
                "garbage collections",
            ],
            "sampled": [
                "thread stacks and OS states (THREAD_SAMPLE), which also show waits no hook saw",
                "the CPU time of each thread and of the process, read at each sample (THREAD_CPU)",
            ],
            "estimated": ["GIL waits (GIL_WAIT)"],
        }


_IMPLEMENTATIONS = {
    "cpython": "CPython",
    "pypy": "PyPy",
    "graalpy": "GraalVM",
    "ironpython": "IronPython",
    "jython": "Jython",
}  # as platform.python_implementation() names them


@functools.cache  # a forked child's recording starts with its parent's
def _platform() -> str:
    """The system, its release, the machine and the C library, like ``platform.platform()``.

    Without the ``platform`` module, whose import and libc probing take
    about 15 ms of the traced program's start.
    """
    system = os.uname() if hasattr(os, "uname") else None
    name = f"{system.sysname}-{system.release}-{system.machine}" if system is not None else sys.platform
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        libc = None
    return f"{name}-with-{libc.replace(' ', '')}" if libc else name


_lock = threading.Lock()
_yields: Recorder | None = None  # a recording that a start() stops instead of failing (yield_to_start)


def yield_to_start(recorder: Recorder | None) -> None:
    """Let a ``start()`` stop ``recorder`` (finishing its trace) rather than fail: the recording ``exectracer run``
    makes in a child process gives way to one the program starts itself."""
    global _yields
    _yields = recorder


def start(dest: str | os.PathLike[str] | Sink, **options: Any) -> None:
    """Start tracing the whole process into ``dest`` (a path or a binary file object).

    Options are the fields of :class:`Options`. Raises :class:`TracingError`
    if tracing is already running.
    """
    start_recorder(dest, **options)


def stop() -> dict:
    """Stop tracing, flush everything to the destination and return the totals."""
    return stop_recorder()


def start_recorder(dest: str | os.PathLike[str] | Sink, **options: Any) -> Recorder:
    """``start()``, returning the new recording (for integrations that must stop exactly it)."""
    opts = Options.from_kwargs(options)
    running = current()
    if running is not None and running is _yields:  # a child's recording made by exectracer run: it gives way
        with contextlib.suppress(TracingError):
            stop_recorder(running)
    with _lock:
        running = current()
        if running is not None:
            raise TracingError(f"tracing is already running (into {running.dest_name}); call exectracer.stop() first")
        recorder = Recorder(dest, opts)
        recorder.start()
        _current.recording = recorder
        _annotations.annotation_sink(recorder)
    _register_fork_handler()
    return recorder


def stop_recorder(recorder: Recorder | None = None) -> dict:
    """Stop the running recording, only if it is ``recorder`` when one is given; return its totals.

    A signal's Python handler (Ctrl-C's ``KeyboardInterrupt``) runs once the trace is complete, not inside.
    """
    with handlers_held():
        with _lock:
            running = current()
            if running is None or (recorder is not None and running is not recorder):
                raise TracingError("tracing is not running" if recorder is None else "this recording is not running")
            _current.recording = None
            _annotations.annotation_sink(None)
        return running.stop()


def is_tracing() -> bool:
    """Whether a recording is running in this process."""
    return _current.recording is not None


def current() -> Recorder | None:
    """The running recorder, if any (for integrations)."""
    running = _current.recording
    return running if isinstance(running, Recorder) else None


@contextlib.contextmanager
def trace(dest: str | os.PathLike[str] | Sink, **options: Any) -> Iterator[None]:
    """Trace the body of a ``with`` block into ``dest``."""
    start(dest, **options)
    try:
        yield
    finally:
        stop()


_fork_handler_registered = False


def _register_fork_handler() -> None:
    global _fork_handler_registered
    if not _fork_handler_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_handler_registered = True


def _after_fork_in_child() -> None:
    """A forked child does not trace and never writes into the parent's trace."""
    global _lock
    _lock = threading.Lock()
    recorder = current()
    _current.recording = None
    _annotations.annotation_sink(None)
    if recorder is not None:
        recorder.abandon_after_fork()


@functools.cache
def _boot_id() -> str | None:
    """The kernel's boot id (Linux): two recordings with the same one share ``CLOCK_MONOTONIC``."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            return file.read().strip() or None
    except OSError:
        return None
