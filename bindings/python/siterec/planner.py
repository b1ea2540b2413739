"""The deployment planner (planner.h): from a churn profile, what each VM needs."""
from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from . import _c
from ._base import Handle, PathLike, b, s, struct
from .tracker import Tracker


@dataclass(frozen=True)
class PlannerVM:
    """One VM's figures (or the totals: name "*"). Churn in bytes/s, bandwidth in Mbps."""
    name: str
    fits: bool
    failed: int                 # SITEREC_PLANNER_LIMIT_* bits
    disks: int
    churn_mean: float
    churn_peak: float
    churn_percentile: float
    churn_planned: float
    rpo_mbps: Dict[int, Dict[int, float]]   # {15|30|60 minutes: {90|100 percent: Mbps}}
    replica_bytes: int
    retention_bytes: int
    initial_replication_s: float
    copy_frequency_s: int       # 30, 300, 900, or 0: none sustainable


def _vm(v: Any) -> PlannerVM:
    return PlannerVM(s(v.name), bool(v.fits), v.failed, v.disks, v.churn_mean, v.churn_peak,
                     v.churn_percentile, v.churn_planned,
                     {15: {90: v.rpo15_p90_mbps, 100: v.rpo15_p100_mbps},
                      30: {90: v.rpo30_p90_mbps, 100: v.rpo30_p100_mbps},
                      60: {90: v.rpo60_p90_mbps, 100: v.rpo60_p100_mbps}},
                     v.replica_bytes, v.retention_bytes, v.initial_replication_s, v.copy_frequency_s)


class Planner(Handle):
    """A churn profile and what it takes to protect its VMs (0 options: the defaults)."""

    _free = staticmethod(_c.siterec_planner_free)

    def __init__(self, *, bandwidth_mbps: float = 0, retention_s: int = 0, percentile: int = 0,
                 growth_percent: Optional[int] = None, interval_s: int = 0) -> None:
        super().__init__()
        o = struct(_c.siterec_planner_options, _c.SITEREC_PLANNER_OPTIONS_VERSION,
                   _c.siterec_planner_options_init)
        o.bandwidth_mbps, o.retention_s, o.percentile, o.interval_s = \
            bandwidth_mbps, retention_s, percentile, interval_s
        if growth_percent is not None:
            o.growth_percent = growth_percent if growth_percent else _c.SITEREC_PLANNER_GROWTH_NONE
        h = ctypes.POINTER(_c.siterec_planner)()
        self.call(_c.siterec_planner_open, ctypes.byref(h), ctypes.byref(o))
        self._h = h

    def add_sample(self, timestamp: int, vm: str, disk: str, disk_size: int, bytes_written: int) -> None:
        self.call(_c.siterec_planner_add_sample, self.handle, timestamp, b(vm), b(disk), disk_size,
                  bytes_written)

    def record_tracker(self, timestamp: int, vm: str, disk: str, tracker: Tracker) -> None:
        """One interval recorded by a tracker (its live set frozen, counted, dropped)."""
        self.call(_c.siterec_planner_record_tracker, self.handle, timestamp, b(vm), b(disk),
                  tracker.handle)

    def load_csv(self, path: PathLike) -> None:
        self.call(_c.siterec_planner_load_csv, self.handle, b(path))

    def _get(self, index: int) -> PlannerVM:
        v = struct(_c.siterec_planner_vm, _c.SITEREC_PLANNER_VM_VERSION)
        self.call(_c.siterec_planner_vm_get, self.handle, index, ctypes.byref(v))
        return _vm(v)

    def vms(self) -> List[PlannerVM]:
        n = ctypes.c_uint32()
        self.call(_c.siterec_planner_vm_count, self.handle, ctypes.byref(n))
        return [self._get(i) for i in range(n.value)]

    def totals(self) -> PlannerVM:
        return self._get(_c.SITEREC_PLANNER_TOTALS)

    def _report(self, fn: Any) -> str:
        p, n = ctypes.POINTER(ctypes.c_char)(), ctypes.c_size_t()
        self.call(fn, self.handle, ctypes.byref(p), ctypes.byref(n))
        try:
            return ctypes.string_at(p, n.value).decode("utf-8")
        finally:
            _c.siterec_free(p)

    def report_json(self) -> Dict[str, Any]:
        return json.loads(self._report(_c.siterec_planner_report_json))

    def report_html(self) -> str:
        return self._report(_c.siterec_planner_report_html)
