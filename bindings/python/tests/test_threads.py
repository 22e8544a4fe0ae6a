"""Closing, use after close, concurrency from 8 threads, GIL release, leaks."""
import gc
import os
import socket
import threading
import time

import pytest

import lim

from conftest import wait_until


def _fds():
    return len(os.listdir("/proc/self/fd"))


def _tasks():
    return len(os.listdir("/proc/self/task"))


def test_double_close(tmp_path):
    s = lim.open(tmp_path / "s.db")
    n = lim.Node(s)
    n.close()
    n.close()
    s.close()
    s.close()
    with lim.open(tmp_path / "s.db") as s2:
        s2.close()
    s2.close()
    assert s.closed and s2.closed and n.closed


def test_use_after_close(tmp_path, pair):
    a, b = pair
    s = lim.open(tmp_path / "s.db")
    s.put("t", "d", {"x": 1})
    node = lim.Node(s)
    feed = node.changes(timeout=0.1)
    s.close()  # closes the node first
    assert node.closed
    calls = [
        lambda: s.put("t", "d", {"x": 1}), lambda: s.get("t", "d"),
        lambda: s.get_field("t", "d", "x"), lambda: s.set("t", "d", "x", 1),
        lambda: s.delete("t", "d"), lambda: s.incr("t", "d", "n", 1),
        lambda: s.set_add("t", "d", "s", 1), lambda: s.set_remove("t", "d", "s", 1),
        lambda: list(s.keys("t")), lambda: s.digest(), lambda: s.version_vector(),
        lambda: s.export(tmp_path / "x.pack"), lambda: s.import_pack(tmp_path / "x.pack"),
        lambda: list(s.log()), lambda: s.changes_since(), lambda: s.apply(b"x"),
        lambda: s.verify(), lambda: s.rebuild(), lambda: s.transaction().__enter__(),
        lambda: s["t"]["d"], lambda: lim.sync_once(s, "127.0.0.1:9"),
        lambda: lim.remote_status(s, "127.0.0.1:9"), lambda: lim.Node(s),
        lambda: node.status(), lambda: node.add_peer("127.0.0.1:9"),
        lambda: node.remove_peer("127.0.0.1:9"), lambda: node.sync_once("127.0.0.1:9"),
        lambda: node.events_dropped,
    ]
    for call in calls:
        with pytest.raises(lim.StoreClosed):
            call()
    assert node.next_change(timeout=0.1) is None  # iteration just ends
    assert list(feed) == []
    assert s.replica_id  # plain attributes stay readable


