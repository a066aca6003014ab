"""Write a :class:`~exectracer.export.timeline.Timeline` as a Perfetto trace (``TrackEvent`` protobuf packets).

Tracks: the process (pid, argv), a thread track per thread, a track per
asyncio or trio task under its loop's thread (under the process where
that is unknown), a regions track under each goroutine that has user
regions, a track per user task, a GC track and counter tracks for the
heap. State slices carry the state as their name, ``blocked`` and the
wait's category as their categories, and the innermost frame of the
program's own code as their source location; an arrow (flow) runs from
the goroutine that ended a wait to the slice that follows it.

Event names, categories, annotation names and source locations are
interned once, at the start of the one packet sequence. The events are
encoded a block at a time with NumPy (:mod:`exectracer.export.protowire`),
so the file is written at millions of events a second in bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from ..analysis.states import State
from ..table import distinct
from .protowire import (
    FIXED64,
    VARINT,
    Const,
    Msg,
    Part,
    Raw,
    choice,
    encode,
    encode_strings,
    field,
    message,
    padded,
    padded_bytes,
    tag,
    var,
    varint,
    varint_width,
)
from .timeline import STATE_CATEGORIES, Timeline

BLOCK = 1 << 19  # rows encoded at a time: bounds the memory the encoding takes
STRING_BLOCK = 1 << 16  # tracks named one by one encoded at a time
DENSE_STACK_IDS = 1 << 24  # stack ids below this are counted in a table
SEQUENCE = 1
PROCESS_UUID, GC_UUID, COUNTER_UUID = 1, 2, 3  # counters: 3, 4, ...
GOROUTINE_UUID = 16  # plus the goroutine's dense index
REGIONS_UUID = 1 << 40  # plus the goroutine's dense index
USER_TASK_UUID = 2 << 40  # plus the user task's row

# TracePacket, TrackEvent and TrackDescriptor field numbers (perfetto/trace/trace_packet.proto and track_event/)
_PACKET = 1  # Trace.packet
_TS, _SEQ_ID, _SEQ_FLAGS, _TRACK_EVENT, _INTERNED, _DESCRIPTOR, _FIRST_ON_SEQUENCE = 8, 10, 13, 11, 12, 60, 87
_CLEARED, _NEEDS_STATE = 1, 2  # sequence_flags
_E_CATEGORY_IIDS, _E_ANNOTATIONS, _E_TYPE, _E_NAME_IID, _E_TRACK = 3, 4, 9, 10, 11
_E_COUNTER, _E_LOCATION_IID, _E_FLOWS, _E_TERMINATING_FLOWS = 30, 34, 47, 48
_BEGIN, _END, _INSTANT, _COUNTER = 1, 2, 3, 4  # TrackEvent.Type
_UNITS = {"count": 2, "bytes": 3}  # CounterDescriptor.Unit

_ON_SEQUENCE = field(_SEQ_ID, SEQUENCE) + field(_SEQ_FLAGS, _NEEDS_STATE)  # an event that uses interned data
_SEQUENCE_ONLY = field(_SEQ_ID, SEQUENCE)


class _Interned:
    """Ids for one kind of interned data (names, categories, annotation names), from 1."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        iid = self.ids.get(name)
        if iid is None:
            iid = self.ids[name] = len(self.ids) + 1
        return iid

    def many(self, names: NDArray[np.object_]) -> NDArray[np.int64]:
        """The ids of an array of names."""
        if len(names) == 0:
            return np.zeros(0, dtype=np.int64)
        unique, inverse = np.unique(names.astype(str), return_inverse=True)
        return np.array([self(str(n)) for n in unique], dtype=np.int64)[inverse]

    def entries(self, number: int) -> bytes:
        """The ``InternedData`` entries (``{iid = 1, name = 2}``) under field ``number``."""
        return b"".join(message(number, field(1, iid), field(2, name)) for name, iid in self.ids.items())


