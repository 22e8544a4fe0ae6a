"""Value parity between the bindings that a document-level scenario would
hide: the same write accepted by one language's API must be accepted by the
other's."""
from __future__ import annotations

from harness import LANGS, S, tag


def test_put_string_with_nul_in_every_binding(make_net):
    """put() takes a string holding U+0000 in both bindings (they write it
    with lim_db_set in the same change: lim_db_put_json refuses it)."""
    net = make_net(LANGS, [])
    net.open_all()
    for lang in ("python", "go"):
        net[lang].put("t", "nul", {"s": "a\x00b", "o": {"p": "\x00"}})
        assert net[lang].get("t", "nul") == tag({"s": "a\x00b", "o": {"p": "\x00"}})


def test_set_string_with_nul_in_every_binding(make_net):
    """Set (lim_db_set) takes U+0000 in both bindings; `lim put` refuses it
    by design (SQLite's JSON functions cut such strings short)."""
    net = make_net(LANGS, [("python", "c"), ("go", "c")])
    net.open_all()
    for lang in ("python", "go"):
        net[lang].set("t", "nul", lang, "a\x00b")
        net[lang].sadd("t", "nul", "set", f"{lang}\x00")
    net.start_all()
    net.wait_converged()
    net.check_docs([("t", "nul")], {("t", "nul"): {
        "python": "a\x00b", "go": "a\x00b", "set": S("python\x00", "go\x00")}})
