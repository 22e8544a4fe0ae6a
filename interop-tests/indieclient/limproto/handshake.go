package limproto

import (
	"crypto/ed25519"
	"crypto/subtle"

	"golang.org/x/crypto/blake2b"
)

// Roles (PROTOCOL.md §2).
const (
	RoleClient byte = 'C'
	RoleServer byte = 'S'
)

var (
	ctxHandshake = []byte("liblim handshake v1\x00")
	ctxHSSig     = []byte("liblim handshake signature v1\x00")
	ctxHSNet     = []byte("liblim handshake network v1\x00")
)

// Transcript is the hashed input of PROTOCOL.md §6.2.
func Transcript(clientHello, serverHello string) []byte {
	t := append([]byte{}, ctxHandshake...)
	t = append(t, clientHello...)
	t = append(t, '\n')
	t = append(t, serverHello...)
	return append(t, '\n')
}

// TranscriptHash is th of PROTOCOL.md §6.2.
func TranscriptHash(clientHello, serverHello string) [32]byte {
	return blake2b.Sum256(Transcript(clientHello, serverHello))
}

// HandshakeSignedMessage is "liblim handshake signature v1" NUL || role || th.
func HandshakeSignedMessage(role byte, th [32]byte) []byte {
	m := append([]byte{}, ctxHSSig...)
	m = append(m, role)
	return append(m, th[:]...)
}

// HandshakeSign signs th for the sender's own role.
func HandshakeSign(priv ed25519.PrivateKey, role byte, th [32]byte) [64]byte {
	var s [64]byte
	copy(s[:], ed25519.Sign(priv, HandshakeSignedMessage(role, th)))
	return s
}

// HandshakeVerify checks a peer's signature for the peer's role.
func HandshakeVerify(id [32]byte, role byte, th [32]byte, sig [64]byte) bool {
	return VerifyEd25519(id[:], HandshakeSignedMessage(role, th), sig[:])
}

// NetworkProof is keyed BLAKE2b-256 of "liblim handshake network v1" NUL || role || th.
func NetworkProof(networkKey [32]byte, role byte, th [32]byte) [32]byte {
	h, _ := blake2b.New256(networkKey[:])
	h.Write(ctxHSNet)
	h.Write([]byte{role})
	h.Write(th[:])
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ProofEqual compares in constant time.
func ProofEqual(a, b [32]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// PublicID is the replica id of a private key.
func PublicID(priv ed25519.PrivateKey) [32]byte {
	var id [32]byte
	copy(id[:], priv.Public().(ed25519.PublicKey))
	return id
}
