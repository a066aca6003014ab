"""record/_speedups.pyi names what the built C module has: its public names, and each type's own attributes."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from exectracer.record import native

pytestmark = pytest.mark.recorder

STUB = Path(native.__file__).with_name("_speedups.pyi")
MAY_BE_MISSING = {"compress_whole"}  # only where the zlib module's libz is a shared library of its own

speedups = native.speedups()


def applies(test: ast.expr) -> bool:
    """Whether a stub's ``if`` (on sys.version_info or sys.platform) holds on this interpreter."""
    return bool(eval(compile(ast.Expression(test), str(STUB), "eval"), {"sys": sys}))


def defined(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """The names a stub body defines (functions, classes, annotated attributes), following the ``if``s
    that apply here."""
    names: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.If):
            names.update(defined(node.body if applies(node.test) else node.orelse))
    return names


def stub_names() -> dict[str, ast.stmt]:
    return {name: node for name, node in defined(ast.parse(STUB.read_text()).body).items() if not name.startswith("_")}


@pytest.mark.skipif(speedups is None, reason="the C extension is not built or is switched off")
def test_the_stub_names_what_the_module_has():
    built = {name for name in dir(speedups) if not name.startswith("_")}
    stub = set(stub_names())
    assert built - stub == set(), "in the built module, not in _speedups.pyi"
    assert stub - built <= MAY_BE_MISSING, "in _speedups.pyi, not in the built module"


@pytest.mark.skipif(speedups is None, reason="the C extension is not built or is switched off")
def test_the_stub_gives_each_type_its_methods_and_attributes():
    for name, node in stub_names().items():
        if not isinstance(node, ast.ClassDef):
            continue
        built = getattr(speedups, name)
        assert isinstance(built, type), name
        # the type's own methods and attributes (dunders other than construction, calling and binding are object's)
        own = {attr for attr in vars(built) if not attr.startswith("__")}
        stub = {attr for attr in defined(node.body) if not attr.startswith("__")}
        assert own == stub, name


def test_the_planes_stub_names_what_its_module_has():
    from exectracer.format import _planes  # built with the recorder's extension

    tree = ast.parse(Path(_planes.__file__).with_name("_planes.pyi").read_text())
    assert set(defined(tree.body)) == {name for name in dir(_planes) if not name.startswith("_")}


def test_the_stub_is_valid_python():
    ast.parse(STUB.read_text())  # also where the module is not built: the stub ships all the same
