//go:build cgo

package lim

/*
#include "limgo.h"
*/
import "C"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime/cgo"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// VersionVector maps each author (replica id, 64 hex digits) to the
// highest change seq held from it.
type VersionVector map[string]uint64

// String renders the vector in liblim's text form: "<author> <seq>\n" per
// author, in author order (what `lim vv` prints and `export --since` reads).
func (v VersionVector) String() string {
	authors := make([]string, 0, len(v))
	for a := range v {
		authors = append(authors, a)
	}
	sort.Strings(authors)
	var b strings.Builder
	for _, a := range authors {
		fmt.Fprintf(&b, "%s %d\n", a, v[a])
	}
	return b.String()
}

// ParseVersionVector parses the text form (see String).
func ParseVersionVector(text string) (VersionVector, error) {
	v := VersionVector{}
	for i, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		author, seq, ok := strings.Cut(line, " ")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || len(author) != 64 || err != nil {
			return nil, newError(CodeInvalid, "version vector line %d is not \"<64 hex author> <seq>\"", i+1)
		}
		v[author] = n
	}
	return v, nil
}

// VersionVector returns what this store holds: per author, the highest seq.
func (d *DB) VersionVector() (VersionVector, error) {
	var text string
	err := d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var buf C.lim_buf
		rc := C.limgo_version_vector(p, &buf, e)
		if rc == 0 {
			text = bufString(&buf)
		}
		return rc
	})
	if err != nil {
		return nil, err
	}
	return ParseVersionVector(text)
}

// Digest returns the state digest (64 hex digits): two stores that hold the
// same changes have the same digest.
func (d *DB) Digest() (string, error) {
	var out [65]C.char
	err := d.run(func(p *C.lim_db, e *C.limgo_err) C.int { return C.limgo_digest(p, &out[0], e) })
	if err != nil {
		return "", err
	}
	return C.GoString(&out[0]), nil
}

// Verify checks every change's hash, signature and chain link and that the
// materialized state equals a rebuild from the log (ErrCorrupt otherwise).
func (d *DB) Verify() error {
	return d.run(func(p *C.lim_db, e *C.limgo_err) C.int { return C.limgo_verify(p, e) })
}

// Rebuild rebuilds the materialized state from the change log.
func (d *DB) Rebuild() error {
	return d.run(func(p *C.lim_db, e *C.limgo_err) C.int { return C.limgo_rebuild(p, e) })
}

// ApplyStats counts what Apply or Import did.
type ApplyStats struct {
	Applied    int // new changes stored
	Duplicates int // changes already held, ignored
}

// Apply applies one encoded change (as LogEntry.Bytes holds it), after
// every check of the change format; a refused change changes nothing.
func (d *DB) Apply(change []byte) (ApplyStats, error) {
	var st ApplyStats
	var ptr *C.char
	if len(change) > 0 {
		ptr = (*C.char)(unsafe.Pointer(&change[0]))
	}
	err := d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var applied, dups C.uint64_t
		rc := C.limgo_apply(p, ptr, C.size_t(len(change)), &applied, &dups, e)
		st = ApplyStats{int(applied), int(dups)}
		return rc
	})
	return st, err
}

// callbackState carries an io.Writer or io.Reader through a cgo.Handle, and
// what went wrong in it (an error, or a panic to re-raise in Go).
type callbackState struct {
	w        io.Writer
	r        io.Reader
	err      error // the writer's or reader's error
	eof      bool
	panicked bool
	panicVal any
}

func (s *callbackState) finish(err error) error {
	if s.panicked {
		panic(s.panicVal)
	}
	if err != nil && s.err != nil {
		return fmt.Errorf("%w: %w", err, s.err)
	}
	return err
}

// Export writes every change that since lacks as a pack (all changes when
// since is omitted or nil) to w. The pack format is protocol-spec/changes.md.
func (d *DB) Export(w io.Writer, since ...VersionVector) error {
	if len(since) > 1 {
		return newError(CodeInvalid, "Export takes at most one version vector")
	}
	var text string
	if len(since) == 1 && since[0] != nil {
		text = since[0].String()
	}
	var cs cstrings
	defer cs.free()
	csince, err := cs.opt(text, "the version vector")
	if err != nil {
		return err
	}
	st := &callbackState{w: w}
	h := cgo.NewHandle(st)
	defer h.Delete()
	err = d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		return C.limgo_export(p, csince, C.size_t(len(text)), C.uintptr_t(h), e)
	})
	return st.finish(err)
}

// Import applies a pack read from r, all or nothing: on any error the store
// is unchanged. r is read with the store locked, so it must not use this DB.
func (d *DB) Import(r io.Reader) (ApplyStats, error) {
	var stats ApplyStats
	st := &callbackState{r: r}
	h := cgo.NewHandle(st)
	defer h.Delete()
	err := d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var applied, dups C.uint64_t
		rc := C.limgo_import(p, C.uintptr_t(h), &applied, &dups, e)
		stats = ApplyStats{int(applied), int(dups)}
		return rc
	})
	return stats, st.finish(err)
}

