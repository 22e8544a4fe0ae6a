"""The golden vectors of protocol-spec/vectors, checked through the Python
binding's public API (libcore/tests/test_vectors.c does the same in C, and
bindings/go/vectors_test.go in Go): every change line hashes and links to the
recorded values, carries the recorded signature and names the link of the
change before it as prev, the lines apply one by one and come
back byte-identical from the log, and pack.lim imported into an empty store
gives the recorded digest, version vector and documents, and exports back to
pack.lim byte for byte.

The binding exposes no change hash or link, so those two are recomputed with
hashlib (BLAKE2b-256 by changes.md §6); everything the binding does expose
(digest, version vector, log with seq and HLC, changes_since, export) is
read through it.

The vector files are required: the tests fail, not skip, without them."""
import base64
import hashlib
import io
import json
from pathlib import Path
from urllib.parse import unquote

import pytest

import lim

VECTORS = Path(__file__).resolve().parents[3] / "protocol-spec" / "vectors"
HASH_CONTEXT = b"liblim change v1\0"
LINK_CONTEXT = b"liblim link v1\0"


def _read(name):
    path = VECTORS / name
    if not path.is_file():
        pytest.fail(f"golden vector file {path} is missing")
    return path.read_bytes()


def _expected():
    """expected.txt as {"hash": {seq: hex}, "sig": {...}, "link": {...},
    "digest": hex, "vv": line, "get": [(coll, doc, json_text)]}."""
    out = {"hash": {}, "sig": {}, "link": {}, "digest": None, "vv": None, "get": []}
    for raw in _read("expected.txt").decode("utf-8").splitlines():
        if not raw or raw.startswith("#"):
            continue
        kind, _, rest = raw.partition(" ")
        if kind in ("hash", "sig", "link"):
            seq, hexval = rest.split(" ")
            out[kind][int(seq)] = hexval
        elif kind in ("digest", "vv"):
            out[kind] = rest
        elif kind == "get":
            coll, doc, js = rest.split(" ", 2)
            out["get"].append((unquote(coll, errors="strict"), unquote(doc, errors="strict"), js))
        else:
            pytest.fail(f"expected.txt: unknown line {raw!r}")
    assert out["digest"] and out["vv"] and out["get"], "expected.txt lacks digest, vv or get lines"
    return out


def _change_lines():
    data = _read("changes.txt")
    assert data.endswith(b"\n"), "changes.txt: each change line ends with LF"
    lines = data[:-1].split(b"\n")
    assert len(lines) == 4
    return lines


def _documented(v):
    """liblim's JSON as the binding documents get() results: {"$base64": s}
    -> bytes, arrays (sets) -> frozenset, objects -> dict."""
    if isinstance(v, dict):
        if len(v) == 1 and isinstance(v.get("$base64"), str):
            return base64.b64decode(v["$base64"], validate=True)
        return {k: _documented(x) for k, x in v.items()}
    if isinstance(v, list):
        return frozenset(_documented(x) for x in v)
    return v


