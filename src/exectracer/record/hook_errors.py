"""Errors the hooks caught: never raised into the traced program, always counted.

A hook that fails loses what it was recording and lets the program go on.
It calls :func:`caught` from its ``except`` block, naming itself (a C hook
calls it through ``xt_hook_error``); the recording takes the counts when it
stops (:func:`take`), writes them into the trace's END record
(``hook_errors``) and returns their total from ``stop()``, so readers can
say which events may be missing.
"""

from __future__ import annotations

import sys

__all__ = ["caught", "counts", "reset", "take"]

FIRST_ERROR_CHARS = 200  # how much of each hook's first error the trace keeps

_counts: dict[str, int] = {}
_first: dict[str, str] = {}


def caught(where: str, error: BaseException | None = None) -> None:
    """Count ``error`` (by default the exception being handled) in the hook named ``where``. Never raises.

    The C hooks call it too, with the error they caught (``xt_hook_error``).
    """
    try:
        _counts[where] = _counts.get(where, 0) + 1
        if where not in _first:
            if error is None:
                error = sys.exc_info()[1]
            _first[where] = f"{type(error).__name__}: {error}"[:FIRST_ERROR_CHARS]
    except Exception:  # an exception whose text cannot be made: counted, not described
        _first.setdefault(where, "?")


def reset() -> None:
    """Forget the counts: a recording starts."""
    _counts.clear()
    _first.clear()


def counts() -> dict[str, dict[str, int | str]]:
    """The counts since :func:`reset`, by hook: ``{where: {"count": n, "first": text}}``."""
    return {where: {"count": n, "first": _first.get(where, "?")} for where, n in sorted(_counts.items())}


def take() -> dict[str, dict[str, int | str]]:
    """:func:`counts`, then :func:`reset`: a recording stops."""
    taken = counts()
    reset()
    return taken
