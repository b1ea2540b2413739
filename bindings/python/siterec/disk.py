"""Disk images (disk.h): raw, VHD, VHDX reading; raw and fixed VHD writing."""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Tuple

from . import _c
from ._base import Handle, PathLike, b, struct


class DiskFormat(enum.IntEnum):
    AUTO = _c.SITEREC_DISK_FORMAT_AUTO
    RAW = _c.SITEREC_DISK_FORMAT_RAW
    VHD = _c.SITEREC_DISK_FORMAT_VHD
    VHDX = _c.SITEREC_DISK_FORMAT_VHDX


@dataclass(frozen=True)
class DiskInfo:
    format: int
    kind: int
    logical_sector: int
    physical_sector: int
    block_size: int
    virtual_size: int
    file_size: int
    disk_id: bytes
    generation_hint: int
    chain_depth: int
    log_replayed: bool
    writable: bool


class Disk(Handle):
    """An open disk image. Disk(path) opens; Disk.create(path, size) makes a new one."""

    _free = staticmethod(_c.siterec_disk_free)

    def __init__(self, path: PathLike, *, write: bool = False, replay_log: bool = False,
                 format: int = DiskFormat.AUTO, max_chain: int = 0, _handle: object = None) -> None:
        super().__init__()
        self.path = path
        if _handle is not None:
            self._h = _handle
            return
        o = struct(_c.siterec_disk_options, _c.SITEREC_DISK_OPTIONS_VERSION, _c.siterec_disk_options_init)
        o.format = int(format)
        o.flags = (_c.SITEREC_DISK_OPEN_WRITE if write else 0) | (_c.SITEREC_DISK_REPLAY_LOG if replay_log else 0)
        o.max_chain = max_chain
        h = ctypes.POINTER(_c.siterec_disk)()
        _c.siterec_disk_open(ctypes.byref(h), b(path), ctypes.byref(o))
        self._h = h

    @classmethod
    def create(cls, path: PathLike, size: int, *, vhd: bool = False, disk_id: bytes = b"") -> "Disk":
        o = struct(_c.siterec_disk_create_options, _c.SITEREC_DISK_CREATE_OPTIONS_VERSION,
                   _c.siterec_disk_create_options_init)
        o.format = _c.SITEREC_DISK_FORMAT_VHD if vhd else _c.SITEREC_DISK_FORMAT_RAW
        if disk_id:
            if len(disk_id) != 16:
                raise ValueError("disk_id must be 16 bytes")
            ctypes.memmove(o.disk_id, disk_id, 16)
        h = ctypes.POINTER(_c.siterec_disk)()
        _c.siterec_disk_create(ctypes.byref(h), b(path), size, ctypes.byref(o))
        return cls(path, _handle=h)

    def info(self) -> DiskInfo:
        i = struct(_c.siterec_disk_info, _c.SITEREC_DISK_INFO_VERSION)
        _c.siterec_disk_info_get(self.handle, ctypes.byref(i))
        return DiskInfo(i.format, i.kind, i.logical_sector, i.physical_sector, i.block_size,
                        i.virtual_size, i.file_size, bytes(i.disk_id), i.generation_hint,
                        i.chain_depth, bool(i.log_replayed), bool(i.writable))

    @property
    def size(self) -> int:
        return self.info().virtual_size

    def read(self, length: int, offset: int = 0) -> bytes:
        buf = ctypes.create_string_buffer(length)
        _c.siterec_disk_read(self.handle, buf, length, offset)
        return buf.raw

    def write(self, data: bytes, offset: int) -> None:
        _c.siterec_disk_write(self.handle, data, len(data), offset)

    def flush(self) -> None:
        _c.siterec_disk_flush(self.handle)

    def block_status(self, offset: int, length: int) -> Tuple[int, bool]:
        """(run_length, allocated) of the run starting at offset."""
        run, alloc = ctypes.c_uint64(), ctypes.c_int()
        _c.siterec_disk_block_status(self.handle, offset, length, ctypes.byref(run), ctypes.byref(alloc))
        return run.value, bool(alloc.value)
