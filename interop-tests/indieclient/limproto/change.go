// Package limproto is an independent implementation of the liblim change
// format (protocol-spec/changes.md) and sync protocol (protocol-spec/PROTOCOL.md),
// written from the specification only.
package limproto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/blake2b"
)

// Limits of changes.md.
const (
	MaxChangeBytes = 4194304
	MaxOps         = 10000
	MaxCollBytes   = 256
	MaxDocBytes    = 1024
	MaxPathBytes   = 1024
	MaxPathDepth   = 32
	MaxValueBytes  = 1048576
	MaxSeq         = 1<<63 - 1
)

// Context strings (changes.md §6, §10, §12), each followed by one NUL.
var (
	ctxChange    = []byte("liblim change v1\x00")
	ctxSignature = []byte("liblim signature v1\x00")
	ctxLink      = []byte("liblim link v1\x00")
	ctxState     = []byte("liblim state v1\x00")
	ctxPack      = []byte("liblim pack v1\x00")
)

// Error names of changes.md §8.
const (
	EMalformed    = "LIM_EMALFORMED"
	EHash         = "LIM_EHASH"
	ESignature    = "LIM_ESIGNATURE"
	EGap          = "LIM_EGAP"
	EEquivocation = "LIM_EEQUIVOCATION"
	EClock        = "LIM_ECLOCK"
)

// ChangeError is a refusal of a change with the liblim error name.
type ChangeError struct {
	Name string
	Msg  string
}

func (e *ChangeError) Error() string { return e.Name + ": " + e.Msg }

func malformed(format string, a ...any) error {
	return &ChangeError{EMalformed, fmt.Sprintf(format, a...)}
}

// ---------------------------------------------------------------- decimals

// parseUDec parses a canonical unsigned decimal (changes.md §3.1) <= max.
func parseUDec(s string, max uint64) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, false
	}
	return v, true
}

// parseIDec parses a canonical signed decimal in -2^63 .. 2^63-1.
func parseIDec(s string) (int64, bool) {
	neg := false
	d := s
	if strings.HasPrefix(d, "-") {
		neg = true
		d = d[1:]
	}
	if d == "0" && neg {
		return 0, false
	}
	if neg {
		u, ok := parseUDec(d, 1<<63)
		if !ok || u == 0 {
			return 0, false
		}
		return int64(-u), true // -2^63 wraps correctly
	}
	u, ok := parseUDec(d, MaxSeq)
	return int64(u), ok
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseLHex decodes exactly n bytes of lowercase hex.
func parseLHex(s string, n int) ([]byte, bool) {
	if len(s) != 2*n || !isLowerHex(s) {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// ------------------------------------------------------------------ escape

func mustEscape(b byte) bool { return b <= 0x20 || b == 0x25 || b == 0x2C || b == 0x7F }

// Escape writes a byte string in the escaped form of changes.md §3.2.
func Escape(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		b := s[i]
		if mustEscape(b) {
			fmt.Fprintf(&sb, "%%%02X", b)
		} else {
			sb.WriteByte(b)
		}
	}
	return sb.String()
}

func isUHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// Unescape reverses Escape and refuses every non-canonical form.
func Unescape(s string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '%' {
			if i+2 >= len(s) || !isUHex(s[i+1]) || !isUHex(s[i+2]) {
				return "", malformed("bad escape in %q", s)
			}
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if !mustEscape(byte(v)) {
				return "", malformed("escape of a byte that is written as itself in %q", s)
			}
			sb.WriteByte(byte(v))
			i += 2
			continue
		}
		if mustEscape(b) {
			return "", malformed("raw byte 0x%02x must be escaped", b)
		}
		sb.WriteByte(b)
	}
	return sb.String(), nil
}

// ------------------------------------------------------------------ values

// Value is a value token of changes.md §3.4.
type Value struct {
	Kind  byte // 'n' 't' 'f' 'i' 'd' 's' 'b'
	Int   int64
	Float float64
	Bytes []byte // string (decoded) or bytes
}

func Null() Value { return Value{Kind: 'n'} }
func Bool(b bool) Value {
	if b {
		return Value{Kind: 't'}
	}
	return Value{Kind: 'f'}
}
func Int(i int64) Value         { return Value{Kind: 'i', Int: i} }
func Float(f float64) Value     { return Value{Kind: 'd', Float: f} }
func String(s string) Value     { return Value{Kind: 's', Bytes: []byte(s)} }
func BytesValue(b []byte) Value { return Value{Kind: 'b', Bytes: b} }

// Token is the canonical value token.
func (v Value) Token() string {
	switch v.Kind {
	case 'n', 't', 'f':
		return string(v.Kind)
	case 'i':
		return "i" + strconv.FormatInt(v.Int, 10)
	case 'd':
		return fmt.Sprintf("d%016x", math.Float64bits(v.Float))
	case 's':
		return "s" + Escape(string(v.Bytes))
	case 'b':
		return "b" + hex.EncodeToString(v.Bytes)
	}
	panic("bad value kind")
}

// ParseValue parses and checks a value token.
func ParseValue(tok string) (Value, error) {
	if tok == "" {
		return Value{}, malformed("empty value")
	}
	p := tok[1:]
	switch tok[0] {
	case 'n', 't', 'f':
		if p != "" {
			return Value{}, malformed("value %q", tok)
		}
		return Value{Kind: tok[0]}, nil
	case 'i':
		i, ok := parseIDec(p)
		if !ok {
			return Value{}, malformed("integer value %q", tok)
		}
		return Int(i), nil
	case 'd':
		b, ok := parseLHex(p, 8)
		if !ok {
			return Value{}, malformed("float value %q", tok)
		}
		var u uint64
		for _, x := range b {
			u = u<<8 | uint64(x)
		}
		f := math.Float64frombits(u)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Value{}, malformed("float value not finite %q", tok)
		}
		return Float(f), nil
	case 's':
		s, err := Unescape(p)
		if err != nil {
			return Value{}, err
		}
		if len(s) > MaxValueBytes {
			return Value{}, malformed("string too long")
		}
		return String(s), nil
	case 'b':
		if len(p)%2 != 0 || !isLowerHex(p) || len(p)/2 > MaxValueBytes {
			return Value{}, malformed("bytes value")
		}
		b, _ := hex.DecodeString(p)
		if b == nil {
			b = []byte{}
		}
		return BytesValue(b), nil
	}
	return Value{}, malformed("unknown value type %q", tok)
}

