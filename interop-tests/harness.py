"""Drive a mixed network of liblim nodes: the C node (`lim serve` plus `lim`
commands on its store), a Python node (pynode.py, through the Python
binding) and a Go node (gonode, through the Go binding).

Used by the pytest suite in interop-tests/mixed and by interop-tests/demo.
Every node has the same interface (put/set/incr/sadd/srem/delete/txn, get,
get_field, digest, vv, start/stop/restart), and every value read back is
turned into a *tagged* form in which types cannot blur: ("int", 1),
("float", "0x1.0000000000000p+0"), ("bool", True), ("null",), ("str", s),
("bytes", b), ("set", (sorted tagged elements)), and dicts for objects. So
1, 1.0 and True are different values here, as they are in liblim.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYNODE = HERE / "pynode.py"

LANGS = ("c", "python", "go")
CALL_TIMEOUT = 30.0  # seconds for one command to a node


def lim_bin() -> str:
    b = os.environ.get("LIM_BIN") or str(ROOT / "build" / "bin" / "lim")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"LIM_BIN={b} is not an executable lim (build it: cmake --build build -j2)")
    return os.path.abspath(b)


def gonode_bin() -> str:
    b = os.environ.get("LIM_GONODE") or str(ROOT / "build" / "interop" / "gonode")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"{b} is missing (go build -o build/interop/gonode ./interop-tests/gonode)")
    return os.path.abspath(b)


def build_gonode() -> str:
    """go build the Go node into build/interop/gonode (cached by go) unless
    LIM_GONODE names one."""
    if os.environ.get("LIM_GONODE"):
        return gonode_bin()
    out = ROOT / "build" / "interop" / "gonode"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["go", "build", "-o", str(out), "./interop-tests/gonode"], cwd=ROOT, check=True)
    return str(out)


class NodeError(Exception):
    """A node answered a command with an error (or died)."""


# ------------------------------------------------------------------ values

class S:
    """A set value in expectations: S("a", 1, True) (a Python set would
    merge 1, 1.0 and True)."""

    def __init__(self, *elems: Any) -> None:
        self.elems = elems


class OneOf:
    """An expectation met by any of the given values (a concurrent LWW
    write); ABSENT among them allows the field to be missing."""

    def __init__(self, *options: Any) -> None:
        self.options = options


ABSENT = object()


def tag(v: Any) -> Any:
    """A plain Python value (or S / dict) in tagged form."""
    if v is None:
        return ("null",)
    if v is True or v is False:
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", v.hex())
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, (bytes, bytearray)):
        return ("bytes", bytes(v))
    if isinstance(v, S):
        return ("set", tuple(sorted({tag(e) for e in v.elems})))
    if isinstance(v, dict):
        return {k: tag(x) for k, x in v.items()}
    raise TypeError(f"cannot tag {v!r}")


def _b64(d: Dict[str, Any]) -> Any:
    if len(d) == 1 and isinstance(d.get("$base64"), str):
        return base64.b64decode(d["$base64"], validate=True)
    return d


def _tag_wire(v: Any, sets_are_lists: bool) -> Any:
    """Tag a value parsed from liblim's JSON (sets as arrays) or from a
    node's answer (sets as {"$set": [...]})."""
    if isinstance(v, list):
        if not sets_are_lists:
            raise NodeError(f"unexpected array in a node answer: {v!r}")
        return ("set", tuple(sorted(_tag_wire(e, sets_are_lists) for e in v)))
    if isinstance(v, dict):
        if not sets_are_lists and set(v) == {"$set"}:
            elems = [_tag_wire(e, sets_are_lists) for e in v["$set"]]
            if len(set(elems)) != len(elems):
                raise NodeError(f"a set with repeated elements: {v!r}")
            return ("set", tuple(sorted(elems)))
        return {k: _tag_wire(x, sets_are_lists) for k, x in v.items()}
    return tag(v)


def show(t: Any) -> str:
    """A tagged value as compact JSON-like text, for people."""
    if isinstance(t, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {show(x)}" for k, x in sorted(t.items())) + "}"
    kind = t[0]
    if kind == "null":
        return "null"
    if kind == "bool":
        return "true" if t[1] else "false"
    if kind == "int":
        return str(t[1])
    if kind == "float":
        return repr(float.fromhex(t[1]))
    if kind == "str":
        return json.dumps(t[1], ensure_ascii=False)
    if kind == "bytes":
        return repr(t[1])
    if kind == "set":
        return "{" + ", ".join(show(e) for e in t[1]) + "}"
    return repr(t)


