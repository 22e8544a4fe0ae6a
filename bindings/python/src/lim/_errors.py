"""The exception hierarchy: one class per C error code (``LIM_E*``)."""
from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "Error", "NotFound", "AlreadyExists", "InvalidInput", "ChangeRejected",
    "Malformed", "HashMismatch", "SignatureError", "Gap", "Equivocation",
    "ClockSkew", "NotAStore", "VersionError", "Corrupt", "StorageError",
    "Failed", "TransactionError", "OutOfMemory", "AuthError", "ProtocolError",
    "StoreClosed", "Closed", "error_class",
]


class Error(Exception):
    """Base class of every liblim error.

    ``code`` is the C error code (a negative ``LIM_E*`` value), ``name`` its
    stable name (``"LIM_ENOTFOUND"``) and ``message`` the C library's message.
    Raised as is for ``LIM_ERROR`` (a generic failure).
    """

    code: int = -1
    name: str = "LIM_ERROR"

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
            self.name = _NAMES.get(code, "LIM_EUNKNOWN")

    def __str__(self) -> str:
        return self.message or self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code})"

    def __reduce__(self):  # picklable despite the extra base classes
        return (type(self), (self.message, self.code))


class NotFound(Error, KeyError):
    """No such store, document or field (``LIM_ENOTFOUND``); also a KeyError."""
    code, name = -3, "LIM_ENOTFOUND"


class AlreadyExists(Error):
    """The thing to create already exists (``LIM_EEXISTS``)."""
    code, name = -4, "LIM_EEXISTS"


class InvalidInput(Error, ValueError):
    """A bad argument: name, JSON, UTF-8, limits, types (``LIM_EINVALID``);
    also a ValueError."""
    code, name = -5, "LIM_EINVALID"


class ChangeRejected(Error):
    """Base of the errors for a change (or pack) from outside that was refused."""


class Malformed(ChangeRejected, ValueError):
    """An encoded change or pack is not well formed (``LIM_EMALFORMED``)."""
    code, name = -6, "LIM_EMALFORMED"


class HashMismatch(ChangeRejected):
    """A change's hash chain does not match (``LIM_EHASH``)."""
    code, name = -7, "LIM_EHASH"


class SignatureError(ChangeRejected):
    """A signature does not verify (``LIM_ESIGNATURE``)."""
    code, name = -8, "LIM_ESIGNATURE"


class Gap(ChangeRejected):
    """A change's predecessor is missing (``LIM_EGAP``)."""
    code, name = -9, "LIM_EGAP"


class Equivocation(ChangeRejected):
    """Two different changes for one author and seq, or a signed change
    continuing another fork of its author's chain (``LIM_EEQUIVOCATION``)."""
    code, name = -10, "LIM_EEQUIVOCATION"


class ClockSkew(ChangeRejected):
    """A timestamp beyond the allowed clock drift (``LIM_ECLOCK``)."""
    code, name = -11, "LIM_ECLOCK"


class NotAStore(Error):
    """The file is not a liblim store (``LIM_ENOTSTORE``)."""
    code, name = -12, "LIM_ENOTSTORE"


class VersionError(Error):
    """The store was written by a newer liblim (``LIM_EVERSION``)."""
    code, name = -13, "LIM_EVERSION"


class Corrupt(Error):
    """The store's contents fail verification (``LIM_ECORRUPT``)."""
    code, name = -14, "LIM_ECORRUPT"


class StorageError(Error, OSError):
    """The storage layer failed: disk, SQLite (``LIM_EIO``); also an OSError."""
    code, name = -15, "LIM_EIO"


class Failed(Error):
    """The store is in a failed state after an I/O error; reopen it (``LIM_EFAILED``)."""
    code, name = -16, "LIM_EFAILED"


class TransactionError(Error):
    """Transaction misuse: nested begin, commit without begin (``LIM_ETXN``)."""
    code, name = -17, "LIM_ETXN"


class OutOfMemory(Error, MemoryError):
    """Out of memory (``LIM_ENOMEM``); also a MemoryError."""
    code, name = -18, "LIM_ENOMEM"


class AuthError(Error):
    """Authentication failed while syncing (``LIM_EAUTH``)."""
    code, name = -19, "LIM_EAUTH"


class ProtocolError(Error):
    """The peer violated the sync protocol (``LIM_EPROTOCOL``)."""
    code, name = -20, "LIM_EPROTOCOL"


class StoreClosed(Error):
    """The store (or node) is closed (``LIM_ECLOSED``)."""
    code, name = -21, "LIM_ECLOSED"


Closed = StoreClosed

_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (Error, NotFound, AlreadyExists, InvalidInput, Malformed,
                HashMismatch, SignatureError, Gap, Equivocation, ClockSkew,
                NotAStore, VersionError, Corrupt, StorageError, Failed,
                TransactionError, OutOfMemory, AuthError, ProtocolError,
                StoreClosed)
}
_NAMES: Dict[int, str] = {code: cls.name for code, cls in _BY_CODE.items()}
_NAMES[-31] = "LIM_EITEROVER"


def error_class(code: int) -> Type[Error]:
    """The exception class for a C error code (``Error`` for unknown codes)."""
    return _BY_CODE.get(code, Error)
