package limproto

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Limits of PROTOCOL.md §3.
const (
	MaxLineBytes    = 4194368
	MaxBatchChanges = 1000
	MaxBatchBytes   = 16777216
	MaxUnacked      = 4000
	MaxVVAuthors    = 48000
	MaxTokenBytes   = 64
	ProtocolVersion = 1
)

// ProtoError is an ERR line: sent or received.
type ProtoError struct {
	Code     int
	Text     string
	Received bool // the peer sent it
}

func (e *ProtoError) Error() string {
	dir := "sent"
	if e.Received {
		dir = "received"
	}
	return fmt.Sprintf("ERR %d %s (%s)", e.Code, e.Text, dir)
}

// Line is the ERR line for this error.
func (e *ProtoError) Line() string { return fmt.Sprintf("ERR %d %s", e.Code, e.Text) }

func perr(code int, text string) *ProtoError { return &ProtoError{Code: code, Text: text} }

// Msg is one parsed message (PROTOCOL.md §7, Appendix A).
type Msg struct {
	Name    string
	Version uint64    // HELLO
	ID      [32]byte  // HELLO
	Nonce   [32]byte  // HELLO
	Sig     [64]byte  // AUTH
	Proof   [32]byte  // AUTH
	VV      []VVEntry // VV
	Change  string    // CH
	N       uint64    // END, ACK
	Token   string    // PING, PONG
	Code    uint64    // ERR
	Text    string    // ERR text, STATE json (HasText tells presence)
	HasText bool
	Raw     string
}

var knownMessages = map[string]bool{
	"HELLO": true, "AUTH": true, "VV": true, "CH": true, "END": true, "ACK": true,
	"SYNCED": true, "PING": true, "PONG": true, "STATUS": true, "STATE": true,
	"ERR": true, "BYE": true,
}

// ParseMessage parses one line (without LF) strictly.
func ParseMessage(line string) (*Msg, *ProtoError) {
	if len(line) > MaxLineBytes {
		return nil, perr(413, "line too long")
	}
	if strings.ContainsAny(line, "\r\x00") {
		return nil, perr(400, "a line may not contain CR or NUL")
	}
	if line == "" || line[0] == ' ' {
		return nil, perr(400, "empty line or stray space")
	}
	name, rest, hasRest := strings.Cut(line, " ")
	if !knownMessages[name] {
		return nil, perr(400, "unknown message")
	}
	m := &Msg{Name: name, Raw: line}
	// free-text messages first
	switch name {
	case "CH":
		if !hasRest || rest == "" {
			return nil, perr(400, "CH carries a change")
		}
		if !MaybeChange(rest) {
			return nil, perr(422, "LIM_EMALFORMED: CH does not carry a change")
		}
		m.Change = rest
		return m, nil
	case "STATE":
		if hasRest {
			if rest == "" {
				return nil, perr(400, "empty line or stray space")
			}
			m.Text, m.HasText = rest, true
		}
		return m, nil
	case "ERR":
		if !hasRest {
			return nil, perr(400, "ERR takes a code and a text")
		}
		code, text, hasText := strings.Cut(rest, " ")
		c, ok := parseUDec(code, ^uint64(0))
		if !ok || (hasText && text == "") {
			return nil, perr(400, "ERR takes a code and a text")
		}
		m.Code, m.Text, m.HasText = c, text, hasText
		return m, nil
	}
	var f []string
	if hasRest {
		f = strings.Split(rest, " ")
		for _, x := range f {
			if x == "" {
				return nil, perr(400, "empty line or stray space")
			}
		}
	}
	switch name {
	case "HELLO":
		if len(f) != 3 {
			return nil, perr(400, "HELLO takes <version> <node id> <nonce>")
		}
		v, ok := parseUDec(f[0], ^uint64(0))
		if !ok {
			return nil, perr(400, "HELLO version is not a number")
		}
		id, ok1 := parseLHex(f[1], 32)
		nonce, ok2 := parseLHex(f[2], 32)
		if !ok1 || !ok2 {
			return nil, perr(400, "HELLO id and nonce are 64 lowercase hex digits")
		}
		m.Version = v
		copy(m.ID[:], id)
		copy(m.Nonce[:], nonce)
	case "AUTH":
		s, ok1 := parseLHex(f0(f, 0), 64)
		p, ok2 := parseLHex(f0(f, 1), 32)
		if len(f) != 2 || !ok1 || !ok2 {
			return nil, perr(400, "AUTH takes <128 hex signature> <64 hex proof>")
		}
		copy(m.Sig[:], s)
		copy(m.Proof[:], p)
	case "VV":
		if len(f) > MaxVVAuthors {
			return nil, perr(413, "VV names too many authors")
		}
		for _, e := range f {
			a, s, ok := strings.Cut(e, ":")
			ab, ok1 := parseLHex(a, 32)
			seq, ok2 := parseUDec(s, MaxSeq)
			if !ok || !ok1 || !ok2 || seq == 0 {
				return nil, perr(400, "VV entries are <64 hex author>:<seq> with seq >= 1")
			}
			var en VVEntry
			copy(en.Author[:], ab)
			en.Seq = seq
			m.VV = append(m.VV, en)
		}
	case "END", "ACK":
		n, ok := parseUDec(f0(f, 0), ^uint64(0))
		if len(f) != 1 || !ok {
			return nil, perr(400, "END and ACK take a count")
		}
		m.N = n
	case "PING", "PONG":
		if len(f) != 1 || len(f[0]) > MaxTokenBytes {
			return nil, perr(400, "PING and PONG take one token of at most 64 bytes")
		}
		m.Token = f[0]
	case "SYNCED", "STATUS", "BYE":
		if len(f) != 0 {
			return nil, perr(400, "unknown message")
		}
	}
	return m, nil
}

func f0(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// MaybeChange is the cheap check made at a CH line (PROTOCOL.md §7.4): starts
// with "lim1 ", at least 71 bytes, a SP after byte 70.
func MaybeChange(p string) bool {
	return len(p) >= 71 && strings.HasPrefix(p, "lim1 ") && strings.IndexByte(p[70:], ' ') >= 0
}

// Encoders.

func HelloLine(version uint64, id, nonce [32]byte) string {
	return fmt.Sprintf("HELLO %d %x %x", version, id[:], nonce[:])
}

func AuthLine(sig [64]byte, proof [32]byte) string {
	return fmt.Sprintf("AUTH %x %x", sig[:], proof[:])
}

// VVLine writes the VV message in bytewise author order.
func VVLine(v []VVEntry) string {
	var b bytes.Buffer
	b.WriteString("VV")
	for _, e := range v {
		b.WriteString(" " + hex.EncodeToString(e.Author[:]) + ":" + strconv.FormatUint(e.Seq, 10))
	}
	return b.String()
}
