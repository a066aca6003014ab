"""A program whose SIGUSR1 handler restarts the calls it interrupts (``signal.siginterrupt(SIGUSR1, False)``):
a read blocked when the signal comes goes on, and the handler runs once it returns. Traces itself from start to
stop first (``--trace PATH``), as a program that calls ``exectracer.start`` and ``stop`` does, then prints in which
order the handler ran and the data came."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

order: list[str] = []
signal.signal(signal.SIGUSR1, lambda signum, frame: order.append("handler"))
signal.siginterrupt(signal.SIGUSR1, False)
if len(sys.argv) > 2 and sys.argv[1] == "--trace":
    import exectracer

    with exectracer.trace(sys.argv[2]):  # stop() holds the program's handlers off while it finishes
        time.sleep(0.01)

read_end, write_end = os.pipe()
main, main_tid = threading.get_ident(), threading.get_native_id()


def blocked_in_read() -> bool:
    """Whether the main thread sleeps in a system call (the read) now."""
    with open(f"/proc/self/task/{main_tid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0] == "S"


def poke() -> None:
    while not all(blocked_in_read() for _ in range(3) if not time.sleep(0.01)):
        pass
    signal.pthread_kill(main, signal.SIGUSR1)  # restarted: the read goes on, the handler waits for it
    time.sleep(0.5)
    order.append("data")
    os.write(write_end, b"x")


threading.Thread(target=poke).start()
os.read(read_end, 1)
time.sleep(0.01)  # the handler runs at the latest here
print(" then ".join(order))
