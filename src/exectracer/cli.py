"""The ``exectracer`` command: trace a program (``run``, ``demo``), then read the trace (``summary``, ``pprof``,
``sql``, ``view``, ``export``).

``capture`` fetches a trace from a running service's ``/debug/pprof/trace``.

Commands only parse and check their arguments and return a job; :func:`main`
runs it once click is done, so the recording leaves click out and the
program's ``SystemExit`` and ``KeyboardInterrupt`` reach the interpreter
untouched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

import click

from .version import __version__

if TYPE_CHECKING:
    from .reader import Trace

Job = Callable[[], int]
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)
SNAPSHOT_SIGNALS = [name for name in ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT") if hasattr(signal, name)]


READING_COMMANDS = frozenset({"summary", "pprof", "sql", "view", "capture", "export", "merge"})  # run no user program
QUICK_EXIT_COMMANDS = frozenset({"summary", "pprof", "sql", "export", "merge"})  # hold nothing to close at return


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="exectracer", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Record what a Python program's threads and asyncio tasks do, and why they wait."""
    if ctx.invoked_subcommand in READING_COMMANDS:
        # NumPy's OpenBLAS starts a thread per core that spins for a while,
        # taking a core from the analysis, which never calls BLAS. Only here:
        # a program run under the tracer keeps its own settings.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@cli.command(context_settings={"allow_interspersed_args": False})
@click.option(
    "-o", "--output", metavar="PATH", help="Trace file to write.  [default: SCRIPT's or MODULE's name + .xtrace]"
)
@click.option(
    "--flush-interval",
    type=POSITIVE_SECONDS,
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Write recorded events to the file at least this often.",
)
@click.option("--no-asyncio", is_flag=True, help="Do not record event loops and asyncio tasks.")
@click.option("--no-gc", is_flag=True, help="Do not record garbage collections.")
@click.option("--no-threads", is_flag=True, help="Do not record thread lifecycles.")
@click.option("--no-thread-waits", is_flag=True, help="Do not record what threads wait on.")
@click.option(
    "--sample-interval",
    type=click.FloatRange(min=0),
    default=0.01,
    show_default=True,
    metavar="SECONDS",
    help="Sample every thread's stack and state this often; 0 turns sampling off.",
)
@click.option(
    "--flight",
    is_flag=True,
    help="Run under a flight recorder instead: keep the last moments in memory and write them into "
    "--flight-dir on --flight-signal and when the program ends with an uncaught exception.",
)
@click.option(
    "--flight-max-bytes",
    type=click.IntRange(min=64 << 10),
    default=10 << 20,
    show_default=True,
    metavar="BYTES",
    help="The most trace the flight recorder keeps.",
)
@click.option(
    "--flight-min-age",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="The least history the flight recorder keeps (--flight-max-bytes wins).",
)
@click.option(
    "--flight-dir",
    type=click.Path(exists=True, file_okay=False, writable=True),
    default=".",
    show_default=True,
    help="Where flight recorder snapshots go.",
)
@click.option(
    "--flight-signal",
    type=click.Choice(SNAPSHOT_SIGNALS),
    default="SIGUSR2",
    show_default=True,
    help="The signal that makes the flight recorder write a snapshot.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Trace child processes too (fork, multiprocessing, subprocess running Python), each into "
    "OUTPUT's name with its pid (out.PID.xtrace) beside OUTPUT; every reader of OUTPUT opens them with it.",
)
@click.option("-m", "module", is_flag=True, help="Run a library module as a script, like python -m.")
@click.argument("target", metavar="SCRIPT | -m MODULE")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(
    output: str | None,
    flush_interval: float,
    no_asyncio: bool,
    no_gc: bool,
    no_threads: bool,
    no_thread_waits: bool,
    sample_interval: float,
    flight: bool,
    flight_max_bytes: int,
    flight_min_age: float,
    flight_dir: str,
    flight_signal: str,
    follow: bool,
    module: bool,
    target: str,
    args: tuple[str, ...],
) -> Job:
    """Run a Python script, or a module with -m, and trace all of it.

    Everything after SCRIPT or MODULE goes to the program, which sees the
    sys.argv, sys.path[0] and __name__ that python would give it, and exits
    with the same status. Its child processes are traced too (--no-follow:
    not), each into a file beside the trace (docs/processes.md).
    """
    from . import runner

    if flight and output is not None:
        raise click.UsageError("-o cannot be used with --flight: snapshots go into --flight-dir")
    try:
        program = runner.prepare(target, args, module=module)
    except runner.RunError as exc:
        raise click.UsageError(str(exc)) from None
    options = {
        "flush_interval": flush_interval,
        "asyncio": not no_asyncio,
        "gc": not no_gc,
        "threads": not no_threads,
        "thread_waits": not no_thread_waits,
        "sample_interval": sample_interval,
    }
    if flight:
        from .live.flight import FlightRecorder

        recorder = FlightRecorder(flight_max_bytes, flight_min_age, **options)
        recording: runner.Recording = runner.FlightRecording(
            recorder, flight_dir, signal.Signals[flight_signal], _report_flight
        )
    else:
        if output is None:
            output = f"{target if module else _stem(target)}.xtrace"
        elif not module and os.path.exists(output) and os.path.samefile(output, target):
            raise click.BadParameter("the trace would overwrite the script", param_hint="'-o'")
        recording = runner.FileRecording(output, options, functools.partial(_report_run, output), follow=follow)
    return functools.partial(runner.run, program, recording)


