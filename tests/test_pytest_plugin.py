"""The pytest plugin (``pytest --exectracer=DIR``), in real pytest sessions run as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import exectracer
from exectracer.analysis.states import State
from exectracer.pytest_plugin import trace_name

TESTS = textwrap.dedent(
    """
    import threading, time
    import pytest

    @pytest.fixture
    def slow_fixture():
        time.sleep(0.05)
        yield
        time.sleep(0.05)

    def test_waits_on_a_lock(slow_fixture):
        lock = threading.Lock()
        lock.acquire()
        threading.Timer(0.1, lock.release).start()
        with lock:
            pass

    def test_slow():
        time.sleep(SLOW)

    def test_fails():
        assert 1 == 2

    @pytest.mark.xfail(reason="expected")
    def test_expected_to_fail():
        assert False
    """
)
SLOW = 2.0  # seconds test_slow sleeps
THRESHOLD = 1.0  # --exectracer-slower-than: far below SLOW, far above what the other tests take


def run_pytest(directory: Path, *args: str, files: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real pytest session over ``files`` (default: ``TESTS`` as test_sample.py) in ``directory``."""
    for name, text in (files or {"test_sample.py": TESTS.replace("SLOW", repr(SLOW))}).items():
        (directory / name).write_text(text)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "EXECTRACER_PURE"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_each_test_is_traced_into_its_own_file_fixtures_included(tmp_path: Path) -> None:
    out = tmp_path / "traces"
    done = run_pytest(tmp_path, f"--exectracer={out}", "-k", "lock or fails or expected")
    assert done.returncode == 1, done.stdout  # test_fails failed
    names = sorted(path.name for path in out.glob("*.xtrace"))
    expected = [f"test_sample.py::{name}" for name in ("test_waits_on_a_lock", "test_fails", "test_expected_to_fail")]
    assert names == sorted(trace_name(nodeid) for nodeid in expected)
    trace = exectracer.load(out / trace_name(expected[0]), strict=True)
    states = trace.analysis.states
    stacks = trace.stacks
    waits = {
        (State(int(state)).name, stacks[int(stack)][0].function)
        for state, stack in zip(states.state, states.stack, strict=True)
        if state in (State.SLEEP, State.SYNC) and stack >= 0 and stacks[int(stack)]
    }
    # the fixture's sleeps (setup and teardown) and the test's lock wait, in the test's own trace
    assert ("SLEEP", "test_sample.slow_fixture") in waits
    assert ("SYNC", "test_sample.test_waits_on_a_lock") in waits
    assert "exectracer" in done.stdout and "3 trace(s) kept" in done.stdout


def test_only_slow_or_failed_tests_keep_their_traces(tmp_path: Path) -> None:
    for args, kept in (
        ([f"--exectracer-slower-than={THRESHOLD}"], {"test_slow"}),
        (["--exectracer-failed"], {"test_fails"}),
        ([f"--exectracer-slower-than={THRESHOLD}", "--exectracer-failed"], {"test_slow", "test_fails"}),
    ):
        out = tmp_path / f"traces{len(args)}{args[0][13:15]}"
        done = run_pytest(tmp_path, f"--exectracer={out}", *args)
        assert done.returncode == 1, done.stdout
        assert {path.name for path in out.glob("*.xtrace")} == {
            trace_name(f"test_sample.py::{name}") for name in kept
        }, args
        for name in kept:
            assert f"test_sample.py::{name}" in done.stdout


def test_the_summary_lists_each_kept_trace_with_its_top_waits(tmp_path: Path) -> None:
    out = tmp_path / "traces"
    done = run_pytest(tmp_path, f"--exectracer={out}", f"--exectracer-slower-than={THRESHOLD}")
    summary = done.stdout[done.stdout.index("exectracer") :]
    assert f"1 trace(s) kept in {out} (tests slower than {THRESHOLD:g} s)" in summary
    assert str(out / trace_name("test_sample.py::test_slow")) in summary
    assert any(
        line.split()[0] == "sleep" and "test_sample.test_slow (test_sample.py:" in line
        for line in summary.splitlines()
        if line.strip()
    )


