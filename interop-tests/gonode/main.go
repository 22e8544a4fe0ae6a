// Command gonode runs one liblim node through the Go binding and takes
// commands as JSON lines on stdin, answering each with one JSON line on
// stdout. It is the Go member of the mixed-language network that
// interop-tests/mixed drives (interop-tests/pynode.py is the Python one;
// both speak the protocol described in interop-tests/README.md).
//
//	go build -o build/interop/gonode ./interop-tests/gonode
//
// Values on the wire: JSON null, booleans, strings and numbers (a number
// with '.', 'e' or 'E' is a float, otherwise an int64), {"$base64": "..."}
// for bytes, objects for nested fields; in answers a set field is
// {"$set": [elements...]} (in the order the binding returns them). Node log
// lines go to stderr.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"time"

	lim "github.com/liblim/liblim/bindings/go"
)

type request struct {
	Op   string `json:"op"`
	File string `json:"file"` // open: the store file
	Key  string `json:"network_key"`

	Listen         string   `json:"listen"`
	Peers          []string `json:"peers"`
	ReconnectMaxMS int      `json:"reconnect_max_ms"`

	Coll   string          `json:"coll"`
	Doc    string          `json:"doc"`
	Field  string          `json:"field"`
	Fields json.RawMessage `json:"fields"`
	Value  json.RawMessage `json:"value"`
	N      int64           `json:"n"`
	Ops    []request       `json:"ops"` // txn
}

type state struct {
	db   *lim.DB
	node *lim.Node
}

func main() {
	st := &state{}
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			resp, quit := st.handle(line)
			out.Write(resp)
			out.WriteByte('\n')
			out.Flush()
			if quit {
				return
			}
		}
		if err != nil { // EOF: the driver went away; close cleanly
			st.shutdown()
			return
		}
	}
}

func (st *state) shutdown() {
	if st.node != nil {
		st.node.Close()
		st.node = nil
	}
	if st.db != nil {
		st.db.Close()
		st.db = nil
	}
}

// handle runs one command and returns its answer line.
func (st *state) handle(line []byte) (resp []byte, quit bool) {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return answerErr(fmt.Errorf("bad request: %v", err)), false
	}
	fields, err := st.do(&req)
	if err != nil {
		return answerErr(err), false
	}
	var b bytes.Buffer
	b.WriteString(`{"ok":true`)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(',')
		writeString(&b, k)
		b.WriteByte(':')
		b.Write(fields[k])
	}
	b.WriteByte('}')
	return b.Bytes(), req.Op == "quit"
}

