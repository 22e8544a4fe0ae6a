package limproto

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// PackChecksum is BLAKE2b-256("liblim pack v1" NUL || line_1 LF || line_2 LF ...).
func PackChecksum(lines []string) [32]byte {
	h, _ := blake2b.New256(nil)
	h.Write(ctxPack)
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// BuildPack writes a pack of change lines (changes.md §12).
func BuildPack(lines []string) []byte {
	var b bytes.Buffer
	b.WriteString("LIMPACK 1\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	sum := PackChecksum(lines)
	fmt.Fprintf(&b, "END %d %x\n", len(lines), sum[:])
	return b.Bytes()
}

// ParsePack checks a pack's framing, count and checksum and parses every change
// (form only; chain checks belong to Store.Receive).
func ParsePack(data []byte) ([]*Change, error) {
	s := string(data)
	if !strings.HasPrefix(s, "LIMPACK 1\n") {
		return nil, malformed("missing pack header")
	}
	s = s[len("LIMPACK 1\n"):]
	var lines []string
	var changes []*Change
	for n := 1; ; n++ {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return nil, malformed("truncated pack")
		}
		line := s[:i]
		s = s[i+1:]
		if strings.HasPrefix(line, "END ") {
			f := strings.Split(line, " ")
			if len(f) != 3 {
				return nil, malformed("malformed END")
			}
			cnt, ok := parseUDec(f[1], ^uint64(0))
			if !ok {
				return nil, malformed("malformed END count")
			}
			sum, ok := parseLHex(f[2], 32)
			if !ok {
				return nil, malformed("malformed END checksum")
			}
			if s != "" {
				return nil, malformed("data after END")
			}
			if cnt != uint64(len(lines)) {
				return nil, malformed("count mismatch")
			}
			want := PackChecksum(lines)
			if !bytes.Equal(sum, want[:]) {
				return nil, malformed("checksum mismatch: %s", hex.EncodeToString(want[:]))
			}
			return changes, nil
		}
		if strings.IndexByte(line, '\r') >= 0 {
			return nil, malformed("pack line %d: CR", n)
		}
		c, err := ParseChange(line)
		if err != nil {
			return nil, fmt.Errorf("pack line %d: %w", n, err)
		}
		lines = append(lines, line)
		changes = append(changes, c)
	}
}
