package limproto

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Outcome of receiving one change (changes.md §8, PROTOCOL.md §9.2).
type Outcome int

const (
	Applied Outcome = iota
	Duplicate
	Skipped // LIM_EGAP, LIM_ECLOCK, LIM_EEQUIVOCATION
)

// Store is an in-memory replica: per author, the contiguous prefix of its chain.
type Store struct {
	chains   map[[32]byte][]*Change
	MaxDrift time.Duration // default 60 s
	Now      func() time.Time
	lastHLC  uint64 // greatest HLC issued or accepted
}

func NewStore() *Store {
	return &Store{chains: map[[32]byte][]*Change{}, MaxDrift: 60 * time.Second, Now: time.Now}
}

// Receive checks a parsed change in the order of changes.md §8 and stores it.
// A refusal is returned as *ChangeError; Skipped comes with its ChangeError too.
func (st *Store) Receive(c *Change) (Outcome, error) { return st.receive(c, true) }

// ReceiveUnsigned is Receive without step 7 (the signature), for all but the
// last change of an amortised run (PROTOCOL.md §9.4).
func (st *Store) ReceiveUnsigned(c *Change) (Outcome, error) { return st.receive(c, false) }

func (st *Store) receive(c *Change, checkSig bool) (Outcome, error) {
	chain := st.chains[c.Author]
	max := uint64(len(chain))
	if c.Seq <= max {
		if chain[c.Seq-1].Hash == c.Hash {
			return Duplicate, nil
		}
		if !c.VerifySignature() {
			return 0, &ChangeError{ESignature, fmt.Sprintf("change %s: the signature does not verify", c)}
		}
		return Skipped, &ChangeError{EEquivocation, fmt.Sprintf("change %s: equivocation", c)}
	}
	if c.Seq > max+1 {
		return Skipped, &ChangeError{EGap, fmt.Sprintf("change %s: missing seq %d", c, max+1)}
	}
	var prevLink [32]byte
	var prevHLC uint64
	if max > 0 {
		prevLink = chain[max-1].Link // of the held bytes, which a duplicate never replaces
		prevHLC = chain[max-1].HLC
	}
	if c.Prev != prevLink {
		// Signed by its author, it follows another version of seq max: the
		// author forked its chain, which is its doing, not the sender's.
		if checkSig && c.VerifySignature() {
			return Skipped, &ChangeError{EEquivocation, fmt.Sprintf("change %s: its author forked its chain at seq %d", c, max)}
		}
		return 0, &ChangeError{EHash, fmt.Sprintf("change %s: prev is not the link of seq %d", c, max)}
	}
	if c.HLC <= prevHLC {
		return 0, &ChangeError{EMalformed, fmt.Sprintf("change %s: hlc does not increase", c)}
	}
	if int64(c.HLC>>16) > st.Now().UnixMilli()+st.MaxDrift.Milliseconds() {
		return Skipped, &ChangeError{EClock, fmt.Sprintf("change %s: beyond the clock drift bound", c)}
	}
	if checkSig && !c.VerifySignature() {
		return 0, &ChangeError{ESignature, fmt.Sprintf("change %s: the signature does not verify", c)}
	}
	st.chains[c.Author] = append(chain, c)
	if c.HLC > st.lastHLC {
		st.lastHLC = c.HLC
	}
	return Applied, nil
}

// Mark and Rollback implement the all-or-nothing batch.
type Mark struct {
	lens    map[[32]byte]int
	lastHLC uint64
}

func (st *Store) Mark() Mark {
	m := Mark{lens: map[[32]byte]int{}, lastHLC: st.lastHLC}
	for a, ch := range st.chains {
		m.lens[a] = len(ch)
	}
	return m
}

func (st *Store) Rollback(m Mark) {
	for a, ch := range st.chains {
		n := m.lens[a]
		if n == 0 {
			delete(st.chains, a)
		} else {
			st.chains[a] = ch[:n]
		}
	}
	st.lastHLC = m.lastHLC
}

// VVEntry is one author of a version vector.
type VVEntry struct {
	Author [32]byte
	Seq    uint64
}

func (st *Store) authors() [][32]byte {
	var as [][32]byte
	for a := range st.chains {
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool { return bytes.Compare(as[i][:], as[j][:]) < 0 })
	return as
}

// VV is the store's version vector in bytewise author order.
func (st *Store) VV() []VVEntry {
	var v []VVEntry
	for _, a := range st.authors() {
		v = append(v, VVEntry{a, uint64(len(st.chains[a]))})
	}
	return v
}

// VVText is the version vector text of changes.md §11.
func (st *Store) VVText() string {
	var sb strings.Builder
	for _, e := range st.VV() {
		fmt.Fprintf(&sb, "%x %d\n", e.Author[:], e.Seq)
	}
	return sb.String()
}

// Lacking lists, in the order of changes.md §11, the changes above view.
func (st *Store) Lacking(view map[[32]byte]uint64) []*Change {
	var out []*Change
	for _, a := range st.authors() {
		ch := st.chains[a]
		if s := view[a]; s < uint64(len(ch)) {
			out = append(out, ch[s:]...)
		}
	}
	return out
}

// All is every held change in §11 order.
func (st *Store) All() []*Change { return st.Lacking(nil) }

// Head is the author's newest change, or nil.
func (st *Store) Head(a [32]byte) *Change {
	ch := st.chains[a]
	if len(ch) == 0 {
		return nil
	}
	return ch[len(ch)-1]
}

// NextHLC is max(last + 1, now_ms << 16) (changes.md §5).
func (st *Store) NextHLC() uint64 {
	h := uint64(st.Now().UnixMilli()) << 16
	if st.lastHLC+1 > h {
		h = st.lastHLC + 1
	}
	return h
}
