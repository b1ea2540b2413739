"""Recovery points (rp.h): the catalogue of one VM's points in a store."""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from . import _c
from ._base import Handle, b, s, struct
from .store import Extent, ProgressFn, Store

WriteFn = Callable[[bytes, int], Any]


class PointKind(enum.IntEnum):
    CRASH = _c.SITEREC_RP_CRASH
    APP = _c.SITEREC_RP_APP


class Select(enum.IntEnum):
    LATEST = _c.SITEREC_RP_LATEST
    LATEST_APP = _c.SITEREC_RP_LATEST_APP
    BY_ID = _c.SITEREC_RP_BY_ID
    AT_OR_BEFORE = _c.SITEREC_RP_AT_OR_BEFORE


@dataclass(frozen=True)
class PointDisk:
    disk: str
    snapshot: str
    changed: Optional[Tuple[Extent, ...]]   # None: unknown (the whole disk)


@dataclass(frozen=True)
class PointLog:
    disk_index: int
    seq: int
    object: str
    length: int
    sealed_ms: int


@dataclass(frozen=True)
class Point:
    """A recovery point (copied out of the catalogue: stays valid)."""
    id: int
    kind: PointKind
    cut_time_ms: int
    disks: Tuple[PointDisk, ...]
    logs: Tuple[PointLog, ...] = field(default=())


def _point(p: Any) -> Point:
    disks = []
    for i in range(p.n_disks):
        d = p.disks[i]
        changed = None
        if d.n_changed != 2**64 - 1:
            changed = tuple(Extent(d.changed[j].offset, d.changed[j].length) for j in range(d.n_changed))
        disks.append(PointDisk(s(d.disk), s(d.snapshot), changed))
    logs = tuple(PointLog(lg.disk_index, lg.seq, s(lg.object), lg.length, lg.sealed_ms)
                 for lg in (p.logs[j] for j in range(p.n_logs)))
    return Point(p.id, PointKind(p.kind), p.cut_time_ms, tuple(disks), logs)


def _writer(owner: Handle, write: WriteFn) -> Any:
    return owner.tramp(_c.siterec_write_fn, write, convert=lambda buf, n, off: (ctypes.string_at(buf, n), off))


class Catalog(Handle):
    """The recovery points of VM vm_id in store; iterate it (oldest first), index it, len() it."""

    _free = staticmethod(_c.siterec_rp_free)

    def __init__(self, store: Store, vm_id: str) -> None:
        super().__init__()
        self.store = store   # must outlive the catalogue
        self._deps = [store]
        h = ctypes.POINTER(_c.siterec_rp_catalog)()
        self.call(_c.siterec_rp_open, ctypes.byref(h), store.handle, b(vm_id))
        self._h = h

    def refresh(self) -> None:
        self.call(_c.siterec_rp_refresh, self.handle)

    def __len__(self) -> int:
        n = ctypes.c_uint64()
        _c.siterec_rp_count(self.handle, ctypes.byref(n))
        return n.value

    def __getitem__(self, index: int) -> Point:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("recovery point index out of range")
        p = struct(_c.siterec_rp_point, _c.SITEREC_RP_POINT_VERSION)
        _c.siterec_rp_get(self.handle, index, ctypes.byref(p))
        return _point(p)

    def __iter__(self) -> Iterator[Point]:
        for i in range(len(self)):
            yield self[i]

    def find(self, point_id: int) -> Point:
        p = struct(_c.siterec_rp_point, _c.SITEREC_RP_POINT_VERSION)
        _c.siterec_rp_find(self.handle, point_id, ctypes.byref(p))
        return _point(p)

    def select(self, how: int = Select.LATEST, arg: int = 0) -> int:
        out = ctypes.c_uint64()
        _c.siterec_rp_select(self.handle, int(how), arg, ctypes.byref(out))
        return out.value

    def add(self, point: Point) -> None:
        """Add a point (the commit of a cycle); its snapshots (and logs) must exist."""
        p = struct(_c.siterec_rp_point, _c.SITEREC_RP_POINT_VERSION)
        p.kind, p.id, p.cut_time_ms, p.n_disks = int(point.kind), point.id, point.cut_time_ms, len(point.disks)
        disks = (_c.siterec_rp_disk * max(1, len(point.disks)))()
        keep = [disks]
        for i, d in enumerate(point.disks):
            disks[i].disk, disks[i].snapshot = b(d.disk), b(d.snapshot)
            if d.changed is None:
                disks[i].n_changed = 2**64 - 1
            else:
                ext = (_c.siterec_extent * max(1, len(d.changed)))(*[(e.offset, e.length) for e in d.changed])
                keep.append(ext)
                disks[i].changed, disks[i].n_changed = ext, len(d.changed)
        p.disks = disks
        if point.logs:
            logs = (_c.siterec_rp_log * len(point.logs))()
            for i, lg in enumerate(point.logs):
                logs[i].disk_index, logs[i].seq, logs[i].object = lg.disk_index, lg.seq, b(lg.object)
                logs[i].length, logs[i].sealed_ms = lg.length, lg.sealed_ms
            p.logs, p.n_logs = logs, len(point.logs)
        self.call(_c.siterec_rp_add, self.handle, ctypes.byref(p))

    def read(self, point_id: int, disk_index: int, length: int, offset: int = 0) -> bytes:
        buf = ctypes.create_string_buffer(length)
        self.call(_c.siterec_rp_read, self.handle, point_id, disk_index, buf, length, offset)
        return buf.raw

    def restore(self, point_id: int, disk_index: int, write: WriteFn, *, zeros: bool = False,
                progress: Optional[ProgressFn] = None) -> None:
        """Write a point's disk through write(data, offset)."""
        self.call(_c.siterec_rp_restore, self.handle, point_id, disk_index,
                  _c.SITEREC_RP_RESTORE_ZEROS if zeros else 0, _writer(self, write), None,
                  self.tramp(_c.siterec_progress_fn, progress), None)

    def restore_at(self, time_ms: int, disk_index: int, write: WriteFn, *, zeros: bool = False) -> int:
        """Any point in time; returns the instant actually restored."""
        at = ctypes.c_int64()
        self.call(_c.siterec_rp_restore_at, self.handle, time_ms, disk_index,
                  _c.SITEREC_RP_RESTORE_ZEROS if zeros else 0, _writer(self, write), None, ctypes.byref(at))
        return at.value

    def prune(self, now_ms: int, retention_ms: int, keep: Sequence[int] = ()) -> int:
        ids = (ctypes.c_uint64 * max(1, len(keep)))(*keep)
        n = ctypes.c_uint64()
        self.call(_c.siterec_rp_prune, self.handle, now_ms, retention_ms, ids if keep else None,
                  len(keep), ctypes.byref(n))
        return n.value

    def delete(self, ids: Sequence[int]) -> int:
        arr = (ctypes.c_uint64 * max(1, len(ids)))(*ids)
        n = ctypes.c_uint64()
        self.call(_c.siterec_rp_delete, self.handle, arr, len(ids), ctypes.byref(n))
        return n.value
