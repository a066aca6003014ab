"""Threads waiting on locks, conditions, events, queues and joins, with real threads."""

from __future__ import annotations

import gc
import queue
import sys
import threading
import time
import weakref

import pytest

import exectracer
from exectracer.format.events import CATEGORY_SHIFT, Category, Kind
from exectracer.record.sampler import Sampler

from support.waiting import DEADLINE, wait_for, wait_until_blocked

pytestmark = pytest.mark.recorder


class MetricsClient:
    """Serializes sends behind one lock, like a naive metrics client."""

    def __init__(self):
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, value):
        with self._lock:
            time.sleep(0.002)  # the "network write", done while holding the lock
            self.sent += value


def test_metrics_client_lock_waits_exceed_wall_time(record):
    client_box = {}
    duration = {}

    def run():
        client = client_box["client"] = MetricsClient()

        def worker():
            deadline = time.perf_counter() + 0.6
            while time.perf_counter() < deadline:
                sum(range(200))  # a little CPU work between sends
                client.send(1)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        duration["wall"] = time.perf_counter() - t0

    rec = record(run)
    sync = rec.thread_waits(Category.SYNC)
    workers = {t.id for t in rec.trace.threads if t.name.startswith("worker-")}
    lock_waits = [w for w in sync if w[0] in workers and w[3][0].function.endswith("MetricsClient.send")]
    total = sum(end - start for _, start, end, _, _ in lock_waits) / 1e9
    assert total > 3 * duration["wall"], (total, duration)
    send_line = MetricsClient.send.__code__.co_firstlineno + 1
    assert all(stack[0].line == send_line for _, _, _, stack, _ in lock_waits)
    wakers = [waker for g, _, _, _, waker in lock_waits]
    assert sum(1 for g, *_, waker in lock_waits if waker in workers and waker != g) > 0.9 * len(wakers)


def test_event_queue_and_join_waits_name_their_wakers(record):
    names = {}
    woke = {}  # when each thread woke the main thread
    main = threading.current_thread()

    def run():
        event = threading.Event()
        q = queue.Queue()

        def setter():
            wait_until_blocked(main, "wait")
            time.sleep(0.1)
            woke["setter"] = time.perf_counter_ns()
            event.set()

        def producer():
            wait_until_blocked(main, "get")
            time.sleep(0.1)
            woke["producer"] = time.perf_counter_ns()
            q.put("item")

        def sleeper():
            wait_until_blocked(main, "join")
            time.sleep(0.05)
            woke["sleeper"] = time.perf_counter_ns()

        for target in (setter, producer, sleeper):
            names[target.__name__] = threading.Thread(target=target, name=target.__name__)
        names["setter"].start()
        assert event.wait(DEADLINE)
        names["producer"].start()
        assert q.get(timeout=DEADLINE) == "item"
        names["sleeper"].start()
        woke["join_line"] = sys._getframe().f_lineno + 1
        names["sleeper"].join()
        names["setter"].join()
        names["producer"].join()

    rec = record(run)
    g_of = {t.name: t.id for t in rec.trace.threads}
    main = g_of["MainThread"]
    main_waits = [w for w in rec.thread_waits(Category.SYNC) if w[0] == main]

    def find(function_suffix):
        found = [w for w in main_waits if any(f.function.endswith(function_suffix) for f in w[3])]
        assert found, (function_suffix, [[f.function for f in w[3]] for w in main_waits])
        return max(found, key=lambda w: w[2] - w[1])

    # each wait began before its waker's 0.1 s pause (the waker saw it blocked first) and ended after the wake-up
    event_wait = find("Event.wait")
    assert event_wait[1] <= woke["setter"] - 0.1e9 and woke["setter"] <= event_wait[2]
    assert event_wait[4] == g_of["setter"]
    get_wait = find("Queue.get")
    assert get_wait[1] <= woke["producer"] - 0.1e9 and woke["producer"] <= get_wait[2]
    assert get_wait[4] == g_of["producer"]
    # a wait's innermost frame is the one that made the blocking call: here, join's caller
    (join_wait,) = [
        w for w in main_waits if w[3][0].function.endswith(".run") and w[2] - w[1] > 0.03e9 and w[4] == g_of["sleeper"]
    ]
    assert join_wait[1] <= woke["sleeper"] - 0.05e9 and woke["sleeper"] <= join_wait[2]
    assert join_wait[3][0].line == woke["join_line"]


