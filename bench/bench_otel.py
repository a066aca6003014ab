"""What ``exectracer.otel.SpanProcessor`` costs each OpenTelemetry span, with tracing off and on.

A tracer provider with the SDK's ``SimpleSpanProcessor`` and a do-nothing
exporter; a nested pair of spans (``start_as_current_span``, with an
attribute) made ``--spans`` times. Four setups alternate in each round:
without and with our processor, each with tracing off and on (into a file in
a temporary directory; tracing costs the SDK's own code something too, its
locks and context variables). Medians over the rounds, per span::

    python bench/bench_otel.py --rounds 7 --spans 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import exectracer
from exectracer.otel import SpanProcessor


class Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def make_spans(with_processor: bool, n: int) -> float:
    """Seconds to make ``n`` spans (each with a child) through a new provider."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Discard()))
    if with_processor:
        provider.add_span_processor(SpanProcessor(attributes=["http.route"]))
    tracer = provider.get_tracer("bench")
    began = time.perf_counter()
    for _ in range(n // 2):
        with tracer.start_as_current_span("request", attributes={"http.route": "/items"}):
            with tracer.start_as_current_span("db"):
                pass
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--spans", type=int, default=20000)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"without": [], "off": [], "traced without": [], "tracing": []}
    make_spans(True, 2000)  # warm up
    with tempfile.TemporaryDirectory() as directory:
        for round_ in range(args.rounds):
            times["without"].append(make_spans(False, args.spans))
            times["off"].append(make_spans(True, args.spans))
            with exectracer.trace(os.path.join(directory, f"{round_}a.xtrace")):
                times["traced without"].append(make_spans(False, args.spans))
            with exectracer.trace(os.path.join(directory, f"{round_}b.xtrace")):
                times["tracing"].append(make_spans(True, args.spans))
    base = statistics.median(times["without"])
    for name, label in (
        ("without", "no SpanProcessor"),
        ("off", "SpanProcessor, tracing off"),
        ("traced without", "no SpanProcessor, tracing"),
        ("tracing", "SpanProcessor, tracing"),
    ):
        median = statistics.median(times[name])
        print(f"{label:28} {median / args.spans * 1e6:7.2f} µs a span  ratio {median / base:.3f}")


if __name__ == "__main__":
    main()
