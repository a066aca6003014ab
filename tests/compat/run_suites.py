"""Run other projects' test suites untraced and under ``exectracer run``, and compare each test's outcome.

``.ci/compat`` runs this; ``suites.toml`` says what runs and ``README.md`` beside it why. For each suite: its pinned
sdist, downloaded once from PyPI into the cache and checked against its sha256; a virtual environment with its
pinned test dependencies, made once per pin set and kept, into which a wheel of this checkout is installed (built
once per state of the source, so the C extension is compiled once for all suites); then pytest runs the sdist's
tests untraced and traced, each in a fresh copy of the sdist, while a plugin (``plugin/compat_outcomes.py``) writes
every test's outcome as it ends. Every test's traced outcome must be one its untraced runs had, unless
``suites.toml`` lists the test as reviewed-flaky, and ``exectracer summary`` must read each trace. Exits 1 when
that does not hold for every suite (or a suite could not run), 0 otherwise.

    python tests/compat/run_suites.py [--suite NAME]... [--untraced-runs N] [--traced-runs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONFIG = HERE / "suites.toml"
PLUGIN_DIR = HERE / "plugin"
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "not run")
INTERRUPT_GRACE = 20.0  # seconds between SIGINT (pytest stops and reports, the trace ends) and SIGKILL
PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")

# What a suite's Python says of a trace: its events, what it lost and the recorder's warnings.
TRACE_FACTS = """
import json, sys, warnings
import exectracer
warnings.simplefilter("ignore")
trace = exectracer.load(sys.argv[1])
lost = trace.lost
print(json.dumps({
    "events": int(trace.event_count),
    "native_hooks": bool(trace.metadata.get("native_hooks")),
    "lost": {"events": lost.events_lost, "chunks skipped": lost.chunks_skipped, "chunks missing": lost.chunks_missing,
             "bytes truncated": lost.truncated_bytes},
    "clean_end": lost.clean_end,
    "hook_errors": [[e.hook, e.count, e.first] for e in lost.hook_errors],
    "warnings": list((trace.summary or {}).get("warnings") or []),
}))
"""


@dataclasses.dataclass(frozen=True)
class Skip:
    """Tests both runs leave out: a node id (or its prefix) to deselect, or pytest arguments; and why."""

    reason: str
    deselect: str = ""
    args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Suite:
    """One project's test suite, as ``suites.toml`` describes it."""

    name: str
    sdist: str
    sha256: str
    extras: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    timeout: int = 60
    limit: int = 600
    skips: tuple[Skip, ...] = ()
    flaky: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.sdist.partition("==")[0]

    @property
    def version(self) -> str:
        return self.sdist.partition("==")[2]

    def pytest_args(self) -> list[str]:
        """What both runs pass to pytest: the timeout, the suite's arguments and its skips."""
        out = [f"--timeout={self.timeout}", *self.args]
        for skip in self.skips:
            out += ["--deselect", skip.deselect] if skip.deselect else []
            out += skip.args
        return out


def read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # Python 3.11 (main says so on 3.10; importing this module needs no tomllib)

    with open(path, "rb") as f:
        return tomllib.load(f)


