"""The fault campaign's unusual programs: each run untraced and under ``exectracer run``, the same output
and exit status expected (the tracer's own one-line report aside), and a readable trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import exectracer

pytestmark = pytest.mark.recorder

PROGRAMS = {
    "signal handler": """
        import os, signal
        got = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
        for _ in range(5):
            os.kill(os.getpid(), signal.SIGUSR1)
        print(len(got), signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL)
    """,
    "sigwaitinfo on a blocked signal": """
        import os, signal
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        os.kill(os.getpid(), signal.SIGUSR1)
        print(signal.sigwaitinfo([signal.SIGUSR1]).si_signo)
    """,
    "sigwaitinfo with a handler installed": """
        import os, signal
        signal.signal(signal.SIGUSR1, lambda signum, frame: print("handler ran"))
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        os.kill(os.getpid(), signal.SIGUSR1)
        print(signal.sigwaitinfo([signal.SIGUSR1]).si_signo)
    """,
    "fork": """
        import os
        pid = os.fork()
        if pid == 0:
            print("child", flush=True)
            os._exit(3)
        _, status = os.waitpid(pid, 0)
        print("parent", os.waitstatus_to_exitcode(status))
    """,
    "os._exit": """
        import os, sys
        print("leaving", flush=True)
        os._exit(7)
    """,
    "sys.exit with a message": """
        import sys
        sys.exit("fatal: gave up")
    """,
    "threads that raise": """
        import threading
        def boom(n):
            raise ValueError(f"thread {n}")
        threads = [threading.Thread(target=boom, args=(n,), name=f"worker-{n}") for n in range(3)]
        for t in threads:
            t.start()
            t.join()
        print("survived", threading.active_count())
    """,
    "KeyboardInterrupt": """
        print("interrupting", flush=True)
        raise KeyboardInterrupt
    """,
    "100 000 tasks": """
        import asyncio
        async def one(n):
            await asyncio.sleep(0)
            return n
        async def main():
            return sum(await asyncio.gather(*(one(n) for n in range(100_000))))
        print(asyncio.run(main()))
    """,
    "200 threads": """
        import threading
        seen = []
        lock = threading.Lock()
        def work(n):
            with lock:
                seen.append(n)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(seen), sum(seen), threading.active_count())
    """,
    "deep recursion": """
        import sys
        sys.setrecursionlimit(20_000)
        def down(n):
            return 0 if n == 0 else 1 + down(n - 1)
        print(down(15_000))
    """,
    "daemon thread left running": """
        import threading, time
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        print("done")
    """,
    "atexit": """
        import atexit
        atexit.register(print, "atexit ran")
        print("main done")
    """,
}


def _ours(line: str) -> bool:
    return line.startswith("exectracer: ")


def _without_fork_warning(lines: list[str]) -> list[str]:
    """Python 3.12+ warns at ``os.fork()`` in a process with several OS threads, and the tracer's threads
    are OS threads: the one difference a traced program that forks sees (docs/recording.md, Safety)."""
    out: list[str] = []
    for line in lines:
        if out and "is multi-threaded, use of fork() may lead to deadlocks" in out[-1]:
            out.pop()  # the warning, and its source line after it
            continue
        out.append(line)
    return out


@pytest.mark.parametrize("name", PROGRAMS)
def test_unusual_program_behaves_as_untraced(tmp_path: Path, name: str) -> None:
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent(PROGRAMS[name]))
    untraced = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    traced = subprocess.run(
        [sys.executable, "-m", "exectracer", "run", "-o", "t.xtrace", "prog.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (traced.returncode, traced.stdout) == (untraced.returncode, untraced.stdout), traced.stderr
    stderr = [line for line in traced.stderr.splitlines() if not _ours(line)]
    if name == "fork" and sys.version_info >= (3, 12):
        stderr = _without_fork_warning(stderr)
    assert stderr == untraced.stderr.splitlines()
    if name != "os._exit":  # no trace is finished when the process leaves without running anything
        exectracer.load(tmp_path / "t.xtrace")
