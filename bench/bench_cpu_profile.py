"""How close the CPU profile is to the OS's count, and how much of a wait no hook saw the samples show.

Runs each scenario of ``tests/programs/cpu_time.py`` traced in a fresh
process, ``--runs`` times: the program measures its own CPU time with
``getrusage`` between the end of ``exectracer.start()`` and the start of
``exectracer.stop()``; this script reads the trace's ``cpu`` profile and
prints both and their ratio (the target: within ±20 %), with medians,
minimums and maximums over the runs. The scenarios: four threads that only
sleep, two threads spinning in Python, a thread napping while another
spins (its GIL waits), an asyncio client and server over loopback, an idle
program, and a uvicorn (Starlette) server loaded by ``live_load.py`` for
``--seconds``. ``pool`` leaves a ``multiprocessing.Pool`` idle for 1.5 s:
its task handler thread waits in C, where no hook sees it; the figures are
the part of that wait the trace shows as blocked (estimated from samples)
and as running::

    python bench/bench_cpu_profile.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import exectracer  # noqa: E402
from exectracer.analysis.states import State  # noqa: E402

PROGRAM = HERE.parent / "tests" / "programs" / "cpu_time.py"
SCENARIOS = ("sleepers", "busy", "gil", "asyncio", "idle", "uvicorn")


def run(scenario: str, path: Path, seconds: float) -> dict:
    """Run one scenario traced into ``path``; what the program measured."""
    if scenario != "uvicorn":
        done = subprocess.run([sys.executable, str(PROGRAM), scenario, str(path)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(done.stderr)
        return json.loads(done.stdout.splitlines()[-1])
    with subprocess.Popen(
        [sys.executable, str(PROGRAM), scenario, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        load = subprocess.run(
            [sys.executable, str(HERE / "live_load.py"), url + "/work", "--warmup", "0.5", "--seconds", str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
        subprocess.run(
            [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen({url + '/quit'!r}).read()"],
            check=True,
        )
        out, err = server.communicate(timeout=60)
        if server.returncode:
            raise RuntimeError(err)
    return {**json.loads(out.splitlines()[-1]), "load": json.loads(load.stdout)}


def pool_wait(path: Path) -> tuple[float, float]:
    """The shares of the pool's task handler's timed wait that the trace shows blocked (estimated) and running."""
    done = subprocess.run([sys.executable, str(PROGRAM), "pool", str(path)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    measured = json.loads(done.stdout.splitlines()[-1])
    began, ended = measured["waited"]
    trace = exectracer.load(path)
    handler = next(t for t in trace.threads if t.name == measured["handler"])
    s = trace.analysis.states
    mine = np.flatnonzero(s.gi == trace.analysis.goroutines.index_of(np.array([handler.id]))[0])
    seen = (np.minimum(s.end[mine], ended) - np.maximum(s.start[mine], began)).clip(0)
    share = {
        st: float(seen[s.state[mine] == st].sum()) / (ended - began) for st in (State.OTHER_ESTIMATED, State.RUNNING)
    }
    return share[State.OTHER_ESTIMATED], share[State.RUNNING]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the uvicorn server is loaded")
    parser.add_argument("--scenario", action="append", choices=(*SCENARIOS, "pool"), help="only these (repeatable)")
    args = parser.parse_args()
    chosen = args.scenario or [*SCENARIOS, "pool"]
    print(f"command: python {' '.join(sys.argv)}")
    print(f"python {sys.version.split()[0]}, {args.runs} runs of each")
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in chosen:
            path = Path(tmp) / f"{scenario}.xtrace"
            if scenario == "pool":
                shares = [pool_wait(path) for _ in range(args.runs)]
                est, running = [s[0] for s in shares], [s[1] for s in shares]
                print(
                    f"pool: of the handler's timed wait, blocked (estimated) median {statistics.median(est):.1%}"
                    f" (min {min(est):.1%}), running median {statistics.median(running):.1%}"
                    f" (max {max(running):.1%})",
                    flush=True,
                )
                continue
            measured, profiled, extra = [], [], []
            for _ in range(args.runs):
                m = run(scenario, path, args.seconds)
                measured.append(m["cpu_ns"])
                profiled.append(exectracer.load(path).analysis.profile("cpu").total())
                if "load" in m:
                    extra.append(m["load"]["requests"])
            ratios = [p / m for p, m in zip(profiled, measured, strict=True)]
            note = f", {statistics.median(extra):.0f} requests (median)" if extra else ""
            print(
                f"{scenario}: getrusage median {statistics.median(measured) / 1e6:.1f} ms,"
                f" profile median {statistics.median(profiled) / 1e6:.1f} ms;"
                f" ratio median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}){note}",
                flush=True,
            )


if __name__ == "__main__":
    main()