@cli.command()
@click.option(
    "-o", "--output", default="exectracer-demo.xtrace", show_default=True, metavar="PATH", help="Trace file to write."
)
@click.option("--seconds", type=POSITIVE_SECONDS, default=2.0, show_default=True, help="How long the service runs.")
@click.option("--no-view", is_flag=True, help="Only write the trace; do not open it in the viewer.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the viewer; 0 picks a free one.",
)
@click.option("--no-browser", is_flag=True, help="Serve the viewer without opening a browser.")
def demo(output: str, seconds: float, no_view: bool, port: int, no_browser: bool) -> Job:
    """Trace the bundled example (an asyncio TCP service and its clients) and open it in the viewer."""
    return functools.partial(_run_demo, output, seconds, None if no_view else (port, not no_browser))


@cli.command()
@click.argument("url")
@click.option("--seconds", type=POSITIVE_SECONDS, default=5.0, show_default=True, help="How long to trace the service.")
@click.option("--flight", is_flag=True, help="Fetch the service's flight recorder snapshot instead of tracing it now.")
@click.option("-o", "--output", metavar="PATH", help="Trace file to write.  [default: the name the service suggests]")
@click.option(
    "--token",
    envvar="EXECTRACER_TOKEN",
    metavar="TOKEN",
    help="The service's token (better given in the EXECTRACER_TOKEN environment variable).",
)
def capture(url: str, seconds: float, flight: bool, output: str | None, token: str | None) -> Job:
    """Fetch a trace of a running service from its debug endpoint and summarize it.

    URL is the service (host:port, or a URL); without a path it asks
    /debug/pprof/trace?seconds=N, or /debug/pprof/flight with --flight.
    """
    return _interruptible(functools.partial(_capture, url, None if flight else seconds, output, token))


def _capture(url: str, seconds: float | None, output: str | None, token: str | None) -> int:
    from .live.client import FetchError, fetch

    if seconds is not None:
        click.echo(f"exectracer: tracing the service for {seconds:g} s...", err=True)
    try:
        fetched = fetch(url, seconds, token)
    except FetchError as exc:
        raise click.ClickException(str(exc)) from None
    path = output or fetched.file_name or "capture.xtrace"
    described = _describe_trace(path, fetched.data)  # before writing: a response that is no trace leaves no file
    partial = f"{path}.part"
    try:
        with open(partial, "wb") as out:
            out.write(fetched.data)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(described)
    click.echo(f"  view it: exectracer view {shlex.quote(path)}", err=True)
    return 0


