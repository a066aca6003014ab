"""Replace attributes for the duration of a trace and put every one back."""

from __future__ import annotations

from typing import Any

_MISSING = object()


class Patcher:
    """Remembers each attribute it replaces so that ``restore`` undoes all of them."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, value: Any) -> Any:
        """Set ``owner.name = value``; return the value it had."""
        original = getattr(owner, name)
        own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        self._saved.append((owner, name, own))
        setattr(owner, name, value)
        return original

    def restore(self) -> None:
        """Undo every replacement, newest first."""
        while self._saved:
            owner, name, own = self._saved.pop()
            try:
                if own is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, own)
            except (AttributeError, TypeError):  # pragma: no cover - owner changed under us
                pass
