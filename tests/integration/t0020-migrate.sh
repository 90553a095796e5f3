#!/bin/sh
# xl migrate over the local: transport: a checksum guest migrated live
# mid-run from host A to host B finishes on B with the result of an
# uninterrupted run; it is gone from A, whose memory is all back; its
# name on B is the real one (no --incoming or --migratedaway left); the
# --json output has exactly the design's fields; the auditors are clean.
# A migration to a host with too little memory, and one to a host where
# the name is taken, are refused before any page is sent, and the domain
# keeps running on A.  Also the hypervisor's compare-and-swap rename.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"migrate"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl migrate is not there"
    exit 77
fi

plan 25
start_host A 256M || exit 99
start_host B 256M || exit 99
start_host C 24M || exit 99
A=$T/A B=$T/B C=$T/C
ex="$top_srcdir/examples"
STEPS='cmdline="steps=3000000"'
EXPECT=$(checksum_expect 3000000)

# The compare-and-swap rename, on two idle domains.
check "A: idle domain cas1" \
    xlh "$A" create -e "$ex/idle.cfg" 'name="cas1"'
check "A: idle domain cas2" \
    xlh "$A" create -e "$ex/idle.cfg" 'name="cas2"'
check "A: CAS rename: wrong expect is EBUSY and changes nothing" \
    "$top_builddir/tests/integration/rename-cas" "$A" \
    "$(domid_of "$A" cas1)" cas1 cas2
xlh "$A" destroy cas1
xlh "$A" destroy cas2

freeA=$(free_mib "$A")
freeB=$(free_mib "$B")
# The guest runs for a few seconds: migrate it at once (it is running as
# soon as xl create returns), so that it is caught mid-run even on a slow
# machine.
check "A: checksum guest" xlh "$A" create -e "$ex/checksum.cfg" "$STEPS"
srcid=$(domid_of "$A" checksum)

xlh "$A" migrate -e --json checksum "local:$B" >"$T/mig.json" \
    2>"$T/mig.err"
rc=$?
if [ $rc -eq 0 ] && grep -q '^Migration successful.$' "$T/mig.err" &&
   grep -q '^migration sender: Target reports successful startup.$' \
       "$T/mig.err" &&
   grep -q '^migration target: Got permission, starting domain.$' \
       "$T/mig.err"; then
    ok "A->B: xl migrate exits 0 with Xen's messages"
else
    fail "A->B: xl migrate exits 0 with Xen's messages (rc $rc)"
fi
sed 's/.*\r//; s/^/# /' "$T/mig.err" | tail -20

# --json: progress objects, then exactly one summary, last; nothing else.
NUM='[0-9][0-9]*'
PHASES='\(setup\|live\|stop-copy\|verify\|state\|handshake\)'
PROG='^{"event":"progress","domain":"checksum","status":"'$PHASES'",'
PROG=$PROG'"iteration":'$NUM',"total-time":'$NUM',\("setup-time":'$NUM',\)\{0,1\}'
PROG=$PROG'"transferred":'$NUM',"remaining":'$NUM',"total":'$NUM','
PROG=$PROG'"normal":'$NUM',"pages_resent":'$NUM',"dirty-pages-rate":'$NUM','
PROG=$PROG'"throughput_bytes_per_s":'$NUM',"expected-downtime":'$NUM','
PROG=$PROG'"cpu-throttle-percentage":'$NUM'}$'
SUMM='^{"event":"summary","domain":"checksum","status":"ok",'
SUMM=$SUMM'"where":"target","target":"local:'$B'","source_domid":'$srcid','
SUMM=$SUMM'"target_domid":'$NUM',"total-time":'$NUM',"setup-time":'$NUM','
SUMM=$SUMM'"downtime":'$NUM',"iterations":'$NUM','
SUMM=$SUMM'"transferred":'$NUM',"normal":'$NUM',"pages_resent":'$NUM','
SUMM=$SUMM'"throughput_bytes_per_s":'$NUM',"sender_stop_to_end_ms":'$NUM','
SUMM=$SUMM'"receiver_finish_ms":'$NUM',"max-cpu-throttle-percentage":'$NUM'}$'
nlines=$(wc -l <"$T/mig.json")
nprog=$(grep -c "$PROG" "$T/mig.json")
if [ "$nprog" -ge 1 ] && [ $((nprog + 1)) -eq "$nlines" ] &&
   tail -1 "$T/mig.json" | grep -q "$SUMM"; then
    ok "--json: $nprog progress objects and the summary, exact fields"
