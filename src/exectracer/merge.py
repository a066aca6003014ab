"""``exectracer merge``: several processes' traces into one file.

The merged file (format version 2, docs/format.md) holds each recording's
valid chunks as they were written, one section per process: nothing is
decoded or compressed again, so merging runs at the speed of reading the
files and checking their crc32. The reader aligns the clocks and keeps the
ids apart (:mod:`exectracer.processes`), exactly as when it opens the files
themselves; merging checks beforehand that it will be able to.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
from collections.abc import Sequence
from typing import Any

from .format import decoder
from .format.chunks import MERGED_VERSION, ChunkKind, file_header
from .format.decoder import Chunk, ChunkError, Scan, Scanner, TraceFormatError
from .processes import AlignmentError, align
from .trace_set import trace_files_of

__all__ = ["MergeError", "Merged", "merge"]

EVENT_BYTES = 24


class MergeError(ValueError):
    """The inputs cannot be merged (the message is one line)."""


@dataclasses.dataclass
class Merged:
    """What a merge wrote."""

    processes: int
    events: int  # as the chunks declare them
    bytes: int
    incomplete: list[str]  # inputs read only in part (damage, no END chunk), with why


@dataclasses.dataclass
class _Section:
    source: str
    metadata: dict[str, Any]
    chunks: list[Chunk]  # the METADATA chunk first
    complete: bool


def merge(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], children: bool = True) -> Merged:
    """Merge the traces ``inputs`` (files, directories, a run's file with its children's) into ``output``,
    which must not exist. Raises :class:`MergeError` for input that cannot be merged."""
    files = [os.fspath(f) for path in inputs for f in _expand(path, children)]
    if os.path.lexists(output):
        raise MergeError(f"{os.fspath(output)} exists: not overwritten (choose another -o)")
    with _Inputs(files) as opened:
        sections = [s for path, view in opened.items() for s in _sections(path, opened.maps[path], view)]
        _check(sections)
        try:
            out = open(output, "xb")
        except FileExistsError:
            raise MergeError(f"{os.fspath(output)} exists: not overwritten (choose another -o)") from None
        try:
            with out:
                written = _write(out, sections, opened)
        except BaseException:
            os.unlink(output)
            raise
    events = sum(c.raw_length for s in sections for c in s.chunks if c.kind == ChunkKind.EVENTS) // EVENT_BYTES
    incomplete = [s.source for s in sections if not s.complete]
    return Merged(len(sections), events, written, incomplete)


def _expand(path: str | os.PathLike[str], children: bool) -> list[str]:
    try:
        found = [os.fspath(f) for f in trace_files_of(path, children) if not isinstance(f, bytes)]
    except TraceFormatError as exc:
        raise MergeError(str(exc)) from None
    return [f if isinstance(f, str) else os.fsdecode(f) for f in found]


class _Inputs(dict[str, memoryview]):
    """The input files, memory-mapped, by path; closed on exit."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__()
        self.maps: dict[str, mmap.mmap] = {}
        try:
            for path in paths:
                if path in self:
                    raise MergeError(f"{path}: given twice")
                self[path] = self._open(path)
        except BaseException:
            self.close()
            raise

    def _open(self, path: str) -> memoryview:
        try:
            with open(path, "rb") as file:
                if os.fstat(file.fileno()).st_size == 0:
                    raise MergeError(f"{path}: empty file: not an exectracer trace")
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise MergeError(f"{path}: {exc.strerror or exc}") from None
        self.maps[path] = mapped
        return memoryview(mapped)

    def close(self) -> None:
        for view in self.values():
            view.release()
        for mapped in self.maps.values():
            mapped.close()

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sections(path: str, mapped: mmap.mmap, view: memoryview) -> list[_Section]:
    """The recordings in one input file, their valid chunks (crc checked) and metadata."""
    try:
        version = decoder.read_version(mapped)
    except TraceFormatError as exc:
        raise MergeError(f"{path}: {exc}") from None
    scan = Scanner(mapped, view).run(version)
    parts = decoder.split_sections(scan) if version == MERGED_VERSION and scan.chunks else [scan]
    return [_section(path, view, part) for part in parts]


def _section(path: str, view: memoryview, scan: Scan) -> _Section:
    first = scan.chunks[0] if scan.chunks else None
    if first is None or first.kind != ChunkKind.METADATA:
        raise MergeError(f"{path}: no readable METADATA chunk at its start: cannot tell which process it recorded")
    try:
        metadata = decoder.json_payload(decoder.payload(view, first), dict)
    except ChunkError as exc:
        raise MergeError(f"{path}: its METADATA chunk is unreadable ({exc})") from None
    complete = not scan.problems and not scan.truncated_bytes and scan.chunks[-1].kind == ChunkKind.END
    return _Section(path, metadata, scan.chunks, complete)


def _check(sections: list[_Section]) -> None:
    """MergeError if two sections are one recording, or if their clocks cannot be aligned."""
    seen: dict[tuple[Any, Any, Any], str] = {}
    for s in sections:
        key = (s.metadata.get("pid"), s.metadata.get("hostname"), s.metadata.get("start_ns"))
        if key in seen:
            raise MergeError(
                f"{s.source}: the same recording as {seen[key]} (pid {key[0]}, same start): a file given twice?"
            )
        seen[key] = s.source
    try:
        align([s.metadata for s in sections])
    except AlignmentError as exc:
        raise MergeError(str(exc)) from None


def _write(out: Any, sections: list[_Section], views: dict[str, memoryview]) -> int:
    """The merged file: a version-2 header, then each section's chunks as they are, in runs of adjacent chunks."""
    written = out.write(file_header(MERGED_VERSION))
    for s in sections:
        view = views[s.source]
        start = end = -1
        for chunk in s.chunks:
            if chunk.offset != end:  # not adjacent to the run so far: write the run, start another
                if end > start:
                    written += out.write(view[start:end])
                start = chunk.offset
            end = chunk.end
        if end > start:
            written += out.write(view[start:end])
    return int(written)
