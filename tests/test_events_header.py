"""The C hooks' event numbers (record/csrc/events.h) are generated from format/events.py and checked in:
both must agree."""

from __future__ import annotations

import enum
import importlib.util
import re
from pathlib import Path

import pytest

from exectracer.format import events

pytestmark = pytest.mark.recorder

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "gen_events_header.py"
HEADER = ROOT / "src" / "exectracer" / "record" / "csrc" / "events.h"


def generator():
    spec = importlib.util.spec_from_file_location("gen_events_header", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_header_is_what_events_py_makes():
    tool = generator()
    assert HEADER.read_text() == tool.render(), (
        f"{HEADER.relative_to(ROOT)} is out of date with format/events.py: run {tool.COMMAND}"
    )


def test_the_header_defines_every_number_of_events_py():
    found = re.findall(r"^#define (XT_\w+) (\w+)", HEADER.read_text(), re.MULTILINE)
    defined = {name: int(value.removesuffix("ULL"), 0) for name, value in found}
    expected = {f"XT_{name}": value for name, value in vars(events).items() if name.isupper() and type(value) is int}
    for name, value in vars(events).items():
        if isinstance(value, type) and issubclass(value, enum.IntEnum) and value is not enum.IntEnum:
            prefix = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()
            expected.update({f"XT_{prefix}_{member.name}": int(member) for member in value})
    assert defined == expected
