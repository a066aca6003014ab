"""The optional C versions of the hottest hooks, and the switch that turns them off.

``_speedups`` (built from ``_speedups.c`` when the package is installed
with a C compiler) holds the task-step, callback and ``call_soon`` hooks,
the thread-wait wrapper, and the columns they store events in. The Python
hooks in ``asyncio_hooks`` and ``blocking`` do the same work and run
wherever it is missing, or when the environment sets
``EXECTRACER_PURE_PYTHON`` to a non-empty value.
"""

from __future__ import annotations

import os
from types import ModuleType

from .registry import HookState

PURE_PYTHON_VARIABLE = "EXECTRACER_PURE_PYTHON"


def speedups() -> ModuleType | None:
    """The ``_speedups`` module, or None where it is not built or is switched off."""
    if os.environ.get(PURE_PYTHON_VARIABLE):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


def hook_state(module: ModuleType) -> HookState:
    """A HookState whose ``cur`` is the C hooks' thread-local (they set it around each step with no object made)."""

    class NativeHookState(HookState):
        cur = property(module.current_waker, module.set_current_waker, doc="the waker code of the running step (C thread-local)")

    return NativeHookState()
