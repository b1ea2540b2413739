"""Failover, failback, reprotect and recovery plans (failover.h)."""
from __future__ import annotations

import ctypes
import enum
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _c
from ._base import Handle, PathLike, b, opt_s, s, strings, struct
from .replication import DiskRole, Replication
from .store import ProgressFn, Store


class FailoverType(enum.IntEnum):
    TEST = _c.SITEREC_FAILOVER_TEST
    PLANNED = _c.SITEREC_FAILOVER_PLANNED
    UNPLANNED = _c.SITEREC_FAILOVER_UNPLANNED
    FAILBACK = _c.SITEREC_FAILOVER_FAILBACK


class PointHow(enum.IntEnum):
    LATEST = _c.SITEREC_POINT_LATEST
    LATEST_PROCESSED = _c.SITEREC_POINT_LATEST_PROCESSED
    LATEST_APP = _c.SITEREC_POINT_LATEST_APP
    ID = _c.SITEREC_POINT_ID
    TIME = _c.SITEREC_POINT_TIME


class Target(enum.IntEnum):
    AZURE = _c.SITEREC_TARGET_AZURE
    HYPERV = _c.SITEREC_TARGET_HYPERV


class Output(enum.IntEnum):
    RAW = _c.SITEREC_OUTPUT_RAW
    VHD = _c.SITEREC_OUTPUT_VHD


class Phase(enum.IntEnum):
    NONE = _c.SITEREC_FO_NONE
    STARTING = _c.SITEREC_FO_STARTING
    MATERIALISING = _c.SITEREC_FO_MATERIALISING
    STARTING_VM = _c.SITEREC_FO_STARTING_VM
    FAILED_OVER = _c.SITEREC_FO_FAILED_OVER
    CHANGING = _c.SITEREC_FO_CHANGING
    COMMITTING = _c.SITEREC_FO_COMMITTING
    COMMITTED = _c.SITEREC_FO_COMMITTED
    CANCELLING = _c.SITEREC_FO_CANCELLING
    SYNCING = _c.SITEREC_FO_SYNCING
    SHUTTING_DOWN = _c.SITEREC_FO_SHUTTING_DOWN
    DELTA = _c.SITEREC_FO_DELTA
    REPROTECTING = _c.SITEREC_FO_REPROTECTING


class FailbackMode(enum.IntEnum):
    MINIMIZE_DOWNTIME = _c.SITEREC_FAILBACK_MINIMIZE_DOWNTIME
    FULL = _c.SITEREC_FAILBACK_FULL


class PlanOp(enum.IntEnum):
    TEST = _c.SITEREC_PLAN_TEST
    CLEANUP = _c.SITEREC_PLAN_CLEANUP
    PLANNED = _c.SITEREC_PLAN_PLANNED
    UNPLANNED = _c.SITEREC_PLAN_UNPLANNED
    COMMIT = _c.SITEREC_PLAN_COMMIT
    FAILBACK = _c.SITEREC_PLAN_FAILBACK
    CANCEL = _c.SITEREC_PLAN_CANCEL


class PlanState(enum.IntEnum):
    IDLE = _c.SITEREC_PLAN_IDLE
    RUNNING = _c.SITEREC_PLAN_RUNNING
    PAUSED = _c.SITEREC_PLAN_PAUSED
    DONE = _c.SITEREC_PLAN_DONE
    FAILED = _c.SITEREC_PLAN_FAILED


class PlanEventKind(enum.IntEnum):
    GROUP = _c.SITEREC_PLAN_EV_GROUP
    MACHINE = _c.SITEREC_PLAN_EV_MACHINE
    ACTION = _c.SITEREC_PLAN_EV_ACTION
    PAUSED = _c.SITEREC_PLAN_EV_PAUSED


@dataclass(frozen=True)
class PointChoice:
    how: PointHow = PointHow.LATEST
    id: int = 0
    time_ms: int = 0

    @classmethod
    def latest(cls) -> "PointChoice":
        return cls(PointHow.LATEST)

    @classmethod
    def processed(cls) -> "PointChoice":
        return cls(PointHow.LATEST_PROCESSED)

    @classmethod
    def latest_app(cls) -> "PointChoice":
        return cls(PointHow.LATEST_APP)

    @classmethod
    def by_id(cls, point_id: int) -> "PointChoice":
        return cls(PointHow.ID, id=point_id)

    @classmethod
    def at(cls, time_ms: int) -> "PointChoice":
        return cls(PointHow.TIME, time_ms=time_ms)

    def _fill(self, c: Any) -> None:
        c.how, c.id, c.time_ms = int(self.how), self.id, self.time_ms


@dataclass(frozen=True)
class Nic:
    network: str
    subnet: Optional[str] = None
    ip: Optional[str] = None


