"""``%load_ext exectracer`` and ``%%exectrace`` in a real notebook, run by nbclient on a real ipykernel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import exectracer
from exectracer.analysis.states import State
from exectracer.jupyter import YIELD_FIRST, MagicError, parse_magic, strip_magic

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def run_notebook(cells: list[str], directory: Path) -> list[list[dict]]:
    """Each cell's outputs after running the notebook in a fresh kernel (errors kept as outputs)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(directory)}},
    )
    client.execute()
    return [cell.outputs for cell in notebook.cells]


def html_of(outputs: list[dict]) -> list[str]:
    return [output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})]


@pytest.mark.timeout(300)
def test_a_traced_cell_with_top_level_await_shows_its_summary_and_timeline(tmp_path: Path) -> None:
    first, second = tmp_path / "cell.xtrace", tmp_path / "sync.xtrace"
    outputs = run_notebook(
        [
            "%load_ext exectracer",
            f"%%exectrace -o {first}\nimport asyncio\nawait asyncio.sleep(0.05)\n'the last value'",
            "%%exectrace --bogus\nprint('must not run')",
            f"%%exectrace -o {second} --no-timeline\nimport time\ntime.sleep(0.02)",
            f"import exectracer\ntrace = exectracer.load({str(first)!r})\ntrace",
            "import urllib.request\nfrom exectracer import jupyter\nserver = next(iter(jupyter._viewers.values()))\n"
            "page = urllib.request.urlopen(server.url)\n"
            "print(page.status, page.headers['Content-Security-Policy'])\n"
            "print(urllib.request.urlopen(server.url + 'api/info').status)",
        ],
        tmp_path,
    )
    loaded, traced, bad, sync, shown, served = outputs
    assert not [o for o in loaded if o["output_type"] == "error"]
    # the traced cell: its value, then the summary and the viewer's frame
    assert [o["data"]["text/plain"] for o in traced if o["output_type"] == "execute_result"] == ["'the last value'"]
    summary, frame = html_of(traced)
    assert summary.startswith("<pre") and "cell.xtrace" in summary and "Top waits" in summary
    assert re.search(r'<iframe src="http://127\.0\.0\.1:\d+/"', frame)
    # its trace holds the cell's await, a sleep in the kernel's task
    trace = exectracer.load(first, strict=True)
    states, stacks = trace.analysis.states, trace.stacks
    sleeps = [
        [frame.function for frame in stacks[int(stack)]]
        for state, stack in zip(states.state, states.stack, strict=True)
        if state == State.SLEEP and stack > 0
    ]
    assert any("asyncio.tasks.sleep" in functions for functions in sleeps), sleeps
    assert trace.tasks
    # bad options: IPython's one-line usage error, and the cell does not run
    said = "".join(o.get("text", "") + o.get("evalue", "") for o in bad)
    assert "UsageError" in said and "%%exectrace: unknown argument(s): --bogus" in said and "must not run" not in said
    assert "Traceback" not in said
    # --no-timeline: the summary alone
    assert len(html_of(sync)) == 1 and sync[0]["output_type"] == "display_data"
    assert exectracer.load(second, strict=True).threads
    # a loaded trace shows its summary as its notebook view
    (view,) = html_of(shown)
    assert view.startswith("<pre") and "Top waits" in view
    # the viewer answers, and lets a notebook on this machine frame it
    text = "".join(o.get("text", "") for o in served)
    assert text.startswith("200 ") and "frame-ancestors http://localhost:*" in text and text.rstrip().endswith("200")


def test_the_magic_line_is_taken_off_and_bad_options_become_the_cells_error() -> None:
    assert strip_magic(["\n", "%%exectrace -o t.xtrace\n", "x = 1\n"]) == ["\n", "x = 1\n"]
    awaits = ["%%exectrace\n", "import asyncio\n", "await asyncio.sleep(0)\n"]
    assert strip_magic(awaits) == [YIELD_FIRST, *awaits[1:]]  # a cell that awaits yields first, lines kept
    assert strip_magic(["x = 1\n", "%%exectrace\n"]) == ["x = 1\n", "%%exectrace\n"]  # only as the first line
    assert strip_magic(["%%exectracer\n"]) == ["%%exectracer\n"]  # another magic's name
    (line,) = strip_magic(["%%exectrace -o\n", "x = 1\n"])
    assert line.startswith("raise __import__('IPython').core.error.UsageError(")
    assert parse_magic(" -o 'a b.xtrace' --no-timeline").output == "a b.xtrace"
    with pytest.raises(MagicError, match="unknown argument"):
        parse_magic("--bogus")
    with pytest.raises(MagicError, match="No closing quotation"):
        parse_magic("-o 'a")


def test_a_loaded_trace_escapes_what_the_program_named(tmp_path: Path) -> None:
    path = tmp_path / "t.xtrace"
    with exectracer.trace(path), exectracer.region("<script>alert(1)</script>"):
        pass
    view = exectracer.load(path)._repr_html_()
    assert "<script>" not in view and view.startswith("<pre")
