"""Internal plumbing: the compiled module, error checking, handle lifetime,
value conversion and the C-to-Python callbacks. Not public API."""
from __future__ import annotations

import base64
import json
import math
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ._errors import Error, InvalidInput, StoreClosed, error_class
from ._lim import ffi, lib

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


# ------------------------------------------------------------------ errors

def last_error(rc: int) -> Error:
    """The exception for return code ``rc`` of the C call just made on this
    thread (the message is per thread in C, so read it right away)."""
    msg = ffi.string(lib.lim_error_last()).decode("utf-8", "replace")
    return error_class(rc)(msg, rc)


def check(rc: int) -> int:
    if rc < 0:
        raise last_error(rc)
    return rc


# ------------------------------------------------------------------ handles

class Handle:
    """A C handle shared between threads.

    Every C call runs between ``enter()`` and ``leave()``; ``close()`` marks
    the handle closed (new calls raise StoreClosed), closes dependent handles
    (a store's nodes), waits for calls in flight and only then frees the C
    object, so no thread can use it after it was freed.
    """

    __slots__ = ("ptr", "what", "_free", "_cv", "_inflight", "_closing",
                 "_freed", "children", "keepalive", "__weakref__")

    def __init__(self, ptr: Any, free: Callable[[Any], None], what: str) -> None:
        self.ptr = ptr
        self.what = what
        self._free = free
        self._cv = threading.Condition(threading.Lock())
        self._inflight: Dict[int, int] = {}
        self._closing = False
        self._freed = False
        self.children: Set["Handle"] = set()
        self.keepalive: List[Any] = []

    @property
    def closed(self) -> bool:
        return self._closing

    def enter(self, during_close: bool = False) -> Any:
        tid = threading.get_ident()
        with self._cv:
            if self._freed or (self._closing and not during_close):
                raise StoreClosed(f"the {self.what} is closed")
            self._inflight[tid] = self._inflight.get(tid, 0) + 1
            return self.ptr

    def leave(self) -> None:
        tid = threading.get_ident()
        with self._cv:
            n = self._inflight[tid] - 1
            if n:
                self._inflight[tid] = n
            else:
                del self._inflight[tid]
                if not self._inflight:
                    self._cv.notify_all()

    def add_child(self, child: "Handle") -> None:
        with self._cv:
            if self._closing:
                raise StoreClosed(f"the {self.what} is closed")
            self.children.add(child)

    def discard_child(self, child: "Handle") -> None:
        with self._cv:
            self.children.discard(child)

    def close(self) -> bool:
        """Free the C object once; False if it was already closed."""
        with self._cv:
            if self._closing:
                already = True
            else:
                already = False
                if threading.get_ident() in self._inflight:
                    raise Error(f"cannot close the {self.what} from inside one of its own calls")
                self._closing = True
                children = list(self.children)
        if already:
            # Another thread may be closing it: wait until it is freed.
            with self._cv:
                while not self._freed and threading.get_ident() not in self._inflight:
                    self._cv.wait(0.1)
            return False
        for child in children:
            child.close()
        with self._cv:
            while self._inflight:
                self._cv.wait()
            ptr, self.ptr = self.ptr, ffi.NULL
            self._free(ptr)
            self._freed = True
            self.keepalive = []
            self.children.clear()
            self._cv.notify_all()
        return True


# ------------------------------------------------------------------ text

def cstr(s: Any, what: str) -> bytes:
    """A str argument as NUL-free UTF-8 bytes."""
    if isinstance(s, str):
        try:
            b = s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInput(f"{what} is not valid UTF-8: {e}", -5) from None
    elif isinstance(s, (bytes, bytearray)):
        b = bytes(s)
    else:
        raise InvalidInput(f"{what} must be a str, not {type(s).__name__}", -5)
    if b"\0" in b:
        raise InvalidInput(f"{what} contains a NUL character", -5)
    return b


def path_arg(path: Any) -> bytes:
    """A field path: "a.b" or a sequence of segments ("a", "b")."""
    if isinstance(path, (list, tuple)):
        path = ".".join(path)
    return cstr(path, "field path")


def take_buf(buf: Any) -> str:
    """Decode a lim_buf and dispose of it."""
    try:
        return ffi.unpack(buf.ptr, buf.size).decode("utf-8") if buf.ptr != ffi.NULL else ""
    finally:
        lib.lim_buf_dispose(buf)


# ------------------------------------------------------------------ values

def _check_int(v: int) -> None:
    if not INT64_MIN <= v <= INT64_MAX:
        raise InvalidInput(f"integer {v} is outside the 64-bit range (store it as a string)", -5)


def to_value(v: Any, keep: List[Any]) -> Any:
    """A Python scalar as a lim_value*; ``keep`` holds the memory it points to."""
    out = ffi.new("lim_value *")
    if v is None:
        out.type = lib.LIM_NULL
    elif v is True or v is False:
        out.type = lib.LIM_BOOL
        out.boolean = 1 if v else 0
    elif isinstance(v, int):
        _check_int(v)
        out.type = lib.LIM_INT
        out.integer = v
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidInput(f"float {v} is not finite", -5)
        out.type = lib.LIM_FLOAT
        out.real = v
    elif isinstance(v, str):
        try:
            b = v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInput(f"string is not valid UTF-8: {e}", -5) from None
        buf = ffi.from_buffer("char[]", b)
        keep.append(buf)
        out.type = lib.LIM_STRING
        out.str = buf
        out.len = len(b)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        buf = ffi.from_buffer("char[]", b)
        keep.append(buf)
        out.type = lib.LIM_BYTES
        out.str = buf
        out.len = len(b)
    else:
        raise InvalidInput(
            f"cannot store a {type(v).__name__}: values are None, bool, int, float, str or bytes", -5)
    keep.append(out)
    return out