else
    fail "--json: progress objects and the summary, exact fields"
    sed 's/^/# /' "$T/mig.json" | tail -5
fi
tail -1 "$T/mig.json" | sed 's/^/# /'
tdom=$(tail -1 "$T/mig.json" | sed -n 's/.*"target_domid":\([0-9]*\).*/\1/p')
bytes=$(tail -1 "$T/mig.json" |
        sed -n 's/.*"transferred":\([0-9]*\).*/\1/p')
[ -n "$tdom" ] && [ "$tdom" = "$(domid_of "$B" checksum)" ] &&
    [ "${bytes:-0}" -gt 1000000 ] &&
    ok "--json: target_domid $tdom is B's domain, $bytes bytes sent" ||
    fail "--json: target_domid '$tdom', bytes '$bytes'"

no_domain "$A" checksum && no_leftovers "$A" &&
    ok "A: the domain is gone" || fail "A: the domain is gone"
wait_for 10 sh -c "[ \"\$(\"$XL\" -H \"$A\" info |
    awk -F': ' '/^free_memory/ {print \$2}')\" = $freeA ]" &&
    ok "A: all its memory is back ($freeA MiB free)" ||
    fail "A: memory back: $(free_mib "$A") MiB free, expected $freeA"
[ "$(domid_of "$B" checksum)" != "" ] && no_leftovers "$B" &&
    ok "B: the domain is called checksum, nothing else left" ||
    { fail "B: the domain is called checksum"; xlh "$B" list | sed 's/^/# /'; }
wait_for 60 finished "$B" checksum || diag "checksum did not finish on B"
rb=$(result_of "$B" checksum)
[ "$rb" = "$EXPECT" ] && ok "B: result after a live migration $rb" ||
    fail "B: result '$rb', expected '$EXPECT'"
check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit
xlh "$B" destroy checksum
wait_for 10 sh -c "[ \"\$(\"$XL\" -H \"$B\" info |
    awk -F': ' '/^free_memory/ {print \$2}')\" = $freeB ]" &&
    ok "B: memory back after destroying it" ||
    fail "B: memory back: $(free_mib "$B") MiB free, expected $freeB"

# Refusals before any page moves: C is too small, B has the name.
check "A: memdirty guest" xlh "$A" create -e "$ex/memdirty.cfg" \
    'name="md"' 'memory=32' 'cmdline="wss=8M rate=20M"'
wait_for 10 console_has "$A" md 'pass' || diag "md did not start"
xlh "$A" migrate -e --json md "local:$C" >"$T/small.json" 2>"$T/small.err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q 'target has [0-9]* MiB free, domain needs 32 MiB' \
       "$T/small.err" &&
   grep -q '^Migration failed, resuming at sender.$' "$T/small.err"; then
    ok "A->C: refused, too little memory, exit 1"
else
    fail "A->C: refused, too little memory (rc $rc)"
    sed 's/^/# /' "$T/small.err"
fi
tail -1 "$T/small.json" | grep '"status":"failed","where":"source",' |
    grep '"transferred":0,' |
    grep -q '"error":"the target refused the domain: target has' &&
    ok "A->C: --json summary: failed, at source, 0 bytes sent" ||
    { fail "A->C: --json summary"; sed 's/^/# /' "$T/small.json"; }
running "$A" md && console_grows "$A" md &&
    ok "A: md still runs, its console advancing" ||
    fail "A: md still runs after the refusal"
no_leftovers "$C" && [ "$(xlh "$C" list | wc -l)" = 2 ] &&
    ok "C: nothing was created" || fail "C: nothing was created"

check "B: an idle domain called md" \
    xlh "$B" create -e "$ex/idle.cfg" 'name="md"'
xlh "$A" migrate -e md "local:$B" >/dev/null 2>"$T/clash.err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q 'a domain named "md" already exists on the target' \
       "$T/clash.err"; then
    ok "A->B: name clash refused, exit 1"
else
    fail "A->B: name clash refused (rc $rc)"
    sed 's/^/# /' "$T/clash.err"
fi
running "$A" md && console_grows "$A" md &&
    ok "A: md still runs after the clash" ||
    fail "A: md still runs after the clash"
[ "$(xlh "$B" list | grep -c '^md')" = 1 ] && no_leftovers "$B" &&
    ok "B: only its own md" || fail "B: only its own md"
check "A: auditor clean at the end" xlh "$A" audit
check "B: auditor clean at the end" xlh "$B" audit
done_testing