def _same(a, b):
    """Equal with types: True != 1, 1 != 1.0 (plain == would merge them)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, frozenset):
        return len(a) == len(b) and all(any(_same(x, y) for y in b) for x in a)
    return a == b


def test_vectors_changes_hash_and_signature():
    exp = _expected()
    prev = "00" * 32
    for n, line in enumerate(_change_lines(), 1):
        body, sep, sig = line.rpartition(b" ")
        assert sep, f"change {n}: no signature token"
        fields = body.split(b" ")
        assert fields[0] == b"lim1"
        seq = int(fields[2])
        assert seq == n
        h = hashlib.blake2b(HASH_CONTEXT + body, digest_size=32).hexdigest()
        assert h == exp["hash"][seq], f"hash of change {seq}"
        assert sig.decode("ascii") == exp["sig"][seq], f"signature of change {seq}"
        assert fields[4].decode("ascii") == prev, f"prev of change {seq}"
        link = hashlib.blake2b(LINK_CONTEXT + bytes.fromhex(h) + bytes.fromhex(sig.decode("ascii")),
                               digest_size=32).hexdigest()
        assert link == exp["link"][seq], f"link of change {seq}"
        prev = link
    assert sorted(exp["hash"]) == sorted(exp["sig"]) == sorted(exp["link"]) == [1, 2, 3, 4]


def test_vectors_apply_one_by_one_and_log():
    exp = _expected()
    lines = _change_lines()
    with lim.open(":memory:") as store:
        for n, line in enumerate(lines, 1):
            st = store.apply(line)
            assert (st.applied, st.duplicates) == (1, 0), f"apply change {n}"
        log = list(store.log())
        assert [e.change for e in log] == lines
        assert [(e.author, e.seq) for e in log] == [(exp["vv"].split()[0], s) for s in (1, 2, 3, 4)]
        assert store.digest() == exp["digest"]
        store.verify()


def test_vectors_pack_gives_expected_state():
    exp = _expected()
    pack = VECTORS / "pack.lim"
    _read("pack.lim")
    with lim.open(":memory:") as store:
        st = store.import_pack(pack)
        assert st.applied == 4
        assert st.duplicates == 0
        assert store.digest() == exp["digest"]
        author, seq = exp["vv"].split(" ")
        assert store.version_vector() == {author: int(seq)}
        for coll, doc, js in exp["get"]:
            want = _documented(json.loads(js))
            got = store.get(coll, doc)
            assert got is not None, f"get {coll}/{doc}: not found"
            assert _same(got, want), f"get {coll}/{doc}: {got!r} != {want!r}"
        with pytest.raises(lim.NotFound):
            store.get_field("notes", "n1", "draft")
        store.verify()


def test_vectors_log_carries_recorded_hlc():
    """The HLC the binding reports for each change is the one of changes.json
    (the log's hlc comes from the stored change, not from this replica)."""
    recorded = json.loads(_read("changes.json").decode("utf-8"))["changes"]
    with lim.open(":memory:") as store:
        store.import_pack(VECTORS / "pack.lim")
        got = [(e.seq, e.hlc) for e in store.log()]
    assert got == [(c["seq"], int(c["hlc"], 16)) for c in recorded]


def test_vectors_export_is_pack(tmp_path):
    """changes.md §12: a pack lists the held changes in §11 order, each line
    as held, then END with the count and checksum of exactly those lines. A
    store that imported pack.lim holds nothing else, so its export must be
    pack.lim byte for byte, to a file path and to a file object alike, and
    again after the store file is closed and reopened."""
    want = _read("pack.lim")
    exp = _expected()
    db = tmp_path / "v.db"
    with lim.open(db) as store:
        st = store.import_pack(VECTORS / "pack.lim")
        assert (st.applied, st.duplicates) == (4, 0)
        out = tmp_path / "out.lim"
        store.export(out)
        assert out.read_bytes() == want
        buf = io.BytesIO()
        store.export(buf)
        assert buf.getvalue() == want
        assert store.changes_since() == _change_lines()
        assert store.digest() == exp["digest"]
    with lim.open(db) as store:
        again = tmp_path / "again.lim"
        store.export(again)
        assert again.read_bytes() == want
        assert store.digest() == exp["digest"]


def test_vectors_export_since_feeds_a_partial_store(tmp_path):
    """An export since {author: 2} holds changes 3 and 4 as recorded, and a
    store holding only changes 1 and 2 imports it (the binding checks the
    END checksum) into the recorded digest; its own export is pack.lim."""
    lines = _change_lines()
    exp = _expected()
    author = exp["vv"].split(" ")[0]
    with lim.open(":memory:") as full:
        full.import_pack(VECTORS / "pack.lim")
        part = tmp_path / "part.lim"
        full.export(part, since={author: 2})
    data = part.read_bytes()
    assert data.startswith(b"LIMPACK 1\n" + lines[2] + b"\n" + lines[3] + b"\nEND 2 ")
    with lim.open(":memory:") as store:
        for line in lines[:2]:
            store.apply(line)
        assert store.digest() != exp["digest"]
        st = store.import_pack(part)
        assert (st.applied, st.duplicates) == (2, 0)
        assert store.digest() == exp["digest"]
        buf = io.BytesIO()
        store.export(buf)
        assert buf.getvalue() == _read("pack.lim")