def _describe_trace(path: str, data: bytes) -> str:
    """One line about a fetched trace, to be written to ``path``: events, time span, threads and tasks,
    what it lacks. A :class:`click.ClickException` if ``data`` is not a trace."""
    import warnings

    from .reader import TraceFormatError, TraceWarning, load

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TraceWarning)
            trace = load(data)
    except TraceFormatError as exc:
        reason = str(exc).removeprefix("<bytes>: ")
        raise click.ClickException(
            f"the service sent something that is not a trace ({reason}); nothing written"
        ) from None
    size = len(data)
    lost = trace.lost
    missing = [f"{lost.events_lost:,} events lost"] if lost.events_lost else []
    if not lost.clean_end:
        missing.append("cut short (no END chunk)")
    if lost.chunks_skipped or lost.truncated_bytes or lost.seq_gaps:
        missing.append("damaged")
    unseen = "".join(f"\n  not seen by the recorder: {note}" for note in lost.unseen)
    note = trace.metadata.get("service_capture")
    absent = note.get("missing") if isinstance(note, dict) else None
    for worker in absent if isinstance(absent, list) else []:  # workers of the service left out (docs/live.md)
        if isinstance(worker, dict):
            unseen += f"\n  missing worker: pid {worker.get('pid')}: {worker.get('reason')}"
    processes = f"{len(trace.processes)} processes, " if len(trace.processes) > 1 else ""
    return (
        f"{path}: {trace.event_count:,} events over {trace.duration_ns / 1e9:.2f} s, {processes}"
        f"{len(trace.thread_table):,} threads, {len(trace.task_table):,} tasks, "
        f"{', '.join(missing) or 'nothing lost'} ({_size(size)})"
    ) + unseen


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``exectracer`` and ``python -m exectracer``; exits with the status."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    try:
        job = cli.main(args, standalone_mode=False)
        status = job() if callable(job) else job
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (try '{exc.ctx.command_path} --help')"
        _fail(" ".join(exc.format_message().split()) + hint, exc.exit_code)  # click lists choices on several lines
    except click.Abort:  # Ctrl-C while click was parsing
        _fail("interrupted", 130)
    if argv is None and args[0] in QUICK_EXIT_COMMANDS:
        # the whole process was this one command, and its output is written:
        # skip tearing down hundreds of megabytes of arrays one by one
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a reader that went away, a closed stream
                pass
        os._exit(status)
    sys.exit(status)


def _interruptible(job: Job) -> Job:
    """``job``, ending with one line and status 130 on Ctrl-C (for commands that run no user program)."""

    def run() -> int:
        try:
            return job()
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return run


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"exectracer: error: {message}", err=True)
    sys.exit(status)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "trace"


def _report_run(output: str, stats: dict, seconds: float) -> None:
    lost = f", {stats['events_lost']:,} lost" if stats["events_lost"] else ""
    message = (
        f"exectracer: {stats['events']:,} events{lost} ({_size(stats['bytes'])}, {seconds:.1f} s) written to {output}"
    )
    try:
        click.echo(message, err=True)
    except (OSError, ValueError):  # the program closed stderr
        pass


def _report_flight(snapshot: str | None) -> None:
    if snapshot is None:
        return
    try:
        click.echo(f"exectracer: the program raised; flight recorder snapshot written to {snapshot}", err=True)
    except (OSError, ValueError):  # the program closed stderr
        pass


