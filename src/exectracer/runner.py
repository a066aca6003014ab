"""Run a program under the tracer the way ``python script.py`` or ``python -m module`` would.

The program sees the same ``sys.argv``, ``sys.path[0]`` and ``__name__`` as
without the tracer, and ends with the same exit status: ``SystemExit`` and
``KeyboardInterrupt`` reach the interpreter as usual, an uncaught exception is
printed by ``sys.excepthook`` (without the tracer's frames) and exits with 1.
The trace is finished before that, once the program's non-daemon threads are
done, as the interpreter waits for them before it exits. A Ctrl-C while it is
finished waits for it (and changes no exit status: the program had ended); a
SIGTERM whose action is the default finishes it, then kills the process as
it would have (``record/termination.py``).
"""

from __future__ import annotations

import _thread
import dataclasses
import importlib.machinery
import importlib.util
import io
import os
import runpy
import stat
import sys
import threading
import time
import types
import zipfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import click

from .live.naming import trace_file_name
from .record import follow
from .record.held_signals import handlers_held
from .record.recorder import is_tracing, start, stop
from .record.termination import FinishOnTerm

if TYPE_CHECKING:  # imported by --flight only: not on every run's start
    from .live.flight import FlightRecorder

Report = Callable[[dict, float], None]


class RunError(click.ClickException):
    """Nothing was run: the program cannot be found or the trace cannot be written."""

    exit_code = 2


@dataclasses.dataclass(frozen=True)
class Program:
    """A script (file, directory or zip) or a module to run as ``__main__``."""

    target: str
    module: bool

    def execute(self) -> None:
        """Run the program in this process; its exceptions propagate."""
        if self.module:
            runpy.run_module(self.target, run_name="__main__", alter_sys=True)
        elif _is_archive(self.target):  # first, as python: a zip application may start with a #! line
            _run_archive(self.target)
        elif _is_source(self.target):
            _run_source(self.target)
        else:  # compiled code: as runpy finds it
            runpy.run_path(self.target, run_name="__main__")


def _is_source(path: str) -> bool:
    """Whether ``path`` is a Python source file (not a directory, zip archive or ``.pyc``)."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as file:
        start = file.read(4)
    return start != importlib.util.MAGIC_NUMBER


def _is_archive(path: str) -> bool:
    """Whether ``path`` is a directory or a zip archive (whose ``__main__`` python runs)."""
    return os.path.isdir(path) or zipfile.is_zipfile(path)


def _absolute(path: str) -> str:
    """``path`` made absolute as python makes a program's path: joined to the working directory, not normalised."""
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def _run_archive(path: str) -> None:
    """Run a directory's or zip archive's ``__main__`` as ``python path`` does: with the absolute path first on
    ``sys.path`` (so ``__file__`` is absolute too) and ``sys.argv[0]`` left as given."""
    sys.path.insert(0, _absolute(path))
    runpy._run_module_as_main("__main__", alter_argv=False)  # type: ignore[attr-defined]  # what python calls


