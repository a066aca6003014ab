"""``exectracer.otel.SpanProcessor``: OpenTelemetry spans as user tasks (see ``integrations/otel.py``)."""

from .integrations.otel import SNAPSHOT_ATTRIBUTE, SNAPSHOT_EVENT, SpanProcessor

__all__ = ["SNAPSHOT_ATTRIBUTE", "SNAPSHOT_EVENT", "SpanProcessor"]
