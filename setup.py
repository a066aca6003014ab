"""Builds the optional C versions of the hottest recording hooks; without them, the same hooks run in Python."""

import platform
import sysconfig

from setuptools import Extension, setup

native = platform.python_implementation() == "CPython" and not sysconfig.get_config_var("Py_GIL_DISABLED")
setup(
    ext_modules=[
        Extension("exectracer.record._speedups", ["src/exectracer/record/_speedups.c"], optional=True),
    ]
    if native
    else [],
)
