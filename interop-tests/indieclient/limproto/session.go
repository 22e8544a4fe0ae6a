package limproto

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Config of one side of a session.
type Config struct {
	Role       byte // RoleClient or RoleServer
	Priv       ed25519.PrivateKey
	NetworkKey [32]byte
	Nonce      *[32]byte                     // fixed nonce (tests); nil: fresh from crypto/rand
	Allow      [][32]byte                    // nil: every member; non-nil: only these ids
	Trace      func(dir string, line string) // optional: dir is ">" (sent) or "<" (received)
}

// Session is one connection: framing, handshake and message I/O.
type Session struct {
	cfg       Config
	conn      net.Conn
	r         *bufio.Reader
	Nonce     [32]byte
	MyHello   string
	PeerHello string
	PeerID    [32]byte
	TH        [32]byte
	done      bool
}

// ErrBye is returned when the peer sent BYE.
var ErrBye = errors.New("peer sent BYE")

func NewSession(conn net.Conn, cfg Config) *Session {
	s := &Session{cfg: cfg, conn: conn, r: bufio.NewReaderSize(conn, 64*1024)}
	if cfg.Nonce != nil {
		s.Nonce = *cfg.Nonce
	} else if _, err := rand.Read(s.Nonce[:]); err != nil {
		panic(err)
	}
	return s
}

func (s *Session) peerRole() byte {
	if s.cfg.Role == RoleClient {
		return RoleServer
	}
	return RoleClient
}

// Send writes one line and its LF.
func (s *Session) Send(line string) error {
	if s.done {
		return errors.New("session closed")
	}
	if s.cfg.Trace != nil {
		s.cfg.Trace(">", line)
	}
	_, err := io.WriteString(s.conn, line+"\n")
	return err
}

// Fail sends ERR and closes.
func (s *Session) Fail(e *ProtoError) error {
	if !s.done {
		s.Send(e.Line())
		s.Close()
	}
	return e
}

// Bye sends BYE and closes.
func (s *Session) Bye() error {
	err := s.Send("BYE")
	s.Close()
	return err
}

func (s *Session) Close() {
	s.done = true
	s.conn.Close()
}

// ReadLine reads one line (without LF), enforcing the line limit.
func (s *Session) ReadLine(deadline time.Time) (string, error) {
	s.conn.SetReadDeadline(deadline)
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxLineBytes+1 || (err == bufio.ErrBufferFull && len(buf) > MaxLineBytes) {
			return "", s.Fail(perr(413, "a line longer than 4194368 bytes"))
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		line := string(buf[:len(buf)-1])
		if s.cfg.Trace != nil {
			s.cfg.Trace("<", line)
		}
		return line, nil
	}
}

// ReadMsg reads and parses one message. A malformed line earns an ERR; an ERR
// from the peer is returned as a *ProtoError with Received set.
func (s *Session) ReadMsg(deadline time.Time) (*Msg, error) {
	line, err := s.ReadLine(deadline)
	if err != nil {
		return nil, err
	}
	return s.parseLine(line)
}

// readHandshake reads one line before authentication (PROTOCOL.md §4): the
// keyword alone decides, and only the expected handshake message (want) or
// an ERR is parsed further; any other line earns the state's 409 unread.
func (s *Session) readHandshake(want, outOfOrder string, deadline time.Time) (*Msg, error) {
	line, err := s.ReadLine(deadline)
	if err != nil {
		return nil, err
	}
	if len(line) > MaxLineBytes {
		return nil, s.Fail(perr(413, "line too long"))
	}
	if name, _, _ := strings.Cut(line, " "); name != want && name != "ERR" {
		return nil, s.Fail(perr(409, outOfOrder))
	}
	return s.parseLine(line)
}

func (s *Session) parseLine(line string) (*Msg, error) {
	m, pe := ParseMessage(line)
	if pe != nil {
		return nil, s.Fail(pe)
	}
	if m.Name == "ERR" {
		s.Close()
		return nil, &ProtoError{Code: int(m.Code), Text: m.Text, Received: true}
	}
	return m, nil
}

// Handshake runs HELLO/AUTH for the configured role and sends vv (PROTOCOL.md §6).
func (s *Session) Handshake(vv []VVEntry, deadline time.Time) error {
	if err := s.Authenticate(deadline); err != nil {
		return err
	}
	return s.Send(VVLine(vv))
}

