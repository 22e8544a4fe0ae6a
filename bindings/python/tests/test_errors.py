"""Every exception class, raised for its cause, carrying the C code and message."""
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import lim
from lim._lim import lib


def check_error(excinfo, cls, code):
    e = excinfo.value
    assert type(e) is cls
    assert isinstance(e, lim.Error)
    assert e.code == code == cls.code
    assert e.name == lib_name(code)
    assert e.message and str(e) == e.message
    return e


def lib_name(code):
    from lim._lim import ffi
    return ffi.string(lib.lim_error_name(code)).decode()


def test_every_c_code_has_a_class():
    codes = [v for k, v in vars(lib).items() if k.startswith("LIM_E") and isinstance(v, int)]
    codes.append(lib.LIM_ERROR)
    for code in codes:
        if code == lib.LIM_EITEROVER:
            continue  # end of iteration, never raised
        cls = lim.error_class(code)
        assert cls.code == code, lib_name(code)
        assert cls.name == lib_name(code)
    assert lim.error_class(-999) is lim.Error
    assert issubclass(lim.NotFound, KeyError)
    assert issubclass(lim.InvalidInput, ValueError)
    assert issubclass(lim.StorageError, OSError)
    assert issubclass(lim.OutOfMemory, MemoryError)
    for cls in (lim.Malformed, lim.HashMismatch, lim.SignatureError, lim.Gap,
                lim.Equivocation, lim.ClockSkew):
        assert issubclass(cls, lim.ChangeRejected)
    # Classes that cannot be provoked from a test still carry code and message.
    for cls in (lim.Error, lim.OutOfMemory):
        e = cls("boom")
        assert e.code == cls.code and e.message == "boom" and str(e) == "boom"


def test_not_found(store, tmp_path):
    store.put("t", "d", {"a": 1})
    with pytest.raises(lim.NotFound) as ei:
        store.get_field("t", "d", "nope")
    check_error(ei, lim.NotFound, -3)
    with pytest.raises(KeyError):
        store.get_field("t", "other", "a")
    with pytest.raises(lim.NotFound) as ei:
        lim.open(tmp_path / "missing.db", create=False)
    check_error(ei, lim.NotFound, -3)
    assert not (tmp_path / "missing.db").exists()


def test_already_exists(store):
    with lim.Node(store) as node:
        node.add_peer("127.0.0.1:9")
        with pytest.raises(lim.AlreadyExists) as ei:
            node.add_peer("127.0.0.1:9")
        check_error(ei, lim.AlreadyExists, -4)
        with pytest.raises(lim.AlreadyExists):
            lim.Node(store)  # one node per store


def test_invalid_input(store):
    with pytest.raises(lim.InvalidInput) as ei:
        store.put("", "d", {"a": 1})  # empty collection name: refused by C
    check_error(ei, lim.InvalidInput, -5)
    with pytest.raises(lim.InvalidInput) as ei:
        store.put("t", "d", {"a": {"$base64": "not base64!"}})
    check_error(ei, lim.InvalidInput, -5)
    with pytest.raises(lim.InvalidInput):
        store.put("t", "x" * 2000, {"a": 1})
    with pytest.raises(lim.InvalidInput):
        store.get_field("t", "d", "a..b")
    with pytest.raises(ValueError):
        lim.Node(store, allow=["not-hex"])
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d\x00x", {"a": 1})
    with pytest.raises(lim.InvalidInput):
        lim.open(":memory:", network_key=b"short")


def _two_changes(tmp_path):
    a = lim.open(tmp_path / "src.db")
    a.put("t", "d", {"v": 1})
    a.put("t", "d", {"v": 2})
    changes = a.changes_since()
    a.close()
    return changes


def test_malformed(store, tmp_path):
    with pytest.raises(lim.Malformed) as ei:
        store.apply(b"lim1 garbage")
    check_error(ei, lim.Malformed, -6)
    pack = tmp_path / "bad.pack"
    pack.write_bytes(b"LIMPACK 1\nnot a change\nEND 1 00\n")
    with pytest.raises(lim.Malformed):
        store.import_pack(pack)
    pack.write_bytes(b"NOTAPACK\n")
    with pytest.raises(lim.Malformed):
        store.import_pack(pack)


def test_hash_mismatch(store, tmp_path):
    c1, c2 = _two_changes(tmp_path)
    store.apply(c1)
    fields = c2.split(b" ")
    fields[4] = b"0" * 64  # prev no longer names change 1
    with pytest.raises(lim.HashMismatch) as ei:
        store.apply(b" ".join(fields))
    check_error(ei, lim.HashMismatch, -7)


def test_signature(store, tmp_path):
    c1, _ = _two_changes(tmp_path)
    last = c1[-1:]
    bad = c1[:-1] + (b"0" if last != b"0" else b"1")
    with pytest.raises(lim.SignatureError) as ei:
        store.apply(bad)
    check_error(ei, lim.SignatureError, -8)
    assert store.version_vector() == {}


def test_gap(store, tmp_path):
    _, c2 = _two_changes(tmp_path)
    with pytest.raises(lim.Gap) as ei:
        store.apply(c2)
    check_error(ei, lim.Gap, -9)


def test_equivocation(store, tmp_path):
    # Two copies of one identity each sign a different change number 1.
    a = lim.open(tmp_path / "a.db")
    a.close()
    shutil.copy(tmp_path / "a.db", tmp_path / "a2.db")
    with lim.open(tmp_path / "a.db") as a, lim.open(tmp_path / "a2.db") as a2:
        assert a.replica_id == a2.replica_id
        a.put("t", "d", {"v": "one"})
        a2.put("t", "d", {"v": "two"})
        (c1,), (c1b,) = a.changes_since(), a2.changes_since()
    assert c1 != c1b
    assert store.apply(c1).applied == 1
    assert store.apply(c1).duplicates == 1
    with pytest.raises(lim.Equivocation) as ei:
        store.apply(c1b)
    check_error(ei, lim.Equivocation, -10)
    assert store.get("t", "d") == {"v": "one"}


