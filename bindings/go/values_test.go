package lim

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	if v := Version(); !strings.HasPrefix(v, "0.") {
		t.Fatalf("Version() = %q", v)
	}
}

// TestRoundTripTypes writes every value type with Put and reads it back
// with Get (JSON) and GetField (typed API).
func TestRoundTripTypes(t *testing.T) {
	db := openDB(t)
	in := map[string]any{
		"null":     nil,
		"true":     true,
		"false":    false,
		"int":      int64(42),
		"neg":      int64(-7),
		"max":      int64(math.MaxInt64),
		"min":      int64(math.MinInt64),
		"zero":     int64(0),
		"float":    3.25,
		"floatInt": 1.0, // must stay a float
		"tiny":     5e-324,
		"huge":     1.7976931348623157e308,
		"negf":     -0.1,
		"str":      "héllo, \"wörld\" \\ ✓ \t\n\x01",
		"empty":    "",
		"bytes":    []byte{0, 1, 2, 0xff, 0xfe},
		"nobytes":  []byte{},
		"nested": map[string]any{
			"a": int64(1),
			"b": map[string]any{"c": "deep", "d": []byte("raw")},
		},
	}
	must(t, db.Put("types", "doc", in))
	got, err := db.Get("types", "doc")
	must(t, err)
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("Get round trip:\n got %#v\nwant %#v", got, in)
	}

	// The typed field API sees the same values.
	fields := map[string]any{
		"null": nil, "true": true, "int": int64(42), "min": int64(math.MinInt64),
		"float": 3.25, "floatInt": 1.0, "tiny": 5e-324, "str": in["str"], "empty": "",
		"bytes": in["bytes"], "nobytes": []byte{}, "nested.b.c": "deep", "nested.b.d": []byte("raw"),
	}
	for path, want := range fields {
		v, err := db.GetField("types", "doc", path)
		if err != nil {
			t.Fatalf("GetField(%s): %v", path, err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("GetField(%s) = %#v (%T), want %#v (%T)", path, v, v, want, want)
		}
	}

	// Other Go integer and float types are accepted on input.
	must(t, db.Put("types", "ints", map[string]any{
		"int": 1, "i8": int8(-2), "i16": int16(3), "i32": int32(-4), "u8": uint8(5),
		"u16": uint16(6), "u32": uint32(7), "u": uint(8), "u64": uint64(9), "f32": float32(0.5),
	}))
	got, err = db.Get("types", "ints")
	must(t, err)
	want := map[string]any{
		"int": int64(1), "i8": int64(-2), "i16": int64(3), "i32": int64(-4), "u8": int64(5),
		"u16": int64(6), "u32": int64(7), "u": int64(8), "u64": int64(9), "f32": 0.5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ints: got %#v want %#v", got, want)
	}

	// Set writes one scalar field of each type; GetJSON shows a subtree.
	for i, v := range []any{nil, false, int64(-1), 2.5, "s", []byte("b")} {
		path := "set.f" + string(rune('a'+i))
		must(t, db.Set("types", "set", path, v))
		got, err := db.GetField("types", "set", path)
		must(t, err)
		if !reflect.DeepEqual(got, v) {
			t.Errorf("Set/GetField %s: got %#v want %#v", path, got, v)
		}
	}
	js, err := db.GetJSON("types", "set", "set.fe")
	must(t, err)
	if string(js) != `"s"` {
		t.Errorf("GetJSON field = %s", js)
	}
	js, err = db.GetJSON("types", "doc", "nested.b")
	must(t, err)
	if string(js) != `{"c":"deep","d":{"$base64":"cmF3"}}` {
		t.Errorf("GetJSON subtree = %s", js)
	}
}

