"""Start a Python child that works until it is killed; print its pid, then wait for it: ``killed_child.py``.

The test kills the child with SIGKILL once the child's trace holds events.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = "import time\ndef child_works():\n    while True: time.sleep(0.01)\nchild_works()\n"

if __name__ == "__main__":
    child = subprocess.Popen([sys.executable, "-c", CHILD])
    print(child.pid, flush=True)
    print("child status", child.wait(), flush=True)
