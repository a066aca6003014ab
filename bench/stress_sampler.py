"""Does the traced process survive? The Flask example under load with a flight recorder, many times.

Each run starts ``python -X faulthandler -m exectracer.examples.web flask
--flight`` (the sampler on, at its default rate), loads it for a few seconds
from ``bench/live_load.py``, and counts the servers that died by a signal
(faulthandler's report of each is kept next to the output). This is how a
sampler crash on CPython 3.11 was found and its fix checked.

::

    python bench/stress_sampler.py --runs 24
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_load import env

HERE = Path(__file__).resolve().parent
SERVER = [
    sys.executable,
    "-X",
    "faulthandler",
    "-m",
    "exectracer.examples.web",
    "flask",
    "--port",
    "0",
    "--flight",
    "--flight-min-age",
    "2",
]


def one_run(seconds: float, log: Path) -> int | None:
    """Load one server; its exit status if it died on its own, else None."""
    with open(log, "w") as err:
        server = subprocess.Popen(SERVER, env=env(), stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            url = _listening(server)
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "live_load.py"),
                    f"{url}/work",
                    "--concurrency",
                    "8",
                    "--warmup",
                    "1",
                    "--seconds",
                    str(seconds),
                ],
                env=env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=seconds + 60,
            )
            status = server.poll()
            return status
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)


def _listening(server: subprocess.Popen) -> str:
    assert server.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if line.startswith("listening on "):
            return line.split()[-1]
        if not line and server.poll() is not None:
            break
    raise SystemExit("the example server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=5.0, help="load per run")
    parser.add_argument(
        "--keep", type=Path, help="folder for the reports of servers that died (default: a temporary one)"
    )
    args = parser.parse_args()
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]), f"(Python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        died = []
        for i in range(1, args.runs + 1):
            log = folder / f"server-{i}.err"
            status = one_run(args.seconds, log)
            if status is not None:
                died.append((i, status))
                print(f"run {i}: the server died with status {status} (report: {log})", flush=True)
        print(f"servers that died: {len(died)} of {args.runs}")


if __name__ == "__main__":
    main()