def test_eight_threads_concurrently(pair):
    a, b = pair
    errors = []
    N = 150

    def worker(i):
        try:
            for j in range(N):
                a.put("docs", f"t{i}-{j % 10}", {"i": i, "j": j, "b": bytes([i, j % 256])})
                a.incr("stats", "all", "count", 1)
                a.set_add("stats", "all", "threads", i)
                assert a.get("docs", f"t{i}-{j % 10}")["i"] == i
                if j % 25 == 0:
                    list(a.keys("docs"))
                    a.digest()
                    with a.transaction():
                        a.incr("stats", "all", "tx", 1)
                        a.incr("stats", "all", "tx", 1)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert a.get_field("stats", "all", "count") == 8 * N
    assert a.get_field("stats", "all", "tx") == 8 * 2 * (N // 25)
    assert a.get_field("stats", "all", "threads") == frozenset(range(8))
    assert len(list(a.keys("docs"))) == 80
    a.verify()
    a.export(b.path + ".pack")
    b.import_pack(b.path + ".pack")
    assert b.digest() == a.digest()


def test_close_while_threads_are_inside_calls(tmp_path):
    for round_ in range(3):
        s = lim.open(tmp_path / f"c{round_}.db")
        node = lim.Node(s)
        started = threading.Barrier(9)
        outcome = []

        def worker(i):
            started.wait()
            n = 0
            try:
                while True:
                    s.put("t", f"d{i}", {"n": n})
                    s.get("t", f"d{i}")
                    s.incr("t", "c", "n", 1)
                    list(s.keys("t"))
                    node.status()
                    n += 1
            except lim.StoreClosed:
                outcome.append(("closed", n))
            except BaseException as e:  # pragma: no cover
                outcome.append(("error", repr(e)))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        started.wait()
        time.sleep(0.2)
        s.close()
        for t in threads:
            t.join(30)
        assert [o[0] for o in outcome] == ["closed"] * 8, outcome
        assert node.closed
    with lim.open(tmp_path / "c0.db") as s:
        s.verify()


def test_close_during_a_transaction_on_another_thread(tmp_path):
    s = lim.open(tmp_path / "s.db")
    s.put("t", "d", {"x": 1})
    inside = threading.Event()
    proceed = threading.Event()
    result = []

    def tx():
        try:
            with s.transaction():
                s.put("t", "d", {"x": 2})
                inside.set()
                proceed.wait(10)
                s.put("t", "d", {"x": 3})
        except lim.StoreClosed:
            result.append("closed")

    t = threading.Thread(target=tx)
    t.start()
    inside.wait(10)
    s.close()  # rolls the open transaction back
    proceed.set()
    t.join(10)
    assert result == ["closed"]
    with lim.open(tmp_path / "s.db") as s:
        assert s.get("t", "d") == {"x": 1}


def test_close_from_inside_a_callback_is_refused(store):
    store.put("t", "d", {"x": 1})

    class Sneaky:
        def write(self, data):
            store.close()

    with pytest.raises(lim.Error, match="inside"):
        store.export(Sneaky())
    assert not store.closed
    store.get("t", "d")


def test_calls_release_the_gil(store):
    # A C call that blocks for a second (sync with a peer that never answers)
    # must let this thread run meanwhile.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    addr = "127.0.0.1:%d" % srv.getsockname()[1]
    done = threading.Event()

    def blocked():
        try:
            lim.sync_once(store, addr, timeout=2.5)
        except lim.Error:
            pass
        done.set()

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.1)
    last = time.monotonic()
    worst = 0.0
    while not done.is_set():
        now = time.monotonic()
        worst = max(worst, now - last)
        last = now
        sum(range(100))
    t.join()
    srv.close()
    assert worst < 0.8, f"main thread stalled {worst:.2f}s: the GIL was held"


def test_no_leaks(tmp_path):
    def cycle(i):
        with lim.open(tmp_path / f"l{i % 3}.db") as a:
            a.put("t", "d", {"i": i, "b": b"x" * 1000})
            with lim.Node(a) as n:
                n.status()
                list(a.keys("t"))
                a.get("t", "d")
                a.export(tmp_path / "l.pack")
                a.import_pack(tmp_path / "l.pack")
                list(a.log(limit=5))
                try:
                    a.get_field("t", "d", "nope")
                except lim.NotFound:
                    pass

    for i in range(10):  # warm up caches and allocators
        cycle(i)
    gc.collect()
    fds, tasks = _fds(), _tasks()
    with open("/proc/self/statm") as f:
        rss0 = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    for i in range(150):
        cycle(i)
    gc.collect()
    with open("/proc/self/statm") as f:
        rss1 = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert _fds() == fds
    wait_until(lambda: _tasks() == tasks, timeout=5)
    assert rss1 - rss0 < 40 * 1024 * 1024, (rss0, rss1)


def test_garbage_collected_without_close(tmp_path):
    gc.collect()
    fds = _fds()
    for i in range(20):
        s = lim.open(tmp_path / f"g{i}.db")
        n = lim.Node(s)
        s.put("t", "d", {"i": i})
        del s, n  # the node still holds the store: both go together
        gc.collect()
    assert _fds() == fds
    # A node dropped while its store stays open stops as well.
    with lim.open(tmp_path / "keep.db") as s:
        lim.Node(s)
        gc.collect()
        with lim.Node(s) as n2:  # a second node may start: the first is gone
            assert n2.address
