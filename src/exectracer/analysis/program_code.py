"""Which frames of a trace's stacks are the traced program's own code, and the nearest such caller of a wait.

A frame is *library code* when its file is

* frozen (``<frozen runpy>``): the standard library's start-up code;
* inside a ``site-packages`` or ``dist-packages`` directory: an installed package;
* inside a standard library directory: a ``lib/pythonX.Y`` (``pythonX.Y``, ``pythonX.Yt``,
  ``pypyX.Y`` or ``pythonXY.zip`` under ``lib`` or ``lib64``), or the directory a standard
  library module was found in when that directory is named ``Lib`` (Windows) or like the above;
* exectracer's own code (its module is ``exectracer`` or below, its bundled examples apart).

Every other frame with a known file is the program's own. The rule reads
only the trace (the files and ``module.qualname`` the stacks record), so a
trace gives the same answer on any machine, whatever Python reads it.
"""

from __future__ import annotations

import itertools
import re
import sys

from ..format.decoder import Frame
from ..trace_data import TraceData

_INSTALLED = frozenset({"site-packages", "dist-packages"})
_STDLIB_DIR = re.compile(r"(?:python\d+(?:\.\d+)?t?|pypy\d+(?:\.\d+)?|python\d+\.zip)")
_LIB_DIRS = frozenset({"lib", "lib64"})
_STDLIB_MODULES = frozenset(sys.stdlib_module_names)
_TRACER = "exectracer"
_TRACER_PROGRAMS = "exectracer.examples"  # the demos stand for a user's program


def is_program_code(frame: Frame) -> bool:
    """Whether ``frame`` is the traced program's own code (not the standard library, a package or exectracer)."""
    file = frame.file
    if not file or file == "?" or file.startswith("<frozen"):
        return False
    parts = file.replace("\\", "/").split("/")
    directories = parts[:-1]
    if _INSTALLED.intersection(directories) or _in_stdlib_dir(directories):
        return False
    module, root = _module_and_root(frame.function, parts)
    if module is None:
        return True
    top = module.partition(".")[0]
    if top == _TRACER:
        return module == _TRACER_PROGRAMS or module.startswith(_TRACER_PROGRAMS + ".")
    return not (top in _STDLIB_MODULES and root and (root[-1] == "Lib" or _STDLIB_DIR.fullmatch(root[-1])))


class ProgramCode:
    """The program's own frames in one trace's stacks, each stack looked at once."""

    def __init__(self, trace: TraceData) -> None:
        self._stacks = trace.stacks
        self._frames: dict[Frame, bool] = {}
        self._callers: dict[int, Frame | None] = {}

    def caller(self, stack_id: int) -> Frame | None:
        """The innermost frame of stack ``stack_id`` that is the program's own code (the wait's site itself if it is);
        None if the stack is unknown or holds none."""
        stack_id = int(stack_id)
        if stack_id not in self._callers:
            self._callers[stack_id] = next((f for f in self._stacks.get(stack_id, ()) if self.is_own(f)), None)
        return self._callers[stack_id]

    def is_own(self, frame: Frame) -> bool:
        """:func:`is_program_code`, remembered per frame."""
        own = self._frames.get(frame)
        if own is None:
            own = self._frames[frame] = is_program_code(frame)
        return own


def _in_stdlib_dir(directories: list[str]) -> bool:
    """Whether a path's directories hold ``lib/pythonX.Y`` (or a variant: see the module's docstring)."""
    return any(d in _LIB_DIRS and _STDLIB_DIR.fullmatch(after) for d, after in itertools.pairwise(directories))


def _module_and_root(function: str, parts: list[str]) -> tuple[str | None, list[str]]:
    """The module a frame's ``module.qualname`` names, if its file is where that module would be found,
    and the directories of the ``sys.path`` entry it was found in."""
    stem, dot, _ext = parts[-1].rpartition(".")
    if not dot or not stem:
        return None, []
    path = [*parts[:-1], stem]
    names = function.split(".")
    for k in range(len(names) - 1, 0, -1):
        module = names[:k]
        for tail in (module, [*module, "__init__"]):
            if path[-len(tail) :] == tail:
                return ".".join(module), path[: -len(tail)]
    return None, []
