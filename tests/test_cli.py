"""The ``exectracer`` command, run for real in subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import textwrap
import threading
import zipapp
import zipfile
from pathlib import Path

import click
import pytest

import exectracer
from exectracer import cli as cli_module
from exectracer.format.chunks import MAGIC
from exectracer.format.events import Category, Kind

ENTRY_POINTS = {
    "console script": [str(Path(sysconfig.get_path("scripts")) / "exectracer")],
    "python -m": [sys.executable, "-m", "exectracer"],
}

REPORT = """
import json, sys
import exectracer
print(json.dumps({
    "argv": sys.argv, "name": __name__, "path0": sys.path[0], "tracing": exectracer.is_tracing(),
    "numpy": "numpy" in sys.modules,
}))
"""


def run_cli(*args: str, cwd: Path, entry: str = "python -m", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*ENTRY_POINTS[entry], *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def load_finished(path: Path) -> exectracer.Trace:
    """The trace at ``path``, checking that it was stopped cleanly and lost nothing."""
    assert path.read_bytes().startswith(MAGIC)
    trace = exectracer.load(path, strict=True)
    assert trace.lost.complete
    return trace


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_run_script_sees_what_python_gives_it(tmp_path: Path, entry: str) -> None:
    write(tmp_path / "sub" / "prog.py", REPORT + "sys.exit(3)\n")
    args = ["a", "-o", "not-ours", "--help"]  # options after the script belong to the script

    result = run_cli("run", "-o", "out.xtrace", "sub/prog.py", *args, cwd=tmp_path, entry=entry)

    assert result.returncode == 3, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "argv": ["sub/prog.py", *args],
        "name": "__main__",
        "path0": str((tmp_path / "sub").resolve()),
        "tracing": True,
        "numpy": False,
    }
    assert load_finished(tmp_path / "out.xtrace").metadata["argv"] == seen["argv"]
    assert "out.xtrace" in result.stderr and "events" in result.stderr


GLOBALS = """
import json, sys, traceback
def where():
    return traceback.extract_stack()[-1].filename
