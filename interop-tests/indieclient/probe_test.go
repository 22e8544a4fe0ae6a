package indieclient_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lp "liblim.test/indieclient/limproto"
)

// probeConn is an authenticated client connection driven line by line.
type probeConn struct {
	t *testing.T
	s *lp.Session
}

func dialProbe(t *testing.T, addr string, nk [32]byte, sendVV bool) *probeConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := lp.NewSession(conn, lp.Config{Role: lp.RoleClient, Priv: newKey(t), NetworkKey: nk})
	if err := s.Authenticate(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if sendVV {
		s.Send("VV")
	}
	return &probeConn{t, s}
}

// dialCaughtUp authenticates and answers the node's VV with the same vector,
// so that the node has nothing to send.
func dialCaughtUp(t *testing.T, addr string, nk [32]byte) *probeConn {
	p := dialProbe(t, addr, nk, false)
	l, err := p.s.ReadLine(time.Now().Add(2 * time.Second))
	if err != nil || !strings.HasPrefix(l, "VV") {
		t.Fatalf("expected the node's VV: %q %v", l, err)
	}
	p.s.Send(l)
	if l, seen := p.expect("SYNCED", 2*time.Second); l == "" {
		t.Fatalf("no SYNCED: %q", seen)
	}
	return p
}

// lines reads lines until quiet for `quiet` (or the peer closes).
func (p *probeConn) lines(quiet time.Duration) []string {
	var out []string
	for {
		l, err := p.s.ReadLine(time.Now().Add(quiet))
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return out
			}
			return append(out, "<close>")
		}
		out = append(out, l)
	}
}

// expect reads until a line with prefix arrives (answering nothing).
func (p *probeConn) expect(prefix string, within time.Duration) (string, []string) {
	p.t.Helper()
	var seen []string
	dl := time.Now().Add(within)
	for {
		l, err := p.s.ReadLine(dl)
		if err != nil {
			return "", seen
		}
		if strings.HasPrefix(l, prefix) {
			return l, seen
		}
		seen = append(seen, l)
	}
}

