//go:build cgo

package lim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value types, as liblim stores them:
//
//	nil              null
//	bool             bool
//	int64            64-bit integer (int, int8..int32, uint8..uint32 and
//	                 uint/uint64 up to MaxInt64 are accepted on input)
//	float64          finite double (float32 accepted on input)
//	string           UTF-8 string
//	[]byte           bytes (JSON: {"$base64": "..."})
//	map[string]any   a nested object: its leaves are fields with dotted paths
//
// Reads return exactly these types (integers as int64, floats as float64,
// bytes as []byte); a set field reads as []any in canonical order and a
// counter as int64.

// scalar is a Go value ready for lim_value.
type scalar struct {
	typ     int // lim_type
	boolean bool
	integer int64
	real    float64
	data    string // string or bytes payload
}

const (
	limNull   = 0
	limBool   = 1
	limInt    = 2
	limFloat  = 3
	limString = 4
	limBytes  = 5
)

func toScalar(v any) (scalar, error) {
	switch x := v.(type) {
	case nil:
		return scalar{typ: limNull}, nil
	case bool:
		return scalar{typ: limBool, boolean: x}, nil
	case string:
		if !utf8.ValidString(x) {
			return scalar{}, newError(CodeInvalid, "string value is not valid UTF-8")
		}
		return scalar{typ: limString, data: x}, nil
	case []byte:
		return scalar{typ: limBytes, data: string(x)}, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return scalar{}, newError(CodeInvalid, "float value must be finite (NaN and infinities cannot be stored)")
		}
		return scalar{typ: limFloat, real: x}, nil
	case float32:
		return toScalar(float64(x))
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return scalar{typ: limInt, integer: i}, nil
		}
		f, err := x.Float64()
		if err != nil {
			return scalar{}, newError(CodeInvalid, "json.Number %q is not a number liblim can store", string(x))
		}
		return toScalar(f)
	}
	if i, ok, err := toInt64(v); ok {
		if err != nil {
			return scalar{}, err
		}
		return scalar{typ: limInt, integer: i}, nil
	}
	return scalar{}, newError(CodeInvalid, "unsupported value type %T (use nil, bool, int64, float64, string, []byte)", v)
}

func toInt64(v any) (int64, bool, error) {
	switch x := v.(type) {
	case int:
		return int64(x), true, nil
	case int8:
		return int64(x), true, nil
	case int16:
		return int64(x), true, nil
	case int32:
		return int64(x), true, nil
	case int64:
		return x, true, nil
	case uint8:
		return int64(x), true, nil
	case uint16:
		return int64(x), true, nil
	case uint32:
		return int64(x), true, nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, true, newError(CodeInvalid, "integer %d is outside the 64-bit signed range", x)
		}
		return int64(x), true, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, true, newError(CodeInvalid, "integer %d is outside the 64-bit signed range", x)
		}
		return int64(x), true, nil
	}
	return 0, false, nil
}

// encodeObject renders fields as the JSON object lim_db_put_json takes:
// floats always as JSON reals (so 1.0 stays a float), bytes as
// {"$base64": "..."}, nested maps as objects. Keys are sorted.
//
// Strings holding U+0000 are left out of the JSON and returned as nulLeaves:
// SQLite's JSON functions cut such strings short, so lim_db_put_json refuses
// them and put writes them with lim_db_set in the same change instead (as
// the Python binding does).
func encodeObject(fields map[string]any) (js []byte, nulLeaves []nulLeaf, err error) {
	var b bytes.Buffer
	if err := appendObject(&b, fields, "", 0, &nulLeaves); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), nulLeaves, nil
}

// nulLeaf is a string field that cannot travel through JSON: its dotted
// path (keys never contain '.': lim_db_put_json refuses such keys) and value.
type nulLeaf struct {
	path  string
	value string
}

const maxDepth = 32 // LIM_MAX_PATH_DEPTH

func appendObject(b *bytes.Buffer, m map[string]any, path string, depth int, nuls *[]nulLeaf) error {
	if depth > maxDepth {
		return newError(CodeInvalid, "fields are nested deeper than %d levels", maxDepth)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	first := true
	for _, k := range keys {
		if !utf8.ValidString(k) {
			return newError(CodeInvalid, "field name %q is not valid UTF-8", k)
		}
		leaf := k
		if path != "" {
			leaf = path + "." + k
		}
		if s, ok := m[k].(string); ok && strings.IndexByte(s, 0) >= 0 {
			if strings.IndexByte(k, '.') >= 0 {
				return newError(CodeInvalid, "field name %q contains '.', which separates path segments", k)
			}
			*nuls = append(*nuls, nulLeaf{leaf, s})
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		appendString(b, k)
		b.WriteByte(':')
		if err := appendValue(b, m[k], leaf, depth, nuls); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

func appendValue(b *bytes.Buffer, v any, path string, depth int, nuls *[]nulLeaf) error {
	if m, ok := v.(map[string]any); ok {
		return appendObject(b, m, path, depth+1, nuls)
	}
	s, err := toScalar(v)
	if err != nil {
		return err
	}
	switch s.typ {
	case limNull:
		b.WriteString("null")
	case limBool:
		b.WriteString(strconv.FormatBool(s.boolean))
	case limInt:
		b.WriteString(strconv.FormatInt(s.integer, 10))
	case limFloat:
		f := strconv.FormatFloat(s.real, 'g', -1, 64)
		b.WriteString(f)
		if !bytes.ContainsAny([]byte(f), ".eE") {
			b.WriteString(".0") // a JSON integer literal would be stored as an int
		}
	case limString:
		appendString(b, s.data)
	case limBytes:
		b.WriteString(`{"$base64":"`)
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(s.data)))
		b.WriteString(`"}`)
	}
	return nil
}

func appendString(b *bytes.Buffer, s string) {
	const hexdig = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexdig[c>>4])
			b.WriteByte(hexdig[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// decodeJSON parses what lim_db_get_json prints into Go values.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, newError(CodeCorrupt, "liblim printed JSON the binding cannot parse: %v", err)
	}
	return convertJSON(v)
}

func convertJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if bytes.ContainsAny([]byte(s), ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, newError(CodeCorrupt, "bad number %q in liblim's JSON", s)
			}
			return f, nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, newError(CodeCorrupt, "bad integer %q in liblim's JSON", s)
		}
		return i, nil
	case map[string]any:
		if len(x) == 1 {
			if s, ok := x["$base64"].(string); ok {
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, newError(CodeCorrupt, "bad base64 in liblim's JSON")
				}
				return raw, nil
			}
		}
		for k, e := range x {
			c, err := convertJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case []any:
		for i, e := range x {
			c, err := convertJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	default: // nil, bool, string
		return x, nil
	}
}
