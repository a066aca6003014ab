"""The event store the hooks fill and the writer drains: the C Rows and the Python ListStore alike."""

from __future__ import annotations

import io
import threading
import time
import zlib

import pytest

import exectracer
from exectracer.format.chunks import ChunkKind, split_chunks
from exectracer.format.encoder import decode_event_rows
from exectracer.format.events import MASK64, Kind
from exectracer.record import native, recorder
from exectracer.record.store import ListStore

from support.waiting import DEADLINE, wait_for, wait_until_blocked

pytestmark = pytest.mark.recorder

speedups = native.speedups()
needs_rows = pytest.mark.skipif(speedups is None, reason="the C hooks are not built or are switched off")
STORES = [pytest.param(ListStore, id="list")]
if speedups is not None:
    STORES.append(pytest.param(speedups.Rows, id="rows"))


def columns(store) -> list[tuple[int, int, int]]:
    """The events taken from ``store``, as (code, ts, g) rows of unsigned ints."""
    payload, n, lost = store.take()
    assert lost == 0 and len(store) == 0
    codes, ts, gs = decode_event_rows(payload)
    assert len(codes) == n
    return [(c & MASK64, t & MASK64, g & MASK64) for c, t, g in zip(codes, ts, gs, strict=True)]


@pytest.mark.parametrize("make", STORES)
def test_events_come_out_in_the_order_they_went_in(make) -> None:
    store = make()
    store.extend((1, 10, 100))
    store.extend([2, 20, 200, 3, 30, 300])
    assert columns(store) == [(1, 10, 100), (2, 20, 200), (3, 30, 300)]
    assert columns(store) == []  # taken once


@pytest.mark.parametrize("make", STORES)
def test_a_negative_value_keeps_its_64_bits(make) -> None:
    store = make()
    store.extend((int(Kind.LOOP_STOP), -12345, 1 << 63))
    assert columns(store) == [(int(Kind.LOOP_STOP), -12345 & MASK64, 1 << 63)]


@needs_rows
def test_events_stored_while_rows_hand_over_a_payload_are_kept() -> None:
    """``take`` copies the payload without the GIL while other threads go on storing."""
    rows = speedups.Rows()
    stop = threading.Event()
    stored = [0]

    def store() -> None:
        while not stop.is_set():
            rows.extend([int(Kind.LOG_CATEGORY), stored[0], 7] * 1000)
            stored[0] += 1

    thread = threading.Thread(target=store)
    thread.start()
    taken = []
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            rows.extend([int(Kind.LOG_CATEGORY), -1, 7] * 50_000)  # a large payload: a long copy
            taken.append(rows.take())
    finally:
        stop.set()
        thread.join()
    taken.append(rows.take())
    gs = [g for payload, n, lost in taken for g in decode_event_rows(payload)[2]]
    assert all(lost == 0 for _, _, lost in taken) and set(gs) == {7}
    assert sum(n for _, n, _ in taken) == stored[0] * 1000 + (len(taken) - 1) * 50_000


@needs_rows
def test_rows_refuse_what_is_not_whole_events() -> None:
    rows = speedups.Rows()
    with pytest.raises(ValueError, match="threes"):
        rows.extend((1, 2))
    with pytest.raises(TypeError):
        rows.extend((1, 2, "3"))
    with pytest.raises(TypeError):
        rows.extend(5)
    assert len(rows) == 0  # nothing half-stored
    with pytest.raises(TypeError):
        speedups.Rows(1)


@needs_rows
def test_rows_wait_ends_when_the_count_is_stored() -> None:
    rows = speedups.Rows()
    woke: list[float] = []

    def waiter() -> None:
        woke.append(rows.wait(3, DEADLINE))  # False: it timed out
        woke.append(time.perf_counter())

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until_blocked(thread, "waiter")
    rows.extend((1, 1, 1, 2, 2, 2))
    time.sleep(0.05)
    assert not woke, "two of three: still waiting"
    stored = time.perf_counter()
    rows.extend((3, 3, 3))
    thread.join(DEADLINE)
    assert woke[0] is True and woke[1] >= stored, "woken by the third, not by its timeout"
    assert len(rows) == 3


@needs_rows
def test_the_count_that_wakes_the_waiter_tells_the_handoff_until_it_takes() -> None:
    class Handoff:
        due = 99

    handoff = Handoff()
    rows = speedups.Rows()
    rows.set_handoff(handoff)
    thread = threading.Thread(target=rows.wait, args=(2, DEADLINE))
    thread.start()
    wait_until_blocked(thread, "run")  # asleep in wait (called by Thread.run)
    rows.extend((1, 1, 1))
    assert handoff.due == 99, "one of two: nobody wakes yet"
    rows.extend((2, 2, 2))
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert handoff.due == 0, "the count woke the waiter: it wants the GIL now"
    handoff.due = 99
    rows.extend((3, 3, 3))
    assert handoff.due == 99
    rows.extend((4, 4, 4))
    assert handoff.due == 0, "another count's worth and the events not taken: told again"
    handoff.due = 99
    rows.take()
    rows.extend((5, 5, 5, 6, 6, 6, 7, 7, 7))
    assert handoff.due == 99, "taken, and nobody waits: nothing to tell"
    rows.set_handoff(None)