// Authenticate runs HELLO/AUTH; the caller sends its VV next.
func (s *Session) Authenticate(deadline time.Time) error {
	id := PublicID(s.cfg.Priv)
	s.MyHello = HelloLine(ProtocolVersion, id, s.Nonce)
	if err := s.Send(s.MyHello); err != nil {
		return err
	}
	m, err := s.readHandshake("HELLO", "the first line must be HELLO", deadline)
	if err != nil {
		return err
	}
	if m.Version != ProtocolVersion {
		return s.Fail(perr(426, "this node speaks protocol version 1 only"))
	}
	if m.Nonce == s.Nonce {
		return s.Fail(perr(401, "the peer echoed our nonce"))
	}
	if s.cfg.Allow != nil {
		ok := false
		for _, a := range s.cfg.Allow {
			ok = ok || a == m.ID
		}
		if !ok {
			return s.Fail(perr(403, "this node does not accept that peer id"))
		}
	}
	s.PeerHello, s.PeerID = m.Raw, m.ID
	if s.cfg.Role == RoleClient {
		s.TH = TranscriptHash(s.MyHello, s.PeerHello)
	} else {
		s.TH = TranscriptHash(s.PeerHello, s.MyHello)
	}
	sig := HandshakeSign(s.cfg.Priv, s.cfg.Role, s.TH)
	if err := s.Send(AuthLine(sig, NetworkProof(s.cfg.NetworkKey, s.cfg.Role, s.TH))); err != nil {
		return err
	}
	m, err = s.readHandshake("AUTH", "expected AUTH", deadline)
	if err != nil {
		return err
	}
	if !HandshakeVerify(s.PeerID, s.peerRole(), s.TH, m.Sig) {
		return s.Fail(perr(401, "the handshake signature does not verify for the claimed node id"))
	}
	if !ProofEqual(NetworkProof(s.cfg.NetworkKey, s.peerRole(), s.TH), m.Proof) {
		return s.Fail(perr(421, "the peer is not a member of this network"))
	}
	return nil
}

// Peer runs the LIVE state of a session over a Store (PROTOCOL.md §7–§9).
type Peer struct {
	S         *Session
	Store     *Store
	BatchSize int // default 500
	Window    int // default 2000

	view       map[[32]byte]uint64
	GotVV      bool
	unacked    uint64
	inBatch    []string
	inBytes    int
	SentSynced bool
	GotSynced  bool
	Acks       []uint64  // ACK counts received
	Received   []*Change // changes applied from the peer
	AllIn      []*Change // every change received, duplicates and skipped included
	Strict     bool      // verify every signature instead of amortising runs (§9.4)
	Skipped    []error
	Batches    int // batches received
	PeerState  string
	Pongs      []string
}

func NewPeer(s *Session, st *Store) *Peer {
	return &Peer{S: s, Store: st, BatchSize: 500, Window: 2000, view: map[[32]byte]uint64{}}
}

// Idle is the one-shot sync end condition of PROTOCOL.md §7.7.
func (p *Peer) Idle() bool {
	return p.GotSynced && p.SentSynced && p.unacked == 0 && len(p.inBatch) == 0 &&
		len(p.Store.Lacking(p.view)) == 0
}

// Unacked is the number of changes sent but not acknowledged.
func (p *Peer) Unacked() uint64 { return p.unacked }

// Step reads and handles one message.
func (p *Peer) Step(deadline time.Time) error {
	m, err := p.S.ReadMsg(deadline)
	if err != nil {
		return err
	}
	return p.Handle(m)
}

// Handle processes one received LIVE message.
func (p *Peer) Handle(m *Msg) error {
	switch m.Name {
	case "HELLO", "AUTH":
		return p.S.Fail(perr(409, "the handshake is already complete"))
	case "VV":
		p.view = map[[32]byte]uint64{}
		for _, e := range m.VV {
			if e.Seq > p.view[e.Author] {
				p.view[e.Author] = e.Seq
			}
		}
		p.GotVV = true
		return p.Pump()
	case "CH":
		if len(p.inBatch) == MaxBatchChanges {
			return p.S.Fail(perr(413, "more than 1000 changes before END"))
		}
		if p.inBytes+len(m.Change) > MaxBatchBytes {
			return p.S.Fail(perr(413, "a batch over 16777216 bytes"))
		}
		p.inBatch = append(p.inBatch, m.Change)
		p.inBytes += len(m.Change)
		return nil
	case "END":
		if m.N != uint64(len(p.inBatch)) {
			return p.S.Fail(perr(400, fmt.Sprintf("END %d after %d changes", m.N, len(p.inBatch))))
		}
		return p.endBatch()
	case "ACK":
		if m.N > p.unacked {
			return p.S.Fail(perr(409, "ACK of more changes than were sent"))
		}
		p.unacked -= m.N
		p.Acks = append(p.Acks, m.N)
		return p.Pump()
	case "SYNCED":
		p.GotSynced = true
	case "PING":
		return p.S.Send("PONG " + m.Token)
	case "PONG":
		p.Pongs = append(p.Pongs, m.Token)
	case "STATUS":
		return p.S.Send("STATE {}")
	case "STATE":
		p.PeerState = m.Text
	case "BYE":
		p.S.Close()
		return ErrBye
	}
	return nil
}

