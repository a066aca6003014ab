"""How the worker processes of one service find each other on the host: a directory of UNIX sockets.

Workers of one service (``gunicorn -w N``, ``uvicorn --workers N``) have
the same parent (the master) and accept on the same listening socket,
which they inherited from it. Each worker whose debug endpoints are set up
listens on a UNIX socket named after its pid, in a directory named after
the service: ``<base>/service-<parent pid>-<inode of the listening socket>``.
``<base>`` is ``$XDG_RUNTIME_DIR/exectracer`` or ``<temp dir>/exectracer-<uid>``,
made with mode 0700 and used only if the user owns it and nobody else can
enter it. A process listening on no socket (its server not started yet),
or on a system without ``/proc``, registers nowhere: its captures are its
own.

A small daemon thread of the tracer's own accepts connections and hands
each to ``serve`` (one thread per connection), after checking with
``SO_PEERCRED`` that the peer runs as the same user. The socket is removed
at exit (a worker that dies of a signal's default action leaves it: the
next capture removes a socket nobody listens on, and the next worker to
register removes what services that are gone left). A process forked by one that set the endpoints up without
registering (gunicorn's ``--preload``: the master loads the application
before it listens) registers as itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import stat
import struct
import sys
import tempfile
import time
from collections.abc import Callable

from ..record.hook_errors import caught
from ..tracer_thread import TracerThread

SUFFIX = ".sock"
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid

Serve = Callable[[socket.socket], None]


class Registration:
    """This process's socket in its service's directory, and the thread answering it."""

    def __init__(self, directory: str, serve: Serve) -> None:
        self.directory = directory
        self.path = os.path.join(directory, f"{os.getpid()}{SUFFIX}")
        self.pid = os.getpid()
        self._serve = serve
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a socket left by an earlier process of this pid
        self._listener.bind(self.path)
        self._listener.listen(16)
        TracerThread(target=self._accept, name="exectracer-workers", daemon=True).start()

    def siblings(self) -> list[tuple[int, str]]:
        """The other registered workers of the service: (pid, socket path)."""
        return [(pid, path) for pid, path in sockets_in(self.directory) if pid != self.pid]

    def close(self) -> None:
        """Stop answering and remove the socket (and the directory, if it is left empty)."""
        if self.pid != os.getpid():  # a forked child: the socket is its parent's
            return
        with contextlib.suppress(OSError):
            self._listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)  # fails while other workers are registered

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            if not trusted(conn):
                conn.close()
                continue
            TracerThread(target=self._answer, args=(conn,), name="exectracer-worker-request", daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._serve(conn)
        except Exception:
            caught("live.rendezvous")


def trusted(conn: socket.socket) -> bool:
    """Whether the peer of ``conn`` runs as this process's user (known through ``SO_PEERCRED``)."""
    return peer_uid(conn) == os.getuid()


def peer_uid(conn: socket.socket) -> int | None:
    """The user id of the process at the other end of a connected UNIX socket (None if unknown)."""
    try:
        _, uid, _ = _CREDENTIALS.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
    except (OSError, AttributeError):  # no SO_PEERCRED on this system
        return None
    return int(uid) if uid >= 0 else None  # -1: not a UNIX socket's peer


def sockets_in(directory: str) -> list[tuple[int, str]]:
    """The workers' sockets in a service directory: (pid, path), by pid."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        stem = name[: -len(SUFFIX)]
        if name.endswith(SUFFIX) and stem.isdigit():
            found.append((int(stem), os.path.join(directory, name)))
    return sorted(found)


def base_directory() -> str | None:
    """The user's rendezvous directory (made if missing); None if it is not private to the user."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    candidates = []
    if runtime and os.path.isabs(runtime):
        candidates.append(os.path.join(runtime, "exectracer"))
    candidates.append(os.path.join(tempfile.gettempdir(), f"exectracer-{os.getuid()}"))
    for path in candidates:
        if private_directory(path):
            return path
    return None


