"""The mixed-network demo (run by interop-tests/demo, which builds first):
a C node (`lim serve`), a Python node and a Go node, each with its own store,
in a line python -> c <- go. It narrates every write, the moment all three
agree, a partition (the C node stopped) and a restart, checks every document
through every language's API, and leaves the stores behind.

    build/venv/bin/python interop-tests/demo.py [--middle c|python|go] [--dir DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import LANGS, Network, lim_bin, show, show_any  # noqa: E402
from scenario import Scenario, line_edges  # noqa: E402

TTY = sys.stdout.isatty()
BOLD, DIM, GREEN, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[0m") if TTY else ("", "", "", "")
T0 = time.monotonic()


def stamp() -> str:
    return f"{(time.monotonic() - T0) * 1000:7.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--middle", choices=LANGS, default="c", help="the node both others dial (default c)")
    ap.add_argument("--dir", help="where to put the stores (default: a new /tmp/lim-interop-XXXXXX)")
    args = ap.parse_args()
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="lim-interop-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    ends = [e for e in LANGS if e != args.middle]

    step = [0]
    width = max(len(x) for x in LANGS)

    def say(text: str) -> None:
        if text.startswith("  "):
            print(f"{DIM}{stamp()}{RESET}    {text.strip()}")
            return
        step[0] += 1
        print(f"\n{BOLD}{step[0]}. {text}{RESET}")

    def announce(node, what: str) -> None:
        print(f"{DIM}{stamp()}{RESET}    [{node.name:<{width}}] {what}")

    def converged(secs: float, digest: str) -> None:
        print(f"{DIM}{stamp()}{RESET}    {GREEN}{BOLD}all three agree after {secs * 1000:.0f} ms{RESET}"
              f" (one digest {digest[:16]}…, one version vector)")

    print(f"{BOLD}liblim interop demo: a C node, a Python node and a Go node in one network{RESET}")
    print(f"  c      = lim serve ({lim_bin()}), written with `lim put/incr/sadd/...`")
    print(f"  python = interop-tests/pynode.py through the Python binding (import lim)")
    print(f"  go     = build/interop/gonode through the Go binding")
    print(f"  stores and logs in {workdir}/")

    net = Network(workdir, LANGS, line_edges(args.middle, ends), announce=announce)
    sc = Scenario(net, args.middle, ends, say=say, on_converged=converged)
    try:
        sc.run()
        say("Every document read through each language's API (lim get, Python get, Go Get) is the same:")
        agreed = sc.check()
        for (coll, doc), value in sorted(agreed.items()):
            if coll in ("board", "kinds") and not doc.endswith(("-gone", "-reborn")):
                text = show_any(value)
                if len(text) > 150:
                    text = text[:147] + "..."
                print(f"             {coll}/{doc} = {text}")
        board = agreed[("board", "plan")]
        print(f"{DIM}{stamp()}{RESET}    hits = {show(board['hits'])}: every increment of every node counted once")
    finally:
        net.close()
    lim = lim_bin()
    print(f"\n{BOLD}Done.{RESET} The nodes are stopped; their stores and logs stay in {workdir}/:")
    for name, node in net.nodes.items():
        print(f"  {node.store}   ({node.lang} node, log {os.path.basename(node.log_path)})")
    print("Try:")
    print(f"  {lim} --db {net['python'].store} get board plan")
    print(f"  {lim} --db {net['go'].store} get kinds python")
    print(f"  {lim} --db {net['c'].store} log --limit 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
