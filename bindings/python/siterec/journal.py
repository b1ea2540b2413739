"""The journal (journal.h): a VM's write path and its hand-over of delta logs."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from . import _c
from ._base import Handle, PathLike, b, s, struct

WriteFn = Callable[[bytes, int], Any]    # (data, offset): the disk write after the log


@dataclass
class JournalDisk:
    id: str
    size: int
    write: Optional[WriteFn] = None     # writer side: where writes go after the log


class Journal(Handle):
    """A journal directory. As the writer (writer=True) every VM write goes through write();
    a replicating side asks for rotations."""

    _free = staticmethod(_c.siterec_journal_free)

    def __init__(self, directory: PathLike, disks: Sequence[JournalDisk], *, writer: bool = False,
                 create: bool = False, sync_each: bool = False, add_disks: bool = False) -> None:
        super().__init__()
        self.directory = directory
        arr = self.keep((_c.siterec_journal_disk * len(disks))())
        for i, d in enumerate(disks):
            arr[i].id, arr[i].size = b(d.id), d.size
            arr[i].write = self.tramp(_c.siterec_write_fn, d.write,
                                      convert=lambda buf, n, off: (ctypes.string_at(buf, n), off))
        o = struct(_c.siterec_journal_options, _c.SITEREC_JOURNAL_OPTIONS_VERSION,
                   _c.siterec_journal_options_init)
        o.flags = ((_c.SITEREC_JOURNAL_WRITER if writer else 0) | (_c.SITEREC_JOURNAL_CREATE if create else 0) |
                   (_c.SITEREC_JOURNAL_SYNC_EACH if sync_each else 0) |
                   (_c.SITEREC_JOURNAL_ADD_DISKS if add_disks else 0))
        o.n_disks, o.disks = len(disks), arr
        h = ctypes.POINTER(_c.siterec_journal)()
        _c.siterec_journal_open(ctypes.byref(h), b(directory), ctypes.byref(o))
        self._h = h

    def write(self, disk_index: int, data: bytes, offset: int) -> None:
        """Log a write (multiples of 512), then pass it to the disk's write callback."""
        self.call(_c.siterec_journal_write, self.handle, disk_index, data, len(data), offset)

    def flush(self) -> None:
        _c.siterec_journal_flush(self.handle)

    def poll(self) -> bool:
        rotated = ctypes.c_int()
        # no callback runs in a poll: not guarded, so a poller thread never takes the
        # exception a write callback raised on the writing thread
        _c.siterec_journal_poll(self.handle, ctypes.byref(rotated))
        return bool(rotated.value)

    def request_rotate(self, timeout_ms: int = 0) -> int:
        seq = ctypes.c_uint64()
        self.call(_c.siterec_journal_request_rotate, self.handle, timeout_ms, ctypes.byref(seq))
        return seq.value

    def log_path(self, disk_index: int, seq: int) -> str:
        buf = ctypes.create_string_buffer(4096)
        _c.siterec_journal_log_path(self.handle, disk_index, seq, buf, len(buf))
        return s(buf.value)

    def seqs(self) -> Tuple[int, int]:
        """(active_seq, oldest_seq)."""
        a, o = ctypes.c_uint64(), ctypes.c_uint64()
        _c.siterec_journal_seqs(self.handle, ctypes.byref(a), ctypes.byref(o))
        return a.value, o.value

    def release(self, seq: int) -> None:
        _c.siterec_journal_release(self.handle, seq)
