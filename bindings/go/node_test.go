package lim

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitChange receives from ch until a change by author arrives.
func waitChange(t *testing.T, ch <-chan Change, author string, timeout time.Duration) Change {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("Changes channel closed early")
			}
			if c.Author == author {
				return c
			}
		case <-deadline:
			t.Fatalf("no change by %s… within %v", author[:8], timeout)
		}
	}
}

type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestTwoGoNodes: two nodes on loopback TCP push writes both ways; Changes
// reports the remote ones; Status, RemoteStatus, peers.
func TestTwoGoNodes(t *testing.T) {
	a, b := pair(t)
	var logA lineLog
	na, err := StartNode(a, NodeConfig{Listen: "127.0.0.1:0", Log: logA.add})
	must(t, err)
	defer na.Close()
	if !strings.HasPrefix(na.Addr(), "127.0.0.1:") || strings.HasSuffix(na.Addr(), ":0") {
		t.Fatalf("Addr() = %q", na.Addr())
	}
	nb, err := StartNode(b, NodeConfig{Peers: []string{na.Addr()}, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	must(t, err)
	defer nb.Close()
	if nb.Addr() != "" {
		t.Fatalf("a node without Listen has Addr %q", nb.Addr())
	}
	ctx := ctxTimeout(t, 60*time.Second)
	chA, chB := na.Changes(ctx), nb.Changes(ctx)
	chB2 := nb.Changes(ctx) // every subscriber sees every change

	must(t, a.Put("notes", "n1", map[string]any{"title": "from a", "blob": []byte{9, 9}}))
	c := waitChange(t, chB, a.ReplicaID(), 20*time.Second)
	if c.Seq != 1 {
		t.Fatalf("change %+v", c)
	}
	waitChange(t, chB2, a.ReplicaID(), 20*time.Second)
	doc, err := b.Get("notes", "n1")
	must(t, err)
	if !reflect.DeepEqual(doc, map[string]any{"title": "from a", "blob": []byte{9, 9}}) {
		t.Fatalf("b sees %#v", doc)
	}

	must(t, b.Update(func(tx *Tx) error {
		if err := tx.Incr("notes", "n1", "likes", 2); err != nil {
			return err
		}
		return tx.SetAdd("notes", "n1", "tags", "synced")
	}))
	waitChange(t, chA, b.ReplicaID(), 20*time.Second)
	eventually(t, 20*time.Second, "digests to agree", func() bool { return digest(t, a) == digest(t, b) })

	st, err := nb.Status()
	must(t, err)
	if st.ID != b.ReplicaID() || len(st.Peers) != 1 || !st.Peers[0].Connected ||
		st.Peers[0].ID != a.ReplicaID() || st.Peers[0].Direction != "out" || st.Peers[0].ChangesIn < 1 {
		t.Fatalf("status of b: %+v", st)
	}
	rs, err := openDB(t, WithNetworkKey(a.NetworkKey())).RemoteStatus(ctx, na.Addr())
	must(t, err)
	if rs.ID != a.ReplicaID() || rs.Listen != na.Addr() {
		t.Fatalf("remote status of a: %+v", rs)
	}
	if !strings.Contains(logA.String(), "listening on "+na.Addr()) {
		t.Fatalf("node log:\n%s", logA.String())
	}

	// Drop the peer: b's writes stay local; add it back: they flow again.
	must(t, nb.RemovePeer(na.Addr()))
	must(t, b.Put("notes", "n2", map[string]any{"v": 1}))
	time.Sleep(300 * time.Millisecond)
	if _, err := a.Get("notes", "n2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a got n2 without a peer: %v", err)
	}
	must(t, nb.AddPeer(na.Addr()))
	waitChange(t, chA, b.ReplicaID(), 20*time.Second)
	eventually(t, 20*time.Second, "n2 to reach a", func() bool { _, err := a.Get("notes", "n2"); return err == nil })
	if nb.EventsDropped() != 0 {
		t.Fatal("events dropped")
	}

	// Closing the node closes its Changes channels; a cancelled context
	// closes just its own.
	sub, cancel := context.WithCancel(ctx)
	chC := na.Changes(sub)
	cancel()
	expectClosed(t, chC)
	must(t, nb.Close())
	expectClosed(t, chB)
	expectClosed(t, chB2)
	expectClosed(t, nb.Changes(ctx))
}

func expectClosed(t *testing.T, ch <-chan Change) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed")
		}
	}
}

