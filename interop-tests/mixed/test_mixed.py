"""A C node (`lim serve`), a Python node and a Go node in one network.

The topology is a line whose two ends both dial the middle node, so the ends
never connect to each other; the three parametrizations put each language
in the middle, so every language pair appears in both dial directions:
python->c, go->c, c->python, go->python, c->go, python->go.
"""
from __future__ import annotations

import pytest

from harness import LANGS
from scenario import Scenario, line_edges

LINES = {m: [e for e in LANGS if e != m] for m in LANGS}


@pytest.mark.parametrize("middle", LANGS, ids=[f"{LINES[m][0]}->{m}<-{LINES[m][1]}" for m in LANGS])
def test_mixed_network(make_net, middle):
    ends = LINES[middle]
    net = make_net(LANGS, line_edges(middle, ends))
    Scenario(net, middle, ends).run()
    for node in net.nodes.values():
        node.stop("quit")
    Scenario(net, middle, ends).verify_stores()
