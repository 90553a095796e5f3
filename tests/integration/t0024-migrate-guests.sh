#!/bin/sh
# The guests that change their page tables and memory the most, migrated
# live with xl migrate: pagetables (pins, unpins, rewrites and recycles
# page tables and balloons frames while the migration runs) and memdirty
# at three dirty rates (10 MB/s, 100 MB/s, as fast as it can).  Each one
# lands on B and goes on there with its self-checks silent (no MISMATCH)
# and its counters advancing; the auditors of both hosts are clean; every
# frame the domains had on A is free again.  pagetables and the fastest
# memdirty then go back to A, so pages arrive in states a second
# migration changed again.
. "$(dirname "$0")/lib.sh"

plan 19
start_host A 512M || exit 99
start_host B 512M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"

# The last counter a guest printed so far: "pagetables: round N" or
# "memdirty: pass N ...".
last_count() {
    console_dump "$1" "$2" |
        sed -n 's/^[a-z]*: \(round\|pass\) \([0-9]*\).*/\2/p' | tail -1
}
# advancing HOST NAME...: every one of the guests is making progress (its
# counter goes up; they print at most once a second).
advancing() {
    h=$1; shift
    limit=$((40 * ${FERRY_TEST_TIMEOUT_MULTIPLIER:-1}))
    for d; do last_count "$h" "$d" >"$T/c0.$d"; done
    i=0
    while [ $i -lt $limit ]; do
        sleep 0.5
        all=1
        for d; do
            a=$(cat "$T/c0.$d") b=$(last_count "$h" "$d")
            if [ -z "$a" ]; then
                echo "$b" >"$T/c0.$d"; all=0
            elif [ -z "$b" ] || [ "$b" -le "$a" ]; then
                all=0
            fi
        done
        [ $all = 1 ] && return 0
        i=$((i + 1))
    done
    return 1
}
silent() { ! console_dump "$1" "$2" | grep -q 'MISMATCH'; }
no_leftovers() {
    ! "$XL" -H "$1" list 2>/dev/null |
        grep -q -- '--incoming\|--migratedaway\|--aborted'
}
# migrate FROM TO NAME: live, --json; the summary line goes to $T/NAME.json.
migrate() {
    "$XL" -H "$1" migrate -e --json "$3" "local:$2" >"$T/$3.json" \
        2>"$T/$3.err" &&
        grep -q '"event":"summary".*"status":"ok","where":"target"' \
            "$T/$3.json"
}
json_num() {
    sed -n "s/.*\"event\":\"summary\".*\"$2\":\([0-9]*\).*/\1/p" "$T/$1.json"
}

freeA=$(free_mib "$A")
check "A: pagetables guest" xlh "$A" create -e "$ex/pagetables.cfg"
check "A: memdirty at 10 MB/s" xlh "$A" create -e "$ex/memdirty.cfg" \
    'name="md10"' 'memory=64' 'cmdline="wss=32M rate=10M"'
check "A: memdirty at 100 MB/s" xlh "$A" create -e "$ex/memdirty.cfg" \
    'name="md100"' 'memory=64' 'cmdline="wss=32M rate=100M"'
check "A: memdirty as fast as it can" xlh "$A" create -e "$ex/memdirty.cfg" \
    'name="mdmax"' 'memory=64' 'cmdline="wss=32M"'
advancing "$A" pagetables md10 md100 mdmax ||
    diag "some guest made no progress on A before migrating"

for d in pagetables md10 md100 mdmax; do
    check "A->B: $d migrates live" migrate "$A" "$B" $d
done
resent=$(json_num md100 pages_resent)
iters=$(json_num md100 iterations)
[ "${resent:-0}" -gt 0 ] && [ "${iters:-0}" -gt 1 ] &&
    ok "md100: $iters passes, $resent pages sent again" ||
    fail "md100: $iters passes, $resent pages sent again"

ok_all=1
advancing "$B" pagetables md10 md100 mdmax || ok_all=0
for d in pagetables md10 md100 mdmax; do
    silent "$B" $d || { ok_all=0; diag "$d on B: MISMATCH"; }
done
[ $ok_all = 1 ] && ok "B: all four advance with their self-checks silent" ||
    fail "B: all four advance with their self-checks silent"
no_leftovers "$A" && no_leftovers "$B" && ok "no migration leftovers" ||
    fail "no migration leftovers"
check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit
free_is() { [ "$(free_mib "$1")" = "$2" ]; }
wait_for 10 free_is "$A" "$freeA"
[ "$(free_mib "$A")" = "$freeA" ] &&
    ok "A: every frame of the four domains is free ($freeA MiB)" ||
    fail "A: every frame is free: $(free_mib "$A") MiB, not $freeA"

# Back again: the tables pagetables built on B, and memory dirtied there.
check "B->A: pagetables migrates back" migrate "$B" "$A" pagetables
check "B->A: mdmax migrates back" migrate "$B" "$A" mdmax
advancing "$A" pagetables mdmax && silent "$A" pagetables &&
    silent "$A" mdmax &&
    ok "A: pagetables and mdmax advance again, silent" ||
    fail "A: pagetables and mdmax advance again, silent"
check "A: auditor clean after the round trip" xlh "$A" audit
check "B: auditor clean after the round trip" xlh "$B" audit
for d in md10 md100; do xlh "$B" destroy $d; done
for d in pagetables mdmax; do xlh "$A" destroy $d; done
done_testing
