"""The byte planes of an EVENTS payload, in C (``format/csrc``): ``format/planes.py`` is their reference."""

from typing_extensions import Buffer

def to_planes(payload: Buffer, /) -> bytes:
    """The byte planes of the EVENTS payload ``payload`` (without the GIL)."""

def from_planes(planes: Buffer, /) -> bytes:
    """The EVENTS payload whose byte planes are ``planes`` (without the GIL)."""