// -------------------------------------------------------------------- tags

// Tag identifies a set add (changes.md §3.5).
type Tag struct {
	Author [32]byte
	Seq    uint64
	Op     uint32
}

// Bin is the 44-byte binary form.
func (t Tag) Bin() []byte {
	b := make([]byte, 44)
	copy(b, t.Author[:])
	for i := 0; i < 8; i++ {
		b[32+i] = byte(t.Seq >> (56 - 8*i))
	}
	for i := 0; i < 4; i++ {
		b[40+i] = byte(t.Op >> (24 - 8*i))
	}
	return b
}

func (t Tag) String() string {
	return fmt.Sprintf("%x.%d.%d", t.Author[:], t.Seq, t.Op)
}

func parseTag(s string) (Tag, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Tag{}, false
	}
	a, ok := parseLHex(parts[0], 32)
	if !ok {
		return Tag{}, false
	}
	seq, ok := parseUDec(parts[1], MaxSeq)
	if !ok || seq == 0 {
		return Tag{}, false
	}
	op, ok := parseUDec(parts[2], MaxOps-1)
	if !ok {
		return Tag{}, false
	}
	var t Tag
	copy(t.Author[:], a)
	t.Seq, t.Op = seq, uint32(op)
	return t, true
}

// EncodeTags joins tags in the canonical (sorted, unique) order.
func EncodeTags(tags []Tag) string {
	ts := append([]Tag(nil), tags...)
	sortTags(ts)
	var parts []string
	for i, t := range ts {
		if i > 0 && bytes.Equal(t.Bin(), ts[i-1].Bin()) {
			continue
		}
		parts = append(parts, t.String())
	}
	return strings.Join(parts, ",")
}

func sortTags(ts []Tag) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && bytes.Compare(ts[j].Bin(), ts[j-1].Bin()) < 0; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// --------------------------------------------------------------------- ops

