"""Python binding overhead (issue 7, item 7): one round, run by bench/run.

    python bench/bench_python.py --db DIR/core.db [--quick]

Times the single-field read (Store.get_field) and committed write
(Store.set) that `bench_core --binding-round` times through C, with the
same counts, warm-up and key choice, on the store bench_core left behind
(10k documents "d0000000".., fields f0..f9, odd fields integers). bench/run
alternates C, Python and Go rounds and subtracts; this prints one line:

    P <tab> python <tab> <read p50 us> <tab> <write p50 us>
"""
import argparse
import os
import random
import sys
import time


def p50(fn, args, warm, slices=5):
    """Latency in µs of fn(*a) over args[warm:], taken in `slices` slices:
    the lowest slice median, as bench_core --binding-round does (a slice
    that ran undisturbed exists in nearly every round on a shared machine).
    The arguments are drawn before the clock starts so only the call is
    timed."""
    clock = time.perf_counter_ns
    samples = []
    for i, a in enumerate(args):
        t0 = clock()
        fn(*a)
        t1 = clock()
        if i >= warm:
            samples.append((t1 - t0) / 1000.0)
    per = len(samples) // slices
    best = None
    for k in range(slices):
        s = sorted(samples[k * per:(k + 1) * per])
        m = s[(len(s) + 1) // 2 - 1]
        best = m if best is None or m < best else best
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    import lim  # bench/run checks that this works before it runs us

    rng = random.Random(os.getpid())
    keys = ["d%07d" % i for i in range(10000)]
    fields = ["f%d" % i for i in range(10)]
    nr, nw = (5000, 1000) if a.quick else (20000, 3000)
    reads = [("bench", keys[rng.randrange(10000)], fields[rng.randrange(10)]) for _ in range(1000 + nr)]
    base = rng.randrange(1 << 40)
    writes = [("bench", keys[rng.randrange(10000)], fields[rng.randrange(5) * 2 + 1], base + i)
              for i in range(300 + nw)]
    with lim.open(a.db) as db:
        r = p50(db.get_field, reads, 1000)
        w = p50(db.set, writes, 300)
    print("P\tpython\t%.4f\t%.4f" % (r, w), flush=True)


if __name__ == "__main__":
    sys.exit(main())
