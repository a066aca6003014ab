"""Programs that get SIGINT or SIGTERM as their trace is finished: ``python signals_at_the_end.py SCENARIO [TRACE]``.

- ``stop-interrupted TRACE``: traces into TRACE through ``exectracer.start``/``stop``; a Ctrl-C (SIGINT) comes
  while ``stop()`` waits for the trace's last write (the file's ``write`` sends it, then lingers). Prints what
  reached the program.
- ``interrupted-at-the-end``: for ``exectracer run -o FIFO``: logs incompressible messages (more than the FIFO's
  buffer holds), then ends; a thread sends SIGINT once the recording is stopping, when the runner waits for the
  reader of the FIFO, and prints ``SIGINT sent``.
- ``terminated``: logs ``before SIGTERM`` and sends itself SIGTERM (its action the default), then waits.
- ``terminated-with-handler``: the same with a handler of its own for SIGTERM, which prints and exits with 3.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time

import exectracer

DEADLINE = 60.0  # seconds


class SignallingFile(io.FileIO):
    """A trace file that sends SIGINT to the process on its first write once the recording stops, then lingers:
    ``stop()`` is waiting for that write when the signal comes."""

    armed = sent = False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.armed and not exectracer.is_tracing() and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the main thread takes the signal meanwhile, inside stop()
        return super().write(data)


def stop_interrupted(path: str) -> None:
    sink = SignallingFile(path, "wb")
    exectracer.start(sink, flush_interval=60.0)
    sink.armed = True
    exectracer.log("test", "before stop")
    try:
        exectracer.stop()
    except KeyboardInterrupt:
        print("KeyboardInterrupt after stop", flush=True)
    sink.close()
    print(f"tracing: {exectracer.is_tracing()}, sent: {sink.sent}", flush=True)


def interrupted_at_the_end() -> None:
    for _ in range(2000):
        exectracer.log("noise", os.urandom(16).hex())

    def interrupt_when_stopping() -> None:
        deadline = time.monotonic() + DEADLINE
        while exectracer.is_tracing() and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)
        print("SIGINT sent", flush=True)

    threading.Thread(target=interrupt_when_stopping, daemon=True).start()
    print("program done", flush=True)


def terminated(with_handler: bool) -> None:
    if with_handler:

        def on_term(signum: int, frame: object) -> None:
            print(f"handler ran for {signum}", flush=True)
            sys.exit(3)

        signal.signal(signal.SIGTERM, on_term)
    handler = signal.getsignal(signal.SIGTERM)
    print(f"SIGTERM handler: {handler.__qualname__ if callable(handler) else repr(handler)}", flush=True)
    exectracer.log("test", "before SIGTERM")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(DEADLINE)
    print("still alive", flush=True)


if __name__ == "__main__":
    scenario = sys.argv[1]
    if scenario == "stop-interrupted":
        stop_interrupted(sys.argv[2])
    elif scenario == "interrupted-at-the-end":
        interrupted_at_the_end()
    elif scenario in ("terminated", "terminated-with-handler"):
        terminated(scenario == "terminated-with-handler")
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
