"""The talk's three situations on asyncio's loop and on uvloop: the analysis gives the same figures on both.

A proxy's handlers left blocked on a slow backend after their clients gave
up, threads started from the loop waiting on a shared lock, and busy tasks
queued during long collections (``programs/talk.py``), each recorded once on
each loop. Every figure is normalised by what the same run measured
(``support/talk_figures.py``), so that it holds on a loaded machine: it must
be within ``TOLERANCE`` of the program's own ground truth on each loop, and
uvloop's within ``TOLERANCE`` of asyncio's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

import exectracer

from programs import talk
from support import talk_figures

pytest.importorskip("uvloop")

pytestmark = pytest.mark.recorder

TOLERANCE = 0.10

SITUATIONS = {
    "proxy": (talk.proxy_scenario, talk_figures.proxy),
    "lock": (talk.lock_scenario, talk_figures.lock),
    "collections": (talk.gc_scenario, talk_figures.collections),
}


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], talk_figures.Figures]:
    """The figures of one situation recorded on one loop (each recorded once for the module)."""
    made: dict[tuple[str, str], talk_figures.Figures] = {}

    def get(situation: str, loop: str) -> talk_figures.Figures:
        if (situation, loop) not in made:
            scenario, measure = SITUATIONS[situation]
            measured = talk.Measured()
            path = tmp_path_factory.mktemp(f"{situation}-{loop}") / "trace.xtrace"
            with exectracer.trace(path):
                talk.run(functools.partial(scenario, measured), loop)
            made[situation, loop] = measure(exectracer.load(path, strict=True), measured)
        return made[situation, loop]

    return get


def close(figure: float | str | None, expected: float | str | None) -> bool:
    """Whether ``figure`` is ``expected`` (a name) or within ``TOLERANCE`` of it (a ratio)."""
    if isinstance(figure, float) and isinstance(expected, float):
        return abs(figure / expected - 1) <= TOLERANCE
    return figure == expected


@pytest.mark.parametrize("loop", talk.LOOPS)
@pytest.mark.parametrize("situation", SITUATIONS)
def test_figures_agree_with_what_the_program_measured(figures, situation: str, loop: str) -> None:
    found = figures(situation, loop)
    assert all(close(f.value, f.truth) for f in found.values() if f.truth is not None), found


@pytest.mark.parametrize("loop", talk.LOOPS)
def test_lock_waits_exceed_the_wall_time(figures, loop: str) -> None:
    """The talk's point: the threads waited for the lock in turn, for longer in all than the program ran."""
    figure = figures("lock", loop)["lock_waits_vs_wall"].value
    assert isinstance(figure, float) and figure > 1, figure


@pytest.mark.parametrize("loop", talk.LOOPS)
def test_ready_tasks_wait_out_whole_collections(figures, loop: str) -> None:
    """A busy task, ready when a full collection starts, waits until it ends (and longer if the machine is busy)."""
    figure = figures("collections", loop)["max_latency_vs_longest_collection"].value
    assert isinstance(figure, float) and figure >= 1 - TOLERANCE, figure


@pytest.mark.parametrize("situation", SITUATIONS)
def test_uvloop_gives_the_figures_asyncio_gives(figures, situation: str) -> None:
    """Each figure normalised by its own run's measure (not the lock waits against the wall time, nor the longest
    latency against the longest collection: how much the threads contend, and how long the machine, busy with
    other work, left a ready task waiting besides the collection, depend on the run; they were checked above)."""
    on_asyncio, on_uvloop = figures(situation, "asyncio"), figures(situation, "uvloop")
    differ = {
        name: (figure.value, on_uvloop[name].value)
        for name, figure in on_asyncio.items()
        if figure.across_runs and not close(on_uvloop[name].value, figure.value)
    }
    assert not differ, differ
