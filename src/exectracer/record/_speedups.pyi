"""The hottest recording hooks in C (built from csrc/; see csrc/speedups.h for which file holds what).

What Python sees of the extension: its types, with their constructor
keywords, methods and attributes, and its functions. The Python hooks in
asyncio_hooks.py, blocking.py, sync_waits.py and annotations.py are the
reference for what each one records; the event numbers come from
format/events.py (csrc/events.h, generated). Arguments the C code takes
positionally only are marked with ``/``. ``tests/test_speedups_stub.py``
checks that this stub and the built module name the same things.
"""

import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from types import CodeType, FrameType, FunctionType, TracebackType
from typing import Any, SupportsIndex, TypeVar, final, overload

from typing_extensions import Buffer, Self, disjoint_base

_T = TypeVar("_T")
_D = TypeVar("_D")

# -- the event store and the tracer threads' sleeps (rows.c) ----------------------------------------

@final
class Rows:
    """A recording's events as three uint64 columns (code, ts, g), until the writer takes them."""

    def __new__(cls) -> Self: ...
    def __len__(self) -> int: ...
    def take(self) -> tuple[bytes, int, int]:
        """Remove every stored event as one EVENTS payload (the code, ts and g columns, little-endian 64-bit each):
        (payload, events taken, events lost since the last take for want of memory)."""
    def extend(self, values: Sequence[int], /) -> None:
        """Store the events in ``values``, three ints per event (code, ts, g); a negative int keeps its 64 bits."""
    def wait(self, count: int, timeout: float, /) -> bool:
        """Block without the GIL until ``count`` events are stored or ``wake()`` is called (True),
        or ``timeout`` seconds pass."""
    def wake(self) -> None:
        """Let the thread in ``wait`` go now (or the next ``wait`` return at once)."""
    def set_handoff(self, handoff: Any, /) -> None:
        """When the count wakes the thread in ``wait``, set ``handoff.due`` to 0
        (a GilHandoff; None: nothing to tell)."""
    def clear(self) -> None:
        """Forget the stored events."""

@final
class Watch:
    """A sleep without the GIL that ends when woken, at a timeout, or when the marks stop (the sampler's)."""

    @property
    def woke_ns(self) -> int:
        """When the last ``wait`` ended in the OS (perf_counter_ns), before the GIL was taken back; 0 if unknown."""
    def __new__(cls) -> Self: ...
    def wait(self, timeout: float, check_every: float, stale_checks: int, first_check: float = ..., /) -> bool:
        """Sleep until ``wake()`` (True), ``timeout`` seconds, or (``check_every`` > 0) until ``stale_checks`` looks
        ``check_every`` seconds apart, the first after ``first_check`` (default ``check_every``),
        saw no new ``mark()`` (False)."""
    def wake(self) -> None:
        """Let the thread in ``wait`` go now (or the next ``wait`` return at once)."""
    def mark(self) -> None:
        """Note that the work watched for was done."""

# -- the registry's task ids (tables.c) -------------------------------------------------------------

@final
class TaskIds:
    """id(task) -> goroutine id, for the registry and the C hooks: a dict the C hooks read by address.

    Keys must be ids of objects (ints above 1); anything else raises TypeError."""

    def __new__(cls) -> Self: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> int: ...
    def __setitem__(self, key: int, value: int, /) -> None: ...
    def __delitem__(self, key: int, /) -> None: ...
    def __contains__(self, key: int, /) -> bool: ...
    @overload
    def get(self, key: int, /) -> int | None: ...
    @overload
    def get(self, key: int, default: _D, /) -> int | _D: ...
    @overload
    def pop(self, key: int, /) -> int: ...
    @overload
    def pop(self, key: int, default: _D, /) -> int | _D: ...

# -- the asyncio hooks (step_runner.c, scheduling.c) -------------------------------------------------
# Each is a method descriptor put on asyncio's classes in place of a method: called with the handle or
# loop first, bound like a function. An error in the recording falls back to the Python hook or is
# cleared; the program never sees it. Once Patcher has set its __wrapped__ (the method it replaced), it
# passes for that method (stand_in.py): its __class__, __doc__, repr, pickling and any attribute it has
# not itself (__module__, __qualname__, __name__, ...) are the method's.