class PerfettoWriter:
    """Encodes one timeline; :meth:`chunks` yields the file's bytes."""

    def __init__(self, timeline: Timeline) -> None:
        self.t = timeline
        self.names, self.categories, self.annotations = _Interned(), _Interned(), _Interned()
        self.locations: dict[tuple[str, str, int], int] = {}
        self.events = 0
        self._location_of_stack = self._intern_locations()

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The trace: track descriptors, interned data, then the events, block by block."""
        parts = [self._flows(), self._states(), self._counters(), self._collections()]
        parts += [self._logs(), self._regions(), self._user_tasks()]
        descriptors = self._descriptors()  # after the parts above named the tracks and interned their strings
        yield descriptors
        yield self._interned_data()
        for part in parts:
            for fields, n in part:
                self.events += n
                yield encode(fields, n).data

    # -- tracks -------------------------------------------------------------------------------------------------------

    def _descriptors(self) -> bytes:
        t = self.t
        process = message(
            3,
            field(1, t.pid),
            *(field(2, arg) for arg in t.argv),
            field(6, t.process_name),
        )
        out = [_track(PROCESS_UUID, process)]
        g = t.tracks
        for gi in np.flatnonzero(~g.is_task).tolist():
            thread = message(4, field(1, t.pid), field(2, int(g.tid[gi])), field(5, g.name[gi]))
            out.append(_track(GOROUTINE_UUID + gi, thread))
        tasks = np.flatnonzero(g.is_task)
        parents = np.where(g.home[tasks] >= 0, GOROUTINE_UUID + g.home[tasks].astype(np.int64), PROCESS_UUID)
        out.append(_named_tracks(GOROUTINE_UUID + tasks, parents, [g.name[i] for i in tasks.tolist()]))
        gis = self._region_gi
        with_regions = distinct(gis[gis >= 0]).astype(np.int64)
        same = np.zeros(len(with_regions), dtype=np.intp)
        out.append(_tracks_of_names(REGIONS_UUID + with_regions, GOROUTINE_UUID + with_regions, ["regions"], same))
        u = t.user_tasks
        string_ids, which = np.unique(u.name_id, return_inverse=True)
        names = [f"user task {self.t.trace.string(i) if i >= 0 else '?'}" for i in string_ids.tolist()]
        rows = np.arange(len(u), dtype=np.int64)
        out.append(_tracks_of_names(USER_TASK_UUID + rows, np.full(len(u), PROCESS_UUID), names, which.reshape(-1)))
        if len(t.collections):
            out.append(_track(GC_UUID, field(5, PROCESS_UUID), field(2, "GC")))
        for i, (name, unit, _) in enumerate(t.counters()):
            counter = message(8, field(3, _UNITS[unit]))
            out.append(_track(COUNTER_UUID + i, field(5, PROCESS_UUID), field(2, name), counter))
        return b"".join(out)

    def _interned_data(self) -> bytes:
        locations = b"".join(
            message(4, field(1, iid), field(2, file), field(3, function), field(4, max(line, 0)))
            for (file, function, line), iid in self.locations.items()
        )
        interned = message(
            _INTERNED,
            self.categories.entries(1),
            self.names.entries(2),
            self.annotations.entries(3),
            locations,
        )
        first = field(_SEQ_ID, SEQUENCE) + field(_SEQ_FLAGS, _CLEARED) + field(_FIRST_ON_SEQUENCE, 1)
        return message(_PACKET, first, interned)

    def _intern_locations(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The stack ids slices show (sorted) and each one's source location iid (0 none)."""
        t = self.t
        stacks = t.states.stack
        top = max(int(stacks.max()) if len(stacks) else 0, int(t.func_stack.max()) if len(t.func_stack) else 0, 0)
        if top < DENSE_STACK_IDS:  # a trace's stack ids are small and dense: count them
            used = np.bincount(np.clip(stacks, -1, top).astype(np.int64) + 1, minlength=top + 2) > 0
            used[t.func_stack[t.func_stack >= 0] + 1] = True
            ids = np.flatnonzero(used[1:])
        else:  # a damaged trace's may be anything
            ids = np.unique(np.concatenate((stacks[stacks >= 0], t.func_stack[t.func_stack >= 0])))
        iids = np.zeros(len(ids), dtype=np.int64)
        for i, sid in enumerate(ids.tolist()):
            frame = t.frame(sid)
            if frame is not None:
                key = (frame.file, frame.function, frame.line)
                iids[i] = self.locations.setdefault(key, len(self.locations) + 1)
        return ids.astype(np.int64), iids

    def _location_iids(self, stack_ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """The source location iid of each stack id (0 none)."""
        ids, iids = self._location_of_stack
        if not len(ids):
            return np.zeros(len(stack_ids), dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, stack_ids), len(ids) - 1)
        return np.where(ids[at] == stack_ids, iids[at], 0)

    # -- events -------------------------------------------------------------------------------------------------------

    def _states(self) -> Iterator[tuple[list[Part], int]]:
        """Each state slice: its begin (name, categories, source location, the arrow that ends there) and end."""
        entries: dict[State, tuple[int, list[int]]] = {}
        for state, cats in STATE_CATEGORIES.items():
            entries[state] = (self.names(state.name.lower()), [self.categories(c) for c in cats])
        return self._state_blocks(entries)

    def _state_blocks(self, entries: dict[State, tuple[int, list[int]]]) -> Iterator[tuple[list[Part], int]]:
        s, flows_to = self.t.states, self.t.flows.to_row
        # every state's name and categories in as many bytes: the name's varint padded
        longest = max(len(varint(name)) + 2 * len(cats) for name, cats in entries.values())
        kinds = [bytes(1 + longest) for _ in State]
        for which, (name, cats) in entries.items():
            width = longest - 2 * len(cats)
            kinds[which] = (
                field(_E_NAME_IID, 0)[:1]
                + padded_bytes(name, width)
                + b"".join(field(_E_CATEGORY_IIDS, c) for c in cats)
            )
        end = Const(field(_E_TYPE, _END))
        for lo in range(0, len(s), BLOCK):
            hi = min(lo + BLOCK, len(s))
            gi, state, stack = s.gi[lo:hi], s.state[lo:hi], s.stack[lo:hi]
            track = gi.astype(np.int64) + GOROUTINE_UUID
            where = self.t.locations(gi, stack, state)
            location = self._location_iids(where)
            first, last = np.searchsorted(flows_to, [lo, hi])
            flow = np.zeros(hi - lo, dtype=np.int64)
            flow[flows_to[first:last] - lo] = np.arange(first, last) + 1
            track_field = var(_E_TRACK, track)
            begin = [
                Const(field(_E_TYPE, _BEGIN)),
                *_choice8(kinds, state.astype(np.intp)),
                *track_field,
                *_location_or_track(location, track),
                *_flow_or_type(_E_TERMINATING_FLOWS, flow, _BEGIN),
            ]
            rel = self.t.rel
            finish = _packet(rel(s.end[lo:hi]), [end, *track_field], _SEQUENCE_ONLY)  # an end needs no interned data
            yield [_packet(rel(s.start[lo:hi]), begin), finish], hi - lo

    def _flows(self) -> Iterator[tuple[list[Part], int]]:
        """An instant on the waker's track where it woke another goroutine, the arrow's start."""
        kind = Const(field(_E_TYPE, _INSTANT) + field(_E_NAME_IID, self.names("wake-up")))
        return self._flow_blocks(kind)

    def _flow_blocks(self, kind: Const) -> Iterator[tuple[list[Part], int]]:
        f = self.t.flows
        for lo in range(0, len(f), BLOCK):
            hi = min(lo + BLOCK, len(f))
            ids = np.arange(lo, hi, dtype=np.int64) + 1
            event = [
                kind,
                *var(_E_TRACK, f.from_gi[lo:hi].astype(np.int64) + GOROUTINE_UUID),
                *_flow_or_type(_E_FLOWS, ids, _INSTANT),
            ]
            yield [_packet(self.t.rel(f.ts[lo:hi]), event)], hi - lo

    def _counters(self) -> Iterator[tuple[list[Part], int]]:
        for i, (_, _, c) in enumerate(self.t.counters()):
            kind = Const(field(_E_TYPE, _COUNTER) + field(_E_TRACK, COUNTER_UUID + i))
            for lo in range(0, len(c), BLOCK):
                hi = min(lo + BLOCK, len(c))
                values = np.maximum(c.value[lo:hi], 0)
                yield [_packet(self.t.rel(c.ts[lo:hi]), [kind, *var(_E_COUNTER, values)])], hi - lo

    def _collections(self) -> Iterator[tuple[list[Part], int]]:
        c = self.t.collections
        generation = np.clip(c.generation, 0, 3).astype(np.intp)
        names = [self.names(f"gc gen {g}" if g < 3 else "gc") for g in range(4)]
        category = self.categories("gc")
        kinds = [field(_E_TYPE, _BEGIN) + field(_E_NAME_IID, n) + field(_E_CATEGORY_IIDS, category) for n in names]
        collected = self.annotations("collected")
        track = Const(field(_E_TRACK, GC_UUID))
        out: list[tuple[list[Part], int]] = []
        for closed in (True, False):  # a collection still running at the end has no count
            rows = np.flatnonzero((c.collected >= 0) == closed)
            if not len(rows):
                continue
            extra = [Msg(_E_ANNOTATIONS, [Const(field(1, collected)), *var(4, c.collected[rows])])] if closed else []
            begin = _packet(self.t.rel(c.start[rows]), [*_choice8(kinds, generation[rows]), track, *extra])
            end = _packet(self.t.rel(c.end[rows]), [Const(field(_E_TYPE, _END)), track], _SEQUENCE_ONLY)
            out.append(([begin, end], len(rows)))
        return iter(out)

    def _logs(self) -> Iterator[tuple[list[Part], int]]:
        logs = self.t.logs
        if not len(logs):
            return iter(())
        gi = self._gi(logs.g)
        track = np.where(gi >= 0, gi.astype(np.int64) + GOROUTINE_UUID, PROCESS_UUID)
        category = np.where(np.isin(logs.category, ["", "?"]), "log", logs.category)
        event = [
            Const(field(_E_TYPE, _INSTANT)),
            *var(_E_NAME_IID, self.names.many(logs.message)),
            *var(_E_CATEGORY_IIDS, self.categories.many(category)),
            *var(_E_TRACK, track),
        ]
        return iter([([_packet(self.t.rel(logs.ts), event)], len(logs))])

    @property
    def _region_gi(self) -> NDArray[np.int32]:
        return self._gi(self.t.regions.g)

    def _regions(self) -> Iterator[tuple[list[Part], int]]:
        r = self.t.regions
        gi = self._region_gi
        r, gi = r[gi >= 0], gi[gi >= 0]
        if not len(r):
            return iter(())
        track = REGIONS_UUID + gi.astype(np.int64)
        return iter([(self._slices(r.start, r.end, track, self.names.many(r.name), "region"), len(r))])

    def _user_tasks(self) -> Iterator[tuple[list[Part], int]]:
        u = self.t.user_tasks
        if not len(u):
            return iter(())
        track = USER_TASK_UUID + np.arange(len(u), dtype=np.int64)
        return iter([(self._slices(u.start, u.end, track, self.names.many(u.name), "user_task"), len(u))])

    def _slices(
        self,
        start: NDArray[np.int64],
        end: NDArray[np.int64],
        track: NDArray[np.int64],
        name: NDArray[np.int64],
        category: str,
    ) -> list[Part]:
        kind = Const(field(_E_TYPE, _BEGIN) + field(_E_CATEGORY_IIDS, self.categories(category)))
        track_field = var(_E_TRACK, track)
        begin = _packet(self.t.rel(start), [kind, *var(_E_NAME_IID, name), *track_field])
        finish = _packet(self.t.rel(end), [Const(field(_E_TYPE, _END)), *track_field], _SEQUENCE_ONLY)
        return [begin, finish]

    def _gi(self, g: NDArray[np.int64]) -> NDArray[np.int32]:
        return self.t.tracks.index_of(g)


