//go:build cgo

package lim

import (
	"fmt"
	"strconv"
)

// Code is a liblim error code (the negative LIM_E* values of lim.h).
type Code int

// The error codes of lim.h.
const (
	CodeGeneric      Code = -1  // LIM_ERROR: generic failure (e.g. a sync timed out)
	CodeNotFound     Code = -3  // LIM_ENOTFOUND: no such store, document, field or peer
	CodeExists       Code = -4  // LIM_EEXISTS: the thing to create already exists
	CodeInvalid      Code = -5  // LIM_EINVALID: bad argument (names, values, JSON, limits)
	CodeMalformed    Code = -6  // LIM_EMALFORMED: an encoded change or pack is not well formed
	CodeHash         Code = -7  // LIM_EHASH: a change's hash chain does not match
	CodeSignature    Code = -8  // LIM_ESIGNATURE: a signature does not verify
	CodeGap          Code = -9  // LIM_EGAP: a change's predecessor is missing
	CodeEquivocation Code = -10 // LIM_EEQUIVOCATION: two different changes for one author and seq, or a fork of its chain
	CodeClock        Code = -11 // LIM_ECLOCK: a timestamp beyond the allowed clock drift
	CodeNotStore     Code = -12 // LIM_ENOTSTORE: the file is not a liblim store
	CodeVersion      Code = -13 // LIM_EVERSION: the store was written by a newer liblim
	CodeCorrupt      Code = -14 // LIM_ECORRUPT: the store's contents fail verification
	CodeIO           Code = -15 // LIM_EIO: the storage layer or a connection failed
	CodeFailed       Code = -16 // LIM_EFAILED: the store is in a failed state; reopen it
	CodeTxn          Code = -17 // LIM_ETXN: transaction misuse
	CodeNoMemory     Code = -18 // LIM_ENOMEM: out of memory
	CodeAuth         Code = -19 // LIM_EAUTH: authentication failed (sync)
	CodeProtocol     Code = -20 // LIM_EPROTOCOL: protocol violation (sync)
	CodeClosed       Code = -21 // LIM_ECLOSED: the handle is closed
)

// codeEnd is LIM_EITEROVER, "no more items": never returned as an error.
const codeEnd Code = -31

var codeNames = map[Code]string{
	CodeGeneric:      "LIM_ERROR",
	CodeNotFound:     "LIM_ENOTFOUND",
	CodeExists:       "LIM_EEXISTS",
	CodeInvalid:      "LIM_EINVALID",
	CodeMalformed:    "LIM_EMALFORMED",
	CodeHash:         "LIM_EHASH",
	CodeSignature:    "LIM_ESIGNATURE",
	CodeGap:          "LIM_EGAP",
	CodeEquivocation: "LIM_EEQUIVOCATION",
	CodeClock:        "LIM_ECLOCK",
	CodeNotStore:     "LIM_ENOTSTORE",
	CodeVersion:      "LIM_EVERSION",
	CodeCorrupt:      "LIM_ECORRUPT",
	CodeIO:           "LIM_EIO",
	CodeFailed:       "LIM_EFAILED",
	CodeTxn:          "LIM_ETXN",
	CodeNoMemory:     "LIM_ENOMEM",
	CodeAuth:         "LIM_EAUTH",
	CodeProtocol:     "LIM_EPROTOCOL",
	CodeClosed:       "LIM_ECLOSED",
}

// String returns the C name of the code, e.g. "LIM_ENOTFOUND".
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "LIM_E(" + strconv.Itoa(int(c)) + ")"
}

// Error is every error liblim reports: the C error code and the message
// lim_error_last() gave for that very call. Match codes with errors.Is
// against the Err* sentinels (errors.Is(err, lim.ErrNotFound)) or get the
// details with errors.As.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "lim: " + e.Code.String()
	}
	return "lim: " + e.Message + " (" + e.Code.String() + ")"
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, lim.ErrNotFound) holds for every not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per code, for errors.Is.
var (
	ErrGeneric      = &Error{Code: CodeGeneric}
	ErrNotFound     = &Error{Code: CodeNotFound}
	ErrExists       = &Error{Code: CodeExists}
	ErrInvalid      = &Error{Code: CodeInvalid}
	ErrMalformed    = &Error{Code: CodeMalformed}
	ErrHash         = &Error{Code: CodeHash}
	ErrSignature    = &Error{Code: CodeSignature}
	ErrGap          = &Error{Code: CodeGap}
	ErrEquivocation = &Error{Code: CodeEquivocation}
	ErrClock        = &Error{Code: CodeClock}
	ErrNotStore     = &Error{Code: CodeNotStore}
	ErrVersion      = &Error{Code: CodeVersion}
	ErrCorrupt      = &Error{Code: CodeCorrupt}
	ErrIO           = &Error{Code: CodeIO}
	ErrFailed       = &Error{Code: CodeFailed}
	ErrTxn          = &Error{Code: CodeTxn}
	ErrNoMemory     = &Error{Code: CodeNoMemory}
	ErrAuth         = &Error{Code: CodeAuth}
	ErrProtocol     = &Error{Code: CodeProtocol}
	ErrClosed       = &Error{Code: CodeClosed}
)

func newError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func errClosed(what string) *Error {
	return &Error{Code: CodeClosed, Message: "the " + what + " is closed"}
}