@final
class StepRunner:
    """Handle._run for the recording: runs a task step or another callback and records it."""

    def __new__(
        cls,
        *,
        fallback: FunctionType,  # the Python hook: handle_run(handle)
        run_callback: Callable[[Any, Any], None],  # the Python hook for a plain callback: run_callback(handle, cb)
        step_types: set[type],  # the callback types a task's step comes in
        task_classes: tuple[type, ...],
        is_task_type: dict[type, bool],  # filled here
        tasks: TaskIds,
        task_g: Callable[[Any], int],  # task_g(task): its goroutine id, registering it
        local: Any,  # the hooks' HookState (a threading.local)
        rows: Rows,
        one_await: set[int],  # ids of codes with one suspension point (AwaitChains.one_await)
        chain_cache: dict[Any, int],  # AwaitChains.cache: chain key -> TASK_SUSPEND code
        define_chain: Callable[[tuple[Any, ...], Any, Any], int],  # define_chain(key, coro, waiter)
        executor_futures: Any,  # a WeakSet of the futures run_in_executor made
        ready_type: type,  # asyncio_hooks._ReadyHandle
        report_error: Callable[[Any, BaseException], object],  # report_callback_error(handle, exc)
        clock: Callable[[], int],
        code_for: Callable[[Any, Any], int],  # code_for(coro, waiter): chains deeper than the C table's keys
        task_type: type,  # asyncio.Task
        step_wrapper_type: type | None,  # the C task's TaskStepMethWrapper
        loops: dict[int, int],  # id(loop) -> loop id
        loop_id: Callable[[Any], int],  # loop_id(loop), registering it
        name_cache: dict[Any, int],  # CallbackNames.cache
        name_id: Callable[[Any], int],  # CallbackNames.name_id(callback)
        timer_type: type,  # asyncio.TimerHandle
        looked_at: set[int],  # AwaitChains.looked_at
        context_entered: bool,  # runs the UvCalls a loop calls inside their context (UvSoon's), not handles
    ) -> Self: ...
    def __call__(self, handle: Any, /) -> None: ...
    __wrapped__: Callable[..., Any]  # Handle._run
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

@final
class ReadySoon:
    """BaseEventLoop._call_soon for the recording: queues a handle stamped with when and by whom it was queued."""

    fill_directly: bool
    """Whether handles are filled here, as Handle.__init__ would (else the Python hook makes them)."""

    def __new__(
        cls,
        *,
        fallback: FunctionType,  # the Python hook: call_soon(loop, callback, args, context)
        ready_type: type,  # asyncio_hooks._ReadyHandle
        slots: tuple[Any, ...],  # its slot descriptors: _context, _loop, _callback, _args, _cancelled, _repr,
        # _source_traceback, _xt_ts, _xt_waker, in that order
        thread_waker: Callable[[], int],  # the calling thread's waker code
        clock: Callable[[], int],
    ) -> Self: ...
    def __call__(self, loop: Any, callback: Any, args: Any, context: Any, /) -> Any: ...
    __wrapped__: Callable[..., Any]  # BaseEventLoop._call_soon
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

@final
class UvSoon:
    """uvloop.Loop's call_soon, call_soon_threadsafe, call_later and call_at for the recording: the callback handed
    over as a stamped call (a UvCall, which passes for the callback) that uvloop calls in the callback's own context
    and a StepRunner runs and records."""

    def __new__(
        cls,
        *,
        fallback: FunctionType,  # the Python hook: fallback(loop, [when,] callback, *args, context=None)
        orig: Callable[..., Any],  # uvloop's method
        runner: StepRunner,  # runs a UvCall and records it; made with context_entered
        clock: Callable[[], int],
        noted: Callable[[], object] | None,  # called once, at the first callback handed over
        boundaries: tuple[CodeType, ...],  # code of the functions that run a loop
        running_loop: Callable[[], Any],  # asyncio.events._get_running_loop
        thread_waker: Callable[[], int],  # the calling thread's waker code
        outside: Callable[[Any, FrameType], int],  # the waker of what uvloop called from C, from its outermost frame
        when: bool,  # a delay or a time comes before the callback (call_later, call_at)
    ) -> Self: ...
    def __call__(self, loop: Any, /, *args: Any, context: Any = None) -> Any: ...
    __wrapped__: Callable[..., Any]  # uvloop.loop.Loop's method
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