@dataclass(frozen=True)
class NetworkMap:
    source_network: str
    target_network: str
    subnets: Sequence[str]


@dataclass
class FailoverRequest:
    type: FailoverType = FailoverType.UNPLANNED
    point: PointChoice = field(default_factory=PointChoice)
    target: Target = Target.AZURE
    output: Output = Output.VHD
    disk_dir: Optional[PathLike] = None
    vm_name: Optional[str] = None
    vm_size: Optional[str] = None
    os_type: Optional[str] = None
    location: Optional[str] = None
    nics: Sequence[Nic] = ()
    networks: Sequence[NetworkMap] = ()
    test_network: Optional[str] = None
    test_subnet: Optional[str] = None

    def _c(self) -> Tuple[Any, List[Any]]:
        q = struct(_c.siterec_failover_request, _c.SITEREC_FAILOVER_REQUEST_VERSION,
                   _c.siterec_failover_request_init)
        keep: List[Any] = []
        q.type = int(self.type)
        self.point._fill(q.point)
        q.target, q.output = int(self.target), int(self.output)
        q.disk_dir, q.vm_name, q.vm_size = b(self.disk_dir), b(self.vm_name), b(self.vm_size)
        q.os_type, q.location = b(self.os_type), b(self.location)
        q.test_network, q.test_subnet = b(self.test_network), b(self.test_subnet)
        nics = (_c.siterec_nic * max(1, len(self.nics)))()
        for i, n in enumerate(self.nics):
            nics[i].network, nics[i].subnet, nics[i].ip = b(n.network), b(n.subnet), b(n.ip)
        nets = (_c.siterec_network_map * max(1, len(self.networks)))()
        for i, m in enumerate(self.networks):
            subs = strings(list(m.subnets))
            keep.append(subs)
            nets[i].source_network, nets[i].target_network = b(m.source_network), b(m.target_network)
            nets[i].n_subnets = len(m.subnets)
            nets[i].subnets = ctypes.cast(subs, ctypes.POINTER(ctypes.c_char_p))
        keep += [nics, nets]
        q.n_nics, q.nics = len(self.nics), nics
        q.n_networks, q.networks = len(self.networks), nets
        return q, keep


@dataclass(frozen=True)
class FailoverDisk:
    id: str
    location: str      # the blob's URL or the file's path
    size: int
    role: DiskRole
    lun: int


@dataclass(frozen=True)
class FailoverVM:
    """The target VM the start/remove callbacks act on."""
    type: FailoverType
    vm_id: str
    name: str
    generation: int
    source_generation: int
    firmware: int       # SITEREC_FIRMWARE_BIOS / UEFI
    isolated: bool
    point_id: int
    point_time_ms: int
    disks: Tuple[FailoverDisk, ...]
    nics: Tuple[Nic, ...]
    vm_size: Optional[str]
    os_type: Optional[str]
    arm_template: Optional[str]


def _vm(p: Any) -> tuple:
    v = p.contents
    disks = tuple(FailoverDisk(s(d.id), s(d.location), d.size, DiskRole(d.role), d.lun)
                  for d in (v.disks[i] for i in range(v.n_disks)))
    nics = tuple(Nic(s(n.network), opt_s(n.subnet), opt_s(n.ip)) for n in (v.nics[i] for i in range(v.n_nics)))
    return (FailoverVM(FailoverType(v.type), s(v.vm_id), s(v.name), v.generation, v.source_generation,
                       v.firmware, bool(v.isolated), v.point_id, v.point_time_ms, disks, nics,
                       opt_s(v.vm_size), opt_s(v.os_type), opt_s(v.arm_template)),)


@dataclass(frozen=True)
class FailoverStatus:
    type: int
    phase: Phase
    n_disks: int
    generation: int
    point_id: int
    point_time_ms: int
    fence_id: int
    bytes_written: int
    started_ms: int
    shutdown_ms: int
    vm_started_ms: int
    vm_name: str
    bytes_differing: int
    bytes_delta: int


@dataclass
class FailbackRequest:
    disks: Dict[str, PathLike]                 # disk id -> on-premises image path
    mode: FailbackMode = FailbackMode.MINIMIZE_DOWNTIME
    alternate: bool = False                    # the paths are new files
    block_size: int = 0
    journal_dir: Optional[PathLike] = None     # the failed-over VM's journal
    vm_name: Optional[str] = None


VMFn = Callable[[FailoverVM], Any]
ShutdownFn = Callable[[str], Any]


