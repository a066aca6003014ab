"""The compatibility runner (tests/compat/run_suites.py) on a tiny suite, run untraced and through `exectracer run`."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from compat.run_suites import Result, Run, check_trace, report, run_pytest

PYTHON = Path(sys.executable)
ARGS = ["--timeout=60"]  # what the runner passes to every suite, besides the suite's own arguments

TESTS = """
    import sys

    import pytest


    def test_adds():
        assert 1 + 1 == 2


    def test_sees_no_tracer():  # the one test that notices it is traced
        assert "exectracer" not in sys.modules


    @pytest.fixture
    def broken():
        raise RuntimeError("setup failed")


    def test_setup_error(broken):
        pass


    def test_skipped():
        pytest.skip("not here")


    @pytest.mark.xfail(strict=True)
    def test_xfailed():
        assert False
"""


def test_a_difference_only_traced_is_found_and_the_trace_summarized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_tiny.py").write_text(textwrap.dedent(TESTS))

    untraced = run_pytest(PYTHON, project, tmp_path / "untraced", "untraced", ARGS, limit=300)
    trace = tmp_path / "traced" / "trace.xtrace"
    traced = run_pytest(PYTHON, project, tmp_path / "traced", "traced", ARGS, limit=300, trace=trace)
    traced.trace = check_trace(PYTHON, trace, tmp_path / "traced")

    words = {test.partition("::")[2]: outcome for test, (outcome, _) in untraced.outcomes.items()}
    assert words == {
        "test_adds": "passed",
        "test_sees_no_tracer": "passed",
        "test_setup_error": "error",
        "test_skipped": "skipped",
        "test_xfailed": "xfailed",
    }
    assert untraced.status == traced.status == 1
    assert untraced.outcomes["test_tiny.py::test_setup_error"][1] == "RuntimeError: setup failed"
    assert traced.trace.ok and traced.trace.events > 0, traced.trace
    assert (tmp_path / "traced" / "summary.txt").read_text().startswith("Trace ")

    result = Result("tiny", untraced=[untraced], traced=[traced])
    (difference,) = result.differences()
    assert difference.test == "test_tiny.py::test_sees_no_tracer"
    assert difference.untraced == (("passed", ""),)
    assert difference.traced[0][0] == "failed" and "exectracer" in difference.traced[0][1]
    assert [line.partition(":")[0] for line in result.failures()] == ["differs"]
    assert not report([result], tmp_path, 1.0)
    printed = capsys.readouterr().out
    assert "tiny: FAILED" in printed and "passed untraced, failed" in printed

    reviewed = Result("tiny", flaky={difference.test: "a reason"}, untraced=[untraced], traced=[traced])
    assert reviewed.failures() == []
    assert report([reviewed], tmp_path, 1.0)


def run(label: str, outcomes: dict[str, str], status: int | None = 1) -> Run:
    return Run(label, {test: (word, "") for test, word in outcomes.items()}, {}, status, 1.0, Path("log"))


def test_an_outcome_any_untraced_run_had_is_no_difference() -> None:
    result = Result(
        "s",
        untraced=[run("untraced 1", {"a": "passed", "b": "passed"}), run("untraced 2", {"a": "failed", "b": "passed"})],
        traced=[run("traced", {"a": "failed", "b": "passed"})],
    )
    assert result.differences() == [] and result.failures() == []
    assert result.varying_untraced() == ["a"]


def test_tests_a_traced_run_did_not_reach_and_a_killed_run_fail_it() -> None:
    result = Result(
        "s",
        untraced=[run("untraced", {"a": "passed", "b": "passed"})],
        traced=[run("traced", {"a": "passed"}, status=None)],
    )
    (difference,) = result.differences()
    assert difference.test == "b" and difference.traced == (("not run", ""),)
    failures = result.failures()
    assert len(failures) == 2 and "killed at its limit" in failures[0]
