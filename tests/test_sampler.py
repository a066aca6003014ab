"""The stack and state sampler, with real threads, read back through the trace format."""

from __future__ import annotations

import collections
import gc
import hashlib
import itertools
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

import exectracer
from exectracer.format.chunks import ChunkKind, file_header
from exectracer.format.encoder import events_chunk, json_chunk
from exectracer.format.events import CATEGORY_SHIFT, KIND_MASK, Kind, ThreadState
from exectracer.record import native
from exectracer.record import sampler as sampler_module
from exectracer.record.gil_futex import gil_futexes
from exectracer.record.interner import Interner
from exectracer.record.registry import Registry
from exectracer.record.sampler import Sampler
from exectracer.record.thread_stacks import FrameStacks

from support.recorded import Recorded
from support.waiting import DEADLINE, in_function, wait_for, wait_until_blocked

pytestmark = pytest.mark.recorder

LINUX = os.path.isdir("/proc/self/task")
FUTEX = {
    "x86_64": 202,
    "amd64": 202,
    "aarch64": 98,
    "arm64": 98,
    "riscv64": 98,
    "i686": 240,
    "armv7l": 240,
    "ppc64le": 221,
    "s390x": 238,
}.get(platform.machine().lower())


class Session:
    """A sampler on its own: events, interner, registry and the threads it knows."""

    def __init__(self, interval: float = 0.005, stacks: type[FrameStacks] = FrameStacks) -> None:
        self.events: list[int] = []
        self.interner = Interner()
        self.own: set[int] = set()
        self.registry = Registry(self.events, self.interner, self.own)
        self.sampler = Sampler(self.events, self.registry, stacks(self.interner), interval, self.own)

    def adopt(self, *threads: threading.Thread) -> list[int]:
        """Make the threads known to the registry; their goroutine ids."""
        return [self.registry.adopt_thread(t, t.ident) for t in threads]

    def load(self, tmp_path: Path) -> Recorded:
        """Write what was recorded as a trace file and read it back."""
        strings, frames, stacks = self.interner.take_new()
        data = b"".join(
            (
                file_header(),
                json_chunk(ChunkKind.METADATA, 1, {"format_version": 1}),
                json_chunk(ChunkKind.STRINGS, 2, strings),
                json_chunk(ChunkKind.STACKS, 3, {"frames": frames, "stacks": stacks}),
                events_chunk(4, self.events),
                json_chunk(ChunkKind.END, 5, {"clean": True}),
            )
        )
        path = tmp_path / "sampled.xtrace"
        path.write_bytes(data)
        return Recorded(path)


def samples(rec: Recorded, g: int) -> list[tuple[int, list, int | None]]:
    """(state, stack frames, syscall or None) of each THREAD_SAMPLE of ``g``, in order."""
    out = []
    kinds, args = rec.kind, rec.arg
    for i in rec.of(Kind.THREAD_SAMPLE, g):
        arg = int(args[i])
        nr = (
            int(args[i + 1])
            if i + 1 < len(kinds) and kinds[i + 1] == Kind.THREAD_SYSCALL and rec.g[i + 1] == g
            else None
        )
        out.append((arg & ((1 << CATEGORY_SHIFT) - 1), rec.trace.stacks.get(arg >> CATEGORY_SHIFT, []), nr))
    return out


def spin_in_python(done: threading.Event) -> None:
    x = 0
    while not done.is_set():
        x += 1


def spin_in_c(done: threading.Event) -> None:
    data = bytes(1 << 24)
    while not done.is_set():
        hashlib.sha256(data).digest()  # releases the GIL


def count_samples(session: Session, g: int) -> int:
    """How many THREAD_SAMPLEs of ``g`` the session holds so far."""
    events = session.events[:]  # a copy, taken holding the GIL: whole events only
    return sum(events[i] & KIND_MASK == Kind.THREAD_SAMPLE and events[i + 2] == g for i in range(0, len(events), 3))


