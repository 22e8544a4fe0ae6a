"""The Store: an open liblim store (``lim_db``)."""
from __future__ import annotations

import os
import threading
import weakref
from typing import (Any, Callable, Dict, Iterator, List, Mapping, NamedTuple,
                    Optional, Union)

from ._core import (CallbackContext, Handle, check, cstr, decode_json,
                    encode_doc, from_value, last_error, path_arg, take_buf,
                    to_value)
from ._errors import InvalidInput, NotFound, StoreClosed, TransactionError
from ._lim import ffi, lib

__all__ = ["Store", "open", "Collection", "LogEntry", "ApplyStats", "Value"]

#: A stored value as Python sees it.
Value = Union[None, bool, int, float, str, bytes, frozenset, Dict[str, Any]]

PathLike = Union[str, "os.PathLike[str]"]
_MISSING: Any = object()
_PAGE = 256


class ApplyStats(NamedTuple):
    """What applying changes did: new changes stored, and duplicates ignored."""
    applied: int
    duplicates: int


class LogEntry(NamedTuple):
    """One change of the log: author (64 hex), seq, HLC and its canonical bytes."""
    author: str
    seq: int
    hlc: int
    change: bytes

    @property
    def timestamp(self) -> float:
        """The change's wall-clock time (seconds since the epoch) from its HLC."""
        return (self.hlc >> 16) / 1000.0


def _vv_text(since: Any) -> Optional[bytes]:
    if since is None:
        return None
    if isinstance(since, Mapping):
        return "".join(f"{a} {int(s)}\n" for a, s in sorted(since.items())).encode("ascii")
    if isinstance(since, str):
        return since.encode("utf-8")
    if isinstance(since, (bytes, bytearray)):
        return bytes(since)
    raise InvalidInput("since must be a version vector (dict, or its text)", -5)


def _key_bytes(key: Any) -> Any:
    if key is None:
        return ffi.NULL
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key)
        except ValueError:
            raise InvalidInput("network_key must be 32 bytes or 64 hex digits", -5) from None
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise InvalidInput("network_key must be 32 bytes or 64 hex digits", -5)
    return ffi.new("unsigned char[32]", bytes(key))


