//go:build cgo

package lim

/*
#include "limgo.h"
*/
import "C"

import (
	"encoding/hex"
	"iter"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Version returns the version of the C library, e.g. "0.1.0".
func Version() string { return C.GoString(C.lim_version()) }

// DB is an open liblim store. It is safe for concurrent use by many
// goroutines (the C library serialises calls on one store). Close it when
// done; a finalizer closes a DB that is garbage collected while still open,
// but relying on that keeps the file open for an unpredictable time.
type DB struct {
	h     handleState
	ptr   *C.lim_db
	path  string
	id    string
	key   []byte
	clock cgo.Handle

	nodesMu sync.Mutex
	nodes   map[*nodeState]struct{}
}

type openConfig struct {
	create     bool
	syncFull   bool
	maxDrift   time.Duration
	networkKey []byte
	clock      func() time.Time
}

// Option configures Open.
type Option func(*openConfig)

// WithCreate sets whether Open creates a missing store (default true).
// With false, opening a path where no store exists fails with ErrNotFound.
func WithCreate(create bool) Option { return func(c *openConfig) { c.create = create } }

// WithSyncFull makes commits durable across power loss (SQLite
// synchronous=FULL) instead of across process crashes only.
func WithSyncFull() Option { return func(c *openConfig) { c.syncFull = true } }

// WithMaxDrift sets how far in the future (by this store's clock) a change
// may be stamped and still be accepted (default 60 s).
func WithMaxDrift(d time.Duration) Option { return func(c *openConfig) { c.maxDrift = d } }

// WithNetworkKey gives the 32-byte network key for a new store (default:
// random), or checks it against the key of an existing store. Stores sync
// only with stores of the same network key.
func WithNetworkKey(key []byte) Option {
	return func(c *openConfig) { c.networkKey = append([]byte(nil), key...) }
}

// WithClock replaces the wall clock the store stamps changes with (tests).
// now is called from C with the store locked: it must not call the DB.
func WithClock(now func() time.Time) Option { return func(c *openConfig) { c.clock = now } }

// Open opens the store at path, creating it unless WithCreate(false) is
// given. ":memory:" opens a store that lives only as long as the DB.
func Open(path string, opts ...Option) (*DB, error) {
	cfg := openConfig{create: true, maxDrift: -1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.networkKey != nil && len(cfg.networkKey) != C.LIM_NETWORK_KEY_BYTES {
		return nil, newError(CodeInvalid, "the network key must be %d bytes, not %d", C.LIM_NETWORK_KEY_BYTES, len(cfg.networkKey))
	}
	if cfg.maxDrift < -1 {
		return nil, newError(CodeInvalid, "the maximum clock drift must not be negative")
	}
	var cs cstrings
	defer cs.free()
	cpath, err := cs.add(path, "the store path")
	if err != nil {
		return nil, err
	}
	var keyPtr *C.uchar
	if cfg.networkKey != nil {
		keyPtr = (*C.uchar)(unsafe.Pointer(&cfg.networkKey[0]))
	}
	d := &DB{path: path}
	if cfg.clock != nil {
		d.clock = cgo.NewHandle(cfg.clock)
	}
	drift := C.int64_t(-1)
	if cfg.maxDrift >= 0 {
		drift = C.int64_t(cfg.maxDrift.Milliseconds())
	}
	var e C.limgo_err
	rc := C.limgo_open(&d.ptr, cpath, cbool(cfg.create), cbool(cfg.syncFull), drift, keyPtr, C.uintptr_t(d.clock), &e)
	runtime.KeepAlive(cfg.networkKey)
	if rc < 0 {
		if d.clock != 0 {
			d.clock.Delete()
		}
		return nil, cError(rc, &e)
	}
	liveHandles.Add(1)
	var id [C.LIM_ID_BYTES]byte
	var key [C.LIM_NETWORK_KEY_BYTES]byte
	if rc := C.limgo_ids(d.ptr, (*C.uchar)(unsafe.Pointer(&id[0])), (*C.uchar)(unsafe.Pointer(&key[0])), &e); rc < 0 {
		err := cError(rc, &e)
		d.free()
		return nil, err
	}
	d.id = hex.EncodeToString(id[:])
	d.key = key[:]
	runtime.SetFinalizer(d, (*DB).Close)
	return d, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// free releases the C store (after every node on it).
func (d *DB) free() {
	C.lim_db_free(d.ptr)
	d.ptr = nil
	liveHandles.Add(-1)
	if d.clock != 0 {
		d.clock.Delete()
		d.clock = 0
	}
}

// Close stops the store's nodes, waits for calls in flight on other
// goroutines, and closes the store (rolling back an unfinished transaction).
// Calls after Close return ErrClosed; a second Close returns nil. Do not
// call Close from inside Update or a callback of this DB.
func (d *DB) Close() error {
	if !d.h.shut() {
		return nil
	}
	runtime.SetFinalizer(d, nil)
	d.nodesMu.Lock()
	nodes := d.nodes
	d.nodes = nil
	d.nodesMu.Unlock()
	for n := range nodes { // lim.h: free the node before the db
		n.close()
	}
	d.free()
	return nil
}

// Path returns the path the store was opened with.
func (d *DB) Path() string { return d.path }

// ReplicaID returns this store's replica id (its Ed25519 public key) as 64
// lowercase hex digits. It stays available after Close.
func (d *DB) ReplicaID() string { return d.id }

// NetworkKey returns a copy of the store's 32-byte network key. It stays
// available after Close.
func (d *DB) NetworkKey() []byte { return append([]byte(nil), d.key...) }

// run makes one C call on the open store.
func (d *DB) run(f func(p *C.lim_db, e *C.limgo_err) C.int) error {
	if !d.h.enter() {
		return errClosed("store")
	}
	defer d.h.exit()
	var e C.limgo_err
	rc := f(d.ptr, &e)
	runtime.KeepAlive(d)
	if rc < 0 {
		return cError(rc, &e)
	}
	return nil
}

// runner is a DB (each call its own change) or a Tx (calls join the
// transaction).
type runner interface {
	run(f func(p *C.lim_db, e *C.limgo_err) C.int) error
}

// ---------------------------------------------------------------- writes

// Put merges fields into the document coll/doc as one change: each leaf
// becomes a field (nested maps give dotted paths such as "addr.city");
// fields not named are left alone. See the package documentation for the
// value types.
func (d *DB) Put(coll, doc string, fields map[string]any) error { return put(d, coll, doc, fields) }

// Set sets one field (a dotted path) to a scalar value.
func (d *DB) Set(coll, doc, path string, value any) error { return set(d, 0, coll, doc, path, value) }

// Delete deletes the document coll/doc.
func (d *DB) Delete(coll, doc string) error { return del(d, coll, doc, "") }

// DeleteField deletes one field, and every field below it, of coll/doc.
func (d *DB) DeleteField(coll, doc, path string) error {
	if path == "" {
		return newError(CodeInvalid, "field path must not be empty")
	}
	return del(d, coll, doc, path)
}

// Incr adds delta (which may be negative) to the counter field path.
func (d *DB) Incr(coll, doc, path string, delta int64) error { return incr(d, coll, doc, path, delta) }

// SetAdd adds elem to the set field path (an add-wins set).
func (d *DB) SetAdd(coll, doc, path string, elem any) error { return set(d, 1, coll, doc, path, elem) }

// SetRemove removes elem from the set field path (removing only the adds
// this store has seen). Removing a non-member is not an error.
func (d *DB) SetRemove(coll, doc, path string, elem any) error {
	return set(d, 2, coll, doc, path, elem)
}

func put(r runner, coll, doc string, fields map[string]any) error {
	js, nuls, err := encodeObject(fields)
	if err != nil {
		return err
	}
	if len(nuls) > 0 {
		if d, ok := r.(*DB); ok { // the JSON and the sets must be one change
			return d.Update(func(tx *Tx) error { return putJSONAndNuls(tx, coll, doc, js, nuls) })
		}
	}
	return putJSONAndNuls(r, coll, doc, js, nuls)
}

func putJSONAndNuls(r runner, coll, doc string, js []byte, nuls []nulLeaf) error {
	var cs cstrings
	defer cs.free()
	ccoll, err := cs.add(coll, "the collection name")
	if err != nil {
		return err
	}
	cdoc, err := cs.add(doc, "the document key")
	if err != nil {
		return err
	}
	err = r.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		return C.limgo_put_json(p, ccoll, cdoc, (*C.char)(unsafe.Pointer(&js[0])), C.size_t(len(js)), e)
	})
	for i := 0; err == nil && i < len(nuls); i++ {
		err = set(r, 0, coll, doc, nuls[i].path, nuls[i].value)
	}
	return err
}

func target(cs *cstrings, coll, doc, path string) (ccoll, cdoc, cpath *C.char, err error) {
	if ccoll, err = cs.add(coll, "the collection name"); err != nil {
		return
	}
	if cdoc, err = cs.add(doc, "the document key"); err != nil {
		return
	}
	cpath, err = cs.opt(path, "the field path")
	return
}

func set(r runner, op int, coll, doc, path string, value any) error {
	s, err := toScalar(value)
	if err != nil {
		return err
	}
	if path == "" {
		return newError(CodeInvalid, "field path must not be empty")
	}
	var cs cstrings
	defer cs.free()
	ccoll, cdoc, cpath, err := target(&cs, coll, doc, path)
	if err != nil {
		return err
	}
	var data *C.char
	if len(s.data) > 0 {
		data = (*C.char)(unsafe.Pointer(unsafe.StringData(s.data)))
	}
	err = r.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		return C.limgo_set(p, ccoll, cdoc, cpath, C.int(op), C.int(s.typ), cbool(s.boolean),
			C.int64_t(s.integer), C.double(s.real), data, C.size_t(len(s.data)), e)
	})
	runtime.KeepAlive(s.data)
	return err
}

