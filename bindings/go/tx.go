//go:build cgo

package lim

/*
#include "limgo.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
)

// Tx is an open transaction, valid only inside the function given to
// Update and only on the goroutine running it. Everything written through
// it becomes one change when that function returns nil.
type Tx struct {
	db   *DB
	done atomic.Bool
}

// Update runs fn in a transaction: the writes fn makes through tx are
// committed as one change if fn returns nil, and rolled back if fn returns
// an error (which Update returns) or panics (the panic continues after the
// rollback).
//
// liblim ties a transaction to the OS thread that began it, so Update locks
// the goroutine to its thread until it returns. Writes from other goroutines
// (and remote changes applied by a node) wait until the transaction ends;
// do not wait in fn for another goroutine that writes to the same DB, and
// do not use tx from another goroutine. A nested Update fails with ErrTxn.
func (d *DB) Update(fn func(tx *Tx) error) (err error) {
	if !d.h.enter() {
		return errClosed("store")
	}
	defer d.h.exit()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var e C.limgo_err
	if rc := C.limgo_txn(d.ptr, 0, &e); rc < 0 {
		return cError(rc, &e)
	}
	tx := &Tx{db: d}
	finished := false
	defer func() {
		tx.done.Store(true)
		if !finished { // fn panicked or called runtime.Goexit
			var e C.limgo_err
			C.limgo_txn(d.ptr, 2, &e)
		}
		runtime.KeepAlive(d)
	}()
	if err = fn(tx); err != nil {
		finished = true
		C.limgo_txn(d.ptr, 2, &e)
		return err
	}
	finished = true
	if rc := C.limgo_txn(d.ptr, 1, &e); rc < 0 {
		return cError(rc, &e)
	}
	return nil
}

func (t *Tx) run(f func(p *C.lim_db, e *C.limgo_err) C.int) error {
	if t.done.Load() {
		return newError(CodeTxn, "the transaction has ended (a Tx is only valid inside its Update function)")
	}
	var e C.limgo_err
	rc := f(t.db.ptr, &e)
	runtime.KeepAlive(t.db)
	if rc < 0 {
		return cError(rc, &e)
	}
	return nil
}

// Put is DB.Put inside the transaction.
func (t *Tx) Put(coll, doc string, fields map[string]any) error { return put(t, coll, doc, fields) }

// Set is DB.Set inside the transaction.
func (t *Tx) Set(coll, doc, path string, value any) error { return set(t, 0, coll, doc, path, value) }

// Delete is DB.Delete inside the transaction.
func (t *Tx) Delete(coll, doc string) error { return del(t, coll, doc, "") }

// DeleteField is DB.DeleteField inside the transaction.
func (t *Tx) DeleteField(coll, doc, path string) error {
	if path == "" {
		return newError(CodeInvalid, "field path must not be empty")
	}
	return del(t, coll, doc, path)
}

// Incr is DB.Incr inside the transaction.
func (t *Tx) Incr(coll, doc, path string, delta int64) error { return incr(t, coll, doc, path, delta) }

// SetAdd is DB.SetAdd inside the transaction.
func (t *Tx) SetAdd(coll, doc, path string, elem any) error { return set(t, 1, coll, doc, path, elem) }

// SetRemove is DB.SetRemove inside the transaction.
func (t *Tx) SetRemove(coll, doc, path string, elem any) error {
	return set(t, 2, coll, doc, path, elem)
}

// Get reads a document, including this transaction's uncommitted writes.
func (t *Tx) Get(coll, doc string) (map[string]any, error) { return get(t, coll, doc) }

// GetJSON is DB.GetJSON inside the transaction.
func (t *Tx) GetJSON(coll, doc, path string) ([]byte, error) { return getJSON(t, coll, doc, path) }

// GetField is DB.GetField inside the transaction.
func (t *Tx) GetField(coll, doc, path string) (any, error) { return getField(t, coll, doc, path) }
