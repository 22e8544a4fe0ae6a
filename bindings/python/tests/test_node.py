"""Sync nodes over real TCP on loopback, and the change feed."""
import asyncio
import threading
import time

import pytest

import lim

from conftest import wait_until


def test_two_nodes_sync_over_tcp(pair):
    a, b = pair
    a.put("people", "ada", {"name": "Ada", "photo": b"\x89PNG"})
    b.put("people", "bob", {"name": "Bob"})
    with lim.Node(a, listen="127.0.0.1:0") as na, \
            lim.Node(b, listen="127.0.0.1:0", peers=[na.address]) as nb:
        host, port = na.address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        wait_until(lambda: a.digest() == b.digest())
        assert b.get("people", "ada") == {"name": "Ada", "photo": b"\x89PNG"}
        assert a.get("people", "bob") == {"name": "Bob"}
        # Live writes both ways, including concurrent counters.
        for i in range(20):
            a.incr("stats", "s", "n", 1)
            b.incr("stats", "s", "n", 2)
        wait_until(lambda: a.get_field("stats", "s", "n", 0) == 60 and
                   b.get_field("stats", "s", "n", 0) == 60)
        wait_until(lambda: a.digest() == b.digest())
        st = nb.status()
        assert st["id"] == b.replica_id
        (peer,) = st["peers"]
        assert peer["address"] == na.address and peer["connected"] is True
        assert peer["id"] == a.replica_id and peer["direction"] == "out"
        sa = na.status()
        assert sa["listen"] == na.address and sa["peers"][0]["direction"] == "in"
        assert lim.remote_status(b, na.address)["id"] == a.replica_id


def test_add_and_remove_peer(pair):
    a, b = pair
    with lim.Node(a) as na, lim.Node(b, listen=None) as nb:
        assert nb.address is None
        assert nb.status()["peers"] == []
        nb.add_peer(na.address)
        wait_until(lambda: any(p["connected"] for p in nb.status()["peers"]))
        a.put("t", "d", {"x": 1})
        wait_until(lambda: b.get("t", "d") == {"x": 1})
        nb.remove_peer(na.address)
        wait_until(lambda: nb.status()["peers"] == [])
        a.put("t", "d", {"x": 2})
        time.sleep(0.3)
        assert b.get("t", "d") == {"x": 1}
        stats = nb.sync_once(na.address)
        assert stats.changes_in == 1
        assert b.get("t", "d") == {"x": 2}


def test_sync_once_module_level(pair):
    a, b = pair
    a.put("t", "d", {"x": 1})
    b.put("t", "e", {"y": 1})
    with lim.Node(a) as na:
        st = lim.sync_once(b, na.address, timeout=10)
        assert st == lim.SyncStats(changes_in=1, changes_out=1)
    assert a.digest() == b.digest()


def test_change_iterator_sees_remote_write(pair):
    a, b = pair
    with lim.Node(a) as na, lim.Node(b, peers=[na.address]) as nb:
        wait_until(lambda: any(p["connected"] for p in nb.status()["peers"]))
        got = []

        def consume():  # from another thread
            for change in nb.changes(timeout=10):
                got.append(change)
                break

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.2)
        a.put("t", "d", {"x": "hello"})
        t.join(15)
        assert got == [lim.RemoteChange(author=a.replica_id, seq=1)]
        assert b.get("t", "d") == {"x": "hello"}
        # Own writes are not remote changes.
        b.put("t", "mine", {"x": 1})
        assert nb.next_change(timeout=0.3) is None
        assert na.next_change(timeout=10) == (b.replica_id, 1)
        assert nb.events_dropped == 0


def test_change_iterator_ends_when_node_closes(pair):
    a, b = pair
    nb = lim.Node(b)
    ended = threading.Event()

    def consume():
        for _ in nb.changes():
            pass
        ended.set()

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    nb.close()
    t.join(5)
    assert ended.is_set()


def test_async_change_iterator(pair):
    a, b = pair

    async def main():
        with lim.Node(a) as na, lim.Node(b, peers=[na.address]) as nb:
            loop = asyncio.get_running_loop()
            while not any(p["connected"] for p in nb.status()["peers"]):
                await asyncio.sleep(0.02)
            feed = nb.changes(timeout=10)
            ticks = 0

            async def ticker():  # the loop keeps running while we wait
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            tick = asyncio.ensure_future(ticker())
            loop.call_later(0.3, lambda: threading.Thread(
                target=a.put, args=("t", "d", {"x": 1})).start())
            got = []
            async for change in feed:
                got.append(change)
                if len(got) == 2:
                    break
                a.put("t", "d", {"x": 2})
            tick.cancel()
            assert [c.seq for c in got] == [1, 2]
            assert ticks > 10
            # A timeout ends the async iteration.
            quiet = nb.changes(timeout=0.2)
            assert [c async for c in quiet] == []
            # So does closing the node.
            closing = nb.changes()
            loop.call_later(0.2, nb.close)
            assert [c async for c in closing] == []
            feed.close()
            quiet.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_three_nodes_relay(tmp_path):
    a = lim.open(tmp_path / "a.db")
    b = lim.open(tmp_path / "b.db", network_key=a.network_key)
    c = lim.open(tmp_path / "c.db", network_key=a.network_key)
    try:
        with lim.Node(a) as na, lim.Node(b, peers=[na.address]) as nb, \
                lim.Node(c, listen=None, peers=[nb.address]):
            a.put("t", "from-a", {"v": 1})
            c.put("t", "from-c", {"v": 3})
            wait_until(lambda: a.digest() == b.digest() == c.digest())
            assert sorted(a.keys("t")) == ["from-a", "from-c"]
    finally:
        for s in (c, b, a):
            s.close()


def test_log_callback(pair):
    a, b = pair
    lines = []
    with lim.Node(a, log=lines.append) as na:
        lim.sync_once(b, na.address)
        wait_until(lambda: any("authenticated" in l for l in lines))
    assert any("listening on" in l for l in lines)


def test_node_options_validated(store):
    with pytest.raises(lim.InvalidInput):
        lim.Node(store, idle_timeout=0.01)
    with pytest.raises(lim.InvalidInput):
        lim.Node(store, peers="127.0.0.1:1")  # a string, not a list
    with pytest.raises(lim.Error):
        lim.Node(store, listen="not an address")
    with lim.Node(store, listen=None, peers=["127.0.0.1:1"], reconnect_min=0.01,
                  reconnect_max=0.05, max_connections=4) as n:
        wait_until(lambda: n.status()["peers"][0]["last_error"] != "")
        assert n.status()["peers"][0]["connected"] is False


def test_readme_example(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "RemoteChange" in out and "London" in out
