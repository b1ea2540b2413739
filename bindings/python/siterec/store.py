"""Storage targets (store.h): file://DIR or Azure page blobs (and Azurite)."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

from . import _c
from ._base import Handle, b, opt_s, out_str, s, struct, take_buffer

ProgressFn = Callable[[int, int], Any]
ReadFn = Callable[[int, int], bytes]          # (length, offset) -> bytes


@dataclass(frozen=True)
class Extent:
    offset: int
    length: int


@dataclass(frozen=True)
class StoreEntry:
    """One listed object: kind is "disk", "snapshot" or "doc"."""
    name: str
    kind: str
    size: int
    snapshot: Optional[str]


@dataclass(frozen=True)
class UploadStats:
    already_complete: bool
    resumed_from: int
    bytes_read: int
    bytes_sent: int


@dataclass(frozen=True)
class Document:
    data: bytes
    etag: str


_KINDS = {_c.SITEREC_STORE_KIND_DISK: "disk", _c.SITEREC_STORE_KIND_SNAPSHOT: "snapshot",
          _c.SITEREC_STORE_KIND_DOC: "doc"}


def _collect_extents(owner: Handle, fn: Any, *args: Any) -> Iterator[Extent]:
    got: List[Extent] = []
    cb = owner.tramp(_c.siterec_extent_fn, lambda off, ln: got.append(Extent(off, ln)))
    owner.call(fn, *args, cb, None)
    return iter(got)


class Store(Handle):
    """An open storage target. Use as a context manager, or close()."""

    _free = staticmethod(_c.siterec_store_free)

    def __init__(self, url: str, *, create: bool = False, allow_http: bool = False,
                 content_md5: bool = False, account_key: Optional[str] = None,
                 sas_token: Optional[str] = None, ca_file: Optional[str] = None,
                 max_inflight: int = 0, timeout_ms: int = 0, bandwidth_limit: int = 0,
                 max_retries: int = 0, progress: Optional[ProgressFn] = None) -> None:
        super().__init__()
        self.url = url
        o = self.options = struct(_c.siterec_store_options, _c.SITEREC_STORE_OPTIONS_VERSION,
                                  _c.siterec_store_options_init)
        o.flags = ((_c.SITEREC_STORE_CREATE if create else 0) |
                   (_c.SITEREC_STORE_ALLOW_HTTP if allow_http else 0) |
                   (_c.SITEREC_STORE_CONTENT_MD5 if content_md5 else 0))
        o.account_key, o.sas_token, o.ca_file = b(account_key), b(sas_token), b(ca_file)
        o.max_inflight, o.timeout_ms, o.max_retries = max_inflight, timeout_ms, max_retries
        o.bandwidth_limit = bandwidth_limit
        o.progress = self.tramp(_c.siterec_progress_fn, progress)
        h = ctypes.POINTER(_c.siterec_store)()
        _c.siterec_store_open(ctypes.byref(h), b(url), ctypes.byref(o))
        self._h = h
        # the credentials were copied (and are wiped by the library); drop ours
        o.account_key = o.sas_token = None

    # ---- replica disks
    def disk_create(self, name: str, size: int) -> None:
        self.call(_c.siterec_store_disk_create, self.handle, b(name), size)

    def disk_size(self, name: str, snapshot: Optional[str] = None) -> int:
        v = ctypes.c_uint64()
        self.call(_c.siterec_store_disk_size, self.handle, b(name), b(snapshot), ctypes.byref(v))
        return v.value

    def disk_delete(self, name: str, *, snapshots: bool = False, lease_id: Optional[str] = None) -> None:
        self.call(_c.siterec_store_disk_delete, self.handle, b(name),
                  _c.SITEREC_STORE_DELETE_SNAPSHOTS if snapshots else 0, b(lease_id))

    def read(self, name: str, length: int, offset: int = 0, snapshot: Optional[str] = None) -> bytes:
        buf = ctypes.create_string_buffer(length)
        self.call(_c.siterec_store_read, self.handle, b(name), b(snapshot), buf, length, offset)
        return buf.raw

    def ranges(self, name: str, offset: int = 0, length: int = 0,
               snapshot: Optional[str] = None) -> Iterator[Extent]:
        """The extents that may hold data, merged and in order."""
        return _collect_extents(self, _c.siterec_store_ranges, self.handle, b(name), b(snapshot),
                                offset, length)

    def writer(self, name: str, lease_id: Optional[str] = None) -> "StoreWriter":
        return StoreWriter(self, name, lease_id)

    def upload(self, name: str, size: int, source: Any, *, resume: bool = False, vhd: bool = False,
               source_id: Optional[str] = None, lease_id: Optional[str] = None,
               checkpoint_bytes: int = 0) -> UploadStats:
        """Upload a source as the new disk `name`: source is a Disk (its allocated runs only)
        or a callable read(length, offset) -> bytes."""
        from .disk import Disk
        o = struct(_c.siterec_store_upload_options, _c.SITEREC_STORE_UPLOAD_OPTIONS_VERSION,
                   _c.siterec_store_upload_options_init)
        o.flags = ((_c.SITEREC_STORE_UPLOAD_RESUME if resume else 0) |
                   (_c.SITEREC_STORE_UPLOAD_VHD if vhd else 0))
        o.source_id, o.lease_id, o.checkpoint_bytes = b(source_id), b(lease_id), checkpoint_bytes
        st = struct(_c.siterec_store_upload_stats, _c.SITEREC_STORE_UPLOAD_STATS_VERSION)
        if isinstance(source, Disk):
            read = _c.siterec_read_fn(ctypes.cast(_c.siterec_disk_read_cb, ctypes.c_void_p).value)
            status = _c.siterec_block_status_fn(
                ctypes.cast(_c.siterec_disk_block_status_cb, ctypes.c_void_p).value)
            payload = ctypes.cast(source.handle, ctypes.c_void_p)
            self._deps = [source]
        else:
            read = self.tramp(_c.siterec_read_fn, _read_adaptor(source))
            status, payload = _c.siterec_block_status_fn(), None
        try:
            self.call(_c.siterec_store_upload, self.handle, b(name), size, read, status, payload,
                      ctypes.byref(o), ctypes.byref(st))
        finally:
            self._deps = []
        return UploadStats(bool(st.already_complete), st.resumed_from, st.bytes_read, st.bytes_sent)

    # ---- snapshots
    def snapshot(self, name: str) -> str:
        return out_str(lambda buf, cap: self.call(_c.siterec_store_snapshot, self.handle, b(name), buf, cap),
                       cap=_c.SITEREC_STORE_ID_MAX)

    def snapshot_delete(self, name: str, snapshot: str) -> None:
        self.call(_c.siterec_store_snapshot_delete, self.handle, b(name), b(snapshot))

    # ---- documents
    def doc_put(self, name: str, data: bytes, if_match: Optional[str] = None) -> str:
        """Store a document; if_match None: unconditional, "": create only, else that ETag.
        Returns the new ETag."""
        etag = ctypes.create_string_buffer(_c.SITEREC_STORE_ETAG_MAX)
        self.call(_c.siterec_store_doc_put, self.handle, b(name), data, len(data), b(if_match),
                  etag, len(etag))
        return s(etag.value)

    def doc_get(self, name: str) -> Document:
        data, length = ctypes.c_void_p(), ctypes.c_size_t()
        etag = ctypes.create_string_buffer(_c.SITEREC_STORE_ETAG_MAX)
        self.call(_c.siterec_store_doc_get, self.handle, b(name), ctypes.byref(data),
                  ctypes.byref(length), etag, len(etag))
        return Document(take_buffer(data, length.value), s(etag.value))

    def doc_delete(self, name: str, if_match: Optional[str] = None) -> None:
        self.call(_c.siterec_store_doc_delete, self.handle, b(name), b(if_match))

    # ---- leases
    def lease_acquire(self, name: str, duration_s: int = 0, proposed_id: Optional[str] = None) -> str:
        buf = ctypes.create_string_buffer(_c.SITEREC_STORE_LEASE_MAX)
        self.call(_c.siterec_store_lease_acquire, self.handle, b(name), duration_s, b(proposed_id),
                  buf, len(buf))
        return s(buf.value)

    def lease_renew(self, name: str, lease_id: str) -> None:
        self.call(_c.siterec_store_lease_renew, self.handle, b(name), b(lease_id))

    def lease_release(self, name: str, lease_id: str) -> None:
        self.call(_c.siterec_store_lease_release, self.handle, b(name), b(lease_id))

    def lease_break(self, name: str) -> None:
        self.call(_c.siterec_store_lease_break, self.handle, b(name))

    # ---- listing
    def list(self, prefix: Optional[str] = None) -> Iterator[StoreEntry]:
        got: List[StoreEntry] = []

        def one(name: bytes, kind: int, size: int, snap: Optional[bytes]) -> None:
            got.append(StoreEntry(s(name), _KINDS.get(kind, str(kind)), size, opt_s(snap)))

        cb = self.tramp(_c.siterec_store_list_fn, one)
        self.call(_c.siterec_store_list, self.handle, b(prefix), cb, None)
        return iter(got)


def _read_adaptor(read: ReadFn) -> Callable[[int, int, int], None]:
    def fill(buf: int, length: int, offset: int) -> None:
        data = read(length, offset)
        if len(data) != length:
            raise ValueError(f"read callback returned {len(data)} bytes, {length} wanted")
        ctypes.memmove(buf, data, length)
    return fill


class StoreWriter(Handle):
    """Queued writes to one disk of a store (siterec_store_writer)."""

    _free = staticmethod(_c.siterec_store_writer_free)

    def __init__(self, store: Store, name: str, lease_id: Optional[str] = None) -> None:
        super().__init__()
        self.store = store   # must outlive the writer
        h = ctypes.POINTER(_c.siterec_store_writer)()
        _c.siterec_store_writer_open(ctypes.byref(h), store.handle, b(name), b(lease_id))
        self._h = h

    def write(self, data: bytes, offset: int) -> None:
        _c.siterec_store_writer_write(self.handle, data, len(data), offset)

    def zero(self, offset: int, length: int) -> None:
        _c.siterec_store_writer_zero(self.handle, offset, length)

    def set_merge(self, max_gap: int) -> None:
        _c.siterec_store_writer_set_merge(self.handle, max_gap)

    def finish(self) -> None:
        _c.siterec_store_writer_finish(self.handle)

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            if exc_type is None and not self.closed:
                self.finish()
        finally:
            self.close()
