//go:build cgo

package lim

// Go functions called from C through the trampolines in limgo.c. C holds
// only a runtime/cgo.Handle (an integer), never a Go pointer. A panic must
// not unwind through C frames, so each callback recovers, reports failure
// to C, and the Go caller re-raises the panic once the C call has returned.

/*
#include "limgo.h"
*/
import "C"

import (
	"errors"
	"io"
	"runtime/cgo"
	"time"
	"unsafe"
)

//export limgoWrite
func limgoWrite(h C.uintptr_t, p *C.char, n C.size_t) (rc C.int) {
	st := cgo.Handle(h).Value().(*callbackState)
	defer func() {
		if r := recover(); r != nil {
			st.panicked, st.panicVal = true, r
			rc = -1
		}
	}()
	if st.err != nil || st.panicked {
		return -1
	}
	if n == 0 {
		return 0
	}
	if _, err := st.w.Write(unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))); err != nil {
		st.err = err
		return -1
	}
	return 0
}

//export limgoRead
func limgoRead(h C.uintptr_t, p *C.char, n C.size_t) (rc C.long) {
	st := cgo.Handle(h).Value().(*callbackState)
	defer func() {
		if r := recover(); r != nil {
			st.panicked, st.panicVal = true, r
			rc = -1
		}
	}()
	if st.panicked || st.err != nil {
		return -1
	}
	if st.eof || n == 0 {
		return 0
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
	for tries := 0; ; tries++ {
		k, err := st.r.Read(buf)
		if errors.Is(err, io.EOF) {
			st.eof = true
		} else if err != nil {
			st.err = err
		}
		if k > 0 {
			return C.long(k) // a pending EOF or error shows on the next call
		}
		if st.eof {
			return 0
		}
		if st.err != nil {
			return -1
		}
		if tries == 100 {
			st.err = io.ErrNoProgress
			return -1
		}
	}
}

//export limgoClock
func limgoClock(h C.uintptr_t) (ms C.int64_t) {
	defer func() {
		if recover() != nil { // a broken clock must not crash C: use the wall clock
			ms = C.int64_t(time.Now().UnixMilli())
		}
	}()
	now := cgo.Handle(h).Value().(func() time.Time)
	return C.int64_t(now().UnixMilli())
}

//export limgoLog
func limgoLog(h C.uintptr_t, line *C.char) {
	defer func() { _ = recover() }() // runs on the node's thread: nowhere to report
	log := cgo.Handle(h).Value().(func(string))
	log(C.GoString(line))
}
