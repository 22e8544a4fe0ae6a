"""Store lifecycle, transactions, iteration, packs and the change log."""
import io
import os

import pytest

import lim


def test_open_properties_and_reopen(tmp_path):
    p = tmp_path / "s.db"
    with lim.open(p) as s:
        rid, key = s.replica_id, s.network_key
        assert len(rid) == 64 and int(rid, 16) >= 0
        assert isinstance(key, bytes) and len(key) == 32
        s.put("t", "d", {"a": 1})
        assert not s.closed
    assert s.closed
    with lim.open(str(p), synchronous="full") as s:
        assert (s.replica_id, s.network_key) == (rid, key)
        assert s.get("t", "d") == {"a": 1}
    with lim.open(p, network_key=key.hex()) as s:  # hex is fine; must match
        pass
    with pytest.raises(lim.Error):
        lim.open(p, network_key=b"\x01" * 32)
    k = bytes(range(32))
    with lim.open(tmp_path / "k.db", network_key=k) as s:
        assert s.network_key == k
    with lim.open(":memory:") as m:
        m.put("t", "d", {"x": 1})
        assert m.get("t", "d") == {"x": 1}
    assert lim.c_version() == lim.__version__


def test_transaction_commits_one_change(store):
    with store.transaction() as s:
        assert s is store and store.in_transaction
        store.put("t", "a", {"x": 1})
        store.incr("t", "a", "n", 2)
        store.set_add("t", "b", "tags", "q")
        store.delete("t", "a", "x")
        assert store.get("t", "a") == {"n": 2}  # reads see the open transaction
    assert not store.in_transaction
    log = list(store.log())
    assert len(log) == 1 and log[0].seq == 1
    assert store.get("t", "a") == {"n": 2}
    assert store.get("t", "b") == {"tags": frozenset({"q"})}


def test_transaction_rolls_back_on_exception(store):
    store.put("t", "a", {"x": 1})
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put("t", "a", {"x": 2, "y": 3})
            store.incr("t", "c", "n")
            raise RuntimeError("boom")
    assert store.get("t", "a") == {"x": 1}
    assert store.get("t", "c") is None
    assert len(list(store.log())) == 1
    with store.transaction():  # usable again afterwards
        store.put("t", "a", {"x": 5})
    assert store.get("t", "a") == {"x": 5}


def test_empty_transaction(store):
    with store.transaction():
        pass
    assert list(store.log()) == []


def test_keys_iteration(store):
    names = [f"doc{i:04d}" for i in range(700)]  # several pages
    with store.transaction():
        for n in reversed(names):
            store.put("c", n, {"i": 1})
        store.put("c", "other", {"i": 1})
        store.put("d", "x", {"i": 1})
    it = store.keys("c")
    assert iter(it) is it
    assert list(it) == names + ["other"]
    assert list(store.keys("c", prefix="doc06")) == names[600:700]
    assert list(store.keys("c", prefix="doc0699")) == ["doc0699"]
    assert list(store.keys("c", prefix="zzz")) == []
    assert list(store.keys("c", after="doc0697")) == ["doc0698", "doc0699", "other"]
    assert list(store.keys("empty")) == []
    store.delete("c", "doc0000")
    assert next(iter(store.keys("c"))) == "doc0001"
    # Interleaving writes with iteration is fine (keys are fetched in pages).
    seen = []
    for k in store.keys("c", prefix="doc00"):
        seen.append(k)
        store.put("c", "zz" + k, {"i": 2})
    assert len(seen) == 99


def test_digest_vv_export_import(tmp_path, pair):
    a, b = pair
    a.put("t", "d", {"x": 1, "b": b"\x00"})
    a.incr("t", "d", "n", 3)
    assert a.digest() != b.digest()
    assert len(a.digest()) == 64
    pack = tmp_path / "all.pack"
    a.export(pack)
    assert pack.read_bytes().startswith(b"LIMPACK 1\n")
    st = b.import_pack(pack)
    assert st == lim.ApplyStats(applied=2, duplicates=0)
    assert a.digest() == b.digest()
    assert b.version_vector() == {a.replica_id: 2}
    assert b.import_(str(pack)) == (0, 2)  # duplicates are no-ops
    # Incremental export from a version vector, through file objects.
    vv = b.version_vector()
    a.set("t", "d", "x", 2)
    buf = io.BytesIO()
    a.export(buf, since=vv)
    assert buf.getvalue().count(b"\nlim1 ") == 1
    buf.seek(0)
    assert b.import_pack(buf).applied == 1
    assert b.get("t", "d") == a.get("t", "d")
    assert a.changes_since(b.version_vector()) == []
    assert len(a.changes_since()) == 3
    assert len(a.changes_since({a.replica_id: 1})) == 2


def test_import_is_all_or_nothing(tmp_path, pair):
    a, b = pair
    a.put("t", "d", {"x": 1})
    a.put("t", "d", {"x": 2})
    data = io.BytesIO()
    a.export(data)
    truncated = data.getvalue()[:-10]
    with pytest.raises(lim.Malformed):
        b.import_pack(io.BytesIO(truncated))
    assert b.version_vector() == {}


def test_export_callback_exception_is_reraised(store):
    store.put("t", "d", {"x": 1})

    class Broken:
        def write(self, data):
            raise OSError("disk full (test)")

    with pytest.raises(OSError, match="disk full"):
        store.export(Broken())

    class BrokenReader:
        def read(self, n):
            raise RuntimeError("reader broke")

    with pytest.raises(RuntimeError, match="reader broke"):
        store.import_pack(BrokenReader())


def test_apply_and_log(pair):
    a, b = pair
    for i in range(5):
        a.put("t", "d", {"i": i})
    log = list(a.log())
    assert [e.seq for e in log] == [1, 2, 3, 4, 5]
    assert all(e.author == a.replica_id for e in log)
    assert all(e.change.startswith(b"lim1 " + a.replica_id.encode()) for e in log)
    assert log[0].hlc < log[-1].hlc and abs(log[0].timestamp - __import__("time").time()) < 600
    assert [e.seq for e in a.log(limit=2)] == [4, 5]
    assert list(a.log(limit=0)) == []
    for e in log:
        assert b.apply(e.change) == (1, 0)
    assert b.apply(log[0].change) == (0, 1)
    assert b.digest() == a.digest()
    assert [e.change for e in b.log()] == [e.change for e in log]


def test_verify_and_rebuild(store):
    store.put("t", "d", {"x": 1})
    store.verify()
    store.rebuild()
    store.verify()
    assert store.get("t", "d") == {"x": 1}


def test_path_like_and_repr(tmp_path):
    with lim.open(os.fspath(tmp_path / "r.db")) as s:
        assert "open" in repr(s)
        assert "people" in repr(s["people"])
    assert "closed" in repr(s)
