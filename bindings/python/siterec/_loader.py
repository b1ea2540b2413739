"""Finding and loading libsiterec, and the one ffi() helper that declares its functions."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .errors import SiteRecError, error_class

ENV_VAR = "SITEREC_LIBRARY"
SONAME = "libsiterec.so.1"


def _candidates() -> List[str]:
    """Where the library is looked for, in order."""
    found: List[str] = []
    env = os.environ.get(ENV_VAR)
    if env:
        return [env]   # an explicit path is the only candidate: never fall back silently
    # the build tree: walk up from the package to the libsiterec source tree holding it
    # (an installed package is in no source tree: it goes to the system loader), then its
    # build*/libsiterec.so.1, the newest first
    here = Path(__file__).resolve().parent
    for parent in here.parents:
        if (parent / "include" / "siterec" / "siterec.h").is_file() and (parent / "meson.build").is_file():
            libs = [p for p in parent.glob("build*/" + SONAME) if p.is_file()]
            libs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
            found += [str(p) for p in libs]
            break
    # the system loader
    name = ctypes.util.find_library("siterec")
    if name:
        found.append(name)
    found.append(SONAME)
    return found


def _load() -> ctypes.CDLL:
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
    hint = (f"set {ENV_VAR} to the path of {SONAME}" if ENV_VAR not in os.environ
            else f"check {ENV_VAR}")
    raise ImportError("siterec: cannot load libsiterec (" + "; ".join(errors) + f"); {hint}")


lib = _load()
LIBRARY_PATH: str = getattr(lib, "_name", SONAME)

#: every function declared through ffi(), by name (the drift test checks it against the headers)
DECLARED: Dict[str, Any] = {}


class _ErrorRecord(ctypes.Structure):
    # siterec_error (common.h); _c.siterec_error is the same layout, this one avoids a cycle
    _fields_ = [("code", ctypes.c_int), ("http_status", ctypes.c_int), ("os_error", ctypes.c_int),
                ("callback_code", ctypes.c_int), ("message", ctypes.c_char_p),
                ("service_code", ctypes.c_char_p)]


_error_last = lib.siterec_error_last
_error_last.argtypes = []
_error_last.restype = ctypes.POINTER(_ErrorRecord)


def _text(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b else ""


def last_error(code: int, function: Optional[str] = None) -> SiteRecError:
    """The exception for a code just returned on this thread, with siterec_error_last()'s details."""
    rec = _error_last().contents
    same = rec.code == code
    return error_class(code)(
        code, _text(rec.message) if same else "",
        http_status=rec.http_status if same else 0,
        service_code=_text(rec.service_code) if same else "",
        os_error=rec.os_error if same else 0,
        callback_code=rec.callback_code if same else 0,
        function=function)


def _errcheck(result: int, func: Any, args: Any) -> int:
    if result < 0:
        raise last_error(result, func.__name__)
    return result


def ffi(name: str, argtypes: Sequence[Any], restype: Any = ctypes.c_int) -> Callable[..., Any]:
    """Declare one exported function: its argument and return types; functions returning int
    get an errcheck that raises the SiteRecError subclass of a negative code."""
    try:
        fn = getattr(lib, name)
    except AttributeError:
        raise ImportError(f"siterec: {LIBRARY_PATH} does not export {name} (an older libsiterec?); "
                          f"set {ENV_VAR} to the library this binding belongs to") from None
    fn.argtypes = list(argtypes)
    fn.restype = restype
    if restype is ctypes.c_int:
        fn.errcheck = _errcheck
    DECLARED[name] = fn
    return fn
