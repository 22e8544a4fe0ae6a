// Command genunity writes bindings/go/liblim_unity.c (see package unity).
// Run it through "go generate ./bindings/go" from the repository root.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/liblim/liblim/bindings/go/internal/unity"
)

func main() {
	// go generate runs in the package directory (bindings/go).
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err == nil {
		if _, err = os.Stat(filepath.Join(root, "libcore", "include", "lim.h")); err != nil {
			err = fmt.Errorf("run from bindings/go (go generate ./bindings/go): %w", err)
		}
	}
	var out []byte
	if err == nil {
		out, err = unity.Render(root)
	}
	if err == nil {
		old, _ := os.ReadFile(unity.File)
		if !bytes.Equal(old, out) {
			err = os.WriteFile(unity.File, out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genunity:", err)
		os.Exit(1)
	}
}