func del(r runner, coll, doc, path string) error {
	var cs cstrings
	defer cs.free()
	ccoll, cdoc, cpath, err := target(&cs, coll, doc, path)
	if err != nil {
		return err
	}
	return r.run(func(p *C.lim_db, e *C.limgo_err) C.int { return C.limgo_delete(p, ccoll, cdoc, cpath, e) })
}

func incr(r runner, coll, doc, path string, delta int64) error {
	if path == "" {
		return newError(CodeInvalid, "field path must not be empty")
	}
	var cs cstrings
	defer cs.free()
	ccoll, cdoc, cpath, err := target(&cs, coll, doc, path)
	if err != nil {
		return err
	}
	return r.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		return C.limgo_incr(p, ccoll, cdoc, cpath, C.int64_t(delta), e)
	})
}

// ---------------------------------------------------------------- reads

// Get returns the document coll/doc, or an error matching ErrNotFound.
func (d *DB) Get(coll, doc string) (map[string]any, error) { return get(d, coll, doc) }

// GetJSON returns the document (path "") or the field or subtree at path as
// liblim's JSON: bytes as {"$base64": "..."}, counters as numbers, sets as
// arrays.
func (d *DB) GetJSON(coll, doc, path string) ([]byte, error) { return getJSON(d, coll, doc, path) }

