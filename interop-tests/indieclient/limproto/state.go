package limproto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// Stamp orders ops (changes.md §9): hlc, author, seq, op index.
type Stamp [52]byte

func makeStamp(c *Change, op int) Stamp {
	var s Stamp
	binary.BigEndian.PutUint64(s[0:8], c.HLC)
	copy(s[8:40], c.Author[:])
	binary.BigEndian.PutUint64(s[40:48], c.Seq)
	binary.BigEndian.PutUint32(s[48:52], uint32(op))
	return s
}

func (a Stamp) newer(b Stamp) bool { return bytes.Compare(a[:], b[:]) > 0 }

type stampedOp struct {
	Op
	st  Stamp
	tag Tag // for A
}

// Kind of a visible field (digest column, changes.md §10).
const (
	KindRegister = 1
	KindCounter  = 2
	KindSet      = 3
)

// Field is one existing field of the state.
type Field struct {
	Coll, Doc, Path string
	Kind            int
	JSON            string
}

type docKey struct{ coll, doc string }

// State is the merged state of a set of changes.
type State struct {
	Fields []Field // sorted by (coll, doc, path)
}

// ComputeState applies the merge rules of changes.md §9 to a set of changes.
func ComputeState(changes []*Change) *State {
	type docOps struct {
		x      *Stamp
		dels   map[string]Stamp // greatest D per path
		byPath map[string][]stampedOp
	}
	docs := map[docKey]*docOps{}
	get := func(c, d string) *docOps {
		k := docKey{c, d}
		if docs[k] == nil {
			docs[k] = &docOps{dels: map[string]Stamp{}, byPath: map[string][]stampedOp{}}
		}
		return docs[k]
	}
	for _, c := range changes {
		for i, o := range c.Ops {
			st := makeStamp(c, i)
			d := get(o.Coll, o.Doc)
			switch o.Kind {
			case 'X':
				if d.x == nil || st.newer(*d.x) {
					s := st
					d.x = &s
				}
			case 'D':
				if old, ok := d.dels[o.Path]; !ok || st.newer(old) {
					d.dels[o.Path] = st
				}
			default:
				d.byPath[o.Path] = append(d.byPath[o.Path], stampedOp{o, st, Tag{c.Author, c.Seq, uint32(i)}})
			}
		}
	}
	s := &State{}
	for k, d := range docs {
		for p, ops := range d.byPath {
			var cover *Stamp
			consider := func(x Stamp) {
				if cover == nil || x.newer(*cover) {
					y := x
					cover = &y
				}
			}
			if d.x != nil {
				consider(*d.x)
			}
			if st, ok := d.dels[p]; ok {
				consider(st)
			}
			segs := strings.Split(p, ".")
			for n := 1; n < len(segs); n++ {
				if st, ok := d.dels[strings.Join(segs[:n], ".")]; ok {
					consider(st)
				}
			}
			newerThan := func(x Stamp, b *Stamp) bool { return b == nil || x.newer(*b) }
			// register
			var reg *stampedOp
			for i := range ops {
				o := &ops[i]
				if o.Kind == 'S' && (reg == nil || o.st.newer(reg.st)) {
					reg = o
				}
			}
			if reg != nil && !newerThan(reg.st, cover) {
				reg = nil
			}
			base := cover
			if reg != nil {
				base = &reg.st
			}
			// counter
			var ctrStamp *Stamp
			var ctr uint64
			if reg != nil && reg.Value.Kind == 'i' {
				ctr = uint64(reg.Value.Int)
			}
			// set
			removed := map[string]bool{}
			for _, o := range ops {
				if o.Kind == 'R' {
					for _, t := range o.Tags {
						removed[string(t.Bin())] = true
					}
				}
			}
			var setStamp *Stamp
			elems := map[string]Value{}
			for i := range ops {
				o := &ops[i]
				if !newerThan(o.st, base) {
					continue
				}
				switch o.Kind {
				case 'N':
					ctr += uint64(o.Delta)
					if ctrStamp == nil || o.st.newer(*ctrStamp) {
						ctrStamp = &o.st
					}
				case 'A', 'R':
					if setStamp == nil || o.st.newer(*setStamp) {
						setStamp = &o.st
					}
					if o.Kind == 'A' && !removed[string(o.tag.Bin())] {
						elems[o.Value.Token()] = o.Value
					}
				}
			}
			// visible kind: greatest stamp among present
			kind := 0
			var best *Stamp
			if reg != nil {
				kind, best = KindRegister, &reg.st
			}
			if ctrStamp != nil && (best == nil || ctrStamp.newer(*best)) {
				kind, best = KindCounter, ctrStamp
			}
			if setStamp != nil && (best == nil || setStamp.newer(*best)) {
				kind, best = KindSet, setStamp
			}
			if kind == 0 {
				continue
			}
			f := Field{Coll: k.coll, Doc: k.doc, Path: p, Kind: kind}
			switch kind {
			case KindRegister:
				f.JSON = ValueJSON(reg.Value)
			case KindCounter:
				f.JSON = strconv.FormatInt(int64(ctr), 10)
			case KindSet:
				var toks []string
				for t := range elems {
					toks = append(toks, t)
				}
				sort.Strings(toks) // bytewise by token
				var parts []string
				for _, t := range toks {
					parts = append(parts, ValueJSON(elems[t]))
				}
				f.JSON = "[" + strings.Join(parts, ",") + "]"
			}
			s.Fields = append(s.Fields, f)
		}
	}
	sort.Slice(s.Fields, func(i, j int) bool {
		a, b := s.Fields[i], s.Fields[j]
		if a.Coll != b.Coll {
			return a.Coll < b.Coll
		}
		if a.Doc != b.Doc {
			return a.Doc < b.Doc
		}
		return a.Path < b.Path
	})
	return s
}