def test_conditions_notifiers_are_forgotten_with_them(tmp_path):
    """Bounded memory: the table of each condition's last notifier drops a condition once it is gone."""
    with exectracer.trace(tmp_path / "t.xtrace"):
        notify = threading.Condition.notify  # the recording's wrapper: its table is in its closure
        notifiers = dict(zip(notify.__code__.co_freevars, (c.cell_contents for c in notify.__closure__), strict=True))[
            "notifiers"
        ]
        made = []
        for _ in range(20):
            cond = threading.Condition()
            made.append(weakref.ref(cond))
            waiter = threading.Thread(target=lambda c=cond: c.acquire() and c.wait(5) and c.release())
            waiter.start()
            while not cond._waiters:
                time.sleep(0.001)
            with cond:
                cond.notify()
            waiter.join()
            assert weakref.ref(cond) in notifiers
            del cond, waiter
            gc.collect()
        # other tests' threads may still wait on conditions of their own, which stay
        assert all(ref() is None for ref in made) and all(key() is not None for key in notifiers)


def test_free_locks_record_nothing_and_locks_work_after_stop(tmp_path):
    path = tmp_path / "t.xtrace"
    with exectracer.trace(path):
        lock, rlock = threading.Lock(), threading.RLock()
        for _ in range(1000):
            with lock:
                pass
            with rlock:
                with rlock:
                    pass
        cond = threading.Condition(rlock)
        with cond:
            assert not cond.wait(0.001)
    trace = exectracer.load(path)
    blocks = trace.events.arg[trace.events.kind == Kind.THREAD_BLOCK]
    functions = [trace.stacks[int(a) >> CATEGORY_SHIFT][0].function for a in blocks]
    # only the 1 ms timed-out Condition.wait, at the line that called it
    assert functions == ["test_thread_waits_sync.test_free_locks_record_nothing_and_locks_work_after_stop"]
    # the objects made while tracing still work once it stopped
    with lock:
        assert lock.locked()
    assert not lock.locked()
    assert lock.acquire(False) and not lock.acquire(False)
    lock.release()
    with pytest.raises(RuntimeError):
        rlock.release()
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    assert repr(lock) == f"<unlocked _thread.lock object at {id(lock):#x}>"  # the real lock's, its own address
    assert repr(rlock) == f"<unlocked _thread.RLock object owner=0 count=0 at {id(rlock):#x}>"
    assert weakref.ref(lock)() is lock
    # arguments are the real lock's, refused the same way even when the lock is free
    with pytest.raises(TypeError):
        lock.acquire(wait=True)
    with pytest.raises(TypeError):
        lock.acquire(True, 1, 2)
    assert not lock.locked()
    assert lock.acquire(blocking=True, timeout=1)
    assert not lock.acquire(blocking=False) and not lock.acquire(timeout=0.01) and not lock.acquire(True, 0.01)
    with pytest.raises(OverflowError):  # the real lock's error, raised while the lock is held, reaches the caller
        lock.acquire(True, 1e300)
    lock.release()


def test_lock_factories_are_restored(tmp_path):
    before = threading.Lock, threading.RLock, threading.Condition.wait, threading.Thread.join
    with exectracer.trace(tmp_path / "t.xtrace"):
        assert threading.Lock is not before[0]
    assert (threading.Lock, threading.RLock, threading.Condition.wait, threading.Thread.join) == before


def test_lock_made_before_start_is_seen_by_sampling(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from support.recorded import Recorded

    early = threading.Lock()  # a real _thread.lock: no hook sees its waits
    held = threading.Event()
    taken = []  # when each sample began
    take = Sampler._sample

    def logged(self: Sampler, *args: object) -> None:
        taken.append(time.perf_counter_ns())
        take(self, *args)

    monkeypatch.setattr(Sampler, "_sample", logged)

    def holder():
        with early:
            held.set()
            wait_until_blocked(threads[1], "blocked")
            since = time.perf_counter_ns()
            wait_for(lambda: sum(began > since for began in taken) >= 15, "15 samples of the blocked thread")

    def blocked():
        held.wait()
        with early:
            pass

    path = tmp_path / "t.xtrace"
    with exectracer.trace(path, sample_interval=0.005):
        threads = [threading.Thread(target=holder, name="holder"), threading.Thread(target=blocked, name="blocked")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    rec = Recorded(path)
    g = next(t.id for t in rec.trace.threads if t.name == "blocked")
    samples = rec.of(Kind.THREAD_SAMPLE, g)
    line = blocked.__code__.co_firstlineno + 2
    waiting = [
        i
        for i in samples
        if int(rec.arg[i]) & 15 == 2  # SLEEPING
        and rec.trace.stacks[int(rec.arg[i]) >> CATEGORY_SHIFT][0].line == line
    ]
    assert len(waiting) >= 10  # held for 15 samples once it blocked: seen even though no hook could
    assert not any(
        rec.trace.stacks[int(rec.arg[i]) >> CATEGORY_SHIFT][0].line == line for i in rec.of(Kind.THREAD_BLOCK, g)
    )
