"""The mixed-network scenario, shared by the pytest suite (interop-tests/mixed)
and the demo (interop-tests/demo): three nodes, one per language, in a line
whose two ends both dial the middle node, so the ends only ever meet through
it. Every check raises AssertionError; ``say`` narrates.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from harness import ABSENT, LANGS, Network, OneOf, S, Node, wire

Key = Tuple[str, str]

# Every value type (and the awkward corners of each) for one document.
def every_type(lang: str) -> Dict[str, Any]:
    return {
        "null": None,
        "yes": True,
        "no": False,
        "int": -42,
        "max": 2**63 - 1,
        "min": -2**63,
        "float": 0.1,
        "whole": 3.0,          # a float that looks like an int
        "negzero": -0.0,
        "huge": 1e300,
        "tiny": 5e-324,
        "str": f"h\u00e9llo \"q\" \\ /\n\t\r \u2713 \U0001F680 {lang}",
        "empty": "",
        "ctl": "\x01\x1f\x7f",
        "bytes": bytes([0, 1, 0x7F, 0x80, 0xFE, 0xFF]),
        "nobytes": b"",
        "nested": {"a": {"b": {"c": "deep"}}, "n": 1},
    }


def line_edges(middle: str, ends: List[str]) -> List[Tuple[str, str]]:
    return [(e, middle) for e in ends]


class Scenario:
    def __init__(self, net: Network, middle: str, ends: List[str],
                 say: Callable[[str], None] = lambda s: None,
                 on_converged: Optional[Callable[[float, str], None]] = None,
                 field_by_field: bool = True) -> None:
        self.net = net
        self.middle = middle
        self.ends = ends
        self.say = say
        self.on_converged = on_converged
        self.fbf = field_by_field
        self.expected: Dict[Key, Any] = {}

    def n(self, name: str) -> Node:
        return self.net[name]

    def converge(self, what: str, names: Optional[List[str]] = None) -> float:
        secs = self.net.wait_converged(timeout=30.0, names=names)
        d = self.net[(names or list(self.net.nodes))[0]].digest()
        if self.on_converged:
            self.on_converged(secs, d)
        return secs

    def check(self, names: Optional[List[str]] = None) -> Dict[Key, Any]:
        return self.net.check_docs(sorted(self.expected), self.expected,
                                   field_by_field=self.fbf, names=names)

    # ------------------------------------------------------------ phases

    def offline_concurrent(self) -> None:
        """Before any node runs: all three write the same document, so these
        writes are truly concurrent."""
        self.say("Offline: each node writes the same document board/plan (truly concurrent writes)")
        c, py, go = self.n("c"), self.n("python"), self.n("go")
        c.put("board", "plan", {"title": "from C", "owner": {"name": "cee"}, "priority": 1})
        py.put("board", "plan", {"title": "from Python", "priority": 2.5})
        go.put("board", "plan", {"title": b"from Go", "priority": None})
        for node, n in ((c, 1), (py, 10), (go, 100)):
            node.incr("board", "plan", "hits", n)
            node.sadd("board", "plan", "tags", node.lang)
        py.sadd("board", "plan", "tags", "shared")
        go.sadd("board", "plan", "tags", "shared")
        # a plain value and an object written at one path concurrently: objects win
        c.put("board", "plan", {"meta": {"v": 1}})
        py.set("board", "plan", "meta", "flat")
        self.expected[("board", "plan")] = {
            "title": OneOf("from C", "from Python", b"from Go"),
            "owner": {"name": "cee"},
            "priority": OneOf(1, 2.5, None),
            "hits": 111,
            "tags": S("c", "python", "go", "shared"),
            "meta": {"v": 1},
        }

    def start(self) -> None:
        e1, e2 = self.ends
        self.say(f"Start the line {e1} -> {self.middle} <- {e2}: "
                 f"{e1} and {e2} never connect to each other")
        self.net.start_all()
        for name in self.net.nodes:
            self.say(f"  {name} ({self.n(name).lang}) listens on {self.n(name).addr}"
                     + (f", dials {', '.join(self.net.dials(name))}" if self.net.dials(name) else ""))

    def live_every_type(self) -> None:
        self.say("Live: each node writes a document of every field type, and writes into the others'")
        for lang in LANGS:
            node = self.n(lang)
            doc = f"{lang}"
            node.put("kinds", doc, every_type(lang))
            if lang != "c":  # `lim put` refuses U+0000 (SQLite's JSON cuts it); the bindings set it
                node.set("kinds", doc, "nul", "a\x00b")
            node.incr("kinds", doc, "counter", 5)
            node.incr("kinds", doc, "counter", -7)
            for v in ("x", 7, 2.5, None, b"\x02", True, 7):
                node.sadd("kinds", doc, "set", v)
            node.srem("kinds", doc, "set", 7)
            node.set("kinds", doc, "nested.a.b.c", "deeper")
            node.delete("kinds", doc, "no")
            node.put("kinds", f"{lang}-gone", {"x": 1})
            node.delete("kinds", f"{lang}-gone")
            node.put("kinds", f"{lang}-reborn", {"old": 1, "keep": {"k": 2}})
            node.delete("kinds", f"{lang}-reborn")
            node.put("kinds", f"{lang}-reborn", {"new": 3})
            node.txn([
                {"op": "put", "coll": "kinds", "doc": doc, "fields": wire({"txn": {"a": 1.5}})},
                {"op": "incr", "coll": "kinds", "doc": doc, "field": "txn_n", "n": 2},
                {"op": "sadd", "coll": "kinds", "doc": doc, "field": "txn_set", "value": wire(b"t")},
            ])
            exp = every_type(lang)
            del exp["no"]
            exp["nested"]["a"]["b"]["c"] = "deeper"
            if lang != "c":
                exp["nul"] = "a\x00b"
            exp.update({"counter": -2, "set": S("x", 2.5, None, b"\x02", True),
                        "txn": {"a": 1.5}, "txn_n": 2, "txn_set": S(b"t"),
                        "visitors": S(*[o for o in LANGS if o != lang])})
            self.expected[("kinds", doc)] = exp
            self.expected[("kinds", f"{lang}-gone")] = ABSENT
            self.expected[("kinds", f"{lang}-reborn")] = {"new": 3}
        for lang in LANGS:
            node = self.n(lang)
            for other in LANGS:
                if other != lang:
                    node.sadd("kinds", other, "visitors", lang)
            node.incr("board", "plan", "hits", 1000)
            node.set("board", "plan", "status", f"{lang}-live")
        plan = self.expected[("board", "plan")]
        plan["hits"] = 3111
        plan["status"] = OneOf(*[f"{lang}-live" for lang in LANGS])

    def check_topology(self) -> None:
        """The two ends are never connected to each other (only to the middle)."""
        e1, e2 = self.ends
        for a, b in ((e1, e2), (e2, e1)):
            other = self.n(b).replica_id
            for p in self.n(a).status().get("peers", []):
                assert p.get("id") != other, f"{a} has a connection to {b}: {p}"
        mid = self.n(self.middle).replica_id
        for e in self.ends:
            ids = {p.get("id") for p in self.n(e).status().get("peers", []) if p.get("connected")}
            assert mid in ids, f"{e} is not connected to {self.middle}: {self.n(e).status()}"

    def partition_middle(self) -> None:
        e1, e2 = self.ends
        m = self.n(self.middle)
        self.say(f"Stop {self.middle} (its process exits): {e1} and {e2} are cut off from each other")
        m.stop("quit")
        a, b = self.n(e1), self.n(e2)
        a.set("board", "plan", "status", f"partitioned-{e1}")
        b.set("board", "plan", "status", f"partitioned-{e2}")
        a.srem("board", "plan", "tags", "shared")   # removes the adds a has seen
        b.sadd("board", "plan", "tags", "shared")   # a new add a has not seen: add wins
        a.delete("board", "plan", "owner")
        b.put("board", "plan", {"owner": {"name": "bee"}})
        for node in (a, b):
            node.incr("board", "plan", "hits", 10000)
            for i in range(3):
                node.put("partition", f"{node.name}-{i}", {"by": node.lang, "i": i, "f": i / 4})
                self.expected[("partition", f"{node.name}-{i}")] = {"by": node.lang, "i": i, "f": i / 4}
        plan = self.expected[("board", "plan")]
        plan["status"] = OneOf(f"partitioned-{e1}", f"partitioned-{e2}")
        plan["hits"] = 23111
        plan["owner"] = OneOf(ABSENT, {"name": "bee"})
        # the partition is real: the ends cannot have met
        da, db = a.digest(), b.digest()
        assert da != db, f"{e1} and {e2} agree although {self.middle} is down"
        self.say(f"  {e1} digest {da[:16]}…, {e2} digest {db[:16]}… (different, as they must be)")

    def restart(self, name: str) -> None:
        node = self.n(name)
        old = node.addr
        self.say(f"Restart {name} on the same store file and address {old}")
        self.net.start(name)
        assert node.addr == old, (node.addr, old)

    def stop_end(self) -> None:
        e1, e2 = self.ends
        m, b = self.n(self.middle), self.n(e2)
        self.say(f"Stop {e1}; {self.middle} and {e2} keep writing")
        self.n(e1).stop("quit")
        m.incr("board", "plan", "hits", 100000)
        b.incr("board", "plan", "hits", 100000)
        m.srem("board", "plan", "tags", self.n(e1).lang)
        m.delete("kinds", self.n(e1).lang, "str")
        b.put("kinds", b.lang, {"after": "restart"})
        m.delete("partition", f"{e1}-0")
        plan = self.expected[("board", "plan")]
        plan["hits"] = 223111
        tags = plan["tags"]
        plan["tags"] = S(*[t for t in tags.elems if t != self.n(e1).lang])
        del self.expected[("kinds", self.n(e1).lang)]["str"]
        self.expected[("kinds", b.lang)]["after"] = "restart"
        self.expected[("partition", f"{e1}-0")] = ABSENT

    def verify_stores(self) -> None:
        """`lim verify` on every store file after everything stopped."""
        import subprocess
        from harness import lim_bin
        for name, node in self.net.nodes.items():
            p = subprocess.run([lim_bin(), "--db", node.store, "verify"], capture_output=True, text=True)
            assert p.returncode == 0, f"lim verify {node.store}: {p.stdout}{p.stderr}"

    def run(self) -> None:
        self.net.open_all()
        self.offline_concurrent()
        self.start()
        self.converge("first sync")
        self.check()
        self.live_every_type()
        self.converge("live writes")
        self.check()
        self.check_topology()
        self.partition_middle()
        self.restart(self.middle)
        self.converge("after the partition")
        agreed = self.check()
        plan = agreed[("board", "plan")]
        # add wins: the concurrent re-add of "shared" survives the remove
        assert ("str", "shared") in plan["tags"][1], plan["tags"]
        self.check_topology()
        self.stop_end()
        self.restart(self.ends[0])
        self.converge("after the restart")
        self.check()
        self.check_topology()