// LogEntry is one change of the log.
type LogEntry struct {
	Author string    // replica id of the author (64 hex digits)
	Seq    uint64    // the author's change number
	HLC    uint64    // hybrid logical clock: 48-bit ms << 16 | counter
	Time   time.Time // the HLC's wall-clock part
	Bytes  []byte    // the change's canonical encoding (see Apply)
}

// Log returns the change log in local arrival order: all of it (limit <= 0)
// or the newest limit changes.
func (d *DB) Log(limit int) ([]LogEntry, error) {
	if limit < 0 {
		limit = 0
	}
	var raw []byte
	err := d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var out C.limgo_bytes
		rc := C.limgo_log(p, C.size_t(limit), &out, e)
		if rc == 0 {
			raw = shimBytes(&out)
		}
		return rc
	})
	if err != nil {
		return nil, err
	}
	var entries []LogEntry
	for len(raw) > 0 {
		if len(raw) < 64+24 {
			return nil, newError(CodeCorrupt, "truncated log record")
		}
		n := binary.NativeEndian.Uint64(raw[80:88])
		if uint64(len(raw)-88) < n {
			return nil, newError(CodeCorrupt, "truncated log record")
		}
		hlc := binary.NativeEndian.Uint64(raw[72:80])
		entries = append(entries, LogEntry{
			Author: string(raw[:64]),
			Seq:    binary.NativeEndian.Uint64(raw[64:72]),
			HLC:    hlc,
			Time:   time.UnixMilli(int64(hlc >> 16)),
			Bytes:  append([]byte(nil), raw[88:88+n]...),
		})
		raw = raw[88+n:]
	}
	return entries, nil
}

// ---------------------------------------------------------------- one-shot sync

// DefaultSyncTimeout bounds SyncOnce and RemoteStatus when the context has
// no deadline (a C call cannot be interrupted by cancelling a context).
const DefaultSyncTimeout = 60 * time.Second

func timeoutMS(ctx context.Context) (C.int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d := DefaultSyncTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
		if d <= 0 {
			return 0, context.DeadlineExceeded
		}
	}
	// Round up and add 2 ms (C measures whole milliseconds), so that C
	// gives up no earlier than the context expires.
	ms := int64((d+time.Millisecond-1)/time.Millisecond) + 2
	if ms > math.MaxInt32 {
		ms = math.MaxInt32
	}
	return C.int(ms), nil
}

// withContext adds the context's error to a failure that happened because
// its deadline passed, so errors.Is(err, context.DeadlineExceeded) holds.
func withContext(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// SyncStats counts the changes one SyncOnce exchanged.
type SyncStats struct {
	Received uint64
	Sent     uint64
}

// SyncOnce connects to the node at addr ("host:port"), exchanges changes
// until both sides hold the same ones, and disconnects. The context's
// deadline bounds the whole exchange (DefaultSyncTimeout without one).
func (d *DB) SyncOnce(ctx context.Context, addr string) (SyncStats, error) {
	var stats SyncStats
	ms, err := timeoutMS(ctx)
	if err != nil {
		return stats, err
	}
	var cs cstrings
	defer cs.free()
	caddr, err := cs.add(addr, "the address")
	if err != nil {
		return stats, err
	}
	err = d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var in, out C.uint64_t
		rc := C.limgo_sync_once(p, caddr, ms, &in, &out, e)
		stats = SyncStats{Received: uint64(in), Sent: uint64(out)}
		return rc
	})
	return stats, withContext(ctx, err)
}

// RemoteStatus asks the running node at addr for its Status.
func (d *DB) RemoteStatus(ctx context.Context, addr string) (*Status, error) {
	ms, err := timeoutMS(ctx)
	if err != nil {
		return nil, err
	}
	var cs cstrings
	defer cs.free()
	caddr, err := cs.add(addr, "the address")
	if err != nil {
		return nil, err
	}
	var text []byte
	err = d.run(func(p *C.lim_db, e *C.limgo_err) C.int {
		var buf C.lim_buf
		rc := C.limgo_remote_status(p, caddr, ms, &buf, e)
		if rc == 0 {
			text = bufBytes(&buf)
		}
		return rc
	})
	if err != nil {
		return nil, withContext(ctx, err)
	}
	return parseStatus(text)
}

// Status is what a node knows of itself and its peers.
type Status struct {
	ID     string       `json:"id"`
	Listen string       `json:"listen"`
	Peers  []PeerStatus `json:"peers"`
}

// PeerStatus describes one configured peer or connection.
type PeerStatus struct {
	Address    string `json:"address"`
	ID         string `json:"id"` // "" until authenticated
	Connected  bool   `json:"connected"`
	Direction  string `json:"direction"` // "in" or "out"
	ChangesIn  uint64 `json:"changes_in"`
	ChangesOut uint64 `json:"changes_out"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	Behind     uint64 `json:"behind"`
	LastError  string `json:"last_error"`
}

func parseStatus(text []byte) (*Status, error) {
	var s Status
	if err := json.Unmarshal(text, &s); err != nil {
		return nil, newError(CodeProtocol, "cannot parse the node status %q: %v", text, err)
	}
	return &s, nil
}
