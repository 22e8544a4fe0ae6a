#!/usr/bin/env python3
"""Write the seed corpora fuzz/corpus/<target>/seed-* from protocol-spec/.

Seeds come from the golden vectors (changes.txt, pack.lim), the transcripts
(their C: lines) and a few hand-written inputs. Deterministic: rerunning it
rewrites the same files. It also rewrites the regression inputs that are
built from the vectors (regress() below), so that after the vectors change
(a new chain link, say) every input that quotes a golden change quotes the
current one. Other files (regression inputs found by a fuzzer, inputs
merged in by `fuzz/run --merge`) are left alone.

    python3 fuzz/make_seeds.py
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "protocol-spec")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

AUTHOR0 = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
OP_ARITY = {"S": 5, "D": 4, "X": 3, "N": 5, "A": 5, "R": 6}


def read(*parts):
    with open(os.path.join(SPEC, *parts), "rb") as f:
        return f.read()


def changes():
    return [l for l in read("vectors", "changes.txt").split(b"\n") if l]


def transcripts():
    d = os.path.join(SPEC, "transcripts")
    for name in sorted(os.listdir(d)):
        if name.endswith(".txt"):
            lines = read("transcripts", name).decode("utf-8").split("\n")
            yield name[:-4], [l[3:].encode("utf-8") for l in lines if l.startswith("C: ")]


def ops_of(change):
    """The ops of a change line, each as text without the leading space."""
    toks = change.split(b" ")
    nops = int(toks[5])
    i, out = 6, []
    for _ in range(nops):
        k = OP_ARITY[toks[i].decode()]
        out.append(b" ".join(toks[i:i + k]))
        i += k
    return out


def forge(change):
    """The change with the last hex digit of its signature altered."""
    return change[:-1] + (b"1" if change.endswith(b"0") else b"0")


written = {}


def write(target, fn, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fn), "wb") as f:
        f.write(data)


def seed(target, name, data):
    fn = "seed-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    write(target, fn, data)
    written.setdefault(target, set()).add(fn)


def regress(target, name, data):
    """A regression input that quotes the vectors; never removed here."""
    write(target, "regress-" + name, data)


def main():
    ch = changes()
    pack = read("vectors", "pack.lim")

    # fuzz_line: every client line of every transcript, CH with each golden
    # change, and one of each message type.
    for name, lines in transcripts():
        for i, l in enumerate(lines):
            if not l.startswith(b"<filler"):
                seed("fuzz_line", "%s-%d" % (name, i), l)
    for i, c in enumerate(ch):
        seed("fuzz_line", "ch-%d" % (i + 1), b"CH " + c)
    for i, l in enumerate([
        b"VV " + AUTHOR0.encode() + b":4 " + b"e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0:12",
        b"ACK 3", b"END 0", b"PING 1700000000000", b"PONG t1", b"STATE {}", b"SYNCED", b"STATUS",
        b"BYE", b"ERR 409 expected AUTH", b"HELLO 1 " + AUTHOR0.encode() + b" " + b"00" * 32,
    ]):
        seed("fuzz_line", "msg-%d" % i, l)

    # fuzz_change: the golden changes, and a few broken ones.
    for i, c in enumerate(ch):
        seed("fuzz_change", "vector-%d" % (i + 1), c)
    seed("fuzz_change", "op-set", b"S notes n1 title sHi%20there")
    seed("fuzz_change", "op-remove", ops_of(ch[2])[0])
    seed("fuzz_change", "vector-1-badsig", forge(ch[0]))
    seed("fuzz_change", "vector-2-trailing-space", ch[1] + b" ")

    # fuzz_pack: the golden pack, the empty pack, and damaged packs.
    seed("fuzz_pack", "vectors", pack)
    seed("fuzz_pack", "empty", b"LIMPACK 1\nEND 0 c6059746b9f192d2573bc0914c99bc3930354393567dd1924eadd97124526c5c\n")
    plines = pack.split(b"\n")
    seed("fuzz_pack", "truncated", b"\n".join(plines[:3]) + b"\n")
    seed("fuzz_pack", "no-final-lf", pack[:-1])
    seed("fuzz_pack", "reordered", b"\n".join([plines[0], plines[2], plines[1]] + plines[3:]))
    seed("fuzz_pack", "twice", b"\n".join(plines[:5] + plines[1:5] + plines[5:]))

    # fuzz_json: documents, and coll\0doc\0json inputs.
    docs = [
        b'{"title":"Hi, 100%\\tsure\\nna\xc3\xafve \xe2\x9c\x93","count":-42,"big":9223372036854775807,'
        b'"ratio":-0.5,"done":true,"draft":false,"parent":null,"blob":{"$base64":"AP8Qqw=="},'
        b'"empty":"","meta":{"author":"Ada Lovelace"}}',
        b'{"a":{"b":{"c":{"d":1.5e300}}},"e":[1,2]}',
        b'{"x":1e999}',
        b'{"n":-0.0,"m":5e-324,"k":123456789012345678901234567890}',
        b'{"s":"\\u0000\\ud83d\\ude00\\u00e9","$base64":"AA=="}',
        b'{"b":{"$base64":"not base64!"},"c":{"$base64":"AA==","x":1}}',
        b'{"a.b":1}',
        b'{"":1}',
        b'{}',
        b'{"a":{}}',
        b'[1,{"a":1}]',
        b'"just a string"',
        b'{"a":1,"a":2}',
        b'{"deep":' + b'{"d":' * 40 + b'1' + b'}' * 41,
    ]
    for i, d in enumerate(docs):
        seed("fuzz_json", "doc-%d" % i, d)
    seed("fuzz_json", "named", b"notes\0draft 1\0" + docs[0])
    seed("fuzz_json", "named-empty-coll", b"\0d\0{\"a\":1}")
    seed("fuzz_json", "named-bad-utf8", b"c\xff\0d\0{\"a\":1}")

    # fuzz_session: mode byte + client bytes. Post-handshake seeds take the
    # lines after the client's AUTH; "prehs" seeds (mode & 4) every line.
    for name, lines in transcripts():
        lines = [l for l in lines if not l.startswith(b"<filler")]
        auth = [i for i, l in enumerate(lines) if l.startswith(b"AUTH ")]
        live = lines[auth[0] + 1:] if auth else []
        if live:
            body = b"".join(l + b"\n" for l in live)
            for mode in (b"0", b"1", b"2", b"3", b"8"):
                seed("fuzz_session", "%s-mode%s" % (name, mode.decode()), mode + body)
        seed("fuzz_session", "%s-prehs" % name, b"4" + b"".join(l + b"\n" for l in lines))
    seed("fuzz_session", "catchup-acks", b"0VV\nACK 2\nACK 1\nSYNCED\nPING x\nSTATUS\n")
    seed("fuzz_session", "vv-then-changes", b"3VV " + AUTHOR0.encode() + b":4\n" +
         b"".join(b"CH " + c + b"\n" for c in ch) + b"END 4\nSYNCED\nBYE\n")
    seed("fuzz_session", "long-line", b"0" + b"x" * 3000)

    # fuzz_session_signed: the golden changes' ops re-signed by the harness
    # (author 0 again, so the set-remove tags still name real adds), and
    # mixes that exercise every control bit.
    lines = [b"\x40" + b"\t".join(ops_of(c)) for c in ch]
    seed("fuzz_session_signed", "vectors", b"\n".join(lines))
    seed("fuzz_session_signed", "vectors-one-batch", b"\n".join([b"\x00" + l[1:] for l in lines[:-1]] + [lines[-1]]))
    seed("fuzz_session_signed", "three-authors",
         b"\x00S c d x i1\n\x01S c d x i2\n\x02S c d x i3\n\x40N c d n 5\n"
         b"\x41N c d n -2\tA c d s sa\n\x42D c d x\n\x40X c d\n\x41S c d y t")
    seed("fuzz_session_signed", "equivocation", b"\x40S c d x i1\n\x44S c d x i2\n\x40S c d x i3")
    seed("fuzz_session_signed", "gap-future-stale", b"\x48S c d x i1\n\x50S c d y i2\n\x60S c d z i3\n\x40S c d w n")
    seed("fuzz_session_signed", "duplicates", b"\xc0S c d x i1\n\xc1A c d s sx\n\x80N c d n 1\n\x40N c d n 1")
    seed("fuzz_session_signed", "set-remove", b"\x40A c d s sx\tA c d s sy\n\x40R c d s sx "
         + AUTHOR0.encode() + b".1.0\n\x41A c d s sx\n\x40R c d s sy " + AUTHOR0.encode() + b".1.1")
    seed("fuzz_session_signed", "bad-op", b"\x40S c d x\n\x40S c d x i1")

    # Regression inputs made of golden changes. A forged signature on the
    # first change of a run of two (fuzz/known-open.txt while open).
    regress("fuzz_session", "unverified-signature-mid-run",
            b"0CH " + forge(ch[0]) + b"\nCH " + ch[1] + b"\nEND 2\n")

    # Stale seeds (a renamed source) are removed; other files are kept.
    for target, names in written.items():
        d = os.path.join(CORPUS, target)
        for fn in os.listdir(d):
            if fn.startswith("seed-") and fn not in names:
                os.remove(os.path.join(d, fn))
    for target in sorted(written):
        print("%-22s %3d seeds" % (target, len(written[target])))


if __name__ == "__main__":
    sys.exit(main())
