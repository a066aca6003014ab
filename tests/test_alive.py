"""What a flight recorder restates about dropped chunks: taking in a chunk at once equals taking in
its events one by one."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exectracer.format.events import Kind, pack
from exectracer.live.alive import _OF_TASK_TABLE, _WANTED, LiveDescriptions, _kept_positions
from exectracer.record.native import speedups

pytestmark = pytest.mark.recorder

KINDS = [Kind(k) for k in range(256) if _WANTED[k]] + [Kind.TASK_STEP, Kind.TASK_READY]  # and two it does not read
event = st.tuples(
    st.sampled_from(KINDS), st.integers(0, 50), st.integers(1, 12)
)  # kind, arg, g: few goroutines, so they meet


def one_by_one(chunks: list[list[tuple[Kind, int, int]]]) -> LiveDescriptions:
    alive = LiveDescriptions()
    for chunk in chunks:
        for kind, arg, g in chunk:
            if _WANTED[kind]:
                alive._absorb_one(int(kind), arg, g)
    return alive


def at_once(chunks: list[list[tuple[Kind, int, int]]]) -> LiveDescriptions:
    alive = LiveDescriptions()
    for chunk in chunks:
        alive.absorb(array("q", [pack(kind, arg) for kind, arg, _ in chunk]), array("q", [g for _, _, g in chunk]))
    return alive


@given(st.lists(st.lists(event, max_size=60), max_size=4))
@settings(max_examples=300, deadline=None)
def test_a_chunk_at_once_is_its_events_one_by_one(chunks: list[list[tuple[Kind, int, int]]]) -> None:
    assert at_once(chunks).rows(7).tolist() == one_by_one(chunks).rows(7).tolist()


def test_a_task_that_ends_in_the_chunk_leaves_nothing() -> None:
    chunk = [
        (Kind.TASK_CREATE, 0, 5),
        (Kind.TASK_NAME, 3, 5),
        (Kind.REGION_BEGIN, 4, 5),
        (Kind.TASK_DONE, 0, 5),
        (Kind.TASK_CREATE, 0, 6),
        (Kind.REGION_BEGIN, 4, 6),
    ]
    alive = at_once([chunk])
    assert alive.rows(7).tolist() == [pack(Kind.TASK_CREATE, 0), 7, 6, pack(Kind.REGION_BEGIN, 4), 7, 6]


@pytest.mark.skipif(speedups() is None, reason="the C extension is not built or is switched off")
@given(
    st.lists(st.tuples(st.sampled_from(KINDS), st.integers(-(1 << 40), 1 << 40), st.integers(0, 6)), max_size=200),
    st.sets(st.integers(0, 6)),
)
@settings(max_examples=300, deadline=None)
def test_the_c_positions_are_the_python_ones(chunk: list[tuple[Kind, int, int]], live: set[int]) -> None:
    codes, gs = array("q", [pack(kind, arg) for kind, arg, _ in chunk]), array("q", [g for _, _, g in chunk])
    got = speedups().kept_positions(codes, gs, _WANTED, _OF_TASK_TABLE, live)
    assert got == _kept_positions(codes, gs, live)