def _packet(ts: NDArray[np.int64], event: Sequence[Part], sequence: bytes = _ON_SEQUENCE) -> Msg:
    return Msg(_PACKET, [*var(_TS, np.maximum(ts, 0)), Const(sequence), Msg(_TRACK_EVENT, event)])


def _choice8(table: list[bytes], index: NDArray[np.intp]) -> list[Part]:
    """One of ``table``'s entries (all of one length) per row, stored as words of up to 8 bytes."""
    width = len(table[0])
    return [choice([entry[at : at + 8] for entry in table], index) for at in range(0, width, 8)]


def _location_or_track(location: NDArray[np.int64], track: NDArray[np.int64]) -> list[Part]:
    """``source_location_iid`` where a slice has one; elsewhere ``track_uuid`` again, as many bytes (same value)."""
    width = max(varint_width(location), varint_width(track) - 1)
    key = tag(_E_LOCATION_IID, VARINT)  # two bytes
    has = location > 0
    first = np.where(has, key[0], tag(_E_TRACK, VARINT)[0]).astype(np.uint64)
    rest = np.where(has, key[1] | (padded(location, width) << np.uint64(8)), padded(track, width + 1))
    return [Raw(first, 1), Raw(rest, width + 1)]


def _flow_or_type(number: int, flow: NDArray[np.int64], kind: int) -> list[Part]:
    """A fixed64 flow id where ``flow`` is one (not 0); elsewhere ``type`` again, as many bytes (same value)."""
    key = tag(number, FIXED64)  # two bytes
    same = field(_E_TYPE, 0)[:1] + padded_bytes(kind, 9)
    has = flow > 0
    head = np.where(has, int.from_bytes(key, "little"), int.from_bytes(same[:2], "little")).astype(np.uint64)
    tail = np.where(has, flow.astype(np.uint64), np.uint64(int.from_bytes(same[2:], "little")))
    return [Raw(head, 2), Raw(tail, 8)]


