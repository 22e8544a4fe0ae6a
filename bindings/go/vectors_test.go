package lim_test

// The golden vectors of protocol-spec/vectors, checked through the Go
// binding's public API (libcore/tests/test_vectors.c does the same in C, and
// bindings/python/tests/test_vectors.py in Python): the change lines apply
// one by one through DB.Apply and come back byte-identical from DB.Log;
// pack.lim imported gives the recorded digest, version vector and
// documents, and DB.Export gives pack.lim back byte for byte. The bytes the
// binding hands out (Log, Export) are then checked without liblim: each
// hash and link is recomputed with BLAKE2b (golang.org/x/crypto/blake2b, a
// test-only dependency), each signature verified with crypto/ed25519 for
// the key of the recorded seed, and the END checksum recomputed, so a wrong
// byte from the binding fails here even if liblim would accept it. The
// vector files are required: the tests fail, not skip, without them.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	lim "github.com/liblim/liblim/bindings/go"
)

const vectorsDir = "../../protocol-spec/vectors"

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatalf("golden vector file: %v", err)
	}
	return data
}

type vectorGet struct{ coll, doc, json string }

type vectorExpected struct {
	hash, sig map[uint64]string
	link      map[uint64]string
	digest    string
	vv        string
	gets      []vectorGet
}

func readExpected(t *testing.T) vectorExpected {
	t.Helper()
	e := vectorExpected{hash: map[uint64]string{}, sig: map[uint64]string{}, link: map[uint64]string{}}
	for _, line := range strings.Split(string(readVector(t, "expected.txt")), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "hash", "sig", "link":
			seqText, hexText, ok := strings.Cut(rest, " ")
			seq, err := strconv.ParseUint(seqText, 10, 64)
			if !ok || err != nil {
				t.Fatalf("expected.txt: bad line %q", line)
			}
			map[string]map[uint64]string{"hash": e.hash, "sig": e.sig, "link": e.link}[kind][seq] = hexText
		case "digest":
			e.digest = rest
		case "vv":
			e.vv = rest
		case "get":
			parts := strings.SplitN(rest, " ", 3)
			if len(parts) != 3 {
				t.Fatalf("expected.txt: bad line %q", line)
			}
			coll, err1 := url.PathUnescape(parts[0])
			doc, err2 := url.PathUnescape(parts[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("expected.txt: bad escape in %q", line)
			}
			e.gets = append(e.gets, vectorGet{coll, doc, parts[2]})
		default:
			t.Fatalf("expected.txt: unknown line %q", line)
		}
	}
	if e.digest == "" || e.vv == "" || len(e.gets) == 0 || len(e.hash) != 4 || len(e.sig) != 4 || len(e.link) != 4 {
		t.Fatalf("expected.txt lacks facts: %+v", e)
	}
	return e
}

func changeLines(t *testing.T) [][]byte {
	t.Helper()
	data := readVector(t, "changes.txt")
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatal("changes.txt: each change line ends with LF")
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("changes.txt: %d lines, want 4", len(lines))
	}
	return lines
}

// documented converts liblim's JSON to what DB.Get documents: int64 for
// integers, float64 for other numbers, []byte for {"$base64": ...}, []any
// for sets (arrays), map[string]any for objects.
func documented(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case json.Number:
		if !strings.ContainsAny(x.String(), ".eE") {
			n, err := x.Int64()
			if err != nil {
				t.Fatalf("integer %s: %v", x, err)
			}
			return n
		}
		f, err := x.Float64()
		if err != nil {
			t.Fatalf("number %s: %v", x, err)
		}
		return f
	case map[string]any:
		if s, ok := x["$base64"].(string); ok && len(x) == 1 {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatalf("$base64 %q: %v", s, err)
			}
			return b
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = documented(t, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = documented(t, e)
		}
		return out
	}
	return v
}

func TestVectorsChangeLines(t *testing.T) {
	exp := readExpected(t)
	prev := strings.Repeat("00", 32)
	for i, line := range changeLines(t) {
		cut := bytes.LastIndexByte(line, ' ')
		if cut < 0 {
			t.Fatalf("change %d: no signature token", i+1)
		}
		body, sig := line[:cut], string(line[cut+1:])
		fields := strings.Split(string(body), " ")
		if len(fields) < 6 || fields[0] != "lim1" {
			t.Fatalf("change %d: bad header %q", i+1, body)
		}
		seq, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("change %d: seq %q", i+1, fields[2])
		}
		if sig != exp.sig[seq] {
			t.Errorf("change %d: signature %s, want %s", seq, sig, exp.sig[seq])
		}
		if fields[4] != prev {
			t.Errorf("change %d: prev %s, want %s (link of change %d)", seq, fields[4], prev, seq-1)
		}
		prev = exp.link[seq]
	}
}