def load_suites(path: Path, names: Sequence[str] = ()) -> list[Suite]:
    """The suites of ``suites.toml`` (only ``names``, if given)."""
    config = read_toml(path)
    unknown = sorted(set(names) - set(config))
    if unknown:
        raise SystemExit(f"error: no suite named {', '.join(unknown)} in {path} (there are {', '.join(config)})")
    suites = []
    for name, entry in config.items():
        if names and name not in names:
            continue
        skips = []
        for skip in entry.get("skip", []):
            if not skip.get("reason") or not (skip.get("deselect") or skip.get("args")):
                raise SystemExit(f"error: {path}: each [[{name}.skip]] needs `deselect` or `args`, and a `reason`")
            skips.append(Skip(skip["reason"], skip.get("deselect", ""), tuple(skip.get("args", ()))))
        args = [*entry.get("args", ()), *(arg for skip in skips for arg in skip.args)]
        for option in ("-k", "-m"):
            if args.count(option) > 1:
                raise SystemExit(f"error: {path}: [{name}] gives {option} more than once (pytest keeps only the last)")
        flaky = {}
        for item in entry.get("flaky", []):
            if not item.get("test") or not item.get("reason"):
                raise SystemExit(f"error: {path}: each [[{name}.flaky]] needs a `test` and a `reason`")
            flaky[item["test"]] = item["reason"]
        suites.append(
            Suite(
                name=name,
                sdist=entry["sdist"],
                sha256=entry["sha256"],
                extras=tuple(entry.get("extras", ())),
                requires=tuple(entry.get("requires", ())),
                args=tuple(entry.get("args", ())),
                timeout=int(entry["timeout"]),
                limit=int(entry["limit"]),
                skips=tuple(skips),
                flaky=flaky,
            )
        )
    return suites


# -- Running pytest and reading its outcomes --------------------------------------------------------------------


@dataclasses.dataclass
class TraceCheck:
    """What ``exectracer summary`` and the trace's own record said of one traced run's trace."""

    ok: bool
    error: str = ""
    size: int = 0
    events: int = 0
    native_hooks: bool = False
    lost: list[str] = dataclasses.field(default_factory=list)  # what the trace says it lost, in words
    hook_errors: list[str] = dataclasses.field(default_factory=list)  # "hook: count (first error)"
    warnings: list[str] = dataclasses.field(default_factory=list)  # the recorder's warnings

    def describe(self) -> str:
        if not self.ok:
            return f"summary FAILED: {self.error}"
        hooks = "C hooks" if self.native_hooks else "Python hooks"
        return f"trace {self.size / 1e6:.1f} MB, {self.events:,} events ({hooks}), summary ok"


@dataclasses.dataclass
class Run:
    """One pytest run of a suite: each test's outcome, failure message and duration; how and when it ended."""

    label: str
    outcomes: dict[str, tuple[str, str]]
    durations: dict[str, float]
    status: int | None  # pytest's exit status; None when the run was killed at its limit
    seconds: float
    log: Path
    trace: TraceCheck | None = None  # for a traced run, once its trace was summarized

    def outcome(self, test: str) -> str:
        return self.outcomes.get(test, ("not run", ""))[0]

    def counts(self) -> Counter[str]:
        return Counter(outcome for outcome, _ in self.outcomes.values())

    def ended(self) -> str:
        return f"killed at its limit after {self.seconds:.0f} s" if self.status is None else f"exit {self.status}"

    def describe(self) -> str:
        counts = self.counts()
        outcomes = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
        return f"{len(self.outcomes)} tests in {self.seconds:.0f} s, {self.ended()} ({outcomes or 'no outcomes'})"


def read_outcomes(path: Path) -> tuple[dict[str, tuple[str, str]], dict[str, float]]:
    """The outcomes and durations the plugin wrote (none if the run never got to write any)."""
    outcomes: dict[str, tuple[str, str]] = {}
    durations: dict[str, float] = {}
    if not path.exists():
        return outcomes, durations
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed run may be cut
            continue
        outcomes[item["test"]] = (item["outcome"], item["message"])
        durations[item["test"]] = item.get("seconds", 0.0)
    return outcomes, durations


def pytest_command(python: Path, args: Sequence[str], outcomes: Path, trace: Path | None) -> list[str]:
    """pytest with the outcome plugin, under ``exectracer run`` when ``trace`` is given."""
    command = [str(python), "-m", "pytest"]
    if trace is not None:
        command = [str(python), "-m", "exectracer", "run", "-o", str(trace), "-m", "pytest"]
    return [*command, "-p", "compat_outcomes", f"--compat-outcomes={outcomes}", "-p", "no:cacheprovider", *args]