def _run_demo(output: str, seconds: float, viewer: tuple[int, bool] | None) -> int:
    """Trace the example service; then serve the viewer on it (``viewer``: port, open a browser) unless None."""
    from . import runner
    from .examples import service
    from .record.recorder import stop

    runner.start_tracing(output)
    began = time.perf_counter()
    try:
        served = service.main(seconds)
    finally:
        stats = stop()
    took = time.perf_counter() - began
    lost = f" ({stats['events_lost']:,} lost)" if stats["events_lost"] else ""
    click.echo(
        f"Traced the example service for {took:.1f} s: {served.requests:,} requests from {served.clients} clients, "
        f"{served.collections} forced garbage collection{'' if served.collections == 1 else 's'}.\n"
        f"  trace:   {output}\n"
        f"  events:  {stats['events']:,}{lost}\n"
        f"  size:    {_size(stats['bytes'])}\n"
        "Next:\n"
        f"  view it:             exectracer view {output}\n"
        f"  summarize it:        exectracer summary {output}\n"
        "  trace your program:  exectracer run your_script.py [args...]\n"
        "  the example's code:  " + service.__file__
    )
    if viewer is not None:
        return _view(output, "127.0.0.1", *viewer)
    return 0


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.1f} MB"


# -- reading traces -----------------------------------------------------------

PROFILE_HELP = {
    "net": "time blocked on the network",
    "sync": "time blocked on locks, events, queues and joins",
    "syscall": "time blocked in subprocesses, executors and OS calls",
    "sleep": "time blocked in sleeps",
    "other": "time blocked in waits no rule could file, and waits no hook saw (estimated from samples, marked so)",
    "sched": "time runnable but not running (ready queue, GIL)",
    "gil": "threads' estimated GIL waits (no CPU time: not in cpu)",
    "cpu": "CPU time the OS counted, by sampled stack",
}


class Duration(click.ParamType):
    """A duration: a number of seconds, or a number with a unit (ns, us, ms, s)."""

    name = "duration"
    UNITS: ClassVar[dict[str, int]] = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        unit = next((u for u in sorted(self.UNITS, key=len, reverse=True) if text.endswith(u)), "s")
        number = text[: len(text) - len(unit)] if text.endswith(unit) else text
        try:
            ns = float(number) * self.UNITS[unit]
        except ValueError:
            self.fail(f"{value!r} is not a duration (examples: 1.5, 250ms, 40us)", param, ctx)
        if not ns >= 0 or ns > 1e19:
            self.fail(f"{value!r} is not a duration between 0 and 10^10 s", param, ctx)
        return int(ns)


F = TypeVar("F", bound=Callable[..., Any])


def time_range(command: F) -> F:
    """``--start`` and ``--end``: the part of the trace a command reads (a :class:`Duration` each, from its start)."""
    command = click.option(
        "--end", "end", type=Duration(), help="Only up to this time (seconds from the trace's start, or with a unit)."
    )(command)
    return click.option(
        "--start",
        "start",
        type=Duration(),
        help="Only from this time on (seconds from the trace's start, or with a unit: 250ms).",
    )(command)


@cli.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the report.")
@click.option(
    "--width",
    type=click.IntRange(min=0),
    help="Fit the report in this many columns; 0 shortens nothing.  "
    "[default: COLUMNS, else the terminal's width, else 80]",
)
def summary(trace_path: str, as_json: bool, width: int | None) -> Job:
    """Summarize a trace: where each group of goroutines spent its time, GC, scheduler latency, MMU, top waits.

    TRACE is a trace file, a merged trace (exectracer merge) or a directory of trace files; the file
    `exectracer run` wrote opens with the files its child processes wrote beside it (out.PID.xtrace).
    Several processes are summarized together, each one's goroutines under it."""
    return _interruptible(functools.partial(_summary, trace_path, as_json, width))


