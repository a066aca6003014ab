"""Hooks for modules imported after tracing started (asyncio, ssl, subprocess, thread pools)."""

from __future__ import annotations

import importlib.machinery
import json
import subprocess
import sys
import traceback
import types
from pathlib import Path

import pytest

import exectracer
from exectracer.format.events import CATEGORY_SHIFT, Category, Kind
from exectracer.record.imports import ImportHooks

pytestmark = pytest.mark.recorder

PROGRAM = Path(__file__).parent / "programs" / "late_imports.py"


def test_modules_imported_after_start_are_hooked_then_restored(tmp_path):
    path = tmp_path / "late.xtrace"
    done = subprocess.run(
        [sys.executable, str(PROGRAM), str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout)
    assert report["imported_at_start"] == []  # starting did not import them
    assert report["loader_restored"] and report["hooked"]
    assert report["restored"] and report["finders_left"] == []
    trace = exectracer.load(path)
    assert {"__main__.main.<locals>.pooled", "asyncio.tasks.sleep"} <= {task.start_function for task in trace.tasks}
    kinds = set(trace.events.kind.tolist())
    assert {Kind.TASK_STEP, Kind.POOL_SUBMIT, Kind.POOL_WORK_BEGIN} <= kinds
    names = {thread.id: thread.name for thread in trace.threads}
    waits = [
        (
            names.get(int(g)),
            Category(int(a) & ((1 << CATEGORY_SHIFT) - 1)),
            trace.stacks[int(a) >> CATEGORY_SHIFT][0].function,
        )
        for a, g in zip(
            trace.events.arg[trace.events.kind == Kind.THREAD_BLOCK],
            trace.events.g[trace.events.kind == Kind.THREAD_BLOCK],
            strict=True,
        )
    ]
    # the selector wrapped again around the asyncio hooks: the wait's innermost frame is its caller's
    assert ("selecting", Category.NETWORK, "__main__.wait_in_selector") in waits
    assert ("MainThread", Category.SYSCALL, "subprocess.run") in waits  # Popen.wait, hooked once subprocess came


def test_a_failing_hook_warns_and_the_import_goes_on(tmp_path, monkeypatch):
    (tmp_path / "late_a.py").write_text("VALUE = 1\n")
    (tmp_path / "late_b.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    warned, seen = [], []

    def broken(module: types.ModuleType) -> None:
        raise RuntimeError("no")

    hooks = ImportHooks(warned.append)
    hooks.when_imported("late_a", broken)
    hooks.when_imported("late_a", seen.append)
    hooks.when_imported("late_b", seen.append)
    try:
        import late_a

        assert late_a.VALUE == 1 and seen == [late_a]
        assert warned == ["hooks for late_a not installed: RuntimeError: no"]
        assert late_a.__spec__.loader is late_a.__loader__ and type(late_a.__loader__).__name__ == "SourceFileLoader"
        assert hooks in sys.meta_path  # late_b still waited for
        hooks.close()
        assert hooks not in sys.meta_path
        import late_b

        assert late_b.VALUE == 2 and seen == [late_a]  # closed: nothing installed any more
    finally:
        hooks.close()
        for name in ("late_a", "late_b"):
            sys.modules.pop(name, None)


def test_a_module_already_imported_is_hooked_at_once():
    seen = []
    hooks = ImportHooks(seen.append)
    hooks.when_imported("json", seen.append)
    assert seen == [json] and hooks not in sys.meta_path


@pytest.mark.parametrize("error", ["KeyboardInterrupt", "ValueError('bad module')"])
def test_an_import_that_fails_shows_no_frame_of_the_tracer_and_is_still_waited_for(tmp_path, monkeypatch, error):
    """A Ctrl-C (or an error) while a waited-for module's code runs: the traceback is the one untraced."""
    module = tmp_path / "late_fails.py"
    module.write_text(f"import os\nif not os.environ.get('LATE_OK'):\n    raise {error}\nVALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list = []
    hooks = ImportHooks(seen.append)
    hooks.when_imported("late_fails", seen.append)
    try:
        with pytest.raises(BaseException) as raised:
            import late_fails
        files = [frame.filename for frame in traceback.extract_tb(raised.value.__traceback__)]
        assert files[-1] == str(module) and not any("exectracer" in name for name in files), files
        assert seen == [] and hooks in sys.meta_path and "late_fails" not in sys.modules

        monkeypatch.setenv("LATE_OK", "1")
        import late_fails

        assert late_fails.VALUE == 3 and seen == [late_fails]
        assert type(late_fails.__spec__) is importlib.machinery.ModuleSpec and not late_fails.__spec__._initializing
    finally:
        hooks.close()
        sys.modules.pop("late_fails", None)
