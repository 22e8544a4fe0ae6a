// Package lim is the Go binding of liblim, a local-first, multi-master
// replicated document store: every replica keeps its own copy in an SQLite
// file, reads and writes it locally, and converges with its peers by
// exchanging signed, hash-chained changes over TCP or as pack files.
//
// The binding is thin: storage, merging and the sync protocol are the C core
// (libcore/), compiled into this package by cgo. Building needs a C compiler
// and the SQLite and libsodium development packages (Debian/Ubuntu:
// libsqlite3-dev libsodium-dev); nothing has to be built or installed first.
// With -tags liblim_system an installed liblim is linked through pkg-config
// instead.
//
// # Stores
//
// Open a store with Open and release it with Close. A DB is safe for
// concurrent use; calls on a closed DB return an error matching ErrClosed.
// A store holds collections of documents; a document is a JSON-like object
// whose leaves are fields addressed by dotted paths ("addr.city"):
//
//	db, err := lim.Open("app.db")
//	...
//	err = db.Put("people", "ada", map[string]any{
//		"name": "Ada", "born": 1815, "addr": map[string]any{"city": "London"},
//	})
//	doc, err := db.Get("people", "ada") // map[name:Ada born:1815 addr:map[city:London]]
//
// Values map to Go types as follows: nil, bool, int64 (other integer types
// are accepted when writing), float64, string (UTF-8), []byte (JSON:
// {"$base64": "..."}), and map[string]any for nested objects. Reads return
// exactly those types. Besides last-writer-wins values a field may be a
// counter (Incr, read as int64) or an add-wins set (SetAdd/SetRemove, read
// as []any in canonical order).
//
// Every write is one change, committed when the call returns. Update groups
// writes into one change, rolled back if the function returns an error or
// panics.
//
// # Errors
//
// Every failure reported by liblim is an *Error carrying the C error code
// and message. Compare with errors.Is against the sentinels, one per code:
//
//	if _, err := db.Get("people", "bob"); errors.Is(err, lim.ErrNotFound) { ... }
//
// # Sync
//
// StartNode runs a sync node for a store on a thread of its own: it listens,
// dials its peers, pushes local commits and applies remote ones; Changes
// reports the remote changes applied. SyncOnce exchanges changes with a node
// once. Stores sync only with stores of the same network key
// (WithNetworkKey). Export and Import carry changes as pack files.
//
// # Threads and handles
//
// The C library reports errors per OS thread; the binding reads the message
// in the same C call that failed, so goroutines need not be locked to
// threads (Update is the exception: a liblim transaction belongs to a thread,
// so Update locks its goroutine for the duration). C never keeps a Go
// pointer: callbacks go through runtime/cgo.Handle. Handles have finalizers,
// but close them explicitly.
package lim

//go:generate go run ./internal/genunity
