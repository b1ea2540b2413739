"""Exceptions raised for the library's negative SITEREC_E* codes."""
from __future__ import annotations

from typing import Dict, Optional, Type

# Values are ABI (include/siterec/common.h): never renumbered.
OK = 0
ERROR, EINVAL, ENOMEM, EIO, ENOTFOUND, EEXISTS, ERANGE, EALIGN, ECORRUPT = range(-1, -10, -1)
EVERSION, EAUTH, ESTATE, EABORTED, EUNSUPPORTED, ECONFLICT, ELEASE = range(-10, -17, -1)
ENETWORK, ETIMEOUT, EBUSY, ENOSPC, ETRUNCATED, ERESYNC, EDISK, ESTORAGE, ECRITICAL = range(-17, -26, -1)


class SiteRecError(Exception):
    """A libsiterec call failed.

    code: the negative SITEREC_E* code; message: siterec_error_last()'s text;
    http_status and service_code: for storage errors (else 0 and "");
    os_error: errno of a failing system call; callback_code: for SITEREC_EABORTED,
    what the callback returned; function: the C function that failed.
    """

    def __init__(self, code: int, message: str = "", *, http_status: int = 0,
                 service_code: str = "", os_error: int = 0, callback_code: int = 0,
                 function: Optional[str] = None) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.service_code = service_code
        self.os_error = os_error
        self.callback_code = callback_code
        self.function = function
        super().__init__(code, message)

    def __str__(self) -> str:
        where = f"{self.function}: " if self.function else ""
        text = f"{where}{self.message or 'error'} [{_NAMES.get(self.code, 'SITEREC_E?')} {self.code}]"
        if self.http_status:
            text += f" (HTTP {self.http_status}{' ' + self.service_code if self.service_code else ''})"
        return text


class InvalidArgumentError(SiteRecError, ValueError):
    """SITEREC_EINVAL: invalid argument."""


class NoMemoryError(SiteRecError):
    """SITEREC_ENOMEM."""


class IOFailure(SiteRecError):
    """SITEREC_EIO: an operating-system I/O error (see os_error)."""


class NotFoundError(SiteRecError, LookupError):
    """SITEREC_ENOTFOUND: file, object or record does not exist."""


class ExistsError(SiteRecError):
    """SITEREC_EEXISTS."""


class RangeError(SiteRecError):
    """SITEREC_ERANGE: offset or length past the end."""


class AlignmentError(SiteRecError):
    """SITEREC_EALIGN."""


class CorruptError(SiteRecError):
    """SITEREC_ECORRUPT: data failed a checksum or is malformed."""


class TruncatedError(CorruptError):
    """SITEREC_ETRUNCATED: data ends early (a torn log tail)."""


class VersionError(SiteRecError):
    """SITEREC_EVERSION."""


class AuthError(SiteRecError):
    """SITEREC_EAUTH: authentication failed (wrong key, tampered data)."""


class StateError(SiteRecError):
    """SITEREC_ESTATE: not valid in the object's current state."""


class AbortedError(SiteRecError):
    """SITEREC_EABORTED: a callback returned non-zero."""


class UnsupportedError(SiteRecError):
    """SITEREC_EUNSUPPORTED."""


class ConflictError(SiteRecError):
    """SITEREC_ECONFLICT: concurrent modification (ETag mismatch)."""


class LeaseError(ConflictError):
    """SITEREC_ELEASE: lease held by someone else, lost or expired."""


class NetworkError(SiteRecError):
    """SITEREC_ENETWORK."""


class OperationTimeoutError(SiteRecError):
    """SITEREC_ETIMEOUT."""


class BusyError(SiteRecError):
    """SITEREC_EBUSY."""


class NoSpaceError(SiteRecError):
    """SITEREC_ENOSPC."""


class ResyncNeededError(SiteRecError):
    """SITEREC_ERESYNC: change tracking not trustworthy, a resync is needed."""


class DiskImageError(SiteRecError):
    """SITEREC_EDISK: disk image problem."""


class StorageError(SiteRecError):
    """SITEREC_ESTORAGE: the storage service returned an error (see http_status)."""


class CriticalError(SiteRecError):
    """SITEREC_ECRITICAL."""


ERROR_CLASSES: Dict[int, Type[SiteRecError]] = {
    EINVAL: InvalidArgumentError, ENOMEM: NoMemoryError, EIO: IOFailure,
    ENOTFOUND: NotFoundError, EEXISTS: ExistsError, ERANGE: RangeError,
    EALIGN: AlignmentError, ECORRUPT: CorruptError, EVERSION: VersionError,
    EAUTH: AuthError, ESTATE: StateError, EABORTED: AbortedError,
    EUNSUPPORTED: UnsupportedError, ECONFLICT: ConflictError, ELEASE: LeaseError,
    ENETWORK: NetworkError, ETIMEOUT: OperationTimeoutError, EBUSY: BusyError,
    ENOSPC: NoSpaceError, ETRUNCATED: TruncatedError, ERESYNC: ResyncNeededError,
    EDISK: DiskImageError, ESTORAGE: StorageError, ECRITICAL: CriticalError,
}

_NAMES = {v: "SITEREC_" + k for k, v in dict(globals()).items()
          if k.isupper() and isinstance(v, int) and (k.startswith("E") or k in ("ERROR", "OK"))}


def error_class(code: int) -> Type[SiteRecError]:
    """The exception class raised for a SITEREC_E* code (SiteRecError for others)."""
    return ERROR_CLASSES.get(code, SiteRecError)
