"""Which frames are the traced program's own code: the rule the summary's top waits use for their callers."""

from __future__ import annotations

import pytest

from exectracer.analysis.program_code import is_program_code
from exectracer.format.decoder import UNKNOWN_FRAME, Frame

LIBRARY = [
    ("asyncio.tasks.sleep", "/usr/lib/python3.11/asyncio/tasks.py"),
    ("asyncio.tasks.sleep", "/root/.pyenv/versions/3.13.0/lib/python3.13/asyncio/tasks.py"),
    ("asyncio.tasks.sleep", "/opt/python/lib/python3.13t/asyncio/tasks.py"),  # free-threaded build
    ("asyncio.tasks.sleep", "/opt/pypy/lib/pypy3.10/asyncio/tasks.py"),
    ("asyncio.tasks.sleep", "/usr/lib/python311.zip/asyncio/tasks.py"),
    ("asyncio.tasks.sleep", r"C:\Program Files\Python311\Lib\asyncio\tasks.py"),
    ("__main__._run_module_as_main", "/usr/lib64/python3.12/runpy.py"),  # a stdlib file run as __main__
    ("runpy._run_code", "<frozen runpy>"),
    ("aiohttp.web_protocol.RequestHandler.start", "/srv/venv/lib/python3.11/site-packages/aiohttp/web_protocol.py"),
    ("requests.api.get", "/usr/lib/python3/dist-packages/requests/api.py"),
    ("httpx._client.Client.send", r"C:\app\.venv\Lib\site-packages\httpx\_client.py"),
    ("exectracer.runner.run_path", "/home/me/exectracer/src/exectracer/runner.py"),
    ("exectracer.record.blocking.Timed.__call__", "/home/me/exectracer/src/exectracer/record/blocking.py"),
]

PROGRAM = [
    ("__main__.sleep_handler", "web_waits.py"),
    ("__main__.main", "/home/me/app/server.py"),
    ("app.views.checkout", "/home/me/app/app/views.py"),
    ("app.views.checkout", r"C:\Users\me\app\app\views.py"),
    ("queue.Worker.run", "/home/me/app/queue.py"),  # a module of the program named like a stdlib one
    ("asyncio_helpers.pause", "/home/me/lib/asyncio_helpers.py"),
    ("<module>", "<string>"),  # python -c
    ("exectracer.examples.service.client", "/home/me/exectracer/src/exectracer/examples/service.py"),  # the demo
    ("tests.test_app.handler", "/home/me/app/tests/test_app.py"),
]


@pytest.mark.parametrize("function, file", LIBRARY)
def test_library_frames(function: str, file: str) -> None:
    assert not is_program_code(Frame(function, file, 1))


@pytest.mark.parametrize("function, file", PROGRAM)
def test_program_frames(function: str, file: str) -> None:
    assert is_program_code(Frame(function, file, 1))


def test_unknown_frames_are_nobodys() -> None:
    assert not is_program_code(UNKNOWN_FRAME) and not is_program_code(Frame("f", "", 0))
