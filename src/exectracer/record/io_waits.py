"""Thread waits on I/O: sockets, SSL, select and selectors, sleeps, subprocesses, syscalls.

Module functions and class attributes are replaced by wrappers that time
each call, like ``blocking.timed``: a call that took at least the
threshold is a THREAD_BLOCK/THREAD_UNBLOCK pair with the caller's stack.
Two rules keep the pairs apart and the categories right:

* a call made inside another wrapped call (``os.waitpid`` in
  ``Popen.wait``, ``select`` in ``socket.sendfile``, ``SSLSocket.read`` in
  ``recv``) is left to the outer one, which records the whole wait;
* a call on a non-blocking socket never waits (asyncio's), and the running
  event loop's own selector is loop idle time (the asyncio hooks record it).

A socket's timeout is looked at first, so an event loop's socket calls pass
through untimed; the other checks are made only for calls that took at
least the threshold.
Bindings made before ``start()`` (``from time import sleep``, a saved
``sock.recv``) keep the original; ``select.poll()`` and ``select.epoll()``
objects are C types that cannot be patched (``selectors`` can). A builtin
is replaced under its own module's name too (``posix.read`` as well as
``os.read``), so that it stays one object there and pickles by that name.
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..format.events import Category
from .blocking import ChildOf, Due, Reaped, timed
from .patcher import Patcher

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

SOCKET_METHODS = (
    "connect",
    "connect_ex",
    "accept",
    "recv",
    "recv_into",
    "recvfrom",
    "recvfrom_into",
    "recvmsg",
    "recvmsg_into",
    "send",
    "sendall",
    "sendto",
    "sendmsg",
    "sendfile",
)
SSL_METHODS = ("read", "write", "recv", "recv_into", "send", "sendall", "do_handshake", "unwrap")
SELECTOR_CLASSES = ("SelectSelector", "_PollLikeSelector", "EpollSelector", "DevpollSelector", "KqueueSelector")
OS_FUNCTIONS = ("read", "write")
# waits for any child (or one of a group), which name the child they reaped in their result; and waitpid,
# which names its child
OS_REAPING = ("wait", "wait3", "wait4", "waitid")
SIGNAL_FUNCTIONS = ("sigwaitinfo", "sigtimedwait", "pause")
FCNTL_FUNCTIONS = ("flock", "lockf")


def install(patcher: Patcher) -> None:
    """Wrap the I/O calls threads wait in; ``patcher.restore()`` undoes it.

    ``ssl`` and ``subprocess``, which a program may never import, have their
    own functions below (``install_ssl``, ``install_subprocess``).
    """
    patch = _patcher(patcher)
    patch(socket.socket, SOCKET_METHODS, Category.NETWORK, socket_method=True)
    patch(socket, ("getaddrinfo",), Category.NETWORK)  # DNS; create_connection and asyncio's resolver use it
    patch(select, ("select",), Category.NETWORK)
    install_selectors(patcher)
    patch(time, ("sleep",), Category.SLEEP, due=_sleep_ns)
    patch(os, OS_FUNCTIONS, Category.SYSCALL)
    patch(os, OS_REAPING, Category.SYSCALL, reaped=_reaped_pid)
    patch(os, ("waitpid",), Category.SYSCALL, child=_waitpid_child)  # multiprocessing's Process.join
    patch(signal, SIGNAL_FUNCTIONS, Category.SYSCALL)
    if fcntl is not None:
        patch(fcntl, FCNTL_FUNCTIONS, Category.SYSCALL)


def install_selectors(patcher: Patcher) -> None:
    """Wrap the selectors' ``select``: outermost, so that a wait's stack starts at its caller.

    The asyncio hooks wrap them too (a loop's own selector is loop idle
    time, never a thread wait: ``loop_selector``). Hooked after this, as
    when the program imports asyncio later, they are wrapped again: the
    inner wrapper then passes its call straight through.
    """
    patch = _patcher(patcher)
    for name in SELECTOR_CLASSES:
        cls = getattr(selectors, name, None)
        if cls is not None and "select" in vars(cls):
            patch(cls, ("select",), Category.NETWORK, loop_selector=True)


def install_ssl(patcher: Patcher, ssl: ModuleType) -> None:
    """Wrap the SSL socket calls threads wait in."""
    _patcher(patcher)(ssl.SSLSocket, SSL_METHODS, Category.NETWORK, socket_method=True)


def install_subprocess(patcher: Patcher, subprocess: ModuleType) -> None:
    """Wrap the waits for a child process; each names the child (a PROCESS_WAIT after the wait)."""
    _patcher(patcher)(subprocess.Popen, ("wait", "communicate"), Category.SYSCALL, child=_popen_child)


def _patcher(patcher: Patcher) -> Callable[..., None]:
    """A function that replaces ``owner``'s functions ``names`` by timed wrappers, through ``patcher``."""

    def patch(
        owner: Any,
        names: tuple[str, ...],
        category: Category,
        due: Due | None = None,
        *,
        socket_method: bool = False,
        loop_selector: bool = False,
        child: ChildOf | None = None,
        reaped: Reaped | None = None,
    ) -> None:
        for name in names:
            func = getattr(owner, name, None)
            if func is None:
                continue
            wrapper = timed(
                func,
                category,
                due=due,
                socket_method=socket_method,
                loop_selector=loop_selector,
                child=child,
                reaped=reaped,
            )
            patcher.replace(owner, name, wrapper)
            home = sys.modules.get(getattr(func, "__module__", None) or "")
            if home is not None and home is not owner and getattr(home, name, None) is func:
                patcher.replace(home, name, wrapper)  # os.read is posix.read, where pickle looks it up

    return patch


def _popen_child(args: tuple) -> int:
    """The child process ``Popen.wait(self, ...)`` or ``communicate`` waited for."""
    pid = getattr(args[0], "pid", 0) if args else 0
    return pid if isinstance(pid, int) else 0


def _waitpid_child(args: tuple) -> int:
    """The child process ``os.waitpid(pid, options)`` waited for (0: any child, or a process group's)."""
    pid = args[0] if args else 0
    return pid if isinstance(pid, int) and pid > 0 else 0


def _reaped_pid(result: Any) -> int:
    """The child process ``os.wait()``, ``wait3``, ``wait4`` or ``waitid`` reaped: the pid its result starts with
    (``waitid``'s ``si_pid``); 0 if none (``WNOHANG`` and no child ready, or the call raised)."""
    pid = result[0] if isinstance(result, tuple) and result else 0
    return pid if isinstance(pid, int) and pid > 0 else 0


def _sleep_ns(args: tuple) -> int:
    """How long ``time.sleep(secs)`` was asked to last."""
    return int(args[0] * 1e9)
