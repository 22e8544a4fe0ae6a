package lim

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/liblim/liblim/bindings/go/internal/unity"
)

// TestUnityListsEverySource: liblim_unity.c includes every libcore/src/*.c
// (and nothing else), and its libcore digest is current, so a cached cgo
// build cannot silently use old C sources.
func TestUnityListsEverySource(t *testing.T) {
	root := filepath.Join("..", "..")
	srcs, err := unity.Sources(root)
	must(t, err)
	text, err := os.ReadFile(unity.File)
	must(t, err)
	included := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#include "\.\./\.\./libcore/src/([^"]+)"$`).FindAllSubmatch(text, -1) {
		included[string(m[1])] = true
	}
	for _, s := range srcs {
		if !included[s] {
			t.Errorf("libcore/src/%s is not included by %s", s, unity.File)
		}
		delete(included, s)
	}
	for s := range included {
		t.Errorf("%s includes libcore/src/%s, which does not exist", unity.File, s)
	}
	want, err := unity.Render(root)
	must(t, err)
	if !bytes.Equal(text, want) {
		t.Errorf("%s is out of date with libcore/ (a cached cgo build may be stale): run `go generate ./bindings/go`", unity.File)
	}
}