def from_value(v: Any) -> Any:
    t = v.type
    if t == lib.LIM_NULL:
        return None
    if t == lib.LIM_BOOL:
        return bool(v.boolean)
    if t == lib.LIM_INT:
        return int(v.integer)
    if t == lib.LIM_FLOAT:
        return float(v.real)
    if t == lib.LIM_STRING:
        return ffi.unpack(v.str, v.len).decode("utf-8") if v.len else ""
    if t == lib.LIM_BYTES:
        return ffi.unpack(v.str, v.len) if v.len else b""
    raise Error(f"unknown value type {t}", -1)


def _jsonable(obj: Any, path: str, nul: List[Any]) -> Any:
    if obj is None or obj is True or obj is False:
        return obj
    if isinstance(obj, str):
        if "\0" in obj:
            # lim_db_put_json truncates a string at U+0000 (C bug); such
            # strings are written with lim_db_set in the same change instead.
            nul.append((path, obj))
            return _DROP
        return obj
    if isinstance(obj, int):
        _check_int(obj)
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise InvalidInput(f"float {obj} is not finite", -5)
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, dict) or hasattr(obj, "items"):
        if path.count(".") > 64:
            raise InvalidInput("the document is nested too deeply", -5)
        out = {}
        for k, val in obj.items():
            if not isinstance(k, str):
                raise InvalidInput(f"document keys must be str, not {type(k).__name__}", -5)
            if "." in k:
                raise InvalidInput(f"key {k!r} contains '.', which separates path segments", -5)
            v = _jsonable(val, f"{path}.{k}" if path else k, nul)
            if v is not _DROP:
                out[k] = v
        return out
    if isinstance(obj, (set, frozenset, list, tuple)):
        raise InvalidInput(
            f"cannot put a {type(obj).__name__}: use set_add() for set fields", -5)
    raise InvalidInput(
        f"cannot store a {type(obj).__name__}: values are None, bool, int, float, str, bytes or dict", -5)


_DROP = object()


def encode_doc(mapping: Any) -> Tuple[bytes, List[Any]]:
    """A mapping as the JSON text lim_db_put_json takes (bytes as
    {"$base64"}), plus the (path, str) leaves holding U+0000 left out of it."""
    if not (isinstance(mapping, dict) or hasattr(mapping, "items")):
        raise InvalidInput(f"a document must be a mapping, not {type(mapping).__name__}", -5)
    nul: List[Any] = []
    text = json.dumps(_jsonable(mapping, "", nul), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))
    try:
        return text.encode("utf-8"), nul
    except UnicodeEncodeError as e:
        raise InvalidInput(f"a string is not valid UTF-8: {e}", -5) from None


def _hook(d: Dict[str, Any]) -> Any:
    if len(d) == 1 and "$base64" in d and isinstance(d["$base64"], str):
        return base64.b64decode(d["$base64"])
    return d


def _sets(obj: Any) -> Any:
    # Arrays in liblim's JSON output are always sets (put refuses arrays).
    if isinstance(obj, list):
        return frozenset(obj)
    if isinstance(obj, dict):
        return {k: _sets(v) for k, v in obj.items()}
    return obj


def decode_json(text: str) -> Any:
    """liblim's JSON output as Python values (bytes, frozenset for sets)."""
    return _sets(json.loads(text, object_hook=_hook))


# ------------------------------------------------------------------ callbacks
#
# extern "Python" callbacks receive a handle (ffi.new_handle) to a small
# context object. An exception raised by Python code in a callback is kept on
# the context and re-raised after the C call returns.

class CallbackContext:
    __slots__ = ("target", "error", "handle", "__weakref__")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.error: Optional[BaseException] = None
        self.handle = ffi.new_handle(self)

    def reraise(self) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            raise err


def _clock_error(exc_type, exc, tb):  # pragma: no cover - reporting only
    sys.stderr.write(f"lim: clock callback failed: {exc!r}; using the system clock\n")
    return int(time.time() * 1000)


@ffi.def_extern(onerror=_clock_error)
def _lim_py_clock(ctx):
    fn = ffi.from_handle(ctx).target
    return int(fn() * 1000)


@ffi.def_extern()
def _lim_py_write(ctx, data, size):
    c = ffi.from_handle(ctx)
    try:
        c.target.write(ffi.buffer(data, size)[:])
        return 0
    except BaseException as e:  # carried back to the caller
        c.error = e
        return -1


@ffi.def_extern()
def _lim_py_read(ctx, buf, cap):
    c = ffi.from_handle(ctx)
    try:
        f = c.target
        if hasattr(f, "readinto"):
            n = f.readinto(ffi.buffer(buf, cap))
            return int(n or 0)
        data = f.read(cap)
        if not data:
            return 0
        ffi.memmove(buf, data, len(data))
        return len(data)
    except BaseException as e:
        c.error = e
        return -1


@ffi.def_extern()
def _lim_py_log(ctx, line):
    c = ffi.from_handle(ctx)
    try:
        c.target(ffi.string(line).decode("utf-8", "replace"))
    except Exception as e:  # the node thread has nobody to raise to
        try:
            sys.stderr.write(f"lim: node log callback failed: {e!r}\n")
        except Exception:
            pass