func TestSyncOnceAndAllow(t *testing.T) {
	a, b := pair(t)
	must(t, a.Put("c", "a", map[string]any{"v": 1}))
	must(t, b.Put("c", "b", map[string]any{"v": 2}))
	na, err := StartNode(a, NodeConfig{Listen: "127.0.0.1:0", Allow: []string{b.ReplicaID()}})
	must(t, err)
	defer na.Close()
	ctx := ctxTimeout(t, 30*time.Second)
	st, err := b.SyncOnce(ctx, na.Addr())
	must(t, err)
	if st.Received != 1 || st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
	if digest(t, a) != digest(t, b) {
		t.Fatal("not converged after SyncOnce")
	}
	// A member of the network that is not on the allow list is refused.
	c := openDB(t, WithNetworkKey(a.NetworkKey()))
	if _, err := c.SyncOnce(ctx, na.Addr()); !errors.Is(err, ErrAuth) {
		t.Fatalf("not allowed: %v", err)
	}
	// An empty (non-nil) allow list admits nobody.
	nc, err := StartNode(c, NodeConfig{Listen: "127.0.0.1:0", Allow: []string{}})
	must(t, err)
	defer nc.Close()
	if _, err := b.SyncOnce(ctx, nc.Addr()); !errors.Is(err, ErrAuth) {
		t.Fatalf("allow nobody: %v", err)
	}
	// Node.SyncOnce is the store's.
	_, err = nc.SyncOnce(ctx, na.Addr())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Node.SyncOnce: %v", err)
	}
	if _, err := StartNode(openDB(t), NodeConfig{Allow: []string{"xyz"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad allow id: %v", err)
	}
}

// TestLimServe: a Go store syncs with a `lim serve` process, both one-shot
// and with a Go node that sees (through Changes) a write made by the lim
// command on the served store.
func TestLimServe(t *testing.T) {
	dir := t.TempDir()
	g := openAt(t, filepath.Join(dir, "go.db"))
	must(t, g.Put("people", "grace", map[string]any{"name": "Grace", "langs": map[string]any{"first": "COBOL"}}))
	served := filepath.Join(dir, "served.db")
	limCmd(t, "--db", served, "init", "--network-key", hexKey(g))
	limCmd(t, "--db", served, "put", "people", "ada", `{"name":"Ada","born":1815,"pi":3.5}`)
	addr := limServe(t, served, g.NetworkKey())

	ctx := ctxTimeout(t, 60*time.Second)
	st, err := g.SyncOnce(ctx, addr)
	must(t, err)
	if st.Received != 1 || st.Sent != 1 {
		t.Fatalf("sync stats %+v", st)
	}
	doc, err := g.Get("people", "ada")
	must(t, err)
	if !reflect.DeepEqual(doc, map[string]any{"name": "Ada", "born": int64(1815), "pi": 3.5}) {
		t.Fatalf("Go sees %#v", doc)
	}
	out := limCmd(t, "--db", served, "get", "people", "grace")
	if !strings.Contains(out, `"first":"COBOL"`) {
		t.Fatalf("lim get: %s", out)
	}

	// A live Go node peered with the lim node.
	node, err := StartNode(g, NodeConfig{Peers: []string{addr}, ReconnectMin: 20 * time.Millisecond})
	must(t, err)
	defer node.Close()
	changes := node.Changes(ctx)
	eventually(t, 20*time.Second, "the Go node to connect", func() bool {
		s, err := node.Status()
		return err == nil && len(s.Peers) == 1 && s.Peers[0].Connected
	})
	limCmd(t, "--db", served, "incr", "people", "ada", "visits", "3")
	c := waitChange(t, changes, strings.TrimSpace(limID(t, served)), 20*time.Second)
	t.Logf("remote change %+v", c)
	eventually(t, 10*time.Second, "the counter", func() bool {
		v, err := g.GetField("people", "ada", "visits")
		return err == nil && v == int64(3)
	})
	must(t, g.Put("people", "grace", map[string]any{"navy": true}))
	eventually(t, 20*time.Second, "the Go write to reach lim", func() bool {
		return strings.Contains(limCmd(t, "--db", served, "get", "people", "grace"), `"navy":true`)
	})
	st2, err := g.RemoteStatus(ctx, addr)
	must(t, err)
	if len(st2.Peers) == 0 {
		t.Fatalf("lim serve status: %+v", st2)
	}
}

func hexKey(db *DB) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range db.NetworkKey() {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

// limID is the replica id of a store, from `lim id`.
func limID(t *testing.T, path string) string {
	for _, line := range strings.Split(limCmd(t, "--db", path, "id"), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "replica_id" {
			return f[1]
		}
	}
	t.Fatalf("cannot read the replica id of %s", path)
	return ""
}
