//go:build cgo && !liblim_system

package lim

// Default build: the C core is compiled into the package from
// ../../libcore (liblim_unity.c), so `go get` needs only a C compiler and
// the SQLite and libsodium development packages (e.g. Debian
// libsqlite3-dev libsodium-dev). Extra paths can come from CGO_CFLAGS and
// CGO_LDFLAGS.

/*
#cgo CFLAGS: -std=gnu11 -I${SRCDIR}/../../libcore/include -I${SRCDIR}/../../libcore/src
#cgo LDFLAGS: -lsqlite3 -lsodium -lpthread
*/
import "C"

const bundled = true
