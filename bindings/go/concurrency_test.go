package lim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUseAfterClose(t *testing.T) {
	db := openDB(t)
	must(t, db.Put("c", "d", map[string]any{"v": 1}))
	node, err := StartNode(db, NodeConfig{Listen: "127.0.0.1:0"})
	must(t, err)
	ctx := ctxTimeout(t, 30*time.Second)
	changes := node.Changes(ctx)

	id := db.ReplicaID()
	must(t, db.Close()) // closes the node too
	must(t, db.Close()) // a second Close is a no-op
	must(t, node.Close())
	must(t, node.Close())
	expectClosed(t, changes)

	if db.ReplicaID() != id || len(db.NetworkKey()) != 32 {
		t.Fatal("identity not kept after Close")
	}
	calls := map[string]error{
		"Put":         db.Put("c", "d", map[string]any{"v": 1}),
		"Set":         db.Set("c", "d", "v", 1),
		"Delete":      db.Delete("c", "d"),
		"DeleteField": db.DeleteField("c", "d", "v"),
		"Incr":        db.Incr("c", "d", "n", 1),
		"SetAdd":      db.SetAdd("c", "d", "s", 1),
		"SetRemove":   db.SetRemove("c", "d", "s", 1),
		"Update":      db.Update(func(*Tx) error { t.Error("Update ran on a closed DB"); return nil }),
		"Verify":      db.Verify(),
		"Rebuild":     db.Rebuild(),
		"Export":      db.Export(&bytes.Buffer{}),
		"AddPeer":     node.AddPeer("127.0.0.1:1"),
		"RemovePeer":  node.RemovePeer("127.0.0.1:1"),
	}
	_, calls["Get"] = db.Get("c", "d")
	_, calls["GetJSON"] = db.GetJSON("c", "d", "")
	_, calls["GetField"] = db.GetField("c", "d", "v")
	_, calls["Digest"] = db.Digest()
	_, calls["VersionVector"] = db.VersionVector()
	_, calls["Log"] = db.Log(0)
	_, calls["Apply"] = db.Apply([]byte("x"))
	_, calls["Import"] = db.Import(strings.NewReader(""))
	_, calls["SyncOnce"] = db.SyncOnce(ctx, "127.0.0.1:1")
	_, calls["RemoteStatus"] = db.RemoteStatus(ctx, "127.0.0.1:1")
	_, calls["StartNode"] = StartNode(db, NodeConfig{})
	_, calls["Status"] = node.Status()
	_, calls["Node.SyncOnce"] = node.SyncOnce(ctx, "127.0.0.1:1")
	for _, err := range db.Keys("c") {
		calls["Keys"] = err
	}
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	expectClosed(t, node.Changes(ctx))
	if node.EventsDropped() != 0 {
		t.Error("EventsDropped on a closed node")
	}
}

// TestEightGoroutines hammers one store (with a node attached) from 8
// goroutines at once, then closes it while they are still running.
func TestEightGoroutines(t *testing.T) {
	db := openDB(t)
	peer := openDB(t, WithNetworkKey(db.NetworkKey()))
	node, err := StartNode(db, NodeConfig{Listen: "127.0.0.1:0"})
	must(t, err)
	defer node.Close()
	ctx := ctxTimeout(t, 60*time.Second)
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			err := func() error {
				for i := 0; i < rounds; i++ {
					doc := fmt.Sprintf("w%d-%d", w, i)
					if err := db.Put("c", doc, map[string]any{"w": w, "i": i, "b": []byte{byte(i)}}); err != nil {
						return err
					}
					if err := db.Incr("c", "total", "n", 1); err != nil {
						return err
					}
					if _, err := db.Get("c", doc); err != nil {
						return err
					}
					switch i % 5 {
					case 0:
						if err := db.Update(func(tx *Tx) error {
							if err := tx.Incr("c", "total", "tx", 1); err != nil {
								return err
							}
							return tx.SetAdd("c", "total", "workers", int64(w))
						}); err != nil {
							return err
						}
					case 1:
						for _, err := range db.Keys("c", KeysLimit(10)) {
							if err != nil {
								return err
							}
						}
					case 2:
						if _, err := db.Digest(); err != nil {
							return err
						}
					case 3:
						if _, err := node.Status(); err != nil {
							return err
						}
					case 4:
						if w%4 == 0 {
							if _, err := peer.SyncOnce(ctx, node.Addr()); err != nil {
								return err
							}
						}
					}
				}
				return nil
			}()
			errs <- err
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	v, err := db.GetField("c", "total", "n")
	must(t, err)
	if v != int64(workers*rounds) {
		t.Fatalf("counter = %v, want %d", v, workers*rounds)
	}
	set, err := db.GetField("c", "total", "workers")
	must(t, err)
	if len(set.([]any)) != workers {
		t.Fatalf("set = %v", set)
	}

	// Close while 8 goroutines keep calling: every call either works or
	// returns ErrClosed, and Close waits for those in flight.
	var ok, closed atomic.Int64
	stop := make(chan struct{})
	var wg2 sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg2.Add(1)
		go func(w int) {
			defer wg2.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i%2 == 0 {
					err = db.Put("c", fmt.Sprintf("late%d", w), map[string]any{"i": i})
				} else {
					_, err = db.Get("c", "total")
				}
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrClosed):
					closed.Add(1)
				default:
					t.Errorf("unexpected: %v", err)
					return
				}
			}
		}(w)
	}
	time.Sleep(100 * time.Millisecond)
	must(t, db.Close())
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg2.Wait()
	if ok.Load() == 0 || closed.Load() == 0 {
		t.Fatalf("ok=%d closed=%d", ok.Load(), closed.Load())
	}
	if _, err := node.Status(); !errors.Is(err, ErrClosed) {
		t.Fatalf("node after its DB closed: %v", err)
	}
}

// TestChangesManySubscribers: subscribers come and go while changes flow.
func TestChangesManySubscribers(t *testing.T) {
	a, b := pair(t)
	na, err := StartNode(a, NodeConfig{Listen: "127.0.0.1:0"})
	must(t, err)
	defer na.Close()
	nb, err := StartNode(b, NodeConfig{Peers: []string{na.Addr()}, ReconnectMin: 20 * time.Millisecond})
	must(t, err)
	defer nb.Close()
	ctx := ctxTimeout(t, 60*time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		sub, cancel := context.WithCancel(ctx)
		ch := nb.Changes(sub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			seen := 0
			for c := range ch {
				if c.Author == a.ReplicaID() {
					if seen++; seen == 5 {
						cancel()
					}
				}
			}
		}()
	}
	for i := 0; i < 5; i++ {
		must(t, a.Put("c", fmt.Sprintf("d%d", i), map[string]any{"i": i}))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("subscribers did not all see 5 changes")
	}
}