// Op is one op of a change, with decoded names.
type Op struct {
	Kind  byte // 'S' 'D' 'X' 'N' 'A' 'R'
	Coll  string
	Doc   string
	Path  string
	Value Value // S, A, R
	Delta int64 // N
	Tags  []Tag // R
}

// Encode writes the op's tokens.
func (o Op) Encode() string {
	c, d, p := Escape(o.Coll), Escape(o.Doc), Escape(o.Path)
	switch o.Kind {
	case 'S', 'A':
		return fmt.Sprintf("%c %s %s %s %s", o.Kind, c, d, p, o.Value.Token())
	case 'D':
		return fmt.Sprintf("D %s %s %s", c, d, p)
	case 'X':
		return fmt.Sprintf("X %s %s", c, d)
	case 'N':
		return fmt.Sprintf("N %s %s %s %d", c, d, p, o.Delta)
	case 'R':
		return fmt.Sprintf("R %s %s %s %s %s", c, d, p, o.Value.Token(), EncodeTags(o.Tags))
	}
	panic("bad op kind")
}

func parseName(tok string, max int, what string) (string, error) {
	s, err := Unescape(tok)
	if err != nil {
		return "", err
	}
	if len(s) < 1 || len(s) > max {
		return "", malformed("%s length %d", what, len(s))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", malformed("%s contains NUL", what)
	}
	return s, nil
}

func parsePath(tok string) (string, error) {
	s, err := parseName(tok, MaxPathBytes, "path")
	if err != nil {
		return "", err
	}
	segs := strings.Split(s, ".")
	if len(segs) > MaxPathDepth {
		return "", malformed("path deeper than %d", MaxPathDepth)
	}
	for _, g := range segs {
		if g == "" {
			return "", malformed("empty path segment in %q", s)
		}
	}
	return s, nil
}

// opArity is the number of tokens of each op, its letter included.
var opArity = map[string]int{"S": 5, "D": 4, "X": 3, "N": 5, "A": 5, "R": 6}

func parseOp(t []string) (Op, error) {
	var o Op
	var err error
	o.Kind = t[0][0]
	if o.Coll, err = parseName(t[1], MaxCollBytes, "collection"); err != nil {
		return o, err
	}
	if o.Doc, err = parseName(t[2], MaxDocBytes, "document key"); err != nil {
		return o, err
	}
	if o.Kind == 'X' {
		return o, nil
	}
	if o.Path, err = parsePath(t[3]); err != nil {
		return o, err
	}
	switch o.Kind {
	case 'S', 'A', 'R':
		if o.Value, err = ParseValue(t[4]); err != nil {
			return o, err
		}
	case 'N':
		d, ok := parseIDec(t[4])
		if !ok {
			return o, malformed("counter delta %q", t[4])
		}
		o.Delta = d
	}
	if o.Kind == 'R' {
		parts := strings.Split(t[5], ",")
		var prev []byte
		for _, p := range parts {
			tag, ok := parseTag(p)
			if !ok {
				return o, malformed("tag %q", p)
			}
			b := tag.Bin()
			if prev != nil && bytes.Compare(prev, b) >= 0 {
				return o, malformed("tags not strictly increasing")
			}
			prev = b
			o.Tags = append(o.Tags, tag)
		}
	}
	return o, nil
}

// ------------------------------------------------------------------ change

// Change is a parsed change line; Line holds its exact bytes.
type Change struct {
	Line      string
	Body      string
	Author    [32]byte
	Seq       uint64
	HLC       uint64
	Prev      [32]byte
	Ops       []Op
	Signature [64]byte
	Hash      [32]byte
	Link      [32]byte // what the author's next change names as Prev
}

// HashBody is BLAKE2b-256("liblim change v1" NUL || body).
func HashBody(body string) [32]byte {
	return blake2b.Sum256(append(append([]byte{}, ctxChange...), body...))
}

// LinkOf is BLAKE2b-256("liblim link v1" NUL || hash || signature), changes.md §6.
func LinkOf(hash [32]byte, sig [64]byte) [32]byte {
	b := append(append(append([]byte{}, ctxLink...), hash[:]...), sig[:]...)
	return blake2b.Sum256(b)
}

func signedChangeMessage(h [32]byte) []byte {
	return append(append([]byte{}, ctxSignature...), h[:]...)
}

