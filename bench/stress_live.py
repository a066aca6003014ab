"""Does a traced service survive live capture under CPU saturation? Many short loaded runs, every failure kept.

Each run starts a fresh example server (``exectracer.examples.web``, through
``warm_allocator.py`` as ``bench_live.py`` does) with faulthandler on and core
dumps allowed, loads it from ``live_load.py`` in another process on loopback
(the two compete for the CPUs; ``--hogs N`` adds N processes spinning on the
CPU for the whole loop), and checks, per condition:

* ``capture``: a ``/debug/pprof/trace`` of ``--capture`` seconds asked as the
  measured window starts; the trace must load (``strict``) and hold the ``view``
  regions of the requests;
* ``captures``: captures of ``--capture`` seconds one after another until the
  window ends (a recording stops and starts many times under load); each
  must load, and the first hold ``view`` regions (a short one at the end of
  the window may have none);
* ``flight``: the server runs a flight recorder (``--flight-min-age``, so that
  old chunks are dropped during the run) and its snapshot is asked at the end
  of the window; it must load and hold ``view`` regions.

A run fails, and its folder (server stderr, core file, traces) is kept, when
the server **died** (its exit status or signal, the tail of its stderr: the
faulthandler report), **hung** (no answer to a request within ``--timeout``
seconds: the server is then sent SIGABRT so that faulthandler prints every
thread's stack), a request **failed** (error or connection reset), the
**capture failed** (refused, or an invalid trace), no response came for
``--stall`` seconds (a **stall**: the server's if the load's own loop was on
time, else the load was starved of CPU), its stderr holds a traceback, or it
did not **stop** cleanly on SIGTERM. The load starts once the server answers
(it prints its address before it imports its framework). The longest time
without a response is given per condition, as is the count of runs whose
load ended with no response in its window (on a machine this busy, the
server is then starved of CPU, not hung: it answers within ``--timeout``). The frameworks and
conditions alternate run by run, so that an interrupted loop has as many runs
of each::

    python bench/stress_live.py --runs 200 --keep /tmp/stress-live
    python bench/stress_live.py --runs 200 --hogs 1 --frameworks flask --conditions capture
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import exectracer  # noqa: E402  (this checkout's)

CONDITIONS = ("capture", "flight", "captures")
FRAMEWORKS = ("flask", "starlette")
CLEAN_STOP = (0, -signal.SIGTERM)  # uvicorn stops gracefully, then re-raises the signal; waitress just dies of it


def env() -> dict[str, str]:
    """This checkout's exectracer, with faulthandler on."""
    src = str(HERE.parent / "src")
    return dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONFAULTHANDLER="1")


def _allow_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def start_server(
    framework: str, condition: str, folder: Path, args: argparse.Namespace
) -> tuple[subprocess.Popen, str]:
    """A fresh example server in ``folder`` (its stderr in ``server.err``, a core file there); (process, URL)."""
    extra = ["--flight", "--flight-min-age", str(args.flight_min_age)] if condition == "flight" else []
    command = [sys.executable, str(HERE / "warm_allocator.py"), "-m", "exectracer.examples.web", framework]
    command += ["--port", "0", "--threads", str(args.threads), *extra]
    with open(folder / "server.err", "w") as err:
        server = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, text=True, env=env(), cwd=folder, preexec_fn=_allow_core
        )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("listening on "):
        server.wait(timeout=args.timeout)
        raise RuntimeError(f"did not start (status {server.returncode}): {line!r}")
    url = line.split()[-1]
    # it listens before it imports its framework (seconds, on a saturated machine): load it once it answers
    deadline = time.monotonic() + args.timeout
    while not answers(url, args.timeout) and server.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, url


def load(url: str, condition: str, folder: Path, args: argparse.Namespace) -> tuple[dict | None, str]:
    """Run ``live_load.py`` against the server; (its figures or None, its stderr's tail)."""
    command = [sys.executable, str(HERE / "live_load.py"), url + "/work", "--concurrency", str(args.concurrency)]
    command += ["--warmup", str(args.warmup), "--seconds", str(args.seconds), "--timeout", str(args.timeout)]
    if condition in ("capture", "captures"):
        command += ["--capture", str(args.capture), "--save", str(folder / f"{condition}.xtrace")]
        command += ["--repeat"] if condition == "captures" else []
    else:
        command += ["--flight", str(folder / "flight.xtrace")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=args.timeout * 3 + 30)
    except subprocess.TimeoutExpired:
        return None, "the load did not finish"
    if done.returncode != 0:
        return None, done.stderr.strip()[-1500:]
    return json.loads(done.stdout), ""


def answers(url: str, timeout: float) -> bool:
    """Does the server still answer ``/``?"""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


def check_trace(path: Path, views: bool = True) -> str:
    """'' if ``path`` is a valid trace (holding ``view`` regions, with ``views``), else what is wrong."""
    try:
        trace = exectracer.load(str(path), strict=True)
    except Exception as exc:  # any failure to read is a finding
        return f"invalid trace: {type(exc).__name__}: {exc}"
    if views and not (trace.regions.name == "view").any():
        return "the trace holds no view region"
    return ""


def stop(server: subprocess.Popen, timeout: float) -> int | None:
    """SIGTERM, then its exit status (None if it did not stop: it is then sent SIGABRT, then SIGKILL)."""
    server.terminate()
    try:
        return server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return dump_and_kill(server)


def dump_and_kill(server: subprocess.Popen) -> None:
    """SIGABRT (faulthandler prints every thread's stack), then SIGKILL if still there."""
    server.send_signal(signal.SIGABRT)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return None


