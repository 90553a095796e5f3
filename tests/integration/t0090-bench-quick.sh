#!/bin/sh
# ferry-bench --quick: the benchmark (make bench) still builds, runs its
# small sizes end to end through the real engines, prints every line of
# its table, and leaves nothing behind.  It asserts no figure: speed is
# make bench's business, not make check's.
. "$(dirname "$0")/lib.sh"

BENCH="$top_builddir/bench/ferry-bench"
if [ ! -x "$BENCH" ]; then
    echo "1..0 # SKIP bench/ferry-bench is not built"
    exit 77
fi

plan 6
mkdir -p "$T/files"
top_builddir="$top_builddir" "$BENCH" --quick --dir "$T/files" \
    >"$T/bench.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "ferry-bench --quick exits 0" ||
    fail "ferry-bench --quick exits 0 (status $rc)"

# Every figure has its line, with a value and a verdict.
missing=""
for s in "16 MiB" "64 MiB"; do
    for f in "save $s to /dev/null (digest on)" \
             "save $s to disk file, fsync" \
             "restore $s from cached file"; do
        grep -F -- "$f" "$T/bench.out" | grep -Eq ' (met|NOT MET)$' ||
            missing="$missing [$f]"
    done
done
[ -z "$missing" ] && ok "every save/restore figure is measured" ||
    fail "every save/restore figure is measured:$missing"

n=$(grep -c '^save to /dev/null time 64 MiB / 16 MiB\|^save to file time 64 MiB / 16 MiB\|^restore time 64 MiB / 16 MiB' \
    "$T/bench.out")
[ "$n" = 3 ] && ok "the linearity lines are printed" ||
    fail "the linearity lines are printed ($n of 3)"

n=$(grep -c '^migrate 16 MiB dirty .*/s: \(throughput\|downtime\)' \
    "$T/bench.out")
[ "$n" = 6 ] && ok "the migration lines are printed" ||
    fail "the migration lines are printed ($n of 6)"

grep -q '^bench: [0-9]* aims met, [0-9]* not met, [0-9]* not measured$' \
    "$T/bench.out" && ok "the summary line is printed" ||
    fail "the summary line is printed"

left=$(ls "$T/files")
[ -z "$left" ] && ! pgrep -f "ferry-hv --run-dir $T/files" >/dev/null &&
    ok "no file, directory or daemon is left behind" ||
    fail "no file, directory or daemon is left behind ($left)"
[ $_failed -eq 0 ] || sed 's/^/# /' "$T/bench.out"
done_testing