def run_threads(
    session: Session,
    targets: list,
    at_least: int | list[int],
    wake: Callable[[], object] = lambda: None,
    blocking: bool = False,
) -> list[int]:
    """Run one thread per target (each gets ``done``) under the sampler; their goroutine ids.

    Sampling starts once each thread is in its target (``blocking``: asleep in a call there) and
    goes on until each has been sampled ``at_least`` times (a list: one count per target), however
    long that takes; then the sampler stops, ``done`` is set and ``wake()`` is called.
    """
    done = threading.Event()
    threads = [threading.Thread(target=t, args=(done,)) for t in targets]
    counts = at_least if isinstance(at_least, list) else [at_least] * len(targets)
    for t in threads:
        t.start()
    try:
        for thread, target in zip(threads, targets, strict=True):  # at their loop or wait
            if blocking:
                wait_until_blocked(thread, target.__name__)
            else:
                name = target.__name__
                wait_for(lambda thread=thread, name=name: in_function(thread, name), f"{thread.name} in {name}")
        gs = session.adopt(*threads)
        session.sampler.start()
        try:

            def sampled() -> bool:
                return all(count_samples(session, g) >= n for g, n in zip(gs, counts, strict=True))

            wait_for(sampled, f"{counts} samples of the threads")
        finally:
            session.sampler.stop()
    finally:
        done.set()
        wake()
        for t in threads:
            t.join()
    return gs


def test_busy_threads_are_sampled_where_they_run(tmp_path):
    session = Session()
    (g,) = run_threads(session, [spin_in_python], 20)
    rec = session.load(tmp_path)
    got = samples(rec, g)
    assert len(got) >= 20
    assert all(any(f.function.endswith("spin_in_python") for f in frames) for _, frames, _ in got)
    if LINUX:  # running Python, or waiting for the GIL the sampler holds, and said so where the GIL's futexes are known
        waiting = ThreadState.GIL if gil_futexes() is not None else ThreadState.SLEEPING
        assert all(state == ThreadState.RUNNING or (state == waiting and nr is not None) for state, _, nr in got), got


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_threads_running_without_the_gil_are_mostly_running(tmp_path):
    session = Session()
    (g,) = run_threads(session, [spin_in_c], 20)
    rec = session.load(tmp_path)
    got = samples(rec, g)
    assert len(got) >= 20
    assert all(any(f.function.endswith("spin_in_c") for f in frames) for _, frames, _ in got)
    states = collections.Counter(state for state, _, _ in got)
    assert states[ThreadState.RUNNING] > 0.7 * len(got), states


def test_blocked_threads_show_sleeping_in_their_syscall(tmp_path):
    session = Session()
    a, b = socket.socketpair()

    def wait_event(done: threading.Event) -> None:
        done.wait()

    def wait_recv(done: threading.Event) -> None:
        a.recv(1)

    with a, b:
        g_event, g_recv = run_threads(session, [wait_event, wait_recv], 10, wake=lambda: b.send(b"x"), blocking=True)
    rec = session.load(tmp_path)

    for g, name in ((g_event, "wait_event"), (g_recv, "wait_recv")):
        got = samples(rec, g)
        assert len(got) >= 10
        assert all(frames and any(f.function.endswith(name) for f in frames) for _, frames, _ in got)
        if not LINUX:
            assert {state for state, _, _ in got} == {ThreadState.UNKNOWN}
            continue
        assert all(state == ThreadState.SLEEPING for state, _, _ in got), got
        assert all(nr is not None for _, _, nr in got)
    if LINUX and FUTEX is not None:
        assert {nr for _, _, nr in samples(rec, g_event)} == {FUTEX}


