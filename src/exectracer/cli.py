"""The ``exectracer`` command: trace a program (``run``) or the bundled example (``demo``).

``capture`` fetches a trace from a running service's ``/debug/pprof/trace``.

Commands only parse and check their arguments and return a job; :func:`main`
runs it once click is done, so the recording leaves click out and the
program's ``SystemExit`` and ``KeyboardInterrupt`` reach the interpreter
untouched.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from typing import Callable, NoReturn, Sequence

import click

from . import __version__, runner
from .record.recorder import stop

Job = Callable[[], int]
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)
SNAPSHOT_SIGNALS = [name for name in ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT") if hasattr(signal, name)]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="exectracer", message="%(prog)s %(version)s")
def cli() -> None:
    """Record what a Python program's threads and asyncio tasks do, and why they wait."""


@cli.command(context_settings={"allow_interspersed_args": False})
@click.option("-o", "--output", metavar="PATH", help="Trace file to write.  [default: SCRIPT's or MODULE's name + .xtrace]")
@click.option("--flush-interval", type=POSITIVE_SECONDS, default=1.0, show_default=True, metavar="SECONDS",
              help="Write recorded events to the file at least this often.")
@click.option("--no-asyncio", is_flag=True, help="Do not record event loops and asyncio tasks.")
@click.option("--no-gc", is_flag=True, help="Do not record garbage collections.")
@click.option("--no-threads", is_flag=True, help="Do not record thread lifecycles.")
@click.option("--no-thread-waits", is_flag=True, help="Do not record what threads wait on.")
@click.option("--sample-interval", type=click.FloatRange(min=0), default=0.01, show_default=True, metavar="SECONDS",
              help="Sample every thread's stack and state this often; 0 turns sampling off.")
@click.option("--flight", is_flag=True,
              help="Run under a flight recorder instead: keep the last moments in memory and write them into "
                   "--flight-dir on --flight-signal and when the program ends with an uncaught exception.")
@click.option("--flight-max-bytes", type=click.IntRange(min=64 << 10), default=10 << 20, show_default=True, metavar="BYTES",
              help="The most trace the flight recorder keeps.")
@click.option("--flight-min-age", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="SECONDS",
              help="The least history the flight recorder keeps (--flight-max-bytes wins).")
@click.option("--flight-dir", type=click.Path(exists=True, file_okay=False, writable=True), default=".", show_default=True,
              help="Where flight recorder snapshots go.")
@click.option("--flight-signal", type=click.Choice(SNAPSHOT_SIGNALS), default="SIGUSR2", show_default=True,
              help="The signal that makes the flight recorder write a snapshot.")
@click.option("-m", "module", is_flag=True, help="Run a library module as a script, like python -m.")
@click.argument("target", metavar="SCRIPT | -m MODULE")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(output: str | None, flush_interval: float, no_asyncio: bool, no_gc: bool, no_threads: bool,
        no_thread_waits: bool, sample_interval: float, flight: bool, flight_max_bytes: int, flight_min_age: float,
        flight_dir: str, flight_signal: str, module: bool, target: str, args: tuple[str, ...]) -> Job:
    """Run a Python script, or a module with -m, and trace all of it.

    Everything after SCRIPT or MODULE goes to the program, which sees the
    sys.argv, sys.path[0] and __name__ that python would give it, and exits
    with the same status.
    """
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
        recording: runner.Recording = runner.FlightRecording(recorder, flight_dir, signal.Signals[flight_signal], _report_flight)
    else:
        if output is None:
            output = f"{target if module else _stem(target)}.xtrace"
        elif not module and os.path.exists(output) and os.path.samefile(output, target):
            raise click.BadParameter("the trace would overwrite the script", param_hint="'-o'")
        recording = runner.FileRecording(output, options, functools.partial(_report_run, output))
    return functools.partial(runner.run, program, recording)