@final
class TaskCreator:
    """BaseEventLoop.create_task for the recording: makes the task, then registers and describes it."""

    def __new__(
        cls,
        *,
        fallback: FunctionType,  # the Python hook: create_task(loop, coro, *args, **kwargs)
        create_task: Callable[..., Any],  # asyncio's own
        tasks: TaskIds,
        local: Any,  # the hooks' HookState
        threads: dict[int, int],  # thread ident -> goroutine id
        thread_g: Callable[[], int],
        new_g: Callable[[], int],  # a fresh goroutine id
        loops: dict[int, int],  # id(loop) -> loop id
        loop_id: Callable[[Any], int],
        task_funcs: dict[int, int],  # id(code) -> TASK_FUNC code
        task_func: Callable[[Any, Any], int],  # task_func(coro, code), defining it
        name_code: Callable[[str], int],  # the TASK_NAME code of a name that is not asyncio's "Task-N"
        eager_step: Callable[
            [Any, Any, int, int], object
        ],  # eager_step(task, coro, g, ts): a first step that ran eagerly
        rows: Rows,
        clock: Callable[[], int],
    ) -> Self: ...
    def __call__(self, loop: Any, coro: Any, /, *args: Any, **kwargs: Any) -> Any: ...
    __wrapped__: Callable[..., Any]  # BaseEventLoop.create_task
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

@final
class IoReady:
    """BaseSelectorEventLoop._process_events for the recording: notes which handles I/O made ready."""

    def __new__(
        cls,
        *,
        fallback: FunctionType,  # the Python hook: process_events(loop, event_list)
        process_events: Callable[[Any, Any], None],  # asyncio's own
        local: Any,  # the hooks' HookState
    ) -> Self: ...
    def __call__(self, loop: Any, event_list: Any, /) -> None: ...
    __wrapped__: Callable[..., Any]  # BaseSelectorEventLoop._process_events
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

# -- thread waits (thread_waits.c) ------------------------------------------------------------------

@final
class Timed:
    """``func``, timed (what blocking.timed makes): a call that took the wait threshold or more goes to
    ``record(start, end, frame, args)``, or, with a ``category`` (0 or more), is recorded in C where
    set_wait_sink says. With ``loop_selector``, a call on the running asyncio loop's own selector is not
    recorded; with ``wakers`` (a dict keyed by weak references), the wait's waker is the value for the
    first argument. It passes for ``func`` (stand_in.py): its ``__class__``, ``__doc__``, repr, pickling and
    any other attribute are ``func``'s. Where ``func`` is not bound as a method (a builtin function), what
    ``Timed(...)`` makes is a ``StaticTimed``."""

    __wrapped__: Callable[..., Any]

    def __new__(
        cls,
        func: Callable[..., Any],
        record: Callable[[int, int, FrameType | None, tuple[Any, ...]], object],
        clock: Callable[[], int],
        socket_method: bool = False,
        category: int = -1,
        samples: bool = False,
        loop_selector: bool = False,
        wakers: dict[Any, int] | None = None,
    ) -> Self: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

@final
class StaticTimed:
    """A ``Timed`` whose function is not bound as a method (a builtin function: ``nap = time.sleep`` in a class
    body stays ``time.sleep`` for its instances, as untraced). Made by ``Timed(...)``, never directly."""

    __wrapped__: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> str | tuple[Any, ...]: ...

@disjoint_base
class LockWrapper:
    """A real lock, made by the subclass's ``_make(*args, **kwargs)``, whose contended acquires are recorded as
    sync waits (sync_waits.NativeLock and NativeRLock). Any other attribute is the real lock's."""

    @property
    def _lock(self) -> Any:
        """The real lock."""
    @property
    def _waiters(self) -> int:
        """Threads blocked in acquire."""
    @property
    def _releaser(self) -> int:
        """The goroutine that last released it while others waited."""
    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def __enter__(self) -> bool: ...
    def release(self) -> None:
        """Release the lock, noting the releaser if anyone waits for it."""
    def __exit__(self, *args: object) -> None: ...
    def locked(self) -> bool: ...
    def _at_fork_reinit(self) -> None: ...
    def __getattr__(self, name: str) -> Any: ...

# -- regions (regions.c) ----------------------------------------------------------------------------