def test_unchanged_stacks_are_not_walked_again(tmp_path):
    walked = collections.Counter()

    class Counting(FrameStacks):
        def of(self, frame):
            walked[frame.f_code.co_name] += 1
            return super().of(frame)

    session = Session(interval=0.002, stacks=Counting)

    def blocked(done: threading.Event) -> None:
        done.wait()

    (g,) = run_threads(session, [blocked], 30, blocking=True)
    rec = session.load(tmp_path)
    assert len(samples(rec, g)) >= 30
    assert walked["wait"] <= 2  # threading.Event.wait's frame: walked once, then reused


def test_only_known_threads_are_sampled_and_sampling_stops(tmp_path):
    session = Session()
    done = threading.Event()
    known = threading.Thread(target=done.wait)
    unknown = threading.Thread(target=done.wait)
    mine = threading.Thread(target=done.wait)
    for t in (known, unknown, mine):
        t.start()
    (g_known,) = session.adopt(known)
    session.registry.threads[mine.ident] = g_mine = session.registry.new_g()  # known, but the tracer's own
    session.own.add(mine.ident)
    try:
        session.sampler.start()
        assert session.sampler._thread.is_alive() and session.sampler._thread.ident in session.own
        wait_for(lambda: count_samples(session, g_known) >= 10, "samples of the known thread")
        session.sampler.stop()
        n = len(session.events)
        time.sleep(0.05)
        assert len(session.events) == n
    finally:
        done.set()
        for t in (known, unknown, mine):
            t.join()
    rec = session.load(tmp_path)
    sampled = set(rec.g[rec.of(Kind.THREAD_SAMPLE)].tolist())
    assert sampled == {g_known}
    assert g_mine not in sampled


def test_threads_made_known_after_the_start_are_sampled(tmp_path):
    """Ticks with no thread known yet sample nothing, and the sampler goes on."""
    session = Session(interval=0.002)
    ticks = []
    take = session.sampler._sample
    session.sampler._sample = lambda *args: (ticks.append(1), take(*args))
    done = threading.Event()
    late = threading.Thread(target=done.wait)
    late.start()
    try:
        session.sampler.start()
        wait_for(lambda: len(ticks) >= 5, "ticks with no thread known")
        (g,) = session.adopt(late)
        wait_for(lambda: count_samples(session, g) >= 5, "samples of the thread made known")
        session.sampler.stop()
    finally:
        done.set()
        late.join()
    rec = session.load(tmp_path)
    assert len(samples(rec, g)) >= 5


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_files_are_closed_when_threads_end_and_at_stop():
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    session = Session(interval=0.002)
    done, end_early = threading.Event(), threading.Event()
    long_lived = threading.Thread(target=done.wait)
    short_lived = threading.Thread(target=end_early.wait)
    for t in (long_lived, short_lived):
        t.start()
    session.adopt(long_lived, short_lived)
    try:
        session.sampler.start()
        wait_for(lambda: open_fds() == before + 4, "the stat and syscall files of each thread, opened at a tick")
        end_early.set()
        short_lived.join()  # still in the registry (no thread hooks here), gone from the process
        wait_for(lambda: open_fds() == before + 2, "the ended thread's files closed at a tick")
    finally:
        session.sampler.stop()
        done.set()
        long_lived.join()
    assert open_fds() == before


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_a_file_the_program_closed_and_reused_is_left_to_the_program():
    """A program that closes a number twice (rloop 0.5 does at every loop run) can close the sampler's file and get
    its number for its next socket: the sampler must not close that socket, and opens its files again."""

    def files_of(thread: threading.Thread) -> list[int]:
        prefix = f"/proc/{os.getpid()}/task/{thread.native_id}/"
        found = []
        for name in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{name}").startswith(prefix):
                    found.append(int(name))
            except OSError:  # closed since the listing
                pass
        return sorted(found)

    session = Session(interval=0.002)
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    session.adopt(thread)
    read_end, write_end = os.pipe()
    taken: list[int] = []
    try:
        session.sampler.start()
        taken = wait_for(lambda: len(files_of(thread)) == 2 and files_of(thread), "the thread's stat and syscall files")
        for fd in taken:  # the program's stray close of each number, then its pipe under that number
            os.dup2(read_end, fd)
        pipe = os.fstat(read_end)

        def still_the_pipe(fd: int) -> bool:
            try:
                st = os.fstat(fd)
            except OSError:
                return False
            return (st.st_dev, st.st_ino) == (pipe.st_dev, pipe.st_ino)

        # a tick read the numbers: it either closed them (the bug) or opened its own files again
        wait_for(lambda: files_of(thread) or not all(map(still_the_pipe, taken)), "a tick to read the numbers")
        assert files_of(thread), "the sampler opens the thread's files again"
    finally:
        session.sampler.stop()
        done.set()
        thread.join()
    try:
        assert all(map(still_the_pipe, taken)), "the program's pipe is still under the numbers it took"
        os.write(write_end, b"x")
        assert os.read(taken[0], 1) == b"x"
    finally:
        for fd in {read_end, write_end, *taken}:
            try:
                os.close(fd)
            except OSError:
                pass


