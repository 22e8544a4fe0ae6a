//go:build limbench

// Go binding overhead (issue 7, item 7): one round, built and run by
// bench/run:
//
//	go build -tags limbench -o build-bench/bin/bench_go ./bench/go
//	bench_go -db DIR/core.db [-quick]
//
// Times the single-field read (DB.GetField) and committed write (DB.Set)
// that `bench_core --binding-round` times through C, with the same counts,
// warm-up and key choice, on the store bench_core left behind. bench/run
// alternates C, Python and Go rounds and subtracts; this prints one line:
//
//	P <tab> go <tab> <read p50 us> <tab> <write p50 us>
//
// The limbench build tag keeps it out of `go vet ./...` and `go test ./...`.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"time"

	lim "github.com/liblim/liblim/bindings/go"
)

// p50 times fn(i) for i in [0, warm+n) and returns, in µs, the lowest
// median of the last n calls cut in `slices` slices, as bench_core
// --binding-round does (a slice that ran undisturbed exists in nearly every
// round on a shared machine); fn works on pre-drawn arguments so only the
// call is timed.
func p50(fn func(i int) error, n, warm int) float64 {
	const slices = 5
	samples := make([]float64, 0, n)
	for i := 0; i < warm+n; i++ {
		t0 := time.Now()
		if err := fn(i); err != nil {
			fmt.Fprintln(os.Stderr, "bench_go:", err)
			os.Exit(1)
		}
		d := time.Since(t0)
		if i >= warm {
			samples = append(samples, float64(d.Nanoseconds())/1000)
		}
	}
	per := len(samples) / slices
	best := 0.0
	for k := 0; k < slices; k++ {
		s := append([]float64(nil), samples[k*per:(k+1)*per]...)
		sort.Float64s(s)
		if m := s[(len(s)+1)/2-1]; k == 0 || m < best {
			best = m
		}
	}
	return best
}

func main() {
	dbPath := flag.String("db", "", "store left by bench_core")
	quick := flag.Bool("quick", false, "smoke-sized round")
	flag.Parse()
	db, err := lim.Open(*dbPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench_go:", err)
		os.Exit(1)
	}
	defer db.Close()
	rng := rand.New(rand.NewSource(int64(os.Getpid())))
	fields := []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"}
	nr, nw := 20000, 3000
	if *quick {
		nr, nw = 5000, 1000
	}
	const warmR, warmW = 1000, 300
	rdoc := make([]string, warmR+nr)
	rfield := make([]string, warmR+nr)
	for i := range rdoc {
		rdoc[i] = fmt.Sprintf("d%07d", rng.Intn(10000))
		rfield[i] = fields[rng.Intn(10)]
	}
	wdoc := make([]string, warmW+nw)
	wfield := make([]string, warmW+nw)
	for i := range wdoc {
		wdoc[i] = fmt.Sprintf("d%07d", rng.Intn(10000))
		wfield[i] = fields[rng.Intn(5)*2+1]
	}
	base := rng.Int63n(1 << 40)
	r := p50(func(i int) error {
		_, err := db.GetField("bench", rdoc[i], rfield[i])
		return err
	}, nr, warmR)
	w := p50(func(i int) error {
		return db.Set("bench", wdoc[i], wfield[i], base+int64(i))
	}, nw, warmW)
	fmt.Printf("P\tgo\t%.4f\t%.4f\n", r, w)
}
