"""The human-readable summary report (``exectracer summary``), made from the summary dict.

The report fits a given width: long names are shortened with an ellipsis
(dotted names at their start, labels with spaces in the middle), numbers
never; a table that cannot fit leaves out or sums columns and says so; prose
lines wrap between their items. Width 0 shortens nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .analysis.summary import total_time

BLOCKED_COLUMNS = ("network", "sync", "sleep", "syscall", "other", "other_estimated")
COLUMN_LABELS = {"other_estimated": "other (est.)"}  # waits no hook saw, estimated from samples
ESTIMATED_NOTE = "other (est.): waits in calls no hook covers, estimated from samples of the OS's thread states"
GROUP_ROWS = 20
ELLIPSIS = "…"
NO_BREAK = "\u00a0"  # a space that flow() does not break lines at
INDENT = "  "
GAP = "  "
MIN_NAME = 16  # a shortened name column keeps this many characters
GROUP_NAME = 26  # the groups' table gives up columns before shortening names below this
MIN_FUNCTION = 12  # a shortened frame keeps this much of its function with its file's name

Cell = str | tuple[str, str]  # text, or (function, location) of a frame


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its header, alignment (``l``/``r``) and where a long cell is shortened (never if empty)."""

    header: str
    align: str = "r"
    shorten: str = ""  # "start" (dotted names, frames) or "middle"


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