func chain(t *testing.T, priv ed25519.PrivateKey, n int, hlc0 uint64, doc string) []*lp.Change {
	var out []*lp.Change
	var prev [32]byte
	for i := 0; i < n; i++ {
		c, err := lp.BuildChange(priv, uint64(i+1), hlc0+uint64(i), prev, []lp.Op{
			{Kind: 'N', Coll: "probe", Doc: doc, Path: "n", Delta: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
		prev = c.Link
	}
	return out
}

func sendBatch(p *probeConn, cs []*lp.Change) {
	for _, c := range cs {
		p.s.Send("CH " + c.Line)
	}
	p.s.Send(fmt.Sprintf("END %d", len(cs)))
}

// TestProbes checks statements of PROTOCOL.md that no transcript shows.
func TestProbes(t *testing.T) {
	bin := limBin(t)
	lim := limRunner{t, bin}
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	var nk [32]byte
	rand.Read(nk[:])
	lim.must("--db", db, "init", "--network-key", hex.EncodeToString(nk[:]))
	lim.must("--db", db, "put", "probe", "seed", `{"x":1}`)
	n := startNode(t, bin, db)
	defer n.stop(t)
	now := uint64(time.Now().UnixMilli()) << 16

	t.Run("nothing-before-our-VV", func(t *testing.T) {
		// §4: nothing is sent in LIVE before the VV, and no changes before the peer's VV.
		p := dialProbe(t, n.addr, nk, false)
		got := p.lines(300 * time.Millisecond)
		if len(got) != 1 || !strings.HasPrefix(got[0], "VV ") {
			t.Errorf("before our VV the node sent %q, want only its VV", got)
		}
		p.s.Send("VV")
		if l, seen := p.expect("SYNCED", 2*time.Second); l == "" || len(seen) == 0 || !strings.HasPrefix(seen[0], "CH ") {
			t.Errorf("after our VV: %q then %q", seen, l)
		}
		p.s.Close()
	})

	t.Run("1001-CH", func(t *testing.T) {
		p := dialProbe(t, n.addr, nk, true)
		c := chain(t, newKey(t), 1, now, "x")[0]
		for i := 0; i < 1001; i++ {
			p.s.Send("CH " + c.Line)
		}
		if l, _ := p.expect("ERR ", 2*time.Second); l != "ERR 413 more than 1000 changes before END" {
			t.Errorf("1001st CH: %q", l)
		}
		p.s.Close()
	})

	t.Run("clock-skip-and-VV-resend", func(t *testing.T) {
		// changes.md §8.6 / PROTOCOL.md §9.2: a change beyond the drift bound is
		// skipped and acknowledged; the receiver sends its VV again 1000 ms later.
		p := dialCaughtUp(t, n.addr, nk)
		future := uint64(time.Now().Add(5*time.Minute).UnixMilli()) << 16
		sendBatch(p, chain(t, newKey(t), 1, future, "future"))
		if l, seen := p.expect("ACK ", 2*time.Second); l != "ACK 1" {
			t.Fatalf("future change: %q %q", seen, l)
		}
		start := time.Now()
		l, seen := p.expect("VV", 3*time.Second)
		el := time.Since(start)
		if l == "" {
			t.Errorf("§9.2: no VV resent after a clock skip (saw %q)", seen)
		} else if el < 700*time.Millisecond || el > 1800*time.Millisecond {
			t.Errorf("§9.2: VV resent after %v, spec says 1000 ms", el)
		}
		p.s.Close()
	})

	t.Run("equivocation-no-VV-resend", func(t *testing.T) {
		p := dialCaughtUp(t, n.addr, nk)
		k := newKey(t)
		a := chain(t, k, 1, now+100, "eq")
		b := chain(t, k, 1, now+200, "eq2")
		sendBatch(p, a)
		sendBatch(p, b)
		var acks []string
		for len(acks) < 2 {
			l, seen := p.expect("ACK ", 2*time.Second)
			if l == "" {
				t.Fatalf("equivocation: %q", seen)
			}
			acks = append(acks, l)
		}
		if got := p.lines(1500 * time.Millisecond); len(got) != 0 {
			for _, l := range got {
				if strings.HasPrefix(l, "VV") || strings.HasPrefix(l, "ERR") {
					t.Errorf("§9.2: after an equivocation the node sent %q", l)
				}
			}
		}
		p.s.Close()
	})

	t.Run("forked-chain", func(t *testing.T) {
		// changes.md §8 step 4, PROTOCOL.md §9.2: two different seq 1 of one
		// author (an equivocation), then a seq 2 whose prev is the link of the
		// seq 1 the node does not hold. Its signature verifies, so the fork is
		// the author's doing: LIM_EEQUIVOCATION, skipped and acknowledged, the
		// rest of its batch still applied, the connection kept, the state as
		// before. With a signature that does not verify, the same mismatch is
		// LIM_EHASH: the batch is refused and the connection closed.
		db2 := filepath.Join(dir, "fork.db")
		lim.must("--db", db2, "init", "--network-key", hex.EncodeToString(nk[:]))
		n2 := startNode(t, bin, db2)
		defer n2.stop(t)
		k := newKey(t)
		op := func(delta int64) []lp.Op {
			return []lp.Op{{Kind: 'N', Coll: "probe", Doc: "fork", Path: "n", Delta: delta}}
		}
		build := func(seq, hlc uint64, prev [32]byte, delta int64) *lp.Change {
			c, err := lp.BuildChange(k, seq, hlc, prev, op(delta))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		a1 := build(1, now+100, [32]byte{}, 1)
		b1 := build(1, now+200, [32]byte{}, 10)
		b2 := build(2, now+300, b1.Link, 100) // follows the fork the node lacks
		other := chain(t, newKey(t), 1, now+400, "fork-other")[0]

		// This implementation's own receive step says the same.
		mine := lp.NewStore()
		for i, c := range []*lp.Change{a1, b1, b2} {
			out, err := mine.Receive(c)
			var ce *lp.ChangeError
			if i == 0 && (out != lp.Applied || err != nil) {
				t.Fatalf("limproto: a1: %v %v", out, err)
			}
			if i > 0 && (out != lp.Skipped || !errors.As(err, &ce) || ce.Name != lp.EEquivocation) {
				t.Errorf("limproto: change %d of the fork: %v %v, want skipped as LIM_EEQUIVOCATION", i, out, err)
			}
		}

		p := dialCaughtUp(t, n2.addr, nk)
		// ackOrErr reads until ACK or ERR; anything else (VV, PONG) is noted.
		ackOrErr := func(what string) string {
			for {
				l, err := p.s.ReadLine(time.Now().Add(3 * time.Second))
				if err != nil {
					t.Fatalf("%s: no ACK or ERR: %v", what, err)
				}
				if strings.HasPrefix(l, "ACK ") || strings.HasPrefix(l, "ERR ") {
					return l
				}
			}
		}
		sendBatch(p, []*lp.Change{a1})
		if l := ackOrErr("a1"); l != "ACK 1" {
			t.Fatalf("a1: %q", l)
		}
		state := func() (string, string) { return lim.must("--db", db2, "vv"), lim.must("--db", db2, "digest") }
		vv0, digest0 := state()
		sendBatch(p, []*lp.Change{b1})
		if l := ackOrErr("b1"); l != "ACK 1" {
			t.Errorf("the second seq 1 (an equivocation): %q, want ACK 1", l)
		}
		sendBatch(p, []*lp.Change{b2})
		if l := ackOrErr("b2"); l != "ACK 1" {
			t.Fatalf("seq 2 following the other fork: %q, want ACK 1 (changes.md §8 step 4: skipped as LIM_EEQUIVOCATION)", l)
		}
		if vv, d := state(); vv != vv0 || d != digest0 {
			t.Errorf("the skipped fork changed the store: vv %q -> %q, digest %q -> %q", vv0, vv, digest0, d)
		}
		// Skipped, not refused: the rest of a batch is applied ...
		sendBatch(p, []*lp.Change{b2, other})
		if l := ackOrErr("b2+other"); l != "ACK 2" {
			t.Fatalf("forked seq 2, then another author's change: %q, want ACK 2", l)
		}
		// ... and the connection stays in LIVE.
		p.s.Send("PING fork")
		if l, seen := p.expect("PONG ", 2*time.Second); l != "PONG fork" {
			t.Errorf("after the forked seq 2 the connection is not live: %q %q", seen, l)
		}
		p.s.Close()
		// The node holds exactly a1 and other: its digest and vv are those
		// of this implementation's reconstruction of those two changes.
		ref := lp.NewStore()
		for _, c := range []*lp.Change{a1, other} {
			if out, err := ref.Receive(c); out != lp.Applied || err != nil {
				t.Fatalf("limproto: %v %v", out, err)
			}
		}
		want := lp.ComputeState(ref.All()).Digest()
		if vv, d := state(); vv != ref.VVText() || strings.TrimSpace(d) != hex.EncodeToString(want[:]) {
			t.Errorf("after b2+other: vv %q digest %s, want vv %q digest %x", vv, strings.TrimSpace(d), ref.VVText(), want)
		}
		if got := strings.TrimSpace(lim.must("--db", db2, "get", "probe", "fork", "n")); got != "1" {
			t.Errorf("probe/fork n = %s, want 1 (only a1 applied)", got)
		}

		// The same prev mismatch with a signature that does not verify
		// blames the sender: ERR 422 LIM_EHASH, connection closed.
		bad, err := lp.ParseChange(b2.Body + " " + strings.Repeat("0", 128))
		if err != nil {
			t.Fatal(err)
		}
		q := dialCaughtUp(t, n2.addr, nk)
		sendBatch(q, []*lp.Change{bad})
		l, seen := q.expect("ERR ", 2*time.Second)
		if !strings.HasPrefix(l, "ERR 422 LIM_EHASH") {
			t.Errorf("forked seq 2 with a bad signature: %q %q, want ERR 422 LIM_EHASH", seen, l)
		}
		q.s.Close()
	})

	t.Run("window-and-batch-size", func(t *testing.T) {
		// §9.3: batches of at most 500 (liblim), at most 2000 unacknowledged.
		k := newKey(t)
		cs := chain(t, k, 2600, now+1000, "w")
		p := dialCaughtUp(t, n.addr, nk)
		for i := 0; i < len(cs); i += 1000 {
			sendBatch(p, cs[i:min(i+1000, len(cs))])
			if l, _ := p.expect("ACK ", 10*time.Second); l != fmt.Sprintf("ACK %d", min(1000, len(cs)-i)) {
				t.Fatalf("pushing 2600: %q", l)
			}
		}
		p.s.Close()
		q := dialProbe(t, n.addr, nk, true) // never ACKs
		got := q.lines(700 * time.Millisecond)
		chs, ends := 0, []string{}
		for _, l := range got {
			if strings.HasPrefix(l, "CH ") {
				chs++
			} else if strings.HasPrefix(l, "END ") {
				ends = append(ends, l)
			}
		}
		if chs != 2000 {
			t.Errorf("§9.3: without ACKs the node sent %d changes (window 2000); batches %v", chs, ends)
		}
		for _, e := range ends {
			var k int
			fmt.Sscanf(e, "END %d", &k)
			if k > 500 {
				t.Errorf("§9.3: batch %q over 500", e)
			}
		}
		q.s.Close()
	})

	t.Run("small-order-author", func(t *testing.T) {
		// changes.md §6 defers to libsodium. With the identity point as the
		// author, (R = [a]B, S = a mod L) satisfies Go's crypto/ed25519 for every
		// message; libsodium refuses small-order keys.
		seed := make([]byte, 32)
		rand.Read(seed)
		h := sha512.Sum512(seed)
		h[0] &= 248
		h[31] &= 127
		h[31] |= 64
		le := func(b []byte) []byte {
			r := make([]byte, len(b))
			for i := range b {
				r[i] = b[len(b)-1-i]
			}
			return r
		}
		a := new(big.Int).SetBytes(le(h[:32]))
		L, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
		sBytes := le(a.Mod(a, L).FillBytes(make([]byte, 32)))
		R := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		sig := append(append([]byte{}, R...), sBytes...)
		author := make([]byte, 32)
		author[0] = 1
		body := fmt.Sprintf("lim1 %x 1 %016x %064x 1 S probe so x i1", author, now+9000, 0)
		line := body + " " + hex.EncodeToString(sig)
		c, err := lp.ParseChange(line)
		if err != nil {
			t.Fatal(err)
		}
		goAccepts := ed25519.Verify(author, append([]byte("liblim signature v1\x00"), c.Hash[:]...), sig)
		if !goAccepts {
			t.Fatalf("construction error: Go's ed25519.Verify refuses")
		}
		if c.VerifySignature() {
			t.Errorf("limproto accepts a small-order author")
		}
		p := dialCaughtUp(t, n.addr, nk)
		sendBatch(p, []*lp.Change{c})
		l, _ := p.expect("", 2*time.Second)
		t.Logf("FINDING changes.md §6: a change by the identity point (small order), which Go's crypto/ed25519 verifies, gets from the node: %q", l)
		if !strings.HasPrefix(l, "ERR 422 LIM_ESIGNATURE") {
			t.Errorf("node accepted a small-order author: %q", l)
		}
		p.s.Close()
	})

	t.Run("forged-signature-inside-a-run", func(t *testing.T) {
		// changes.md §6, PROTOCOL.md §9.4/§14.3: change 3 names the link of
		// change 2, which covers change 2's signature bytes, so garbage there
		// breaks the chain although only change 3's signature is verified: the
		// batch is refused naming change 2, and nothing of it is stored.
		db2 := filepath.Join(dir, "f.db")
		lim.must("--db", db2, "init", "--network-key", hex.EncodeToString(nk[:]))
		lim.must("--db", db2, "put", "probe", "seed", `{"x":1}`)
		n2 := startNode(t, bin, db2)
		defer n2.stop(t)
		k := newKey(t)
		cs := chain(t, k, 3, now+5000, "forged")
		bad, err := lp.ParseChange(cs[1].Body + " " + strings.Repeat("0", 128))
		if err != nil {
			t.Fatal(err)
		}
		vv0, digest0 := lim.must("--db", db2, "vv"), lim.must("--db", db2, "digest")
		p := dialProbe(t, n2.addr, nk, true)
		p.expect("SYNCED", 2*time.Second)
		sendBatch(p, []*lp.Change{cs[0], bad, cs[2]})
		want := fmt.Sprintf("ERR 422 LIM_ESIGNATURE: change %x.../2: the signature does not verify", cs[0].Author[:8])
		if l, seen := p.expect("ERR ", 2*time.Second); l != want {
			t.Errorf("run with a forged middle signature: %q %q, want %q", seen, l, want)
		}
		p.s.Close()
		if vv, d := lim.must("--db", db2, "vv"), lim.must("--db", db2, "digest"); vv != vv0 || d != digest0 {
			t.Errorf("the refused batch changed the store: vv %q -> %q, digest %q -> %q", vv0, vv, digest0, d)
		}
		if out, code := lim.run("--db", db2, "verify"); code != 0 || strings.TrimSpace(out) != "ok" {
			t.Errorf("lim verify after the refused batch: exit %d: %s", code, out)
		}
	})

	t.Run("author-linked-bad-signature-in-a-run", func(t *testing.T) {
		// §9.4/§14.3: what only an author can do. Its change 2 carries signature
		// bytes that do not verify, and its change 3 names the link of exactly
		// those bytes; in one run the node accepts all three (the last signature
		// vouches for them) and relays them as they came.
		db2 := filepath.Join(dir, "r.db")
		lim.must("--db", db2, "init", "--network-key", hex.EncodeToString(nk[:]))
		n2 := startNode(t, bin, db2)
		defer n2.stop(t)
		k := newKey(t)
		cs := chain(t, k, 2, now+5000, "amort")
		bad, err := lp.ParseChange(cs[1].Body + " " + strings.Repeat("0", 128))
		if err != nil {
			t.Fatal(err)
		}
		c3, err := lp.BuildChange(k, 3, now+5002, bad.Link, []lp.Op{{Kind: 'N', Coll: "probe", Doc: "amort", Path: "n", Delta: 1}})
		if err != nil {
			t.Fatal(err)
		}
		p := dialProbe(t, n2.addr, nk, true)
		p.expect("SYNCED", 2*time.Second)
		sendBatch(p, []*lp.Change{cs[0], bad, c3})
		if l, seen := p.expect("ACK ", 2*time.Second); l != "ACK 3" {
			t.Fatalf("run with an author-linked bad signature: %q %q", seen, l)
		}
		p.s.Close()
		time.Sleep(100 * time.Millisecond)
		vout, vcode := lim.run("--db", db2, "verify")
		t.Logf("lim verify after storing an author-linked bad signature: exit %d: %s", vcode, strings.TrimSpace(vout))
		if strings.TrimSpace(vout) == "ok" {
			t.Errorf("§14.3 says lim verify reports those bytes; it prints ok")
		}
		// A receiver that verifies every signature (changes.md §8 without the
		// run rule) cannot take this node's log; one that amortises (§9.4) can.
		for _, strict := range []bool{true, false} {
			conn, err := net.Dial("tcp", n2.addr)
			if err != nil {
				t.Fatal(err)
			}
			s := lp.NewSession(conn, lp.Config{Role: lp.RoleClient, Priv: newKey(t), NetworkKey: nk})
			if err := s.Handshake(nil, time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			pr := lp.NewPeer(s, lp.NewStore())
			pr.Strict = strict
			var perr error
			for !pr.Idle() && perr == nil {
				perr = pr.Step(time.Now().Add(5 * time.Second))
			}
			s.Close()
			t.Logf("relay of the run to a receiver with strict=%v: %d applied, err %v", strict, len(pr.Received), perr)
			if !strict && (perr != nil || len(pr.Received) != 3) {
				t.Errorf("amortising receiver: %v, %d applied", perr, len(pr.Received))
			}
			if strict && perr == nil {
				t.Errorf("strict receiver accepted a change whose signature does not verify")
			}
		}
		// changes.md §12: import checks signatures by the run rule, so that
		// store's export imports into a fresh store, as a sync would.
		pack := lim.must("--db", db2, "export")
		pf := filepath.Join(dir, "r.pack")
		os.WriteFile(pf, []byte(pack), 0o644)
		db3 := filepath.Join(dir, "r3.db")
		lim.must("--db", db3, "init", "--network-key", hex.EncodeToString(nk[:]))
		out, code := lim.run("--db", db3, "import", pf)
		t.Logf("lim import of that store's export: exit %d %s", code, strings.TrimSpace(out))
		if code != 0 {
			t.Errorf("changes.md §12: the export of a store holding an author-linked change did not import: %s", out)
		}
	})
}