def private_directory(path: str) -> bool:
    """Make ``path`` (mode 0700) if missing; whether it is a directory of this user that nobody else can enter."""
    with contextlib.suppress(FileExistsError, FileNotFoundError, PermissionError):
        os.mkdir(path, 0o700)
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def service_key() -> str | None:
    """``<parent pid>-<inode>`` for the listening socket this process shares with its siblings; None if it
    listens on none (or ``/proc`` cannot tell)."""
    inodes = listening_inodes()
    return f"{os.getppid()}-{min(inodes)}" if inodes else None


def listening_inodes() -> set[int]:
    """The inodes of the listening TCP and UNIX sockets this process holds (Linux; empty elsewhere)."""
    held = set()
    try:
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("socket:["):
                    held.add(int(target[8:-1]))
    except OSError:
        return set()
    return held & _listening()


def _listening() -> set[int]:
    """Inodes of the host's listening sockets, from ``/proc/net`` (tcp, tcp6: state 0A; unix: flag ACCEPTCON)."""
    found = set()
    for table, column, listening in (("tcp", 3, "0A"), ("tcp6", 3, "0A"), ("unix", 3, "00010000")):
        with contextlib.suppress(OSError), open(f"/proc/net/{table}") as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if len(fields) > 9 and table != "unix" and fields[column] == listening:
                    found.add(int(fields[9]))
                elif len(fields) > 6 and table == "unix" and fields[column] == listening:
                    found.add(int(fields[6]))
    return found


RETRY_SECONDS = 120.0  # how long a process listening on no socket yet keeps trying to register

_registration: Registration | None = None
_serve_in_child: Serve | None = None
_retrying: int | None = None  # the pid of the process whose thread is trying to register
_registered_late = False  # registered by that thread, not when the endpoints were set up


def register(serve: Serve) -> Registration | None:
    """Register this process in its service's directory, once (the first ``serve`` stays); None if it cannot
    yet. A process that listens on no socket yet (uvicorn's workers get theirs after loading the application)
    tries again from a thread of the tracer's own, for up to :data:`RETRY_SECONDS`; one that cannot (no
    private directory, no ``/proc``) stays unregistered: its captures are its own."""
    global _serve_in_child, _retrying
    found = current()
    if found is not None:
        return found
    _serve_in_child = serve
    if sys.platform != "linux":
        return None
    found = _try_register(serve)
    if found is None and _retrying != os.getpid():
        _retrying = os.getpid()
        TracerThread(target=_retry, args=(serve,), name="exectracer-workers-register", daemon=True).start()
    return found


def _try_register(serve: Serve) -> Registration | None:
    global _registration
    try:
        key, base = service_key(), base_directory()
        if key is None or base is None:
            return None
        sweep(base)
        directory = os.path.join(base, f"service-{key}")
        if not private_directory(directory):
            return None
        _registration = Registration(directory, serve)
    except Exception:
        caught("live.rendezvous.register")
        return None
    return _registration


def _retry(serve: Serve) -> None:
    """Try to register every so often (more and more rarely) until it works or :data:`RETRY_SECONDS` pass."""
    deadline = time.monotonic() + RETRY_SECONDS
    pause = 0.02
    while time.monotonic() < deadline and current() is None:
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
        if current() is None and _try_register(serve) is not None:
            global _registered_late
            _registered_late = True
            return


def sweep(base: str) -> None:
    """Remove what services that are gone left in ``base``: the sockets of dead processes (a worker killed, or
    one that died of a signal's default action, runs no exit handler), then their directories if empty."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != "service" or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        directory = os.path.join(base, name)
        for pid, path in sockets_in(directory):
            if not _alive(pid):
                with contextlib.suppress(OSError):
                    os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


def current() -> Registration | None:
    """This process's registration, if it has one."""
    return _registration if _registration is not None and _registration.pid == os.getpid() else None


def _at_exit() -> None:
    if _registration is not None:
        _registration.close()


def _after_fork() -> None:
    """A worker forked by a master that set the endpoints up before it listened (gunicorn's ``--preload``)
    registers as itself; the children a worker forks once registered as it set its endpoints up do not.
    (A process that registered only later, from the thread that tries again, may be such a master: its
    children register.)"""
    global _registration, _registered_late, _retrying
    inherit = _registration is None or _registered_late
    _registration, _registered_late, _retrying = None, False, None
    if _serve_in_child is not None and inherit:
        register(_serve_in_child)


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
