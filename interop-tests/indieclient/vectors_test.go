package indieclient_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lp "liblim.test/indieclient/limproto"
)

var specDir = filepath.Join("..", "..", "protocol-spec")

func readSpec(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(specDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func seedBytes(from byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

type expected struct {
	hash, sig map[string]string
	link      map[string]string
	digest    string
	vv        []string
	get       map[[2]string]string
}

func readExpected(t *testing.T) expected {
	e := expected{hash: map[string]string{}, sig: map[string]string{}, link: map[string]string{},
		get: map[[2]string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(readSpec(t, "vectors/expected.txt")))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, rest, _ := strings.Cut(l, " ")
		switch k {
		case "hash", "sig", "link":
			seq, v, _ := strings.Cut(rest, " ")
			map[string]map[string]string{"hash": e.hash, "sig": e.sig, "link": e.link}[k][seq] = v
		case "digest":
			e.digest = rest
		case "vv":
			e.vv = append(e.vv, rest)
		case "get":
			f := strings.SplitN(rest, " ", 3)
			c, err1 := lp.Unescape(f[0])
			d, err2 := lp.Unescape(f[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("expected.txt: %q", l)
			}
			e.get[[2]string{c, d}] = f[2]
		default:
			t.Fatalf("expected.txt: unknown line %q", l)
		}
	}
	return e
}

func vectorLines(t *testing.T) []string {
	return strings.Split(strings.TrimSuffix(string(readSpec(t, "vectors/changes.txt")), "\n"), "\n")
}

// The four vector changes, rebuilt from their fields (vectors/README.md).
func rebuildVectors(t *testing.T) []*lp.Change {
	priv := ed25519.NewKeyFromSeed(seedBytes(1))
	author := lp.PublicID(priv)
	base := uint64(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	hlc := func(sec uint64, ctr uint64) uint64 { return (base+1000*sec)<<16 | ctr }
	S := func(c, d, p string, v lp.Value) lp.Op { return lp.Op{Kind: 'S', Coll: c, Doc: d, Path: p, Value: v} }
	ops := [][]lp.Op{
		{
			S("notes", "n1", "title", lp.String("Hi, 100%\tsure\nnaïve ✓")),
			S("notes", "n1", "count", lp.Int(-42)),
			S("notes", "n1", "big", lp.Int(9223372036854775807)),
			S("notes", "n1", "ratio", lp.Float(-0.5)),
			S("notes", "n1", "done", lp.Bool(true)),
			S("notes", "n1", "draft", lp.Bool(false)),
			S("notes", "n1", "parent", lp.Null()),
			S("notes", "n1", "blob", lp.BytesValue([]byte{0x00, 0xff, 0x10, 0xab})),
			S("notes", "n1", "empty", lp.String("")),
			S("notes", "n1", "meta.author", lp.String("Ada Lovelace")),
			S("notes", "draft 1", "body", lp.String("first draft")),
		},
		{
			{Kind: 'N', Coll: "notes", Doc: "n1", Path: "views", Delta: 5},
			{Kind: 'N', Coll: "notes", Doc: "n1", Path: "views", Delta: -2},
			{Kind: 'A', Coll: "notes", Doc: "n1", Path: "tags", Value: lp.String("red")},
			{Kind: 'A', Coll: "notes", Doc: "n1", Path: "tags", Value: lp.String("blue")},
			{Kind: 'A', Coll: "notes", Doc: "n1", Path: "tags", Value: lp.String("red")},
		},
		{
			{Kind: 'R', Coll: "notes", Doc: "n1", Path: "tags", Value: lp.String("red"),
				Tags: []lp.Tag{{Author: author, Seq: 2, Op: 4}, {Author: author, Seq: 2, Op: 2}}},
			{Kind: 'X', Coll: "notes", Doc: "draft 1"},
		},
		{
			S("notes", "draft 1", "title", lp.String("back")),
			{Kind: 'D', Coll: "notes", Doc: "n1", Path: "draft"},
		},
	}
	hlcs := []uint64{hlc(0, 0), hlc(1, 1), hlc(2, 0), hlc(3, 0)}
	var prev [32]byte
	var out []*lp.Change
	for i, o := range ops {
		c, err := lp.BuildChange(priv, uint64(i+1), hlcs[i], prev, o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
		prev = c.Link
	}
	return out
}

func TestChangeVectors(t *testing.T) {
	exp := readExpected(t)
	lines := vectorLines(t)
	if len(lines) != 4 {
		t.Fatalf("changes.txt: %d lines", len(lines))
	}
	st := lp.NewStore()
	var parsed []*lp.Change
	var prev [32]byte
	for i, l := range lines {
		c, err := lp.ParseChange(l)
		if err != nil {
			t.Fatalf("change %d: %v", i+1, err)
		}
		seq := string(rune('1' + i))
		if got := hex.EncodeToString(c.Hash[:]); got != exp.hash[seq] {
			t.Errorf("hash %s: got %s want %s", seq, got, exp.hash[seq])
		}
		if got := hex.EncodeToString(c.Signature[:]); got != exp.sig[seq] {
			t.Errorf("sig %s: got %s want %s", seq, got, exp.sig[seq])
		}
		if got := hex.EncodeToString(c.Link[:]); got != exp.link[seq] {
			t.Errorf("link %s: got %s want %s", seq, got, exp.link[seq])
		}
		if c.Prev != prev {
			t.Errorf("change %d: prev %x, want the link of change %d, %x", i+1, c.Prev, i, prev)
		}
		prev = c.Link
		if !c.VerifySignature() {
			t.Errorf("change %d: signature does not verify", i+1)
		}
		if out, err := st.Receive(c); err != nil || out != lp.Applied {
			t.Errorf("change %d: receive %v %v", i+1, out, err)
		}
		parsed = append(parsed, c)
	}
	// byte-for-byte regeneration from the fields
	for i, c := range rebuildVectors(t) {
		if c.Line != lines[i] {
			t.Errorf("rebuilt change %d differs:\n got %s\nwant %s", i+1, c.Line, lines[i])
		}
	}
	// state, rendering, digest, vv
	s := lp.ComputeState(parsed)
	for k, want := range exp.get {
		got, ok := s.DocJSON(k[0], k[1])
		if !ok || got != want {
			t.Errorf("get %q %q:\n got %s\nwant %s", k[0], k[1], got, want)
		}
	}
	for _, f := range s.Fields {
		if f.Coll == "notes" && f.Doc == "n1" && f.Path == "draft" {
			t.Errorf("n1.draft exists after D")
		}
	}
	if got := hex.EncodeToString(func() []byte { d := s.Digest(); return d[:] }()); got != exp.digest {
		t.Errorf("digest: got %s want %s", got, exp.digest)
	}
	if got := st.VVText(); got != strings.Join(exp.vv, "\n")+"\n" {
		t.Errorf("vv: got %q want %q", got, exp.vv)
	}
	// a duplicate is a no-op; a gap and a broken chain are told apart
	st2 := lp.NewStore()
	if out, err := st2.Receive(parsed[1]); out != lp.Skipped || err == nil || !strings.Contains(err.Error(), lp.EGap) {
		t.Errorf("gap: %v %v", out, err)
	}
	st2.Receive(parsed[0])
	if out, err := st2.Receive(parsed[0]); out != lp.Duplicate || err != nil {
		t.Errorf("duplicate: %v %v", out, err)
	}
	bad := []byte(lines[0])
	bad[len(bad)-1] = '0'
	if c, err := lp.ParseChange(string(bad)); err != nil {
		t.Errorf("altered signature should parse: %v", err)
	} else if lp.NewStore().Receive(c); c.VerifySignature() {
		t.Errorf("altered signature verifies")
	}
}

func TestPackVector(t *testing.T) {
	raw := readSpec(t, "vectors/pack.lim")
	cs, err := lp.ParsePack(raw)
	if err != nil {
		t.Fatal(err)
	}
	lines := vectorLines(t)
	var got []string
	for _, c := range cs {
		got = append(got, c.Line)
	}
	if strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Errorf("pack lines differ from changes.txt")
	}
	if !bytes.Equal(lp.BuildPack(lines), raw) {
		t.Errorf("rebuilt pack differs:\n%s", lp.BuildPack(lines))
	}
	if e := string(lp.BuildPack(nil)); e != "LIMPACK 1\nEND 0 c6059746b9f192d2573bc0914c99bc3930354393567dd1924eadd97124526c5c\n" {
		t.Errorf("empty pack: %q", e)
	}
	// corruptions are refused
	for _, b := range [][]byte{
		bytes.Replace(raw, []byte("END 4"), []byte("END 3"), 1),
		append(append([]byte{}, raw...), 'x'),
		raw[:len(raw)-1],
		bytes.Replace(raw, []byte("LIMPACK 1"), []byte("LIMPACK 2"), 1),
	} {
		if _, err := lp.ParsePack(b); err == nil {
			t.Errorf("corrupt pack accepted")
		}
	}
}

type hsSide struct {
	Role, Seed, ID, Nonce, Hello, SignedMessage, Signature, Proof, ProofOtherNetwork, Auth string
}

func (s *hsSide) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = hsSide{m["role"], m["seed"], m["id"], m["nonce"], m["hello"], m["signed_message"],
		m["signature"], m["proof"], m["proof_other_network"], m["auth"]}
	return nil
}

type hsVectors struct {
	Version         int    `json:"version"`
	NetworkKey      string `json:"network_key"`
	OtherNetworkKey string `json:"other_network_key"`
	Client          hsSide `json:"client"`
	Server          hsSide `json:"server"`
	Transcript      string `json:"transcript"`
	TranscriptHash  string `json:"transcript_hash"`
}

func to32(b []byte) (a [32]byte) { copy(a[:], b); return }

func TestHandshakeVectors(t *testing.T) {
	var v hsVectors
	if err := json.Unmarshal(readSpec(t, "vectors/handshake.json"), &v); err != nil {
		t.Fatal(err)
	}
	// handshake.txt holds the same values
	txt := map[string]string{}
	for _, l := range strings.Split(string(readSpec(t, "vectors/handshake.txt")), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			k, val, _ := strings.Cut(l, " ")
			txt[k] = val
		}
	}
	for k, want := range map[string]string{
		"network_key": v.NetworkKey, "other_network_key": v.OtherNetworkKey,
		"client_hello": v.Client.Hello, "server_hello": v.Server.Hello,
		"client_auth": v.Client.Auth, "server_auth": v.Server.Auth,
		"transcript": v.Transcript, "transcript_hash": v.TranscriptHash,
		"client_proof_other_network": v.Client.ProofOtherNetwork,
	} {
		if txt[k] != want {
			t.Errorf("handshake.txt %s differs from handshake.json", k)
		}
	}
	nk := to32(unhex(t, v.NetworkKey))
	other := to32(unhex(t, v.OtherNetworkKey))
	if hex.EncodeToString(seedBytes(1)) != v.Client.Seed || hex.EncodeToString(seedBytes(0x21)) != v.Server.Seed {
		t.Errorf("seeds are not 01..20 / 21..40")
	}
	cpriv := ed25519.NewKeyFromSeed(unhex(t, v.Client.Seed))
	spriv := ed25519.NewKeyFromSeed(unhex(t, v.Server.Seed))
	ch := lp.HelloLine(1, lp.PublicID(cpriv), to32(unhex(t, v.Client.Nonce)))
	sh := lp.HelloLine(1, lp.PublicID(spriv), to32(unhex(t, v.Server.Nonce)))
	if ch != v.Client.Hello || sh != v.Server.Hello {
		t.Errorf("HELLO lines differ:\n%s\n%s", ch, sh)
	}
	if hex.EncodeToString(lp.Transcript(ch, sh)) != v.Transcript {
		t.Errorf("transcript differs")
	}
	th := lp.TranscriptHash(ch, sh)
	if hex.EncodeToString(th[:]) != v.TranscriptHash {
		t.Errorf("transcript hash differs")
	}
	for _, side := range []struct {
		v    hsSide
		priv ed25519.PrivateKey
		role byte
	}{{v.Client, cpriv, lp.RoleClient}, {v.Server, spriv, lp.RoleServer}} {
		if side.v.Role != string(side.role) || hex.EncodeToString(side.priv.Public().(ed25519.PublicKey)) != side.v.ID {
			t.Errorf("%c: role/id", side.role)
		}
		if hex.EncodeToString(lp.HandshakeSignedMessage(side.role, th)) != side.v.SignedMessage {
			t.Errorf("%c: signed message differs", side.role)
		}
		sig := lp.HandshakeSign(side.priv, side.role, th)
		proof := lp.NetworkProof(nk, side.role, th)
		op := lp.NetworkProof(other, side.role, th)
		if hex.EncodeToString(sig[:]) != side.v.Signature || hex.EncodeToString(proof[:]) != side.v.Proof ||
			hex.EncodeToString(op[:]) != side.v.ProofOtherNetwork {
			t.Errorf("%c: signature/proof differ", side.role)
		}
		if lp.AuthLine(sig, proof) != side.v.Auth {
			t.Errorf("%c: AUTH line differs", side.role)
		}
		if !lp.HandshakeVerify(lp.PublicID(side.priv), side.role, th, sig) {
			t.Errorf("%c: own signature does not verify", side.role)
		}
		other := lp.RoleClient + lp.RoleServer - side.role
		if lp.HandshakeVerify(lp.PublicID(side.priv), other, th, sig) {
			t.Errorf("%c: signature verifies for the other role", side.role)
		}
	}

	// Both roles of this implementation, over TCP, with the vectors' nonces:
	// the AUTH lines on the wire are the vectors'.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sent [2][]string
	tracer := func(i int) func(string, string) {
		return func(dir, l string) {
			if dir == ">" {
				sent[i] = append(sent[i], l)
			}
		}
	}
	cn, sn := to32(unhex(t, v.Client.Nonce)), to32(unhex(t, v.Server.Nonce))
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		s := lp.NewSession(c, lp.Config{Role: lp.RoleServer, Priv: spriv, NetworkKey: nk, Nonce: &sn, Trace: tracer(1)})
		err = s.Handshake(nil, time.Now().Add(5*time.Second))
		if err == nil {
			p := lp.NewPeer(s, lp.NewStore())
			for err == nil {
				err = p.Step(time.Now().Add(5 * time.Second))
			}
			if err == lp.ErrBye {
				err = nil
			}
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := lp.NewSession(c, lp.Config{Role: lp.RoleClient, Priv: cpriv, NetworkKey: nk, Nonce: &cn, Trace: tracer(0)})
	// The client sends the four vector changes, as in transcripts/sync.txt.
	st := lp.NewStore()
	for _, l := range vectorLines(t) {
		cc, _ := lp.ParseChange(l)
		st.Receive(cc)
	}
	if err := s.Handshake(st.VV(), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	p := lp.NewPeer(s, st)
	if err := p.SyncOnce(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server side: %v", err)
	}
	if sent[0][0] != v.Client.Hello || sent[0][1] != v.Client.Auth || sent[1][0] != v.Server.Hello || sent[1][1] != v.Server.Auth {
		t.Errorf("wire HELLO/AUTH differ from vectors: %q %q", sent[0][:2], sent[1][:2])
	}
	// compare with the exact client lines of transcripts/sync.txt
	var want []string
	for _, l := range strings.Split(string(readSpec(t, "transcripts/sync.txt")), "\n") {
		if strings.HasPrefix(l, "C: ") {
			want = append(want, strings.TrimPrefix(l, "C: "))
		}
	}
	// our client sends SYNCED only after END (it has changes), like the transcript
	got := sent[0]
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("client lines differ from transcripts/sync.txt:\n got %q\nwant %q", got, want)
	}
}

// The parser's reactions recorded in the transcripts.
func TestParserAgainstTranscripts(t *testing.T) {
	for _, tc := range []struct{ line, err string }{
		{"HELLO 1 79B5562E8FE654F94078B112E8A98BA7901F853AE695BED7E0E3910BAD049664 c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf", "ERR 400 HELLO id and nonce are 64 lowercase hex digits"},
		{"FROB 1", "ERR 400 unknown message"},
		{"CH lim1 hello", "ERR 422 LIM_EMALFORMED: CH does not carry a change"},
		{"VV x", "ERR 400 VV entries are <64 hex author>:<seq> with seq >= 1"},
		{"VV ", "ERR 400 empty line or stray space"},
		{"ERR 400 ", "ERR 400 ERR takes a code and a text"},
		{"STATE ", "ERR 400 empty line or stray space"},
		{"PING " + strings.Repeat("x", 65), "ERR 400 PING and PONG take one token of at most 64 bytes"},
		{"", "ERR 400 empty line or stray space"},
		{"BYE\r", "ERR 400 a line may not contain CR or NUL"},
		{"END 01", "ERR 400 END and ACK take a count"},
	} {
		_, pe := lp.ParseMessage(tc.line)
		if pe == nil || pe.Line() != tc.err {
			t.Errorf("%q: got %v want %s", tc.line, pe, tc.err)
		}
	}
	for _, ok := range []string{"VV", "SYNCED", "PING t1", "STATE {}", "ERR 503", "ERR 426 this node speaks protocol version 1 only", "ACK 0", "END 0"} {
		if _, pe := lp.ParseMessage(ok); pe != nil {
			t.Errorf("%q refused: %v", ok, pe)
		}
	}
}

// Canonical-form checks of changes.md §3.
func TestCanonicalForms(t *testing.T) {
	for _, s := range []string{"%2c", "%41", "a b", "%2", "%", "a,b", "\x7f"} {
		if _, err := lp.Unescape(s); err == nil {
			t.Errorf("Unescape(%q) accepted", s)
		}
	}
	if u, err := lp.Unescape("%2C%20%25."); err != nil || u != ", %." {
		t.Errorf("Unescape: %q %v", u, err)
	}
	for _, tok := range []string{"i-0", "i01", "i+1", "i9223372036854775808", "d7ff0000000000000", "dFFF0000000000000", "b0", "bAB", "x", "ntrue", "s%41"} {
		if _, err := lp.ParseValue(tok); err == nil {
			t.Errorf("ParseValue(%q) accepted", tok)
		}
	}
	for _, tok := range []string{"i-9223372036854775808", "d8000000000000000", "s", "b", "s%00"} {
		if _, err := lp.ParseValue(tok); err != nil {
			t.Errorf("ParseValue(%q): %v", tok, err)
		}
	}
	for f, want := range map[float64]string{-150: "-150.0", 0.001: "0.001", 3.14: "3.14", 1e16: "10000000000000000.0",
		1e17: "1.0e17", 5e-324: "5.0e-324", -1.5e-7: "-1.5e-7", 1.7976931348623157e308: "1.7976931348623157e308", 0.00001: "0.00001", 1.5e-6: "1.5e-6"} {
		if got := lp.FloatJSON(f); got != want {
			t.Errorf("FloatJSON(%v) = %s want %s", f, got, want)
		}
	}
}