def run_pytest(
    python: Path, source: Path, work: Path, label: str, args: Sequence[str], limit: float, trace: Path | None = None
) -> Run:
    """One run of the tests in ``source`` (its output and outcomes in ``work``), traced into ``trace`` if given."""
    work.mkdir(parents=True, exist_ok=True)
    outcomes, log = work / "outcomes.jsonl", work / "pytest.log"
    outcomes.unlink(missing_ok=True)
    command = pytest_command(python, args, outcomes, trace)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env["PYTHONPATH"] = str(PLUGIN_DIR)
    start = time.monotonic()
    with open(log, "wb") as output:
        output.write((" ".join(command) + "\n").encode())
        output.flush()
        process = subprocess.Popen(
            command, cwd=source, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        status = wait_or_kill(process, limit)
    seconds = time.monotonic() - start
    return Run(label, *read_outcomes(outcomes), status, seconds, log)


def wait_or_kill(process: subprocess.Popen[bytes], limit: float) -> int | None:
    """The process's exit status, or None if it ran past ``limit`` s and was stopped with its process group.

    What the process leaves running in its group (a test's stray subprocess) is killed either way, so that it
    cannot disturb the next run; so is the group if the runner itself is interrupted.
    """
    try:
        status = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pass
    except BaseException:  # Ctrl-C: the group is in a session of its own and did not get it
        kill_group(process.pid)
        raise
    else:
        kill_group(process.pid)
        return status
    try:
        os.killpg(process.pid, signal.SIGINT)  # pytest stops and prints where each test was; the trace ends
        process.wait(timeout=INTERRUPT_GRACE)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    kill_group(process.pid)
    process.wait()
    return None


def kill_group(pid: int) -> None:
    """SIGKILL to what is left of the process group ``pid`` leads."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # nothing left
        return


def check_trace(python: Path, trace: Path, work: Path) -> TraceCheck:
    """``exectracer summary`` of the trace (it must succeed), then what the trace says it lost."""
    if not trace.exists():
        return TraceCheck(False, "no trace file was written")
    text = subprocess.run([str(python), "-m", "exectracer", "summary", str(trace)], capture_output=True, text=True)
    (work / "summary.txt").write_text(text.stdout + text.stderr, encoding="utf-8")
    if text.returncode != 0:
        return TraceCheck(False, last_line(text.stderr) or f"exit {text.returncode}", trace.stat().st_size)
    facts = subprocess.run([str(python), "-c", TRACE_FACTS, str(trace)], capture_output=True, text=True)
    if facts.returncode != 0:
        return TraceCheck(False, f"reading the trace: {last_line(facts.stderr)}", trace.stat().st_size)
    info = json.loads(facts.stdout)
    lost = [f"{n:,} {what}" for what, n in info["lost"].items() if n]
    lost += [] if info["clean_end"] else ["no END record"]
    hook_errors = [f"{hook}: {count} ({first})" for hook, count, first in info["hook_errors"]]
    count = sum(n for _, n, _ in info["hook_errors"])
    lost += [f"{count} hook errors"] if count else []
    return TraceCheck(
        True, "", trace.stat().st_size, info["events"], info["native_hooks"], lost, hook_errors, info["warnings"]
    )


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


# -- Comparing ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Difference:
    """A test with an outcome in a traced run that none of the untraced runs had."""

    test: str
    untraced: tuple[tuple[str, str], ...]  # (outcome, message) per untraced run
    traced: tuple[tuple[str, str], ...]  # (outcome, message) per traced run
    allowed: str  # why the difference is allowed (a reviewed-flaky test), or ""

    def describe(self) -> str:
        def runs(label: str, outcomes: tuple[tuple[str, str], ...]) -> str:
            words = [f"{outcome}" + (f" ({message})" if message else "") for outcome, message in outcomes]
            return f"{' / '.join(words)} {label}"

        return f"{self.test}: {runs('untraced', self.untraced)}, {runs('traced', self.traced)}"


@dataclasses.dataclass
class Result:
    """A suite's runs, compared."""

    name: str
    version: str = ""
    flaky: dict[str, str] = dataclasses.field(default_factory=dict)
    untraced: list[Run] = dataclasses.field(default_factory=list)
    traced: list[Run] = dataclasses.field(default_factory=list)
    problem: str = ""  # why the suite could not run at all

    def tests(self) -> list[str]:
        return sorted({test for run in [*self.untraced, *self.traced] for test in run.outcomes})

    def differences(self) -> list[Difference]:
        """The tests whose traced outcomes are not all among their untraced ones."""
        out = []
        for test in self.tests():
            before = {run.outcome(test) for run in self.untraced}
            if any(run.outcome(test) not in before for run in self.traced):
                untraced = tuple(run.outcomes.get(test, ("not run", "")) for run in self.untraced)
                traced = tuple(run.outcomes.get(test, ("not run", "")) for run in self.traced)
                out.append(Difference(test, untraced, traced, self.flaky.get(test, "")))
        return out

    def varying_untraced(self) -> list[str]:
        """Tests whose outcome differs between the untraced runs: flaky without the tracer."""
        return [test for test in self.tests() if len({run.outcome(test) for run in self.untraced}) > 1]

    def failures(self) -> list[str]:
        """Why this suite fails the step (empty when it passes)."""
        if self.problem:
            return [self.problem]
        out = []
        if not self.untraced or not self.untraced[0].outcomes:
            out.append("the untraced run ran no tests")
        for run in [*self.untraced, *self.traced]:
            if run.status not in (0, 1):  # 0: all passed, 1: some failed; else interrupted, an error, no tests
                out.append(f"the {run.label} run ended with {run.ended()} (see {run.log})")
            if run.trace is not None and not run.trace.ok:
                out.append(f"the {run.label} run's trace: {run.trace.error}")
        out += [f"differs: {d.describe()}" for d in self.differences() if not d.allowed]
        return out


# -- Setting a suite up ---------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where sdists, wheels and virtual environments are kept between runs."""
    if os.environ.get("EXECTRACER_COMPAT_CACHE"):
        return Path(os.environ["EXECTRACER_COMPAT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "exectracer-compat"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(suite: Suite, cache: Path) -> Path:
    """The suite's sdist from the cache, downloaded from PyPI first if it is not there; its checksum verified."""
    folder = cache / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.tar.gz"):
        if sha256_of(path) == suite.sha256:
            return path
    with tempfile.TemporaryDirectory(dir=folder) as download:
        pip = [sys.executable, *PIP, "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", download]
        subprocess.run([*pip, suite.sdist], check=True)
        (got,) = Path(download).glob("*.tar.gz")
        if sha256_of(got) != suite.sha256:
            raise RuntimeError(f"{got.name} from PyPI has sha256 {sha256_of(got)}, suites.toml says {suite.sha256}")
        return got.replace(folder / got.name)


def exectracer_sources() -> Iterator[Path]:
    """The files of this checkout a wheel is built from."""
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "src/exectracer_pytest.py"):
        yield REPO / name
    for path in sorted((REPO / "src" / "exectracer").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".so", ".pyd", ".pyc"):
            yield path


def exectracer_wheel(cache: Path) -> Path:
    """A wheel of this checkout, C extension included: built once per state of its source and kept."""
    digest = hashlib.sha256()
    for path in exectracer_sources():
        digest.update(f"{path.relative_to(REPO)}\0{path.stat().st_size}\0".encode() + path.read_bytes())
    folder = cache / "wheels" / f"{sys.implementation.cache_tag}-{digest.hexdigest()[:16]}"
    built = sorted(folder.glob("exectracer-*.whl"))
    if built:
        return built[0]
    print("   building a wheel of this checkout (its C extension once for all suites)", flush=True)
    shutil.rmtree(folder.parent, ignore_errors=True)  # older builds
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "exectracer"  # a copy, so that the build leaves nothing in the checkout
        for path in exectracer_sources():
            target = copy / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        wheels = Path(tmp) / "wheels"
        subprocess.run(
            [sys.executable, *PIP, "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(copy)], check=True
        )
        (wheel,) = wheels.glob("exectracer-*.whl")
        folder.mkdir(parents=True)
        return Path(shutil.copy2(wheel, folder / wheel.name))


def ensure_venv(suite: Suite, sdist: Path, wheel: Path, cache: Path) -> Path:
    """The suite's virtual environment (made once per Python and pin set, then kept), with ``wheel`` installed."""
    deps = read_toml(REPO / "pyproject.toml")["project"]["dependencies"]  # exectracer's own
    key = json.dumps([sys.version, suite.sdist, suite.sha256, suite.extras, suite.requires, deps])
    venv = cache / "venvs" / f"{suite.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if not (venv / "ready").exists():
        for old in venv.parent.glob(f"{suite.name}-*"):
            shutil.rmtree(old)
        print(f"   making {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        extras = f"[{','.join(suite.extras)}]" if suite.extras else ""
        install = [str(python), *PIP, "install", "--quiet", f"{suite.project}{extras} @ {sdist.as_uri()}"]
        subprocess.run([*install, *suite.requires, *deps], check=True)
        (venv / "ready").touch()
    marker = venv / "exectracer-wheel"
    if not marker.exists() or marker.read_text() != str(wheel):
        subprocess.run(
            [str(python), *PIP, "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)], check=True
        )
        marker.write_text(str(wheel))
    return python


def extract(sdist: Path, dest: Path) -> Path:
    """A fresh copy of the sdist's files under ``dest``; returns its top folder."""
    shutil.rmtree(dest, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python 3.11 before 3.11.4; the sdist's checksum was verified
            tar.extractall(dest)
    (top,) = dest.iterdir()
    return top


def run_suite(suite: Suite, cache: Path, out: Path, untraced_runs: int, traced_runs: int) -> Result:
    """Fetch and install the suite, run it untraced then traced, and check each trace."""
    result = Result(suite.name, suite.version, suite.flaky)
    try:
        sdist = fetch_sdist(suite, cache)
        python = ensure_venv(suite, sdist, exectracer_wheel(cache), cache)
    except (OSError, RuntimeError, ValueError, subprocess.CalledProcessError) as e:
        result.problem = f"could not be set up: {e}"
        return result
    print(f"   pytest {shlex.join(suite.pytest_args())}", flush=True)
    for traced, count in ((False, untraced_runs), (True, traced_runs)):
        for i in range(count):
            label = ("traced" if traced else "untraced") + (f" {i + 1}" if count > 1 else "")
            work = out / suite.name / label.replace(" ", "-")
            trace = work / "trace.xtrace" if traced else None
            run = run_pytest(python, extract(sdist, work / "src"), work, label, suite.pytest_args(), suite.limit, trace)
            shutil.rmtree(work / "src", ignore_errors=True)
            if trace is not None:
                run.trace = check_trace(python, trace, work)
            (result.traced if traced else result.untraced).append(run)
            print(f"   {label + ':':<11} {run.describe()}", flush=True)
            if run.trace is not None:
                print(f"   {'':<11} {run.trace.describe()}", flush=True)
    return result


# -- Reporting ------------------------------------------------------------------------------------------------------


def seconds(runs: list[Run]) -> str:
    return ", ".join(f"{run.seconds:.0f} s" for run in runs) or "-"


def table(results: list[Result]) -> str:
    """One line per suite: tests, how many are identical, durations, trace sizes."""
    header = ["suite", "tests", "identical", "differ", "allowed", "untraced", "traced", "trace", "summary", "lost"]
    rows = [header]
    for r in results:
        if r.problem:
            rows.append([r.name, *["-"] * 8, r.problem])
            continue
        differences = r.differences()
        allowed = sum(bool(d.allowed) for d in differences)
        checks = [run.trace for run in r.traced if run.trace is not None]
        rows.append(
            [
                f"{r.name} {r.version}",
                str(len(r.tests())),
                str(len(r.tests()) - len(differences)),
                str(len(differences) - allowed),
                str(allowed),
                seconds(r.untraced),
                seconds(r.traced),
                ", ".join(f"{check.size / 1e6:.1f} MB" for check in checks) or "-",
                ", ".join("ok" if check.ok else "FAILED" for check in checks) or "-",
                "; ".join(", ".join(check.lost) or "none" for check in checks) or "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def report(results: list[Result], out: Path, elapsed: float) -> bool:
    """Print the table, the differences and what else deserves a look; whether every suite passed."""
    print("\n" + table(results) + "\n")
    ok = True
    for r in results:
        for d in r.differences():
            if d.allowed:
                print(f"{r.name}: allowed (reviewed flaky: {d.allowed}): {d.describe()}")
        for test in r.varying_untraced():
            if test not in r.flaky:
                print(f"{r.name}: varies between untraced runs (flaky without the tracer; review it): {test}")
        for run in r.traced:
            for error in run.trace.hook_errors if run.trace else []:
                print(f"{r.name}: the {run.label} run's hooks caught errors (the trace counts them): {error}")
            for warning in run.trace.warnings if run.trace else []:
                print(f"{r.name}: the recorder warned in the {run.label} run: {warning}")
        failures = r.failures()
        if failures:
            ok = False
            print(f"{r.name}: FAILED:")
            for line in failures:
                print(f"  {line}")
    print(f"logs, outcomes and traces: {out}")
    verdict = "every suite behaves the same traced" if ok else "FAILED"
    print(f"compat: {verdict} ({len(results)} suite(s) in {elapsed / 60:.1f} min)", flush=True)
    return ok


def save(results: list[Result], path: Path) -> None:
    """Every run's outcomes, durations and trace check, as one JSON document (for looking back at a run)."""

    def run_doc(run: Run) -> dict[str, object]:
        tests = {test: [*run.outcomes[test], run.durations.get(test, 0.0)] for test in sorted(run.outcomes)}
        trace = dataclasses.asdict(run.trace) if run.trace else None
        return {"label": run.label, "status": run.status, "seconds": run.seconds, "trace": trace, "tests": tests}

    doc = {
        r.name: {
            "version": r.version,
            "problem": r.problem,
            "untraced": [run_doc(run) for run in r.untraced],
            "traced": [run_doc(run) for run in r.traced],
            "differences": [dataclasses.asdict(d) for d in r.differences()],
        }
        for r in results
    }
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--suite", action="append", default=[], help="run only this suite (repeatable)")
    parser.add_argument("--untraced-runs", type=int, default=1, help="untraced runs per suite [1]")
    parser.add_argument("--traced-runs", type=int, default=1, help="traced runs per suite [1]")
    parser.add_argument("--out", type=Path, help="where logs, outcomes and traces go [CACHE/last-run]")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 11):
        parser.error("needs Python 3.11 or newer (tomllib)")
    if args.untraced_runs < 1 or args.traced_runs < 1:
        parser.error("each suite needs at least one untraced and one traced run")
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # a shell's background job ignores SIGINT, and its children would too: anyio's tests that interrupt
        # themselves with it failed, traced and untraced alike
        signal.signal(signal.SIGINT, signal.default_int_handler)
    suites = load_suites(CONFIG, args.suite)
    cache = cache_dir()
    out = (args.out or cache / "last-run").resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"compat: {len(suites)} suite(s) on Python {sys.version.split()[0]}; cache {cache}", flush=True)
    start = time.monotonic()
    results = []
    for suite in suites:
        print(f"== {suite.name} {suite.version}", flush=True)
        results.append(run_suite(suite, cache, out, args.untraced_runs, args.traced_runs))
    save(results, out / "results.json")
    return 0 if report(results, out, time.monotonic() - start) else 1


if __name__ == "__main__":
    sys.exit(main())
