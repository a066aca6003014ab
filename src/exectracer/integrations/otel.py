"""OpenTelemetry spans as user tasks, and flight-recorder snapshots of slow spans.

``SpanProcessor`` is added to an OpenTelemetry SDK ``TracerProvider``. It
follows the SDK's span processor interface without importing the SDK (the
interface is four methods), so this module imports nothing but the standard
library and the recorder.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import Any

from ..live.flight import running as running_flight_recorder
from ..record import current as _current
from ..record.annotations import log_in_task, task
from ..record.hook_errors import caught

CATEGORY = "otel"  # the log category of a span's ids and attributes
SNAPSHOT_EVENT = "exectracer.snapshot"  # the span event naming a snapshot taken because the span was slow
SNAPSHOT_ATTRIBUTE = "exectracer.snapshot.path"
MAX_OPEN_SPANS = 1 << 16  # spans begun and not ended that are remembered; the oldest are forgotten beyond


class _Open:
    """A span's user task, in the recording it began in."""

    __slots__ = ("logged", "recording", "snapshot", "task")

    def __init__(self, user_task: task, recording: object, logged: frozenset[str]) -> None:
        self.task = user_task
        self.recording = recording
        self.logged = logged  # the attributes logged when it began
        self.snapshot: str | None = None  # the snapshot asked for it, if it was slow


class SpanProcessor:
    """Makes every OpenTelemetry span a user task while tracing runs (a capture, a flight recorder,
    ``exectracer run``); otherwise does nothing.

    ``provider.add_span_processor(exectracer.otel.SpanProcessor(...))``. Each
    span becomes an ``exectracer.task`` named after the span, begun where the
    span starts and ended where it ends, with its parent span's task as
    parent. Its ids go into the task as a log record in category ``otel``
    (``trace_id=<32 hex> span_id=<16 hex> [parent_span_id=<16 hex>]``), and
    so do the ``attributes`` named (``key=value``; those set at the start,
    and those set later, at the end).

    ``snapshot_slower_than`` maps span names (``"*"``: any other) to seconds:
    a span that lasted longer asks the running flight recorder for a
    snapshot into ``directory`` (at most one per span name per
    ``cooldown`` seconds). The snapshot holds the span's ids (a log record
    ``slow_span ...`` in its task) and its file name the span's trace id
    (``flight-<pid>-<time>-trace-<trace id>.xtrace``); the span gets an event
    ``exectracer.snapshot`` whose attribute ``exectracer.snapshot.path`` is
    the snapshot's file (SDKs that call ``_on_ending``: 1.40 and later; with
    older ones the span is not told, and the file is found by the trace id).
    """

    def __init__(
        self,
        attributes: Iterable[str] = (),
        *,
        snapshot_slower_than: Mapping[str, float] | None = None,
        directory: str = ".",
        cooldown: float = 60.0,
    ) -> None:
        self.attributes = tuple(attributes)
        self.thresholds = dict(snapshot_slower_than or {})
        for name, seconds in self.thresholds.items():
            if not isinstance(seconds, (int, float)) or not seconds >= 0:
                raise ValueError(f"snapshot_slower_than[{name!r}] must be a number of seconds, 0 or more")
        self.directory = directory
        self.cooldown = cooldown
        self._open: collections.OrderedDict[int, _Open] = collections.OrderedDict()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        recording = _current.recording
        if recording is None:
            return
        try:
            self._begin(span, recording)
        except Exception:  # never raise into the program
            caught("otel.on_start")

    def _on_ending(self, span: Any) -> None:
        """The SDK's call while the span can still be changed: a slow span's snapshot is named in it."""
        if _current.recording is None or not self._open:
            return
        try:
            opened = self._open.get(span.get_span_context().span_id)
            if opened is not None:
                opened.snapshot = self._snapshot_if_slow(span, opened)
                if opened.snapshot is not None:
                    _add_event_while_ending(span, SNAPSHOT_EVENT, {SNAPSHOT_ATTRIBUTE: opened.snapshot})
        except Exception:
            caught("otel.on_ending")

    def on_end(self, span: Any) -> None:
        if not self._open:
            return
        try:
            opened = self._open.pop(span.get_span_context().span_id, None)
            if opened is not None and opened.recording is _current.recording:
                if opened.snapshot is None:  # an SDK without _on_ending
                    self._snapshot_if_slow(span, opened)
                self._log_attributes(opened.task.id, span, opened.logged)
                opened.task.end()
        except Exception:
            caught("otel.on_end")

    def shutdown(self) -> None:
        self._open.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _begin(self, span: Any, recording: object) -> None:
        context = span.get_span_context()
        parent = getattr(span, "parent", None)
        user_task = task(span.name)
        ids = f"trace_id={context.trace_id:032x} span_id={context.span_id:016x}"
        if parent is not None:
            ids += f" parent_span_id={parent.span_id:016x}"
        log_in_task(user_task.id, CATEGORY, ids)
        logged = self._log_attributes(user_task.id, span, frozenset())
        self._open[context.span_id] = _Open(user_task, recording, logged)
        if len(self._open) > MAX_OPEN_SPANS:
            self._open.popitem(last=False)

    def _log_attributes(self, task_id: int, span: Any, logged: frozenset[str]) -> frozenset[str]:
        """Log the chosen attributes the span has, but those in ``logged``; all of them logged now."""
        values = getattr(span, "attributes", None) or {}
        new = [key for key in self.attributes if key in values and key not in logged]
        for key in new:
            log_in_task(task_id, CATEGORY, f"{key}={values[key]}")
        return logged | frozenset(new)

    def _snapshot_if_slow(self, span: Any, opened: _Open) -> str | None:
        """Ask for a snapshot if the span took longer than its name's threshold; the snapshot's path."""
        threshold = self.thresholds.get(span.name, self.thresholds.get("*"))
        start, end = getattr(span, "start_time", None), getattr(span, "end_time", None)
        if threshold is None or start is None or end is None or (end - start) / 1e9 <= threshold:
            return None
        flight = running_flight_recorder()
        if flight is None:
            return None
        context = span.get_span_context()
        log_in_task(
            opened.task.id,
            CATEGORY,
            f"slow_span name={span.name} trace_id={context.trace_id:032x} span_id={context.span_id:016x}"
            f" duration_ns={end - start}",
        )
        return flight.request_snapshot(
            self.directory, f"slow-span-{span.name}", self.cooldown, label=f"trace-{context.trace_id:032x}"
        )


def _add_event_while_ending(span: Any, name: str, attributes: dict[str, str]) -> None:
    """Add an event to a span the SDK is ending (in ``_on_ending``).

    The SDK (1.40 to 1.45 at least) sets the span's end time before it calls
    ``_on_ending``, and from then on ``add_event`` refuses; the event goes
    into the span's event list as ``add_event`` would put it, under the
    span's lock, before any ``on_end`` copies the span for export.
    """
    if span.is_recording():  # an SDK that lets a span be changed while it ends
        span.add_event(name, attributes)
        return
    from opentelemetry.sdk.trace import Event  # the SDK is loaded: the span is one of its own

    with span._lock:
        span._events.append(Event(name, attributes))
