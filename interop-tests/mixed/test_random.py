"""Cross-language randomized convergence.

For each seed, a C node, a Python node and a Go node in a random line (a
random middle, each edge dialled in a random direction) make random writes
of random types while nodes are stopped and restarted at random: the sync
node alone (the store stays open and keeps taking writes), the whole process
cleanly, or the whole process by SIGKILL. In the end every node is started
and all must report one digest and one version vector, read every document
the same through each language's API, and hold the exact counter sums and
set unions of the oracle documents (fields only ever incremented / added to).

    LIM_INTEROP_SEEDS=N   run N seeds (default 20), from LIM_INTEROP_SEED_BASE (default 0)
    LIM_INTEROP_SEED=S    run only seed S (to reproduce a failure)
"""
from __future__ import annotations

import os
import random
import time
from typing import Any, Dict, List, Set, Tuple

import pytest

from harness import LANGS, S, tag, wire

if os.environ.get("LIM_INTEROP_SEED"):
    SEEDS = [int(os.environ["LIM_INTEROP_SEED"])]
else:
    _base = int(os.environ.get("LIM_INTEROP_SEED_BASE", "0"))
    SEEDS = list(range(_base, _base + int(os.environ.get("LIM_INTEROP_SEEDS", "20"))))

STEPS = 150
DOCS = ["d0", "d1", "d2", "d3"]
FIELDS = ["f0", "f1", "f2", "o.a", "o.b", "o.p.q"]
SET_ELEMS = ["a", "b", "\u00fc\U0001F680", 7, -3, 2.5, None, True, b"\x00\x01", ""]


def rand_scalar(rng: random.Random) -> Any:
    k = rng.randrange(7)
    if k == 0:
        return None
    if k == 1:
        return rng.random() < 0.5
    if k == 2:
        return rng.choice([0, 1, -1, 2**63 - 1, -2**63, rng.randrange(-10**6, 10**6)])
    if k == 3:
        return rng.choice([0.0, -0.0, 0.1, 1e300, -5e-324, 3.0, rng.uniform(-1e6, 1e6)])
    if k == 4:
        alphabet = "ab \"\\\n\t\u00e9\u2713\U0001F600\x01"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
    if k == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(5)))
    return rng.randrange(100)


def rand_fields(rng: random.Random) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for path in rng.sample(FIELDS, rng.randrange(1, 4)):
        segs = path.split(".")
        cur = out
        ok = True
        for s in segs[:-1]:
            nxt = cur.setdefault(s, {})
            if not isinstance(nxt, dict):
                ok = False
                break
            cur = nxt
        if ok and not isinstance(cur.get(segs[-1]), dict):
            cur[segs[-1]] = rand_scalar(rng)
    return out


class Run:
    def __init__(self, net, rng: random.Random, log: List[str]) -> None:
        self.net = net
        self.rng = rng
        self.log = log
        self.counters: Dict[str, int] = {f"n{i}": 0 for i in range(3)}
        self.gset: Set[Any] = set()
        self.gset_elems: List[Any] = []
        self.docs: Set[Tuple[str, str]] = set()
        self.mode: Dict[str, str] = {}

    def write(self, node) -> None:
        rng = self.rng
        doc = rng.choice(DOCS)
        field = rng.choice(FIELDS)
        k = rng.randrange(10)
        self.docs.add(("r", doc))
        if k <= 1:
            node.put("r", doc, rand_fields(rng))
        elif k == 2:
            node.set("r", doc, field, rand_scalar(rng))
        elif k == 3:
            node.incr("r", doc, field, rng.randrange(-5, 6))
        elif k == 4:
            node.sadd("r", doc, field, rng.choice(SET_ELEMS))
        elif k == 5:
            node.srem("r", doc, field, rng.choice(SET_ELEMS))
        elif k == 6:
            if rng.random() < 0.2:
                node.delete("r", doc)
            else:
                node.delete("r", doc, rng.choice(FIELDS + ["o", "o.p"]))
        elif k == 7:
            n = rng.randrange(1, 50)
            c = rng.choice(sorted(self.counters))
            node.incr("oracle", "counters", c, n)
            self.counters[c] += n
        elif k == 8:
            e = rng.choice(SET_ELEMS)
            node.sadd("oracle", "gset", "s", e)
            if tag(e) not in self.gset:
                self.gset.add(tag(e))
                self.gset_elems.append(e)
        else:
            n = rng.randrange(1, 9)
            node.txn([
                {"op": "put", "coll": "r", "doc": doc, "fields": wire(rand_fields(rng))},
                {"op": "incr", "coll": "oracle", "doc": "counters", "field": "n0", "n": n},
                {"op": "sadd", "coll": "r", "doc": doc, "field": field, "value": wire(rng.choice(SET_ELEMS))},
            ])
            self.counters["n0"] += n

    def step(self) -> None:
        rng = self.rng
        nodes = list(self.net.nodes.values())
        r = rng.random()
        if r < 0.6:
            writable = [n for n in nodes if n.can_write()]
            if writable:
                self.write(rng.choice(writable))
        elif r < 0.75:
            up = [n for n in nodes if n.running]
            if up:
                n = rng.choice(up)
                modes = ["quit", "kill"] if n.lang == "c" else ["node", "quit", "kill"]
                mode = rng.choice(modes)
                self.log.append(f"stop {n.name} ({mode})")
                n.stop(mode)
        elif r < 0.9:
            down = [n for n in nodes if not n.running]
            if down:
                n = rng.choice(down)
                self.log.append(f"restart {n.name}")
                self.net.start(n.name)
        else:
            time.sleep(rng.uniform(0, 0.08))

    def run(self) -> None:
        self.net.open_all()
        for n in self.net.nodes.values():
            for _ in range(self.rng.randrange(4)):
                self.write(n)
        self.net.start_all()
        for _ in range(STEPS):
            self.step()
        for n in self.net.nodes.values():
            if not n.running:
                self.log.append(f"restart {n.name}")
                self.net.start(n.name)
        self.net.wait_converged(timeout=60)
        expected = {
            ("oracle", "counters"): {k: v for k, v in self.counters.items() if v} or None,
            ("oracle", "gset"): {"s": S(*self.gset_elems)} if self.gset_elems else None,
        }
        expected = {k: v for k, v in expected.items() if v is not None}
        self.net.check_docs(sorted(self.docs | set(expected)), expected)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={s}" for s in SEEDS])
def test_random_convergence(make_net, seed):
    rng = random.Random(seed)
    middle = rng.choice(LANGS)
    edges = []
    for e in LANGS:
        if e != middle:
            edges.append((e, middle) if rng.random() < 0.5 else (middle, e))
    log: List[str] = [f"line {edges}"]

    def announce(node, what: str) -> None:
        log.append(f"{node.name}: {what}")

    net = make_net(LANGS, edges, announce=announce)
    try:
        Run(net, rng, log).run()
    except BaseException as e:
        tail = "\n".join(log[-60:])
        raise AssertionError(f"seed {seed} failed (rerun: LIM_INTEROP_SEED={seed}): {e}\n"
                             f"last actions:\n{tail}") from e
