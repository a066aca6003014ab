"""A task waiting for child processes on asyncio's loop: ``task_child_waits.py``.

The main task starts a Python child that exits once it reads a line, and
awaits its ``wait()``: another task writes the line only once the main
task is suspended in that wait, so the wait is one however slow the
machine. Then it starts another and awaits its ``communicate()`` with that
line as input. Prints ``wait PID`` and ``communicate PID``.
"""

from __future__ import annotations

import asyncio
import sys

CHILD = "import sys\nsys.stdin.readline()\nprint('done', flush=True)\n"


async def release(proc: asyncio.subprocess.Process) -> None:
    """Let the child go (the main task is waiting for it: it scheduled this task, then awaited)."""
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    proc.stdin.close()


async def main() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL
    )
    releasing = asyncio.ensure_future(release(proc))
    await proc.wait()
    await releasing
    print("wait", proc.pid, flush=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    await proc.communicate(b"go\n")
    print("communicate", proc.pid, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