def shorten(text: str, width: int, where: str = "middle") -> str:
    """``text`` in at most ``width`` characters: an ellipsis takes the place of its start or its middle."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    if where == "start":
        return ELLIPSIS + text[len(text) - width + 1 :]
    head = (width - 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def render(doc: dict[str, Any], name: str, width: int = 0) -> str:
    """The report for one summary document, in lines of at most ``width`` characters (0: no limit)."""
    processes = doc.get("processes", [])
    if len(processes) > 1:  # each process's goroutines under it
        groups = [_processes(processes, width)] + [
            _groups([g for g in doc["groups"] if g["pid"] == p["pid"]], width, _process_title(p)) for p in processes
        ]
    else:
        groups = [_groups(doc["groups"], width)]
    parts = [
        _header(doc["trace"], name, width),
        *groups,
        _gc(doc["gc"], width),
        _latency(doc["scheduler_latency_ns"], width),
        _mmu(doc["mmu"], width),
        _top_waits(doc["top_waits"], width),
    ]
    for title, rows in (("User tasks", doc["user_tasks"]), ("User regions", doc["user_regions"])):
        if rows:
            parts.append(_named_latency(title, rows, width))
    return "\n\n".join(parts) + "\n"


# -- layout ----------------------------------------------------------------------


def flow(lead: str, items: list[str], width: int, indent: str = "", sep: str = ",") -> str:
    """``lead`` then ``items`` (joined by ``sep`` and a space), wrapped to ``width`` between words of ``lead`` and
    between items, never inside an item nor at a no-break space; continuation lines indented two more spaces."""
    atoms = [w for w in lead.split(" ") if w] + [item + sep for item in items[:-1]] + items[-1:]
    lines = [indent + atoms[0]] if atoms else [indent]
    for atom in atoms[1:]:
        if width and len(lines[-1]) + 1 + len(atom) > width:
            lines.append(indent + INDENT + atom)
        else:
            lines[-1] += " " + atom
    return "\n".join(lines).replace(NO_BREAK, " ")


def table(columns: list[Column], rows: list[list[Cell]], width: int) -> str:
    """Columns padded to their widest cell, name columns shortened until each line fits ``width`` (0: never)."""
    widths = _column_widths(columns, rows, width)
    lines = []
    header: list[Cell] = [c.header for c in columns]
    for row in [header, *rows]:
        cells = [
            _fit(cell, w, c.shorten).ljust(w) if c.align == "l" else _fit(cell, w, c.shorten).rjust(w)
            for cell, w, c in zip(row, widths, columns, strict=True)
        ]
        lines.append(INDENT + GAP.join(cells).rstrip())
    return "\n".join(lines)


def fits(columns: list[Column], rows: list[list[Cell]], width: int, keep: int = MIN_NAME) -> bool:
    """Whether :func:`table` can fit the rows in ``width`` with names shortened to no less than ``keep``."""
    if not width:
        return True
    natural, fitted = _column_widths(columns, rows, 0), _column_widths(columns, rows, width)
    kept = all(f >= min(n, keep) for c, n, f in zip(columns, natural, fitted, strict=True) if c.shorten)
    return kept and _line_length(fitted) <= width


def _column_widths(columns: list[Column], rows: list[list[Cell]], width: int) -> list[int]:
    widths = [max([len(c.header)] + [_length(r[i]) for r in rows]) for i, c in enumerate(columns)]
    floor = [max(len(c.header), MIN_NAME) if c.shorten else w for c, w in zip(columns, widths, strict=True)]
    excess = _line_length(widths) - width if width else 0
    while excess > 0:
        shrinkable = [i for i, w in enumerate(widths) if w > floor[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        others = max([widths[i] for i in shrinkable if i != widest] + [floor[widest]])
        step = min(excess, widths[widest] - max(others, floor[widest]) or 1)
        widths[widest] -= step
        excess -= step
    return widths


def _line_length(widths: list[int]) -> int:
    return len(INDENT) + sum(widths) + len(GAP) * (len(widths) - 1)


def _length(cell: Cell) -> int:
    return len(cell) if isinstance(cell, str) else len(cell[0]) + (1 + len(cell[1]) if cell[1] else 0)


def _fit(cell: Cell, width: int, where: str) -> str:
    """A cell in ``width`` characters. A frame, ``function file:line``, first gives up its file's name (the function
    names its module: ``function:line``), then the start of its function."""
    if isinstance(cell, str):  # a label with spaces, "MainThread (main program)", keeps both ends
        return shorten(cell, width, "middle" if " " in cell else where) if where else cell
    function, location = cell
    text = f"{function} {location}" if location else function
    if len(text) <= width or not where:
        return text
    line = ":" + location.rpartition(":")[2] if location else ""
    if len(function) + len(line) <= width:
        return function + line
    if location and width - len(location) - 1 >= MIN_FUNCTION:
        return f"{shorten(function, width - len(location) - 1, 'start')} {location}"
    if width - len(line) >= MIN_FUNCTION:
        return shorten(function, width - len(line), "start") + line
    return shorten(text, width, "middle")


# -- sections ----------------------------------------------------------------------


def _header(info: dict[str, Any], name: str, width: int) -> str:
    lost = info["lost"]
    problems = [f"{lost['events']:,} events lost"] if lost["events"] else []
    problems += [
        f"{lost[k]:,} {k.replace('_', ' ')}"
        for k in ("chunks_skipped", "chunks_missing", "truncated_bytes", "hook_errors")
        if lost.get(k)
    ]
    problems += [f"{count:,} {what} (left out)" for what, count in lost.get("anomalies", {}).items()]
    if not lost["clean_end"]:
        problems.append("the recording did not stop cleanly")
    title = printable(name)
    if width:
        title = shorten(title, max(width - len("Trace :"), MIN_NAME), "middle")
    items = [printable(info["python"]), f"pid {info['pid']}", _trace_duration(info), f"{info['events']:,} events"]
    line = flow(f"Trace {title}:", items, width)
    line += "\n" + flow("WARNING: incomplete trace:", problems, width, sep=";") if problems else ""
    for m in info.get("missing_workers", ()):
        line += "\n" + flow(f"MISSING WORKER: pid {m.get('pid')}: {printable(m.get('reason'))}", [], width)
    for note in info.get("unseen", ()):  # each on lines of its own, wrapped between words
        line += "\n" + flow(f"NOT SEEN by the recorder: {printable(note)}", [], width)
    sampler = info.get("sampler") or {}
    if sampler.get("ticks_skipped"):
        skipped, due = sampler["ticks_skipped"], max(sampler["ticks_due"], 1)
        line += "\n" + flow(
            f"SAMPLER LATE: {skipped:,} of {due:,} ticks ({skipped / due:.0%}) skipped: it got the CPU or the GIL"
            " late; the CPU profile and the waits estimated from samples are coarser there",
            [],
            width,
        )
    writer = info.get("writer") or {}
    interval, longest = writer.get("flush_interval_ns"), writer.get("longest_in_memory_ns")
    if interval and longest and longest > 2 * interval:  # the writer was held up for longer than its interval
        line += "\n" + flow(
            f"WRITER LATE: events waited up to {duration(longest)} in memory before the writer took them (it was"
            f" to take them every {duration(interval)}): it got the CPU or the GIL late; events still in memory"
            " are lost if the process dies",
            [],
            width,
        )
    return line


def _trace_duration(info: dict[str, Any]) -> str:
    """The trace's duration, or why it is unknown."""
    if info.get("duration_known", True):
        return duration(info["duration_ns"])
    if not info["events"]:
        return "duration unknown (no end recorded, no event read)"
    return f"duration unknown (no end recorded; the events read span {duration(info['duration_ns'])})"


