//go:build cgo && liblim_system

package lim

// -tags liblim_system: link an installed liblim (cmake --install) found
// through pkg-config instead of compiling the bundled sources. limgo.h
// checks the installed lim.h version at compile time.

/*
#cgo pkg-config: liblim
*/
import "C"

const bundled = false