@cli.command()
@click.option("-o", "--output", default="exectracer-demo.xtrace", show_default=True, metavar="PATH",
              help="Trace file to write.")
@click.option("--seconds", type=POSITIVE_SECONDS, default=2.0, show_default=True, help="How long the service runs.")
def demo(output: str, seconds: float) -> Job:
    """Trace the bundled example: an asyncio TCP service and its clients."""
    return functools.partial(_run_demo, output, seconds)


@cli.command()
@click.argument("url")
@click.option("--seconds", type=POSITIVE_SECONDS, default=5.0, show_default=True, help="How long to trace the service.")
@click.option("--flight", is_flag=True, help="Fetch the service's flight recorder snapshot instead of tracing it now.")
@click.option("-o", "--output", metavar="PATH", help="Trace file to write.  [default: the name the service suggests]")
@click.option("--token", envvar="EXECTRACER_TOKEN", metavar="TOKEN",
              help="The service's token (better given in the EXECTRACER_TOKEN environment variable).")
def capture(url: str, seconds: float, flight: bool, output: str | None, token: str | None) -> Job:
    """Fetch a trace of a running service from its debug endpoint and summarize it.

    URL is the service (host:port, or a URL); without a path it asks
    /debug/pprof/trace?seconds=N, or /debug/pprof/flight with --flight.
    """
    return functools.partial(_capture, url, None if flight else seconds, output, token)


def _capture(url: str, seconds: float | None, output: str | None, token: str | None) -> int:
    from .live.client import FetchError, fetch

    if seconds is not None:
        click.echo(f"exectracer: tracing the service for {seconds:g} s...", err=True)
    try:
        fetched = fetch(url, seconds, token)
    except FetchError as exc:
        raise click.ClickException(str(exc)) from None
    path = output or fetched.file_name or "capture.xtrace"
    partial = f"{path}.part"
    try:
        with open(partial, "wb") as out:
            out.write(fetched.data)
        os.replace(partial, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(_describe_trace(path, len(fetched.data)))
    return 0


def _describe_trace(path: str, size: int) -> str:
    """One line about a trace file: events, time span, threads and tasks, what it lacks."""
    import warnings

    from .reader import TraceFormatError, TraceWarning, load

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TraceWarning)
            trace = load(path)
    except TraceFormatError as exc:
        raise click.ClickException(f"the service sent something that is not a trace ({exc})") from None
    lost = trace.lost
    missing = [f"{lost.events_lost:,} events lost"] if lost.events_lost else []
    if not lost.clean_end:
        missing.append("cut short (no END chunk)")
    if lost.chunks_skipped or lost.truncated_bytes or lost.seq_gaps:
        missing.append("damaged")
    return (
        f"{path}: {trace.event_count:,} events over {trace.duration_ns / 1e9:.2f} s, "
        f"{len(trace.threads):,} threads, {len(trace.tasks):,} tasks, {', '.join(missing) or 'nothing lost'} ({_size(size)})"
    )


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
        _fail(exc.format_message() + hint, exc.exit_code)
    except runner.RunError as exc:
        _fail(str(exc), 2)
    except click.Abort:  # Ctrl-C while click was parsing
        _fail("interrupted", 130)
    sys.exit(status)


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"exectracer: error: {message}", err=True)
    sys.exit(status)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "trace"


def _report_run(output: str, stats: dict, seconds: float) -> None:
    lost = f", {stats['events_lost']:,} lost" if stats["events_lost"] else ""
    message = f"exectracer: {stats['events']:,} events{lost} ({_size(stats['bytes'])}, {seconds:.1f} s) written to {output}"
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


def _run_demo(output: str, seconds: float) -> int:
    from .examples import service

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
        f"  load it:             python -c \"import exectracer; print(exectracer.load({output!r}))\"\n"
        "  trace your program:  exectracer run your_script.py [args...]\n"
        "  the example's code:  " + service.__file__
    )
    return 0


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.1f} MB"