def show_plain(v: Any) -> str:
    if isinstance(v, (dict, S)) or not isinstance(v, tuple):
        return show(tag(v))
    return show(v)


def wire(v: Any) -> Any:
    """A plain Python value as the JSON the nodes (and `lim put`) take."""
    if isinstance(v, (bytes, bytearray)):
        return {"$base64": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dict):
        return {k: wire(x) for k, x in v.items()}
    if isinstance(v, float) and v != v:
        raise ValueError("NaN")
    return v


def dumps(v: Any) -> str:
    return json.dumps(wire(v), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def nest(path: str, value: Any) -> Dict[str, Any]:
    """"a.b", v -> {"a": {"b": v}}"""
    out: Any = value
    for seg in reversed(path.split(".")):
        out = {seg: out}
    return out


def leaves(doc: Dict[str, Any], prefix: str = "") -> Iterable[Tuple[str, Any]]:
    """(dotted path, tagged value) for every field of a tagged document."""
    for k, v in sorted(doc.items()):
        p = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            yield from leaves(v, p)
        else:
            yield p, v


def match(expected: Any, actual: Any, where: str = "") -> List[str]:
    """Differences between an expectation (plain values, S, OneOf, nested
    dicts; ABSENT inside OneOf) and a tagged value. Empty when they match."""
    if expected is ABSENT:
        return [] if actual is ABSENT else [f"{where or '(doc)'}: expected absent, got {show_any(actual)}"]
    if isinstance(expected, OneOf):
        errs_all = []
        for opt in expected.options:
            if opt is ABSENT:
                if actual is ABSENT:
                    return []
                continue
            if actual is ABSENT:
                continue
            e = match(opt, actual, where)
            if not e:
                return []
            errs_all.extend(e)
        return [f"{where or '(doc)'}: {show_any(actual)} is none of "
                f"{', '.join('absent' if o is ABSENT else show_plain(o) for o in expected.options)}"]
    if actual is ABSENT:
        return [f"{where or '(doc)'}: missing, expected {show_plain(expected)}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '(doc)'}: expected an object, got {show(actual)}"]
        errs = []
        for k in sorted(set(expected) | set(actual)):
            p = f"{where}.{k}" if where else k
            if k not in expected:
                errs.append(f"{p}: unexpected field {show_any(actual[k])}")
                continue
            errs.extend(match(expected[k], actual.get(k, ABSENT), p))
        return errs
    if tag(expected) != actual:
        return [f"{where or '(doc)'}: expected {show_plain(expected)}, got {show_any(actual)}"]
    return []


def show_any(t: Any) -> str:
    return "absent" if t is ABSENT else show(t)


# ------------------------------------------------------------------ nodes

class _Lines:
    """Lines of a pipe, read by a thread into a queue (for timeouts)."""

    def __init__(self, stream: Any) -> None:
        self.q: "queue.Queue[Optional[str]]" = queue.Queue()
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream: Any) -> None:
        try:
            for line in stream:
                self.q.put(line)
        except (OSError, ValueError):
            pass
        self.q.put(None)

    def get(self, timeout: float) -> Optional[str]:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise NodeError(f"no answer within {timeout} s") from None


