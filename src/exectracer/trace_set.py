"""Which files make one trace: a file, a directory of them, a list, or a run's file and its children's.

:func:`exectracer.load` and ``exectracer merge`` both take what this module
finds; ``trace_files`` says how ``exectracer run`` names the files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from .format import decoder
from .format.decoder import TraceFormatError
from .trace_files import TRACE_SUFFIX, child_candidates

__all__ = ["Source", "child_files", "trace_files_of"]

Source = str | os.PathLike[str] | bytes


def trace_files_of(path: Source | Sequence[str | os.PathLike[str]], children: bool) -> list[Source]:
    """The files a trace is read from (see :func:`load`)."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        return [bytes(path) if isinstance(path, memoryview) else path]
    if not isinstance(path, (str, os.PathLike)):
        files: list[Source] = [os.fspath(p) for p in path]
        if not files:
            raise TraceFormatError("no trace files given")
        return files
    if os.path.isdir(path):
        found: list[Source] = [
            os.path.join(path, name) for name in sorted(os.listdir(path)) if name.endswith(TRACE_SUFFIX)
        ]
        if not found:
            raise TraceFormatError(f"{os.fspath(path)}: a directory without any *{TRACE_SUFFIX} file")
        return found
    return [path, *child_files(path)] if children else [path]


def child_files(parent: str | os.PathLike[str]) -> list[str]:
    """The files the child processes of the recording in ``parent`` recorded (``out.<pid>.xtrace`` beside it,
    of the same run: their metadata's ``run_id`` is the parent's). Empty if it recorded none."""
    parent = os.fspath(parent)
    try:
        if not stat.S_ISREG(os.stat(parent).st_mode):  # a pipe or a device: read once, by the decoder only
            return []
        run_id = (decoder.read_metadata(parent) or {}).get("run_id")
    except OSError:
        return []
    if not isinstance(run_id, str):
        return []
    found = []
    for candidate in child_candidates(parent):
        try:
            meta = decoder.read_metadata(candidate)
        except OSError:
            continue
        if meta is not None and meta.get("run_id") == run_id:
            found.append(candidate)
    return found