// GetField reads one field through the typed API: a register's value, a
// counter's sum (int64) or a set's elements ([]any, canonical order).
// A path that names an object rather than a field is ErrNotFound; use
// GetJSON for subtrees.
func (d *DB) GetField(coll, doc, path string) (any, error) { return getField(d, coll, doc, path) }

func get(r runner, coll, doc string) (map[string]any, error) {
	js, err := getJSON(r, coll, doc, "")
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(js)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, newError(CodeCorrupt, "liblim returned a document that is not a JSON object")
	}
	return m, nil
}

func getJSON(r runner, coll, doc, path string) ([]byte, error) {
	var cs cstrings
	defer cs.free()
	ccoll, cdoc, cpath, err := target(&cs, coll, doc, path)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = r.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var buf C.lim_buf
		rc := C.limgo_get_json(p, ccoll, cdoc, cpath, &buf, e)
		if rc == 0 {
			out = bufBytes(&buf)
		}
		return rc
	})
	return out, err
}

func getField(r runner, coll, doc, path string) (any, error) {
	if path == "" {
		return nil, newError(CodeInvalid, "field path must not be empty")
	}
	var cs cstrings
	defer cs.free()
	ccoll, cdoc, cpath, err := target(&cs, coll, doc, path)
	if err != nil {
		return nil, err
	}
	var out any
	err = r.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var f *C.lim_field
		rc := C.limgo_get_field(&f, p, ccoll, cdoc, cpath, e)
		if rc < 0 {
			return rc
		}
		defer C.lim_field_free(f)
		var v C.lim_value
		if C.lim_field_kind(f) != C.LIM_KIND_SET {
			if rc = C.limgo_field_value(f, &v, e); rc == 0 {
				out = goValue(&v)
			}
			return rc
		}
		n := C.lim_field_count(f)
		elems := make([]any, 0, int(n))
		for i := C.size_t(0); i < n; i++ {
			if rc = C.limgo_field_element(f, i, &v, e); rc < 0 {
				return rc
			}
			elems = append(elems, goValue(&v))
		}
		out = elems
		return 0
	})
	return out, err
}