class Node:
    """What every node can do. Writes and reads go through the node's own
    language: the Python binding, the Go binding, or the `lim` command."""

    lang = "?"

    def __init__(self, name: str, workdir: Path, network_key: str,
                 announce: Optional[Callable[["Node", str], None]] = None) -> None:
        self.name = name
        self.dir = workdir
        self.store = str(workdir / f"{name}.db")
        self.log_path = str(workdir / f"{name}.log")
        self.network_key = network_key
        self.addr: Optional[str] = None        # fixed after the first start
        self.peers: List[str] = []
        self.replica_id: Optional[str] = None
        self.announce = announce
        self.running = False                   # the sync node is up

    def __repr__(self) -> str:
        return f"<{self.lang} node {self.name} {'up' if self.running else 'down'} {self.addr}>"

    def _say(self, what: str) -> None:
        if self.announce:
            self.announce(self, what)

    # Each subclass: open(), start(peers), stop(mode), can_write(), _w(op dict),
    # get(coll, doc), get_field(coll, doc, path), digest(), vv(), status(), close().

    def put(self, coll: str, doc: str, fields: Dict[str, Any]) -> None:
        self._say(f"put {coll}/{doc} {show(tag(fields))}")
        self._w({"op": "put", "coll": coll, "doc": doc, "fields": wire(fields)})

    def set(self, coll: str, doc: str, field: str, value: Any) -> None:
        self._say(f"set {coll}/{doc} {field} = {show(tag(value))}")
        self._w({"op": "set", "coll": coll, "doc": doc, "field": field, "value": wire(value)})

    def incr(self, coll: str, doc: str, field: str, n: int) -> None:
        self._say(f"incr {coll}/{doc} {field} {n:+d}")
        self._w({"op": "incr", "coll": coll, "doc": doc, "field": field, "n": n})

    def sadd(self, coll: str, doc: str, field: str, value: Any) -> None:
        self._say(f"sadd {coll}/{doc} {field} {show(tag(value))}")
        self._w({"op": "sadd", "coll": coll, "doc": doc, "field": field, "value": wire(value)})

    def srem(self, coll: str, doc: str, field: str, value: Any) -> None:
        self._say(f"srem {coll}/{doc} {field} {show(tag(value))}")
        self._w({"op": "srem", "coll": coll, "doc": doc, "field": field, "value": wire(value)})

    def delete(self, coll: str, doc: str, field: Optional[str] = None) -> None:
        self._say(f"delete {coll}/{doc}" + (f" {field}" if field else ""))
        r: Dict[str, Any] = {"op": "delete", "coll": coll, "doc": doc}
        if field:
            r["field"] = field
        self._w(r)

    def txn(self, ops: Sequence[Dict[str, Any]]) -> None:
        """Several writes as one change (ops in the protocol's form, values
        already wire()d)."""
        self._say("transaction: " + "; ".join(
            f"{o['op']} {o['coll']}/{o['doc']} {o.get('field', '')}".rstrip() for o in ops))
        self._w({"op": "txn", "ops": list(ops)})

    def state(self) -> Tuple[str, Dict[str, int]]:
        return self.digest(), self.vv()