func TestCountersAndSets(t *testing.T) {
	db := openDB(t)
	must(t, db.Incr("c", "d", "n", 5))
	must(t, db.Incr("c", "d", "n", -2))
	v, err := db.GetField("c", "d", "n")
	must(t, err)
	if v != int64(3) {
		t.Fatalf("counter = %#v", v)
	}
	for _, e := range []any{"b", int64(2), "a", []byte{1}, nil, true, 1.5} {
		must(t, db.SetAdd("c", "d", "tags", e))
	}
	must(t, db.SetAdd("c", "d", "tags", "a")) // already a member
	must(t, db.SetRemove("c", "d", "tags", int64(2)))
	must(t, db.SetRemove("c", "d", "tags", "not a member"))
	v, err = db.GetField("c", "d", "tags")
	must(t, err)
	set, ok := v.([]any)
	if !ok || len(set) != 6 {
		t.Fatalf("set = %#v", v)
	}
	doc, err := db.Get("c", "d")
	must(t, err)
	if doc["n"] != int64(3) || len(doc["tags"].([]any)) != 6 {
		t.Fatalf("Get = %#v", doc)
	}
	// The set's order is canonical: the typed API and JSON agree.
	if !reflect.DeepEqual(doc["tags"], set) {
		t.Fatalf("JSON set %#v != typed set %#v", doc["tags"], set)
	}
}

func TestDeleteAndOverwrite(t *testing.T) {
	db := openDB(t)
	must(t, db.Put("p", "ada", map[string]any{"name": "Ada", "addr": map[string]any{"city": "London", "zip": "N1"}}))
	must(t, db.DeleteField("p", "ada", "addr.zip"))
	doc, err := db.Get("p", "ada")
	must(t, err)
	if !reflect.DeepEqual(doc, map[string]any{"name": "Ada", "addr": map[string]any{"city": "London"}}) {
		t.Fatalf("after DeleteField: %#v", doc)
	}
	must(t, db.Put("p", "ada", map[string]any{"addr": "nowhere"})) // a value replaces an object
	doc, err = db.Get("p", "ada")
	must(t, err)
	if doc["addr"] != "nowhere" {
		t.Fatalf("overwrite: %#v", doc)
	}
	must(t, db.Delete("p", "ada"))
	if _, err := db.Get("p", "ada"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if _, err := db.GetField("p", "ada", "name"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetField after Delete: %v", err)
	}
}

func TestInvalidValues(t *testing.T) {
	db := openDB(t)
	bad := []map[string]any{
		{"nan": math.NaN()},
		{"inf": math.Inf(1)},
		{"big": uint64(math.MaxUint64)},
		{"slice": []int{1}},
		{"struct": struct{}{}},
		{"utf8": "\xff"},
		{"a.b": 1},        // '.' separates path segments
		{"": 1},           // empty key
		{"arr": []any{1}}, // arrays are not values
	}
	for _, fields := range bad {
		if err := db.Put("c", "d", fields); !errors.Is(err, ErrInvalid) {
			t.Errorf("Put(%#v) = %v, want ErrInvalid", fields, err)
		}
	}
	if err := db.Set("c", "d", "x", math.Inf(-1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Set(-Inf) = %v", err)
	}
	if err := db.Set("c", "d", "", 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Set with empty path = %v", err)
	}
	if err := db.Put("c\x00x", "d", map[string]any{"a": 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("collection with NUL = %v", err)
	}
	if _, err := db.Get("c", "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("nothing should have been written: %v", err)
	}
}

// A string holding U+0000 cannot travel through lim_db_put_json; Put writes
// it with lim_db_set instead, and the whole Put is still one change.
func TestPutStringWithNUL(t *testing.T) {
	db := openDB(t)
	fields := map[string]any{"s": "a\x00b", "plain": 1, "o": map[string]any{"p": "\x00", "q": "x"}}
	if err := db.Put("t", "nul", fields); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := db.Get("t", "nul")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := map[string]any{"s": "a\x00b", "plain": int64(1), "o": map[string]any{"p": "\x00", "q": "x"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %#v, want %#v", got, want)
	}
	vv, err := db.VersionVector()
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range vv {
		if seq != 1 {
			t.Fatalf("Put made %d changes, want 1 (vv %v)", seq, vv)
		}
	}
	if err := db.Put("t", "bad", map[string]any{"a.b": "\x00"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dotted key with NUL value = %v, want ErrInvalid", err)
	}
	if _, err := db.Get("t", "bad"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused Put wrote something: %v", err)
	}
}
