"""Build small trace files event by event, for analyses with known answers."""

from __future__ import annotations

from pathlib import Path

from exectracer.format.chunks import ChunkKind, file_header
from exectracer.format.encoder import events_chunk, json_chunk
from exectracer.format.events import CATEGORY_SHIFT, WAKER_SHIFT, Kind, pack


class TraceBuilder:
    """Collects definitions and events; :meth:`write` makes a valid trace file of them."""

    def __init__(self, start_ns: int = 0, sample_interval: float = 0.01) -> None:
        self.metadata = {
            "format_version": 1,
            "python": {"implementation": "CPython", "version": "3.x"},
            "pid": 1,
            "start_ns": start_ns,
            "start_wall_ns": 1_700_000_000_000_000_000,
            "options": {"sample_interval": sample_interval},
        }
        self.strings: dict[str, int] = {}
        self.frames: list[list] = []
        self.stacks: list[list] = []
        self.rows: list[int] = []

    def string(self, text: str) -> int:
        return self.strings.setdefault(text, len(self.strings) + 1)

    def stack(self, *frames: tuple[str, str, int]) -> int:
        """A stack of ``(function, file, line)`` frames, innermost first."""
        ids = []
        for function, file, line in frames:
            self.frames.append([len(self.frames) + 1, self.string(function), self.string(file), line])
            ids.append(len(self.frames))
        self.stacks.append([len(self.stacks) + 1, ids])
        return len(self.stacks)

    def event(self, kind: Kind, ts: int, g: int, arg: int = 0) -> TraceBuilder:
        self.rows += [pack(kind, arg), ts, g]
        return self

    def wait(self, kind: Kind, ts: int, g: int, category: int, stack: int = 0) -> TraceBuilder:
        """A TASK_SUSPEND or THREAD_BLOCK with its category and stack."""
        return self.event(kind, ts, g, stack << CATEGORY_SHIFT | category)

    def ready(self, ts: int, g: int, source: int = 0, ident: int = 0) -> TraceBuilder:
        return self.event(Kind.TASK_READY, ts, g, source | ident << WAKER_SHIFT)

    def task(self, g: int, ts: int, function: str, name: str | None = None, parent: int = 0) -> TraceBuilder:
        self.event(Kind.TASK_CREATE, ts, g, parent)
        self.event(Kind.TASK_FUNC, ts, g, self.stack((function, "app.py", 1)))
        return self.event(Kind.TASK_NAME, ts, g, self.string(name or f"task-{g}"))

    def thread(self, g: int, ts: int, function: str | None, name: str, created: int | None = None) -> TraceBuilder:
        if created is not None:
            self.event(Kind.THREAD_CREATE, created, g)
        self.event(Kind.THREAD_START, ts, g)
        self.event(Kind.THREAD_NAME, ts, g, self.string(name))
        if function:
            self.event(Kind.THREAD_FUNC, ts, g, self.stack((function, "app.py", 1)))
        return self

    def data(self, stop_ns: int | None, truncate: int = 0, chunk_events: int = 1 << 20) -> bytes:
        """The file's bytes: events in chunks of ``chunk_events`` in the order added;
        ``stop_ns`` None leaves out the END chunk; ``truncate`` cuts that many bytes off."""
        parts = [
            file_header(),
            json_chunk(ChunkKind.METADATA, 1, self.metadata),
            json_chunk(ChunkKind.STRINGS, 2, [[sid, text] for text, sid in self.strings.items()]),
            json_chunk(ChunkKind.STACKS, 3, {"frames": self.frames, "stacks": self.stacks}),
        ]
        step = 3 * chunk_events
        for i in range(0, len(self.rows), step):
            parts.append(events_chunk(len(parts), self.rows[i : i + step]))
        if stop_ns is not None:
            parts.append(json_chunk(ChunkKind.END, len(parts), {"stop_ns": stop_ns, "events_lost": 0}))
        data = b"".join(parts)
        return data[: len(data) - truncate] if truncate else data

    def write(self, path: Path, stop_ns: int | None, truncate: int = 0, chunk_events: int = 1 << 20) -> Path:
        path.write_bytes(self.data(stop_ns, truncate, chunk_events))
        return path
