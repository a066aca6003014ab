"""Builds the optional C versions of the hottest recording hooks; without them, the same hooks run in Python."""

import platform
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("src/exectracer/record/csrc")  # the extension's C files (csrc/speedups.h says which holds what)

native = platform.python_implementation() == "CPython" and not sysconfig.get_config_var("Py_GIL_DISABLED")
setup(
    ext_modules=[
        Extension(
            "exectracer.record._speedups",
            sorted(path.as_posix() for path in CSRC.glob("*.c")),
            depends=sorted(path.as_posix() for path in CSRC.glob("*.h")),
            optional=True,
        ),
    ]
    if native
    else [],
)
