"""Jupyter: ``%load_ext exectracer``, the ``%%exectrace`` cell magic, and the viewer inline.

``%%exectrace [-o PATH] [--no-timeline]`` as a cell's first line traces the
rest of the cell, top-level ``await`` included, then shows the trace's
summary and its timeline under the cell. The line is taken off the cell
before IPython compiles it (an input transformer), and tracing starts and
stops around the cell's run (IPython's ``pre_run_cell`` and
``post_run_cell`` events): the cell runs as IPython would run it untraced,
in the kernel's own event loop when it awaits (a cell that awaits yields
once first, so that the recorder runs each of its steps).

The viewer is served from this process on loopback and shown in a frame,
which a notebook opened in a browser on the same machine can load
(JupyterLab, classic Notebook, VS Code); for a kernel elsewhere, forward
the port or run ``exectracer view`` on the file.
"""

from __future__ import annotations

import argparse
import html
import os
import shlex
import tempfile
import time
from typing import Any

from .reader import Trace, load
from .record.recorder import TracingError, is_tracing, start, stop

MAGIC = "%%exectrace"
YIELD_FIRST = "await __import__('asyncio').sleep(0)\n"
FRAME_HEIGHT = 640  # pixels
# the pages that may frame the viewer: notebooks served on this machine, and VS Code's webviews
NOTEBOOK_ORIGINS = "http://localhost:* http://127.0.0.1:* https://localhost:* https://127.0.0.1:* vscode-webview:"

_viewers: dict[int, Any] = {}  # id(trace) -> its ViewerServer, while the kernel runs


class MagicError(ValueError):
    """A ``%%exectrace`` line that cannot be obeyed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=MAGIC, add_help=False, exit_on_error=False)
    parser.add_argument("-o", "--output", metavar="PATH", help="trace file (default: a new file in a temp folder)")
    parser.add_argument("--no-timeline", action="store_true", help="show the summary only")
    return parser


def parse_magic(line: str) -> argparse.Namespace:
    """The options of a ``%%exectrace`` line (without ``%%exectrace``); :class:`MagicError` if they are bad."""
    try:
        words = shlex.split(line)
        options, extra = _parser().parse_known_args(words)
    except (ValueError, argparse.ArgumentError) as error:
        raise MagicError(f"{MAGIC}: {error}") from None
    if extra:
        raise MagicError(f"{MAGIC}: unknown argument(s): {' '.join(extra)} (options: -o PATH, --no-timeline)")
    return options


def _magic_line(lines: list[str]) -> tuple[int, str] | None:
    """Where the ``%%exectrace`` line is among a cell's lines (the first that is not blank) and its arguments."""
    for at, line in enumerate(lines):
        if not line.strip():
            continue
        stripped = line.strip()
        if stripped == MAGIC or stripped.startswith(MAGIC + " "):
            return at, stripped[len(MAGIC) :]
        return None
    return None


def strip_magic(lines: list[str]) -> list[str]:
    """IPython's input transformer: a cell without its ``%%exectrace`` line (bad options: code raising the error)."""
    found = _magic_line(lines)
    if found is None:
        return lines
    at, arguments = found
    try:
        parse_magic(arguments)
    except MagicError as error:
        return [f"raise __import__('IPython').core.error.UsageError({str(error)!r})\n"]
    body = lines[:at] + lines[at + 1 :]
    if _awaits("".join(body)):
        # tracing starts inside the step of the kernel's task that runs the cell, which no hook began; one yield
        # first, and every step of the cell is one the recorder runs (the line takes the magic's: lines keep
        # their numbers)
        body = lines[:at] + [YIELD_FIRST] + lines[at + 1 :]
    return body


def _awaits(cell: str) -> bool:
    """Whether IPython runs ``cell`` as a coroutine (it awaits at top level)."""
    try:
        from IPython.core.async_helpers import _should_be_async
    except ImportError:
        return False
    try:
        return bool(_should_be_async(cell))
    except Exception:
        return False


class CellTracer:
    """Starts tracing before a ``%%exectrace`` cell runs and shows the trace after."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.running: tuple[str, argparse.Namespace] | None = None

    def pre_run_cell(self, info: Any) -> None:
        found = _magic_line((getattr(info, "raw_cell", "") or "").splitlines(keepends=True))
        if found is None:
            return
        try:
            options = parse_magic(found[1])
        except MagicError:
            return  # the cell raises it
        if is_tracing():
            print(f"{MAGIC}: tracing is already running in this kernel; the cell runs without its own trace")
            return
        path = options.output or _new_path()
        try:
            start(path)
        except (OSError, TracingError) as error:
            print(f"{MAGIC}: cannot trace into {path}: {error}")
            return
        self.running = (path, options)

    def post_run_cell(self, result: Any) -> None:
        if self.running is None:
            return
        (path, options), self.running = self.running, None
        try:
            stop()
        except TracingError:  # the cell stopped it itself: show what it wrote
            pass
        from IPython.display import HTML, display

        try:
            trace = load(path)
            display(HTML(trace._repr_html_()))
            if not options.no_timeline:
                display(HTML(viewer_frame(trace)))
        except Exception as error:  # one line under the cell, not a traceback from IPython's callback
            print(f"{MAGIC}: cannot show the trace {path}: {type(error).__name__}: {error}")


def _new_path() -> str:
    folder = os.path.join(tempfile.gettempdir(), "exectracer-notebook")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"cell-{os.getpid()}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9}.xtrace")


def viewer_frame(trace: Trace, height: int = FRAME_HEIGHT) -> str:
    """HTML for the viewer of ``trace`` in a frame, served from this process on loopback (started once a trace)."""
    from .web.server import ViewerServer

    server = _viewers.get(id(trace))
    if server is None or server.api.trace is not trace:
        server = ViewerServer(trace, frame_ancestors=NOTEBOOK_ORIGINS)
        server.serve_in_thread()
        _viewers[id(trace)] = server
    url = html.escape(server.url, quote=True)
    return (
        f'<iframe src="{url}" width="100%" height="{int(height)}" style="border:1px solid #ccc"></iframe>'
        f'<div><a href="{url}" target="_blank" rel="noopener">open the viewer in a new tab</a></div>'
    )


def show(trace: Trace, height: int = FRAME_HEIGHT) -> Any:
    """The viewer of ``trace`` as a notebook output (``Trace.show()``)."""
    from IPython.display import HTML

    return HTML(viewer_frame(trace, height))


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext exectracer``: the ``%%exectrace`` cell magic."""
    if getattr(shell, "_exectracer_cell_tracer", None) is not None:
        return  # loaded already
    tracer = CellTracer(shell)
    shell.input_transformers_cleanup.append(strip_magic)
    shell.events.register("pre_run_cell", tracer.pre_run_cell)
    shell.events.register("post_run_cell", tracer.post_run_cell)
    shell._exectracer_cell_tracer = tracer


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext exectracer``."""
    tracer = getattr(shell, "_exectracer_cell_tracer", None)
    if tracer is None:
        return
    if strip_magic in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(strip_magic)
    shell.events.unregister("pre_run_cell", tracer.pre_run_cell)
    shell.events.unregister("post_run_cell", tracer.post_run_cell)
    del shell._exectracer_cell_tracer
