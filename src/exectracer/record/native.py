"""The optional C versions of the hottest hooks, and the switch that turns them off.

``_speedups`` (built from the C files in ``csrc/`` when the package is
installed with a C compiler; ``csrc/speedups.h`` says which holds what)
holds the task-step, callback and ``call_soon`` hooks, the thread-wait
wrapper, and the columns they store events in. The Python
hooks in ``asyncio_hooks`` and ``blocking`` do the same work and run
wherever it is missing, or when the environment sets
``EXECTRACER_PURE_PYTHON`` to a non-empty value when the recorder is first
imported (the first ``exectracer.start``, ``trace``, ``region``, ...).
"""

from __future__ import annotations

import os
from types import ModuleType

from .registry import HookState

PURE_PYTHON_VARIABLE = "EXECTRACER_PURE_PYTHON"


def _load() -> ModuleType | None:
    if os.environ.get(PURE_PYTHON_VARIABLE):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


# read once, as the recorder is first imported: the classes made then (regions,
# locks) and every recording's hooks agree on which hooks run
_SPEEDUPS = _load()


def speedups() -> ModuleType | None:
    """The ``_speedups`` module, or None where it is not built or was switched off when the recorder was imported."""
    return _SPEEDUPS


def hook_state(module: ModuleType) -> HookState:
    """A HookState whose ``cur`` is the C hooks' thread-local (they set it around each step with no object made)."""

    class NativeHookState(HookState):
        cur = property(
            module.current_waker, module.set_current_waker, doc="the waker code of the running step (C thread-local)"
        )

    return NativeHookState()
