"""Shared machinery of the Pythonic layer: handle ownership, callback trampolines that
carry exceptions back to the caller, string and buffer helpers."""
from __future__ import annotations

import ctypes
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Union

from . import _c
from .errors import SiteRecError

PathLike = Union[str, bytes, "os.PathLike[str]"]


def b(s: Optional[Any]) -> Optional[bytes]:
    """A str / path / bytes argument as bytes for a `const char *`, None stays NULL."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode("utf-8")


def s(v: Optional[bytes]) -> str:
    return v.decode("utf-8", "replace") if v else ""


def opt_s(v: Optional[bytes]) -> Optional[str]:
    return None if v is None else v.decode("utf-8", "replace")


def struct(cls: Any, version_const: Optional[int] = None, init: Optional[Callable[..., int]] = None) -> Any:
    """A zeroed versioned struct: filled by its siterec_X_options_init() when there is one,
    else with version set."""
    obj = cls()
    if init is not None:
        init(ctypes.byref(obj), version_const)
    elif version_const is not None:
        obj.version = version_const
    return obj


class CallbackErrors:
    """Exceptions raised inside callbacks of one owner (a handle), kept until the Python
    method that made the library call them re-raises them. Thread-safe: plan callbacks run
    on the library's worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: List[BaseException] = []

    def record(self, exc: BaseException) -> None:
        with self._lock:
            self._pending.append(exc)

    def take(self) -> Optional[BaseException]:
        with self._lock:
            first = self._pending[0] if self._pending else None
            self._pending.clear()
            return first


def trampoline(cftype: Any, fn: Callable[..., Any], errors: CallbackErrors,
               convert: Optional[Callable[..., tuple]] = None, failure: int = -1) -> Any:
    """A ctypes function pointer calling fn. An exception is recorded in errors (to be
    re-raised by the method that called the library) and the library gets `failure`
    (non-zero: it aborts with SITEREC_EABORTED). fn returning None or False goes on;
    True or an int is returned as is (non-zero: abort).
    convert maps the C arguments (without the payload) to fn's arguments."""

    def tramp(*args: Any) -> int:
        try:
            cargs = args[:-1]   # the last is the payload, not used: state lives in the closure
            rc = fn(*(convert(*cargs) if convert else cargs))
            if rc is None or rc is False:
                return 0
            return 1 if rc is True else int(rc)
        except BaseException as e:   # noqa: B902 - even KeyboardInterrupt must not cross C frames
            errors.record(e)
            return failure

    return cftype(tramp)


class Handle:
    """Owner of one library handle: close() frees it (idempotent), context manager, and
    call() runs a library function re-raising what a callback raised during it."""

    _free: Callable[[Any], None]

    def __init__(self) -> None:
        self._h: Any = None
        self._cb_errors = CallbackErrors()
        self._keep: List[Any] = []   # trampolines and buffers the library may still use
        self._deps: List["Handle"] = []   # handles whose callbacks may run during our calls

    @property
    def handle(self) -> Any:
        if not self._h:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._h

    @property
    def closed(self) -> bool:
        return not self._h

    def close(self) -> None:
        h, self._h = self._h, None
        if h:
            type(self)._free(h)
        self._keep.clear()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def keep(self, obj: Any) -> Any:
        self._keep.append(obj)
        return obj

    def tramp(self, cftype: Any, fn: Optional[Callable[..., Any]], convert: Any = None) -> Any:
        """A trampoline for fn (None: a NULL pointer) kept alive as long as this handle."""
        if fn is None:
            return cftype()
        return self.keep(trampoline(cftype, fn, self._cb_errors, convert))

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Re-raise an exception a callback raised while the library ran (the library's own
        SITEREC_EABORTED becomes its __cause__)."""
        owners = [self] + self._deps
        for o in owners:
            o._cb_errors.take()
        try:
            yield
        except SiteRecError as e:
            pending = _first(owners)
            if pending is not None:
                raise pending from e
            raise
        pending = _first(owners)
        if pending is not None:
            raise pending

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.guard():
            return fn(*args)


def _first(owners: List[Handle]) -> Optional[BaseException]:
    found = None
    for o in owners:
        e = o._cb_errors.take()
        if found is None:
            found = e
    return found


def out_str(fn: Callable[..., Any], *args: Any, cap: int) -> str:
    buf = ctypes.create_string_buffer(cap)
    fn(*args, buf, cap)
    return s(buf.value)


def take_buffer(ptr: ctypes.c_void_p, length: int) -> bytes:
    """Copy memory the library allocated, then free it with siterec_free()."""
    try:
        return ctypes.string_at(ptr, length) if ptr else b""
    finally:
        _c.siterec_free(ptr)


def strings(values: List[Optional[str]]) -> Any:
    arr = (ctypes.c_char_p * max(1, len(values)))()
    for i, v in enumerate(values):
        arr[i] = b(v)
    return arr