func answerErr(err error) []byte {
	code := ""
	var le *lim.Error
	if errors.As(err, &le) {
		code = le.Code.String()
	}
	b, _ := json.Marshal(map[string]any{"ok": false, "error": err.Error(), "code": code})
	return b
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (st *state) needDB() error {
	if st.db == nil {
		return errors.New("no store is open (send open first)")
	}
	return nil
}

func (st *state) do(req *request) (map[string]json.RawMessage, error) {
	switch req.Op {
	case "open":
		if st.db != nil {
			return nil, errors.New("a store is already open")
		}
		var opts []lim.Option
		if req.Key != "" {
			key, err := hex.DecodeString(req.Key)
			if err != nil {
				return nil, fmt.Errorf("network_key: %v", err)
			}
			opts = append(opts, lim.WithNetworkKey(key))
		}
		db, err := lim.Open(req.File, opts...)
		if err != nil {
			return nil, err
		}
		st.db = db
		return map[string]json.RawMessage{"replica_id": raw(db.ReplicaID()), "lang": raw("go")}, nil
	case "start":
		if err := st.needDB(); err != nil {
			return nil, err
		}
		if st.node != nil {
			return nil, errors.New("the node is already running")
		}
		cfg := lim.NodeConfig{
			Listen: req.Listen,
			Peers:  req.Peers,
			Log:    func(l string) { fmt.Fprintf(os.Stderr, "gonode: %s\n", l) },
		}
		if req.ReconnectMaxMS > 0 {
			cfg.ReconnectMax = time.Duration(req.ReconnectMaxMS) * time.Millisecond
		}
		n, err := lim.StartNode(st.db, cfg)
		if err != nil {
			return nil, err
		}
		st.node = n
		return map[string]json.RawMessage{"addr": raw(n.Addr())}, nil
	case "stop":
		if st.node != nil {
			st.node.Close()
			st.node = nil
		}
		return nil, nil
	case "close", "quit":
		st.shutdown()
		return nil, nil
	case "status":
		if st.node == nil {
			return nil, errors.New("the node is not running")
		}
		s, err := st.node.Status()
		if err != nil {
			return nil, err
		}
		return map[string]json.RawMessage{"status": raw(s)}, nil
	case "digest":
		if err := st.needDB(); err != nil {
			return nil, err
		}
		d, err := st.db.Digest()
		if err != nil {
			return nil, err
		}
		return map[string]json.RawMessage{"digest": raw(d)}, nil
	case "vv":
		if err := st.needDB(); err != nil {
			return nil, err
		}
		vv, err := st.db.VersionVector()
		if err != nil {
			return nil, err
		}
		return map[string]json.RawMessage{"vv": raw(vv)}, nil
	case "get":
		if err := st.needDB(); err != nil {
			return nil, err
		}
		doc, err := st.db.Get(req.Coll, req.Doc)
		if errors.Is(err, lim.ErrNotFound) {
			return map[string]json.RawMessage{"doc": json.RawMessage("null")}, nil
		}
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := writeValue(&b, doc); err != nil {
			return nil, err
		}
		return map[string]json.RawMessage{"doc": b.Bytes()}, nil
	case "getfield":
		if err := st.needDB(); err != nil {
			return nil, err
		}
		v, err := st.db.GetField(req.Coll, req.Doc, req.Field)
		if errors.Is(err, lim.ErrNotFound) {
			return map[string]json.RawMessage{"found": raw(false)}, nil
		}
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := writeValue(&b, v); err != nil {
			return nil, err
		}
		return map[string]json.RawMessage{"found": raw(true), "value": b.Bytes()}, nil
	case "txn":
		if err := st.needDB(); err != nil {
			return nil, err
		}
		err := st.db.Update(func(tx *lim.Tx) error {
			for i := range req.Ops {
				if err := write(tx, &req.Ops[i]); err != nil {
					return err
				}
			}
			return nil
		})
		return nil, err
	default:
		if err := st.needDB(); err != nil {
			return nil, err
		}
		return nil, write(st.db, req)
	}
}

// writer is what *lim.DB and *lim.Tx have in common.
type writer interface {
	Put(coll, doc string, fields map[string]any) error
	Set(coll, doc, path string, value any) error
	Delete(coll, doc string) error
	DeleteField(coll, doc, path string) error
	Incr(coll, doc, path string, delta int64) error
	SetAdd(coll, doc, path string, elem any) error
	SetRemove(coll, doc, path string, elem any) error
}

func write(w writer, req *request) error {
	switch req.Op {
	case "put":
		v, err := readValue(req.Fields)
		if err != nil {
			return err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return errors.New("put: fields must be an object")
		}
		return w.Put(req.Coll, req.Doc, m)
	case "set", "sadd", "srem":
		v, err := readValue(req.Value)
		if err != nil {
			return err
		}
		switch req.Op {
		case "set":
			return w.Set(req.Coll, req.Doc, req.Field, v)
		case "sadd":
			return w.SetAdd(req.Coll, req.Doc, req.Field, v)
		default:
			return w.SetRemove(req.Coll, req.Doc, req.Field, v)
		}
	case "incr":
		return w.Incr(req.Coll, req.Doc, req.Field, req.N)
	case "delete":
		if req.Field == "" {
			return w.Delete(req.Coll, req.Doc)
		}
		return w.DeleteField(req.Coll, req.Doc, req.Field)
	}
	return fmt.Errorf("unknown op %q", req.Op)
}

// readValue turns the wire form of a value into what the binding takes.
func readValue(data json.RawMessage) (any, error) {
	if len(data) == 0 {
		return nil, errors.New("missing value")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convert(v)
}

func convert(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if bytes.ContainsAny([]byte(s), ".eE") {
			return strconv.ParseFloat(s, 64)
		}
		return strconv.ParseInt(s, 10, 64)
	case map[string]any:
		if len(x) == 1 {
			if s, ok := x["$base64"].(string); ok {
				return base64.StdEncoding.DecodeString(s)
			}
		}
		for k, e := range x {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case []any:
		return nil, errors.New("arrays are not values (use sadd for sets)")
	default:
		return x, nil
	}
}

// writeValue prints a value the binding returned, keeping its type: floats
// always carry '.' or an exponent, bytes are {"$base64"}, sets {"$set"}.
func writeValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("the binding returned a non-finite float %v", x)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		b.WriteString(s)
		if !bytes.ContainsAny([]byte(s), ".eE") {
			b.WriteString(".0")
		}
	case string:
		writeString(b, x)
	case []byte:
		b.WriteString(`{"$base64":`)
		writeString(b, base64.StdEncoding.EncodeToString(x))
		b.WriteByte('}')
	case []any:
		b.WriteString(`{"$set":[`)
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeValue(b, e); err != nil {
				return err
			}
		}
		b.WriteString("]}")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeValue(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("the binding returned a %T, which is not a documented value type", v)
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s)
	b.Write(enc)
}