func (p *Peer) endBatch() error {
	batch := p.inBatch
	p.inBatch, p.inBytes = nil, 0
	p.Batches++
	mark := p.Store.Mark()
	var applied []*Change
	var parsed []*Change
	fail := func(err error) error {
		p.Store.Rollback(mark)
		return p.S.Fail(perr(422, sanitize(err.Error())))
	}
	for _, line := range batch {
		c, err := ParseChange(line)
		if err != nil {
			return fail(err)
		}
		parsed = append(parsed, c)
	}
	p.AllIn = append(p.AllIn, parsed...)
	// one change, all checks
	one := func(c *Change, checkSig bool) (Outcome, error) {
		var out Outcome
		var err error
		if checkSig {
			out, err = p.Store.Receive(c)
		} else {
			out, err = p.Store.ReceiveUnsigned(c)
		}
		if err != nil && out == Skipped {
			p.Skipped = append(p.Skipped, err)
			return out, nil
		}
		return out, err
	}
	for i := 0; i < len(parsed); {
		j := i + 1 // run: parsed[i:j]
		for j < len(parsed) && parsed[j].Author == parsed[i].Author && parsed[j].Seq == parsed[j-1].Seq+1 {
			j++
		}
		run := parsed[i:j]
		if p.Strict || len(run) == 1 {
			for _, c := range run {
				out, err := one(c, true)
				if err != nil {
					return fail(err)
				}
				if out == Applied {
					applied = append(applied, c)
				}
			}
			i = j
			continue
		}
		// amortised: every check but the signature, then the last signature
		rm := p.Store.Mark()
		ok := true
		var got []*Change
		for k, c := range run {
			out, err := p.Store.ReceiveUnsigned(c)
			if k == len(run)-1 && err == nil && out == Applied && !c.VerifySignature() {
				err = &ChangeError{ESignature, "run"}
			}
			if err != nil {
				ok = false
				break
			}
			if out == Applied {
				got = append(got, c)
			}
		}
		if !ok {
			p.Store.Rollback(rm)
			got = nil
			for _, c := range run {
				out, err := one(c, true)
				if err != nil {
					return fail(err)
				}
				if out == Applied {
					got = append(got, c)
				}
			}
		}
		applied = append(applied, got...)
		i = j
	}
	for _, c := range parsed {
		if c.Seq > p.view[c.Author] {
			p.view[c.Author] = c.Seq
		}
	}
	p.Received = append(p.Received, applied...)
	if err := p.S.Send(fmt.Sprintf("ACK %d", len(batch))); err != nil {
		return err
	}
	return p.Pump()
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 255 {
		b = b[:255]
	}
	return strings.TrimRight(string(b), " ")
}

// Pump sends what the peer lacks, in batches within the window, then SYNCED once.
func (p *Peer) Pump() error {
	if !p.GotVV {
		return nil
	}
	for {
		lacking := p.Store.Lacking(p.view)
		if len(lacking) == 0 {
			break
		}
		room := p.Window - int(p.unacked)
		if room <= 0 {
			return nil
		}
		n := min(len(lacking), p.BatchSize, room)
		for _, c := range lacking[:n] {
			if err := p.S.Send("CH " + c.Line); err != nil {
				return err
			}
			p.view[c.Author] = c.Seq
		}
		if err := p.S.Send(fmt.Sprintf("END %d", n)); err != nil {
			return err
		}
		p.unacked += uint64(n)
	}
	if !p.SentSynced {
		p.SentSynced = true
		return p.S.Send("SYNCED")
	}
	return nil
}

// SyncOnce runs until the one-shot end condition, then sends BYE.
func (p *Peer) SyncOnce(deadline time.Time) error {
	if err := p.Pump(); err != nil {
		return err
	}
	for !p.Idle() {
		if err := p.Step(deadline); err != nil {
			return err
		}
	}
	return p.S.Bye()
}
