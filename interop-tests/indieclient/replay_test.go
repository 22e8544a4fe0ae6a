package indieclient_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	lp "liblim.test/indieclient/limproto"
)

// TestTranscripts replays protocol-spec/transcripts/*.txt against live nodes,
// following only PROTOCOL.md Appendix B.
func TestTranscripts(t *testing.T) {
	bin := limBin(t)
	files, _ := filepath.Glob(filepath.Join(specDir, "transcripts", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	var v hsVectors
	if err := json.Unmarshal(readSpec(t, "vectors/handshake.json"), &v); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f := f
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			replay(t, bin, f, &v)
		})
	}
}

var placeholderRE = regexp.MustCompile(`<(id|nonce|proof|hash|sig|n|token|text)>`)

func replay(t *testing.T, bin, file string, v *hsVectors) {
	lim := limRunner{t, bin}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	dir := t.TempDir()
	nk := to32(unhex(t, v.NetworkKey))
	other := to32(unhex(t, v.OtherNetworkKey))
	cpriv := ed25519.NewKeyFromSeed(unhex(t, v.Client.Seed))
	db := filepath.Join(dir, "node.db")
	syncDB := filepath.Join(dir, "sync.db")
	lim.must("--db", db, "init", "--network-key", v.NetworkKey)
	lim.must("--db", syncDB, "init", "--network-key", v.NetworkKey)
	syncID := strings.Fields(lim.must("--db", syncDB, "id"))[1]
	emptyDigest := lp.ComputeState(nil).Digest()
	if d := strings.TrimSpace(lim.must("--db", db, "digest")); d != hex.EncodeToString(emptyDigest[:]) {
		t.Errorf("digest of an empty store: lim %s, changes.md §10 gives %x", d, emptyDigest)
	}
	wantDigest := hex.EncodeToString(emptyDigest[:])
	var serveArgs []string
	vectorsMode := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "! serve "):
			serveArgs = strings.Fields(strings.ReplaceAll(strings.TrimPrefix(l, "! serve "), "<sync-id>", syncID))
		case l == "! vectors":
			vectorsMode = true
		case strings.HasPrefix(l, "! digest "):
			wantDigest = strings.TrimPrefix(l, "! digest ")
		}
	}
	n := startNode(t, bin, db, serveArgs...)
	defer n.stop(t)
	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var log []string
	s := lp.NewSession(conn, lp.Config{Role: lp.RoleClient, Priv: cpriv, NetworkKey: nk,
		Trace: func(d, l string) {
			if len(l) > 100 {
				l = l[:100] + "..."
			}
			log = append(log, d+" "+l)
		}})
	defer func() {
		if t.Failed() {
			t.Logf("session:\n%s\nnode:\n%s", strings.Join(log, "\n"), n.stderr)
		}
	}()
	var clientHello, serverHello, peerNonce, peerToken string
	th := func() [32]byte { return lp.TranscriptHash(clientHello, serverHello) }
	writeErr := make(chan error, 1)
	for _, l := range lines {
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!"):
			continue
		case strings.HasPrefix(l, "C: "):
			line := strings.TrimPrefix(l, "C: ")
			if vectorsMode && line == v.Client.Auth {
				line = "AUTH <sig> <proof>" // recomputed for this connection's hash
			}
			if m := regexp.MustCompile(`^<filler (\d+)>$`).FindStringSubmatch(line); m != nil {
				k, _ := strconv.Atoi(m[1])
				buf := []byte(strings.Repeat("x", k) + "\n")
				go func() { _, err := conn.Write(buf); writeErr <- err }()
				continue
			}
			line = strings.ReplaceAll(line, "<peer-nonce>", peerNonce)
			line = strings.ReplaceAll(line, "<peer-token>", peerToken)
			if strings.Contains(line, "<sig>") || strings.Contains(line, "<bad-sig>") ||
				strings.Contains(line, "<proof>") || strings.Contains(line, "<other-proof>") {
				h := th()
				sig := lp.HandshakeSign(cpriv, lp.RoleClient, h)
				bad := lp.HandshakeSign(cpriv, lp.RoleServer, h)
				pr := lp.NetworkProof(nk, lp.RoleClient, h)
				op := lp.NetworkProof(other, lp.RoleClient, h)
				line = strings.ReplaceAll(line, "<bad-sig>", hex.EncodeToString(bad[:]))
				line = strings.ReplaceAll(line, "<sig>", hex.EncodeToString(sig[:]))
				line = strings.ReplaceAll(line, "<other-proof>", hex.EncodeToString(op[:]))
				line = strings.ReplaceAll(line, "<proof>", hex.EncodeToString(pr[:]))
			}
			if strings.HasPrefix(line, "HELLO ") {
				clientHello = line
			}
			if err := s.Send(line); err != nil {
				t.Fatalf("send %q: %v", line, err)
			}
		case strings.HasPrefix(l, "S: "):
			pat := strings.TrimPrefix(l, "S: ")
			if pat == "<close>" {
				got, err := s.ReadLine(time.Now().Add(5 * time.Second))
				if err == nil {
					t.Fatalf("expected close, got %q", got)
				}
				var ne net.Error
				if !errors.Is(err, io.EOF) && !(errors.As(err, &ne) && !ne.Timeout()) && !strings.Contains(err.Error(), "reset") {
					t.Fatalf("expected close, got %v", err)
				}
				continue
			}
			if vectorsMode && (pat == v.Server.Hello || pat == v.Server.Auth) {
				// per-connection values, matched by shape (Appendix B)
				if pat == v.Server.Hello {
					pat = "HELLO 1 <id> <nonce>"
				} else {
					pat = "AUTH <sig> <proof>"
				}
			}
			got, err := s.ReadLine(time.Now().Add(5 * time.Second))
			if err != nil {
				t.Fatalf("waiting for %q: %v", pat, err)
			}
			re, tokenGroup := patternRE(pat)
			m := re.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("line %q does not match %q", got, pat)
			}
			if tokenGroup > 0 {
				peerToken = m[tokenGroup]
			}
			if msg, pe := lp.ParseMessage(got); pe != nil {
				t.Errorf("server line %q does not parse: %v", got, pe)
			} else {
				switch msg.Name {
				case "HELLO":
					serverHello = got
					peerNonce = hex.EncodeToString(msg.Nonce[:])
					s.PeerID = msg.ID
				case "AUTH":
					if !lp.HandshakeVerify(s.PeerID, lp.RoleServer, th(), msg.Sig) ||
						!lp.ProofEqual(lp.NetworkProof(nk, lp.RoleServer, th()), msg.Proof) {
						t.Errorf("server AUTH does not verify")
					}
				}
			}
		default:
			t.Fatalf("transcript line %q: not in the syntax of Appendix B", l)
		}
	}
	s.Close()
	select {
	case <-writeErr:
	default:
	}
	time.Sleep(50 * time.Millisecond)
	if d := strings.TrimSpace(lim.must("--db", db, "digest")); d != wantDigest {
		t.Errorf("node digest after the session: %s, want %s", d, wantDigest)
	}
	if out, code := lim.run("--db", syncDB, "sync", n.addr, "--timeout", "10"); code != 0 {
		t.Errorf("lim sync after the session: exit %d %s", code, out)
	}
}

// patternRE turns an S: line into a regexp; the index of the <token> group, if any.
func patternRE(pat string) (*regexp.Regexp, int) {
	var sb strings.Builder
	sb.WriteString("^")
	last, group, tokenGroup := 0, 0, 0
	for _, loc := range placeholderRE.FindAllStringSubmatchIndex(pat, -1) {
		sb.WriteString(regexp.QuoteMeta(pat[last:loc[0]]))
		group++
		switch pat[loc[2]:loc[3]] {
		case "id", "nonce", "proof", "hash":
			sb.WriteString("([0-9a-f]{64})")
		case "sig":
			sb.WriteString("([0-9a-f]{128})")
		case "n":
			sb.WriteString("(0|[1-9][0-9]*)")
		case "token":
			sb.WriteString("([^ ]{1,64})")
			tokenGroup = group
		case "text":
			sb.WriteString("(.*)")
		}
		last = loc[1]
	}
	sb.WriteString(regexp.QuoteMeta(pat[last:]))
	sb.WriteString("$")
	return regexp.MustCompile(sb.String()), tokenGroup
}
