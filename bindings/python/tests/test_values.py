"""Round trips of every type through put/get, set/get_field, counters and sets."""
import math

import pytest

import lim

SCALARS = [
    None, True, False, 0, 1, -1, 42, (1 << 63) - 1, -(1 << 63),
    0.0, -0.0, 1.0, 1.5, -2.25, 1e300, 5e-324, 1e-7, 123456789.125, 1e17,
    "", "hello", "naïve ☃ 𝄞", "quote\" back\\slash\nnew\ttab\x01", "a\x00b",
    b"", b"\x00\x01\xff", bytes(range(256)),
]


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_put_get_round_trip(store, value):
    store.put("t", "doc", {"v": value, "nested": {"deeper": {"v": value}}})
    doc = store.get("t", "doc")
    assert same(doc["v"], value)
    assert same(doc["nested"]["deeper"]["v"], value)
    assert same(store.get_field("t", "doc", "v"), value)
    assert same(store.get_field("t", "doc", "nested.deeper.v"), value)
    assert same(store.get_field("t", "doc", ("nested", "deeper", "v")), value)


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_set_round_trip(store, value):
    store.set("t", "doc", "a.b", value)
    assert same(store.get_field("t", "doc", "a.b"), value)
    assert same(store.get("t", "doc")["a"]["b"], value)


def test_whole_document(store):
    doc = {"name": "Ada", "born": 1815, "ratio": 0.5, "alive": False, "photo": b"\x89PNG",
           "nothing": None, "addr": {"city": "London", "geo": {"lat": 51.5, "lon": -0.125}}}
    store.put("people", "ada", doc)
    assert store.get("people", "ada") == doc
    assert store.get_field("people", "ada", "addr") == doc["addr"]
    assert store.get("people", "nobody") is None


def test_put_merges(store):
    store.put("t", "d", {"a": 1, "o": {"x": 1}})
    store.put("t", "d", {"b": 2, "o": {"y": 2}})
    assert store.get("t", "d") == {"a": 1, "b": 2, "o": {"x": 1, "y": 2}}


def test_counter(store):
    store.incr("t", "d", "n", 5)
    store.incr("t", "d", "n", -2)
    store.incr("t", "d", "n")
    assert store.get_field("t", "d", "n") == 4
    assert type(store.get_field("t", "d", "n")) is int
    assert store.get("t", "d") == {"n": 4}
    store.incr("t", "d", "big", (1 << 63) - 1)
    assert store.get_field("t", "d", "big") == (1 << 63) - 1
    with pytest.raises(lim.InvalidInput):
        store.incr("t", "d", "n", 1 << 63)
    with pytest.raises(lim.InvalidInput):
        store.incr("t", "d", "n", 1.5)


def test_set_field(store):
    elems = [None, True, 7, 2.5, "s", b"\x00b"]
    for e in elems:
        store.set_add("t", "d", "tags", e)
    store.set_add("t", "d", "tags", "s")  # duplicate
    got = store.get_field("t", "d", "tags")
    assert isinstance(got, frozenset)
    assert got == frozenset(elems)
    assert store.get("t", "d")["tags"] == frozenset(elems)
    store.set_remove("t", "d", "tags", "s")
    store.set_remove("t", "d", "tags", b"\x00b")
    assert store.get_field("t", "d", "tags") == frozenset([None, True, 7, 2.5])


def test_int_range_and_bad_values(store):
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"v": 1 << 63})
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"v": -(1 << 63) - 1})
    with pytest.raises(lim.InvalidInput):
        store.set("t", "d", "v", 1 << 64)
    with pytest.raises(ValueError):  # InvalidInput is a ValueError
        store.put("t", "d", {"v": float("nan")})
    with pytest.raises(lim.InvalidInput):
        store.set("t", "d", "v", float("inf"))
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"v": [1, 2]})
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"v": {1, 2}})
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {1: "non-str key"})
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"v": object()})
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", "not a mapping")
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"v": "\ud800"})  # lone surrogate
    with pytest.raises(lim.InvalidInput):
        store.put("t", "d", {"a.b": 1})  # '.' separates path segments
    assert store.get("t", "d") is None  # nothing half-applied


def test_delete(store):
    store.put("t", "d", {"a": 1, "o": {"x": 1, "y": 2}})
    store.delete("t", "d", "o.x")
    assert store.get("t", "d") == {"a": 1, "o": {"y": 2}}
    store.delete("t", "d", "o")
    assert store.get("t", "d") == {"a": 1}
    store.delete("t", "d")
    assert store.get("t", "d") is None
    store.put("t", "d", {"b": 2})  # a later write brings it back
    assert store.get("t", "d") == {"b": 2}


def test_get_field_default(store):
    store.put("t", "d", {"a": 1})
    assert store.get_field("t", "d", "nope", None) is None
    assert store.get_field("t", "nodoc", "a", 7) == 7
    with pytest.raises(KeyError):
        store.get_field("t", "d", "nope")


def test_collection_view(store):
    people = store["people"]
    people["ada"] = {"name": "Ada", "n": 1}
    people["bob"] = {"name": "Bob"}
    assert people["ada"] == {"name": "Ada", "n": 1}
    people["ada"] = {"name": "Ada L."}  # replaces the document
    assert people["ada"] == {"name": "Ada L."}
    assert "ada" in people and "zed" not in people
    assert list(people) == ["ada", "bob"]
    assert dict(people.items()) == {"ada": {"name": "Ada L."}, "bob": {"name": "Bob"}}
    assert people.get("zed") is None
    with pytest.raises(KeyError):
        people["zed"]
    del people["bob"]
    assert list(people) == ["ada"]
    with pytest.raises(lim.NotFound):
        del people["bob"]