def test_failures_stop_only_the_thread_that_failed(tmp_path, monkeypatch):
    hooked = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)

    class Failing(FrameStacks):
        def of(self, frame):
            f = frame
            while f is not None:
                if f.f_code.co_name == "victim":
                    raise RuntimeError("boom")
                f = f.f_back
            return super().of(frame)

    session = Session(stacks=Failing)

    def victim(done: threading.Event) -> None:
        while not done.wait(0.0005):
            pass

    def bystander(done: threading.Event) -> None:
        done.wait()

    g_victim, g_bystander = run_threads(session, [victim, bystander], [0, 20])
    rec = session.load(tmp_path)
    assert len(samples(rec, g_bystander)) >= 20
    assert samples(rec, g_victim) == []
    assert hooked == []


def test_without_proc_states_are_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(sampler_module, "TASKS", str(tmp_path / "no-proc"))
    session = Session()

    def blocked(done: threading.Event) -> None:
        done.wait()

    (g,) = run_threads(session, [blocked], 10, blocking=True)
    rec = session.load(tmp_path)
    got = samples(rec, g)
    assert len(got) >= 10
    assert {state for state, _, _ in got} == {ThreadState.UNKNOWN}
    assert len(rec.of(Kind.THREAD_SYSCALL)) == 0


CHURN = """
import gc, sys, threading, time
from exectracer.record.interner import Interner
from exectracer.record.registry import Registry
from exectracer.record.gil_futex import gil_futexes
from exectracer.record.sampler import Sampler
from exectracer.record.thread_stacks import FrameStacks

gc.set_threshold(5)  # collect often, also inside sys._current_frames()
done = threading.Event()

def churn():  # cyclic garbage holding threading.local objects
    while not done.is_set():
        for _ in range(200):
            loc = threading.local()
            loc.me = [loc]
        time.sleep(0)

def calls():  # new frames for sys._current_frames() to materialize
    def f(n):
        return f(n - 1) if n else 0
    while not done.is_set():
        f(30)

threads = [threading.Thread(target=t) for t in (churn, churn, calls, calls)]
for t in threads:
    t.start()
events = []
interner = Interner()
own = set()
registry = Registry(events, interner, own)
sampler = Sampler(events, registry, FrameStacks(interner), 0.001, own)
sampler.start()
for t in threading.enumerate():
    registry.adopt_thread(t, t.ident)
time.sleep(1)
sampler.stop()
done.set()
for t in threads:
    t.join()
print("ok", gc.isenabled())
"""


