package lim

import (
	"errors"
	"reflect"
	"sync"
	"testing"
)

func logLen(t *testing.T, db *DB) int {
	t.Helper()
	log, err := db.Log(0)
	must(t, err)
	return len(log)
}

func TestUpdateCommitsOneChange(t *testing.T) {
	db := openDB(t)
	before := logLen(t, db)
	var inside map[string]any
	err := db.Update(func(tx *Tx) error {
		must(t, tx.Put("acct", "a", map[string]any{"owner": "ann"}))
		must(t, tx.Incr("acct", "a", "balance", 100))
		must(t, tx.Set("acct", "a", "open", true))
		must(t, tx.SetAdd("acct", "a", "tags", "vip"))
		must(t, tx.Put("acct", "b", map[string]any{"owner": "bob", "tmp": 1}))
		must(t, tx.DeleteField("acct", "b", "tmp"))
		must(t, tx.Put("acct", "c", map[string]any{"x": 1}))
		must(t, tx.Delete("acct", "c"))
		must(t, tx.SetRemove("acct", "a", "tags", "nope"))
		var err error
		inside, err = tx.Get("acct", "a") // sees its own writes
		must(t, err)
		v, err := tx.GetField("acct", "a", "balance")
		must(t, err)
		if v != int64(100) {
			t.Errorf("GetField in tx = %#v", v)
		}
		js, err := tx.GetJSON("acct", "b", "")
		must(t, err)
		if string(js) != `{"owner":"bob"}` {
			t.Errorf("GetJSON in tx = %s", js)
		}
		return nil
	})
	must(t, err)
	want := map[string]any{"owner": "ann", "balance": int64(100), "open": true, "tags": []any{"vip"}}
	if !reflect.DeepEqual(inside, want) {
		t.Fatalf("inside: %#v", inside)
	}
	got, err := db.Get("acct", "a")
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after commit: %#v", got)
	}
	if n := logLen(t, db); n != before+1 {
		t.Fatalf("Update made %d changes, want 1", n-before)
	}
}

func TestUpdateRollsBackOnError(t *testing.T) {
	db := openDB(t)
	must(t, db.Put("c", "keep", map[string]any{"v": 1}))
	before := logLen(t, db)
	boom := errors.New("boom")
	var leaked *Tx
	err := db.Update(func(tx *Tx) error {
		leaked = tx
		must(t, tx.Put("c", "keep", map[string]any{"v": 2}))
		must(t, tx.Put("c", "new", map[string]any{"v": 3}))
		return boom
	})
	if err != boom {
		t.Fatalf("Update returned %v, want the function's error", err)
	}
	got, err := db.Get("c", "keep")
	must(t, err)
	if got["v"] != int64(1) {
		t.Fatalf("rolled back write is visible: %#v", got)
	}
	if _, err := db.Get("c", "new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rolled back document exists: %v", err)
	}
	if logLen(t, db) != before {
		t.Fatal("a rolled back transaction left a change")
	}
	// A Tx kept past its Update is dead.
	if err := leaked.Put("c", "x", map[string]any{"a": 1}); !errors.Is(err, ErrTxn) {
		t.Fatalf("Put on a finished Tx: %v", err)
	}
	// A failed write inside a transaction leaves the rest of it intact.
	must(t, db.Update(func(tx *Tx) error {
		must(t, tx.Put("c", "a", map[string]any{"v": 1}))
		if err := tx.Put("", "bad", map[string]any{"v": 1}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad write: %v", err)
		}
		return tx.Put("c", "b", map[string]any{"v": 2})
	}))
	for _, doc := range []string{"a", "b"} {
		if _, err := db.Get("c", doc); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
	}
}

func TestUpdateRollsBackOnPanic(t *testing.T) {
	db := openDB(t)
	before := logLen(t, db)
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Fatalf("recovered %v, want the original panic value", r)
			}
		}()
		db.Update(func(tx *Tx) error {
			must(t, tx.Put("c", "d", map[string]any{"v": 1}))
			panic("kaboom")
		})
		t.Fatal("Update did not re-panic")
	}()
	if _, err := db.Get("c", "d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("write of the panicking transaction is visible: %v", err)
	}
	if logLen(t, db) != before {
		t.Fatal("a panicking transaction left a change")
	}
	// The store is usable afterwards, from any goroutine.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			must(t, db.Update(func(tx *Tx) error { return tx.Incr("c", "n", "n", 1) }))
		}()
	}
	wg.Wait()
	v, err := db.GetField("c", "n", "n")
	must(t, err)
	if v != int64(4) {
		t.Fatalf("counter = %v", v)
	}
}

// Writers on other goroutines wait for a transaction and then proceed;
// their writes are not part of it.
func TestUpdateWithConcurrentWriters(t *testing.T) {
	db := openDB(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := db.Update(func(tx *Tx) error {
			must(t, tx.Put("c", "tx", map[string]any{"v": 1}))
			close(started)
			<-release
			return errors.New("roll back")
		})
		if err == nil {
			t.Error("expected the rollback error")
		}
	}()
	<-started
	done := make(chan error, 1)
	go func() { done <- db.Put("c", "outside", map[string]any{"v": 2}) }()
	close(release)
	must(t, <-done)
	wg.Wait()
	if _, err := db.Get("c", "outside"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get("c", "tx"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the outside write dragged the rolled-back one in: %v", err)
	}
}
