"""The event vocabulary shared by the recorder and the reader.

Every event is three integers: ``(code, ts, g)``.

* ``code`` packs the event kind in its low 8 bits and one signed argument
  above them: ``code = kind | (arg << 8)``.
* ``ts`` is a nanosecond timestamp from ``time.perf_counter_ns`` (Linux:
  ``CLOCK_MONOTONIC``).
* ``g`` names what the event is about: a goroutine id (threads and asyncio
  tasks share one id space), a loop id for ``LOOP_*`` and ``CALLBACK_*``
  events, a user task id for ``USER_TASK_*`` definitions, or 0 for the
  process.

docs/format.md describes each kind; this module is the single source of the
numbers.
"""

from __future__ import annotations

import enum

ARG_SHIFT = 8
KIND_MASK = 0xFF
MASK64 = (1 << 64) - 1  # an event's values are 64 bits; ``value & MASK64`` are a negative value's bits, unsigned


class Kind(enum.IntEnum):
    """Event kinds (the low byte of an event's code)."""

    # threads: g = thread goroutine id
    THREAD_CREATE = 10  # arg: creating goroutine (0 unknown)
    THREAD_START = 11  # arg: native (OS) thread id
    THREAD_END = 12
    THREAD_NAME = 13  # arg: string id
    THREAD_FUNC = 14  # arg: stack id of the thread's target
    THREAD_IDENT = 15  # arg: threading.get_ident() value
    THREAD_BLOCK = 16  # arg: stack_id << 4 | Category; ts: when the wait began
    THREAD_UNBLOCK = 17  # arg: goroutine that released it (0 unknown); ts: when the wait ended
    THREAD_SAMPLE = 18  # arg: stack_id << 4 | ThreadState; from the sampler
    THREAD_SYSCALL = 19  # arg: the syscall the sampled thread sleeps in (right after THREAD_SAMPLE)

    # event loops: g = loop id
    LOOP_START = 20  # arg: goroutine id of the thread running the loop
    LOOP_STOP = 21
    LOOP_IDLE_BEGIN = 22  # the loop blocks in its selector
    LOOP_IDLE_END = 23  # arg: number of ready I/O events
    LOOP_CLASS = 24  # arg: string id of the loop's class

    # asyncio tasks: g = task goroutine id
    TASK_CREATE = 30  # arg: creating goroutine (0 unknown)
    TASK_LOOP = 31  # arg: loop id
    TASK_FUNC = 32  # arg: stack id of the coroutine's entry (one frame)
    TASK_NAME = 33  # arg: string id, or -N for asyncio's default "Task-N"
    TASK_READY = 34  # arg: waker, see pack_waker
    TASK_STEP = 35  # a step starts
    TASK_SUSPEND = 36  # arg: stack_id << 4 | Category; the step ended waiting
    TASK_DONE = 37  # arg: Outcome; the step ended the task
    TASK_EAGER = 38  # the task's first step ran eagerly inside create_task
    TASK_AWAITS_WORK = 39  # arg: thread pool work item id its executor wait is for

    # plain callbacks a loop runs: g = loop id
    CALLBACK_BEGIN = 40  # arg: string id of the function << 3 | CallbackSource
    CALLBACK_END = 41

    # garbage collector: g = goroutine that ran the collection
    GC_START = 50  # arg: generation
    GC_END = 51  # arg: objects collected
    GC_UNCOLLECTABLE = 52  # arg: uncollectable objects found (after GC_END)
    HEAP_BLOCKS = 53  # g = 0, arg: sys.getallocatedblocks()
    HEAP_RSS = 54  # g = 0, arg: resident set size in bytes

    # user annotations: g = goroutine, unless stated
    USER_TASK_BEGIN = 60  # arg: user task id
    USER_TASK_END = 61  # arg: user task id
    USER_TASK_NAME = 62  # g = user task id, arg: string id
    USER_TASK_PARENT = 63  # g = user task id, arg: parent user task id
    REGION_BEGIN = 64  # arg: string id of the region name
    REGION_END = 65  # arg: string id of the region name
    REGION_TASK = 66  # arg: user task id of the region that just began
    LOG_CATEGORY = 67  # arg: string id (precedes LOG_MESSAGE)
    LOG_MESSAGE = 68  # arg: string id
    LOG_TASK = 69  # arg: user task id of the log record just made

    # the tracer itself: g = 0
    EVENTS_LOST = 70  # arg: number of events dropped (buffer limit)
    SAMPLER_LATE = 71  # arg: sampler ticks skipped: it got to run (or the GIL) that many intervals late
    EVENTS_TAKEN = 72  # among the events the writer takes from memory: arg ns since it last took them

    # thread pools (concurrent.futures.ThreadPoolExecutor, asyncio's default executor)
    POOL_SUBMIT = 80  # g = submitting goroutine, arg: work item id
    POOL_WORK_BEGIN = 81  # g = worker thread, arg: work item id
    POOL_WORK_END = 82  # g = worker thread, arg: work item id

    # estimates: g = thread (0: the sampler's own probe), ts = when it got the GIL back
    GIL_WAIT = 85  # arg: nanoseconds the thread waited for the GIL (estimated)

    # CPU time as the OS counts it: g = thread, or 0 for the whole process
    THREAD_CPU = 90  # arg: CPU ns the thread has used since it started (process: since the recording started)

    # child processes: g = the waiting goroutine
    PROCESS_WAIT = 95  # arg: pid of the child process its wait ending at ts (its THREAD_UNBLOCK's ts) was for


