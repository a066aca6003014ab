"""What live capture costs a web service: the example apps under load, without and with exectracer.

For each framework (Starlette under uvicorn with one worker, on asyncio's
loop or on uvicorn's defaults, uvloop and httptools; Flask under waitress),
four conditions, each a fresh server process loaded by ``live_load.py`` in
another process on loopback (fixed concurrency, 2 s warm-up, 5 s measured):

* ``untraced``: the application alone;
* ``idle``: with the debug endpoints installed, unused;
* ``capture``: the endpoints serving a 5 s ``/debug/pprof/trace`` during the window;
* ``flight``: the endpoints and a flight recorder running (10 MiB,
  ``--flight-min-age`` seconds so that old chunks are dropped in the window).

``starlette-workers`` is a service of several processes: the Starlette
application under gunicorn with 4 ``uvicorn.workers.UvicornWorker`` workers
(uvicorn's defaults: uvloop, httptools; ``--workers`` sets how many), where
one capture request makes every worker capture the same window and answers
their merged trace (``exectracer.examples.web:service_app``); it has no
``flight`` condition. gunicorn, not ``uvicorn --workers``: gunicorn's
listening socket has TCP_NODELAY, uvicorn's has not, and the delayed ACKs
of responses written in two parts then make the figures swing by a factor
of two from run to run.

Servers start through ``warm_allocator.py``, so that every condition starts
from the same allocator state. The conditions alternate within each round
(their order rotates from round to round); requests per second and p99 latency are medians over the rounds,
and each is given as a ratio to ``untraced``. Servers run with faulthandler
on and their stderr kept: a run whose server died is counted (``died``), its
exit status or signal and the tail of its stderr (faulthandler's report) are
printed, and it is left out of the medians::

    python bench/bench_live.py --rounds 5
    python bench/bench_live.py --rounds 5 --frameworks starlette-standard
    python bench/bench_live.py --rounds 5 --frameworks starlette-workers --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
CONDITIONS = ("untraced", "idle", "capture", "flight")
FRAMEWORKS = {
    "starlette": "Starlette + uvicorn (1 worker, asyncio loop, h11)",
    "starlette-standard": "Starlette + uvicorn[standard] (1 worker, its defaults: uvloop, httptools)",
    "flask": "Flask + waitress (4 threads)",
    "starlette-workers": "Starlette + gunicorn -w N UvicornWorker (uvloop, httptools), merged captures",
}
MULTI_PROCESS = ("starlette-workers",)


def conditions(framework: str) -> tuple[str, ...]:
    """The conditions measured for ``framework`` (no flight recorder for a service of several workers)."""
    return CONDITIONS[:3] if framework in MULTI_PROCESS else CONDITIONS


def measure(framework: str, condition: str, args: argparse.Namespace) -> dict:
    """Start the example server for ``condition``, load it from another process, stop it; the load's figures.

    If the server died during the load: ``{"died": its exit status, "stderr": its stderr's tail}``.
    """
    server_args = {
        "untraced": ["--no-middleware"],
        "idle": [],
        "capture": [],
        "flight": ["--flight", "--flight-min-age", str(args.flight_min_age)],
    }[condition]
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        PYTHONFAULTHANDLER="1",
    )
    # stderr to a file, not a pipe nobody reads (waitress warns of queued requests)
    with tempfile.TemporaryFile("w+") as err:
        if framework in MULTI_PROCESS:
            server, url = start_workers(condition, args.workers, env, err)
            try:
                return load_figures(framework, condition, server, url, err, args)
            finally:
                server.terminate()
                server.communicate(timeout=60)
        server = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "warm_allocator.py"),
                "-m",
                "exectracer.examples.web",
                framework,
                "--port",
                "0",
                *server_args,
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        try:
            line = server.stdout.readline()
            if not line.startswith("listening on "):
                raise RuntimeError(f"{framework} did not start: {line!r}")
            return load_figures(framework, condition, server, line.split()[-1], err, args)
        finally:
            server.terminate()
            server.communicate(timeout=30)


def load_figures(
    framework: str, condition: str, server: subprocess.Popen, url: str, err: IO[str], args: argparse.Namespace
) -> dict:
    """Load the server at ``url`` from another process (asking for a capture in the window for ``capture``)."""
    load = [
        sys.executable,
        str(HERE / "live_load.py"),
        url + "/work",
        "--concurrency",
        str(args.concurrency),
        "--warmup",
        str(args.warmup),
        "--seconds",
        str(args.seconds),
    ]
    if condition == "capture":
        load += ["--capture", str(args.seconds)]
    result = subprocess.run(load, capture_output=True, text=True, timeout=180)
    if server.poll() is not None:  # the server died: say so, and leave the run out of the medians
        err.seek(0)
        return {"died": server.returncode, "stderr": err.read()[-3000:]}
    if result.returncode != 0:
        raise RuntimeError(f"{framework} {condition}: the load failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


def start_workers(condition: str, workers: int, env: dict, err: IO[str]) -> tuple[subprocess.Popen, str]:
    """gunicorn with N UvicornWorker workers serving the Starlette example (endpoints unless ``untraced``); its
    URL once a worker answers and, with the endpoints, every worker has registered for merged captures."""
    from exectracer.live import rendezvous

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(env, EXECTRACER_EXAMPLE_NO_MIDDLEWARE="1" if condition == "untraced" else "0")
    argv = ["-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    argv += ["--log-level", "warning", "exectracer.examples.web:service_app()"]
    server = subprocess.Popen([sys.executable, *argv], stdout=err, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url + "/work", timeout=5).read()
        except OSError:
            time.sleep(0.2)
            continue
        base = rendezvous.base_directory() or ""
        registered = [
            rendezvous.sockets_in(os.path.join(base, d))
            for d in os.listdir(base)
            if d.startswith(f"service-{server.pid}-")
        ]
        if condition == "untraced" or (registered and len(registered[0]) >= workers):
            return server, url
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"gunicorn -w {workers} did not start ({condition})")


def describe(status: int) -> str:
    """An exit status, or the signal that ended the process."""
    return f"signal {signal.Signals(-status).name}" if status < 0 else f"status {status}"


def run_framework(framework: str, args: argparse.Namespace, died: list[str]) -> dict[str, list[dict]]:
    """Figures per condition over the rounds; conditions whose server died are appended to ``died``."""
    measured = conditions(framework)
    results: dict[str, list[dict]] = {c: [] for c in measured}
    for round_ in range(args.rounds):
        order = measured[round_ % len(measured) :] + measured[: round_ % len(measured)]
        for condition in order:
            figures = measure(framework, condition, args)
            if "died" in figures:
                print(
                    f"{framework} round {round_ + 1} {condition:9} the server died ({describe(figures['died'])}),"
                    f" its stderr ends with:\n{figures['stderr']}",
                    flush=True,
                )
                died.append(condition)
                continue
            results[condition].append(figures)
            print(
                f"{framework} round {round_ + 1} {condition:9} {figures['rps']:8.1f} req/s"
                f"  p99 {figures['p99_ms']:6.2f} ms"
                + (f"  trace {figures['capture_bytes']:,} bytes" if figures["capture_bytes"] else "")
                + (f" of {figures['capture_workers']} workers" if (figures.get("capture_workers") or 1) > 1 else "")
                + (f"  {figures['errors']} failed requests ({figures['first_error']})" if figures["errors"] else ""),
                flush=True,
            )
    return results


def report(framework: str, results: dict[str, list[dict]], died: list[str]) -> None:
    base_rps = statistics.median(r["rps"] for r in results["untraced"])
    base_p99 = statistics.median(r["p99_ms"] for r in results["untraced"])
    print(f"\n{FRAMEWORKS[framework]}: medians over the rounds")
    print(f"{'condition':10} {'runs':>4} {'req/s':>9} {'ratio':>6} {'p99 ms':>8} {'ratio':>6} {'died':>5}")
    for condition in results:
        if not results[condition]:
            print(f"{condition:10} {0:4} {'-':>9} {'-':>6} {'-':>8} {'-':>6} {died.count(condition):5}")
            continue
        rps = statistics.median(r["rps"] for r in results[condition])
        p99 = statistics.median(r["p99_ms"] for r in results[condition])
        print(
            f"{condition:10} {len(results[condition]):4} {rps:9.1f} {rps / base_rps:6.3f}"
            f" {p99:8.2f} {p99 / base_p99:6.3f}"
            f" {died.count(condition):5}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the four conditions, per framework")
    parser.add_argument("--frameworks", nargs="+", choices=list(FRAMEWORKS), default=list(FRAMEWORKS))
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window (and capture length)")
    parser.add_argument("--flight-min-age", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=4, help="worker processes of starlette-workers")
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, concurrency {args.concurrency}, "
        f"{args.warmup:g} s warm-up, {args.seconds:g} s measured",
        flush=True,
    )
    died: dict[str, list[str]] = {framework: [] for framework in args.frameworks}
    results = {framework: run_framework(framework, args, died[framework]) for framework in args.frameworks}
    for framework, figures in results.items():
        report(framework, figures, died[framework])


if __name__ == "__main__":
    main()
