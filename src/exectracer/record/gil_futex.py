"""Where a thread waiting for the GIL sleeps: a futex in the interpreter's own static state.

CPython's GIL (its mutex and condition variables, and those of the forced
switch) lives inside ``_PyRuntime``: in ``_PyRuntime.ceval`` up to 3.11, in
the main interpreter's state, which ``_PyRuntime`` holds, from 3.12. A
thread waiting for the GIL sleeps in ``futex`` on one of those words, so
``/proc/self/task/<tid>/syscall`` shows an address from ``_PyRuntime`` to
the end of the memory mapping that holds it (the interpreter's static
data). A thread blocked in a call of the program's waits on its own lock,
semaphore or file: never there. The sampler tells the two apart by that
address (ThreadState.GIL).
"""

from __future__ import annotations

import sys

from .hook_errors import caught

MAPS = "/proc/self/maps"
_UNKNOWN = (-1, -1)  # not looked for yet
_found: tuple[int, int] | None = _UNKNOWN


def gil_futexes() -> tuple[int, int] | None:
    """``[start, end)`` of the addresses a thread waiting for the GIL sleeps on; None where unknown (no Linux,
    no ``_PyRuntime`` among the process's symbols, no ctypes).

    Looked for once: the interpreter's static data does not move, and a forked
    child has its parent's addresses (each child's recording would otherwise
    read ``/proc/self/maps`` again).
    """
    global _found
    if _found is _UNKNOWN:
        _found = _look_up()
    return _found


def _look_up() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        start = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
        with open(MAPS, "rb") as maps:
            for line in maps:
                lo, _, hi = line.split(b" ", 1)[0].partition(b"-")
                if int(lo, 16) <= start < int(hi, 16):
                    return start, int(hi, 16)
    except (ImportError, ValueError, AttributeError):
        return None  # no ctypes, or no such symbol: the GIL's waits are not told apart
    except Exception:
        caught("sampler.gil_futexes")
    return None


def first_argument(line: bytes) -> int:
    """The first argument of the syscall a ``/proc/.../syscall`` line shows (``nr arg1 ...``, in hex); -1 if none."""
    parts = line.split(b" ", 2)
    return int(parts[1], 16) if len(parts) > 2 and parts[1].startswith(b"0x") else -1