class Store:
    """An open liblim store. Use :func:`lim.open` to get one.

    A Store may be shared between threads: every call releases the GIL while
    in C, and :meth:`close` waits for calls in flight (later calls raise
    :class:`StoreClosed`). Use it as a context manager to close it.
    """

    def __init__(self, path: PathLike, *, network_key: Union[bytes, str, None] = None,
                 synchronous: str = "normal", create: bool = True,
                 max_drift: float = 60.0,
                 clock: Optional[Callable[[], float]] = None,
                 vfs: Optional[str] = None) -> None:
        self._tx = threading.local()
        fspath = os.fspath(path)
        bpath = os.fsencode(fspath)
        if b"\0" in bpath:
            raise InvalidInput("path contains a NUL character", -5)
        opts = ffi.new("lim_db_options *")
        check(lib.lim_db_options_init(opts, lib.LIM_DB_OPTIONS_VERSION))
        opts.create = 1 if create else 0
        if synchronous == "normal":
            opts.synchronous = lib.LIM_SYNC_NORMAL
        elif synchronous == "full":
            opts.synchronous = lib.LIM_SYNC_FULL
        else:
            raise InvalidInput('synchronous must be "normal" or "full"', -5)
        opts.max_drift_ms = int(max_drift * 1000)
        key = _key_bytes(network_key)
        opts.network_key = key
        vfs_name = None
        if vfs is not None:
            vfs_name = ffi.new("char[]", cstr(vfs, "vfs"))
            opts.vfs = vfs_name
        clock_ctx = None
        if clock is not None:
            clock_ctx = CallbackContext(clock)
            opts.clock = lib._lim_py_clock
            opts.clock_ctx = clock_ctx.handle
        out = ffi.new("lim_db **")
        check(lib.lim_db_open(out, bpath, opts))
        h = Handle(out[0], lib.lim_db_free, "store")
        if clock_ctx is not None:
            h.keepalive.append(clock_ctx)
        self._h: Handle = h
        self.path = fspath
        # Closes the store if it is garbage collected (and at exit) unclosed.
        self._finalizer = weakref.finalize(self, h.close)
        rid = ffi.new("unsigned char[32]")
        check(lib.lim_db_replica_id(h.ptr, rid))
        self._replica_id = bytes(rid).hex()
        check(lib.lim_db_network_key(h.ptr, rid))
        self._network_key = bytes(rid)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the store (stopping its nodes first). Idempotent; waits for
        calls in flight on other threads; an open transaction is rolled back."""
        if getattr(self, "_h", None) is not None:
            self._h.close()
            self._finalizer.detach()

    @property
    def closed(self) -> bool:
        h = getattr(self, "_h", None)
        return h is None or h.closed

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<lim.Store {self.path!r} {self._replica_id[:12]}… {state}>"

    @property
    def replica_id(self) -> str:
        """This store's replica id (its Ed25519 public key) as 64 hex digits."""
        return self._replica_id

    @property
    def network_key(self) -> bytes:
        """The 32-byte network key shared by every member of the network."""
        return self._network_key

    def _call(self, fn: Callable[..., int], *args: Any) -> int:
        h = self._h
        ptr = h.enter()
        try:
            rc = fn(ptr, *args)
            if rc < 0:
                raise last_error(rc)
            return rc
        finally:
            h.leave()

    # ------------------------------------------------------------ writes

    def put(self, coll: str, doc: str, mapping: Mapping[str, Any]) -> None:
        """Merge a mapping into a document: every leaf becomes a field
        (nested dicts are nested fields; bytes are stored as bytes)."""
        text, nul = encode_doc(mapping)
        c, d = cstr(coll, "collection"), cstr(doc, "document")
        if not nul:
            self._call(lib.lim_db_put_json, c, d, text, len(text))
            return
        # Strings holding U+0000 go through lim_db_set, in the same change.
        keep: List[Any] = []
        values = [(cstr(p, "field path"), to_value(v, keep)) for p, v in nul]
        own = not self.in_transaction
        if own:
            self._begin()
        try:
            self._call(lib.lim_db_put_json, c, d, text, len(text))
            for p, v in values:
                self._call(lib.lim_db_set, c, d, p, v)
        except BaseException:
            if own:
                self._rollback()
            raise
        if own:
            self._commit()

    def set(self, coll: str, doc: str, path: Union[str, List[str]], value: Any) -> None:
        """Set one field (a dotted path) to a scalar."""
        keep: List[Any] = []
        v = to_value(value, keep)
        self._call(lib.lim_db_set, cstr(coll, "collection"), cstr(doc, "document"),
                   path_arg(path), v)

    def delete(self, coll: str, doc: str, path: Union[str, List[str], None] = None) -> None:
        """Delete a document, or one field (and everything below it)."""
        self._call(lib.lim_db_delete, cstr(coll, "collection"), cstr(doc, "document"),
                   ffi.NULL if path is None else path_arg(path))

    def incr(self, coll: str, doc: str, field: Union[str, List[str]], n: int = 1) -> None:
        """Add ``n`` (may be negative) to a counter field."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidInput("the increment must be an int", -5)
        if not -(1 << 63) <= n < (1 << 63):
            raise InvalidInput("the increment is outside the 64-bit range", -5)
        self._call(lib.lim_db_incr, cstr(coll, "collection"), cstr(doc, "document"),
                   path_arg(field), n)

    def set_add(self, coll: str, doc: str, field: Union[str, List[str]], element: Any) -> None:
        """Add an element to a set field."""
        keep: List[Any] = []
        v = to_value(element, keep)
        self._call(lib.lim_db_set_add, cstr(coll, "collection"), cstr(doc, "document"),
                   path_arg(field), v)

    def set_remove(self, coll: str, doc: str, field: Union[str, List[str]], element: Any) -> None:
        """Remove an element from a set field (the adds this store has seen)."""
        keep: List[Any] = []
        v = to_value(element, keep)
        self._call(lib.lim_db_set_remove, cstr(coll, "collection"), cstr(doc, "document"),
                   path_arg(field), v)

    # ------------------------------------------------------------ transactions

    def transaction(self) -> "Transaction":
        """``with store.transaction():`` — every write in the block is one
        change, committed at the end, rolled back if the block raises. A
        transaction belongs to the thread that opened it; other threads'
        writes wait for it."""
        return Transaction(self)

    @property
    def in_transaction(self) -> bool:
        """Whether this thread has a transaction open on this store."""
        return getattr(self._tx, "depth", 0) > 0

    def _begin(self) -> None:
        self._call(lib.lim_db_begin)
        self._tx.depth = 1

    def _commit(self) -> None:
        self._tx.depth = 0
        self._call(lib.lim_db_commit)

    def _rollback(self) -> None:
        self._tx.depth = 0
        h = self._h
        try:
            ptr = h.enter(during_close=True)
        except StoreClosed:
            return  # freeing the store rolled it back
        try:
            rc = lib.lim_db_rollback(ptr)
            if rc < 0 and rc != lib.LIM_ETXN:
                raise last_error(rc)
        finally:
            h.leave()

    # ------------------------------------------------------------ reads

    def get(self, coll: str, doc: str) -> Optional[Dict[str, Any]]:
        """The document as a dict, or None if it does not exist. Counters are
        ints, sets frozensets, bytes bytes."""
        buf = ffi.new("lim_buf *")
        h = self._h
        ptr = h.enter()
        try:
            rc = lib.lim_db_get_json(buf, ptr, cstr(coll, "collection"), cstr(doc, "document"), ffi.NULL)
            if rc == lib.LIM_ENOTFOUND:
                return None
            if rc < 0:
                raise last_error(rc)
        finally:
            h.leave()
        return decode_json(take_buf(buf))

    def get_field(self, coll: str, doc: str, path: Union[str, List[str]],
                  default: Any = _MISSING) -> Any:
        """One field: a scalar, an int for a counter, a frozenset for a set,
        a dict for an object. Raises NotFound (a KeyError) unless ``default``
        is given."""
        c, d, p = cstr(coll, "collection"), cstr(doc, "document"), path_arg(path)
        out = ffi.new("lim_field **")
        h = self._h
        ptr = h.enter()
        try:
            rc = lib.lim_db_get_field(out, ptr, c, d, p)
            if rc == 0:
                f = out[0]
                try:
                    v = ffi.new("lim_value *")
                    if lib.lim_field_kind(f) == lib.LIM_KIND_SET:
                        elems = []
                        for i in range(lib.lim_field_count(f)):
                            check(lib.lim_field_element(f, i, v))
                            elems.append(from_value(v))
                        return frozenset(elems)
                    check(lib.lim_field_value(f, v))
                    return from_value(v)
                finally:
                    lib.lim_field_free(f)
            if rc != lib.LIM_ENOTFOUND:
                raise last_error(rc)
            err = last_error(rc)
            # Not a leaf: perhaps an object (a subtree of fields).
            buf = ffi.new("lim_buf *")
            rc = lib.lim_db_get_json(buf, ptr, c, d, p)
            if rc == 0:
                return decode_json(take_buf(buf))
            if rc != lib.LIM_ENOTFOUND:
                raise last_error(rc)
        finally:
            h.leave()
        if default is not _MISSING:
            return default
        raise err

    def keys(self, coll: str, prefix: Optional[str] = None,
             after: Optional[str] = None) -> Iterator[str]:
        """Document keys of a collection in key order (optionally those
        starting with ``prefix``, or after ``after``), fetched in pages."""
        c = cstr(coll, "collection")
        pfx = ffi.NULL if prefix is None else cstr(prefix, "prefix")
        last = None if after is None else cstr(after, "after")
        while True:
            page = self._docs_page(c, pfx, last)
            for k in page:
                yield k.decode("utf-8")
            if len(page) < _PAGE:
                return
            last = page[-1]

    def _docs_page(self, c: bytes, pfx: Any, after: Optional[bytes]) -> List[bytes]:
        it = ffi.new("lim_doc_iter **")
        key = ffi.new("const char **")
        page: List[bytes] = []
        h = self._h
        ptr = h.enter()
        try:
            check(lib.lim_db_docs(it, ptr, c, pfx, ffi.NULL if after is None else after))
            try:
                while len(page) < _PAGE:
                    rc = lib.lim_doc_iter_next(it[0], key)
                    if rc == lib.LIM_EITEROVER:
                        break
                    if rc < 0:
                        raise last_error(rc)
                    page.append(ffi.string(key[0]))
            finally:
                lib.lim_doc_iter_free(it[0])
        finally:
            h.leave()
        return page

    def __getitem__(self, coll: str) -> "Collection":
        """``store["people"]["ada"]``: dict-style access to a collection."""
        cstr(coll, "collection")
        return Collection(self, coll)

    # ------------------------------------------------------------ replication

    def digest(self) -> str:
        """The state digest (64 hex): equal on two stores that hold the same changes."""
        out = ffi.new("char[65]")
        self._call(lib.lim_db_digest, out)
        return ffi.string(out).decode("ascii")

    def version_vector(self) -> Dict[str, int]:
        """{author (64 hex): highest seq held} for every author."""
        buf = ffi.new("lim_buf *")
        self._call_buf(lib.lim_db_version_vector, buf)
        vv = {}
        for line in take_buf(buf).splitlines():
            if line:
                a, s = line.split()
                vv[a] = int(s)
        return vv

    def _call_buf(self, fn: Callable[..., int], buf: Any, *args: Any) -> None:
        h = self._h
        ptr = h.enter()
        try:
            rc = fn(buf, ptr, *args)
            if rc < 0:
                raise last_error(rc)
        finally:
            h.leave()

    def changes_since(self, since: Union[Mapping[str, int], str, bytes, None] = None) -> List[bytes]:
        """The encoded changes a version vector lacks (all when None), per
        author in seq order."""
        vv = _vv_text(since)
        it = ffi.new("lim_change_iter **")
        data = ffi.new("const char **")
        size = ffi.new("size_t *")
        out: List[bytes] = []
        h = self._h
        ptr = h.enter()
        try:
            check(lib.lim_db_changes_since(it, ptr, ffi.NULL if vv is None else vv,
                                           0 if vv is None else len(vv)))
            try:
                while True:
                    rc = lib.lim_change_iter_next(it[0], data, size)
                    if rc == lib.LIM_EITEROVER:
                        break
                    if rc < 0:
                        raise last_error(rc)
                    out.append(ffi.unpack(data[0], size[0]))
            finally:
                lib.lim_change_iter_free(it[0])
        finally:
            h.leave()
        return out

    def apply(self, change: bytes) -> ApplyStats:
        """Apply one encoded change after every check (hash chain, signature,
        sequence, clock); a refused change raises and changes nothing."""
        if isinstance(change, str):
            change = change.encode("utf-8")
        stats = ffi.new("lim_apply_stats *")
        self._call(lib.lim_db_apply, bytes(change), len(change), stats)
        return ApplyStats(stats.applied, stats.duplicates)

    def export(self, dest: Any, since: Union[Mapping[str, int], str, bytes, None] = None) -> None:
        """Write every change ``since`` lacks (all by default) as a pack to
        ``dest``: a path or a binary file object."""
        vv = _vv_text(since)
        if hasattr(dest, "write"):
            self._export(dest, vv)
            return
        tmp = os.fspath(dest)
        with builtins_open(tmp, "wb") as f:
            self._export(f, vv)

    def _export(self, f: Any, vv: Optional[bytes]) -> None:
        ctx = CallbackContext(f)
        h = self._h
        ptr = h.enter()
        try:
            rc = lib.lim_db_export(ptr, ffi.NULL if vv is None else vv,
                                   0 if vv is None else len(vv), lib._lim_py_write, ctx.handle)
            err = last_error(rc) if rc < 0 else None
        finally:
            h.leave()
        ctx.reraise()
        if err is not None:
            raise err

    def import_pack(self, source: Any) -> ApplyStats:
        """Apply a pack (a path or a binary file object), all or nothing."""
        if hasattr(source, "read"):
            return self._import(source)
        with builtins_open(os.fspath(source), "rb") as f:
            return self._import(f)

    import_ = import_pack

    def _import(self, f: Any) -> ApplyStats:
        ctx = CallbackContext(f)
        stats = ffi.new("lim_apply_stats *")
        h = self._h
        ptr = h.enter()
        try:
            rc = lib.lim_db_import(ptr, lib._lim_py_read, ctx.handle, stats)
            err = last_error(rc) if rc < 0 else None
        finally:
            h.leave()
        ctx.reraise()
        if err is not None:
            raise err
        return ApplyStats(stats.applied, stats.duplicates)

    def verify(self) -> None:
        """Check every hash, signature and chain link, and the materialized
        state against a rebuild; raises Corrupt naming the first problem."""
        self._call(lib.lim_db_verify)

    def rebuild(self) -> None:
        """Rebuild the materialized state from the change log."""
        self._call(lib.lim_db_rebuild)

    def log(self, limit: Optional[int] = None) -> Iterator[LogEntry]:
        """The change log in local arrival order (the newest ``limit`` when given)."""
        if limit is not None and limit <= 0:
            return iter(())
        return iter(self._log(limit or 0))

    def _log(self, limit: int) -> List[LogEntry]:
        it = ffi.new("lim_log_iter **")
        info = ffi.new("lim_change_info *")
        out: List[LogEntry] = []
        h = self._h
        ptr = h.enter()
        try:
            check(lib.lim_db_log(it, ptr, limit))
            try:
                while True:
                    rc = lib.lim_log_iter_next(it[0], info)
                    if rc == lib.LIM_EITEROVER:
                        break
                    if rc < 0:
                        raise last_error(rc)
                    out.append(LogEntry(ffi.string(info.author).decode("ascii"), int(info.seq),
                                        int(info.hlc), ffi.unpack(info.bytes, info.len)))
            finally:
                lib.lim_log_iter_free(it[0])
        finally:
            h.leave()
        return out


import builtins as _builtins  # noqa: E402  (``open`` below shadows the builtin)

builtins_open = _builtins.open


class Transaction:
    """The context manager returned by :meth:`Store.transaction`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> Store:
        if self._store.in_transaction:
            raise TransactionError("a transaction is already open on this store in this thread", -17)
        self._store._begin()
        return self._store

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._store._rollback()
            return
        try:
            self._store._commit()
        except StoreClosed:
            self._store._rollback()
            raise


