"""Replication (replication.h): protect a VM, initial copy, delta cycles, apply, resync."""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from . import _c
from ._base import Handle, PathLike, b, s, struct
from .store import ProgressFn, Store


class DiskRole(enum.IntEnum):
    OS = _c.SITEREC_DISK_ROLE_OS
    DATA = _c.SITEREC_DISK_ROLE_DATA


class ReplicationState(enum.IntEnum):
    INITIAL = _c.SITEREC_REPL_INITIAL
    PROTECTED = _c.SITEREC_REPL_PROTECTED
    RESYNC = _c.SITEREC_REPL_RESYNC
    CRITICAL = _c.SITEREC_REPL_CRITICAL
    FAILED_OVER = _c.SITEREC_REPL_FAILED_OVER


class FollowKind(enum.IntEnum):
    TICK = _c.SITEREC_FOLLOW_TICK
    POINT = _c.SITEREC_FOLLOW_POINT
    APPLIED = _c.SITEREC_FOLLOW_APPLIED
    RETRY = _c.SITEREC_FOLLOW_RETRY
    RESYNC = _c.SITEREC_FOLLOW_RESYNC


@dataclass
class VMDisk:
    id: str
    path: Optional[PathLike] = None       # an image (raw, VHD, VHDX)
    role: DiskRole = DiskRole.DATA
    excluded: bool = False
    size: int = 0                          # with read instead of path
    read: Optional[Callable[[int, int], bytes]] = None   # (length, offset) -> bytes


@dataclass
class VM:
    id: str
    disks: Sequence[VMDisk]
    name: Optional[str] = None
    generation: int = 1


@dataclass(frozen=True)
class CycleResult:
    kind: int            # PointKind of the point added, 0 if none
    point_id: int
    cut_time_ms: int
    bytes_shipped: int
    points_pruned: int


@dataclass(frozen=True)
class ReplicationStatus:
    state: ReplicationState
    generation: int
    last_point_id: int
    last_point_time_ms: int
    points: int
    bytes_shipped: int
    pending_bytes: int
    reason: str
    applied_point_id: int
    waiting_bytes: int


@dataclass(frozen=True)
class FollowEvent:
    kind: FollowKind
    error: int
    delay_ms: int
    point_id: int
    cycle: CycleResult


def _cycle(r: Any) -> CycleResult:
    return CycleResult(r.kind, r.point_id, r.cut_time_ms, r.bytes_shipped, r.points_pruned)


class Replication(Handle):
    """The replication of one VM into a store (siterec_replication). protect=True creates the
    protection; the VM's write path writes through Journal(state_dir/journal, writer=True)."""

    _free = staticmethod(_c.siterec_replication_free)

    def __init__(self, vm: VM, store: Store, state_dir: PathLike, *, protect: bool = False,
                 interval_s: int = 300, app_every_s: int = 0, retention_s: int = 0,
                 quiesce: Optional[Callable[[bool], Any]] = None,
                 progress: Optional[ProgressFn] = None, apply_delay_s: int = 0,
                 checkpoint_s: int = 0) -> None:
        super().__init__()
        self.vm, self.store = vm, store
        self._deps = [store]
        disks = self.keep((_c.siterec_vm_disk * max(1, len(vm.disks)))())
        for i, d in enumerate(vm.disks):
            disks[i].id, disks[i].path, disks[i].size = b(d.id), b(d.path), d.size
            disks[i].role = int(d.role)
            disks[i].flags = _c.SITEREC_VM_DISK_EXCLUDED if d.excluded else 0
            if d.read is not None:
                from .store import _read_adaptor
                disks[i].read = self.tramp(_c.siterec_read_fn, _read_adaptor(d.read))
        v = self.keep(struct(_c.siterec_vm, _c.SITEREC_VM_VERSION))
        v.generation, v.id, v.name, v.n_disks, v.disks = vm.generation, b(vm.id), b(vm.name), len(vm.disks), disks
        o = struct(_c.siterec_replication_options, _c.SITEREC_REPLICATION_OPTIONS_VERSION,
                   _c.siterec_replication_options_init)
        o.flags = _c.SITEREC_REPLICATION_PROTECT if protect else 0
        o.state_dir, o.store = b(state_dir), store.handle
        o.interval_s, o.app_every_s, o.retention_s = interval_s, app_every_s, retention_s
        o.quiesce = self.tramp(_c.siterec_quiesce_fn, quiesce, convert=lambda freeze: (bool(freeze),))
        o.progress = self.tramp(_c.siterec_progress_fn, progress)
        o.apply_delay_s, o.checkpoint_s = apply_delay_s, checkpoint_s
        self.keep(o)
        h = ctypes.POINTER(_c.siterec_replication)()
        self.call(_c.siterec_replication_open, ctypes.byref(h), ctypes.byref(v), ctypes.byref(o))
        self._h = h

    def detach(self) -> Any:
        """Give up ownership of the C handle (a plan's replication callback hands it over)."""
        h, self._h = self._h, None
        return h

    def keepalive(self) -> None:
        self.call(_c.siterec_replication_keepalive, self.handle)

    def initial(self) -> None:
        self.call(_c.siterec_replication_initial, self.handle)

    def cycle(self) -> CycleResult:
        r = struct(_c.siterec_cycle_result, _c.SITEREC_CYCLE_RESULT_VERSION)
        self.call(_c.siterec_replication_cycle, self.handle, ctypes.byref(r))
        return _cycle(r)

    def checkpoint(self) -> int:
        n = ctypes.c_uint64()
        self.call(_c.siterec_replication_checkpoint, self.handle, ctypes.byref(n))
        return n.value

    def apply(self, budget_ms: int = 0, *, now: bool = False) -> int:
        """Apply shipped logs; returns the bytes still waiting (0: replicas at the newest point)."""
        waiting = ctypes.c_uint64()
        self.call(_c.siterec_replication_apply, self.handle, budget_ms,
                  _c.SITEREC_APPLY_NOW if now else 0, ctypes.byref(waiting))
        return waiting.value

    def resync(self) -> CycleResult:
        r = struct(_c.siterec_cycle_result, _c.SITEREC_CYCLE_RESULT_VERSION)
        self.call(_c.siterec_replication_resync, self.handle, ctypes.byref(r))
        return _cycle(r)

    def follow(self, fn: Callable[[FollowEvent], Any]) -> None:
        """Run replication on the policy until fn returns True (or raises: re-raised here)."""
        def conv(ev: Any) -> tuple:
            e = ev.contents
            return (FollowEvent(FollowKind(e.kind), e.error, e.delay_ms, e.point_id, _cycle(e.cycle)),)
        cb = self.tramp(_c.siterec_follow_fn, fn, convert=conv)
        self.call(_c.siterec_replication_follow, self.handle, cb, None)

    def status(self) -> ReplicationStatus:
        st = struct(_c.siterec_replication_status, _c.SITEREC_REPLICATION_STATUS_VERSION)
        self.call(_c.siterec_replication_status_get, self.handle, ctypes.byref(st))
        return ReplicationStatus(ReplicationState(st.state), st.generation, st.last_point_id,
                                 st.last_point_time_ms, st.points, st.bytes_shipped, st.pending_bytes,
                                 s(st.reason), st.applied_point_id, st.waiting_bytes)


def state_name(state: int) -> Optional[str]:
    v = _c.siterec_replication_state_name(state)
    return v.decode() if v else None