@disjoint_base
class Region:
    """annotations.region's base: its __enter__ and __exit__ in C, recorded where set_annotation_sink says."""

    name: object
    def __new__(cls, name: object) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
        /,
    ) -> None: ...

# -- functions --------------------------------------------------------------------------------------

def set_wait_sink(
    *,
    threshold: int,  # ns: shorter calls are not waits
    rows: Rows | None,  # None: waits go through the Timed wrappers' `record`
    threads: dict[int, int],  # thread ident -> goroutine id
    thread_g: Callable[[], int],
    of_key: Callable[[tuple[int, ...], FrameType | None], int],  # FrameStacks.of_key: a stack's id from its raw key
) -> None:
    """Record the waits Timed wrappers and LockWrapper see that last ``threshold`` ns or more, there (Waits sets it)."""

def clear_wait_sink() -> None:
    """No recording records waits any more."""

def record_wait(start: int, end: int, category: int, frame: FrameType | None, waker: int, /) -> bool:
    """Record a thread's wait where set_wait_sink says; False if it cannot (then the caller records it)."""

def in_timed_call() -> bool:
    """Whether the calling thread is inside a Timed call."""

def set_hook_sampler(sampler: Callable[[], object] | None, /) -> None:
    """Timed calls made with ``samples`` call ``sampler()`` once the due sample is due (None: never)."""

def set_hook_sample_due(due: int, /) -> None:
    """When the next sample is due (perf_counter ns)."""

def current_waker(state: object, /) -> int:
    """The calling thread's HookState.cur (the getter of a property: takes the state)."""

def set_current_waker(state: object, value: int, /) -> None:
    """Set the calling thread's HookState.cur (the setter of a property: takes the state and the value)."""

def set_annotation_sink(
    *,
    rows: Rows,
    threads: dict[int, int],  # thread ident -> goroutine id
    thread_g: Callable[[], int],
    strings: dict[str, int],  # the interner's strings
    intern: Callable[[str], int],  # Interner.string
    user_task: ContextVar[int],  # the current user task's id
) -> None:
    """Store the regions' events in ``rows`` (the Recorder sets it as its recording starts)."""

def clear_annotation_sink() -> None:
    """Regions record nothing any more."""

def kept_positions(codes: Buffer, gs: Buffer, wanted: Buffer, of_task: Buffer, live: set[int], /) -> list[int]:
    """The positions of the events LiveDescriptions.absorb takes in from a dropped chunk (codes and gs: 64-bit
    integer columns; wanted, of_task: 256-byte tables by kind; live: the goroutines a TASK_DONE can forget)."""

def current_frames(reader: Callable[[], dict[int, FrameType]], depth: int, /) -> dict[int, FrameType]:
    """``reader()`` (``sys._current_frames``) with the collector held off, each thread's frame objects made ``depth``
    levels down meanwhile (see ``sampler._frames_reader``)."""

def call_without_collections(func: Callable[[], _T], /) -> _T:
    """``func()`` with the collector held off, unseen by other threads (func must run no Python code)."""

def clock_ns(clock: Callable[[], int], /) -> int:
    """The clock the hooks read (``clock``, time.perf_counter_ns, is called only where it is not read directly)."""

if sys.version_info < (3, 11):
    def first_local(frame: FrameType, /) -> object:
        """A live frame's first local variable, read without f_locals (3.10 only)."""

if sys.platform != "win32":
    def pread_start(fd: int, /) -> bytes:
        """The first 256 bytes of the file at ``fd`` (from offset 0), read holding the GIL."""
    def term_notify(fd: int, /) -> bool:
        """If SIGTERM's action is the default, catch it at the OS level (Python's ``signal`` still says
        SIG_DFL): write its number to ``fd`` (non-blocking) and put the default back. False if it was not."""
    def term_release() -> None:
        """Put SIGTERM's default action back if ``term_notify``'s handler is still set."""
    def signal_restarts(signum: int, /) -> bool:
        """Whether the signal's action restarts the calls it interrupts (SA_RESTART: siginterrupt(signum, False))."""

# Only where the libz the zlib module loaded is a shared library of its own (look it up with getattr).
def compress_whole(data: Buffer, level: int, *, planes: bool = False) -> bytes:
    """zlib.compress(data, level), letting go of the GIL once for the whole call; with ``planes``, of the EVENTS
    payload ``data`` as byte planes (``to_planes``)."""