@cli.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path())
@click.option(
    "-t",
    "--type",
    "kind",
    required=True,
    type=click.Choice(list(PROFILE_HELP)),
    help="Which profile: " + "; ".join(f"{k}: {v}" for k, v in PROFILE_HELP.items()) + ".",
)
@click.option("-o", "--output", metavar="FILE", help="pprof file to write.  [default: TRACE's name + .TYPE.pb.gz]")
@time_range
@click.option(
    "--group",
    metavar="FUNCTION",
    help="Only goroutines started with this function (module.qualname, as summary --width 0 shows).",
)
@click.option("--region", metavar="NAME", help="Only time inside user regions of this name.")
@click.option("--pid", type=int, help="Only the goroutines of this process (a trace of several processes).")
def pprof(
    trace_path: str,
    kind: str,
    output: str | None,
    start: int | None,
    end: int | None,
    group: str | None,
    region: str | None,
    pid: int | None,
) -> Job:
    """Write a profile of a trace in pprof format, for `go tool pprof` and other pprof viewers.

    TRACE may be a trace of several processes (see summary)."""
    if output is None:
        output = f"{_stem(trace_path)}.{kind}.pb.gz"
    return _interruptible(functools.partial(_pprof, trace_path, kind, output, start, end, group, region, pid))


@cli.command()
@click.argument("traces", metavar="TRACE...", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", metavar="OUT", required=True, help="The merged trace file to write (must not exist).")
def merge(traces: tuple[str, ...], output: str) -> Job:
    """Merge the traces of several processes into one file, which every reader opens as one trace.

    Each TRACE is a trace file, a directory of them, or the file `exectracer run` wrote (with its child
    processes' files). Processes of one host keep their shared monotonic clock; another host's are
    aligned by each trace's wall-clock anchor, as well as the hosts' wall clocks agree (docs/processes.md)."""
    return _interruptible(functools.partial(_merge, traces, output))


@cli.command()
@click.argument("trace_path", metavar="TRACE", type=click.Path())
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on (other machines can reach anything but loopback).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port to serve on; 0 picks a free one."
)
@click.option("--no-browser", is_flag=True, help="Do not open a browser; just print the URL.")
@click.option(
    "--allow-host",
    "allowed_hosts",
    metavar="NAME",
    multiple=True,
    help="A host name the viewer may be reached by, besides addresses and localhost (repeatable).",
)
def view(trace_path: str, host: str, port: int, no_browser: bool, allowed_hosts: tuple[str, ...]) -> Job:
    """Open a trace in the browser: timeline, goroutines, profiles, MMU, latencies, logs.

    TRACE may be a trace of several processes (see summary), or a Parquet
    dataset's directory (exectracer export --format parquet): its Query page
    only."""
    return _interruptible(functools.partial(_view, trace_path, host, port, not no_browser, allowed_hosts))


def _view(path: str, host: str, port: int, browser: bool, allowed_hosts: tuple[str, ...] = ()) -> int:
    from .sql.dataset import is_dataset
    from .web.dataset_api import DatasetAPI
    from .web.server import ViewerServer

    if is_dataset(path):
        try:
            served: Trace | DatasetAPI = DatasetAPI(path)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        served = _load(path)
        _analyse(served, "states", "collections")
    try:
        server = ViewerServer(served, host, port, allowed_hosts)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"exectracer viewer for {path}: {server.url}  (Ctrl-C stops it)", err=True)
    if browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("exectracer viewer stopped", err=True)
    finally:
        server.server_close()
    return 0


def _load(path: str) -> Trace:
    """Load a trace for a command: a progress bar on a terminal if it takes a while, warnings as one line."""
    import warnings

    from .reader import TraceFormatError, TraceWarning, load

    try:
        size = os.path.getsize(path)
        if os.path.isdir(path):  # a directory of traces: its files
            size = sum(entry.stat().st_size for entry in os.scandir(path) if entry.name.endswith(".xtrace"))
    except OSError as exc:
        raise click.FileError(path, exc.strerror) from None
    with _progress(total=size, unit="B", unit_scale=True, desc="reading trace") as bar:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TraceWarning)
            try:
                trace = load(path, progress=bar.update)
            except TraceFormatError as exc:
                raise click.ClickException(str(exc)) from None
            except OSError as exc:
                raise click.FileError(path, exc.strerror) from None
    for warning in caught:
        click.echo(f"exectracer: warning: {warning.message}", err=True)
    return trace


