"""What the reading side computes from a trace file, as plain data: the frozen reference of ``test_frozen_outputs``.

``outputs(path)`` gathers the summary document (and hashes of its JSON and
text), every profile, hashes of the Perfetto and Chrome exports, the
goroutine, thread, task, loop and user-task tables and every SQL table but
``events`` (the raw events, read as they are). Run as a script, it writes
the reference of each trace in ``tests/data/frozen`` beside it
(``NAME.json.gz``); the references there were computed by the code before
the goroutine tables became columns. Rewrite them only after checking that
each difference is one a change meant (and say which in the commit), never
to make a test pass.

::

    python tests/support/frozen.py tests/data/frozen/*.xtrace
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import exectracer
from exectracer.analysis import PROFILE_TYPES
from exectracer.export import chrome, perfetto
from exectracer.export.timeline import Timeline
from exectracer.report import render
from exectracer.sql.database import TABLE_NAMES, Database

SKIPPED_TABLES = frozenset({"events"})  # the raw events: no table is built for them


def outputs(path: Path) -> dict[str, Any]:
    """Everything compared, as JSON-ready data (values JSON cannot hold written with ``str``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = exectracer.load(path)
    analysis = trace.analysis
    summary = analysis.summary()
    doc: dict[str, Any] = {
        "summary": summary,
        "summary_json_sha256": _sha256(json.dumps(summary)),  # keys in their order, as summary --json prints them
        "report_sha256": _sha256(render(summary, "trace", width=120)),  # exectracer summary's text
        "profiles": {name: _profile(analysis.profile(name)) for name in PROFILE_TYPES},
        "goroutines": [{**_row(g), "role": g.role, "label": g.label} for g in analysis.goroutines.list],
        "threads": [_row(t) for t in trace.threads],
        "tasks": [_row(t) for t in trace.tasks],
        "loops": [_row(loop) for loop in trace.loops],
        "user_tasks": [_row(u) for u in trace.user_tasks],
        "perfetto_sha256": _exported(perfetto.write, analysis),
        "chrome_sha256": _exported(chrome.write, analysis),
    }
    database = Database([(trace, analysis, "trace")])
    try:
        doc["sql"] = {
            name: [list(row) for row in database.relation(f"SELECT * FROM {name}").fetchall()]
            for name in TABLE_NAMES
            if name not in SKIPPED_TABLES
        }
    finally:
        database.close()
    return plain(doc)


def plain(doc: Any) -> Any:
    """``doc`` as it reads back from JSON: what a frozen file holds."""
    return json.loads(json.dumps(doc, default=str))


def reference(path: Path) -> Any:
    """The frozen outputs of the trace at ``path``."""
    with gzip.open(path.with_suffix(".json.gz"), "rt") as f:
        return json.load(f)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _exported(write: Any, analysis: Any) -> str:
    """The SHA-256 of the file ``write`` (an exporter's) makes of the trace's timeline."""
    out = io.BytesIO()
    write(Timeline(analysis), out)
    return hashlib.sha256(out.getvalue()).hexdigest()


def _row(item: Any) -> dict[str, Any]:
    return {
        key: int(value) if hasattr(value, "__index__") else value for key, value in dataclasses.asdict(item).items()
    }


def _profile(p: Any) -> dict[str, Any]:
    return {
        "sample_types": p.sample_types,
        "stacks": p.stacks.tolist(),
        "values": p.values.tolist(),
        "start_ns": p.start_ns,
        "end_ns": p.end_ns,
        "period_ns": p.period_ns,
        "frames": [str(frame) for sid in p.stacks.tolist() for frame in p.stack_frames(sid)],
    }


if __name__ == "__main__":
    for name in sys.argv[1:]:
        trace_path = Path(name)
        with gzip.GzipFile(trace_path.with_suffix(".json.gz"), "wb", mtime=0) as out:
            out.write(json.dumps(outputs(trace_path), sort_keys=True).encode())
        print(trace_path.with_suffix(".json.gz"))