def describe(status: int | None) -> str:
    if status is None:
        return "did not exit"
    if status < 0:
        return f"signal {signal.Signals(-status).name}"
    return f"status {status}"


@dataclasses.dataclass
class Run:
    """What one run found: ``problems`` (empty if none), the longest time without a response (ms; None if the
    load failed) and whether no request was answered in the window at all (``starved``)."""

    problems: list[str] = dataclasses.field(default_factory=list)
    gap_ms: float | None = None
    starved: bool = False


def one_run(framework: str, condition: str, folder: Path, args: argparse.Namespace) -> Run:
    """One loaded run."""
    run = Run()
    problems = run.problems
    try:
        server, url = start_server(framework, condition, folder, args)
    except RuntimeError as exc:
        problems.append(f"the server {exc}")
        return run
    try:
        figures, load_error = load(url, condition, folder, args)
        status = server.poll()
        if status is not None:
            problems.append(f"died: {describe(status)}")
        elif not answers(url, args.timeout):
            problems.append("hung: no answer to / (SIGABRT sent)")
            dump_and_kill(server)
        run.starved = "no request was answered" in load_error
        if load_error and not (run.starved and not problems):  # starved, but the server answers afterwards
            problems.append(f"load failed: {load_error.splitlines()[-1] if load_error.strip() else load_error}")
        if figures and figures["errors"]:
            problems.append(f"{figures['errors']} failed requests ({figures['first_error']})")
        if figures:
            run.gap_ms = figures["max_gap_ms"]
            traces = [(folder / f"{condition}.xtrace", True)]
            traces += [(folder / f"{condition}.xtrace.{i}", False) for i in range(1, figures["captures"])]
            for problem in filter(None, (check_trace(path, views) for path, views in traces)):
                problems.append(f"capture failed: {problem}")
            if figures["max_gap_ms"] >= 1e3 * args.stall:
                starved = figures["client_lag_ms"] >= figures["max_gap_ms"] / 2
                problems.append(
                    f"stall ({'the load starved' if starved else 'the server'}): no response for"
                    f" {figures['max_gap_ms']:.0f} ms, the load's loop up to {figures['client_lag_ms']:.0f} ms late"
                )
    except KeyboardInterrupt:
        server.kill()
        server.wait()
        raise
    finally:
        if server.poll() is None:
            status = stop(server, args.timeout)
            if status not in CLEAN_STOP:
                problems.append(f"unclean stop: {describe(status)}")
    errors = (folder / "server.err").read_text(errors="replace")
    if ("Traceback" in errors or "Fatal Python error" in errors) and not any("hung" in p for p in problems):
        problems.append("server stderr holds a traceback")
    return run


def _report(err: Path) -> str:
    """The server's stderr without waitress's queue warnings: faulthandler's report, tracebacks."""
    lines = err.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith("Task queue depth"))[-4000:]


def hogs(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each framework and condition")
    parser.add_argument("--frameworks", nargs="+", choices=("flask", "starlette", "starlette-standard", "aiohttp"))
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=["capture", "flight"])
    parser.add_argument("--hogs", type=int, default=0, help="processes spinning on the CPU during the loop")
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument("--threads", type=int, default=4, help="waitress threads")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=1.0, help="loaded window")
    parser.add_argument("--capture", type=float, default=1.0, help="capture length")
    parser.add_argument("--flight-min-age", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds an answer may take before a hang")
    parser.add_argument("--stall", type=float, default=3.0, help="seconds without any response that make a stall")
    parser.add_argument("--keep", type=Path, help="folder for the runs that failed (default: a temporary one)")
    args = parser.parse_args()
    frameworks = args.frameworks or list(FRAMEWORKS)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]), f"(Python {sys.version.split()[0]})")
    signal.signal(signal.SIGTERM, _interrupt)  # stopped: still report the counts and end the hogs
    spinning = hogs(args.hogs)
    counts: dict[tuple[str, str], int] = collections.Counter()
    failed: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    starved: dict[tuple[str, str], int] = collections.Counter()
    gaps: dict[tuple[str, str], float] = collections.defaultdict(float)
    began = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            keep = args.keep or Path(tmp)
            keep.mkdir(parents=True, exist_ok=True)
            for i, (framework, condition) in itertools.product(
                range(1, args.runs + 1), itertools.product(frameworks, args.conditions)
            ):
                folder = keep / f"{framework}-{condition}-{i}-{os.getpid()}"
                folder.mkdir()
                run = one_run(framework, condition, folder, args)
                key = framework, condition
                counts[key] += 1
                starved[key] += run.starved
                gaps[key] = max(gaps[key], run.gap_ms or 0.0)
                if run.problems:
                    failed[key].append(str(folder))
                    print(f"{framework} {condition} run {i}: {'; '.join(run.problems)} ({folder})", flush=True)
                    print(_report(folder / "server.err"), flush=True)
                else:
                    shutil.rmtree(folder)
                if i % 10 == 0 and (framework, condition) == (frameworks[-1], args.conditions[-1]):
                    print(f"{i} runs of each in {time.monotonic() - began:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        for hog in spinning:
            hog.kill()
            hog.wait()
    for key, runs in sorted(counts.items()):
        print(
            f"{key[0]:10} {key[1]:8} runs {runs:4}  failed {len(failed[key]):3}  starved {starved[key]:3}"
            f"  longest gap {gaps[key]:6.0f} ms  {' '.join(failed[key])}"
        )


if __name__ == "__main__":
    main()