def _analyse(trace: Trace, *parts: str) -> None:
    """Compute the named parts of ``trace.analysis``, with a progress bar on a terminal if that takes a while."""
    with _progress(total=len(parts), desc="analysing") as bar:
        for part in parts:
            getattr(trace.analysis, part)
            bar.update()


def _analyse_for_tables(trace: Any, analysis: Any) -> None:
    """The parts of a trace's analysis its SQL tables read."""
    _analyse(trace, "goroutines", "states", "collections")


def _progress(**bar: Any) -> Any:
    """A tqdm progress bar that shows once the work has taken a second, on a terminal;
    elsewhere one that does nothing."""
    if not sys.stderr.isatty():
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(delay=1.0, leave=False, **bar)


class _NoProgress(contextlib.AbstractContextManager):
    """A progress bar for no one to see (and no import of tqdm)."""

    def update(self, n: int = 1) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        return None


def _summary(path: str, as_json: bool, width: int | None) -> int:
    from .allocator import prepare_for_trace
    from .report import render

    prepare_for_trace(path)  # a short-lived command: faster, and the memory goes back at exit
    trace = _load(path)
    _analyse(trace, "states", "collections")
    if as_json and not sys.stdout.isatty():  # compact: written as it is made, a batch of goroutine rows at a time
        for piece in trace.analysis.summary_json():
            click.echo(piece, nl=False)
        click.echo()
        return 0
    doc = trace.analysis.summary()
    if width is None:
        width = shutil.get_terminal_size().columns  # COLUMNS, else stdout's terminal, else 80 (as pytest does)
    click.echo(_json(doc) if as_json else render(doc, path, width))
    return 0


def _merge(traces: tuple[str, ...], output: str) -> int:
    from .merge import MergeError, merge

    try:
        merged = merge(traces, output)
    except MergeError as exc:
        raise click.ClickException(str(exc)) from None
    for source in merged.incomplete:
        click.echo(f"exectracer: warning: {source}: merged what was readable (damaged, or no clean end)", err=True)
    click.echo(
        f"Merged {merged.processes} processes ({merged.events:,} events, {_size(merged.bytes)}) into {output}.",
        err=True,
    )
    return 0


def _json(doc: Any) -> str:
    """``doc`` as JSON: indented for a terminal; compact for a pipe or a file
    (Python's C encoder writes only compact JSON, several times faster)."""
    import json

    from .allocator import collections_paused

    with collections_paused():  # the encoder makes a list of items per dict: no cycles to find among them
        return json.dumps(doc, indent=1 if sys.stdout.isatty() else None)


def _pprof(
    path: str,
    kind: str,
    output: str,
    start: int | None,
    end: int | None,
    group: str | None,
    region: str | None,
    pid: int | None = None,
) -> int:
    from .allocator import prepare_for_trace
    from .analysis.profiles import ESTIMATED
    from .export import pprof as pprof_file
    from .report import duration, printable

    prepare_for_trace(path)
    trace = _load(path)
    _analyse(trace, "states")
    try:
        prof = trace.analysis.profile(kind, start_ns=start, end_ns=end, group=group, region=region, pid=pid)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        pprof_file.write(prof, output, comment=f"exectracer {kind} profile of {os.path.basename(path)}")
    except OSError as exc:
        raise click.FileError(output, exc.strerror) from None
    count, total, estimated = prof.total(0), prof.total(), prof.estimated_total()
    what = "samples" if kind == "cpu" else "waits"
    of_which = f", of which {duration(estimated)} estimated, under {ESTIMATED.function}" if estimated else ""
    click.echo(
        f"Wrote the {kind} profile ({count:,} {what}, {duration(total)}{of_which}) to {printable(output)}.\n"
        f"  see it:  go tool pprof -top {printable(output)}"
    )
    return 0


