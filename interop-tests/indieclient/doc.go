// Package indieclient holds the interop tests of an independent client of the
// liblim sync protocol; the implementation is in package limproto.
package indieclient
