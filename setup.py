"""Builds the optional C versions of the hottest recording hooks; without them, the same hooks run in Python."""

import platform
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("src/exectracer/record/csrc")  # the extension's C files (csrc/speedups.h says which holds what)
PLANES = Path("src/exectracer/format/csrc")  # events as byte planes: their own module, and the recorder's compression

native = platform.python_implementation() == "CPython" and not sysconfig.get_config_var("Py_GIL_DISABLED")
setup(
    ext_modules=[
        Extension(
            "exectracer.record._speedups",
            [*sorted(path.as_posix() for path in CSRC.glob("*.c")), (PLANES / "planes.c").as_posix()],
            depends=sorted(path.as_posix() for path in [*CSRC.glob("*.h"), PLANES / "planes.h"]),
            optional=True,
        ),
        Extension(
            "exectracer.format._planes",
            sorted(path.as_posix() for path in PLANES.glob("*.c")),
            depends=[(PLANES / "planes.h").as_posix()],
            optional=True,
        ),
    ]
    if native
    else [],
)