// goValue copies a lim_value (which borrows C memory) into a Go value.
func goValue(v *C.lim_value) any {
	switch v._type {
	case C.LIM_BOOL:
		return v.boolean != 0
	case C.LIM_INT:
		return int64(v.integer)
	case C.LIM_FLOAT:
		return float64(v.real)
	case C.LIM_STRING:
		if v.len == 0 {
			return ""
		}
		return string(unsafe.Slice((*byte)(unsafe.Pointer(v.str)), int(v.len)))
	case C.LIM_BYTES:
		if v.len == 0 {
			return []byte{}
		}
		return append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(v.str)), int(v.len))...)
	default:
		return nil
	}
}

// ---------------------------------------------------------------- keys

type keysConfig struct {
	prefix, after string
	limit         int
}

// KeysOption narrows Keys.
type KeysOption func(*keysConfig)

// KeyPrefix lists only keys that start with prefix.
func KeyPrefix(prefix string) KeysOption { return func(c *keysConfig) { c.prefix = prefix } }

// KeysAfter starts after key (for paging).
func KeysAfter(key string) KeysOption { return func(c *keysConfig) { c.after = key } }

// KeysLimit stops after n keys (n <= 0: no limit).
func KeysLimit(n int) KeysOption { return func(c *keysConfig) { c.limit = n } }

const keysBatch = 256

// Keys iterates over the document keys of coll in key order:
//
//	for key, err := range db.Keys("people", lim.KeyPrefix("a")) {
//		if err != nil { ... }
//	}
//
// Keys are fetched in batches, each read in one C call, so no C iterator is
// held while the loop body runs: the body may write to the store, and
// documents created meanwhile may or may not be seen. An error ends the
// iteration after being yielded once.
func (d *DB) Keys(coll string, opts ...KeysOption) iter.Seq2[string, error] {
	var cfg keysConfig
	for _, o := range opts {
		o(&cfg)
	}
	return func(yield func(string, error) bool) {
		after, n := cfg.after, 0
		for {
			batch, err := d.keys(coll, cfg.prefix, after, keysBatch)
			if err != nil {
				yield("", err)
				return
			}
			for _, k := range batch {
				if cfg.limit > 0 && n >= cfg.limit {
					return
				}
				if !yield(k, nil) {
					return
				}
				n++
			}
			if len(batch) < keysBatch {
				return
			}
			after = batch[len(batch)-1]
		}
	}
}

func (d *DB) keys(coll, prefix, after string, max int) ([]string, error) {
	var cs cstrings
	defer cs.free()
	ccoll, err := cs.add(coll, "the collection name")
	if err != nil {
		return nil, err
	}
	cprefix, err := cs.opt(prefix, "the key prefix")
	if err != nil {
		return nil, err
	}
	cafter, err := cs.opt(after, "the start key")
	if err != nil {
		return nil, err
	}
	var keys []string
	err = d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var out C.limgo_bytes
		var count C.int
		rc := C.limgo_docs(p, ccoll, cprefix, cafter, C.int(max), &out, &count, e)
		if rc == 0 {
			raw := string(shimBytes(&out))
			keys = make([]string, 0, int(count))
			for len(raw) > 0 {
				i := strings.IndexByte(raw, 0)
				keys = append(keys, raw[:i])
				raw = raw[i+1:]
			}
		}
		return rc
	})
	return keys, err
}