// Docs lists the existing documents.
func (s *State) Docs() [][2]string {
	var out [][2]string
	seen := map[docKey]bool{}
	for _, f := range s.Fields {
		k := docKey{f.Coll, f.Doc}
		if !seen[k] {
			seen[k] = true
			out = append(out, [2]string{f.Coll, f.Doc})
		}
	}
	return out
}

// DocJSON renders a document ("objects win"); ok is false if it does not exist.
func (s *State) DocJSON(coll, doc string) (string, bool) {
	var fs []Field
	for _, f := range s.Fields {
		if f.Coll == coll && f.Doc == doc {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		return "", false
	}
	type node struct {
		leaf     *string
		children map[string]*node
	}
	root := &node{children: map[string]*node{}}
	for _, f := range fs {
		hidden := false
		for _, g := range fs {
			if strings.HasPrefix(g.Path, f.Path+".") {
				hidden = true
				break
			}
		}
		if hidden {
			continue
		}
		n := root
		segs := strings.Split(f.Path, ".")
		for i, sg := range segs {
			c := n.children[sg]
			if c == nil {
				c = &node{children: map[string]*node{}}
				n.children[sg] = c
			}
			if i == len(segs)-1 {
				j := f.JSON
				c.leaf = &j
			}
			n = c
		}
	}
	var render func(n *node) string
	render = func(n *node) string {
		if n.leaf != nil {
			return *n.leaf
		}
		var keys []string
		for k := range n.children {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, JSONString([]byte(k))+":"+render(n.children[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return render(root), true
}

// Digest is the state digest of changes.md §10.
func (s *State) Digest() [32]byte {
	h, _ := blake2b.New256(nil)
	h.Write(ctxState)
	col := func(t byte, b []byte) {
		var hdr [9]byte
		hdr[0] = t
		binary.BigEndian.PutUint64(hdr[1:], uint64(len(b)))
		h.Write(hdr[:])
		h.Write(b)
	}
	for _, f := range s.Fields {
		col(3, []byte(f.Coll))
		col(3, []byte(f.Doc))
		col(3, []byte(f.Path))
		col(1, []byte(strconv.Itoa(f.Kind)))
		col(3, []byte(f.JSON))
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ValueJSON is the JSON of a register value or set element (changes.md §9, §10).
func ValueJSON(v Value) string {
	switch v.Kind {
	case 'n':
		return "null"
	case 't':
		return "true"
	case 'f':
		return "false"
	case 'i':
		return strconv.FormatInt(v.Int, 10)
	case 'd':
		return FloatJSON(v.Float)
	case 's':
		return JSONString(v.Bytes)
	case 'b':
		return `{"$base64":"` + base64.StdEncoding.EncodeToString(v.Bytes) + `"}`
	}
	panic("bad value")
}

// JSONString quotes per changes.md §10.
func JSONString(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"':
			sb.WriteString(`\"`)
		case c == '\\':
			sb.WriteString(`\\`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&sb, `\u%04x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// FloatJSON prints a double per changes.md §10.
func FloatJSON(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX, shortest round trip
	neg := strings.HasPrefix(e, "-")
	if neg {
		e = e[1:]
	}
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp >= -5 && exp <= 16 {
		if exp >= 0 {
			ip := digits
			fp := ""
			if len(digits) > exp+1 {
				ip, fp = digits[:exp+1], digits[exp+1:]
			} else {
				ip = digits + strings.Repeat("0", exp+1-len(digits))
			}
			if fp == "" {
				fp = "0"
			}
			out = ip + "." + fp
		} else {
			out = "0." + strings.Repeat("0", -exp-1) + digits
		}
	} else {
		fp := digits[1:]
		if fp == "" {
			fp = "0"
		}
		out = digits[:1] + "." + fp + "e" + strconv.Itoa(exp)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// ------------------------------------------------------------ local writes

// ClearConflicts returns the D ops a writer emits before writing at path p
// (changes.md §9 "Local writes"), given the held changes and the ops already
// in the change being built. hlc/author/seq stamp the pending ops.
func ClearConflicts(held []*Change, pending *Change, coll, doc, p string) []Op {
	exists := func(extra []Op) map[string]bool {
		pc := *pending
		pc.Ops = append(append([]Op{}, pending.Ops...), extra...)
		st := ComputeState(append(append([]*Change{}, held...), &pc))
		m := map[string]bool{}
		for _, f := range st.Fields {
			if f.Coll == coll && f.Doc == doc {
				m[f.Path] = true
			}
		}
		return m
	}
	below := func(m map[string]bool, a string) bool {
		for q := range m {
			if strings.HasPrefix(q, a+".") {
				return true
			}
		}
		return false
	}
	var out []Op
	m := exists(nil)
	if below(m, p) {
		out = append(out, Op{Kind: 'D', Coll: coll, Doc: doc, Path: p})
		m = exists(out)
	}
	segs := strings.Split(p, ".")
	for n := 1; n < len(segs); n++ {
		a := strings.Join(segs[:n], ".")
		if m[a] && !below(m, a) {
			out = append(out, Op{Kind: 'D', Coll: coll, Doc: doc, Path: a})
			m = exists(out)
		}
	}
	return out
}