def test_no_deadlock_when_a_collection_clears_thread_locals():
    """CPython gh-106883: on 3.11, a collection inside sys._current_frames() could hang the process."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    done = subprocess.run([sys.executable, "-c", CHURN], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["ok", "True"], done.stderr


@pytest.mark.skipif(
    sampler_module._PAUSE_GC and native.speedups() is None,
    reason="the Python twin leaves a moment where other threads see the collector off",
)
def test_the_program_never_sees_the_collector_paused():
    """On 3.11 the sampler holds collections off while it reads the frames: the program never sees it."""
    session = Session(interval=0.0005)
    wrong = collections.Counter()

    def toggle(done: threading.Event) -> None:
        while not done.is_set():
            for want in (False, True):
                (gc.enable if want else gc.disable)()
                for _ in range(200):
                    if gc.isenabled() != want:
                        wrong[want] += 1
                        (gc.enable if want else gc.disable)()

    def deep(done: threading.Event, depth: int = 100) -> None:  # long stacks: long walks
        if depth:
            return deep(done, depth - 1)
        while not done.is_set():
            sum(range(50))

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the GIL changes hands inside the sampler's walks
    try:
        run_threads(session, [toggle, deep, deep, deep], [0, 300, 0, 0])  # some 300 walks: about half a second here
    finally:
        sys.setswitchinterval(switching)
        gc.enable()
    assert len(session.events) > 0
    assert wrong == {}


WATCHES = [pytest.param(sampler_module._LockWatch, id="python")]
if (_speedups := native.speedups()) is not None:
    WATCHES.append(pytest.param(_speedups.Watch, id="c"))


@pytest.mark.parametrize("make", WATCHES)
def test_the_watch_sleeps_while_marks_come_and_wakes_when_they_stop(make) -> None:
    """The sampler's thread, watching a busy loop that takes the samples, sleeps while the loop marks its watch."""
    watch = make()
    marking = threading.Event()
    marking.set()
    marked: list[float] = []

    def loop() -> None:
        while marking.is_set():
            watch.mark()
            marked.append(time.perf_counter())
            time.sleep(0.002)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        t0 = time.perf_counter()
        result: list[bool] = []
        # stale once three looks 50 ms apart saw no new mark (the sampler's watch looks once a tick): marks
        # 2 ms apart keep it asleep unless the marking thread itself gets no CPU for over 100 ms
        waiter = threading.Thread(target=lambda: result.append(watch.wait(math.inf, 0.05, 3)))
        waiter.start()
        waiter.join(0.6)
        gaps = sorted(b - a for a, b in itertools.pairwise(marked))[-3:]
        assert waiter.is_alive(), f"woke while the marks kept coming (longest gaps between marks: {gaps} s)"
        stopped = time.perf_counter()
        marking.clear()
        waiter.join(DEADLINE)  # never woken otherwise: no timeout, and nothing calls wake()
        assert result == [False], "the marks stopped: the watch says so"
        assert stopped - t0 >= 0.59
    finally:
        marking.clear()
        thread.join()


@pytest.mark.parametrize("make", WATCHES)
def test_the_watch_wakes_on_wake_and_at_its_timeout(make) -> None:
    watch = make()
    t0 = time.perf_counter()
    assert watch.wait(0.05, 0, 0) is False
    assert time.perf_counter() - t0 >= 0.04
    watch.wake()  # nobody waits: the next wait returns at once (True: woken, not timed out)
    t0 = time.perf_counter()
    assert watch.wait(DEADLINE, 0, 0) is True
    threading.Timer(0.05, watch.wake).start()
    assert watch.wait(math.inf, 0.01, int(DEADLINE / 0.01)) is True  # woken, not stale (no mark for DEADLINE s)
    assert time.perf_counter() - t0 < DEADLINE
    assert watch.wait(0.01, 0, 0) is False  # the wake was used up


