"""Replace attributes for the duration of a trace and put every one back."""

from __future__ import annotations

from typing import Any

from .stand_in import DisplacedBuiltins, pass_for

_MISSING = object()


class Patcher:
    """Remembers each attribute it replaces so that ``restore`` undoes all of them.

    What it puts in place passes for what it replaced (``stand_in``): names,
    doc, ``__wrapped__``, pickling, and the original still pickles while its
    name finds the replacement.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any, Any]] = []  # (owner, name, its own value or _MISSING, original)
        self._displaced = DisplacedBuiltins()

    def replace(self, owner: Any, name: str, value: Any) -> Any:
        """Set ``owner.name = value``; return the value it had."""
        original = getattr(owner, name)
        own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        pass_for(value, original)
        self._saved.append((owner, name, own, original))
        setattr(owner, name, value)
        self._displaced.check(original)
        return original

    def replaced(self) -> list[tuple[Any, str, Any]]:
        """``(owner, name, original)`` of each replacement in place, oldest first."""
        return [(owner, name, original) for owner, name, _, original in self._saved]

    def restore(self) -> None:
        """Undo every replacement, newest first."""
        while self._saved:
            owner, name, own, _ = self._saved.pop()
            try:
                if own is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, own)
            except (AttributeError, TypeError):  # pragma: no cover - owner changed under us
                pass
        self._displaced.restore()
