"""libsiterec for Python: disaster-recovery replication of VM disks, over ctypes.

The library is found through $SITEREC_LIBRARY (a path), else a build tree above this
package (build*/libsiterec.so.1), else the system loader. Every failing call raises a
SiteRecError subclass carrying the code, siterec_error_last()'s message and, for storage
errors, the HTTP status and service code.
"""
from __future__ import annotations

from typing import Tuple

from . import _c, errors
from ._loader import LIBRARY_PATH
from .disk import Disk, DiskFormat, DiskInfo
from .dlog import DeltaLog, DeltaLogReader, LogInfo, Record, apply as dlog_apply, \
    apply_fd as dlog_apply_fd, coalesce as dlog_coalesce, verify as dlog_verify
from .errors import (AbortedError, AlignmentError, AuthError, BusyError, ConflictError, CorruptError,
                     CriticalError, DiskImageError, ExistsError, InvalidArgumentError, IOFailure,
                     LeaseError, NetworkError, NoMemoryError, NoSpaceError, NotFoundError,
                     OperationTimeoutError, RangeError, ResyncNeededError, SiteRecError, StateError,
                     StorageError, TruncatedError, UnsupportedError, VersionError)
from .failover import (FailbackMode, FailbackRequest, Failover, FailoverDisk, FailoverRequest,
                       FailoverStatus, FailoverType, FailoverVM, NetworkMap, Nic, Output, Phase,
                       Plan, PlanEvent, PlanEventKind, PlanOp, PlanState, PlanStatus, PointChoice,
                       PointHow, Target, phase_name)
from .journal import Journal, JournalDisk
from .planner import Planner, PlannerVM
from .replication import (VM, CycleResult, DiskRole, FollowEvent, FollowKind, Replication,
                          ReplicationState, ReplicationStatus, VMDisk, state_name)
from .rp import Catalog, Point, PointDisk, PointKind, PointLog, Select
from .store import Document, Extent, Store, StoreEntry, StoreWriter, UploadStats
from .tracker import HashMap, Tracker, TrackerStats

__version__ = "0.1.0"


def version() -> Tuple[str, int, int, int]:
    """(string, major, minor, patch) of the library actually loaded."""
    import ctypes
    ma, mi, pa = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    v = _c.siterec_version(ctypes.byref(ma), ctypes.byref(mi), ctypes.byref(pa))
    return v.decode(), ma.value, mi.value, pa.value


def strerror(code: int) -> str:
    return _c.siterec_strerror(code).decode()


_c.siterec_init()
