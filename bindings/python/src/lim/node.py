"""The sync node (``lim_node``), one-shot sync and remote status."""
from __future__ import annotations

import asyncio
import json
import os
import time
import weakref
from typing import (Any, Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Sequence)

from ._core import CallbackContext, Handle, check, cstr, last_error, take_buf
from ._errors import InvalidInput, StoreClosed
from ._lim import ffi, lib
from .store import Store

__all__ = ["Node", "RemoteChange", "SyncStats", "ChangeFeed", "sync_once", "remote_status"]

_SLICE_MS = 100  # longest single wait in C, so close() and Ctrl-C stay responsive


class RemoteChange(NamedTuple):
    """A remote change applied to the store: its author (64 hex) and seq."""
    author: str
    seq: int


class SyncStats(NamedTuple):
    """Changes received and sent by a one-shot sync."""
    changes_in: int
    changes_out: int


def _ms(seconds: Optional[float]) -> int:
    return -1 if seconds is None else max(0, int(seconds * 1000))


def _addrs(items: Optional[Iterable[str]], what: str) -> List[bytes]:
    if items is None:
        return []
    if isinstance(items, (str, bytes)):
        raise InvalidInput(f"{what} must be a list of strings, not a single string", -5)
    return [cstr(a, what) for a in items]


class Node:
    """A sync node for a store: listens on ``listen`` ("HOST:PORT", port 0
    picks a free one; None: do not listen), keeps ``peers`` connected
    (reconnecting with backoff) and pushes every change to every connected
    peer. It runs on a C thread of its own. ``allow`` (replica ids, 64 hex)
    restricts who may connect; None means any member of the network.

    Use it as a context manager, or call :meth:`close`. Closing the store
    closes its node first.
    """

    def __init__(self, store: Store, listen: Optional[str] = "127.0.0.1:0",
                 peers: Sequence[str] = (), allow: Optional[Sequence[str]] = None, *,
                 max_connections: int = 64, idle_timeout: float = 30.0,
                 keepalive: float = 10.0, reconnect_min: float = 0.1,
                 reconnect_max: float = 30.0,
                 log: Optional[Callable[[str], None]] = None) -> None:
        if not isinstance(store, Store):
            raise InvalidInput("Node needs a lim.Store", -5)
        self.store = store
        keep: List[Any] = []
        opts = ffi.new("lim_node_options *")
        check(lib.lim_node_options_init(opts, lib.LIM_NODE_OPTIONS_VERSION))
        if listen is not None:
            b = ffi.new("char[]", cstr(listen, "listen address"))
            keep.append(b)
            opts.listen = b
        peer_list = _addrs(peers, "peers")
        if peer_list:
            cs = [ffi.new("char[]", p) for p in peer_list]
            arr = ffi.new("const char *[]", cs)
            keep.extend(cs)
            keep.append(arr)
            opts.peers = arr
            opts.npeers = len(peer_list)
        if allow is not None:
            allow_list = _addrs(allow, "allow")
            cs = [ffi.new("char[]", a) for a in allow_list]
            arr = ffi.new("const char *[]", cs or 1)
            keep.extend(cs)
            keep.append(arr)
            opts.allow = arr
            opts.nallow = len(allow_list)
        opts.max_connections = int(max_connections)
        opts.idle_timeout_ms = _ms(idle_timeout)
        opts.keepalive_ms = _ms(keepalive)
        opts.reconnect_min_ms = _ms(reconnect_min)
        opts.reconnect_max_ms = _ms(reconnect_max)
        log_ctx = None
        if log is not None:
            log_ctx = CallbackContext(log)
            opts.log = lib._lim_py_log
            opts.log_ctx = log_ctx.handle
        out = ffi.new("lim_node **")
        sh = store._h
        db = sh.enter()
        try:
            rc = lib.lim_node_start(out, db, opts)
            if rc < 0:
                raise last_error(rc)
            h = Handle(out[0], lib.lim_node_free, "node")
            if log_ctx is not None:
                h.keepalive.append(log_ctx)
            try:
                sh.add_child(h)
            except StoreClosed:
                h.close()
                raise
        finally:
            sh.leave()
        self._h: Handle = h
        self._finalizer = weakref.finalize(self, self._finish, sh, h)
        buf = ffi.new("lim_buf *")
        rc = lib.lim_node_address(buf, h.ptr)
        self.address: Optional[str] = take_buf(buf) if rc == 0 else None
        """The address actually listened on ("127.0.0.1:40123"), or None."""

    @staticmethod
    def _finish(sh: Handle, h: Handle) -> None:
        h.close()
        sh.discard_child(h)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Stop the node (closing connections politely) and free it. Idempotent."""
        if getattr(self, "_h", None) is not None:
            self._finalizer()

    @property
    def closed(self) -> bool:
        h = getattr(self, "_h", None)
        return h is None or h.closed

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<lim.Node {self.address or '(not listening)'} {'closed' if self.closed else 'running'}>"

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

    # ------------------------------------------------------------ peers

    def add_peer(self, addr: str) -> None:
        """Dial ``addr`` ("HOST:PORT") and keep it connected."""
        self._call(lib.lim_node_add_peer, cstr(addr, "peer address"))

    def remove_peer(self, addr: str) -> None:
        """Stop dialing ``addr`` and close its connection."""
        self._call(lib.lim_node_remove_peer, cstr(addr, "peer address"))

    def status(self) -> Dict[str, Any]:
        """{"id", "listen", "peers": [{"address", "id", "connected",
        "direction", "changes_in", "changes_out", "bytes_in", "bytes_out",
        "behind", "last_error"}, ...]}."""
        buf = ffi.new("lim_buf *")
        h = self._h
        ptr = h.enter()
        try:
            rc = lib.lim_node_status(buf, ptr)
            if rc < 0:
                raise last_error(rc)
        finally:
            h.leave()
        return json.loads(take_buf(buf))

    def sync_once(self, addr: str, timeout: Optional[float] = 30.0) -> SyncStats:
        """Sync the node's store with ``addr`` once (see :func:`lim.sync_once`)."""
        if self.closed:
            raise StoreClosed("the node is closed", -21)
        return sync_once(self.store, addr, timeout)

    @property
    def events_dropped(self) -> int:
        """Remote-change events dropped because nobody consumed them (the
        queue holds 65536)."""
        h = self._h
        ptr = h.enter()
        try:
            return int(lib.lim_node_events_dropped(ptr))
        finally:
            h.leave()

    # ------------------------------------------------------------ changes

    def _event(self, timeout_ms: int) -> Optional[RemoteChange]:
        """One wait of at most timeout_ms; None on timeout. Raises StoreClosed."""
        ev = ffi.new("lim_node_event *")
        h = self._h
        ptr = h.enter()
        try:
            rc = lib.lim_node_next_event(ptr, ev, timeout_ms)
        finally:
            h.leave()
        if rc == 0:
            return RemoteChange(ffi.string(ev.author).decode("ascii"), int(ev.seq))
        if rc == lib.LIM_EITEROVER:
            return None
        raise last_error(rc)

    def next_change(self, timeout: Optional[float] = None) -> Optional[RemoteChange]:
        """Wait up to ``timeout`` seconds (None: until one comes or the node
        closes) for the next applied remote change; None if none came."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _SLICE_MS
            if deadline is not None:
                wait = min(wait, max(0, int((deadline - time.monotonic()) * 1000)))
            try:
                ev = self._event(wait)
            except StoreClosed:
                return None
            if ev is not None:
                return ev
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def changes(self, timeout: Optional[float] = None) -> "ChangeFeed":
        """Applied remote changes, as an iterator and an async iterator.

        Iteration ends when the node closes, or when no change came for
        ``timeout`` seconds (None: wait indefinitely). Each change is
        delivered to one consumer; any thread may iterate."""
        return ChangeFeed(self, timeout)


class ChangeFeed:
    """Iterator (``for``) and async iterator (``async for``) of
    :class:`RemoteChange`; see :meth:`Node.changes`."""

    def __init__(self, node: Node, timeout: Optional[float]) -> None:
        self._node = node
        self._timeout = timeout
        self._fd: Optional[int] = None
        self._fd_closer: Optional[weakref.finalize] = None

    def __iter__(self) -> "ChangeFeed":
        return self

    def __next__(self) -> RemoteChange:
        ev = self._node.next_change(self._timeout)
        if ev is None:
            raise StopIteration
        return ev

    def __aiter__(self) -> "ChangeFeed":
        return self

    def _event_fd(self) -> int:
        # A duplicate of the node's event descriptor: it stays valid (and
        # becomes readable at EOF) when the node closes its own.
        if self._fd is None:
            h = self._node._h
            ptr = h.enter()
            try:
                self._fd = os.dup(lib.lim_node_event_fd(ptr))
            finally:
                h.leave()
            self._fd_closer = weakref.finalize(self, os.close, self._fd)
        return self._fd

    def close(self) -> None:
        """Release the descriptor the async iterator uses."""
        if self._fd_closer is not None:
            self._fd_closer()
            self._fd_closer = None
            self._fd = None

    async def __anext__(self) -> RemoteChange:
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else loop.time() + self._timeout
        while True:
            try:
                ev = self._node._event(0)
            except StoreClosed:
                self.close()
                raise StopAsyncIteration from None
            if ev is not None:
                return ev
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise StopAsyncIteration
            try:
                fd = self._event_fd()
            except StoreClosed:
                raise StopAsyncIteration from None
            fut = loop.create_future()

            def ready() -> None:
                if not fut.done():
                    fut.set_result(None)

            try:
                loop.add_reader(fd, ready)
            except NotImplementedError:  # a loop without add_reader: wait in a thread
                wait = _SLICE_MS / 1000 if remaining is None else min(remaining, _SLICE_MS / 1000)
                ev = await loop.run_in_executor(None, self._node.next_change, wait)
                if ev is not None:
                    return ev
                continue
            try:
                if remaining is None:
                    await fut
                else:
                    try:
                        await asyncio.wait_for(fut, remaining)
                    except asyncio.TimeoutError:
                        pass
            finally:
                loop.remove_reader(fd)


def sync_once(store: Store, addr: str, timeout: Optional[float] = 30.0) -> SyncStats:
    """Connect once to the node at ``addr``, exchange changes until both sides
    hold the same ones, and disconnect (at most ``timeout`` seconds; None:
    no limit). Raises AuthError (wrong network key, not allowed),
    ProtocolError, StorageError (cannot connect) and so on."""
    stats = ffi.new("lim_sync_stats *")
    h = store._h
    ptr = h.enter()
    try:
        rc = lib.lim_sync_once(ptr, cstr(addr, "address"), _ms(timeout), stats)
        if rc < 0:
            raise last_error(rc)
    finally:
        h.leave()
    return SyncStats(int(stats.changes_in), int(stats.changes_out))


def remote_status(store: Store, addr: str, timeout: Optional[float] = 10.0) -> Dict[str, Any]:
    """Ask the node at ``addr`` for its status (as :meth:`Node.status`)."""
    buf = ffi.new("lim_buf *")
    h = store._h
    ptr = h.enter()
    try:
        rc = lib.lim_remote_status(buf, ptr, cstr(addr, "address"), _ms(timeout))
        if rc < 0:
            raise last_error(rc)
    finally:
        h.leave()
    return json.loads(take_buf(buf))
