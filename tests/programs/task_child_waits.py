"""A task waiting for child processes on asyncio's loop: ``task_child_waits.py``.

The main task starts a Python child that sleeps 0.3 s and awaits its
``wait()``; then one that prints a line and sleeps 0.3 s and awaits its
``communicate()``. Prints ``wait PID`` and ``communicate PID``.
"""

from __future__ import annotations

import asyncio
import sys

CHILD = "import time\nprint('up', flush=True)\ntime.sleep(0.3)\n"


async def main() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, stdout=asyncio.subprocess.DEVNULL)
    await proc.wait()
    print("wait", proc.pid, flush=True)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, stdout=asyncio.subprocess.PIPE)
    await proc.communicate()
    print("communicate", proc.pid, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
