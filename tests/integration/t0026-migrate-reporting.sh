#!/bin/sh
# Migration reporting (issue 12 item 4).  A memdirty guest goes A->B with
# a plain `xl migrate -t` paced by --bandwidth (so that its passes last a
# while): the progress line gives the whole migration's percent (a later
# pass does not start again near 0%), what is left and an ETA, and the
# run ends with the summary line after "Migration successful.".  Back
# B->A with --json: every object carries total-time, which never goes
# down, and transferred, which never goes down either; the first pass's
# objects have a throughput and an expected downtime; the last progress
# object has 0 remaining; the summary says ok.  A SIGINT in the live
# phase is "cancelled" (t0021 has the full case); `--json nosuch` has a
# null source_domid; migrating to local:/nonexistent gives the
# receiver's own reason in the JSON error.
. "$(dirname "$0")/lib.sh"

plan 13
start_host A 128M || exit 99
start_host B 128M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"
NL='
'
check "A: memdirty guest" xlh "$A" create -e "$ex/memdirty.cfg" \
    'name="md"' 'memory=32' 'cmdline="wss=8M rate=8M"'
wait_for 10 console_has "$A" md 'pass' || diag "md did not start"

# Plain, on a "terminal" (-t): percent, left, ETA; then the summary.
"$XL" -t -H "$A" migrate -e --bandwidth 16M md "local:$B" >"$T/plain.out" \
    2>"$T/plain.err"
rc=$?
tr '\r' '\n' <"$T/plain.err" >"$T/plain.lines"
sum='^Migration summary: total time [0-9.]* s, downtime [0-9]* ms, '
sum=$sum'[0-9.]* [KMG]*i*B sent at [0-9.]* [KMG]*i*B/s, [0-9]* live passes, '
sum=$sum'[0-9]* pages resent$'
if [ $rc -eq 0 ] && grep -A1 '^Migration successful.$' "$T/plain.err" |
   tail -1 | grep -q "$sum"; then
    ok "plain migrate ends with the summary line"
else
    fail "plain migrate ends with the summary line (rc $rc)"
    tail -5 "$T/plain.lines" | sed 's/^/# /'
fi
grep '^Migration summary' "$T/plain.err" | sed 's/^/# /'
grep -q 'Migrating: .*% live iter 0 .* left [0-9.]* [KMG]*i*B  ETA [0-9]* s' \
    "$T/plain.lines" &&
    ok "progress: percent, what is left and an ETA" ||
    { fail "progress: percent, left, ETA"; tail -5 "$T/plain.lines" |
      sed 's/^/# /'; }
# The percent of a later pass is of the whole: not back near 0.
low=$(sed -n 's/^Migrating: .* \([0-9]*\)% live iter [1-9].*/\1/p' \
          "$T/plain.lines" | sort -n | head -1)
later=$(grep -c 'live iter [1-9]' "$T/plain.lines")
if [ "$later" -eq 0 ] || [ "${low:-0}" -ge 50 ]; then
    ok "a later pass's percent is of the whole ($later lines, lowest ${low:-none}%)"
else
    fail "a later pass restarts its percent: $low%"
fi

# Back with --json.
wait_for 10 running "$B" md || diag "md does not run on B"
"$XL" -H "$B" migrate -e --json --bandwidth 16M md "local:$A" \
    >"$T/mig.json" 2>"$T/mig.err"
rc=$?
grep '"event":"progress"' "$T/mig.json" >"$T/prog.json"
num() { sed -n "s/.*\"$1\":\\([0-9]*\\)[,}].*/\\1/p" "$2"; }
nondecreasing() { awk 'NR > 1 && $1 < last { bad = 1 } { last = $1 }
                       END { exit bad }'; }
n=$(wc -l <"$T/prog.json")
nt=$(num total-time "$T/prog.json" | wc -l)
if [ $rc -eq 0 ] && [ "$n" -ge 3 ] && [ "$nt" = "$n" ] &&
   num total-time "$T/mig.json" | nondecreasing; then
    ok "--json: all $n progress objects and the summary carry total-time, never going down"
else
    fail "--json: total-time in every object (rc $rc, $nt of $n)"
fi
nx=$(num transferred "$T/prog.json" | wc -l)
[ "$nx" = "$n" ] && num transferred "$T/mig.json" | nondecreasing &&
    ok "--json: transferred never goes down" ||
    { fail "--json: transferred never goes down";
      num transferred "$T/mig.json" | tr '\n' ' ' | sed 's/^/# /'; echo; }
last=$(tail -1 "$T/prog.json")
case $last in
*'"remaining":0,'*) ok "--json: the last progress object has 0 remaining" ;;
*) fail "--json: last progress object: $last" ;;
esac
grep '"status":"live","iteration":0,' "$T/prog.json" >"$T/first.json"
if grep -q '"throughput_bytes_per_s":[1-9]' "$T/first.json" &&
   grep -q '"expected-downtime":[1-9]' "$T/first.json"; then
    ok "--json: the first pass reports a throughput and an expected downtime"
else
    fail "--json: the first pass's throughput and expected downtime"
    sed 's/^/# /' "$T/first.json" | head -5
fi
tail -1 "$T/mig.json" |
    grep -q '^{"event":"summary","domain":"md","status":"ok","where":"target"' &&
    ok "--json: the summary says ok, on the target" ||
    { fail "--json: summary"; tail -1 "$T/mig.json" | sed 's/^/# /'; }

# No such domain: no source domid.
"$XL" -H "$A" migrate -e --json nosuch "local:$B" >"$T/nosuch.json" \
    2>/dev/null
rc=$?
if [ $rc -eq 1 ] && tail -1 "$T/nosuch.json" |
   grep '"status":"failed","where":"source"' |
   grep -q '"source_domid":null,'; then
    ok "--json nosuch: failed, source_domid null"
else
    fail "--json nosuch (rc $rc)"; sed 's/^/# /' "$T/nosuch.json"
fi

# A receiver that cannot start: its reason, in the JSON error.
"$XL" -H "$A" migrate -e --json md "local:$T/nonexistent" \
    >"$T/nx.json" 2>"$T/nx.err"
rc=$?
if [ $rc -eq 1 ] && tail -1 "$T/nx.json" |
   grep -q "\"error\":\"the target failed: cannot connect to the ferry host at $T/nonexistent" &&
   running "$A" md; then
    ok "local:/nonexistent: the receiver's reason is the JSON error; md runs on A"
else
    fail "local:/nonexistent (rc $rc)"; sed 's/^/# /' "$T/nx.json" "$T/nx.err"
fi
check "A: auditor clean" xlh "$A" audit
xlh "$A" destroy md
check "B: auditor clean" xlh "$B" audit
done_testing