def _named_tracks(uuids: NDArray[np.int64], parents: NDArray[np.int64], names: list[str]) -> bytes:
    """A ``TrackDescriptor`` packet for each track: its uuid, its parent's and its own name."""
    out = []
    for lo in range(0, len(names), STRING_BLOCK):
        hi = min(lo + STRING_BLOCK, len(names))
        data = [name.encode("utf-8", "surrogatepass") for name in names[lo:hi]]
        out.append(encode_strings([*var(1, uuids[lo:hi]), *var(5, parents[lo:hi])], 2, data, [_PACKET, _DESCRIPTOR]))
    return b"".join(out)


def _tracks_of_names(
    uuids: NDArray[np.int64], parents: NDArray[np.int64], names: list[str], which: NDArray[np.intp]
) -> bytes:
    """Like :func:`_named_tracks`, for tracks that share a few names: ``names[which[i]]`` is track ``i``'s."""
    out = []
    for i, name in enumerate(names):
        rows = np.flatnonzero(which == i)
        for lo in range(0, len(rows), BLOCK):
            part = rows[lo : lo + BLOCK]
            descriptor = Msg(_DESCRIPTOR, [*var(1, uuids[part]), *var(5, parents[part]), Const(field(2, name))])
            out.append(encode([Msg(_PACKET, [descriptor])], len(part)).tobytes())
    return b"".join(out)


def _track(uuid: int, *fields: bytes) -> bytes:
    return message(_PACKET, message(_DESCRIPTOR, field(1, uuid), *fields))


def write(timeline: Timeline, dest: str | os.PathLike[str] | BinaryIO) -> int:
    """Write ``timeline`` as a Perfetto trace to a path or binary file; return how many events it holds."""
    writer = PerfettoWriter(timeline)
    if not isinstance(dest, (str, os.PathLike)):
        for chunk in writer.chunks():
            dest.write(chunk)
        return writer.events
    with open(dest, "wb") as file:
        for chunk in writer.chunks():
            file.write(chunk)
    return writer.events
