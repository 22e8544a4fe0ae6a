//go:build !cgo

package lim

// The liblim Go binding wraps the C core and needs cgo: build with
// CGO_ENABLED=1 and a C compiler (cc/gcc/clang) on PATH, plus the SQLite
// and libsodium development packages. Without cgo this file makes the build
// stop with the error below instead of a pile of undefined names.
var _ = liblim_Go_binding_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
