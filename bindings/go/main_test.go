package lim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the tests, then fails the run if any store or node handle
// was not closed (a finalizer would have to clean it up).
func TestMain(m *testing.M) {
	code := m.Run()
	if n := liveHandles.Load(); n != 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d liblim handle(s) (stores or nodes) were not closed\n", n)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// openDB opens a fresh store in a temporary directory, closed at cleanup.
func openDB(t testing.TB, opts ...Option) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "store.db"), opts...)
}

func openAt(t testing.TB, path string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// pair opens two stores of one network.
func pair(t testing.TB) (*DB, *DB) {
	a := openDB(t)
	b := openDB(t, WithNetworkKey(a.NetworkKey()))
	return a, b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func digest(t testing.TB, db *DB) string {
	t.Helper()
	d, err := db.Digest()
	must(t, err)
	return d
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// limBin is the lim command (env LIM_BIN). Its absence is a failure, not a
// skip: the interop tests are part of the suite.
func limBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("LIM_BIN")
	if bin == "" {
		t.Fatal("LIM_BIN is not set: build the lim command (cmake --build build) and set LIM_BIN=build/bin/lim")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("LIM_BIN: %v", err)
	}
	return bin
}

// limCmd runs the lim command and returns its stdout.
func limCmd(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(limBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lim %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// limServe starts `lim serve` on a store of the given network (created
// with `lim init` if needed) and returns its address; it is stopped with
// SIGTERM at cleanup.
func limServe(t testing.TB, dbPath string, networkKey []byte, extra ...string) string {
	t.Helper()
	if _, err := os.Stat(dbPath); err != nil {
		limCmd(t, "--db", dbPath, "init", "--network-key", hex.EncodeToString(networkKey))
	}
	args := append([]string{"--db", dbPath, "serve", "--listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(limBin(t), args...)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("lim serve log:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		addr, ok := strings.CutPrefix(l, "listening on ")
		if !ok {
			t.Fatalf("lim serve printed %q", l)
		}
		return addr
	case <-time.After(10 * time.Second):
		t.Fatalf("lim serve did not start:\n%s", stderr.String())
		return ""
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestFinalizerFreesHandle: an unreachable DB is closed by its finalizer.
func TestFinalizerFreesHandle(t *testing.T) {
	before := liveHandles.Load()
	func() {
		db, err := Open(filepath.Join(t.TempDir(), "f.db"))
		must(t, err)
		must(t, db.Put("c", "d", map[string]any{"x": 1}))
	}()
	eventually(t, 10*time.Second, "the finalizer", func() bool {
		runtime.GC()
		return liveHandles.Load() == before
	})
}
