package limproto

import "crypto/ed25519"

// changes.md §6: "A verifier MUST accept exactly what libsodium's
// crypto_sign_verify_detached accepts". Go's crypto/ed25519 accepts more:
// small-order public keys and R points, and non-canonical public keys. The
// extra checks below are libsodium's (not stated in the spec, see README).

var smallOrder = [7][32]byte{
	{0x00},
	{0x01},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	pMinus(1), pMinus(0), pMinus(-1),
}

// pMinus is the little-endian encoding of p - k (p = 2^255 - 19).
func pMinus(k int) [32]byte {
	var b [32]byte
	for i := range b {
		b[i] = 0xff
	}
	b[31] = 0x7f
	b[0] = byte(0xed - k)
	return b
}

// HasSmallOrder compares with libsodium's blocklist, ignoring the sign bit.
func HasSmallOrder(s []byte) bool {
	for _, bl := range smallOrder {
		eq := true
		for j := 0; j < 31; j++ {
			eq = eq && s[j] == bl[j]
		}
		if eq && s[31]&0x7f == bl[31] {
			return true
		}
	}
	return false
}

// IsCanonicalPoint rejects encodings of y >= p.
func IsCanonicalPoint(s []byte) bool {
	if s[31]&0x7f != 0x7f {
		return true
	}
	for i := 30; i > 0; i-- {
		if s[i] != 0xff {
			return true
		}
	}
	return s[0] < 0xed
}

// VerifyEd25519 is ed25519.Verify plus libsodium's extra refusals.
func VerifyEd25519(pub, msg, sig []byte) bool {
	if len(pub) != 32 || len(sig) != 64 {
		return false
	}
	if HasSmallOrder(sig[:32]) || HasSmallOrder(pub) || !IsCanonicalPoint(pub) {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), msg, sig)
}