class Collection:
    """Dict-style view of one collection: ``coll[doc]`` is the document
    (KeyError if absent), ``coll[doc] = mapping`` replaces it, ``del
    coll[doc]`` deletes it, iteration yields document keys."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name

    def __repr__(self) -> str:
        return f"<lim.Collection {self.name!r}>"

    def __getitem__(self, doc: str) -> Dict[str, Any]:
        d = self.store.get(self.name, doc)
        if d is None:
            raise NotFound(f"no document {self.name}/{doc}", -3)
        return d

    def get(self, doc: str, default: Any = None) -> Any:
        d = self.store.get(self.name, doc)
        return default if d is None else d

    def __setitem__(self, doc: str, mapping: Mapping[str, Any]) -> None:
        s = self.store
        if s.in_transaction:
            s.delete(self.name, doc)
            s.put(self.name, doc, mapping)
        else:
            with s.transaction():
                s.delete(self.name, doc)
                s.put(self.name, doc, mapping)

    def __delitem__(self, doc: str) -> None:
        if self.store.get(self.name, doc) is None:
            raise NotFound(f"no document {self.name}/{doc}", -3)
        self.store.delete(self.name, doc)

    def __contains__(self, doc: object) -> bool:
        return isinstance(doc, str) and self.store.get(self.name, doc) is not None

    def __iter__(self) -> Iterator[str]:
        return self.store.keys(self.name)

    def keys(self, prefix: Optional[str] = None) -> Iterator[str]:
        return self.store.keys(self.name, prefix)

    def items(self) -> Iterator[Any]:
        for k in self.store.keys(self.name):
            d = self.store.get(self.name, k)
            if d is not None:
                yield k, d


def open(path: PathLike, *, network_key: Union[bytes, str, None] = None,
         synchronous: str = "normal", create: bool = True, max_drift: float = 60.0,
         clock: Optional[Callable[[], float]] = None, vfs: Optional[str] = None) -> Store:
    """Open (or create) the store at ``path`` (``":memory:"`` for an
    in-memory store).

    - ``network_key``: 32 bytes (or 64 hex) — for a new store, the network to
      join (default: a fresh random key); for an existing one it must match.
    - ``synchronous``: ``"normal"`` (durable across process crashes) or
      ``"full"`` (durable across power loss).
    - ``create``: create the file if it does not exist.
    - ``max_drift``: refuse changes stamped more than this many seconds ahead.
    - ``clock``: a function returning the time in seconds since the epoch
      (like :func:`time.time`), for tests.
    - ``vfs``: the name of a registered SQLite VFS to open the file with.
    """
    return Store(path, network_key=network_key, synchronous=synchronous, create=create,
                 max_drift=max_drift, clock=clock, vfs=vfs)
