"""Hooks for modules the program has not imported yet: installed right after their import.

A threaded program that never imports asyncio should not pay for importing
it (about 20 ms, with ``ssl``, ``subprocess`` and ``concurrent.futures``)
when tracing starts. ``ImportHooks.when_imported`` installs a hook at once if
its module is loaded, else when the module's own code has run: a finder at
the front of ``sys.meta_path`` lets the other finders find the module, and
wraps its loader's ``exec_module`` for that one import. The module's
``__loader__`` and ``__spec__.loader`` are the original loader again by the
time the importer sees it.

A hook that raises is reported through ``warn`` and never reaches the
importer. ``close`` removes the finder; hooks still waiting are dropped.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
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
        """The spec the other finders give a waited-for module, its loader wrapped; None for any other."""
        if fullname not in self._waiting:
            return None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _InstallAfter(spec.loader, self, fullname)
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


class _InstallAfter:
    """A loader that runs the real one, then the module's waiting hooks."""

    def __init__(self, loader: Any, hooks: ImportHooks, name: str) -> None:
        self._loader = loader
        self._hooks = hooks
        self._name = name

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:  # as if the real loader had loaded it
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        self._hooks.installed(self._name, sys.modules.get(self._name, module))

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_code, ...
        return getattr(self._loader, name)