// VerifySignature checks the change's Ed25519 signature.
func (c *Change) VerifySignature() bool {
	return VerifyEd25519(c.Author[:], signedChangeMessage(c.Hash), c.Signature[:])
}

// AuthorShort is the form liblim uses in messages.
func (c *Change) String() string { return fmt.Sprintf("%x.../%d", c.Author[:8], c.Seq) }

// ParseChange applies every form rule of changes.md §2–§4 and computes the
// hash and the link.
func ParseChange(line string) (*Change, error) {
	if len(line) == 0 || len(line) > MaxChangeBytes {
		return nil, malformed("change length %d", len(line))
	}
	if strings.IndexByte(line, '\n') >= 0 || strings.IndexByte(line, 0) >= 0 {
		return nil, malformed("LF or NUL in change")
	}
	if !utf8.ValidString(line) {
		return nil, malformed("not UTF-8")
	}
	toks := strings.Split(line, " ")
	for _, t := range toks {
		if t == "" {
			return nil, malformed("empty token (stray space)")
		}
	}
	if len(toks) < 8 || toks[0] != "lim1" {
		return nil, malformed("not a lim1 change")
	}
	c := &Change{Line: line}
	a, ok := parseLHex(toks[1], 32)
	if !ok {
		return nil, malformed("author")
	}
	copy(c.Author[:], a)
	if c.Seq, ok = parseUDec(toks[2], MaxSeq); !ok || c.Seq == 0 {
		return nil, malformed("seq")
	}
	h, ok := parseLHex(toks[3], 8)
	if !ok {
		return nil, malformed("hlc")
	}
	for _, x := range h {
		c.HLC = c.HLC<<8 | uint64(x)
	}
	if c.HLC == 0 {
		return nil, malformed("hlc is 0")
	}
	p, ok := parseLHex(toks[4], 32)
	if !ok {
		return nil, malformed("prev")
	}
	copy(c.Prev[:], p)
	if c.Seq == 1 && c.Prev != ([32]byte{}) {
		return nil, malformed("prev of seq 1 is not zero")
	}
	nops, ok := parseUDec(toks[5], MaxOps)
	if !ok || nops == 0 {
		return nil, malformed("nops")
	}
	i := 6
	for k := uint64(0); k < nops; k++ {
		if i >= len(toks)-1 {
			return nil, malformed("fewer ops than nops")
		}
		n, ok := opArity[toks[i]]
		if !ok {
			return nil, malformed("unknown op %q", toks[i])
		}
		if i+n > len(toks)-1 {
			return nil, malformed("truncated op")
		}
		op, err := parseOp(toks[i : i+n])
		if err != nil {
			return nil, err
		}
		c.Ops = append(c.Ops, op)
		i += n
	}
	if i != len(toks)-1 {
		return nil, malformed("more tokens than nops ops")
	}
	s, ok := parseLHex(toks[i], 64)
	if !ok {
		return nil, malformed("signature")
	}
	copy(c.Signature[:], s)
	c.Body = line[:strings.LastIndexByte(line, ' ')]
	c.Hash = HashBody(c.Body)
	c.Link = LinkOf(c.Hash, c.Signature)
	return c, nil
}

// BuildChange encodes, hashes and signs a change; prev is the Link of the
// author's previous change (zero for seq 1).
func BuildChange(priv ed25519.PrivateKey, seq, hlc uint64, prev [32]byte, ops []Op) (*Change, error) {
	var sb strings.Builder
	pub := priv.Public().(ed25519.PublicKey)
	fmt.Fprintf(&sb, "lim1 %x %d %016x %x %d", []byte(pub), seq, hlc, prev[:], len(ops))
	for _, o := range ops {
		sb.WriteByte(' ')
		sb.WriteString(o.Encode())
	}
	body := sb.String()
	h := HashBody(body)
	sig := ed25519.Sign(priv, signedChangeMessage(h))
	line := body + " " + hex.EncodeToString(sig)
	c, err := ParseChange(line) // round trip: what we build must parse
	if err != nil {
		return nil, err
	}
	if c.Body != body || c.Hash != h {
		return nil, errors.New("limproto: build/parse mismatch")
	}
	return c, nil
}
