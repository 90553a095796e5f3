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

plan 9
mkdir -p "$T/files"
top_builddir="$top_builddir" "$BENCH" --quick --dir "$T/files" \
    >"$T/bench.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "ferry-bench --quick exits 0" ||
    fail "ferry-bench --quick exits 0 (status $rc)"

# Every yardstick is measured (a rate, not 0.00; O_DIRECT may be refused
# by the file system the test runs on, and then the line says so).
missing=""
for f in "memcpy, one thread" "buffered write + fsync" \
         "loopback TCP, hot buffer"; do
    grep -F -- "yardstick: $f" "$T/bench.out" |
        grep -Eq ' ([1-9][0-9]*\.[0-9]+|0\.0[1-9]|0\.[1-9][0-9]) GB/s' ||
        missing="$missing [$f]"
done
for f in "O_DIRECT write + fdatasync" "O_DIRECT read"; do
    grep -F -- "yardstick: $f" "$T/bench.out" | grep -q ' GB/s' ||
        missing="$missing [$f]"
done
[ -z "$missing" ] && ok "every yardstick is printed" ||
    fail "every yardstick is printed:$missing"

# Every aim has its line, with a value and a verdict (aims 2 and 6 are
# for 2 and 4 GiB: at --quick's sizes they are figures for the record).
missing=""
for s in "16 MiB" "64 MiB"; do
    for f in "aim 5: save $s to file, durable" \
             "aim 5: restore $s from cold file" \
             "aim 5: restore $s from cached file"; do
        grep -F -- "$f" "$T/bench.out" | grep -Eq ' (met|NOT MET)$' ||
            missing="$missing [$f]"
    done
done
for f in "aim 1,3: migrate 16 MiB tcp://: throughput" \
         "aim 1,3: migrate 16 MiB tcp://: downtime" \
         "aim 1: migrate 16 MiB tls://: throughput" \
         "aim 1: migrate 16 MiB local:: throughput"; do
    grep -F -- "$f" "$T/bench.out" | grep -Eq ' (met|NOT MET)$' ||
        missing="$missing [$f]"
done
[ -z "$missing" ] && ok "every save, restore and migration aim is measured" ||
    fail "every save, restore and migration aim is measured:$missing"

n=$(grep -c '^aim [34]: migrate 16 MiB dirty 1\(00M\|G\)/s: \(throughput\|downtime\|sender stop to last byte\|receiver finish\) ' \
    "$T/bench.out")
[ "$n" = 8 ] && ok "the dirtying migrations' lines are printed" ||
    fail "the dirtying migrations' lines are printed ($n of 8)"

n=$(grep -Ec '^aim 2: (migrate 16 MiB untouched: time +[0-9.]+ s|save 16 MiB untouched: file size +[0-9.]+ MiB) ' \
    "$T/bench.out")
[ "$n" = 2 ] && ok "the untouched domain is migrated and saved (aim 2)" ||
    fail "the untouched domain is migrated and saved (aim 2) ($n of 2)"

grep -Eq '^aim 6: host of 64 MiB: up +[0-9.]+ s ' "$T/bench.out" &&
    ok "a host's start is timed (aim 6)" ||
    fail "a host's start is timed (aim 6)"

n=$(grep -Ec '^aim 7: (save to /dev/null|save to file|restore cached|restore cold) time 64 MiB / 16 MiB +[0-9.]+ ' \
    "$T/bench.out")
[ "$n" = 4 ] && ok "the linearity lines are printed (aim 7)" ||
    fail "the linearity lines are printed (aim 7) ($n of 4)"

grep -q '^bench: [0-9]* aims met, [0-9]* not met, [0-9]* not measured' \
    "$T/bench.out" && ok "the summary line is printed" ||
    fail "the summary line is printed"

left=$(ls "$T/files")
[ -z "$left" ] && ! pgrep -f "ferry-hv --run-dir $T/files" >/dev/null &&
    ok "no file, directory or daemon is left behind" ||
    fail "no file, directory or daemon is left behind ($left)"
[ $_failed -eq 0 ] || sed 's/^/# /' "$T/bench.out"
done_testing
