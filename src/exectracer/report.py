"""The human-readable summary report (``exectracer summary``), made from the summary dict."""

from __future__ import annotations

from typing import Any

from .analysis.summary import total_time

BLOCKED_COLUMNS = ("network", "sync", "sleep", "syscall", "other", "other_estimated")
COLUMN_LABELS = {"other_estimated": "other (est.)"}  # waits no hook saw, estimated from samples
GROUP_ROWS = 20


def duration(ns: int | float) -> str:
    """A duration with a unit that keeps it short: ``850ns``, ``12.3µs``, ``4.56ms``, ``1.23s``."""
    ns = float(ns)
    if ns == 0:
        return "0"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            value = ns / scale
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{ns:.0f}ns"


def printable(text: Any) -> str:
    """``text`` with control characters escaped: names from a traced program are untrusted."""
    s = "?" if text is None else str(text)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def render(doc: dict[str, Any], name: str) -> str:
    """The report for one summary document."""
    parts = [
        _header(doc["trace"], name),
        _groups(doc["groups"]),
        _gc(doc["gc"]),
        _latency(doc["scheduler_latency_ns"]),
        _mmu(doc["mmu"]),
        _top_waits(doc["top_waits"]),
    ]
    for title, rows in (("User tasks", doc["user_tasks"]), ("User regions", doc["user_regions"])):
        if rows:
            parts.append(_named_latency(title, rows))
    return "\n\n".join(parts) + "\n"


def _header(info: dict[str, Any], name: str) -> str:
    lost = info["lost"]
    problems = [f"{lost['events']:,} events lost"] if lost["events"] else []
    problems += [
        f"{lost[k]:,} {k.replace('_', ' ')}"
        for k in ("chunks_skipped", "chunks_missing", "truncated_bytes", "hook_errors")
        if lost.get(k)
    ]
    if not lost["clean_end"]:
        problems.append("the recording did not stop cleanly")
    line = (
        f"Trace {printable(name)}: {printable(info['python'])}, pid {info['pid']}, "
        f"{duration(info['duration_ns'])}, {info['events']:,} events"
    )
    return line + ("\nWARNING: incomplete trace: " + "; ".join(problems) if problems else "")


def _table(header: list[str], rows: list[list[str]], align: str) -> str:
    """Columns padded to their widest cell; ``align`` has ``l`` or ``r`` per column."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align, strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _groups(groups: list[dict[str, Any]]) -> str:
    blocked = [COLUMN_LABELS.get(c, c) for c in BLOCKED_COLUMNS]
    header = ["start function", "kind", "count", "total", "running", "runnable", *blocked, "in GC"]
    rows = []
    for grp in groups[:GROUP_ROWS]:
        t = grp["time_ns"]
        rows.append(
            [
                printable(grp["start_function"] or "(no start function)"),
                grp["kind"],
                f"{grp['count']:,}",
                duration(total_time(t)),
                duration(t["running"]),
                duration(t["runnable"]),
                *(duration(t["blocked"][c]) for c in BLOCKED_COLUMNS),
                duration(t["gc"]),
            ]
        )
    more = f"\n  ... {len(groups) - GROUP_ROWS} more groups (--json has them all)" if len(groups) > GROUP_ROWS else ""
    return (
        "Goroutines by start function (largest total first)\n"
        + _table(header, rows, "ll" + "r" * (len(header) - 2))
        + more
    )


def _gc(gc: dict[str, Any]) -> str:
    if not gc["collections"]:
        return "Garbage collection: none recorded"
    gens = ", ".join(
        f"gen {g}: {s['collections']:,} ({duration(s['total_ns'])}, longest {duration(s['max_ns'])})"
        for g, s in gc["by_generation"].items()
        if s["collections"]
    )
    return (
        f"Garbage collection: {gc['collections']:,} collections, {duration(gc['total_ns'])} in all, "
        f"longest {duration(gc['max_ns'])}\n  {gens}"
    )


def _latency(lat: dict[str, int]) -> str:
    if not lat["count"]:
        return "Scheduler latency (ready to running): nothing was runnable"
    return (
        f"Scheduler latency (ready to running): {lat['count']:,} waits; p50 {duration(lat['p50'])}, "
        f"p90 {duration(lat['p90'])}, p99 {duration(lat['p99'])}, max {duration(lat['max'])}"
    )


def _mmu(points: list[dict[str, Any]]) -> str:
    cells = ", ".join(f"{duration(p['window_ns'])}: {p['utilization']:.0%}" for p in points)
    return f"Minimum mutator utilization (share of the worst window not in GC): {cells}"


def _top_waits(waits: list[dict[str, Any]]) -> str:
    if not waits:
        return "Top waits: none"
    rows = [
        [
            w["category"],
            duration(w["total_ns"]),
            f"{w['count']:,}",
            printable(w["function"] or "(unknown)"),
            printable(f"{w['file']}:{w['line']}" if w["file"] else ""),
        ]
        for w in waits
    ]
    return "Top waits (where goroutines blocked longest)\n" + _table(
        ["category", "total", "count", "function", "at"], rows, "lrrll"
    )


def _named_latency(title: str, rows: list[dict[str, Any]]) -> str:
    table = [
        [printable(r["name"]), f"{r['count']:,}", *(duration(r[f"{k}_ns"]) for k in ("p50", "p90", "p99", "max"))]
        for r in rows
    ]
    return f"{title} (latency)\n" + _table(["name", "count", "p50", "p90", "p99", "max"], table, "lrrrrr")