print(json.dumps({
    "argv": sys.argv, "file": __file__, "package": __package__, "spec": repr(__spec__), "cached": __cached__,
    "loader": type(__loader__).__name__, "code": where(), "main": sys.modules["__main__"].where is where,
}))
"""


ARCHIVE_GLOBALS = GLOBALS.replace('"argv": sys.argv,', '"argv": sys.argv, "path0": sys.path[0],')


@pytest.mark.parametrize("given", ["app", "./app/", "sub/../app", "app.zip", "./app.zip", "app.pyz"])
def test_run_directory_or_zip_has_the_globals_python_gives_it(tmp_path: Path, given: str) -> None:
    """A directory or zip archive with a ``__main__.py``: ``__file__``, ``sys.path[0]`` and the rest as in python
    (absolute, not normalised), ``sys.argv[0]`` as given."""
    main = write(tmp_path / "app" / "__main__.py", ARCHIVE_GLOBALS)
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as archive:
        archive.write(main, "__main__.py")
    zipapp.create_archive(tmp_path / "app", tmp_path / "app.pyz", interpreter=sys.executable)  # starts with #!
    (tmp_path / "sub").mkdir()
    untraced = subprocess.run([sys.executable, given], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    traced = run_cli("run", "-o", "out.xtrace", given, cwd=tmp_path)

    assert untraced.returncode == traced.returncode == 0, traced.stderr
    assert without_addresses(traced.stdout) == without_addresses(untraced.stdout)
    assert os.path.isabs(json.loads(traced.stdout)["file"])


def without_addresses(output: str) -> dict:
    """The JSON a program printed, with the objects' addresses in reprs (its loader's) left out."""
    return json.loads(re.sub(r" at 0x[0-9a-f]+", "", output))


@pytest.mark.parametrize("given", ["prog.py", "./prog.py", "sub/../prog.py"])
def test_run_script_has_the_globals_python_gives_it(tmp_path: Path, given: str) -> None:
    """``__file__`` and the code's file name absolute (not normalised), ``sys.argv[0]`` as given, as in python."""
    write(tmp_path / "prog.py", GLOBALS)
    (tmp_path / "sub").mkdir()
    untraced = subprocess.run([sys.executable, given], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    traced = run_cli("run", "-o", "out.xtrace", given, cwd=tmp_path)

    assert untraced.returncode == traced.returncode == 0, traced.stderr
    assert json.loads(traced.stdout) == json.loads(untraced.stdout)
    assert json.loads(traced.stdout)["file"] == os.path.join(str(tmp_path), given)


def test_run_module_like_python_m(tmp_path: Path) -> None:
    tool = write(tmp_path / "pkg" / "tool.py", REPORT)
    write(tmp_path / "pkg" / "__init__.py", "")

    result = run_cli(
        "run",
        "--no-gc",
        "--no-threads",
        "--no-asyncio",
        "--flush-interval",
        "0.1",
        "-m",
        "pkg.tool",
        "x",
        "-m",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == [str(tool), "x", "-m"]
    assert seen["name"] == "__main__"
    assert seen["path0"] == str(tmp_path)
    assert load_finished(tmp_path / "pkg.tool.xtrace").metadata["argv"] == seen["argv"]


def test_run_package_runs_its_main(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    main = write(tmp_path / "pkg" / "__main__.py", REPORT)

    result = run_cli("run", "-o", "t.xtrace", "-m", "pkg", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["argv"] == [str(main)]


PROGRAMS = {
    "uncaught exception": """
        def fail():
            raise ValueError("boom")
        fail()
    """,
    "exit with a message": """
        import sys
        sys.exit("giving up")
    """,
    "keyboard interrupt": """
        raise KeyboardInterrupt
    """,
    "non-daemon thread and idle executor": """
        import atexit, concurrent.futures, threading, time
        concurrent.futures.ThreadPoolExecutor(2).submit(time.sleep, 0.05)
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread done", flush=True))).start()
        atexit.register(print, "atexit ran")
    """,
}


@pytest.mark.parametrize("program", PROGRAMS)
def test_run_ends_like_python(tmp_path: Path, program: str) -> None:
    write(tmp_path / "prog.py", PROGRAMS[program])
    plain = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    traced = run_cli("run", "prog.py", cwd=tmp_path)

    assert traced.returncode == plain.returncode, traced.stderr
    assert traced.stdout == plain.stdout
    # the same traceback or message (apart from the script's path), and our one-line report
    lines = traced.stderr.splitlines(keepends=True)
    report = [line for line in lines if line.startswith("exectracer: ")]
    assert len(report) == 1 and "written to prog.xtrace" in report[0], traced.stderr
    lines.remove(report[0])
    assert "".join(lines) == plain.stderr
    load_finished(tmp_path / "prog.xtrace")


def test_uncaught_exception_shows_only_the_programs_frames(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", PROGRAMS["uncaught exception"])

    result = run_cli("run", "prog.py", cwd=tmp_path)

    assert result.returncode == 1
    first = f'Traceback (most recent call last):\n  File "{tmp_path}/prog.py", line 4, in <module>'
    assert result.stderr.startswith(first)
    assert "ValueError: boom" in result.stderr
    assert "runpy" not in result.stderr and "exectracer" not in result.stderr.split("ValueError: boom")[0]


def test_keyboard_interrupt_exits_by_sigint(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", PROGRAMS["keyboard interrupt"])

    result = run_cli("run", "prog.py", cwd=tmp_path, entry="console script")

    assert result.returncode == -signal.SIGINT
    assert result.stderr.count("Traceback") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "missing.py"],
        ["run", "--bogus", "prog.py"],
        ["run", "--flush-interval", "0", "prog.py"],
        ["run", "--flush-interval", "soon", "prog.py"],
        ["run", "-m", "no_such_module_for_exectracer"],
        ["run", "-m", "no_such_package_for_exectracer.sub"],
        ["run", "-m", "pkg"],  # a package without __main__
        ["run", "-o", "no/such/dir/t.xtrace", "prog.py"],
        ["demo", "--seconds", "-1"],
        ["demo", "-o", "no/such/dir/t.xtrace"],
        ["frobnicate"],
    ],
    ids=" ".join,
)
def test_usage_errors_are_one_clear_line(tmp_path: Path, args: list[str]) -> None:
    write(tmp_path / "prog.py", "raise SystemExit('the program must not run')\n")
    write(tmp_path / "pkg" / "__init__.py", "")

    result = run_cli(*args, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("exectracer: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.xtrace"))


def test_demo_writes_a_trace(tmp_path: Path) -> None:
    result = run_cli("demo", "-o", "demo.xtrace", "--seconds", "0.6", "--no-view", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "demo.xtrace" in result.stdout and "events" in result.stdout
    trace = load_finished(tmp_path / "demo.xtrace")
    assert {task.name for task in trace.user_tasks} == {"request", "serve"}
    assert {"send", "wait for reply", "handle request", "update metrics", "housekeeping"} <= set(trace.regions.name)
    assert set(trace.logs.category) == {"request", "reply"}
    waits = set(trace.suspend_reasons().category.tolist())
    assert {Category.NETWORK, Category.SYNC, Category.SLEEP, Category.SYSCALL} <= waits
    assert (trace.events.kind == Kind.GC_START).any()
    assert any(thread.name.startswith("asyncio_") for thread in trace.threads)  # to_thread's workers


def test_example_service_runs_standalone(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exectracer.examples.service", "--seconds", "0.6"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("served ")


def test_example_service_main_reports_its_work() -> None:
    from exectracer.examples import service

    stats = service.main(0.6)

    assert stats.requests >= stats.clients
    # one collection every GC_INTERVAL (0.5 s) while the clients run, each freeing the 20 000 nodes it made
    # (a second one if the clients' last requests took long)
    assert stats.collections >= 1
    assert stats.garbage >= 20_000 * stats.collections


@pytest.mark.parametrize("args", [["--help"], []])
def test_help(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(*args, cwd=tmp_path)

    assert result.returncode == 0
    assert "run" in result.stdout and "demo" in result.stdout


def test_version() -> None:
    result = run_cli("--version", cwd=Path.cwd(), entry="console script")

    assert result.returncode == 0 and result.stdout.strip() == f"exectracer {exectracer.__version__}"


@pytest.mark.parametrize(("command", "blas_threads"), [("summary", "1"), ("view", "1"), ("run", None), ("demo", None)])
def test_only_reading_commands_keep_blas_to_one_thread(
    command: str, blas_threads: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    monkeypatch.setattr(os, "environ", environ)  # a copy: the real environment is left alone
    ctx = click.Context(cli_module.cli, info_name="exectracer")
    ctx.invoked_subcommand = command
    with ctx:
        ctx.invoke(cli_module.cli.callback)
    assert environ.get("OPENBLAS_NUM_THREADS") == blas_threads  # a traced program keeps its own settings


def test_progress_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Terminal(False))
    with cli_module._progress(total=3, desc="reading trace") as bar:
        bar.update(2)
    assert type(bar).__name__ == "_NoProgress"
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # no monitor thread left behind for later tests to see
    monkeypatch.setattr(sys, "stderr", Terminal(True))
    with cli_module._progress(total=3, desc="reading trace") as bar:
        bar.update(2)
        assert bar.n == 2  # tqdm's
    assert not [
        t.name for t in threading.enumerate() if t.name != "MainThread" and "monitor" in type(t).__name__.lower()
    ]
