"""liblim for Python: a local-first, multi-master replicated document store.

    import lim

    with lim.open("a.db") as a, lim.open("b.db", network_key=a.network_key) as b:
        a.put("people", "ada", {"name": "Ada", "addr": {"city": "London"}})
        with lim.Node(a) as node:
            lim.sync_once(b, node.address)
        assert b.get("people", "ada")["addr"]["city"] == "London"

All merging, storage and protocol work happens in the C library; this
package is a thin cffi binding over it.
"""
from __future__ import annotations

from ._errors import (AlreadyExists, AuthError, ChangeRejected, ClockSkew,
                      Closed, Corrupt, Equivocation, Error, Failed, Gap,
                      HashMismatch, InvalidInput, Malformed, NotAStore,
                      NotFound, OutOfMemory, ProtocolError, SignatureError,
                      StorageError, StoreClosed, TransactionError,
                      VersionError, error_class)
from ._lim import ffi as _ffi
from ._lim import lib as _lib
from .node import (ChangeFeed, Node, RemoteChange, SyncStats, remote_status,
                   sync_once)
from .store import (ApplyStats, Collection, LogEntry, Store, Transaction,
                    Value, open)

__version__ = "0.1.0"


def c_version() -> str:
    """The version of the C library compiled into this extension."""
    return _ffi.string(_lib.lim_version()).decode("ascii")


__all__ = [
    "open", "Store", "Collection", "Transaction", "Node", "ChangeFeed",
    "RemoteChange", "SyncStats", "ApplyStats", "LogEntry", "Value",
    "sync_once", "remote_status", "c_version",
    "Error", "NotFound", "AlreadyExists", "InvalidInput", "ChangeRejected",
    "Malformed", "HashMismatch", "SignatureError", "Gap", "Equivocation",
    "ClockSkew", "NotAStore", "VersionError", "Corrupt", "StorageError",
    "Failed", "TransactionError", "OutOfMemory", "AuthError", "ProtocolError",
    "StoreClosed", "Closed", "error_class",
]
