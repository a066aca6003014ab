"""Where the recordings of one ``exectracer run`` go: the parent's file and its child processes' beside it.

``out.xtrace`` is the first process's; a child process ``pid`` records into
``out.<pid>.xtrace`` (:func:`child_name`), its children likewise. All carry
the run's ``run_id`` in their metadata, which tells them from the files of
an earlier run with the same name. Standard library only: the recorder
names the files, the reader finds them.
"""

from __future__ import annotations

import os
import re

TRACE_SUFFIX = ".xtrace"
RUN_ID_ENV = "EXECTRACER_RUN_ID"  # the run a child process's recording belongs to (set by the first process)


def child_name(parent: str | os.PathLike[str], pid: int) -> str:
    """The file child process ``pid`` of the recording written to ``parent`` records into:
    ``out.xtrace`` -> ``out.<pid>.xtrace``, beside it."""
    root, ext = os.path.splitext(os.fspath(parent))
    return f"{root}.{pid}{ext}"


def child_candidates(parent: str | os.PathLike[str]) -> list[str]:
    """The files beside ``parent`` named as its child processes' would be (``out.<digits>.xtrace``), sorted."""
    root, ext = os.path.splitext(os.fspath(parent))
    folder = os.path.dirname(root)
    pattern = re.compile(re.escape(os.path.basename(root)) + r"\.[0-9]+" + re.escape(ext))
    try:
        names = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    return [os.path.join(folder, name) for name in names if pattern.fullmatch(name)]
