"""OpenTelemetry spans as user tasks (``exectracer.otel.SpanProcessor``), with the real SDK and its in-memory
exporter, in asyncio and threaded code; slow spans' flight-recorder snapshots."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import exectracer
from exectracer.otel import SNAPSHOT_ATTRIBUTE, SNAPSHOT_EVENT, SpanProcessor

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
export = pytest.importorskip("opentelemetry.sdk.trace.export")
otel_context = pytest.importorskip("opentelemetry.context")

from support.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.recorder


def make_tracer(processor: SpanProcessor):
    """A tracer of a new provider with ``processor`` and an in-memory exporter; both returned."""
    provider = sdk_trace.TracerProvider()
    exporter = in_memory.InMemorySpanExporter()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    provider.add_span_processor(processor)
    return provider.get_tracer("test"), exporter


def otel_logs(trace: exectracer.Trace) -> dict[int, list[str]]:
    """The ``otel`` log records, by user task."""
    logs = trace.logs
    out: dict[int, list[str]] = {}
    for category, message, task in zip(logs.category, logs.message, logs.task, strict=True):
        if category == "otel":
            out.setdefault(int(task), []).append(str(message))
    return out


def task_of_span(trace: exectracer.Trace, span) -> exectracer.trace_data.UserTask:
    """The user task whose ids record is ``span``'s."""
    ids = f"span_id={span.context.span_id:016x}"
    (task_id,) = [task for task, messages in otel_logs(trace).items() if any(ids in m.split() for m in messages)]
    (user_task,) = [t for t in trace.user_tasks if t.id == task_id]
    return user_task


def test_spans_of_asyncio_tasks_are_user_tasks_with_their_parents_ids_and_attributes(tmp_path: Path) -> None:
    tracer, exporter = make_tracer(SpanProcessor(attributes=["http.route", "http.status_code", "absent"]))

    async def child(name: str) -> None:
        with tracer.start_as_current_span(name):
            await asyncio.sleep(0.01)

    async def handler() -> None:
        with tracer.start_as_current_span("GET /items", attributes={"http.route": "/items"}) as span:
            await asyncio.gather(child("db"), child("cache"))
            span.set_attribute("http.status_code", 200)  # set later: logged at the end

    path = tmp_path / "t.xtrace"
    with exectracer.trace(path):
        asyncio.run(handler())
    trace = exectracer.load(path, strict=True)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    request, db, cache = (task_of_span(trace, spans[name]) for name in ("GET /items", "db", "cache"))
    assert (request.name, db.name, cache.name) == ("GET /items", "db", "cache")
    assert db.parent_id == request.id and cache.parent_id == request.id and request.parent_id is None
    assert request.end_ns is not None and db.end_ns is not None
    # each child span began in its own asyncio task, the request's in the main task
    tasks = {task.id: task for task in trace.tasks}
    assert db.g in tasks and cache.g in tasks and db.g != cache.g != request.g
    messages = otel_logs(trace)[request.id]
    root = spans["GET /items"].context
    assert messages[0] == f"trace_id={root.trace_id:032x} span_id={root.span_id:016x}"
    assert "http.route=/items" in messages and "http.status_code=200" in messages
    assert not any(m.startswith("absent=") for m in messages)
    child_ids = otel_logs(trace)[db.id][0]
    assert child_ids.endswith(f"parent_span_id={root.span_id:016x}") and f"trace_id={root.trace_id:032x}" in child_ids


