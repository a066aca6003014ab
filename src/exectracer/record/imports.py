"""Hooks for modules the program has not imported yet: installed right after their import.

A threaded program that never imports asyncio should not pay for importing
it (about 20 ms, with ``ssl``, ``subprocess`` and ``concurrent.futures``)
when tracing starts. ``ImportHooks.when_imported`` installs a hook at once if
its module is loaded, else when the module's own code has run: a finder at
the front of ``sys.meta_path`` lets the other finders find the module, and
makes the spec they give a :class:`_WatchedSpec` for that one import. The
import machinery marks a spec ``_initializing`` while the module's code
runs and clears the mark right after (``importlib._bootstrap._load_unlocked``,
the same from 3.10 to 3.13); clearing it runs the hooks and turns the spec
back into a plain ``ModuleSpec``. The loader is never wrapped, so nothing of
the tracer is on the stack while the module's code runs: a traceback out of
it (a Ctrl-C during the import) shows what it shows untraced.

A hook that raises is reported through ``warn`` and never reaches the
importer. ``close`` removes the finder; hooks still waiting are dropped.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Install = Callable[[ModuleType], None]


class ImportHooks:
    """Runs each install function once its module is imported (now, if it already is).

    A meta path finder (``find_spec``), by duck typing as ``importlib``
    allows: ``importlib.abc`` would cost the start an import of its own.
    """

    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn
        self._waiting: dict[str, list[Install]] = {}
        self._changed = threading.Condition(threading.Lock())  # guards the three fields here
        self._running = 0  # install functions running now (never under the lock: they import)
        self._closed = False

    def when_imported(self, name: str, install: Install) -> None:
        """Call ``install(module)`` now if ``name`` is imported, else right after it is."""
        module = sys.modules.get(name)
        if module is not None:
            install(module)
            return
        with self._changed:
            self._waiting.setdefault(name, []).append(install)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def close(self, timeout: float = 5.0) -> None:
        """Install nothing more; take the finder out of ``sys.meta_path``.

        Waits (``timeout`` seconds at most) for install functions that other
        threads are running, so that whatever they patch is patched before
        the caller restores it.
        """
        with self._changed:
            self._closed = True
            self._waiting.clear()
            _remove(self)
            self._changed.wait_for(lambda: self._running == 0, timeout)

    def abandon_after_fork(self) -> None:
        """In a forked child: close without the lock or the installs of the parent's other threads."""
        self._changed = threading.Condition(threading.Lock())
        self._running = 0
        self.close()

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        """The spec the other finders give a waited-for module, watched; None for any other."""
        if fullname not in self._waiting:
            return None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if type(spec) is ModuleSpec:
                    spec.__class__ = _WatchedSpec
                    spec.__dict__["_xt_hooks"] = self
                return spec
        return None

    def installed(self, name: str, module: ModuleType) -> None:
        """``name`` has just been imported: run its install functions."""
        with self._changed:
            if self._closed:
                return
            installs = self._waiting.pop(name, [])
            if not self._waiting:
                _remove(self)
            self._running += 1
        try:
            for install in installs:
                try:
                    install(module)
                except Exception as exc:  # never into the importer
                    self._warn(f"hooks for {name} not installed: {type(exc).__name__}: {exc}")
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


def _remove(finder: ImportHooks) -> None:
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass


class _WatchedSpec(ModuleSpec):
    """A waited-for module's spec during its import: when the import machinery clears ``_initializing``
    (the module's code has run), it becomes a plain ``ModuleSpec`` again and the module's hooks run."""

    @property
    def _initializing(self) -> bool:
        return bool(self.__dict__.get("_xt_initializing", False))

    @_initializing.setter
    def _initializing(self, value: bool) -> None:
        self.__dict__["_xt_initializing"] = value
        if value:
            return
        hooks = self.__dict__.pop("_xt_hooks", None)
        del self.__dict__["_xt_initializing"]
        self.__class__ = ModuleSpec  # type: ignore[assignment]
        self._initializing = False
        module = sys.modules.get(self.name)
        if hooks is not None and module is not None:  # else the import failed: the module is still waited for
            hooks.installed(self.name, module)