class QueryFailed(click.ClickException):
    """A query DuckDB refused: its one-line message, exit status 2 (bad input on the command line)."""

    exit_code = 2


@cli.command()
@click.argument("trace_paths", metavar="TRACE...", nargs=-1, required=True, type=click.Path())
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table: aligned columns; csv: a header and one line per row; json: an array of one object per row.",
)
def sql(trace_paths: tuple[str, ...], query: str, fmt: str) -> Job:
    """Run a SQL QUERY (DuckDB's dialect) over one or more traces.

    The tables (docs/sql.md): processes, goroutines, states, frames, gc,
    heap, user_tasks, user_regions, logs and events; times in ns from each
    trace's start, and a trace column naming the file each row came from.
    TRACE may also be a Parquet dataset's directory (exectracer export
    --format parquet), read in place, alone.
    Example: exectracer sql out.xtrace "SELECT state, sum(end_ns - start_ns)
    FROM states GROUP BY state"
    """
    return _interruptible(functools.partial(_sql, trace_paths, query, fmt))


def _sql(paths: tuple[str, ...], query: str, fmt: str) -> int:
    from .sql import output
    from .sql.database import QueryError

    try:
        database = _database(paths)
    except ImportError as exc:  # DuckDB not installed: says how to install it
        raise click.ClickException(str(exc)) from None
    try:
        names, types, batches = database.batches(query)
        output.write(sys.stdout, fmt, names, types, batches)
    except QueryError as exc:
        raise QueryFailed(str(exc)) from None
    return 0


def _database(paths: tuple[str, ...]) -> Any:
    """The SQL database of ``paths``: traces, or one Parquet dataset's directory."""
    from .allocator import prepare_for_trace
    from .sql.database import Database
    from .sql.dataset import DatasetError, is_dataset, read_dataset

    datasets = [path for path in paths if is_dataset(path)]
    if datasets:
        if len(paths) > 1:
            raise click.UsageError(f"{datasets[0]} is a Parquet dataset: query it alone, not with other traces")
        try:
            return read_dataset(datasets[0])
        except DatasetError as exc:
            raise click.ClickException(str(exc)) from None
    if len(paths) == 1:
        prepare_for_trace(paths[0])
    traces = [_load(path) for path in paths]
    return Database([(trace, trace.analysis, path) for trace, path in zip(traces, paths, strict=True)])


# -- export -------------------------------------------------------------------

EXPORT_FORMATS = {
    "perfetto": "a Perfetto trace (protobuf TrackEvents), for ui.perfetto.dev and Perfetto's trace processor",
    "chrome": "Chrome's JSON Trace Event Format, for chrome://tracing and older tools (at most about a million events)",
    "parquet": "the SQL tables as a Hive-partitioned Parquet dataset in the directory OUT, for DuckDB and Spark "
    "(several traces; more can be added later)",
}


