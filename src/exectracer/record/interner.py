"""Intern strings, frames and stacks so each distinct one is stored once."""

from __future__ import annotations

import itertools
from types import CodeType, FrameType

MAX_STRING = 4096  # longer strings are cut (log messages, names)
MAX_STRINGS = 1 << 20  # past this, new strings all map to id 0
UNKNOWN = 0  # string id 0 is "?" and stack id 0 is the empty stack


def function_name(code: CodeType, module: str | None, qualname: str | None = None) -> str:
    """``module.qualname`` for a code object (``qualname`` given, or from the code on 3.11+)."""
    qual = qualname if qualname else str(getattr(code, "co_qualname", code.co_name))
    return f"{module}.{qual}" if module else qual


def take_all(items: list) -> list:
    """Remove and return what ``items`` holds, without replacing the list.

    Other threads keep appending to the same list object, so nothing they add
    while this runs is lost.
    """
    n = len(items)
    taken = items[:n]
    del items[:n]
    return taken


class Interner:
    """Assigns ids to strings, frames and stacks, and queues new ones for the writer.

    Safe to call from any thread: a race can at worst define one value twice
    under two ids, which readers accept.
    """

    def __init__(self) -> None:
        self._strings: dict[str, int] = {"?": UNKNOWN}
        self._frames: dict[tuple[int, int], int] = {}
        self._stacks: dict[tuple[int, ...], int] = {(): UNKNOWN}
        self._keep_codes: dict[int, CodeType] = {}
        self._next_string = itertools.count(1).__next__
        self._next_frame = itertools.count(1).__next__
        self._next_stack = itertools.count(1).__next__
        self.new_strings: list[tuple[int, str]] = []
        self.new_frames: list[tuple[int, int, int, int]] = []
        self.new_stacks: list[tuple[int, tuple[int, ...]]] = []

    @property
    def strings(self) -> dict[str, int]:
        """Every string interned so far and its id (the C regions look names up in it)."""
        return self._strings

    def string(self, text: str) -> int:
        """The id of ``text`` (of its first ``MAX_STRING`` characters)."""
        sid = self._strings.get(text)
        if sid is not None:
            return sid
        if len(text) > MAX_STRING:
            return self.string(text[:MAX_STRING])
        if len(self._strings) >= MAX_STRINGS:
            return UNKNOWN
        sid = self._next_string()
        self._strings[text] = sid
        self.new_strings.append((sid, text))
        return sid

    def frame(self, code: CodeType, line: int, module: str | None, qualname: str | None = None) -> int:
        """The id of one frame: a function (by code object) at a line.

        ``qualname`` matters before 3.11, where code objects lack ``co_qualname``.
        """
        key = (id(code), line)
        fid = self._frames.get(key)
        if fid is None:
            self._keep_codes[id(code)] = code  # keeps id(code) unique while interned
            fid = self._next_frame()
            self._frames[key] = fid
            self.new_frames.append(
                (fid, self.string(function_name(code, module, qualname)), self.string(code.co_filename), line)
            )
        return fid

    def stack(self, frames: tuple[int, ...]) -> int:
        """The id of a stack given as frame ids, innermost first."""
        sid = self._stacks.get(frames)
        if sid is None:
            sid = self._next_stack()
            self._stacks[frames] = sid
            self.new_stacks.append((sid, frames))
        return sid

    def frame_of(self, frame: FrameType, qualname: str | None = None) -> int:
        """The id of a live frame at its current line (0 where its code says none)."""
        return self.frame(frame.f_code, frame.f_lineno or 0, frame.f_globals.get("__name__"), qualname)

    def take_new(self) -> tuple[list, list, list]:
        """Hand over the definitions made since the last call (oldest first)."""
        return take_all(self.new_strings), take_all(self.new_frames), take_all(self.new_stacks)