class Failover(Handle):
    """The failover side of one protected VM. start(vm) creates and starts the target VM,
    remove(vm) stops and deletes it, shutdown(vm_id) stops a VM (planned failover: the
    source; failback: the failed-over VM). An exception in a callback aborts the library
    call and is re-raised by the method."""

    _free = staticmethod(_c.siterec_failover_free)

    def __init__(self, store: Store, vm_id: str, *, start: VMFn, remove: VMFn,
                 shutdown: Optional[ShutdownFn] = None, replication: Optional[Replication] = None,
                 progress: Optional[ProgressFn] = None) -> None:
        super().__init__()
        self.store, self.replication = store, replication
        self._deps = [store] + ([replication] if replication else [])
        o = struct(_c.siterec_failover_options, _c.SITEREC_FAILOVER_OPTIONS_VERSION,
                   _c.siterec_failover_options_init)
        o.store, o.vm_id = store.handle, b(vm_id)
        o.replication = replication.handle if replication else None
        o.start = self.tramp(_c.siterec_vm_start_fn, start, convert=_vm)
        o.remove = self.tramp(_c.siterec_vm_remove_fn, remove, convert=_vm)
        o.shutdown = self.tramp(_c.siterec_vm_shutdown_fn, shutdown, convert=lambda v: (s(v),))
        o.progress = self.tramp(_c.siterec_progress_fn, progress)
        self.keep(o)
        h = ctypes.POINTER(_c.siterec_failover)()
        self.call(_c.siterec_failover_open, ctypes.byref(h), ctypes.byref(o))
        self._h = h

    def test(self, request: FailoverRequest) -> None:
        """Start a test failover (a drill) and run it until the target VM is started."""
        q, keep = request._c()
        self.call(_c.siterec_failover_test, self.handle, ctypes.byref(q))

    def test_cleanup(self) -> None:
        self.call(_c.siterec_failover_test_cleanup, self.handle)

    def run(self, request: FailoverRequest) -> None:
        """A planned or unplanned failover, until the target VM is started (not committed)."""
        q, keep = request._c()
        self.call(_c.siterec_failover_run, self.handle, ctypes.byref(q))

    def change_point(self, point: PointChoice) -> None:
        c = _c.siterec_point_choice()
        point._fill(c)
        self.call(_c.siterec_failover_change_point, self.handle, ctypes.byref(c))

    def commit(self) -> None:
        self.call(_c.siterec_failover_commit, self.handle)

    def cancel(self) -> None:
        self.call(_c.siterec_failover_cancel, self.handle)

    def resume(self) -> int:
        n = ctypes.c_uint32()
        self.call(_c.siterec_failover_resume, self.handle, ctypes.byref(n))
        return n.value

    def status(self, type: int) -> FailoverStatus:
        st = struct(_c.siterec_failover_status, _c.SITEREC_FAILOVER_STATUS_VERSION)
        self.call(_c.siterec_failover_status_get, self.handle, int(type), ctypes.byref(st))
        return FailoverStatus(st.type, Phase(st.phase), st.n_disks, st.generation, st.point_id,
                              st.point_time_ms, st.fence_id, st.bytes_written, st.started_ms,
                              st.shutdown_ms, st.vm_started_ms, s(st.vm_name), st.bytes_differing,
                              st.bytes_delta)

    def arm_template(self, type: int) -> str:
        p = ctypes.POINTER(ctypes.c_char)()
        self.call(_c.siterec_failover_arm_template, self.handle, int(type), ctypes.byref(p))
        try:
            return ctypes.string_at(p).decode("utf-8")
        finally:
            _c.siterec_free(p)

    def failback(self, request: FailbackRequest) -> None:
        r = struct(_c.siterec_failback_request, _c.SITEREC_FAILBACK_REQUEST_VERSION,
                   _c.siterec_failback_request_init)
        r.mode, r.block_size = int(request.mode), request.block_size
        r.flags = _c.SITEREC_FAILBACK_ALTERNATE if request.alternate else 0
        disks = (_c.siterec_failback_disk * max(1, len(request.disks)))()
        for i, (disk_id, path) in enumerate(request.disks.items()):
            disks[i].id, disks[i].path = b(disk_id), b(path)
        r.n_disks, r.disks = len(request.disks), disks
        r.journal_dir, r.vm_name = b(request.journal_dir), b(request.vm_name)
        self.call(_c.siterec_failback_run, self.handle, ctypes.byref(r))

    def failback_commit(self) -> None:
        self.call(_c.siterec_failback_commit, self.handle)

    def failback_cancel(self) -> None:
        self.call(_c.siterec_failback_cancel, self.handle)

    def reprotect(self) -> None:
        self.call(_c.siterec_failover_reprotect, self.handle)


def phase_name(phase: int) -> Optional[str]:
    v = _c.siterec_failover_phase_name(phase)
    return v.decode() if v else None


# ---- recovery plans -----------------------------------------------------------------

@dataclass(frozen=True)
class PlanEvent:
    kind: PlanEventKind
    op: PlanOp
    group: int
    error: int
    group_name: Optional[str]
    vm_id: Optional[str]
    action: Optional[str]
    output: Optional[str]
    message: Optional[str]
    elapsed_ms: int


