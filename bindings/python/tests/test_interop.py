"""A Python node syncing with a `lim serve` process (the C command, LIM_BIN)."""
import json
import signal
import subprocess

import lim

from conftest import find_lim_bin, wait_until


def run(lim_bin, db, *args):
    out = subprocess.run([lim_bin, "--db", str(db), *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"lim {' '.join(args)}: {out.stderr}"
    return out.stdout


def test_python_node_with_lim_serve(tmp_path):
    lim_bin = find_lim_bin()
    py = lim.open(tmp_path / "py.db")
    cli_db = tmp_path / "cli.db"
    ident = run(lim_bin, cli_db, "init", "--network-key", py.network_key.hex())
    cli_id = dict(line.split() for line in ident.splitlines() if line.strip())["replica_id"]
    run(lim_bin, cli_db, "put", "people", "ada", json.dumps({"name": "Ada", "addr": {"city": "London"}}))
    run(lim_bin, cli_db, "incr", "people", "ada", "visits", "2")
    py.put("people", "bob", {"name": "Bob", "key": b"\x00\x01"})
    py.incr("people", "ada", "visits", 3)

    serve = subprocess.Popen([lim_bin, "--db", str(cli_db), "serve", "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = serve.stdout.readline()
        assert line.startswith("listening on "), line + serve.stderr.read()
        addr = line.split()[-1]

        # One-shot sync both ways.
        stats = lim.sync_once(py, addr, timeout=20)
        assert stats == (2, 2)
        assert py.get("people", "ada") == {"name": "Ada", "addr": {"city": "London"}, "visits": 5}
        assert lim.remote_status(py, addr)["id"] == cli_id

        # A live node: writes flow both ways, and the change feed sees the
        # C process's writes.
        with lim.Node(py, listen=None, peers=[addr]) as node:
            wait_until(lambda: any(p["connected"] for p in node.status()["peers"]), timeout=20)
            py.put("people", "cy", {"name": "Cy"})
            wait_until(lambda: "cy" in run(lim_bin, cli_db, "ls", "people").split(), timeout=20)
            run(lim_bin, cli_db, "sadd", "people", "ada", "tags", '"math"')
            change = node.next_change(timeout=20)
            assert change is not None and change.author == cli_id
            wait_until(lambda: py.get_field("people", "ada", "tags", None) == frozenset({"math"}),
                       timeout=20)
            wait_until(lambda: run(lim_bin, cli_db, "digest").strip() == py.digest(), timeout=20)
            status = json.loads(run(lim_bin, cli_db, "status", "--node", addr))
            assert any(p["id"] == py.replica_id for p in status["peers"])
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(20)
        finally:
            if serve.poll() is None:
                serve.kill()
            serve.stdout.close()
            serve.stderr.close()
    assert serve.returncode == 0
    assert run(lim_bin, cli_db, "digest").strip() == py.digest()
    assert json.loads(run(lim_bin, cli_db, "get", "people", "bob")) == {
        "name": "Bob", "key": {"$base64": "AAE="}}
    run(lim_bin, cli_db, "verify")
    py.verify()
    py.close()
