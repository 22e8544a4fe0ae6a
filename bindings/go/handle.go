//go:build cgo

package lim

/*
#include "limgo.h"
*/
import "C"

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// liveHandles counts C handles (stores and nodes) not yet freed; the tests
// check it is zero at the end of the run.
var liveHandles atomic.Int64

// handleState guards a C handle: calls enter/exit around each C call, and
// shut marks the handle closed (new calls fail with ErrClosed) and waits for
// the calls in flight, after which the C handle may be freed.
type handleState struct {
	mu       sync.Mutex
	idle     *sync.Cond
	closed   bool
	inflight int
}

func (h *handleState) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.inflight++
	return true
}

func (h *handleState) exit() {
	h.mu.Lock()
	h.inflight--
	if h.inflight == 0 && h.idle != nil {
		h.idle.Broadcast()
	}
	h.mu.Unlock()
}

// shut returns false if the handle was already closed.
func (h *handleState) shut() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.closed = true
	if h.idle == nil {
		h.idle = sync.NewCond(&h.mu)
	}
	for h.inflight > 0 {
		h.idle.Wait()
	}
	return true
}

func (h *handleState) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// cError turns a failed shim call into an *Error.
func cError(rc C.int, e *C.limgo_err) error {
	return &Error{Code: Code(rc), Message: C.GoString(&e.msg[0])}
}

// cstrings allocates NUL-terminated C copies of Go strings and frees them
// together. A string with a NUL byte cannot be passed to C unchanged, so it
// is refused (ErrInvalid) rather than silently cut short.
type cstrings []*C.char

func (c *cstrings) add(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, newError(CodeInvalid, "%s contains a NUL byte", what)
	}
	p := C.CString(s)
	*c = append(*c, p)
	return p, nil
}

// opt is add, except that "" gives NULL.
func (c *cstrings) opt(s, what string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return c.add(s, what)
}

func (c cstrings) free() {
	for _, p := range c {
		C.free(unsafe.Pointer(p))
	}
}

// bufString copies a lim_buf into a Go string and disposes of it.
func bufString(b *C.lim_buf) string {
	if b.ptr == nil {
		return ""
	}
	s := string(unsafe.Slice((*byte)(unsafe.Pointer(b.ptr)), int(b.size)))
	C.lim_buf_dispose(b)
	return s
}

// bufBytes copies a lim_buf into Go memory and disposes of it.
func bufBytes(b *C.lim_buf) []byte {
	if b.ptr == nil {
		return []byte{}
	}
	out := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(b.ptr)), int(b.size))...)
	C.lim_buf_dispose(b)
	return out
}

// shimBytes copies a limgo_bytes into Go memory and frees it.
func shimBytes(b *C.limgo_bytes) []byte {
	if b.ptr == nil {
		return nil
	}
	out := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(b.ptr)), int(b.len))...)
	C.limgo_bytes_free(b)
	return out
}
