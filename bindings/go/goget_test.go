package lim

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

const proofVersion = "v0.1.0"

// repoRoot is the module root: the repository root, two levels up.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	must(t, err)
	return root
}

type diskFile struct{ rel, abs string }

func (f diskFile) Path() string                 { return f.rel }
func (f diskFile) Lstat() (fs.FileInfo, error)  { return os.Lstat(f.abs) }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.abs) }

// moduleFiles lists what would be committed: tracked and untracked files
// that are not ignored (so build trees such as build/ stay out), minus
// tracked files deleted from the working tree.
func moduleFiles(t *testing.T, root string) []modzip.File {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("the go get proof needs a git checkout of the repository: %v", err)
	}
	seen := map[string]bool{}
	var files []modzip.File
	for _, rel := range strings.Split(string(out), "\x00") {
		if rel == "" || seen[rel] {
			continue
		}
		seen[rel] = true
		abs := filepath.Join(root, filepath.FromSlash(rel))
		if fi, err := os.Lstat(abs); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, diskFile{rel, abs})
	}
	return files
}

// buildProxy writes a file:// GOPROXY tree serving the repository as
// <module>@v0.1.0, exactly as a module proxy would (golang.org/x/mod/zip).
func buildProxy(t *testing.T, root, proxy string) (modPath string, zipNames []string) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	must(t, err)
	modPath = modfile.ModulePath(gomod)
	if modPath == "" {
		t.Fatal("no module path in go.mod")
	}
	mv := module.Version{Path: modPath, Version: proofVersion}
	files := moduleFiles(t, root)
	checked, err := modzip.CheckFiles(files)
	must(t, err)
	for _, o := range checked.Omitted {
		t.Logf("left out of the module zip: %s (%v)", o.Path, o.Err)
	}
	must(t, checked.Err())

	esc, err := module.EscapePath(modPath)
	must(t, err)
	dir := filepath.Join(proxy, filepath.FromSlash(esc), "@v")
	must(t, os.MkdirAll(dir, 0o755))
	zf, err := os.Create(filepath.Join(dir, proofVersion+".zip"))
	must(t, err)
	must(t, modzip.Create(zf, mv, files))
	must(t, zf.Close())
	must(t, os.WriteFile(filepath.Join(dir, proofVersion+".mod"), gomod, 0o644))
	info := fmt.Sprintf(`{"Version":%q,"Time":%q}`, proofVersion, time.Now().UTC().Format(time.RFC3339))
	must(t, os.WriteFile(filepath.Join(dir, proofVersion+".info"), []byte(info), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "list"), []byte(proofVersion+"\n"), 0o644))

	zr, err := zip.OpenReader(filepath.Join(dir, proofVersion+".zip"))
	must(t, err)
	defer zr.Close()
	for _, f := range zr.File {
		zipNames = append(zipNames, strings.TrimPrefix(f.Name, modPath+"@"+proofVersion+"/"))
	}
	return modPath, zipNames
}

const consumerMain = `package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	lim "%s/bindings/go"
)

// usage: consumer STORE NETWORK_KEY_HEX ADDR
func main() {
	key, err := hex.DecodeString(os.Args[2])
	check(err)
	db, err := lim.Open(os.Args[1], lim.WithNetworkKey(key))
	check(err)
	defer db.Close()
	check(db.Put("people", "from-go", map[string]any{"via": "go get", "n": 1}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := db.SyncOnce(ctx, os.Args[3])
	check(err)
	fmt.Printf("synced: received %%d sent %%d\n", st.Received, st.Sent)
	doc, err := db.Get("people", "from-lim")
	check(err)
	fmt.Printf("from-lim: %%v\n", doc["greeting"])
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}
`

func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// TestGoGetProof: the module, zipped as a proxy serves it, is fetched with
// `go get` into a fresh module outside the repository, built with cgo, and
// the program it builds syncs with a `lim serve` process.
func TestGoGetProof(t *testing.T) {
	limBin(t) // fail early without LIM_BIN
	if testing.Short() {
		t.Skip("-short: skipping the go get proof")
	}
	root := repoRoot(t)
	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy")
	modPath, names := buildProxy(t, root, proxy)

	// The zip holds the C sources cgo compiles, and no build trees.
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
		if strings.HasPrefix(n, "build/") || strings.HasPrefix(n, "build-") || strings.Contains(n, "CMakeCache.txt") {
			t.Errorf("build output in the module zip: %s", n)
		}
	}
	srcs, err := filepath.Glob(filepath.Join(root, "libcore", "src", "*.c"))
	must(t, err)
	for _, want := range append([]string{"go.mod", "libcore/include/lim.h", "bindings/go/liblim_unity.c",
		"bindings/go/limgo.c", "bindings/go/limgo.h"}, func() (l []string) {
		for _, s := range srcs {
			l = append(l, "libcore/src/"+filepath.Base(s))
		}
		return
	}()...) {
		if !has[want] {
			t.Errorf("%s is missing from the module zip", want)
		}
	}
	t.Logf("module zip: %d files", len(names))

	// A fresh module outside the repository.
	consumer := filepath.Join(tmp, "consumer")
	must(t, os.MkdirAll(consumer, 0o755))
	must(t, os.WriteFile(filepath.Join(consumer, "go.mod"), []byte("module example.com/limconsumer\n\ngo 1.23\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(consumer, "main.go"), []byte(fmt.Sprintf(consumerMain, modPath)), 0o644))

	gomodcache := os.Getenv("GOMODCACHE")
	if gomodcache == "" {
		out, err := exec.Command(goTool(t), "env", "GOMODCACHE").Output()
		must(t, err)
		gomodcache = strings.TrimSpace(string(out))
	}
	env := append(os.Environ(),
		// Our proxy first; the local module cache serves the module's own
		// requirements (golang.org/x/mod, for its tests) without network.
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",file://"+filepath.ToSlash(filepath.Join(gomodcache, "cache", "download")),
		"GOSUMDB=off", "GONOSUMDB="+modPath, "GOPRIVATE=", "GONOPROXY=",
		"GOFLAGS=-mod=mod -modcacherw",
		"GOMODCACHE="+filepath.Join(tmp, "modcache"), // fresh: no stale v0.1.0 extraction
		"GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=1",
	)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = consumer, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(goTool(t), "get", modPath+"/bindings/go@"+proofVersion)
	gm, err := os.ReadFile(filepath.Join(consumer, "go.mod"))
	must(t, err)
	if !strings.Contains(string(gm), modPath+" "+proofVersion) {
		t.Fatalf("go.mod after go get:\n%s", gm)
	}
	run(goTool(t), "build", "-o", "consumer", ".")

	// The program opens a store, writes, and syncs with `lim serve`.
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	served := filepath.Join(tmp, "served.db")
	limCmd(t, "--db", served, "init", "--network-key", fmt.Sprintf("%x", key))
	limCmd(t, "--db", served, "put", "people", "from-lim", `{"greeting":"hello from lim serve"}`)
	addr := limServe(t, served, key)
	out := run(filepath.Join(consumer, "consumer"), filepath.Join(tmp, "consumer.db"), fmt.Sprintf("%x", key), addr)
	want := "synced: received 1 sent 1\nfrom-lim: hello from lim serve\n"
	if out != want {
		t.Fatalf("consumer printed:\n%s\nwant:\n%s", out, want)
	}
	got := limCmd(t, "--db", served, "get", "people", "from-go")
	if !strings.Contains(got, `"via":"go get"`) {
		t.Fatalf("lim get from-go: %s", got)
	}
	t.Logf("consumer go.mod after go get:\n%s", gm)
}
