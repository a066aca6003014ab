"""``exectracer run`` follows child processes: fork, spawn, forkserver, pools, Python subprocesses, killed ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import exectracer
from exectracer.reader import TraceWarning
from exectracer.record.termination import _native

from support.waiting import wait_for

pytestmark = pytest.mark.recorder

CLI = [sys.executable, "-m", "exectracer"]
PROGRAMS = Path(__file__).parent / "programs"
CHILDREN = PROGRAMS / "children.py"


def run_traced(tmp_path: Path, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*CLI, "run", *options, "-o", str(tmp_path / "out.xtrace"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def quietly(load: object, *args: object, **kwargs: object) -> exectracer.Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return load(*args, **kwargs)  # type: ignore[operator]


def complete(path: Path) -> exectracer.Trace:
    """The run's trace once every process's recording has ended (a pool's helpers end after the parent)."""

    def ended() -> exectracer.Trace | None:
        trace = quietly(exectracer.load, path)
        return trace if all(p.clean_end for p in trace.processes) else None

    return wait_for(ended, "every process's recording to end")


def ran(trace: exectracer.Trace, function: str) -> list[exectracer.reader.Process]:
    """The processes whose sleep profile has ``function`` on a stack."""
    return [
        p
        for p in trace.processes
        if any(e.function.endswith(function) for e in trace.analysis.profile("sleep", pid=p.pid).top(50))
    ]


@pytest.mark.parametrize("kind", ["fork", "spawn", "forkserver", "executor"])
def test_pool_workers_are_traced_each_into_its_own_file(tmp_path: Path, kind: str) -> None:
    done = run_traced(tmp_path, str(CHILDREN), kind)
    assert f"{kind} [0, 1, 4, 9]" in done.stdout
    trace = complete(tmp_path / "out.xtrace")
    parent = trace.processes[0]
    assert parent.argv[0].endswith("children.py") and len(trace.processes) > 1
    workers = ran(trace, "square_slowly")
    assert workers and parent not in workers
    pids = {p.pid for p in trace.processes}
    assert all(p.ppid in pids for p in workers)  # the parent's, or (forkserver) its server's
    files = sorted(name for name in os.listdir(tmp_path) if name.endswith(".xtrace"))
    assert files == sorted(["out.xtrace", *(f"out.{p.pid}.xtrace" for p in trace.processes[1:])])
    assert len({t.id for t in [*trace.threads, *trace.tasks]}) == len(trace.threads) + len(trace.tasks)


@pytest.mark.skipif(_native() is None, reason="SIGTERM finishes a trace only with the C extension")
def test_pool_workers_terminated_by_sigterm_finish_their_traces(tmp_path: Path) -> None:
    done = run_traced(tmp_path, str(CHILDREN), "terminate")
    assert "terminate [0, 1, 4, 9]" in done.stdout
    trace = complete(tmp_path / "out.xtrace")
    assert ran(trace, "square_slowly")


def test_a_python_subprocess_sees_what_it_would_untraced(tmp_path: Path) -> None:
    untraced = subprocess.run(
        [sys.executable, str(CHILDREN), "subprocess"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    done = run_traced(tmp_path, str(CHILDREN), "subprocess")
    line = done.stdout.strip().splitlines()[0]
    assert line.startswith("subprocess 7 child ['-c', 'an', 'argument'] '' __main__")
    assert line.split()[:-1] == untraced.stdout.strip().split()[:-1]  # all but whether sitecustomize was imported
    trace = complete(tmp_path / "out.xtrace")
    child = next(p for p in trace.processes if p.argv == ("-c", "an", "argument"))
    assert child.ppid == trace.processes[0].pid and child.clean_end
    assert ran(trace, "child_sleeps") == [child]


def test_a_child_ending_with_os_exit_leaves_a_readable_file(tmp_path: Path) -> None:
    done = run_traced(tmp_path, str(CHILDREN), "os_exit")
    assert "os_exit 3" in done.stdout
    with pytest.warns(TraceWarning, match=r"out\.[0-9]+\.xtrace: loaded what was readable: no END chunk"):
        trace = exectracer.load(tmp_path / "out.xtrace")
    assert [p.clean_end for p in trace.processes] == [True, False]


def test_a_child_killed_with_sigkill_leaves_what_it_recorded(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [*CLI, "run", "--flush-interval", "0.05", "-o", "out.xtrace", str(PROGRAMS / "killed_child.py")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout is not None
        pid = int(run.stdout.readline())
        child_file = tmp_path / f"out.{pid}.xtrace"

        def recorded() -> bool:
            try:
                return bool(quietly(exectracer.load, child_file, children=False).threads)
            except (OSError, exectracer.reader.TraceFormatError):
                return False

        wait_for(recorded, "the child's trace to hold its thread")
        os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err
    assert f"child status {-signal.SIGKILL}" in out
    with pytest.warns(TraceWarning, match=f"out.{pid}.xtrace: loaded what was readable: no END chunk"):
        trace = exectracer.load(tmp_path / "out.xtrace")
    child = next(p for p in trace.processes if p.pid == pid)
    assert not child.clean_end and child.ppid == trace.processes[0].pid
    assert any(t.pid == pid for t in trace.threads)


def test_no_follow_traces_the_parent_only(tmp_path: Path) -> None:
    run_traced(tmp_path, str(CHILDREN), "subprocess", "fork", options=("--no-follow",))
    assert [name for name in os.listdir(tmp_path) if name.endswith(".xtrace")] == ["out.xtrace"]
    assert len(exectracer.load(tmp_path / "out.xtrace").processes) == 1


def test_the_programs_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "sitecustomize.py").write_text("import os\nMARK = os.getpid()\n")
    (tmp_path / "prog.py").write_text(
        "import subprocess, sys\n"
        "code = 'import os, sitecustomize; print(sitecustomize.__file__, sitecustomize.MARK == os.getpid())'\n"
        "print(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout.strip())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(custom), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [*CLI, "run", "-o", "out.xtrace", "prog.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(custom / "sitecustomize.py"), "True"]  # it ran in the child
    assert len(complete(tmp_path / "out.xtrace").processes) == 2


def test_a_trace_into_a_device_is_not_followed(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "run", "-o", os.devnull, str(CHILDREN), "subprocess"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "subprocess 7 child" in done.stdout
    assert "not traced" not in done.stderr and not os.listdir(tmp_path)


def test_a_child_that_traces_itself_gets_its_own_recording(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(
        "import subprocess, sys\n"
        'code = \'import exectracer, time\\nwith exectracer.trace("own.xtrace"): time.sleep(0.05)\\nprint("ok")\'\n'
        "done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)\n"
        "print(done.returncode, done.stdout.strip(), done.stderr.strip())\n"
    )
    done = run_traced(tmp_path, "prog.py")
    assert done.stdout.strip() == "0 ok"
    own = exectracer.load(tmp_path / "own.xtrace")
    assert own.lost.clean_end and own.threads
    trace = complete(tmp_path / "out.xtrace")  # the child's recording, up to its own start, is complete
    assert len(trace.processes) == 2
