"""Fixtures for the mixed-network suite: the lim binary (LIM_BIN, required),
the Go node (built here with `go build` unless LIM_GONODE names one), and a
Network whose processes are always ended."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def binaries() -> None:
    if not os.environ.get("LIM_BIN"):
        pytest.fail("set LIM_BIN to the lim executable (e.g. LIM_BIN=$PWD/build/bin/lim)", pytrace=False)
    harness.lim_bin()
    os.environ["LIM_GONODE"] = harness.build_gonode()
    import lim  # noqa: F401  (the Python binding must be installed in this interpreter)


@pytest.fixture
def make_net(tmp_path):
    nets = []

    def make(langs, edges, **kw):
        net = harness.Network(tmp_path, langs, edges, **kw)
        nets.append(net)
        return net

    yield make
    for net in nets:
        net.close()