@needs_rows
def test_rows_wait_ends_on_wake_or_timeout() -> None:
    rows = speedups.Rows()
    t0 = time.perf_counter()
    assert rows.wait(10, 0.05) is False
    assert time.perf_counter() - t0 >= 0.04
    rows.wake()  # nobody waits: the next wait returns at once, True (a timeout would be False, after DEADLINE s)
    t0 = time.perf_counter()
    assert rows.wait(10, DEADLINE) is True
    assert time.perf_counter() - t0 < DEADLINE
    threading.Timer(0.05, rows.wake).start()
    t0 = time.perf_counter()
    assert rows.wait(10, DEADLINE) is True  # woken by the timer
    assert 0.04 <= time.perf_counter() - t0 < DEADLINE
    assert rows.wait(10, 0.01) is False  # the wake was used up


def test_a_full_chunk_is_written_without_waiting_for_the_flush_interval() -> None:
    """The collector sleeps until a chunk's worth of events is there, not until ``flush_interval``."""
    buf = io.BytesIO()
    never = 2 * DEADLINE  # seconds: past the test's deadline
    options = dict(flush_interval=never, heap_interval=never, chunk_events=1000, sample_interval=0, compression=0)
    with exectracer.trace(buf, **options):
        rec = recorder.current()
        for i in range(1500):
            rec.events.extend((int(Kind.LOG_CATEGORY), i, 0))
        # long before the flush interval (the deadline is well within it); the sleeps' own events are no matter
        wait_for(
            lambda: any(kind == ChunkKind.EVENTS for kind, _ in split_chunks(buf.getvalue())),
            "a chunk, with a chunk's worth of events stored and a flush interval of 120 s",
            timeout=DEADLINE,
        )


def test_the_collector_wakes_before_a_full_chunk_so_that_late_events_fit_in_it() -> None:
    """At 7/8 of a chunk's worth: the events stored while the collector wakes need no chunk of their own."""
    buf = io.BytesIO()
    never = 2 * DEADLINE  # seconds: past the test's deadline
    options = dict(flush_interval=never, heap_interval=never, chunk_events=1000, sample_interval=0, compression=0)
    with exectracer.trace(buf, **options):
        rec = recorder.current()
        rec.events.extend([v for i in range(900) for v in (int(Kind.LOG_CATEGORY), i, 0)])
        # no sleep between looks: a traced sleep is a wait, whose events would fill the chunk
        wait_for(
            lambda: any(kind == ChunkKind.EVENTS for kind, _ in split_chunks(buf.getvalue())),
            "a chunk, with 900 events of a 1000-event chunk stored and a flush interval of 120 s",
            timeout=DEADLINE,
            sleep=lambda _: None,
        )
        sizes = [
            len(decode_event_rows(bytes(chunk[24:]))[0])
            for kind, chunk in split_chunks(buf.getvalue())
            if kind == ChunkKind.EVENTS
        ]
    assert sizes[0] >= 900, "the 900 events came out in one chunk"


def test_a_burst_of_several_chunks_comes_out_whole_and_in_order(tmp_path) -> None:
    path = tmp_path / "burst.xtrace"
    with exectracer.trace(path, flush_interval=60, heap_interval=60, chunk_events=1000, sample_interval=0):
        rec = recorder.current()
        rec.events.extend(
            [v for i in range(3500) for v in (int(Kind.LOG_CATEGORY), i, 0)]
        )  # one store: one take after it
    data = path.read_bytes()
    sizes = [
        len(decode_event_rows(zlib.decompress(bytes(chunk[24:])))[0])
        for kind, chunk in split_chunks(data)
        if kind == ChunkKind.EVENTS
    ]
    assert max(sizes) <= 1000 and sum(sizes) >= 3500
    trace = exectracer.load(path)
    ts = trace.events.ts[trace.events.kind == Kind.LOG_CATEGORY]
    assert list(ts) == list(range(3500))


def test_each_take_says_since_when_its_events_were_in_memory_and_a_held_up_writer_is_reported(tmp_path) -> None:
    """EVENTS_TAKEN follows each take: every event taken was recorded after the take before, so a writer kept
    from the GIL for longer than its interval shows as a long wait, and the summary's report says so."""
    from exectracer.report import render

    path = tmp_path / "held.xtrace"
    held = 0.0
    with exectracer.trace(path, flush_interval=0.05, sample_interval=0):
        time.sleep(0.2)  # a few takes on time
        n = 1_000_000
        while held < 0.3:  # C code holding the GIL throughout, long enough: no take can happen meanwhile
            start = time.perf_counter()
            sum(range(n))
            held = max(held, time.perf_counter() - start)
            n *= 2
        time.sleep(0.2)
    trace = exectracer.load(path, strict=True)
    takes = trace.takes_ns
    assert len(takes) >= 3 and trace.flush_interval_ns == 50_000_000
    assert takes.max() >= held * 1e9  # the take after the longest hold came at least that long after the one before
    assert (trace.events.g[trace.events.kind == Kind.EVENTS_TAKEN] == 0).all()
    info = trace.analysis.summary()["trace"]["writer"]
    assert info == {"flush_interval_ns": 50_000_000, "takes": len(takes), "longest_in_memory_ns": int(takes.max())}
    report = render(trace.analysis.summary(), "held.xtrace", width=0)
    assert "WRITER LATE: events waited up to" in report
