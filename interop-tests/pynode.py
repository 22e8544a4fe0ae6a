"""pynode: one liblim node through the Python binding, driven by JSON lines.

    build/venv/bin/python interop-tests/pynode.py

Reads one JSON command per line on stdin and answers each with one JSON
line on stdout; node log lines go to stderr. It is the Python member of the
mixed-language network that interop-tests/mixed drives, and speaks the same
protocol as interop-tests/gonode (see interop-tests/README.md):

    {"op": "open", "file": F, "network_key": HEX}      -> {"ok": true, "replica_id": ...}
    {"op": "start", "listen": A, "peers": [...], "reconnect_max_ms": N} -> {"ok": true, "addr": ...}
    {"op": "stop"} | {"op": "close"} | {"op": "quit"}
    {"op": "put", "coll", "doc", "fields": {...}}
    {"op": "set" | "sadd" | "srem", "coll", "doc", "field", "value"}
    {"op": "incr", "coll", "doc", "field", "n"}
    {"op": "delete", "coll", "doc"[, "field"]}
    {"op": "txn", "ops": [write commands...]}                (one change)
    {"op": "get", "coll", "doc"}             -> {"ok": true, "doc": {...} | null}
    {"op": "getfield", "coll", "doc", "field"} -> {"ok": true, "found": bool, "value": ...}
    {"op": "digest"} -> {"digest"}, {"op": "vv"} -> {"vv"}, {"op": "status"} -> {"status"}

Values: JSON scalars (a number with '.', 'e' or 'E' is a float), objects for
nested fields, {"$base64": "..."} for bytes; answers show a set as
{"$set": [...]}. Errors: {"ok": false, "error": message, "code": name}.
"""
from __future__ import annotations

import base64
import json
import math
import sys
from typing import Any, Dict, Optional

import lim


def _hook(d: Dict[str, Any]) -> Any:
    if len(d) == 1 and isinstance(d.get("$base64"), str):
        return base64.b64decode(d["$base64"], validate=True)
    return d


def wire_in(v: Any) -> Any:
    """A value from a request (already json.loads'ed with _hook)."""
    if isinstance(v, list):
        raise ValueError("arrays are not values (use sadd for sets)")
    if isinstance(v, dict):
        return {k: wire_in(x) for k, x in v.items()}
    return v


def _elem_key(v: Any) -> Any:
    return (type(v).__name__, repr(v))


def wire_out(v: Any) -> Any:
    """A value the binding returned, as its typed JSON form."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"the binding returned a non-finite float {v!r}")
        return v  # json.dumps keeps '.' or an exponent
    if isinstance(v, bytes):
        return {"$base64": base64.b64encode(v).decode("ascii")}
    if isinstance(v, frozenset):
        return {"$set": [wire_out(e) for e in sorted(v, key=_elem_key)]}
    if isinstance(v, dict):
        return {k: wire_out(x) for k, x in v.items()}
    raise TypeError(f"the binding returned a {type(v).__name__}, not a documented value type")


class PyNode:
    def __init__(self) -> None:
        self.store: Optional[lim.Store] = None
        self.node: Optional[lim.Node] = None

    def need(self) -> lim.Store:
        if self.store is None:
            raise RuntimeError("no store is open (send open first)")
        return self.store

    def shutdown(self) -> None:
        if self.node is not None:
            self.node.close()
            self.node = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def write(self, s: lim.Store, r: Dict[str, Any]) -> None:
        op = r["op"]
        if op == "put":
            fields = wire_in(r["fields"])
            if not isinstance(fields, dict):
                raise ValueError("put: fields must be an object")
            s.put(r["coll"], r["doc"], fields)
        elif op == "set":
            s.set(r["coll"], r["doc"], r["field"], wire_in(r["value"]))
        elif op == "sadd":
            s.set_add(r["coll"], r["doc"], r["field"], wire_in(r["value"]))
        elif op == "srem":
            s.set_remove(r["coll"], r["doc"], r["field"], wire_in(r["value"]))
        elif op == "incr":
            s.incr(r["coll"], r["doc"], r["field"], r["n"])
        elif op == "delete":
            s.delete(r["coll"], r["doc"], r.get("field") or None)
        else:
            raise ValueError(f"unknown op {op!r}")

    def do(self, r: Dict[str, Any]) -> Dict[str, Any]:
        op = r.get("op")
        if op == "open":
            if self.store is not None:
                raise RuntimeError("a store is already open")
            self.store = lim.open(r["file"], network_key=r.get("network_key") or None)
            return {"replica_id": self.store.replica_id, "lang": "python"}
        if op == "start":
            s = self.need()
            if self.node is not None:
                raise RuntimeError("the node is already running")
            kw: Dict[str, Any] = {}
            if r.get("reconnect_max_ms"):
                kw["reconnect_max"] = r["reconnect_max_ms"] / 1000.0
            self.node = lim.Node(s, listen=r.get("listen") or None, peers=r.get("peers") or [],
                                 log=lambda line: print(f"pynode: {line}", file=sys.stderr, flush=True),
                                 **kw)
            return {"addr": self.node.address}
        if op == "stop":
            if self.node is not None:
                self.node.close()
                self.node = None
            return {}
        if op in ("close", "quit"):
            self.shutdown()
            return {}
        if op == "status":
            if self.node is None:
                raise RuntimeError("the node is not running")
            return {"status": self.node.status()}
        s = self.need()
        if op == "digest":
            return {"digest": s.digest()}
        if op == "vv":
            return {"vv": s.version_vector()}
        if op == "get":
            d = s.get(r["coll"], r["doc"])
            return {"doc": None if d is None else wire_out(d)}
        if op == "getfield":
            missing = object()
            v = s.get_field(r["coll"], r["doc"], r["field"], missing)
            if v is missing:
                return {"found": False}
            return {"found": True, "value": wire_out(v)}
        if op == "txn":
            with s.transaction():
                for w in r["ops"]:
                    self.write(s, w)
            return {}
        self.write(s, r)
        return {}


def main() -> None:
    pn = PyNode()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        op = None
        try:
            r = json.loads(line, object_hook=_hook)
            op = r.get("op")
            ans = {"ok": True, **pn.do(r)}
        except lim.Error as e:
            ans = {"ok": False, "error": str(e), "code": e.name}
        except Exception as e:  # a bad request: report it, keep serving
            ans = {"ok": False, "error": f"{type(e).__name__}: {e}", "code": ""}
        out.write(json.dumps(ans, ensure_ascii=False, allow_nan=False) + "\n")
        out.flush()
        if op == "quit":
            return
    pn.shutdown()  # EOF: the driver went away


if __name__ == "__main__":
    main()