class ProcNode(Node):
    """A node in its own process speaking the JSON-lines protocol (pynode.py,
    gonode). stop("node") stops only the sync node (the store stays open and
    writable); stop("quit") ends the process cleanly; stop("kill") SIGKILLs it."""

    def __init__(self, name: str, workdir: Path, network_key: str, argv: List[str],
                 announce: Optional[Callable[[Node, str], None]] = None,
                 reconnect_max_ms: int = 1000) -> None:
        super().__init__(name, workdir, network_key, announce)
        self.argv = argv
        self.proc: Optional[subprocess.Popen] = None
        self.lines: Optional[_Lines] = None
        self.reconnect_max_ms = reconnect_max_ms

    def _spawn(self) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, encoding="utf-8", bufsize=1)
        finally:
            log.close()
        self.lines = _Lines(self.proc.stdout)

    def call(self, req: Dict[str, Any], timeout: float = CALL_TIMEOUT) -> Dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            raise NodeError(f"{self.name}: the process is not running")
        assert self.proc.stdin is not None and self.lines is not None
        try:
            self.proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise NodeError(f"{self.name}: the process went away ({e}); log: {self.log_path}") from None
        line = self.lines.get(timeout)
        if line is None:
            raise NodeError(f"{self.name}: the process exited (status {self.proc.wait()}); "
                            f"log: {self.log_path}")
        ans = json.loads(line, object_hook=None)
        if not ans.get("ok"):
            raise NodeError(f"{self.name} ({self.lang}) {req.get('op')}: {ans.get('code')}: {ans.get('error')}")
        return ans

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def can_write(self) -> bool:
        return self.alive

    def open(self) -> None:
        if not self.alive:
            self._spawn()
        ans = self.call({"op": "open", "file": self.store, "network_key": self.network_key})
        self.replica_id = ans["replica_id"]

    def start(self, peers: Optional[List[str]] = None) -> str:
        if peers is not None:
            self.peers = list(peers)
        if not self.alive:
            self.open()
        ans = self.call({"op": "start", "listen": self.addr or "127.0.0.1:0", "peers": self.peers,
                         "reconnect_max_ms": self.reconnect_max_ms})
        self.addr = ans["addr"]
        self.running = True
        return self.addr

    def stop(self, mode: str = "quit") -> None:
        if mode == "node":
            if self.alive:
                self.call({"op": "stop"})
        elif mode == "quit":
            if self.alive:
                self.call({"op": "quit"})
                self._reap(10)
        elif mode == "kill":
            if self.alive:
                self.proc.kill()
                self._reap(10)
        else:
            raise ValueError(mode)
        self.running = False

    def _reap(self, timeout: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise NodeError(f"{self.name}: did not exit within {timeout} s of quit")
        finally:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except Exception:
                    pass

    def close(self) -> None:
        """End the process whatever its state (cleanup)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.call({"op": "quit"}, timeout=10)
            except Exception:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.running = False

    def _w(self, req: Dict[str, Any]) -> None:
        self.call(req)

    def get(self, coll: str, doc: str) -> Any:
        d = self.call({"op": "get", "coll": coll, "doc": doc})["doc"]
        return ABSENT if d is None else _tag_wire(_decode(d), False)

    def get_field(self, coll: str, doc: str, field: str) -> Any:
        ans = self.call({"op": "getfield", "coll": coll, "doc": doc, "field": field})
        return _tag_wire(_decode(ans["value"]), False) if ans["found"] else ABSENT

    def digest(self) -> str:
        return self.call({"op": "digest"})["digest"]

    def vv(self) -> Dict[str, int]:
        return self.call({"op": "vv"})["vv"]

    def status(self) -> Dict[str, Any]:
        return self.call({"op": "status"})["status"]


def _decode(v: Any) -> Any:
    """Turn {"$base64"} objects in a parsed answer into bytes."""
    if isinstance(v, dict):
        if len(v) == 1 and isinstance(v.get("$base64"), str):
            return base64.b64decode(v["$base64"], validate=True)
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


class PyNode(ProcNode):
    lang = "python"

    def __init__(self, name: str, workdir: Path, network_key: str, **kw: Any) -> None:
        super().__init__(name, workdir, network_key, [sys.executable, "-u", str(PYNODE)], **kw)


class GoNode(ProcNode):
    lang = "go"

    def __init__(self, name: str, workdir: Path, network_key: str, **kw: Any) -> None:
        super().__init__(name, workdir, network_key, [gonode_bin()], **kw)


class CNode(Node):
    """`lim serve` on a store, written and read with `lim` commands (which
    work whether or not the node is running: the node notices commits by
    other processes). txn() runs its writes one `lim` command each, since
    the command has no transactions."""

    lang = "c"

    def __init__(self, name: str, workdir: Path, network_key: str,
                 announce: Optional[Callable[[Node, str], None]] = None, **_: Any) -> None:
        super().__init__(name, workdir, network_key, announce)
        self.lim = lim_bin()
        self.proc: Optional[subprocess.Popen] = None
        self.opened = False

    def run(self, *args: str, ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess:
        p = subprocess.run([self.lim, "--db", self.store, *args], capture_output=True,
                           text=True, encoding="utf-8", timeout=CALL_TIMEOUT)
        if p.returncode not in ok:
            raise NodeError(f"{self.name} (c) lim {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
        return p

    def can_write(self) -> bool:
        return self.opened

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def open(self) -> None:
        if not self.opened:
            if not os.path.exists(self.store):
                self.run("init", "--network-key", self.network_key)
            out = self.run("id").stdout
            self.replica_id = out.split()[1]
            self.opened = True

    def start(self, peers: Optional[List[str]] = None) -> str:
        if peers is not None:
            self.peers = list(peers)
        self.open()
        args = [self.lim, "--db", self.store, "serve", "--listen", self.addr or "127.0.0.1:0"]
        for p in self.peers:
            args += ["--peer", p]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        finally:
            log.close()
        lines = _Lines(self.proc.stdout)
        line = lines.get(CALL_TIMEOUT)
        if not line or not line.startswith("listening on "):
            code = self.proc.poll()
            raise NodeError(f"{self.name}: lim serve did not start (exit {code}, said {line!r}); "
                            f"log: {self.log_path}")
        self.addr = line.split()[2]
        self.running = True
        return self.addr

    def stop(self, mode: str = "quit") -> None:
        """"quit"/"node": SIGTERM (lim serve shuts down cleanly); "kill": SIGKILL.
        The store stays writable through `lim` either way."""
        if self.alive:
            assert self.proc is not None
            if mode == "kill":
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                status = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise NodeError(f"{self.name}: lim serve ignored SIGTERM for 10 s")
            if mode != "kill" and status != 0:
                raise NodeError(f"{self.name}: lim serve exited {status} on SIGTERM; log: {self.log_path}")
        self.running = False

    def close(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.running = False

    def _w(self, req: Dict[str, Any]) -> None:
        op, c, d = req["op"], req.get("coll"), req.get("doc")
        if op == "put":
            self.run("put", c, d, json.dumps(req["fields"], ensure_ascii=False, separators=(",", ":")))
        elif op == "set":
            self.run("put", c, d, json.dumps(nest(req["field"], req["value"]), ensure_ascii=False))
        elif op == "incr":
            self.run("incr", c, d, req["field"], str(req["n"]))
        elif op in ("sadd", "srem"):
            self.run(op, c, d, req["field"], json.dumps(req["value"], ensure_ascii=False))
        elif op == "delete":
            self.run("del", c, d, *([req["field"]] if req.get("field") else []))
        elif op == "txn":
            for o in req["ops"]:
                self._w(o)
        else:
            raise ValueError(op)

    def get(self, coll: str, doc: str) -> Any:
        p = self.run("get", coll, doc, ok=(0, 1))
        if p.returncode == 1:
            return ABSENT
        return _tag_wire(json.loads(p.stdout, object_hook=_b64), True)

    def get_field(self, coll: str, doc: str, field: str) -> Any:
        p = self.run("get", coll, doc, field, ok=(0, 1))
        if p.returncode == 1:
            return ABSENT
        return _tag_wire(json.loads(p.stdout, object_hook=_b64), True)

    def digest(self) -> str:
        return self.run("digest").stdout.strip()

    def vv(self) -> Dict[str, int]:
        out = {}
        for line in self.run("vv").stdout.splitlines():
            if line.strip():
                a, s = line.split()
                out[a] = int(s)
        return out

    def status(self) -> Dict[str, Any]:
        return json.loads(self.run("status").stdout)


NODE_CLASSES = {"c": CNode, "python": PyNode, "go": GoNode}


def make_node(lang: str, name: str, workdir: Path, network_key: str, **kw: Any) -> Node:
    return NODE_CLASSES[lang](name, workdir, network_key, **kw)


# ------------------------------------------------------------------ network

def free_port() -> int:
    """A free TCP port on 127.0.0.1 below the kernel's ephemeral range, so
    that while a node is stopped no outgoing connection (which takes its
    local port from that range) can take its address."""
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randrange(max(1024, lo - 12000), lo)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


class Network:
    """Nodes with a fixed set of dial edges (dialer -> listener). Every node
    listens on a port picked when the network is made (see free_port), the
    same after every restart."""

    def __init__(self, workdir: Path, langs: Sequence[str], edges: Sequence[Tuple[str, str]],
                 announce: Optional[Callable[[Node, str], None]] = None,
                 names: Optional[Sequence[str]] = None, network_key: Optional[str] = None) -> None:
        self.dir = Path(workdir)
        self.key = network_key or secrets.token_hex(32)
        names = list(names or langs)
        self.nodes: Dict[str, Node] = {}
        for lang, name in zip(langs, names):
            self.nodes[name] = make_node(lang, name, self.dir, self.key, announce=announce)
        for n in self.nodes.values():
            n.addr = f"127.0.0.1:{free_port()}"
        self.edges = list(edges)
        for a, b in self.edges:
            assert a in self.nodes and b in self.nodes and a != b, (a, b)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def dials(self, name: str) -> List[str]:
        return [b for a, b in self.edges if a == name]

    def open_all(self) -> None:
        for n in self.nodes.values():
            n.open()

    def start_all(self) -> None:
        """Start every stopped node, listeners before the nodes that dial them."""
        pending = [n for n in self.nodes if not self.nodes[n].running]
        while pending:
            progress = False
            for name in list(pending):
                targets = self.dials(name)
                if all(self.nodes[t].running or t not in pending for t in targets):
                    self.start(name)
                    pending.remove(name)
                    progress = True
            if not progress:  # a cycle of never-started nodes: give up on order
                raise RuntimeError(f"cannot order the start of {pending} (dial cycle)")

    def start(self, name: str) -> str:
        n = self.nodes[name]
        peers = [self.nodes[t].addr for t in self.dials(name)]
        assert all(peers), f"{name} dials a node that never started"
        return n.start(peers)  # type: ignore[arg-type]

    def close(self) -> None:
        for n in self.nodes.values():
            try:
                n.close()
            except Exception:
                pass

    def states(self, names: Optional[Sequence[str]] = None) -> Dict[str, Tuple[str, Dict[str, int]]]:
        return {k: self.nodes[k].state() for k in (names or self.nodes)}

    def wait_converged(self, timeout: float = 30.0, names: Optional[Sequence[str]] = None,
                       poll: float = 0.02) -> float:
        """Poll until the nodes report one digest and one version vector;
        returns the seconds it took. Raises AssertionError with each node's
        state, status and log tail after ``timeout``."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            st = self.states(names)
            digests = {d for d, _ in st.values()}
            vvs = [v for _, v in st.values()]
            if len(digests) == 1 and all(v == vvs[0] for v in vvs):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise AssertionError(f"no convergence within {timeout} s\n" + self.diagnose(st))
            time.sleep(poll)

    def diagnose(self, st: Optional[Dict[str, Tuple[str, Dict[str, int]]]] = None) -> str:
        lines = []
        ids = {n.replica_id: k for k, n in self.nodes.items()}
        for k, n in self.nodes.items():
            lines.append(f"--- {k} ({n.lang}) {'up' if n.running else 'down'} listen={n.addr} "
                         f"dials={self.dials(k)} id={(n.replica_id or '')[:12]}")
            if st and k in st:
                d, v = st[k]
                lines.append(f"    digest {d}")
                lines.append("    vv " + ", ".join(f"{ids.get(a, a[:12])}:{s}" for a, s in sorted(v.items())))
            if n.running:
                try:
                    s = n.status()
                    for p in s.get("peers", []):
                        lines.append(f"    peer {p.get('address')} {ids.get(p.get('id'), (p.get('id') or '')[:12])} "
                                     f"{'connected' if p.get('connected') else 'DISCONNECTED'} {p.get('direction')} "
                                     f"in={p.get('changes_in')} out={p.get('changes_out')} behind={p.get('behind')} "
                                     f"err={p.get('last_error')!r}")
                except Exception as e:
                    lines.append(f"    status: {e}")
            try:
                with open(n.log_path, encoding="utf-8", errors="replace") as f:
                    tail = f.readlines()[-8:]
                lines.extend("    | " + t.rstrip() for t in tail)
            except OSError:
                pass
        return "\n".join(lines)

    def check_docs(self, docs: Iterable[Tuple[str, str]], expected: Optional[Dict[Tuple[str, str], Any]] = None,
                   field_by_field: bool = True, names: Optional[Sequence[str]] = None) -> Dict[Tuple[str, str], Any]:
        """Read every document through every node's API; all must be equal
        (and match ``expected`` where given); with field_by_field, every leaf
        is also read alone through each API and must equal the document's.
        Returns the agreed documents (tagged; ABSENT for missing)."""
        errs: List[str] = []
        agreed: Dict[Tuple[str, str], Any] = {}
        names = list(names or self.nodes)
        for key in docs:
            coll, doc = key
            got = {k: self.nodes[k].get(coll, doc) for k in names}
            first = got[names[0]]
            for k in names[1:]:
                if got[k] != first:
                    errs.append(f"{coll}/{doc}: {names[0]} has {show_any(first)} but {k} has {show_any(got[k])}")
            if expected is not None and key in expected:
                for e in match(expected[key], first):
                    errs.append(f"{coll}/{doc}: {e}")
            agreed[key] = first
            if field_by_field and isinstance(first, dict):
                for path, val in leaves(first):
                    for k in names:
                        fv = self.nodes[k].get_field(coll, doc, path)
                        if fv != val:
                            errs.append(f"{coll}/{doc} {path}: {k}'s get_field says {show_any(fv)}, "
                                        f"its document says {show_any(val)}")
        if errs:
            raise AssertionError("documents differ:\n  " + "\n  ".join(errs))
        return agreed