class Category(enum.IntEnum):
    """Why a goroutine waits (the low 4 bits of a TASK_SUSPEND argument)."""

    OTHER = 0
    NETWORK = 1
    SYNC = 2
    SLEEP = 3
    SYSCALL = 4
    YIELD = 5  # a bare yield (asyncio.sleep(0)): still runnable


class ThreadState(enum.IntEnum):
    """What the OS said a sampled thread was doing (the low 4 bits of THREAD_SAMPLE)."""

    UNKNOWN = 0
    RUNNING = 1  # on a CPU or runnable (R)
    SLEEPING = 2  # interruptible wait (S)
    DISK = 3  # uninterruptible wait (D)
    STOPPED = 4  # stopped or traced (T, t)
    OTHER = 5
    GIL = 6  # asleep (S) in a futex of the interpreter's own state: waiting for the GIL


class Outcome(enum.IntEnum):
    """How an asyncio task ended."""

    RETURNED = 0
    RAISED = 1
    CANCELLED = 2


class Waker(enum.IntEnum):
    """What made a task ready (the low 3 bits of a TASK_READY argument)."""

    UNKNOWN = 0
    TASK = 1  # id: goroutine id of the waking task
    THREAD = 2  # id: goroutine id of the waking thread
    IO = 3  # id: string id of the I/O callback that ran
    TIMER = 4  # id: string id of the timer callback that ran
    CALLBACK = 5  # id: string id of the plain callback that ran


class CallbackSource(enum.IntEnum):
    """How a plain loop callback got scheduled."""

    SOON = 0
    TIMER = 1
    IO = 2


WAKER_SHIFT = 3
WAKER_MASK = (1 << WAKER_SHIFT) - 1  # the Waker of a TASK_READY argument (or of a goroutine's current waker code)
CATEGORY_SHIFT = 4
CATEGORY_MASK = (1 << CATEGORY_SHIFT) - 1  # an argument's Category (TASK_SUSPEND, THREAD_BLOCK) or ThreadState
CALLBACK_SHIFT = 3


class Arg(enum.Enum):
    """What an event's argument holds: the ids a merge renumbers and a reader looks up."""

    VALUE = "value"  # a number of its own (a count, nanoseconds, an OS id, an Outcome...): nothing to look up
    GOROUTINE = "goroutine"  # a goroutine id (0: unknown)
    LOOP = "loop"  # a loop id
    USER_TASK = "user task"  # a user task id
    WORK = "work"  # a thread pool work item id
    STRING = "string"  # a string id (TASK_NAME: or -N, asyncio's default name "Task-N")
    STACK = "stack"  # a stack id
    STACK_AND_STATE = "stack << 4 | state"  # a stack id above a Category or ThreadState (CATEGORY_SHIFT bits)
    CALLBACK = "string << 3 | source"  # a function's string id above a CallbackSource (CALLBACK_SHIFT bits)
    WAKER = "waker"  # pack_waker: a goroutine id (TASK, THREAD) or a string id (IO, TIMER, CALLBACK) above a Waker