def _run_source(path: str) -> None:
    """Run a script as ``python path`` does, in a fresh ``__main__`` put in place while it runs (as runpy does).

    ``__file__`` and the code's file name are the absolute (not normalised) path, and
    ``__loader__`` a source loader, as python makes them; ``sys.argv[0]`` stays as given
    (runpy would set it to ``__file__`` too).
    """
    absolute = _absolute(path)
    with io.open_code(absolute) as file:
        code = compile(file.read(), absolute, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    loader = importlib.machinery.SourceFileLoader("__main__", absolute)
    main.__dict__.update(__file__=absolute, __cached__=None, __loader__=loader, __package__=None, __spec__=None)
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def prepare(target: str, args: Sequence[str], *, module: bool) -> Program:
    """Set ``sys.argv`` and ``sys.path[0]`` as ``python`` would for this program.

    A module is looked up now, before tracing starts, which imports its parent
    packages (``python -m`` imports them first too). Raises :class:`RunError`
    if there is nothing to run.
    """
    if module:
        _set_path0(os.getcwd())
        origin = _find_module(target)
        sys.argv = [origin, *args]
    else:
        if not os.path.exists(target):
            raise RunError(f"cannot open {target!r}: no such file or directory")
        # a directory or zip archive is put on sys.path as it runs (_run_archive)
        _set_path0(os.path.dirname(os.path.realpath(target)) if os.path.isfile(target) else None)
        sys.argv = [target, *args]
    return Program(target, module)


class Recording(Protocol):
    """How a program is recorded: started before it runs, finished once it and its threads are done."""

    def start(self) -> None:
        """Start recording; raises :class:`RunError` if it cannot."""

    def finish(self, error: BaseException | None) -> None:
        """Stop recording; ``error`` is what the program raised, if anything."""


class FileRecording:
    """The whole program into a trace file; ``report(stats, seconds)`` gets the totals at the end.
    With ``follow``, its child processes record too, each into its own file beside it (``record/follow.py``)."""

    def __init__(self, output: str, options: dict[str, Any], report: Report, follow: bool = False) -> None:
        self._output, self._options, self._report, self._follow = output, options, report, follow
        self._began = 0.0

    def start(self) -> None:
        if self._follow and _beside_a_file(self._output):
            follow.prepare(self._output, self._options)
        else:
            self._follow = False
        start_tracing(self._output, **self._options)
        if self._follow:
            follow.follow_forks()
        self._began = time.perf_counter()

    def finish(self, error: BaseException | None) -> None:
        if is_tracing():
            self._report(stop(), time.perf_counter() - self._began)


class FlightRecording:
    """The program under a flight recorder: a snapshot into ``directory`` on ``signum`` and
    when the program ends with an uncaught exception; ``report(snapshot path or None)`` at the end."""

    def __init__(
        self, flight: FlightRecorder, directory: str, signum: int, report: Callable[[str | None], None]
    ) -> None:
        self._flight, self._directory, self._signum, self._report = flight, directory, signum, report

    def start(self) -> None:
        self._flight.start()
        self._flight.snapshot_on_signal(self._signum, self._directory)

    def finish(self, error: BaseException | None) -> None:
        path = None
        if error is not None and not isinstance(error, SystemExit) and self._flight.recording:
            path = os.path.join(self._directory, trace_file_name("flight", "exception"))
            try:
                self._flight.snapshot(path)
            except OSError as exc:
                print(f"exectracer: cannot write the flight recorder snapshot {path}: {exc}", file=sys.stderr)
                path = None
        self._flight.stop()
        self._report(path)


def run(program: Program, recording: Recording) -> int:
    """Run ``program`` under ``recording`` and return its exit status.

    The recording is finished once the program's threads are done.
    ``SystemExit`` and ``KeyboardInterrupt`` propagate after that, the
    latter with its traceback already printed. Raises :class:`RunError` if
    the recording cannot start.
    """
    recording.start()
    finish = _Finish(recording)
    on_term = FinishOnTerm(lambda: finish(None))
    on_term.install()
    error: BaseException | None = None
    try:
        error = _run_main(program)
        _wait_for_threads()
    finally:
        _finish_uninterrupted(finish, error)
        on_term.release()
    if isinstance(error, KeyboardInterrupt):
        # printed already: let the interpreter exit as it does on Ctrl-C, quietly
        sys.excepthook = lambda *exc_info: None
        raise error
    if isinstance(error, SystemExit):
        raise error
    return 1 if error is not None else 0


class _Finish:
    """``recording.finish(error)``, once, from whichever thread comes first (the program's end or a SIGTERM)."""

    def __init__(self, recording: Recording) -> None:
        self._recording = recording
        self._lock = _thread.allocate_lock()  # not threading.Lock: the recorder's while tracing
        self._done = False

    def __call__(self, error: BaseException | None) -> None:
        with self._lock:
            if not self._done:
                self._done = True
                self._recording.finish(error)


def _finish_uninterrupted(finish: _Finish, error: BaseException | None) -> None:
    """Finish the recording, a Ctrl-C meanwhile held off until it is done.

    The program has ended by then: as Python does with a Ctrl-C during its
    shutdown, the ``KeyboardInterrupt`` changes no exit status.
    """
    try:
        with handlers_held():
            finish(error)
    except KeyboardInterrupt:
        pass


def _beside_a_file(output: str) -> bool:
    """Whether child processes can record beside ``output``: a file, not a pipe or a device (``/dev/stdout``)."""
    try:
        return stat.S_ISREG(os.stat(output).st_mode)
    except OSError:  # not there yet: a file will be made
        return True


def start_tracing(output: str, **options: Any) -> None:
    """``exectracer.start(output, **options)``, raising :class:`RunError` if ``output`` cannot be written."""
    try:
        start(output, **options)
    except OSError as exc:
        raise RunError(f"cannot write the trace to {output!r}: {exc.strerror or exc}") from None


def _run_main(program: Program) -> BaseException | None:
    """Run the program; print an uncaught exception as the interpreter would and return it."""
    try:
        program.execute()
    except SystemExit as exc:
        return exc
    except BaseException as exc:
        _print_uncaught(exc)
        return exc
    return None


def _print_uncaught(exc: BaseException) -> None:
    """Call ``sys.excepthook`` for ``exc``, its traceback starting in the program."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__") in (__name__, "runpy"):
        tb = tb.tb_next
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:
        sys.__excepthook__(type(exc), exc, tb)


def _wait_for_threads() -> None:
    """Wait for non-daemon threads as the interpreter does at exit (``threading._shutdown``).

    That also runs ``threading._register_atexit`` callbacks, which let idle
    ``concurrent.futures`` workers finish; the interpreter's own later call
    then has nothing left to do.
    """
    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting, as Python does
        pass


def _set_path0(entry: str | None) -> None:
    """Replace the tracer's ``sys.path[0]`` with the program's (remove it for None)."""
    if getattr(sys.flags, "safe_path", False):  # python -P: no such entry was added
        return
    if entry is None:
        del sys.path[0]
    else:
        sys.path[0] = entry


def _find_module(name: str) -> str:
    """The file ``python -m name`` would run (a package's ``__main__``)."""
    spec = _find_spec(name)
    if spec is None:
        raise RunError(f"no module named {name!r}")
    if spec.submodule_search_locations is not None:
        spec = _find_spec(f"{name}.__main__")
        if spec is None:
            raise RunError(f"{name!r} is a package without a __main__ module; it cannot be run with -m")
    return spec.origin or name


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except Exception as exc:  # ImportError, ValueError for a bad name, or a parent package failing
        raise RunError(f"cannot find module {name!r} ({type(exc).__name__}: {exc})") from None
