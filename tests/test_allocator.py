"""The CLI's heap settings: freed memory kept, and pages touched ahead of time on another thread.

Each check runs in a fresh interpreter: the settings change the allocator of
the whole process they run in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings")

NEW_ARRAY_FAULTS = """
import resource, sys, numpy as np
from exectracer import allocator
libc = allocator._glibc()
assert allocator.keep_freed_memory(libc)
if sys.argv[1] == "pretouch":
    allocator.pretouch_heap(libc, 64 << 20).join(timeout=60)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
array = np.ones(6 << 20, dtype=np.int64)  # 48 MB
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_of_a_new_array(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", NEW_ARRAY_FAULTS, how], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_an_array_made_after_the_heap_was_touched_faults_in_no_pages() -> None:
    fresh, touched = faults_of_a_new_array("fresh"), faults_of_a_new_array("pretouch")
    assert fresh >= 20  # 48 MB of new pages: 12 288 of 4 KB, 24 of 2 MB
    assert touched < fresh // 10


def test_prepare_for_trace_touches_a_few_times_the_file_size(tmp_path: Path) -> None:
    big, small = tmp_path / "big.xtrace", tmp_path / "small.xtrace"
    big.write_bytes(b"\0" * (16 << 20))
    small.write_bytes(b"\0" * 1024)
    code = """
import sys
from exectracer.allocator import prepare_for_trace
for path in sys.argv[1:]:
    thread = prepare_for_trace(path)
    print(thread is not None and (thread.join(timeout=60) or not thread.is_alive()))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(big), str(small), str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]
