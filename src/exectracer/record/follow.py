"""Child processes under ``exectracer run``: each records into its own file beside the parent's.

The run's file is ``out.xtrace``; child ``pid`` records into
``out.<pid>.xtrace`` (:mod:`exectracer.trace_files`), its own children
likewise, every file with the run's ``run_id`` in its metadata. How a child
starts recording:

* **Forked** (``os.fork``, multiprocessing's fork start method, the
  forkserver's children): in the child, after the recorder abandoned the
  parent's recording (its at-fork handler, registered first), this module's
  at-fork handler starts a new one. A child that ``subprocess`` forks only
  to run another program (``preexec_fn``) is left alone.
* **A new interpreter** (multiprocessing's spawn start method and the
  forkserver, ``subprocess`` running Python): :func:`prepare` puts
  :data:`FOLLOW_ENV` and :data:`HOOK_DIR`, a directory holding only a
  ``sitecustomize.py``, at the front of ``PYTHONPATH``, in ``os.environ``;
  that ``sitecustomize`` calls :func:`start_child`, takes its directory off
  ``sys.path`` and runs the ``sitecustomize`` the program would have run.

A program that starts tracing itself (``exectracer.start()``, a nested
``exectracer run``) in a child stops the child's recording: the file made
so far is complete, and the program's own recording runs as untraced.

A child's recording ends at its exit (``atexit``), in a multiprocessing
child that ends with ``os._exit`` through multiprocessing's finalizers, and
on SIGTERM (as ``exectracer run``'s, :mod:`.termination`). A child killed
otherwise, or ending with ``os._exit`` elsewhere, leaves its file as far as
it was written (every ``flush_interval``).
"""

from __future__ import annotations

import _thread
import atexit
import json
import os
import signal
import sys
from types import FrameType
from typing import Any

from ..trace_files import RUN_ID_ENV, child_name
from . import hook_errors
from .recorder import current, is_tracing, start_recorder, stop, yield_to_start
from .termination import FinishOnTerm, _native

FOLLOW_ENV = "EXECTRACER_FOLLOW"  # JSON: {"output": the run's file, "options": the recording options}
HOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "follow_hook")
_MULTIPROCESSING_LAST = -(1 << 30)  # our finalizer's exitpriority: after the program's own

_settings: dict[str, Any] | None = None
_fork_handler_registered = False
_child_path: str | None = None
_stopping = _thread.allocate_lock()  # not threading.Lock: the recorder's while tracing
_anchor: Any = None  # what multiprocessing's after-fork registry holds on to (it keeps weak references)


def prepare(output: str, options: dict[str, Any]) -> None:
    """In the run's first process, before its recording starts: let its child processes follow
    (environment for new interpreters; the run id every file of the run carries)."""
    global _settings
    _settings = {"output": os.path.abspath(output), "options": dict(options)}
    os.environ[RUN_ID_ENV] = os.urandom(8).hex()  # not secrets: its import (hashlib, hmac) costs each child
    os.environ[FOLLOW_ENV] = json.dumps(_settings)
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = HOOK_DIR + (os.pathsep + path if path else "")


def follow_forks() -> None:
    """Once a recording runs in this process: have forked children record too (after the recorder's own
    at-fork handler, registered when the recording started, has abandoned the parent's recording)."""
    global _fork_handler_registered
    if not _fork_handler_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_handler_registered = True


def settings() -> dict[str, Any] | None:
    """What the run asks of its children: this process's, or the environment's (a new interpreter)."""
    if _settings is not None:
        return _settings
    raw = os.environ.get(FOLLOW_ENV)
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    ok = isinstance(found, dict) and isinstance(found.get("output"), str) and isinstance(found.get("options"), dict)
    return found if ok else None


def start_child() -> str | None:
    """Record this child process into its own file; the file's path, or None if it does not record."""
    global _child_path, _stopping
    _stopping = _thread.allocate_lock()  # a fork's copy may be held by a thread the child does not have
    follow = settings()
    if follow is None or is_tracing():
        return None
    path = child_name(follow["output"], os.getpid())
    try:
        yield_to_start(start_recorder(path, **follow["options"]))  # the program's own exectracer.start() wins
    except Exception as exc:  # never break the child: it runs untraced, and says so once
        _warn(f"exectracer: child process {os.getpid()} is not traced: cannot record into {path}: {exc}")
        return None
    _child_path = path
    atexit.register(_stop_child)
    follow_forks()
    _on_term()
    return path


def _stop_child() -> None:
    """Stop the child's recording, if it is still the one running; a second caller (the process exiting while
    a SIGTERM finishes the trace) waits until it is written."""
    with _stopping:
        running = current()
        if running is not None and _child_path is not None and running.dest_name == _child_path:
            try:
                stop()
            except Exception:
                hook_errors.caught("follow.stop")


def _after_fork_in_child() -> None:
    try:
        if settings() is None or _exec_follows():
            return
        if start_child() is not None:
            _finish_multiprocessing_child()
    except Exception:
        hook_errors.caught("follow.fork")


def _exec_follows() -> bool:
    """Whether this fork is ``subprocess``'s, about to run another program (its ``preexec_fn`` runs first)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "_execute_child" and frame.f_globals.get("__name__") == "subprocess":
            return True
        frame = frame.f_back
    return False


def _finish_multiprocessing_child() -> None:
    """A multiprocessing child made by fork ends with ``os._exit``, after running multiprocessing's finalizers,
    whose registry it clears as it begins: register ours from its after-fork callbacks, which run next."""
    global _anchor
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return

    class _Anchor:
        pass

    _anchor = _Anchor()
    util.register_after_fork(_anchor, lambda _: util.Finalize(None, _stop_child, exitpriority=_MULTIPROCESSING_LAST))


def _on_term() -> None:
    """SIGTERM (a pool's ``terminate()``) finishes the child's trace, then kills it, where its action is the
    default. A forked child inherits its parent's handler at the OS level, which dies at once: put ours."""
    native = _native()
    if native is None or signal.getsignal(signal.SIGTERM) is not signal.Handlers.SIG_DFL:
        return
    native.term_release()  # the parent's, if inherited (a no-op otherwise)
    FinishOnTerm(_stop_child).install()


def _warn(message: str) -> None:
    try:
        print(message, file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # no stderr
        pass