def _process_title(p: dict[str, Any]) -> str:
    argv = " ".join(printable(a) for a in p.get("argv") or []) or "?"
    return f"Process {p['pid']} ({shorten(argv, 60)})"


def _processes(processes: list[dict[str, Any]], width: int) -> str:
    """The processes of a trace of several: who, from when to when, whether each recording ended cleanly."""
    columns = [Column("pid"), Column("parent"), Column("host", "l"), Column("from"), Column("to")]
    columns += [Column("GC"), Column("command", "l", "middle")]
    rows: list[list[Cell]] = []
    for p in processes:
        end = duration(p["end_ns"]) + ("" if p.get("clean_end", True) else " (no clean end)")
        gc = f"{p['gc']['collections']:,}" if "gc" in p else ""
        argv = " ".join(printable(a) for a in p.get("argv") or []) or "?"
        rows.append(
            [str(p["pid"]), str(p["ppid"] or "?"), printable(p["host"]), duration(p["start_ns"]), end, gc, argv]
        )
    return f"Processes ({len(processes)}):\n" + table(columns, rows, width)


def _groups(groups: list[dict[str, Any]], width: int, title: str = "") -> str:
    if not groups:
        return f"{title}: no goroutines recorded" if title else "Goroutines: none recorded"
    shown = groups[:GROUP_ROWS]
    used = [c for c in BLOCKED_COLUMNS if any(g["time_ns"]["blocked"][c] for g in shown)]
    idle = [c for c in BLOCKED_COLUMNS if c not in used]
    to_fit = f"to fit {width} columns (--width{NO_BREAK}0 shows them)"
    layouts: list[tuple[tuple[str, ...] | None, bool, str]] = [
        (BLOCKED_COLUMNS, True, ""),
        (tuple(used), True, f"no time blocked on {_join(idle)}" if idle else ""),
        (tuple(used), False, f"{'no time blocked on ' + _join(idle) + '; ' if idle else ''}in GC left out {to_fit}"),
        (None, False, f"blocked sums {_join(list(BLOCKED_COLUMNS))}; in GC left out {to_fit}"),
    ]
    tables = [(*_group_table(shown, blocked, with_gc), note) for blocked, with_gc, note in layouts]
    # the first in which names stay readable, else the last
    columns, rows, note = next((t for t in tables if fits(t[0], t[1], width, keep=GROUP_NAME)), tables[-1])
    heading = "Goroutines by start function (largest total first)"
    lines = [f"{title}: {heading[0].lower()}{heading[1:]}" if title else heading, table(columns, rows, width)]
    if note:
        lines.append(flow(f"({note})", [], width, indent=INDENT))
    if "other_estimated" in used:
        lines.append(flow(f"({ESTIMATED_NOTE})", [], width, indent=INDENT))
    if len(groups) > GROUP_ROWS:
        lines.append(flow(f"... {len(groups) - GROUP_ROWS} more groups (--json has them all)", [], width, INDENT))
    return "\n".join(lines)


