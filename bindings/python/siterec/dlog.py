"""Delta logs (dlog.h): write, read, verify, coalesce, apply."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence

from . import _c
from ._base import CallbackErrors, Handle, PathLike, b, struct, trampoline
from .errors import SiteRecError

WriteFn = Callable[[bytes, int], Any]   # (data, offset)


@dataclass(frozen=True)
class Record:
    seq: int
    offset: int
    length: int
    zero: bool
    data: Optional[bytes]   # None for a zero record


@dataclass(frozen=True)
class LogInfo:
    format_version: int
    disk_size: int
    disk_id: bytes
    block_size: int
    encrypted: bool
    first_seq: int
    last_seq: int
    records: int
    data_bytes: int
    file_bytes: int
    sealed: bool
    torn: bool


def _options(disk_size: int = 0, *, disk_id: bytes = b"", block_size: int = 0, buffer_size: int = 0,
             first_seq: int = 0, key: Optional[bytes] = None, sync_each: bool = False,
             detect_zero: bool = False) -> Any:
    o = struct(_c.siterec_dlog_options, _c.SITEREC_DLOG_OPTIONS_VERSION, _c.siterec_dlog_options_init)
    o.flags = (_c.SITEREC_DLOG_SYNC_EACH if sync_each else 0) | (_c.SITEREC_DLOG_DETECT_ZERO if detect_zero else 0)
    o.disk_size, o.block_size, o.buffer_size, o.first_seq = disk_size, block_size, buffer_size, first_seq
    if disk_id:
        ctypes.memmove(o.disk_id, disk_id[:16], min(16, len(disk_id)))
    if key is not None:
        kb = ctypes.create_string_buffer(key, len(key))
        o.key = ctypes.cast(kb, ctypes.POINTER(ctypes.c_uint8))
        o.key_size = len(key)
        o._key_buffer = kb   # keep it alive with the options
    return o


def _info(i: Any) -> LogInfo:
    return LogInfo(i.format_version, i.disk_size, bytes(i.disk_id), i.block_size, bool(i.encrypted),
                   i.first_seq, i.last_seq, i.records, i.data_bytes, i.file_bytes, bool(i.sealed),
                   bool(i.torn))


class DeltaLog(Handle):
    """Writer of one log file: DeltaLog.create(path, disk_size) or DeltaLog.reopen(path)."""

    _free = staticmethod(_c.siterec_dlog_free)

    def __init__(self, handle: Any, torn: bool = False) -> None:
        super().__init__()
        self._h = handle
        self.torn = torn

    @classmethod
    def create(cls, path: PathLike, disk_size: int, **opts: Any) -> "DeltaLog":
        o = _options(disk_size, **opts)
        h = ctypes.POINTER(_c.siterec_dlog)()
        _c.siterec_dlog_create(ctypes.byref(h), b(path), ctypes.byref(o))
        return cls(h)

    @classmethod
    def reopen(cls, path: PathLike, **opts: Any) -> "DeltaLog":
        o = _options(**opts)
        h, torn = ctypes.POINTER(_c.siterec_dlog)(), ctypes.c_int()
        _c.siterec_dlog_reopen(ctypes.byref(h), b(path), ctypes.byref(o), ctypes.byref(torn))
        return cls(h, bool(torn.value))

    def append(self, offset: int, data: bytes) -> int:
        seq = ctypes.c_uint64()
        _c.siterec_dlog_append(self.handle, offset, data, len(data), ctypes.byref(seq))
        return seq.value

    def append_zero(self, offset: int, length: int) -> int:
        seq = ctypes.c_uint64()
        _c.siterec_dlog_append_zero(self.handle, offset, length, ctypes.byref(seq))
        return seq.value

    def append_frozen_fd(self, tracker: Any, fd: int) -> None:
        _c.siterec_dlog_append_frozen_fd(self.handle, tracker.handle, fd)

    def sync(self) -> None:
        _c.siterec_dlog_sync(self.handle)

    def seal(self) -> None:
        _c.siterec_dlog_seal(self.handle)

    def rotate(self, next_path: PathLike) -> None:
        _c.siterec_dlog_rotate(self.handle, b(next_path))

    @property
    def next_seq(self) -> int:
        return int(_c.siterec_dlog_next_seq(self.handle))


class DeltaLogReader(Handle):
    """Sequential reader: iterate it for Records (checksums verified)."""

    _free = staticmethod(_c.siterec_dlog_reader_free)

    def __init__(self, path: PathLike, *, key: Optional[bytes] = None) -> None:
        super().__init__()
        self._opts = _options(key=key)
        h = ctypes.POINTER(_c.siterec_dlog_reader)()
        _c.siterec_dlog_reader_open(ctypes.byref(h), b(path), ctypes.byref(self._opts))
        self._h = h

    def __iter__(self) -> Iterator[Record]:
        rec = _c.siterec_dlog_record()
        while _c.siterec_dlog_reader_next(self.handle, ctypes.byref(rec)) == 1:
            data = None if rec.zero else ctypes.string_at(rec.data, rec.length)
            yield Record(rec.seq, rec.offset, rec.length, bool(rec.zero), data)

    def info(self) -> LogInfo:
        i = struct(_c.siterec_dlog_info, _c.SITEREC_DLOG_INFO_VERSION)
        _c.siterec_dlog_reader_info(self.handle, ctypes.byref(i))
        return _info(i)


def verify(path: PathLike, *, key: Optional[bytes] = None) -> LogInfo:
    """Check a whole log; TruncatedError for a torn tail, CorruptError for damage."""
    o = _options(key=key)
    i = struct(_c.siterec_dlog_info, _c.SITEREC_DLOG_INFO_VERSION)
    _c.siterec_dlog_verify(b(path), ctypes.byref(o), ctypes.byref(i))
    return _info(i)


def coalesce(inputs: Sequence[PathLike], output: PathLike, *, key: Optional[bytes] = None,
             out_key: Optional[bytes] = None) -> None:
    arr = (ctypes.c_char_p * len(inputs))(*[b(p) for p in inputs])
    _c.siterec_dlog_coalesce(arr, len(inputs), b(output), ctypes.byref(_options(key=key)),
                             ctypes.byref(_options(key=out_key)))


def apply(path: PathLike, write: WriteFn, *, key: Optional[bytes] = None, allow_torn: bool = False,
          require_sealed: bool = False) -> int:
    """Apply a log through write(data, offset); returns the last sequence applied."""
    errors = CallbackErrors()
    cb = trampoline(_c.siterec_write_fn, write, errors,
                    convert=lambda buf, n, off: (ctypes.string_at(buf, n), off))
    flags = ((_c.SITEREC_DLOG_APPLY_ALLOW_TORN if allow_torn else 0) |
             (_c.SITEREC_DLOG_APPLY_REQUIRE_SEALED if require_sealed else 0))
    seq = ctypes.c_uint64()
    try:
        _c.siterec_dlog_apply(b(path), ctypes.byref(_options(key=key)), flags, cb, None, ctypes.byref(seq))
    except SiteRecError as e:
        pending = errors.take()
        if pending is not None:
            raise pending from e
        raise
    return seq.value


def apply_fd(path: PathLike, fd: int, *, key: Optional[bytes] = None, allow_torn: bool = False) -> int:
    seq = ctypes.c_uint64()
    _c.siterec_dlog_apply_fd(b(path), ctypes.byref(_options(key=key)),
                             _c.SITEREC_DLOG_APPLY_ALLOW_TORN if allow_torn else 0, fd, ctypes.byref(seq))
    return seq.value
