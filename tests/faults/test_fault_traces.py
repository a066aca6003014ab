"""The fault campaign's damaged traces: every read path over a few hundred damaged copies of a real trace.

Bit flips, truncations, duplicated, reordered and removed chunks, valid
chunks with events or values no recorder makes, and inflate bombs (see
``damage.py``), each through ``load``, the summary, every profile and the
viewer's API, in a process with a memory limit and a time limit per case.
Each must end in a clean result or a one-line ``TraceFormatError``.

Seeded: ``EXECTRACER_FAULT_SEED`` (default 2026) and
``EXECTRACER_FAULT_CASES`` (default 300) choose the campaign; a failure
names its seed and case, and ``python tests/faults/read_damaged.py TRACE
--seed S --first CASE --cases 1`` makes it again. For a longer soak, run
this test with more cases and other seeds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import exectracer

HERE = Path(__file__).resolve().parent
SEED = int(os.environ.get("EXECTRACER_FAULT_SEED", "2026"))
CASES = int(os.environ.get("EXECTRACER_FAULT_CASES", "300"))


def busy_program() -> None:
    """Threads on a lock, asyncio tasks on sockets and sleeps, collections, annotations: most event kinds."""
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            with lock:
                time.sleep(0.001)

    async def main() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.readline():
                writer.write(data)
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with exectracer.task("talk"):
            for i in range(20):
                with exectracer.region("round trip"):
                    writer.write(b"ping\n")
                    await reader.readline()
                exectracer.log("round", str(i))
        writer.close()
        await asyncio.gather(asyncio.sleep(0.01), asyncio.to_thread(time.sleep, 0.01))
        server.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    asyncio.run(main())
    gc.collect()
    for thread in threads:
        thread.join()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "intact.xtrace"
    with exectracer.trace(path, flush_interval=0.02):  # several EVENTS chunks to damage
        busy_program()
    exectracer.load(path, strict=True)
    return path


@pytest.mark.timeout(1800)
def test_every_read_path_survives_damaged_traces(recorded: Path) -> None:
    intact = exectracer.load(recorded, strict=True).event_count
    run = subprocess.run(
        [sys.executable, str(HERE / "read_damaged.py"), str(recorded), "--seed", str(SEED), "--cases", str(CASES)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcomes = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(outcomes) == CASES
    failed = [o for o in outcomes if o["outcome"] not in ("ok", "refused")]
    replay = f"python tests/faults/read_damaged.py TRACE --seed {SEED} --first CASE --cases 1"
    assert not failed, f"{len(failed)} of {CASES} cases failed ({replay}):\n" + "\n".join(
        json.dumps(o)[:2500] for o in failed[:5]
    )
    doubled = [o for o in outcomes if o["damage"] == "duplicate chunk" and o.get("events", 0) > intact]
    assert not doubled, f"duplicated chunks counted twice: {doubled[:3]}"
    kinds = {o["damage"] for o in outcomes}
    assert len(kinds) >= 8, kinds  # the seed chose most kinds of damage
    assert any(o["outcome"] == "ok" for o in outcomes) and any(o["outcome"] == "refused" for o in outcomes)