@pytest.mark.skipif(native.speedups() is None, reason="the C hooks are not built or are switched off")
def test_threads_in_hooked_calls_take_the_due_samples_themselves(record, monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy threads passing through hooked calls take each due sample holding the GIL they have;
    the sampler's thread takes the GIL only for ticks no hook took."""
    takers: list[int] = []
    take = Sampler._sample

    def logged(self: Sampler, *args: object) -> None:
        takers.append(threading.get_ident())
        take(self, *args)

    monkeypatch.setattr(Sampler, "_sample", logged)
    workers: set[int] = set()

    def ping_pong(seconds: float) -> None:
        workers.add(threading.get_ident())
        a, b = socket.socketpair()
        deadline = time.perf_counter() + seconds
        with a, b:
            while time.perf_counter() < deadline or len(takers) < 30:  # at least 0.6 s, and 30 samples
                assert time.perf_counter() < deadline + DEADLINE, f"{len(takers)} samples"
                a.sendall(b"x" * 64)
                b.recv(64)
                sum(range(200))  # some Python between the calls

    def run() -> None:
        threads = [threading.Thread(target=ping_pong, args=(0.6,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    record(run, sample_interval=0.01)
    by_workers = sum(ident in workers for ident in takers)
    assert len(takers) >= 30
    assert by_workers > 0.5 * len(takers), f"the workers took {by_workers} of {len(takers)} samples"


@pytest.mark.skipif(
    native.speedups() is None or not os.path.isdir("/proc/self/task"), reason="needs the C hooks and /proc"
)
def test_threads_that_come_and_go_while_hooks_sample_get_their_files_opened_and_closed(
    record, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample taken in a hook opens and closes no /proc file (that lets go of the GIL): a new
    thread's files are opened, and an ended one's closed, by the sampler's thread at the next tick."""
    from exectracer.record import recorder

    stop = threading.Event()
    seen: dict[str, object] = {}
    taken: list[int] = []  # when each sample began
    take = Sampler._sample

    def logged(self: Sampler, *args: object) -> None:
        taken.append(time.perf_counter_ns())
        take(self, *args)

    monkeypatch.setattr(Sampler, "_sample", logged)

    def ping_pong() -> None:
        a, b = socket.socketpair()
        with a, b:
            while not stop.is_set():
                a.sendall(b"x" * 64)
                b.recv(64)

    def blocked(release: threading.Event) -> None:
        seen["g"] = recorder.current().registry.thread_g()
        release.wait()

    def proc_files(thread: threading.Thread) -> int:
        """The sampler's open files of ``thread`` (its stat and syscall in /proc)."""
        prefix = f"/proc/{os.getpid()}/task/{thread.native_id}/"
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                found += os.readlink(f"/proc/self/fd/{fd}").startswith(prefix)
            except OSError:  # closed meanwhile
                pass
        return found

    def run() -> None:
        workers = [threading.Thread(target=ping_pong) for _ in range(2)]
        for t in workers:
            t.start()
        for t in workers:
            wait_for(lambda t=t: proc_files(t) == 2, "the files of a worker")
        release = threading.Event()
        newcomer = threading.Thread(target=blocked, args=(release,))
        newcomer.start()
        wait_for(lambda: proc_files(newcomer) == 2, "the files of the newcomer")
        seen["with"] = proc_files(newcomer)
        opened = time.perf_counter_ns()
        wait_for(lambda: sum(began > opened for began in taken) >= 5, "five samples of the newcomer")
        release.set()
        newcomer.join()
        wait_for(lambda: proc_files(newcomer) == 0, "the newcomer's files closed")
        seen["after"] = proc_files(newcomer)
        stop.set()
        for t in workers:
            t.join()

    rec = record(run, sample_interval=0.01)
    assert seen["with"] == 2 and seen["after"] == 0, seen  # its stat and syscall files, then none
    samples = rec.of(Kind.THREAD_SAMPLE, seen["g"])
    states = rec.arg[samples] & ((1 << CATEGORY_SHIFT) - 1)
    assert len(samples) >= 5 and (states == ThreadState.SLEEPING).sum() >= len(samples) - 1


def test_frames_of_inherited_methods_are_named_by_their_defining_class():
    # as the await chains name them, so that a frame is named alike whichever interns it first
    class Base:
        def where(self):
            return sys._getframe()

    class Child(Base):
        pass

    interner = Interner()
    FrameStacks(interner).of(Child().where())
    _, name_id, _, _ = interner.new_frames[0]  # innermost first
    names = {sid: text for text, sid in interner.strings.items()}
    assert names[name_id].endswith(".Base.where")


class _Holder:
    def hold(self, taken: list[int]) -> bool:
        """Sampled while a local holds an object, which then goes: it must be gone at once."""
        held = _Big()
        gone = weakref.ref(held)
        since = len(taken)
        # sampled here, with a stack new to the recording
        wait_for(lambda: len(taken) >= since + 5, "samples taken while the local holds it", interval=0.002)
        del held  # no cycle: freed at once unless something else holds it
        return gone() is None


class _Big:
    pass


@pytest.mark.skipif(
    native.speedups() is None and sys.version_info < (3, 11), reason="the Python hooks read f_locals before 3.11"
)
def test_sampling_keeps_no_local_alive(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Before 3.11, naming a method's frame read its `self` through f_locals, and the frame then kept
    a copy of every local."""
    taken: list[int] = []
    take = Sampler._sample
    monkeypatch.setattr(Sampler, "_sample", lambda self, *args: (take(self, *args), taken.append(1)))
    with exectracer.trace(tmp_path / "t.xtrace", sample_interval=0.001):
        assert _Holder().hold(taken)


@pytest.mark.skipif(not LINUX, reason="needs /proc")
def test_the_heap_probe_leaves_a_reused_number_to_the_program():
    """The RSS file is kept open for the whole recording: a program's stray close and reuse of its number must not
    make the probe read or close the program's file."""
    from exectracer.record.gc_hooks import HeapProbe

    probe = HeapProbe()
    assert probe.rss() > 0
    fd = probe._statm.fd
    read_end, write_end = os.pipe()
    try:
        os.dup2(read_end, fd)  # the program closes the number and puts its pipe there
        assert probe.rss() == 0  # not the statm file any more: no figure
        probe.close()
        os.write(write_end, b"x")
        assert os.read(fd, 1) == b"x"  # still the program's pipe
    finally:
        for n in (fd, read_end, write_end):
            os.close(n)


@pytest.mark.recorder
def test_ticks_the_sampler_misses_while_the_gil_is_held_are_counted_and_reported(tmp_path: Path) -> None:
    from exectracer.report import render

    path = tmp_path / "late.xtrace"
    with exectracer.trace(path, sample_interval=0.005):
        time.sleep(0.05)  # a few ticks on time
        sum(range(30_000_000))  # C code holding the GIL throughout: no tick can be taken meanwhile
        time.sleep(0.05)
    trace = exectracer.load(path, strict=True)
    late = trace.events.arg[trace.events.kind == Kind.SAMPLER_LATE]
    assert len(late) >= 1 and trace.sampler_ticks_skipped == int(late.sum()) >= 1
    info = trace.analysis.summary()["trace"]["sampler"]
    assert info["interval_ns"] == 5_000_000 and info["ticks_skipped"] == trace.sampler_ticks_skipped
    assert 0 < info["ticks_skipped"] < info["ticks_due"]
    report = render(trace.analysis.summary(), "late.xtrace", width=0)
    assert f"SAMPLER LATE: {info['ticks_skipped']:,} of {info['ticks_due']:,} ticks" in report


@pytest.mark.recorder
def test_a_sampler_on_time_reports_nothing_skipped(tmp_path: Path) -> None:
    path = tmp_path / "calm.xtrace"
    with exectracer.trace(path, sample_interval=0.02):
        time.sleep(0.1)
    summary = exectracer.load(path, strict=True).analysis.summary()["trace"]
    assert summary["sampler"]["interval_ns"] == 20_000_000
    with exectracer.trace(tmp_path / "off.xtrace", sample_interval=0):
        pass
    assert exectracer.load(tmp_path / "off.xtrace").analysis.summary()["trace"]["sampler"] is None