def _group_table(
    groups: list[dict[str, Any]], blocked: tuple[str, ...] | None, with_gc: bool
) -> tuple[list[Column], list[list[Cell]]]:
    """The groups' table with the ``blocked`` categories as columns (None: one column of their sum)."""
    columns = [Column("start function", "l", "start"), Column("kind", "l"), Column("count"), Column("total")]
    columns += [Column("running"), Column("runnable")]
    columns += [Column(_label(c)) for c in blocked] if blocked is not None else [Column("blocked")]
    columns += [Column("in GC")] if with_gc else []
    rows: list[list[Cell]] = []
    for grp in groups:
        t = grp["time_ns"]
        row: list[Cell] = [printable(_group_label(grp)), grp["kind"], f"{grp['count']:,}", duration(total_time(t))]
        row += [duration(t["running"]), duration(t["runnable"])]
        if blocked is None:
            row.append(duration(sum(t["blocked"].values())))
        else:
            row += [duration(t["blocked"][c]) for c in blocked]
        rows.append(row + ([duration(t["gc"])] if with_gc else []))
    return columns, rows


def _group_label(grp: dict[str, Any]) -> str:
    return str(grp.get("label") or grp["start_function"] or "(no start function)")


def _label(category: str) -> str:
    return COLUMN_LABELS.get(category, category)


def _join(names: list[str]) -> str:
    names = [_label(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _gc(gc: dict[str, Any], width: int) -> str:
    if not gc["collections"]:
        return "Garbage collection: none recorded"
    gens = [
        f"gen {g}: {s['collections']:,} ({duration(s['total_ns'])}, longest {duration(s['max_ns'])})"
        for g, s in gc["by_generation"].items()
        if s["collections"]
    ]
    totals = [f"{gc['collections']:,} collections", f"{duration(gc['total_ns'])} in all"]
    totals.append(f"longest {duration(gc['max_ns'])}")
    return flow("Garbage collection:", totals, width) + "\n" + flow("", gens, width, INDENT)


def _latency(lat: dict[str, int], width: int) -> str:
    if not lat["count"]:
        return "Scheduler latency (ready to running): nothing was runnable"
    stats = [f"{k} {duration(lat[k])}" for k in ("p50", "p90", "p99", "max")]
    return flow(f"Scheduler latency (ready to running): {lat['count']:,} waits;", stats, width)


def _mmu(points: list[dict[str, Any]], width: int) -> str:
    cells = [f"{duration(p['window_ns'])}: {p['utilization']:.0%}" for p in points]
    return flow("Minimum mutator utilization (share of the worst window not in GC):", cells, width)


def _top_waits(waits: list[dict[str, Any]], width: int) -> str:
    if not waits:
        return "Top waits: none"
    rows: list[list[Cell]] = []
    for w in waits:
        site: Cell = _frame(w["function"], w["file"], w["line"]) if w["function"] else "(stack unknown)"
        caller = w.get("caller")
        own: Cell
        if caller and (caller["function"], caller["file"], caller["line"]) == (w["function"], w["file"], w["line"]):
            own = "(the same)"
        elif caller:
            own = _frame(caller["function"], caller["file"], caller["line"])
        else:
            own = "(library code only)" if w["function"] else ""
        rows.append([_label(w["category"]), duration(w["total_ns"]), f"{w['count']:,}", site, own])
    columns = [Column("category", "l"), Column("total"), Column("count")]
    columns += [Column("blocked in", "l", "start"), Column("program's code", "l", "start")]
    title = flow("Top waits (where goroutines blocked longest; the program's code that led there)", [], width)
    estimated = any(w["category"] == "other_estimated" for w in waits)
    note = [flow(f"({ESTIMATED_NOTE})", [], width, INDENT)] if estimated else []
    return "\n".join([title, table(columns, rows, width), *note])


def _frame(function: str, file: str | None, line: int | None) -> tuple[str, str]:
    """A frame as (function, ``file:line``), the file without its directories (the function names its module)."""
    base = printable(file).replace("\\", "/").rsplit("/", 1)[-1] if file else ""
    return printable(function), f"{base}:{line}" if base else ""


def _named_latency(title: str, rows: list[dict[str, Any]], width: int) -> str:
    cells: list[list[Cell]] = [
        [printable(r["name"]), f"{r['count']:,}", *(duration(r[f"{k}_ns"]) for k in ("p50", "p90", "p99", "max"))]
        for r in rows
    ]
    columns = [Column("name", "l", "middle"), *(Column(h) for h in ("count", "p50", "p90", "p99", "max"))]
    return f"{title} (latency)\n" + table(columns, cells, width)
