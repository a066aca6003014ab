"""Write a :class:`~exectracer.analysis.Profile` as a gzipped pprof ``profile.proto``.

The message classes are built at import from a descriptor of the public
``perftools.profiles`` schema (the fields this writer uses), so no generated
code or ``protoc`` is needed; protobuf does the encoding.
"""

from __future__ import annotations

import gzip
import os
from typing import Any, BinaryIO

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ..analysis.profiles import Profile
from ..format.decoder import Frame

_PACKAGE = "perftools.profiles"
_I64, _U64, _BOOL, _STR, _MSG = (
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
)
# message -> (field name, number, type, repeated, message type)
_SCHEMA: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "Profile": [
        ("sample_type", 1, _MSG, True, "ValueType"),
        ("sample", 2, _MSG, True, "Sample"),
        ("mapping", 3, _MSG, True, "Mapping"),
        ("location", 4, _MSG, True, "Location"),
        ("function", 5, _MSG, True, "Function"),
        ("string_table", 6, _STR, True, None),
        ("time_nanos", 9, _I64, False, None),
        ("duration_nanos", 10, _I64, False, None),
        ("period_type", 11, _MSG, False, "ValueType"),
        ("period", 12, _I64, False, None),
        ("comment", 13, _I64, True, None),
        ("default_sample_type", 14, _I64, False, None),
    ],
    "ValueType": [("type", 1, _I64, False, None), ("unit", 2, _I64, False, None)],
    "Sample": [("location_id", 1, _U64, True, None), ("value", 2, _I64, True, None)],
    "Mapping": [
        ("id", 1, _U64, False, None),
        ("filename", 5, _I64, False, None),
        ("has_functions", 7, _BOOL, False, None),
        ("has_filenames", 8, _BOOL, False, None),
        ("has_line_numbers", 9, _BOOL, False, None),
    ],
    "Location": [("id", 1, _U64, False, None), ("mapping_id", 2, _U64, False, None), ("line", 4, _MSG, True, "Line")],
    "Line": [("function_id", 1, _U64, False, None), ("line", 2, _I64, False, None)],
    "Function": [
        ("id", 1, _U64, False, None),
        ("name", 2, _I64, False, None),
        ("system_name", 3, _I64, False, None),
        ("filename", 4, _I64, False, None),
        ("start_line", 5, _I64, False, None),
    ],
}


def _message_classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="exectracer_pprof_profile.proto", package=_PACKAGE, syntax="proto3")
    for name, fields in _SCHEMA.items():
        message = file.message_type.add(name=name)
        for field_name, number, ftype, repeated, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=ftype)
            field.label = (
                descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                if repeated
                else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
            )
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")) for name in _SCHEMA}


_CLASSES = _message_classes()


class _Strings:
    """pprof's string table: index 0 is the empty string."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._ids: dict[str, int] = {}
        self.id("")

    def id(self, s: str) -> int:
        sid = self._ids.get(s)
        if sid is None:
            sid = self._ids[s] = len(self._table)
            self._table.append(s)
        return sid


def to_proto(profile: Profile, comment: str | None = None) -> Any:
    """The profile as a ``perftools.profiles.Profile`` message."""
    msg = _CLASSES["Profile"]()
    strings = _Strings(msg.string_table)
    for type_name, unit in profile.sample_types:
        msg.sample_type.add(type=strings.id(type_name), unit=strings.id(unit))
    msg.default_sample_type = strings.id(profile.sample_types[-1][0])
    msg.mapping.add(id=1, filename=strings.id("python"), has_functions=True, has_filenames=True, has_line_numbers=True)
    functions: dict[tuple[str, str], int] = {}
    locations: dict[Frame, int] = {}

    def location_of(frame: Frame) -> int:
        loc = locations.get(frame)
        if loc is None:
            fkey = (frame.function, frame.file)
            fid = functions.get(fkey)
            if fid is None:
                fid = functions[fkey] = len(functions) + 1
                name = strings.id(frame.function)
                msg.function.add(id=fid, name=name, system_name=name, filename=strings.id(frame.file))
            loc = locations[frame] = len(locations) + 1
            msg.location.add(id=loc, mapping_id=1).line.add(function_id=fid, line=frame.line)
        return loc

    for sid, values in zip(profile.stacks.tolist(), profile.values.tolist(), strict=True):
        msg.sample.add(location_id=[location_of(f) for f in profile.stack_frames(sid)], value=values)
    msg.time_nanos = profile.wall_start_ns
    msg.duration_nanos = profile.end_ns - profile.start_ns
    if profile.period_ns:
        msg.period_type.type = strings.id("cpu")
        msg.period_type.unit = strings.id("nanoseconds")
        msg.period = profile.period_ns
    if comment:
        msg.comment.append(strings.id(comment))
    return msg


def write(profile: Profile, dest: str | os.PathLike[str] | BinaryIO, comment: str | None = None) -> None:
    """Write ``profile`` as gzipped ``profile.proto`` to a path or binary file."""
    data = gzip.compress(to_proto(profile, comment).SerializeToString(), mtime=0)
    if hasattr(dest, "write"):
        dest.write(data)
        return
    with open(dest, "wb") as file:
        file.write(data)
