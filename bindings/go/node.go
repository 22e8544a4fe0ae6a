//go:build cgo

package lim

/*
#include "limgo.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// NodeConfig configures StartNode. The zero value of a field means liblim's
// default.
type NodeConfig struct {
	// Listen is the "host:port" to accept peers on ("127.0.0.1:0" picks a
	// free port; see Node.Addr). Empty: do not listen.
	Listen string
	// Peers are dialled and kept connected, reconnecting with backoff.
	Peers []string
	// Allow restricts the node to these replica ids (64 hex digits), for
	// connections in both directions. nil: any member of the network (any
	// store with the same network key); an empty non-nil slice: nobody.
	Allow []string

	MaxConnections int           // default 64
	IdleTimeout    time.Duration // default 30 s
	Keepalive      time.Duration // default 10 s
	ReconnectMin   time.Duration // first retry delay, default 100 ms
	ReconnectMax   time.Duration // backoff ceiling, default 30 s

	// Log, if set, receives connection events and applied batches, one
	// line each. It is called on the node's own thread and must not block
	// for long; a panic in it is ignored.
	Log func(line string)
}

// Change is a remote change the node applied to the store.
type Change struct {
	Author string // replica id of the author (64 hex digits)
	Seq    uint64
}

// Node syncs a DB with peers over TCP on a thread of its own, pushing
// every local commit to connected peers and applying theirs. At most one
// node runs per DB. It is safe for concurrent use.
type Node struct {
	db *DB
	s  *nodeState
}

// nodeState is what the DB tracks (the DB closes its nodes first). It
// points to neither the Node nor the DB, so the Node's finalizer can run.
type nodeState struct {
	h        handleState
	ptr      *C.lim_node
	addr     string
	logH     cgo.Handle
	done     chan struct{}
	doneOnce sync.Once

	subMu   sync.Mutex
	subs    map[*subscriber]struct{}
	polling bool
	ended   bool
}

type subscriber struct {
	ctx context.Context
	ch  chan Change
}

func msOf(d time.Duration) C.int {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if ms > 1<<31-1 {
		ms = 1<<31 - 1
	}
	return C.int(ms)
}

// cStringArray makes a C array of C strings (freed with the cstrings).
func cStringArray(cs *cstrings, list []string, what string) (**C.char, error) {
	if len(list) == 0 {
		return nil, nil
	}
	arr := unsafe.Slice((**C.char)(C.calloc(C.size_t(len(list)), C.size_t(unsafe.Sizeof((*C.char)(nil))))), len(list))
	*cs = append(*cs, (*C.char)(unsafe.Pointer(&arr[0])))
	for i, s := range list {
		p, err := cs.add(s, what)
		if err != nil {
			return nil, err
		}
		arr[i] = p
	}
	return &arr[0], nil
}

// StartNode starts syncing db: it binds cfg.Listen before returning, then
// dials cfg.Peers and serves connections until Close (or db.Close).
func StartNode(db *DB, cfg NodeConfig) (*Node, error) {
	if db == nil {
		return nil, newError(CodeInvalid, "StartNode needs a DB")
	}
	var cs cstrings
	defer cs.free()
	var c C.limgo_node_config
	var err error
	if c.listen, err = cs.opt(cfg.Listen, "the listen address"); err != nil {
		return nil, err
	}
	if c.peers, err = cStringArray(&cs, cfg.Peers, "a peer address"); err != nil {
		return nil, err
	}
	c.npeers = C.size_t(len(cfg.Peers))
	if cfg.Allow != nil {
		c.allow_given = 1
		if c.allow, err = cStringArray(&cs, cfg.Allow, "an allowed id"); err != nil {
			return nil, err
		}
		c.nallow = C.size_t(len(cfg.Allow))
	}
	c.max_connections = C.int(max(cfg.MaxConnections, 0))
	c.idle_timeout_ms = msOf(cfg.IdleTimeout)
	c.keepalive_ms = msOf(cfg.Keepalive)
	c.reconnect_min_ms = msOf(cfg.ReconnectMin)
	c.reconnect_max_ms = msOf(cfg.ReconnectMax)

	s := &nodeState{done: make(chan struct{})}
	if cfg.Log != nil {
		s.logH = cgo.NewHandle(cfg.Log)
		c.log_handle = C.uintptr_t(s.logH)
	}
	if !db.h.enter() {
		if s.logH != 0 {
			s.logH.Delete()
		}
		return nil, errClosed("store")
	}
	defer db.h.exit()
	var e C.limgo_err
	rc := C.limgo_node_start(&s.ptr, db.ptr, &c, &e)
	if rc < 0 {
		if s.logH != 0 {
			s.logH.Delete()
		}
		return nil, cError(rc, &e)
	}
	liveHandles.Add(1)
	if cfg.Listen != "" {
		var buf C.lim_buf
		if C.limgo_node_address(s.ptr, &buf, &e) == 0 {
			s.addr = bufString(&buf)
		}
	}
	db.nodesMu.Lock()
	if db.nodes == nil {
		db.nodes = map[*nodeState]struct{}{}
	}
	db.nodes[s] = struct{}{}
	db.nodesMu.Unlock()
	runtime.KeepAlive(db)

	n := &Node{db: db, s: s}
	runtime.SetFinalizer(n, (*Node).Close)
	return n, nil
}

// close stops and frees the C node once no call is in flight.
func (s *nodeState) close() {
	s.doneOnce.Do(func() { close(s.done) })
	if !s.h.shut() {
		return
	}
	C.lim_node_free(s.ptr)
	s.ptr = nil
	liveHandles.Add(-1)
	if s.logH != 0 {
		s.logH.Delete()
		s.logH = 0
	}
}

// Close stops the node, closing its connections politely. It waits for
// calls in flight (at most about 100 ms for a Changes poll) and closes the
// channels returned by Changes. A second Close returns nil.
func (n *Node) Close() error {
	runtime.SetFinalizer(n, nil)
	n.s.close()
	n.db.nodesMu.Lock()
	delete(n.db.nodes, n.s)
	n.db.nodesMu.Unlock()
	return nil
}

func (n *Node) run(f func(p *C.lim_node, e *C.limgo_err) C.int) error {
	if !n.s.h.enter() {
		return errClosed("node")
	}
	defer n.s.h.exit()
	var e C.limgo_err
	rc := f(n.s.ptr, &e)
	runtime.KeepAlive(n)
	if rc < 0 {
		return cError(rc, &e)
	}
	return nil
}

// DB returns the store the node syncs.
func (n *Node) DB() *DB { return n.db }

// Addr returns the address the node listens on, with the port actually
// bound ("127.0.0.1:40123"), or "" if it does not listen.
func (n *Node) Addr() string { return n.s.addr }

// AddPeer adds a peer to dial and keep connected (ErrExists if present).
func (n *Node) AddPeer(addr string) error { return n.peer(addr, 0) }

// RemovePeer stops dialling a peer and closes its connection (ErrNotFound
// if it is not configured).
func (n *Node) RemovePeer(addr string) error { return n.peer(addr, 1) }

func (n *Node) peer(addr string, remove C.int) error {
	var cs cstrings
	defer cs.free()
	caddr, err := cs.add(addr, "the peer address")
	if err != nil {
		return err
	}
	return n.run(func(p *C.lim_node, e *C.limgo_err) C.int { return C.limgo_node_peer(p, caddr, remove, e) })
}

// Status returns what the node knows of itself and its peers.
func (n *Node) Status() (*Status, error) {
	var text []byte
	err := n.run(func(p *C.lim_node, e *C.limgo_err) C.int {
		var buf C.lim_buf
		rc := C.limgo_node_status(p, &buf, e)
		if rc == 0 {
			text = bufBytes(&buf)
		}
		return rc
	})
	if err != nil {
		return nil, err
	}
	return parseStatus(text)
}

// SyncOnce is DB.SyncOnce on the node's store: a one-off exchange with
// addr, which need not be one of the node's peers.
func (n *Node) SyncOnce(ctx context.Context, addr string) (SyncStats, error) {
	if n.s.h.isClosed() {
		return SyncStats{}, errClosed("node")
	}
	return n.db.SyncOnce(ctx, addr)
}

// EventsDropped counts remote changes that were applied but not reported
// through Changes because more than 65536 were waiting.
func (n *Node) EventsDropped() uint64 {
	if !n.s.h.enter() {
		return 0
	}
	defer n.s.h.exit()
	d := uint64(C.lim_node_events_dropped(n.s.ptr))
	runtime.KeepAlive(n)
	return d
}

// pollInterval bounds how long one wait for an event blocks in C, and so
// how long Close and a cancelled Changes context wait for the poller.
const pollInterval = 100 * time.Millisecond

// Changes returns a channel of the remote changes the node applies. liblim
// queues them while no channel is open (up to 65536), so the first channel
// opened after a quiet spell also receives the changes applied meanwhile.
// It is closed when ctx is done or the node is closed. Every channel returned
// sees every change; a receiver that does not keep up delays the others
// (changes then wait in liblim's queue of 65536).
func (n *Node) Changes(ctx context.Context) <-chan Change {
	ch := make(chan Change, 256)
	s := n.s
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.ended || s.h.isClosed() {
		close(ch)
		return ch
	}
	if s.subs == nil {
		s.subs = map[*subscriber]struct{}{}
	}
	s.subs[&subscriber{ctx: ctx, ch: ch}] = struct{}{}
	if !s.polling {
		s.polling = true
		go s.poll()
	}
	return ch
}

// poll waits for events with a short timeout (so a closing node or a
// cancelled subscriber is noticed quickly) and fans them out.
func (s *nodeState) poll() {
	for {
		s.subMu.Lock()
		if s.pruneLocked() {
			s.subMu.Unlock()
			return
		}
		s.subMu.Unlock()

		ev, ok, err := s.next(pollInterval)
		if err != nil {
			s.subMu.Lock()
			for sub := range s.subs {
				close(sub.ch)
			}
			s.subs = nil
			s.polling = false
			s.ended = true
			s.subMu.Unlock()
			return
		}
		if !ok {
			continue
		}
		// The receivers are taken after the event arrived, not before the
		// wait: a channel made while this goroutine waited must see it too.
		s.subMu.Lock()
		subs := make([]*subscriber, 0, len(s.subs))
		for sub := range s.subs {
			subs = append(subs, sub)
		}
		s.subMu.Unlock()
		for _, sub := range subs {
			select {
			case sub.ch <- ev:
			case <-sub.ctx.Done():
			case <-s.done:
			}
		}
	}
}

// pruneLocked closes the channels of cancelled subscribers and reports
// (having cleared s.polling) when none is left, so poll can end.
func (s *nodeState) pruneLocked() bool {
	for sub := range s.subs {
		if sub.ctx.Err() != nil {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
	if len(s.subs) == 0 {
		s.polling = false
		return true
	}
	return false
}

func (s *nodeState) next(timeout time.Duration) (Change, bool, error) {
	if !s.h.enter() {
		return Change{}, false, errClosed("node")
	}
	defer s.h.exit()
	var author [65]C.char
	var seq C.uint64_t
	var e C.limgo_err
	rc := C.limgo_node_next_event(s.ptr, &author[0], &seq, msOf(timeout), &e)
	switch {
	case rc == 0:
		return Change{Author: C.GoString(&author[0]), Seq: uint64(seq)}, true, nil
	case Code(rc) == codeEnd:
		return Change{}, false, nil
	default:
		return Change{}, false, cError(rc, &e)
	}
}
