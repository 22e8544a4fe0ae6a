#!/usr/bin/env bash
# Smoke test of the benchmark harness, so that bench/run never rots: runs
# `bench/run --quick --json` and checks that every line is a JSON object and
# that every headline figure of issue 7 is there with a numeric value. It
# never compares a figure with a target: a benchmark number on a shared
# machine is not a test verdict (BENCHMARKS.md has the targets).
#
#   bench/smoke_test.sh [bench/run arguments, e.g. --lim-build build]
#
# The binding figures need the Python binding and Go: set BENCH_PYTHON to a
# Python that has it installed (scripts/test: build/venv/bin/python), or let
# bench/run build build-bench/venv. Exit 0 if every headline figure is there.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

HEADLINES=(write_commit_p50_us write_batch_per_s write_batch_ratio read_field_p50_us read_field_ratio
	sync_catchup_per_s sync_peak_rss_mb propagation_p50_ms python_call_overhead_us go_call_overhead_us)

out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

if ! bench/run --quick --json "$@" >"$out" 2>"$err"; then
	tail -n 30 "$err" >&2
	echo "bench/smoke_test: FAIL: bench/run --quick --json exited non-zero" >&2
	exit 1
fi

fail=0
if command -v python3 >/dev/null 2>&1; then
	python3 - "$out" "${HEADLINES[@]}" <<'PY' || fail=1
import json, math, sys
path, names = sys.argv[1], sys.argv[2:]
ok, seen, info = True, {}, {}
for i, line in enumerate(open(path), 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        print("bench/smoke_test: FAIL: line %d is not JSON (%s): %r" % (i, e, line[:120]))
        ok = False
        continue
    if not isinstance(o, dict) or not {"name", "value", "unit"} <= o.keys():
        print("bench/smoke_test: FAIL: line %d lacks name, value or unit: %r" % (i, line[:120]))
        ok = False
        continue
    if o["name"] == "run_info":
        info = o.get("info", {})
    seen.setdefault(o["name"], o)
for n in names:
    o = seen.get(n)
    v = o and o["value"]
    if o is None:
        print("bench/smoke_test: FAIL: %s missing" % n)
        ok = False
    elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        print("bench/smoke_test: FAIL: %s has no numeric value: %s" % (n, o.get("skipped", v)))
        ok = False
    else:
        print("bench/smoke_test: ok   %-24s %s %s" % (n, v, o["unit"]))
print("bench/smoke_test: %d figures, %s s measuring, load %s" % (len(seen) - 1, info.get("bench_s", "?"),
                                                                 info.get("load_before", "?")))
sys.exit(0 if ok else 1)
PY
else
	# No Python: a looser check by pattern.
	for name in "${HEADLINES[@]}"; do
		if grep -Eq "^\{\"name\":\"$name\",\"value\":-?[0-9][0-9.]*([eE][-+]?[0-9]+)?," "$out"; then
			echo "bench/smoke_test: ok   $name"
		else
			echo "bench/smoke_test: FAIL: $name missing or not numeric" >&2
			fail=1
		fi
	done
fi

if [ "$fail" = 0 ]; then
	echo "bench/smoke_test: PASS"
	exit 0
fi
tail -n 10 "$err" >&2
echo "bench/smoke_test: FAIL" >&2
exit 1