def test_clock_skew(store, tmp_path):
    with lim.open(tmp_path / "future.db", clock=lambda: time.time() + 3600) as f:
        f.put("t", "d", {"v": 1})
        (c,) = f.changes_since()
    with pytest.raises(lim.ClockSkew) as ei:
        store.apply(c)
    check_error(ei, lim.ClockSkew, -11)
    # A store that allows more drift takes it.
    with lim.open(":memory:", max_drift=7200) as lenient:
        assert lenient.apply(c).applied == 1


def test_not_a_store(tmp_path):
    p = tmp_path / "text.db"
    p.write_text("hello, I am not a database\n" * 100)
    with pytest.raises(lim.NotAStore) as ei:
        lim.open(p)
    check_error(ei, lim.NotAStore, -12)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE x(y)")
    con.commit()
    con.close()
    with pytest.raises(lim.NotAStore):
        lim.open(other)


def test_version(tmp_path):
    p = tmp_path / "s.db"
    lim.open(p).close()
    con = sqlite3.connect(p)
    con.execute("PRAGMA user_version = 999")
    con.commit()
    con.close()
    with pytest.raises(lim.VersionError) as ei:
        lim.open(p)
    check_error(ei, lim.VersionError, -13)


def test_corrupt(tmp_path):
    p = tmp_path / "s.db"
    with lim.open(p) as s:
        s.incr("t", "d", "n", 5)
        s.verify()
    con = sqlite3.connect(p)
    assert con.execute("UPDATE fields SET ctr_sum = 999").rowcount == 1
    con.commit()
    con.close()
    with lim.open(p) as s:
        assert s.get_field("t", "d", "n") == 999
        with pytest.raises(lim.Corrupt) as ei:
            s.verify()
        check_error(ei, lim.Corrupt, -14)
        s.rebuild()
        s.verify()
        assert s.get_field("t", "d", "n") == 5


def test_storage_error(tmp_path):
    with pytest.raises(lim.StorageError) as ei:
        lim.open(tmp_path / "no" / "such" / "dir" / "s.db")
    e = check_error(ei, lim.StorageError, -15)
    assert isinstance(e, OSError)
    with lim.open(":memory:") as s:
        with pytest.raises(lim.StorageError):
            lim.sync_once(s, f"127.0.0.1:{_closed_port()}", timeout=5)


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_failed_after_io_error(tmp_path):
    # A write beyond RLIMIT_FSIZE makes SQLite's commit fail with an I/O
    # error: the store goes into its failed state. In a child process so the
    # limit does not touch the test run.
    code = textwrap.dedent("""
        import os, resource, signal, sys
        import lim
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        d = sys.argv[1]
        s = lim.open(os.path.join(d, "s.db"))
        s.put("t", "d", {"a": 1})
        size = max(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 4096, resource.RLIM_INFINITY))
        try:
            s.put("t", "d", {"big": "x" * 500000})
        except (lim.Failed, lim.StorageError) as e:
            print("first", type(e).__name__)
        try:
            s.put("t", "d", {"a": 2})
        except lim.Failed as e:
            assert e.code == -16 and e.name == "LIM_EFAILED" and e.message
            print("then Failed")
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "then Failed" in out.stdout, out.stdout + out.stderr
    with lim.open(tmp_path / "s.db") as s:  # reopening recovers
        assert s.get("t", "d") == {"a": 1}
        s.verify()


def test_transaction_error(store):
    with store.transaction():
        with pytest.raises(lim.TransactionError) as ei:
            with store.transaction():
                pass
        check_error(ei, lim.TransactionError, -17)
    # From C: commit without begin.
    with pytest.raises(lim.TransactionError) as ei:
        store._commit()
    check_error(ei, lim.TransactionError, -17)


def test_auth_error(tmp_path):
    with lim.open(tmp_path / "a.db") as a, lim.open(tmp_path / "b.db") as b:
        with lim.Node(a) as node:
            with pytest.raises(lim.AuthError) as ei:
                lim.sync_once(b, node.address, timeout=10)
            check_error(ei, lim.AuthError, -19)
        with lim.open(tmp_path / "c.db", network_key=a.network_key) as c:
            with lim.Node(a, allow=[]) as node:  # an empty list: nobody
                with pytest.raises(lim.AuthError):
                    lim.sync_once(c, node.address, timeout=10)
            with lim.Node(a, allow=[c.replica_id]) as node:
                lim.sync_once(c, node.address, timeout=10)
                with pytest.raises(lim.AuthError):
                    lim.sync_once(b, node.address, timeout=10)


def test_protocol_error(store):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        conn, _ = srv.accept()
        try:
            conn.sendall(b"HELLO this is not the protocol\n")
            conn.recv(4096)
        except OSError:
            pass
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        with pytest.raises(lim.ProtocolError) as ei:
            lim.sync_once(store, "127.0.0.1:%d" % srv.getsockname()[1], timeout=10)
        check_error(ei, lim.ProtocolError, -20)
    finally:
        t.join(10)
        srv.close()


def test_store_closed(tmp_path):
    s = lim.open(tmp_path / "s.db")
    s.close()
    with pytest.raises(lim.StoreClosed) as ei:
        s.get("t", "d")
    check_error(ei, lim.StoreClosed, -21)


def test_open_failure_leaves_no_file(tmp_path):
    with pytest.raises(lim.InvalidInput):
        lim.open(tmp_path / "x.db", synchronous="sometimes")
    assert not os.path.exists(tmp_path / "x.db")
