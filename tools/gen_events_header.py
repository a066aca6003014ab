"""Write the C hooks' event numbers (src/exectracer/record/csrc/events.h) from their one source, format/events.py.

Every integer constant of events.py (ARG_SHIFT, KIND_MASK, ...) becomes
``#define XT_<NAME>``, and every member of its IntEnums ``#define
XT_<ENUM>_<MEMBER>`` (Kind.TASK_STEP: XT_KIND_TASK_STEP, CallbackSource.IO:
XT_CALLBACK_SOURCE_IO), with the comment it has in events.py.

    python tools/gen_events_header.py          # write the header
    python tools/gen_events_header.py --check  # exit 1 if it is not up to date

tests/test_events_header.py fails when the checked-in header is not what
this script writes.
"""

from __future__ import annotations

import argparse
import ast
import enum
import importlib.util
import io
import re
import sys
import tokenize
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "exectracer" / "format" / "events.py"
HEADER = ROOT / "src" / "exectracer" / "record" / "csrc" / "events.h"
COMMAND = "python tools/gen_events_header.py"
PREFIX = "XT_"


def load(path: Path) -> ModuleType:
    """events.py as a module of its own (the package's __init__ imports much more)."""
    spec = importlib.util.spec_from_file_location("_events_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and enums look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def comments(text: str) -> tuple[dict[int, str], dict[int, str]]:
    """The ``#`` comments by line number: those after code, and those on a line of their own."""
    trailing: dict[int, str] = {}
    alone: dict[int, str] = {}
    lines = text.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            line = token.start[0]
            note = token.string.lstrip("#").strip().replace("*/", "* /")
            (alone if not lines[line - 1][: token.start[1]].strip() else trailing)[line] = note
    return trailing, alone


def upper_snake(name: str) -> str:
    """CallbackSource -> CALLBACK_SOURCE."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def literal(name: str, value: int) -> str:
    """A C literal for ``value``: masks in hex, anything past a 32-bit int unsigned long long."""
    if value < 0:
        raise ValueError(f"{name} = {value}: the header has no negative numbers")
    if value > 0x7FFFFFFF:
        return f"0x{value:X}ULL"
    return f"0x{value:X}" if "MASK" in name else str(value)


def define(name: str, value: int, comment: str | None) -> str:
    line = f"#define {name} {literal(name, value)}"
    return f"{line:<48} /* {comment} */" if comment else line


def render(source: Path = SOURCE) -> str:
    """The header's text, from events.py at ``source``."""
    text = source.read_text()
    module = load(source)
    notes, headings = comments(text)
    blocks: list[list[str]] = []
    constants: list[str] = []
    for node in ast.parse(text).body:  # in the order events.py defines them
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    value = getattr(module, target.id)
                    if isinstance(value, int) and not isinstance(value, bool):
                        constants.append(define(PREFIX + target.id, value, notes.get(node.lineno)))
        elif isinstance(node, ast.ClassDef):
            enum_type = getattr(module, node.name)
            if not (isinstance(enum_type, type) and issubclass(enum_type, enum.IntEnum)):
                continue
            if constants:
                blocks.append(constants)
                constants = []
            doc = (enum_type.__doc__ or "").strip().splitlines()
            block = [f"/* {node.name}: {doc[0]} */" if doc else f"/* {node.name} */"]
            lines = {
                target.id: statement.lineno
                for statement in node.body
                if isinstance(statement, ast.Assign)
                for target in statement.targets
                if isinstance(target, ast.Name)
            }
            after = node.lineno
            for member in enum_type:
                line = lines.get(member.name, after)
                block += [f"/* {headings[n]} */" for n in sorted(headings) if after < n < line]  # "# threads: g = ..."
                block.append(define(f"{PREFIX}{upper_snake(node.name)}_{member.name}", int(member), notes.get(line)))
                after = line
            blocks.append(block)
    if constants:
        blocks.append(constants)
    names = [line.split()[1] for block in blocks for line in block if line.startswith("#define")]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise ValueError(f"names defined twice: {', '.join(clashes)}")
    head = [
        "/* Generated by tools/gen_events_header.py from src/exectracer/format/events.py; do not edit.",
        f"   After changing events.py, run: {COMMAND} */",
        "",
        "#ifndef EXECTRACER_EVENTS_H",
        "#define EXECTRACER_EVENTS_H",
    ]
    body = "\n\n".join("\n".join(block) for block in blocks)
    return "\n".join(head) + "\n\n" + body + "\n\n#endif /* EXECTRACER_EVENTS_H */\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only say whether the header is up to date (exit 1 if not)"
    )
    args = parser.parse_args(argv)
    wanted = render()
    current = HEADER.read_text() if HEADER.exists() else None
    if args.check:
        if current != wanted:
            print(f"{HEADER.relative_to(ROOT)} is not what events.py makes: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        HEADER.write_text(wanted)
        print(f"wrote {HEADER.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
