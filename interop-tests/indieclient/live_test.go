package indieclient_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	lp "liblim.test/indieclient/limproto"
)

type limRunner struct {
	t   *testing.T
	bin string
}

// run runs lim and returns stdout and the exit code.
func (l limRunner) run(args ...string) (string, int) {
	l.t.Helper()
	cmd := exec.Command(l.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			l.t.Fatalf("lim %q: %v", args, err)
		}
		code = ee.ExitCode()
		return out.String() + errb.String(), code // stderr too, for messages
	}
	return out.String(), code
}

// must runs lim and fails the test unless it exits 0.
func (l limRunner) must(args ...string) string {
	l.t.Helper()
	cmd := exec.Command(l.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		l.t.Fatalf("lim %q: %v: %s", args, err, errb.String())
	}
	return out.String()
}

type node struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
}

func startNode(t *testing.T, bin, db string, extra ...string) *node {
	t.Helper()
	args := append([]string{"--db", db, "serve", "--listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				got <- a
			}
		}
		close(got)
	}()
	select {
	case a, ok := <-got:
		if !ok {
			cmd.Process.Kill()
			t.Fatalf("lim serve ended without 'listening on': %s", n.stderr)
		}
		n.addr = a
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("lim serve printed no 'listening on' line")
	}
	return n
}

// stop sends SIGTERM and expects exit status 0 (PROTOCOL.md §12).
func (n *node) stop(t *testing.T) {
	t.Helper()
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("lim serve after SIGTERM: %v\n%s", err, n.stderr)
		}
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		t.Errorf("lim serve did not stop on SIGTERM")
	}
}