class Subject(enum.Enum):
    """What an event's ``g`` names."""

    GOROUTINE = "goroutine"  # a thread or task (0: the process, or the tracer itself)
    LOOP = "loop"
    USER_TASK = "user task"


# The kinds whose argument holds each sort of value: the one place that says which events hold which ids.
# Every kind is in exactly one tuple (a test checks it).
ARG_KINDS: dict[Arg, tuple[Kind, ...]] = {
    Arg.VALUE: (
        Kind.THREAD_START,  # native thread id
        Kind.THREAD_END,
        Kind.THREAD_IDENT,  # threading.get_ident()
        Kind.THREAD_SYSCALL,  # syscall number
        Kind.LOOP_STOP,
        Kind.LOOP_IDLE_BEGIN,
        Kind.LOOP_IDLE_END,  # ready I/O events
        Kind.TASK_STEP,
        Kind.TASK_DONE,  # Outcome
        Kind.TASK_EAGER,
        Kind.CALLBACK_END,
        Kind.GC_START,  # generation
        Kind.GC_END,  # objects collected
        Kind.GC_UNCOLLECTABLE,
        Kind.HEAP_BLOCKS,
        Kind.HEAP_RSS,  # bytes
        Kind.EVENTS_LOST,  # events
        Kind.SAMPLER_LATE,  # ticks
        Kind.EVENTS_TAKEN,  # ns
        Kind.GIL_WAIT,  # ns
        Kind.THREAD_CPU,  # ns
        Kind.PROCESS_WAIT,  # a pid (of a child process: its own process's, not renumbered by a merge)
    ),
    Arg.GOROUTINE: (Kind.THREAD_CREATE, Kind.THREAD_UNBLOCK, Kind.LOOP_START, Kind.TASK_CREATE),
    Arg.LOOP: (Kind.TASK_LOOP,),
    Arg.USER_TASK: (Kind.USER_TASK_BEGIN, Kind.USER_TASK_END, Kind.USER_TASK_PARENT, Kind.REGION_TASK, Kind.LOG_TASK),
    Arg.WORK: (Kind.TASK_AWAITS_WORK, Kind.POOL_SUBMIT, Kind.POOL_WORK_BEGIN, Kind.POOL_WORK_END),
    Arg.STRING: (
        Kind.THREAD_NAME,
        Kind.LOOP_CLASS,
        Kind.TASK_NAME,
        Kind.USER_TASK_NAME,
        Kind.REGION_BEGIN,
        Kind.REGION_END,
        Kind.LOG_CATEGORY,
        Kind.LOG_MESSAGE,
    ),
    Arg.STACK: (Kind.THREAD_FUNC, Kind.TASK_FUNC),
    Arg.STACK_AND_STATE: (Kind.THREAD_BLOCK, Kind.THREAD_SAMPLE, Kind.TASK_SUSPEND),
    Arg.CALLBACK: (Kind.CALLBACK_BEGIN,),
    Arg.WAKER: (Kind.TASK_READY,),
}
ARG_OF: dict[Kind, Arg] = {kind: arg for arg, kinds in ARG_KINDS.items() for kind in kinds}

# The kinds whose ``g`` is not a goroutine (every other kind's is, or 0 for the process)
SUBJECT_KINDS: dict[Subject, tuple[Kind, ...]] = {
    Subject.LOOP: (
        Kind.LOOP_START,
        Kind.LOOP_STOP,
        Kind.LOOP_IDLE_BEGIN,
        Kind.LOOP_IDLE_END,
        Kind.LOOP_CLASS,
        Kind.CALLBACK_BEGIN,
        Kind.CALLBACK_END,
    ),
    Subject.USER_TASK: (Kind.USER_TASK_NAME, Kind.USER_TASK_PARENT),
}
SUBJECT_OF: dict[Kind, Subject] = {
    kind: next((subject for subject, kinds in SUBJECT_KINDS.items() if kind in kinds), Subject.GOROUTINE)
    for kind in Kind
}


def pack(kind: int, arg: int = 0) -> int:
    """Combine a kind and its argument into an event code."""
    return kind | (arg << ARG_SHIFT)


def pack_waker(source: int, ident: int) -> int:
    """The TASK_READY argument for a waker of type ``source``."""
    return source | (ident << WAKER_SHIFT)