@dataclass(frozen=True)
class PlanStatus:
    state: PlanState
    op: int
    group: int
    n_groups: int
    n_machines: int
    machines_done: int
    machines_failed: int
    started_ms: int
    common_time_ms: int
    paused_at: str
    error: str


def _event(p: Any) -> PlanEvent:
    e = p.contents
    return PlanEvent(PlanEventKind(e.kind), PlanOp(e.op), e.group, e.error, opt_s(e.group_name),
                     opt_s(e.vm_id), opt_s(e.action), opt_s(e.output), opt_s(e.message), e.elapsed_ms)


class Plan(Handle):
    """A recovery plan (a JSON document, or a dict) over the VMs of one target. start,
    remove and shutdown are called from worker threads, several at once: make them
    thread-safe. event(ev) may return True to stop the run after this step; every event
    is also kept in .events (iterate it). replication(vm_id) returns a Replication for a
    planned failover (the plan takes it over)."""

    _free = staticmethod(_c.siterec_plan_free)

    def __init__(self, plan: Union[str, bytes, Dict[str, Any]], url: str, state_path: PathLike, *,
                 start: VMFn, remove: VMFn, shutdown: Optional[ShutdownFn] = None,
                 replication: Optional[Callable[[str], Replication]] = None,
                 action: Optional[Callable[[str, PlanOp, str], Any]] = None,
                 event: Optional[Callable[[PlanEvent], Any]] = None,
                 max_parallel: int = 0, allow_http: bool = False, account_key: Optional[str] = None,
                 sas_token: Optional[str] = None, ca_file: Optional[str] = None) -> None:
        super().__init__()
        doc = json.dumps(plan).encode() if isinstance(plan, dict) else b(plan)
        assert doc is not None
        self.events: List[PlanEvent] = []
        self._events_lock = threading.Lock()
        so = struct(_c.siterec_store_options, _c.SITEREC_STORE_OPTIONS_VERSION, _c.siterec_store_options_init)
        so.flags = _c.SITEREC_STORE_ALLOW_HTTP if allow_http else 0
        so.account_key, so.sas_token, so.ca_file = b(account_key), b(sas_token), b(ca_file)
        o = struct(_c.siterec_plan_options, _c.SITEREC_PLAN_OPTIONS_VERSION, _c.siterec_plan_options_init)
        o.url, o.store_opts, o.state_path = b(url), ctypes.pointer(so), b(state_path)
        o.max_parallel = max_parallel
        o.start = self.tramp(_c.siterec_vm_start_fn, start, convert=_vm)
        o.remove = self.tramp(_c.siterec_vm_remove_fn, remove, convert=_vm)
        o.shutdown = self.tramp(_c.siterec_vm_shutdown_fn, shutdown, convert=lambda v: (s(v),))
        o.action = self.tramp(_c.siterec_plan_action_fn, action,
                              convert=lambda a, op, g: (s(a), PlanOp(op), s(g)))

        def on_event(ev: PlanEvent) -> Any:
            with self._events_lock:
                self.events.append(ev)
            return event(ev) if event else None
        o.event = self.tramp(_c.siterec_plan_event_fn, on_event, convert=lambda p: (_event(p),))
        if replication is not None:
            def give(vm_id: bytes, out: Any) -> None:
                r = replication(s(vm_id))
                out[0] = r.detach()
            o.replication = self.tramp(_c.siterec_plan_replication_fn, give,
                                       convert=lambda v, out: (v, out))
        self.keep(o)
        h = ctypes.POINTER(_c.siterec_plan)()
        self.call(_c.siterec_plan_open, ctypes.byref(h), doc, len(doc), ctypes.byref(o))
        so.account_key = so.sas_token = None   # copied by the library
        self._h = h

    def run(self, op: PlanOp) -> PlanState:
        """Run op over every machine; the state it stopped in (DONE, PAUSED, ...)."""
        st = ctypes.c_uint32()
        self.call(_c.siterec_plan_run, self.handle, int(op), ctypes.byref(st))
        return PlanState(st.value)

    def resume(self) -> PlanState:
        st = ctypes.c_uint32()
        self.call(_c.siterec_plan_resume, self.handle, ctypes.byref(st))
        return PlanState(st.value)

    def status(self) -> PlanStatus:
        st = struct(_c.siterec_plan_status, _c.SITEREC_PLAN_STATUS_VERSION)
        self.call(_c.siterec_plan_status_get, self.handle, ctypes.byref(st))
        return PlanStatus(PlanState(st.state), st.op, st.group, st.n_groups, st.n_machines,
                          st.machines_done, st.machines_failed, st.started_ms, st.common_time_ms,
                          s(st.paused_at), s(st.error))