ASYNC_TESTS = textwrap.dedent(
    """
    import asyncio
    import pytest

    @pytest.mark.asyncio
    async def test_on_pytest_asyncio():
        await asyncio.sleep(0.05)

    @pytest.mark.anyio
    @pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
    async def test_on_anyio(anyio_backend):
        import anyio
        await anyio.sleep(0.05)
    """
)


def test_async_tests_of_pytest_asyncio_and_anyio_record_their_tasks(tmp_path: Path) -> None:
    pytest.importorskip("pytest_asyncio")
    pytest.importorskip("trio")
    out = tmp_path / "traces"
    done = run_pytest(tmp_path, f"--exectracer={out}", files={"test_async.py": ASYNC_TESTS})
    assert done.returncode == 0, done.stdout + done.stderr
    nodeids = [
        "test_async.py::test_on_pytest_asyncio",
        *(f"test_async.py::test_on_anyio[{b}]" for b in ("asyncio", "trio")),
    ]
    for nodeid in nodeids:
        trace = exectracer.load(out / trace_name(nodeid), strict=True)
        sleeps = trace.analysis.profile("sleep")
        stacks = [{frame.function for frame in sleeps.stack_frames(int(stack))} for stack in sleeps.stacks]
        test_function = "test_async." + nodeid.split("::")[1].split("[")[0]
        assert trace.tasks and any(test_function in functions for functions in stacks), (nodeid, stacks)


def test_xdist_workers_trace_the_tests_they_run_and_the_controller_lists_them(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    out = tmp_path / "traces"
    done = run_pytest(tmp_path, f"--exectracer={out}", "-n", "2", "-k", "not slow")
    assert done.returncode == 1, done.stdout + done.stderr
    names = {path.name for path in out.glob("*.xtrace")}
    expected = [f"test_sample.py::{name}" for name in ("test_waits_on_a_lock", "test_fails", "test_expected_to_fail")]
    assert names == {trace_name(nodeid) for nodeid in expected}
    assert "3 trace(s) kept" in done.stdout
    for nodeid in expected:
        assert nodeid in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exectracer-failed"], "--exectracer-slower-than and --exectracer-failed need --exectracer=DIR"),
        (["--exectracer=DIR", "--exectracer-slower-than=soon"], "not a number of seconds: 'soon'"),
        (["--exectracer=DIR", "--exectracer-slower-than=-1"], "must be 0 or more"),
        (["--exectracer=a_file"], "exists and is not a directory"),
    ],
)
def test_bad_options_get_a_one_line_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "a_file").write_text("")
    done = run_pytest(tmp_path, *[arg.replace("DIR", str(tmp_path / "out")) for arg in args])
    assert done.returncode == 4, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_without_the_option_the_plugin_loads_nothing_of_exectracer(tmp_path: Path) -> None:
    check = textwrap.dedent(
        """
        import sys

        def test_untouched():
            assert not [name for name in sys.modules if name.startswith(("exectracer.", "numpy"))]
            assert "exectracer" not in sys.modules and "exectracer_pytest" in sys.modules
        """
    )
    done = run_pytest(tmp_path, "-p", "no:anyio", "-p", "no:asyncio", "-p", "no:xdist", files={"test_check.py": check})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trace(s) kept" not in done.stdout


def test_tests_run_under_exectracer_run_are_not_traced_twice(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    # what pytest does to a package installed from a wheel with a pytest11 entry point (editable installs escape it)
    (tmp_path / "conftest.py").write_text("import pytest\n\npytest.register_assert_rewrite('exectracer')\n")
    out = tmp_path / "traces"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exectracer",
            "run",
            "-o",
            str(tmp_path / "all.xtrace"),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",  # pytest-asyncio 1.x warns of its own unset options, which -W error would fail on
            "-W",
            "error",  # as suites that make warnings errors run it: pytest must not warn of exectracer imported first
            f"--exectracer={out}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 test(s) not traced: tracing was already running" in done.stdout
    assert not list(out.glob("*.xtrace"))
