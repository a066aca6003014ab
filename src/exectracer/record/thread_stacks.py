"""Stacks of running threads (from live frames), interned with a cheap cache key."""

from __future__ import annotations

from types import FrameType

from .interner import Interner
from .native import speedups

MAX_DEPTH = 128  # frames kept, innermost first; deeper ones are cut


class FrameStacks:
    """Maps a live frame's call stack to a stack id.

    The cache key is the code id and instruction offset of each frame,
    innermost first; only a stack never seen before is interned frame by
    frame. The interner keeps the code objects alive, so the ids stay unique.
    """

    def __init__(self, interner: Interner) -> None:
        self._interner = interner
        self.cache: dict[tuple, int] = {}

    def of(self, frame: FrameType | None) -> int:
        """The stack id of ``frame`` and its callers (0 for no frame)."""
        return self.of_key(stack_key(frame), frame)

    def of_key(self, key: tuple, frame: FrameType | None) -> int:
        """The stack id of ``frame``, whose ``stack_key`` is ``key``."""
        sid = self.cache.get(key)
        if sid is None:
            sid = self._define(key, frame)
        return sid

    def _define(self, key: tuple, frame: FrameType | None) -> int:
        interner = self._interner
        frames: list[int] = []
        f = frame
        while f is not None and len(frames) < MAX_DEPTH:
            frames.append(interner.frame_of(f, _qualname(f)))
            f = f.f_back
        sid = interner.stack(tuple(frames))
        self.cache[key] = sid
        return sid


_DEPTHS = range(MAX_DEPTH)


def _first_local_of_frame_dict(frame: FrameType) -> object:
    """The first local of ``frame`` through ``f_locals`` (which, before 3.11, the frame then keeps)."""
    return frame.f_locals.get(frame.f_code.co_varnames[0])


_native = speedups()
# before 3.11, read without f_locals where the C module has it: see ``_qualname``
_first_local = getattr(_native, "first_local", None) or _first_local_of_frame_dict


def stack_key(frame: FrameType | None) -> tuple:
    """The code id and instruction offset of each frame from ``frame`` outwards, flattened."""
    key: list[int] = []
    append = key.append
    f = frame
    if f is not None:
        for _ in _DEPTHS:
            append(id(f.f_code))
            append(f.f_lasti)
            f = f.f_back
            if f is None:
                break
    return tuple(key)


def _qualname(frame: FrameType) -> str | None:
    """The function's qualified name where the code object lacks it (before 3.11).

    That of the method of ``self``'s class or of the base class that defines
    it: the name a coroutine's ``__qualname__`` gives the await chains, so
    that a frame is named alike whichever of the two interns it first.
    """
    code = frame.f_code
    if hasattr(code, "co_qualname"):
        return None
    self_obj = _first_local(frame) if code.co_argcount and code.co_varnames[0] == "self" else None
    if self_obj is None:
        return None
    for cls in type(self_obj).__mro__:
        func = cls.__dict__.get(code.co_name)
        func = getattr(func, "__func__", func)
        if func is not None and getattr(func, "__code__", None) is code:
            return str(func.__qualname__)
    return None