func limBin(t *testing.T) string {
	bin := os.Getenv("LIM_BIN")
	if bin == "" {
		t.Fatal("LIM_BIN is not set: it must point to the lim binary (see README.md)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("LIM_BIN: %v", err)
	}
	return bin
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// compareDoc checks `lim get COLL DOC` against the reconstruction: byte for
// byte (changes.md §9 defines the rendering exactly) and field by field.
func compareDoc(t *testing.T, lim limRunner, db string, s *lp.State, coll, doc string) {
	t.Helper()
	mine, exists := s.DocJSON(coll, doc)
	out, code := lim.run("--db", db, "get", coll, doc)
	if !exists {
		if code != 1 {
			t.Errorf("get %q %q: reconstruction has no such document, lim exits %d: %s", coll, doc, code, out)
		}
		return
	}
	if code != 0 {
		t.Errorf("get %q %q: lim exits %d, reconstruction %s", coll, doc, code, mine)
		return
	}
	theirs := strings.TrimSuffix(out, "\n")
	var a, b map[string]any
	da := json.NewDecoder(strings.NewReader(mine))
	da.UseNumber()
	db2 := json.NewDecoder(strings.NewReader(theirs))
	db2.UseNumber()
	if err := da.Decode(&a); err != nil {
		t.Errorf("reconstruction of %q %q is not JSON: %v: %s", coll, doc, err, mine)
	}
	if err := db2.Decode(&b); err != nil {
		t.Errorf("lim get %q %q is not JSON: %v: %s", coll, doc, err, theirs)
	}
	for k := range a {
		if !reflect.DeepEqual(a[k], b[k]) {
			t.Errorf("%s/%s field %q: reconstruction %v, lim get %v", coll, doc, k, a[k], b[k])
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s/%s field %q: only in lim get (%v)", coll, doc, k, b[k])
		}
	}
	if mine != theirs {
		t.Errorf("%s/%s rendering differs:\n mine %s\nlim   %s", coll, doc, mine, theirs)
	}
}

func compareAll(t *testing.T, lim limRunner, db string, st *lp.Store, extraDocs ...[2]string) *lp.State {
	t.Helper()
	s := lp.ComputeState(st.All())
	for _, d := range append(s.Docs(), extraDocs...) {
		compareDoc(t, lim, db, s, d[0], d[1])
	}
	d := s.Digest()
	if got := strings.TrimSpace(lim.must("--db", db, "digest")); got != hex.EncodeToString(d[:]) {
		t.Errorf("state digest: lim %s, reconstruction %x", got, d)
	}
	if got := lim.must("--db", db, "vv"); got != st.VVText() {
		t.Errorf("vv: lim %q, mine %q", got, st.VVText())
	}
	return s
}

func TestLiveNode(t *testing.T) {
	bin := limBin(t)
	lim := limRunner{t, bin}
	dir := t.TempDir()
	db := filepath.Join(dir, "x.db")
	var nk [32]byte
	rand.Read(nk[:])
	lim.must("--db", db, "init", "--network-key", hex.EncodeToString(nk[:]))

	// Documents of several types, nested paths, deletes, a counter and a set.
	lim.must("--db", db, "put", "notes", "a", `{"title":"Hello, world","n":1,"f":1.5,"big":1e20,"small":0.001,"negz":-0.0,`+
		`"ok":true,"no":false,"nul":null,"addr":{"city":"Oslo","zip":"0150"},"uni":"naïve ✓ \"q\" \\ tab\t100% a,b\u007f\u0001"}`)
	lim.must("--db", db, "put", "notes", "doc two", `{"x":"y","deep":{"a":{"b":{"c":1}}}}`)
	lim.must("--db", db, "incr", "stats", "home", "visits", "5")
	lim.must("--db", db, "incr", "stats", "home", "visits", "-2")
	for _, v := range []string{`"red"`, `"blue"`, `3`, `" "`, `"!"`, `{"$base64":"AP8="}`, `2.5`, `null`} {
		lim.must("--db", db, "sadd", "notes", "a", "tags", v)
	}
	lim.must("--db", db, "srem", "notes", "a", "tags", `"blue"`)
	lim.must("--db", db, "del", "notes", "a", "n")
	lim.must("--db", db, "del", "notes", "doc two")
	lim.must("--db", db, "put", "notes", "doc two", `{"z":2}`)
	lim.must("--db", db, "put", "notes", "a", `{"meta":{"a":{"b":1}}}`)
	lim.must("--db", db, "put", "notes", "a", `{"meta":{"a":5}}`)
	lim.must("--db", db, "put", "notes", "gone", `{"x":1}`)
	lim.must("--db", db, "del", "notes", "gone")
	lim.must("--db", db, "put", "my.coll", "d.1", `{"v":{"w":"x"}}`)
	lim.must("--db", db, "put", "stats", "home", `{"visits":100}`)
	lim.must("--db", db, "incr", "stats", "home", "visits", "7")
	lim.must("--db", db, "incr", "stats", "other", "c", "5")
	lim.must("--db", db, "put", "stats", "other", `{"c":"text"}`)
	lim.must("--db", db, "incr", "stats", "other", "c", "2") // counter restarts at 0 over a non-integer register
	lim.must("--db", db, "put", "floats", "f", `{"a":0.1,"b":1e16,"c":1e17,"d":-1.5e-7,"e":5e-324,"f":1.7976931348623157e308,`+
		`"g":1.2345678901234568e20,"h":0.00001,"i":-150.0,"j":3.0,"k":1e-5,"l":1.5e-6}`)
	lim.must("--db", db, "sadd", "sets", "e", "s", `"x"`)
	lim.must("--db", db, "srem", "sets", "e", "s", `"x"`) // present and empty
	lim.must("--db", db, "sadd", "sets", "z", "s", `0.0`)
	lim.must("--db", db, "sadd", "sets", "z", "s", `-0.0`)
	lim.must("--db", db, "sadd", "sets", "z", "s", `10`)
	lim.must("--db", db, "sadd", "sets", "z", "s", `2`)
	lim.must("--db", db, "put", "we,ird%", "k y\tz", `{"v":"%20"}`)
	lim.must("--db", db, "put", "notes", "keys", `{"a\"b":1,"t\tab":2,"x\u007f":3,"a!":4,"a b":5,"é":6,"a":{"!":1," ":2}}`)

	n := startNode(t, bin, db)
	defer n.stop(t)

	// ---- client role: handshake with a fresh identity, VV empty, catch-up
	priv := newKey(t)
	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	var trace []string
	s := lp.NewSession(conn, lp.Config{Role: lp.RoleClient, Priv: priv, NetworkKey: nk,
		Trace: func(d, l string) {
			if len(l) > 120 {
				l = l[:120] + "..."
			}
			trace = append(trace, d+" "+l)
		}})
	defer func() {
		if t.Failed() {
			t.Logf("session:\n%s\nnode stderr:\n%s", strings.Join(trace, "\n"), n.stderr)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	st := lp.NewStore()
	if err := s.Handshake(nil, deadline); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	nodeID := strings.Fields(lim.must("--db", db, "id"))
	if len(nodeID) < 2 || nodeID[1] != hex.EncodeToString(s.PeerID[:]) {
		t.Errorf("node id: lim id %q, HELLO %x", nodeID, s.PeerID)
	}
	p := lp.NewPeer(s, st)
	for !p.Idle() {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("catch-up: %v", err)
		}
	}
	if len(p.Received) == 0 {
		t.Fatalf("no changes received")
	}
	// Every change: hash, prev link, signature verified by Store.Receive; check
	// the same bytes against the node's own export and vv.
	pack, err := lp.ParsePack([]byte(lim.must("--db", db, "export")))
	if err != nil {
		t.Fatalf("lim export: %v", err)
	}
	var got, want []string
	for _, c := range st.All() {
		got = append(got, c.Line)
		if !c.VerifySignature() || c.Hash != lp.HashBody(c.Body) {
			t.Errorf("change %s does not verify", c)
		}
	}
	for _, c := range pack {
		want = append(want, c.Line)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("received changes differ from lim export")
	}
	compareAll(t, lim, db, st, [2]string{"notes", "gone"})

	// PROTOCOL.md §7.3: a VV naming an author twice counts with the larger
	// seq (nothing to resend); a second, empty VV makes the node send all again.
	nodeHead := st.VV()[0]
	nin := len(p.AllIn)
	p.S.Send(fmt.Sprintf("VV %x:%d %x:1", nodeHead.Author[:], nodeHead.Seq, nodeHead.Author[:]))
	p.S.Send("PING dupvv")
	for len(p.Pongs) == 0 {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("duplicate-author VV: %v", err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	p.S.Send("PING dupvv2")
	for len(p.Pongs) < 2 {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("duplicate-author VV: %v", err)
		}
	}
	if len(p.AllIn) != nin {
		t.Errorf("PROTOCOL.md §7.3: VV naming an author twice (larger seq first) made the node resend %d changes", len(p.AllIn)-nin)
	}
	p.S.Send("VV")
	for len(p.AllIn) < nin+int(nodeHead.Seq) {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("second VV: %v", err)
		}
	}
	if len(p.Received) != int(nodeHead.Seq) {
		t.Errorf("resent changes were not duplicates")
	}
	p.Pongs = nil

	// keep-alive and status in LIVE
	p.S.Send("PING indie-1")
	p.S.Send("STATUS")
	for len(p.Pongs) == 0 || p.PeerState == "" {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("ping/status: %v", err)
		}
	}
	if p.Pongs[0] != "indie-1" {
		t.Errorf("PONG token %q", p.Pongs[0])
	}
	var status map[string]any
	if err := json.Unmarshal([]byte(p.PeerState), &status); err != nil || status["id"] != hex.EncodeToString(s.PeerID[:]) {
		t.Errorf("STATE %s: %v", p.PeerState, err)
	}

	// ---- our own change: seq 1 of our author, a string set and a counter add
	held := st.All()
	own := &lp.Change{Author: lp.PublicID(priv), Seq: 1, HLC: st.NextHLC()}
	var ops []lp.Op
	write := func(o lp.Op) {
		own.Ops = ops
		ops = append(ops, lp.ClearConflicts(held, own, o.Coll, o.Doc, o.Path)...)
		ops = append(ops, o)
	}
	write(lp.Op{Kind: 'S', Coll: "notes", Doc: "a", Path: "title", Value: lp.String("written by indieclient, 100% ✓")})
	write(lp.Op{Kind: 'N', Coll: "stats", Doc: "home", Path: "visits", Delta: 1000})
	write(lp.Op{Kind: 'S', Coll: "notes", Doc: "a", Path: "addr", Value: lp.String("flat")}) // replaces an object: needs D
	if ops[len(ops)-2].Kind != 'D' || ops[len(ops)-2].Path != "addr" {
		t.Errorf("ClearConflicts emitted no D for addr: %+v", ops)
	}
	write(lp.Op{Kind: 'S', Coll: "notes", Doc: "a", Path: "nulstr", Value: lp.String("a\x00b\x7f")})
	// a hidden field ("objects win"): no clear_conflicts, receivers do not check
	ops = append(ops,
		lp.Op{Kind: 'S', Coll: "notes", Doc: "hid", Path: "k", Value: lp.Int(1)},
		lp.Op{Kind: 'S', Coll: "notes", Doc: "hid", Path: "k.sub", Value: lp.Int(2)},
		lp.Op{Kind: 'A', Coll: "notes", Doc: "hid", Path: "set", Value: lp.Float(0)},
		lp.Op{Kind: 'A', Coll: "notes", Doc: "hid", Path: "set", Value: lp.BytesValue([]byte{1, 2, 3})})
	// a remove acts only on its own field (changes.md §9): s2 is a present, empty set
	me := lp.PublicID(priv)
	ops = append(ops, lp.Op{Kind: 'A', Coll: "notes", Doc: "hid", Path: "s1", Value: lp.String("v")})
	ops = append(ops, lp.Op{Kind: 'R', Coll: "notes", Doc: "hid", Path: "s2", Value: lp.String("v"),
		Tags: []lp.Tag{{Author: me, Seq: 1, Op: uint32(len(ops) - 1)}}})
	oc, err := lp.BuildChange(priv, 1, own.HLC, [32]byte{}, ops)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := st.Receive(oc); out != lp.Applied || err != nil {
		t.Fatalf("own change: %v %v", out, err)
	}
	nacks := len(p.Acks)
	if err := p.Pump(); err != nil { // sends CH <line> and END 1
		t.Fatal(err)
	}
	for p.Unacked() > 0 {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("waiting for ACK: %v", err)
		}
	}
	if len(p.Acks) != nacks+1 || p.Acks[nacks] != 1 {
		t.Errorf("ACKs %v, want a final ACK 1", p.Acks)
	}
	if hid, _ := lp.ComputeState(st.All()).DocJSON("notes", "hid"); hid != `{"k":{"sub":2},"s1":["v"],"s2":[],"set":[{"$base64":"AQID"},0.0]}` {
		t.Errorf("hidden field rendering: %s", hid)
	}

	// ---- live push: a local write on the node reaches us without asking
	before := len(p.Received)
	lim.must("--db", db, "put", "notes", "live", `{"pushed":true}`)
	for len(p.Received) == before {
		if err := p.Step(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatalf("waiting for live push: %v", err)
		}
	}
	for _, c := range p.AllIn {
		if c.Author == oc.Author {
			t.Errorf("PROTOCOL.md §9.1: the node sent our own change back to us")
		}
	}
	if err := s.Bye(); err != nil {
		t.Fatal(err)
	}

	// ---- the node's store now holds our change
	time.Sleep(100 * time.Millisecond)
	if out := strings.TrimSpace(lim.must("--db", db, "verify")); out != "ok" {
		t.Errorf("lim verify: %q", out)
	}
	state := compareAll(t, lim, db, st, [2]string{"notes", "gone"})
	doc, _ := state.DocJSON("notes", "a")
	if !strings.Contains(doc, `"title":"written by indieclient, 100% ✓"`) || !strings.Contains(doc, `"addr":"flat"`) {
		t.Errorf("own writes not visible: %s", doc)
	}
	if v := strings.TrimSpace(lim.must("--db", db, "get", "stats", "home", "visits")); v != "1107" {
		t.Errorf("stats/home visits = %s, want 1107", v)
	}

	// ---- server role: `lim sync` of a second store dials us
	testServerRole(t, lim, dir, nk, st)

	// ---- probes of the node's edge behaviour (each on its own connection)
	probeCHCheck(t, n.addr, nk)
}

// testServerRole serves st to `lim sync` (role S) and receives its change.
func testServerRole(t *testing.T, lim limRunner, dir string, nk [32]byte, st *lp.Store) {
	ydb := filepath.Join(dir, "y.db")
	lim.must("--db", ydb, "init", "--network-key", hex.EncodeToString(nk[:]))
	lim.must("--db", ydb, "put", "other", "d", `{"k":"v","n":{"m":1}}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	var sp *lp.Peer
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		s := lp.NewSession(c, lp.Config{Role: lp.RoleServer, Priv: newKey(t), NetworkKey: nk})
		dl := time.Now().Add(10 * time.Second)
		if err := s.Handshake(st.VV(), dl); err != nil {
			done <- err
			return
		}
		sp = lp.NewPeer(s, st)
		sp.BatchSize = 7 // several batches
		for {
			if err := sp.Step(dl); err != nil {
				if err == lp.ErrBye {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	out, code := lim.run("--db", ydb, "sync", ln.Addr().String(), "--timeout", "10")
	if code != 0 {
		t.Errorf("lim sync against our server: exit %d: %s", code, out)
	}
	if err := <-done; err != nil {
		t.Fatalf("server role: %v", err)
	}
	if len(sp.Received) != 1 || !sp.GotSynced || sp.Batches < 1 {
		t.Errorf("server role: received %d changes, synced %v", len(sp.Received), sp.GotSynced)
	}
	if out := strings.TrimSpace(lim.must("--db", ydb, "verify")); out != "ok" {
		t.Errorf("lim verify of the synced store: %q", out)
	}
	compareAll(t, lim, ydb, st)
}

// probeCHCheck: PROTOCOL.md §7.4 "has a SP after byte 70". A payload with
// "lim1 ", 65 non-space bytes, then a SP at index 70 passes that check as
// written; any 422 should then come at END, not at the CH line.
func probeCHCheck(t *testing.T, addr string, nk [32]byte) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := lp.NewSession(conn, lp.Config{Role: lp.RoleClient, Priv: newKey(t), NetworkKey: nk})
	dl := time.Now().Add(5 * time.Second)
	if err := s.Handshake(nil, dl); err != nil {
		t.Fatal(err)
	}
	payload := "lim1 " + strings.Repeat("a", 65) + " 1 0000000000000001"
	if !lp.MaybeChange(payload) {
		t.Fatal("probe payload should pass MaybeChange")
	}
	s.Send("CH " + payload)
	var errAt string
	for {
		line, err := s.ReadLine(time.Now().Add(400 * time.Millisecond))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			t.Fatalf("probe: %v", err)
		}
		if strings.HasPrefix(line, "ERR ") {
			errAt = "CH: " + line
			break
		}
	}
	if errAt == "" {
		s.Send("END 1")
		for {
			line, err := s.ReadLine(time.Now().Add(2 * time.Second))
			if err != nil {
				t.Fatalf("probe: no ERR after END: %v", err)
			}
			if strings.HasPrefix(line, "ERR ") {
				errAt = "END: " + line
				break
			}
		}
	}
	s.Close()
	t.Logf("probe CH check (spec §7.4): %s", errAt)
	if !strings.HasPrefix(errAt, "END: ERR 422 LIM_EMALFORMED") {
		t.Errorf("PROTOCOL.md §7.4: a payload with SP at byte 70 but not at 69 was refused as %q; spec says the CH check only needs a SP after byte 70", errAt)
	}
}

// TestLiveConflicts pushes concurrent writes to fields the node wrote last
// and checks changes.md §9: a register shows the op with the greatest stamp
// (hlc, then author bytewise, then seq, then op index), whatever the
// arrival order. Every push here arrives after the node's own write, so a
// node that let the last arrival win would fail each "node" expectation.
func TestLiveConflicts(t *testing.T) {
	bin := limBin(t)
	lim := limRunner{t, bin}
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	var nk [32]byte
	rand.Read(nk[:])
	lim.must("--db", db, "init", "--network-key", hex.EncodeToString(nk[:]))
	// One change of the node: all three fields carry the same hlc H.
	lim.must("--db", db, "put", "notes", "c", `{"older":"node","tie_lo":"node","tie_hi":"node"}`)
	n := startNode(t, bin, db)
	defer n.stop(t)

	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	s := lp.NewSession(conn, lp.Config{Role: lp.RoleClient, Priv: newKey(t), NetworkKey: nk})
	deadline := time.Now().Add(10 * time.Second)
	if err := s.Handshake(nil, deadline); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	st := lp.NewStore()
	p := lp.NewPeer(s, st)
	for !p.Idle() {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("catch-up: %v", err)
		}
	}
	vv := st.VV()
	if len(vv) != 1 || vv[0].Seq != 1 {
		t.Fatalf("expected the node's one change, got vv %+v", vv)
	}
	nodeAuthor := vv[0].Author
	H := st.Head(nodeAuthor).HLC

	// Two authors whose ids fall on either side of the node's, so that at an
	// equal hlc one must lose and one must win on the author id alone.
	var lo, hi ed25519.PrivateKey
	for lo == nil || hi == nil {
		k := newKey(t)
		id := lp.PublicID(k)
		if c := bytes.Compare(id[:], nodeAuthor[:]); c < 0 && lo == nil {
			lo = k
		} else if c > 0 && hi == nil {
			hi = k
		}
	}
	push := []struct {
		key   ed25519.PrivateKey
		hlc   uint64
		field string
		value string
	}{
		{newKey(t), H - 1, "older", "older author"}, // one tick before the node's write: loses
		{lo, H, "tie_lo", "lower author id"},        // same ms and counter, smaller id: loses
		{hi, H, "tie_hi", "higher author id"},       // same ms and counter, greater id: wins
	}
	for _, w := range push {
		c, err := lp.BuildChange(w.key, 1, w.hlc, [32]byte{}, []lp.Op{
			{Kind: 'S', Coll: "notes", Doc: "c", Path: w.field, Value: lp.String(w.value)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := st.Receive(c); out != lp.Applied || err != nil {
			t.Fatalf("own store refused the %s write: %v %v", w.field, out, err)
		}
	}
	if err := p.Pump(); err != nil {
		t.Fatal(err)
	}
	for p.Unacked() > 0 {
		if err := p.Step(deadline); err != nil {
			t.Fatalf("waiting for ACK: %v", err)
		}
	}
	if err := s.Bye(); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{"older": "node", "tie_lo": "node", "tie_hi": "higher author id"}
	mine, ok := lp.ComputeState(st.All()).DocJSON("notes", "c")
	if !ok {
		t.Fatalf("reconstruction has no notes/c")
	}
	var fields map[string]string
	if err := json.Unmarshal([]byte(mine), &fields); err != nil {
		t.Fatalf("reconstruction of notes/c: %v: %s", err, mine)
	}
	for f, v := range want {
		if fields[f] != v {
			t.Errorf("reconstruction: %s = %q, want %q (changes.md §9 stamp order)", f, fields[f], v)
		}
		out := strings.TrimSpace(lim.must("--db", db, "get", "notes", "c", f))
		if out != lp.JSONString([]byte(v)) {
			t.Errorf("lim get notes c %s = %s, want %q", f, out, v)
		}
	}
	// Field by field and byte for byte, plus digest and vv (4 authors now).
	compareAll(t, lim, db, st)
	if got := strings.Count(lim.must("--db", db, "vv"), "\n"); got != 4 {
		t.Errorf("lim vv lists %d authors, want 4 (the node and the three pushers)", got)
	}
}