@cli.command()
@click.argument("trace_paths", metavar="TRACE...", nargs=-1, required=True, type=click.Path())
@click.option(
    "-f",
    "--format",
    "fmt",
    required=True,
    type=click.Choice(list(EXPORT_FORMATS)),
    help="What to write: " + "; ".join(f"{k}: {v}" for k, v in EXPORT_FORMATS.items()) + ".",
)
@click.option("-o", "--output", required=True, metavar="OUT", help="File to write (parquet: the dataset's directory).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@time_range
def export(trace_paths: tuple[str, ...], fmt: str, output: str, force: bool, start: int | None, end: int | None) -> Job:
    """Write a trace in another tool's format: its goroutines' states, wake-ups, heap, GC, logs, tasks and regions."""
    if fmt == "parquet":
        if start is not None or end is not None:
            raise click.UsageError("--format parquet exports whole traces: --start and --end do not apply")
        if force:
            raise click.UsageError("--format parquet adds to OUT and replaces nothing: --force does not apply")
        return _interruptible(functools.partial(_export_parquet, trace_paths, output))
    if len(trace_paths) > 1:
        raise click.UsageError(f"--format {fmt} takes one trace, not {len(trace_paths)}")
    if start is not None and end is not None and end <= start:
        raise click.BadParameter("must come after --start", param_hint="'--end'")
    if os.path.lexists(output) and not force:
        raise click.UsageError(f"{output} exists; nothing written (--force replaces it)")
    if os.path.isdir(output):
        raise click.UsageError(f"{output} is a directory; nothing written")
    return _interruptible(functools.partial(_export, trace_paths[0], fmt, output, start, end))


def _export(path: str, fmt: str, output: str, start: int | None, end: int | None) -> int:
    from .allocator import prepare_for_trace
    from .export import chrome, perfetto
    from .export.timeline import RangeError, Timeline
    from .report import printable

    prepare_for_trace(path)
    trace = _load(path)
    _analyse(trace, "states", "collections")
    try:
        timeline = Timeline(trace.analysis, start, end)
    except RangeError as exc:
        raise click.UsageError(str(exc)) from None
    partial = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.part")
    try:
        if fmt == "chrome":
            events = chrome.write(timeline, partial)
        else:
            events = perfetto.write(timeline, partial)
        size = os.path.getsize(partial)
        os.replace(partial, output)
    except chrome.TooLarge as exc:
        span = "the range" if timeline.cut else "the trace"
        raise click.ClickException(
            f"{span} makes {exc.events:,} Chrome JSON events, more than the {chrome.MAX_EVENTS:,} that "
            "chrome://tracing can load; nothing written: choose a time range with --start/--end "
            f"(the trace lasts {trace.duration_ns / 1e9:.3g} s) or use --format perfetto"
        ) from None
    except OSError as exc:
        raise click.FileError(output, exc.strerror) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(partial)
    where = "ui.perfetto.dev (Open trace file)" if fmt == "perfetto" else "chrome://tracing (Load)"
    click.echo(f"Wrote {events:,} events ({_size(size)}) to {printable(output)}.\n  open it in {where}")
    return 0


def _export_parquet(paths: tuple[str, ...], output: str) -> int:
    """Add each trace of ``paths`` to the Parquet dataset ``output``: every input is checked to be a trace first."""
    from .allocator import prepare_for_trace
    from .report import printable
    from .sql.dataset import DatasetError, check_target, export

    for path in paths:
        _check_trace_file(path)
    try:
        check_target(output)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if len(paths) == 1:
        prepare_for_trace(paths[0])
    for path in paths:
        trace = _load(path)
        try:  # the analysis is computed while the tables that need none are written
            [written] = export([(trace, trace.analysis, path)], output, _analyse_for_tables)
        except ImportError as exc:  # DuckDB not installed: says how to install it
            raise click.ClickException(str(exc)) from None
        except DatasetError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.FileError(output, exc.strerror) from None
        if written.skipped:
            click.echo(
                f"Skipped {printable(path)}: {printable(output)} already holds it (trace id {written.trace_id})."
            )
        else:
            click.echo(
                f"Wrote {printable(path)} ({written.rows:,} rows, {written.files} files, trace id {written.trace_id}) "
                f"to {printable(output)}."
            )
    click.echo(f'  query it: exectracer sql {shlex.quote(output)} "SELECT * FROM traces"')
    return 0


def _check_trace_file(path: str) -> None:
    """A one-line error, before anything is written, if ``path`` cannot be read or is not a trace."""
    from .format.decoder import read_version
    from .reader import TraceFormatError

    if os.path.isdir(path):
        return  # a directory of trace files, which the reader checks
    try:
        with open(path, "rb") as f:
            read_version(f.read(16))
    except OSError as exc:
        raise click.FileError(path, exc.strerror) from None
    except TraceFormatError as exc:
        raise click.ClickException(f"{path}: {exc}; nothing written") from None
