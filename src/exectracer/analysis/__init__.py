"""Analyses of a loaded trace: goroutine states, summary, profiles, GC and MMU.

::

    trace = exectracer.load("out.xtrace")
    a = trace.analysis
    a.summary()                  # dict, as ``exectracer summary --json`` prints
    a.profile("net")             # Profile: values per stack, .top(), pprof export
    a.states                     # StateIntervals: every goroutine's states as arrays
    a.mmu([5_000_000])           # MMU points for any window lengths (ns)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from ..trace_data import TraceData
from .gc import Collections
from .goroutines import Goroutine, Goroutines
from .mmu import DEFAULT_WINDOWS_NS, MMUPoint, Window
from .profiles import PROFILE_TYPES, Profile, Selection, TopEntry, profile
from .states import State, StateIntervals
from .summary import process_mmu, summarize, summary_json

__all__ = [
    "PROFILE_TYPES",
    "Analysis",
    "Collections",
    "Goroutine",
    "Goroutines",
    "MMUPoint",
    "Profile",
    "Selection",
    "State",
    "StateIntervals",
    "TopEntry",
    "Window",
]


class Analysis:
    """The analyses of one trace; each part is computed on first use and kept."""

    def __init__(self, trace: TraceData) -> None:
        self.trace = trace

    @functools.cached_property
    def goroutines(self) -> Goroutines:
        """Every thread and task, with dense indices."""
        return Goroutines(self.trace)

    @functools.cached_property
    def states(self) -> StateIntervals:
        """Every goroutine's state intervals."""
        return StateIntervals(self.trace, self.goroutines)

    @functools.cached_property
    def collections(self) -> Collections:
        """The garbage collections."""
        return Collections(self.trace)

    def summary(self, windows_ns: Iterable[int] = DEFAULT_WINDOWS_NS) -> dict[str, Any]:
        """The summary document (see docs/analysis.md)."""
        return summarize(self.trace, self.states, self.collections, tuple(windows_ns))

    def summary_json(self, windows_ns: Iterable[int] = DEFAULT_WINDOWS_NS) -> Iterator[str]:
        """The summary document as compact JSON (``json.dumps(summary())``), in pieces: its goroutine rows are
        made and encoded a batch at a time, never all held."""
        return summary_json(self.trace, self.states, self.collections, tuple(windows_ns))

    def profile(
        self,
        type: str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        group: str | None = None,
        region: str | None = None,
        pid: int | None = None,
    ) -> Profile:
        """A profile (``net``, ``sync``, ``syscall``, ``sleep``, ``other``, ``sched``, ``gil`` or ``cpu``),
        optionally limited to a span (ns from the trace's start), a group (start function), a user region
        or a process (``pid``)."""
        return profile(self.trace, self.states, type, Selection(start_ns, end_ns, group, region, pid))

    def mmu(self, windows_ns: Iterable[int] = DEFAULT_WINDOWS_NS, *, pid: int | None = None) -> list[MMUPoint]:
        """The minimum mutator utilization for each window length (ns), with the worst windows: of process
        ``pid``, or, in a trace of several processes, the worst process's at each length."""
        if pid is None:
            return process_mmu(self.trace, self.collections, tuple(windows_ns))
        procs = self.trace.procs_of_pid(pid)
        if not procs:
            raise ValueError(f"no process {pid} in the trace")
        return process_mmu(self.trace, self.collections, tuple(windows_ns), procs[0])
