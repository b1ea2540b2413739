"""Change tracking (tracker.h): the dirty-block tracker and the hash scan."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Iterator, Optional

from . import _c
from ._base import Handle, PathLike, b, struct
from .store import Extent, ProgressFn, _collect_extents


@dataclass(frozen=True)
class TrackerStats:
    block_size: int
    disk_size: int
    epoch: int
    dirty_bytes: int
    frozen_bytes: int
    memory_bytes: int
    state: int          # SITEREC_TRACKER_FRESH / CLEAN / RECOVERED / UNTRUSTED
    has_frozen: bool


class Tracker(Handle):
    """Dirty-block tracker of one disk. close() is the clean shutdown (state saved, the next
    open reports CLEAN); abandon() frees it as a crash would leave it."""

    _free = staticmethod(_c.siterec_tracker_free)

    def __init__(self, disk_size: int, *, block_size: int = 0, activity_region: int = 0,
                 state_path: Optional[PathLike] = None) -> None:
        super().__init__()
        o = struct(_c.siterec_tracker_options, _c.SITEREC_TRACKER_OPTIONS_VERSION,
                   _c.siterec_tracker_options_init)
        o.block_size, o.activity_region, o.state_path = block_size, activity_region, b(state_path)
        h = ctypes.POINTER(_c.siterec_tracker)()
        _c.siterec_tracker_open(ctypes.byref(h), disk_size, ctypes.byref(o))
        self._h = h

    def mark(self, offset: int, length: int) -> None:
        _c.siterec_tracker_mark(self.handle, offset, length)

    def mark_all(self) -> None:
        _c.siterec_tracker_mark_all(self.handle)

    def switch(self) -> int:
        epoch = ctypes.c_uint64()
        _c.siterec_tracker_switch(self.handle, ctypes.byref(epoch))
        return epoch.value

    def frozen(self) -> Iterator[Extent]:
        return _collect_extents(self, _c.siterec_tracker_foreach_frozen, self.handle)

    def dirty(self) -> Iterator[Extent]:
        return _collect_extents(self, _c.siterec_tracker_foreach_dirty, self.handle)

    def commit(self) -> None:
        _c.siterec_tracker_commit(self.handle)

    def rollback(self) -> None:
        _c.siterec_tracker_rollback(self.handle)

    def save(self) -> None:
        _c.siterec_tracker_save(self.handle)

    def stats(self) -> TrackerStats:
        st = struct(_c.siterec_tracker_stats, _c.SITEREC_TRACKER_STATS_VERSION)
        _c.siterec_tracker_stats_get(self.handle, ctypes.byref(st))
        return TrackerStats(st.block_size, st.disk_size, st.epoch, st.dirty_bytes, st.frozen_bytes,
                            st.memory_bytes, st.state, bool(st.has_frozen))

    def close(self) -> None:
        if self._h:
            try:
                _c.siterec_tracker_close(self._h)
            finally:
                super().close()

    def abandon(self) -> None:
        super().close()


class HashMap(Handle):
    """Block hashes of a disk nobody tracked (siterec_hashmap)."""

    _free = staticmethod(_c.siterec_hashmap_free)

    def __init__(self, disk_size: int = 0, block_size: int = 4096, *, _handle: object = None) -> None:
        super().__init__()
        if _handle is not None:
            self._h = _handle
            return
        h = ctypes.POINTER(_c.siterec_hashmap)()
        _c.siterec_hashmap_new(ctypes.byref(h), disk_size, block_size)
        self._h = h

    @classmethod
    def load(cls, path: PathLike) -> "HashMap":
        h = ctypes.POINTER(_c.siterec_hashmap)()
        _c.siterec_hashmap_load(ctypes.byref(h), b(path))
        return cls(_handle=h)

    def save(self, path: PathLike) -> None:
        _c.siterec_hashmap_save(self.handle, b(path))

    def info(self) -> tuple:
        size, block, known = ctypes.c_uint64(), ctypes.c_uint32(), ctypes.c_uint64()
        _c.siterec_hashmap_info(self.handle, ctypes.byref(size), ctypes.byref(block), ctypes.byref(known))
        return size.value, block.value, known.value

    def scan_fd(self, fd: int, *, update: bool = True, threads: int = 0,
                progress: Optional[ProgressFn] = None) -> Iterator[Extent]:
        """Changed runs of the disk at fd against the map."""
        o = struct(_c.siterec_hashscan_options, _c.SITEREC_HASHSCAN_OPTIONS_VERSION,
                   _c.siterec_hashscan_options_init)
        o.flags = _c.SITEREC_HASHSCAN_UPDATE if update else 0
        o.threads = threads
        o.progress = self.tramp(_c.siterec_progress_fn, progress)
        return _collect_extents(self, _c.siterec_hashmap_scan_fd, self.handle, fd, ctypes.byref(o))

    def diff(self, other: "HashMap") -> Iterator[Extent]:
        return _collect_extents(self, _c.siterec_hashmap_diff, self.handle, other.handle)
