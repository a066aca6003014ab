"""Handing the GIL to the tracer's own threads without a fight.

A thread that wants the GIL while another thread runs Python is woken each
time the holder releases it, and loses if the holder takes it back at once.
A busy event loop releases the GIL in every ``select(0)`` and socket call
and takes it back within microseconds, so a waiting thread can lose for
hundreds of milliseconds, and every lost race costs the loop a futex
wake-up. Measured here on a queue ping-pong: a thread waking every 20 ms
slowed the loop by 30 %, and the sampler got 21 of its 113 ticks.

So the tracer's threads say when they will next want the GIL (``plan``),
and a busy loop that reaches that time blocks briefly (``give_way``) until
the thread has done its work (``finished``) or ``MAX_WAIT_S`` has passed:
one clean hand-over instead of a long fight. The collector also wants the
GIL as soon as the event store's count wakes it: the C store then sets
``due`` to 0 itself (``Rows.set_handoff``), and the collector plans anew once
it has the GIL.

Even a clean hand-over costs the loop two thread wake-ups (about 200 µs
here), a hundred times a second for the sampler. So once a busy loop has
waited for a sample, the sampler hands its ticks to the loop
(``inline_sampler``): the loop takes each due sample itself, holding the
GIL it already has, and the sampler's thread sleeps until the loop goes
idle (``going_idle``) or stops taking them.
"""

from __future__ import annotations

import _thread
import time
from typing import Protocol

from .gil import gil_enabled

NEVER = 1 << 62  # a due time that never comes
MAX_WAIT_S = 0.002  # longest a busy thread blocks for the tracer's threads
BACKOFF_NS = (
    10_000_000  # after a wait that timed out, don't give way again this soon (doubling while they keep failing)
)
MAX_BACKOFF_NS = 1_000_000_000
SAMPLER, COLLECTOR, WRITER = range(3)  # the tracer's threads, one slot each


class InlineSampler(Protocol):
    """What a busy loop calls to take the sampler's ticks itself."""

    def sample_inline(self) -> None:
        """Take the due sample on the calling thread (planning the next one)."""

    def wake(self) -> None:
        """Take the ticks back: the loop will not be there to take them."""


class GilHandoff:
    """When the tracer's threads next need the GIL (``due``, perf_counter ns), and the hand-over."""

    def __init__(self) -> None:
        self.due = NEVER
        self._dues = [NEVER, NEVER, NEVER]
        self._not_before = 0  # after a wait that timed out: no giving way before this
        self._backoff = BACKOFF_NS
        self._waiting = 0
        self._released = _thread.allocate_lock()
        self._released.acquire()  # held: released by ``finished`` for a thread in ``give_way``
        self._enabled = gil_enabled()
        self.inline_sampler: InlineSampler | None = None  # set while a busy loop takes the samples

    def plan(self, slot: int, due_ns: int) -> None:
        """Tracer thread ``slot`` will want the GIL at ``due_ns`` (NEVER: not before it says so)."""
        if self._enabled:
            self._dues[slot] = due_ns
            self._update_due()

    def finished(self, slot: int, next_due: int = NEVER) -> bool:
        """Tracer thread ``slot`` is done with the GIL for now: let a waiting thread go on.

        ``next_due``: when it will want the GIL again. Returns whether a busy
        thread was waiting for it.
        """
        self.plan(slot, next_due)
        waiting = self._waiting > 0
        if waiting and self._released.locked():
            try:
                self._released.release()
            except RuntimeError:  # released meanwhile by another slot
                pass
        return waiting

    def give_way(self) -> None:
        """Called by a busy thread once ``due`` has passed: block until a tracer thread is done, briefly.

        A due sample is taken on the calling thread if the sampler handed its
        ticks over; then it blocks only if another tracer thread is due too.
        """
        sampler = self.inline_sampler
        if sampler is not None and self._dues[SAMPLER] <= time.perf_counter_ns():
            sampler.sample_inline()
            if self.due > time.perf_counter_ns():
                return
        self._waiting += 1
        try:
            came = self._released.acquire(True, MAX_WAIT_S)
        finally:
            self._waiting -= 1
        if came:
            self._backoff = BACKOFF_NS
            return
        # the thread was late or is still at work: don't stall the program for the tracer again soon
        self._not_before = time.perf_counter_ns() + self._backoff
        self._backoff = min(2 * self._backoff, MAX_BACKOFF_NS)
        self._update_due()

    def going_idle(self, until_ns: float) -> None:
        """A busy loop is about to block until ``until_ns`` (at most): the sampler's thread takes its ticks back
        if one falls due before."""
        sampler = self.inline_sampler
        if sampler is not None and until_ns >= self._dues[SAMPLER]:
            self.inline_sampler = None
            sampler.wake()

    def _update_due(self) -> None:
        # kept as one attribute: the busy loop reads it at every select(0)
        self.due = max(min(self._dues), self._not_before)