def test_spans_of_threads_begin_and_end_in_their_threads(tmp_path: Path) -> None:
    tracer, exporter = make_tracer(SpanProcessor())
    lock = threading.Lock()

    def work(i: int) -> None:
        with tracer.start_as_current_span(f"job {i}"), lock:
            time.sleep(0.01)

    path = tmp_path / "t.xtrace"
    with exectracer.trace(path):
        threads = [threading.Thread(target=work, args=(i,), name=f"worker-{i}") for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    trace = exectracer.load(path, strict=True)
    by_name = {thread.id: thread.name for thread in trace.threads}
    for span in exporter.get_finished_spans():
        user_task = task_of_span(trace, span)
        assert by_name[user_task.g] == f"worker-{span.name.split()[1]}"
        assert user_task.end_ns is not None and user_task.end_ns - user_task.begin_ns >= 10_000_000


def test_a_slow_span_snapshots_the_flight_recorder_and_names_the_file_in_the_span(tmp_path: Path) -> None:
    processor = SpanProcessor(snapshot_slower_than={"slow": 0.05}, directory=str(tmp_path), cooldown=60.0)
    tracer, exporter = make_tracer(processor)
    with exectracer.FlightRecorder(min_age=1.0):
        with tracer.start_as_current_span("slow"):
            time.sleep(0.1)
        with tracer.start_as_current_span("slow"):  # slow too, within the cooldown: no second snapshot
            time.sleep(0.1)
        with tracer.start_as_current_span("fast"):
            pass
        first, second, fast = exporter.get_finished_spans()
        (event,) = first.events
        assert event.name == SNAPSHOT_EVENT and not second.events and not fast.events
        path = Path(event.attributes[SNAPSHOT_ATTRIBUTE])
        assert path.parent == tmp_path and path.name.endswith(f"-trace-{first.context.trace_id:032x}.xtrace")
        wait_for(path.exists, "the snapshot is written")
    snapshot = exectracer.load(path)
    ids = f"span_id={first.context.span_id:016x}"
    slow = [m for messages in otel_logs(snapshot).values() for m in messages if m.startswith("slow_span ")]
    assert len(slow) == 1 and ids in slow[0].split() and f"trace_id={first.context.trace_id:032x}" in slow[0]


def test_without_tracing_spans_pass_through_untouched(tmp_path: Path) -> None:
    processor = SpanProcessor(attributes=["k"], snapshot_slower_than={"*": 0})
    tracer, exporter = make_tracer(processor)
    with tracer.start_as_current_span("outer", attributes={"k": 1}), tracer.start_as_current_span("inner"):
        pass
    assert [span.name for span in exporter.get_finished_spans()] == ["inner", "outer"]
    assert all(not span.events for span in exporter.get_finished_spans())
    assert not exectracer.is_tracing() and not processor._open


def test_a_span_open_when_tracing_stops_leaves_the_next_recording_alone(tmp_path: Path) -> None:
    tracer, _ = make_tracer(SpanProcessor())
    span = tracer.start_span("crosses")
    with exectracer.trace(tmp_path / "a.xtrace"):
        token = otel_context.attach(sdk_trace.trace_api.set_span_in_context(span))
        with tracer.start_as_current_span("inside"):
            pass
        otel_context.detach(token)
    with exectracer.trace(tmp_path / "b.xtrace"):
        span.end()  # begun before the first recording: no task in either
    first, second = (exectracer.load(tmp_path / name, strict=True) for name in ("a.xtrace", "b.xtrace"))
    assert [task.name for task in first.user_tasks] == ["inside"] and not second.user_tasks


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match=r"snapshot_slower_than\['x'\] must be a number of seconds"):
        SpanProcessor(snapshot_slower_than={"x": -1})


def test_the_integrations_import_without_their_frameworks() -> None:
    # none of OpenTelemetry, IPython, pytest importable: the modules load, and the processor works untraced
    program = (
        "import sys\n"
        "for name in ('opentelemetry', 'IPython', 'ipykernel'):\n"
        "    sys.modules[name] = None\n"
        "import exectracer, exectracer.otel, exectracer.jupyter\n"
        "processor = exectracer.otel.SpanProcessor(attributes=['k'])\n"
        "print(processor.force_flush(), 'IPython' in sys.modules and sys.modules['IPython'] is None)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
