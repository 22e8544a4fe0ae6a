package lim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestKeys(t *testing.T) {
	db := openDB(t)
	var want []string
	must(t, db.Update(func(tx *Tx) error {
		for i := 0; i < 600; i++ { // more than one batch
			k := fmt.Sprintf("k%04d", i)
			want = append(want, k)
			if err := tx.Put("c", k, map[string]any{"i": i}); err != nil {
				return err
			}
		}
		return tx.Put("other", "x", map[string]any{"i": 0})
	}))
	must(t, db.Delete("c", "k0002"))
	want = append(want[:2], want[3:]...)

	collect := func(opts ...KeysOption) []string {
		var got []string
		for k, err := range db.Keys("c", opts...) {
			must(t, err)
			got = append(got, k)
		}
		return got
	}
	if got := collect(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys: %d keys, first %v", len(got), got[:3])
	}
	if got := collect(KeyPrefix("k03")); len(got) != 100 || got[0] != "k0300" || got[99] != "k0399" {
		t.Fatalf("prefix: %d keys", len(got))
	}
	if got := collect(KeysAfter("k0500"), KeysLimit(3)); !reflect.DeepEqual(got, []string{"k0501", "k0502", "k0503"}) {
		t.Fatalf("after+limit: %v", got)
	}
	if got := collect(KeyPrefix("k05"), KeysAfter("k0598")); !reflect.DeepEqual(got, []string{"k0599"}) {
		t.Fatalf("prefix+after: %v", got)
	}
	if got := collect(KeyPrefix("zzz")); len(got) != 0 {
		t.Fatalf("no match: %v", got)
	}
	// Breaking out early, and writing while iterating.
	n := 0
	for k, err := range db.Keys("c") {
		must(t, err)
		must(t, db.Put("c", k, map[string]any{"seen": true}))
		if n++; n == 300 {
			break
		}
	}
	// An invalid collection is an error yielded once.
	errs := 0
	for _, err := range db.Keys("") {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("Keys(\"\"): %v", err)
		}
		errs++
	}
	if errs != 1 {
		t.Fatalf("%d errors", errs)
	}
}

func TestLogVersionVectorDigest(t *testing.T) {
	a, b := pair(t)
	must(t, a.Put("c", "d", map[string]any{"v": 1}))
	must(t, a.Incr("c", "d", "n", 2))
	must(t, b.Put("c", "e", map[string]any{"v": 2}))
	log, err := a.Log(0)
	must(t, err)
	if len(log) != 2 || log[0].Author != a.ReplicaID() || log[0].Seq != 1 || log[1].Seq != 2 {
		t.Fatalf("log: %+v", log)
	}
	if d := time.Since(log[1].Time); d < 0 || d > time.Minute || log[1].HLC <= log[0].HLC {
		t.Fatalf("log times: %+v", log)
	}
	if !bytes.HasPrefix(log[0].Bytes, []byte("lim1 "+a.ReplicaID()+" 1 ")) {
		t.Fatalf("change bytes: %s", log[0].Bytes)
	}
	if last, err := a.Log(1); err != nil || len(last) != 1 || last[0].Seq != 2 {
		t.Fatalf("Log(1): %+v %v", last, err)
	}
	vv, err := a.VersionVector()
	must(t, err)
	if !reflect.DeepEqual(vv, VersionVector{a.ReplicaID(): 2}) {
		t.Fatalf("vv: %v", vv)
	}
	parsed, err := ParseVersionVector(vv.String())
	must(t, err)
	if !reflect.DeepEqual(parsed, vv) {
		t.Fatal("version vector text round trip")
	}
	if _, err := ParseVersionVector("nonsense"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}

	// Export a's changes into b by applying the log one by one.
	for _, e := range log {
		st, err := b.Apply(e.Bytes)
		must(t, err)
		if st.Applied != 1 {
			t.Fatalf("apply: %+v", st)
		}
	}
	st, err := b.Apply(log[0].Bytes)
	must(t, err)
	if st.Duplicates != 1 {
		t.Fatalf("duplicate apply: %+v", st)
	}
	must(t, a.Verify())
	must(t, b.Verify())
	must(t, b.Rebuild())
	if digest(t, a) == digest(t, b) {
		t.Fatal("digests agree before b's change reached a")
	}
}

func TestExportImport(t *testing.T) {
	a, b := pair(t)
	must(t, a.Put("c", "x", map[string]any{"v": 1}))
	must(t, a.Put("c", "y", map[string]any{"v": []byte{1, 2}}))
	must(t, b.Put("c", "z", map[string]any{"v": 3}))

	var pack bytes.Buffer
	must(t, a.Export(&pack))
	if !strings.HasPrefix(pack.String(), "LIMPACK 1\n") {
		t.Fatalf("pack: %q", pack.String())
	}
	st, err := b.Import(bytes.NewReader(pack.Bytes()))
	must(t, err)
	if st.Applied != 2 || st.Duplicates != 0 {
		t.Fatalf("import: %+v", st)
	}
	st, err = b.Import(iotestOneByte(pack.Bytes()))
	must(t, err)
	if st.Duplicates != 2 {
		t.Fatalf("re-import: %+v", st)
	}
	// Export only what a lacks, and bring a up to date.
	vvA, err := a.VersionVector()
	must(t, err)
	var delta bytes.Buffer
	must(t, b.Export(&delta, vvA))
	st, err = a.Import(&delta)
	must(t, err)
	if st.Applied != 1 {
		t.Fatalf("delta import: %+v", st)
	}
	if digest(t, a) != digest(t, b) {
		t.Fatal("digests differ after exchanging packs")
	}

	// A truncated pack changes nothing.
	c := openDB(t, WithNetworkKey(a.NetworkKey()))
	_, err = c.Import(bytes.NewReader(pack.Bytes()[:pack.Len()-10]))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated pack: %v", err)
	}
	if vv, _ := c.VersionVector(); len(vv) != 0 {
		t.Fatalf("truncated pack applied something: %v", vv)
	}
	// Reader and writer errors come back, wrapped with liblim's.
	rerr := errors.New("disk on fire")
	_, err = c.Import(&failingReader{data: pack.Bytes()[:20], err: rerr})
	if !errors.Is(err, rerr) || !errors.Is(err, ErrIO) {
		t.Fatalf("reader error: %v", err)
	}
	err = a.Export(failingWriter{rerr})
	if !errors.Is(err, rerr) || !errors.Is(err, ErrIO) {
		t.Fatalf("writer error: %v", err)
	}
	// A panicking writer panics in Go, after C has cleaned up.
	func() {
		defer func() {
			if r := recover(); r != "writer panic" {
				t.Fatalf("recovered %v", r)
			}
		}()
		a.Export(panicWriter{})
	}()
	must(t, a.Put("c", "after", map[string]any{"ok": true}))
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

type failingWriter struct{ err error }

func (w failingWriter) Write(p []byte) (int, error) { return 0, w.err }

type panicWriter struct{}

func (panicWriter) Write(p []byte) (int, error) { panic("writer panic") }

func iotestOneByte(b []byte) io.Reader {
	return iotest.OneByteReader(iotest.DataErrReader(bytes.NewReader(b)))
}