func TestVectorsApplyAndLog(t *testing.T) {
	exp := readExpected(t)
	lines := changeLines(t)
	db, err := lim.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, line := range lines {
		st, err := db.Apply(line)
		if err != nil {
			t.Fatalf("Apply(change %d): %v", i+1, err)
		}
		if st != (lim.ApplyStats{Applied: 1}) {
			t.Fatalf("Apply(change %d) = %+v", i+1, st)
		}
	}
	log, err := db.Log(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != len(lines) {
		t.Fatalf("Log: %d entries, want %d", len(log), len(lines))
	}
	author, _, _ := strings.Cut(exp.vv, " ")
	for i, e := range log {
		if !bytes.Equal(e.Bytes, lines[i]) {
			t.Errorf("Log[%d].Bytes differs:\n got %q\nwant %q", i, e.Bytes, lines[i])
		}
		if e.Author != author || e.Seq != uint64(i+1) {
			t.Errorf("Log[%d] = %s/%d, want %s/%d", i, e.Author, e.Seq, author, i+1)
		}
	}
	if d, err := db.Digest(); err != nil || d != exp.digest {
		t.Errorf("Digest() = %q, %v; want %s", d, err, exp.digest)
	}
	if err := db.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestVectorsPack(t *testing.T) {
	exp := readExpected(t)
	f, err := os.Open(filepath.Join(vectorsDir, "pack.lim"))
	if err != nil {
		t.Fatalf("golden vector file: %v", err)
	}
	defer f.Close()
	db, err := lim.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Import(f)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if st != (lim.ApplyStats{Applied: 4}) {
		t.Errorf("Import = %+v, want 4 applied", st)
	}
	if d, err := db.Digest(); err != nil || d != exp.digest {
		t.Errorf("Digest() = %q, %v; want %s", d, err, exp.digest)
	}
	author, seqText, _ := strings.Cut(exp.vv, " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		t.Fatalf("vv line %q", exp.vv)
	}
	if vv, err := db.VersionVector(); err != nil || !reflect.DeepEqual(vv, lim.VersionVector{author: seq}) {
		t.Errorf("VersionVector() = %v, %v; want %s %d", vv, err, author, seq)
	}
	for _, g := range exp.gets {
		dec := json.NewDecoder(strings.NewReader(g.json))
		dec.UseNumber()
		var raw any
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("expected JSON for %s/%s: %v", g.coll, g.doc, err)
		}
		want := documented(t, raw)
		got, err := db.Get(g.coll, g.doc)
		if err != nil {
			t.Errorf("Get(%q, %q): %v", g.coll, g.doc, err)
			continue
		}
		if !reflect.DeepEqual(any(got), want) {
			t.Errorf("Get(%q, %q):\n got %s\nwant %s", g.coll, g.doc, show(got), show(want))
		}
	}
	if _, err := db.GetField("notes", "n1", "draft"); !errors.Is(err, lim.ErrNotFound) {
		t.Errorf("GetField(notes, n1, draft) error = %v, want ErrNotFound", err)
	}
	if err := db.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func show(v any) string { return fmt.Sprintf("%#v", v) }

// blake2b256 is BLAKE2b-256 of a context string, its NUL, and parts
// (changes.md §6 and §12 prefix every hash with such a context).
func blake2b256(context string, parts ...[]byte) string {
	h, err := blake2b.New256(nil)
	if err != nil {
		panic(err)
	}
	h.Write([]byte(context))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// vectorSeed is the recorded Ed25519 seed of the vectors' author.
func vectorSeed(t *testing.T) []byte {
	t.Helper()
	var doc struct {
		Seed   string `json:"seed"`
		Author string `json:"author"`
	}
	if err := json.Unmarshal(readVector(t, "changes.json"), &doc); err != nil {
		t.Fatalf("changes.json: %v", err)
	}
	seed := mustHex(t, doc.Seed)
	if len(seed) != ed25519.SeedSize {
		t.Fatalf("changes.json: seed of %d bytes", len(seed))
	}
	if pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey); hex.EncodeToString(pub) != doc.Author {
		t.Fatalf("changes.json: author %s is not the key of the seed (%x)", doc.Author, pub)
	}
	return seed
}

// checkChainBytes recomputes, from change lines as the binding returned
// them, every hash, signature and link of changes.md §6 and compares them
// with expected.txt; prev must be the link of the line before.
func checkChainBytes(t *testing.T, what string, lines [][]byte, exp vectorExpected, pub ed25519.PublicKey) {
	t.Helper()
	if len(lines) != 4 {
		t.Fatalf("%s: %d changes, want 4", what, len(lines))
	}
	prev := strings.Repeat("00", 32)
	for i, line := range lines {
		seq := uint64(i + 1)
		cut := bytes.LastIndexByte(line, ' ')
		if cut < 0 {
			t.Fatalf("%s: change %d has no signature token", what, seq)
		}
		body, sigHex := line[:cut], string(line[cut+1:])
		fields := strings.Split(string(body), " ")
		if len(fields) < 6 || fields[0] != "lim1" || fields[1] != hex.EncodeToString(pub) || fields[2] != strconv.FormatUint(seq, 10) {
			t.Fatalf("%s: change %d header %q", what, seq, fields[:min(len(fields), 6)])
		}
		if fields[4] != prev {
			t.Errorf("%s: change %d prev %s, want the link of change %d, %s", what, seq, fields[4], seq-1, prev)
		}
		hash := blake2b256("liblim change v1", body)
		if hash != exp.hash[seq] {
			t.Errorf("%s: change %d hashes to %s, want %s", what, seq, hash, exp.hash[seq])
		}
		sig := mustHex(t, sigHex)
		if !ed25519.Verify(pub, append([]byte("liblim signature v1\x00"), mustHex(t, hash)...), sig) {
			t.Errorf("%s: change %d: the signature does not verify", what, seq)
		}
		if sigHex != exp.sig[seq] {
			t.Errorf("%s: change %d signature %s, want %s", what, seq, sigHex, exp.sig[seq])
		}
		link := blake2b256("liblim link v1", mustHex(t, hash), sig)
		if link != exp.link[seq] {
			t.Errorf("%s: change %d link %s, want %s", what, seq, link, exp.link[seq])
		}
		prev = link
	}
}

// TestVectorsExportIsPack: changes.md §12 fixes a pack completely (lines in
// §11 order as held, END with their count and checksum), and a store that
// imported pack.lim holds nothing else, so its export is pack.lim byte for
// byte. The store is a real file, exported again after reopening.
func TestVectorsExportIsPack(t *testing.T) {
	exp := readExpected(t)
	want := readVector(t, "pack.lim")
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := lim.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := db.Import(bytes.NewReader(want)); err != nil || st != (lim.ApplyStats{Applied: 4}) {
		t.Fatalf("Import = %+v, %v", st, err)
	}
	var out bytes.Buffer
	if err := db.Export(&out); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("Export differs from pack.lim:\n got %q\nwant %q", out.Bytes(), want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = lim.Open(path, lim.WithCreate(false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out.Reset()
	if err := db.Export(&out); err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("Export after reopening: %v, equal to pack.lim: %v", err, bytes.Equal(out.Bytes(), want))
	}
	if d, err := db.Digest(); err != nil || d != exp.digest {
		t.Errorf("Digest() after reopening = %q, %v; want %s", d, err, exp.digest)
	}
}

// TestVectorsBindingBytesRecomputed checks the bytes the binding hands out
// (DB.Log and DB.Export) with BLAKE2b and Ed25519 from outside liblim: the
// recorded hashes, links and signatures, the key of the recorded seed, and
// the pack checksum of the END line.
func TestVectorsBindingBytesRecomputed(t *testing.T) {
	exp := readExpected(t)
	pub := ed25519.NewKeyFromSeed(vectorSeed(t)).Public().(ed25519.PublicKey)
	db, err := lim.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, err := os.Open(filepath.Join(vectorsDir, "pack.lim"))
	if err != nil {
		t.Fatalf("golden vector file: %v", err)
	}
	defer f.Close()
	if _, err := db.Import(f); err != nil {
		t.Fatalf("Import: %v", err)
	}

	log, err := db.Log(0)
	if err != nil {
		t.Fatal(err)
	}
	var logLines [][]byte
	for _, e := range log {
		logLines = append(logLines, e.Bytes)
	}
	checkChainBytes(t, "Log", logLines, exp, pub)

	var out bytes.Buffer
	if err := db.Export(&out); err != nil {
		t.Fatalf("Export: %v", err)
	}
	pack := out.Bytes()
	header := []byte("LIMPACK 1\n")
	if !bytes.HasPrefix(pack, header) || !bytes.HasSuffix(pack, []byte("\n")) {
		t.Fatalf("Export: not a pack: %q", pack)
	}
	rest := pack[len(header) : len(pack)-1]
	cut := bytes.LastIndex(rest, []byte("\nEND "))
	if cut < 0 {
		t.Fatalf("Export: no END line: %q", pack)
	}
	lines, end := rest[:cut+1], string(rest[cut+1:]) // lines keep their LFs
	checkChainBytes(t, "Export", bytes.Split(lines[:len(lines)-1], []byte("\n")), exp, pub)
	if want := "END 4 " + blake2b256("liblim pack v1", lines); end != want {
		t.Errorf("Export: trailer %q, want %q (changes.md §12 checksum)", end, want)
	}
}
