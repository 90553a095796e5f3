#!/bin/sh
# xl migrate's failure semantics: whatever breaks, the domain runs on
# exactly one host.  With FERRY_MIGRATE_FAULT at every point of the
# sender (S) and of the receiver (R), the process there either exits or
# stops and is then killed (SIGKILL); a restore failure is injected on R;
# S gets SIGINT in the live phase.  Afterwards (for a dead S, once `xl
# migrate-resolve` has finished its work) the domain runs on the host the
# design says, its console advancing, and the other host has no copy of
# it (no --incoming, --migratedaway or --aborted left), and xl migrate's
# exit status is the one the design gives (0 on the target, 1 on the
# source).  Cases run a few at a time, each on its own domain.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"migrate"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl migrate is not there"
    exit 77
fi

# side point expected-host (A: stays on the source, B: on the target)
SEND_CASES="preamble:A live:A suspended:A stream-end:A ready:A go:B"
RECV_CASES="preamble:A live:A suspended:A stream-end:A ready:A go:A
committed:B report:B"
ncases=$(( (6 + 8) * 2 ))
plan $((ncases + 7))
start_host A 320M || exit 99
start_host B 320M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"

# No copy of domain $2 at all on host $1, under any name.
no_copy() {
    ! "$XL" -H "$1" list 2>/dev/null | awk '{print $1}' |
        grep -q -- "^$2\(--incoming\|--migratedaway\|--aborted\)\?\$"
}
no_incoming() {
    ! "$XL" -H "$1" list 2>/dev/null | grep -q -- "^$2--incoming "
}
# The pid a stopped process announced: "... stopping (pid N)".
stopped_pid() {
    sed -n 's/.*: stopping (pid \([0-9]*\))$/\1/p' "$1" | head -1
}

# run_case NAME SIDE POINT ACTION WANT: one migration of domain NAME
# with the fault, then the checks; the verdict goes to $T/NAME.res.
run_case() {
    name=$1 side=$2 point=$3 action=$4 want=$5
    out=$T/$name
    desc="$side:$point:$action -> on $want"
    if ! xlh "$A" create -e "$ex/memdirty.cfg" "name=\"$name\"" \
            'memory=16' 'cmdline="wss=1M rate=4M"' >"$out.create" 2>&1; then
        echo "not ok - $desc: create failed" >"$out.res"; return
    fi
    FERRY_MIGRATE_FAULT=$side:$point:$action \
        "$XL" -H "$A" migrate -e "$name" "local:$B" >"$out.out" \
        2>"$out.err" &
    spid=$!
    if [ "$action" = stop ]; then
        wait_for 20 grep -q 'stopping (pid' "$out.err"
        kill -9 "$(stopped_pid "$out.err")" 2>/dev/null
    fi
    wait "$spid"
    rc=$?
    how="rc $rc"
    if [ "$side" = send ]; then
        # S is dead: let R finish with the domain, then resolve.
        wait_for 15 no_incoming "$B" "$name"
        "$XL" -H "$A" migrate-resolve "$name" "local:$B" \
            >"$out.res-out" 2>"$out.res-err"
        rc=$?
        how="$how, migrate-resolve rc $rc"
        [ "$want" = B ] && exp=0 || exp=1
        # B's receiver, orphaned by S, drops its copy in its own time
        # (slowly in a sanitizer build, with a batch of cases running):
        # it cannot commit without S's go, so wait for it to finish.
        [ "$want" = A ] && wait_for 15 no_copy "$B" "$name"
    else
        [ "$want" = B ] && exp=0 || exp=1
    fi
    if [ "$want" = A ]; then here=$A there=$B; else here=$B there=$A; fi
    why=""
    [ "$rc" = "$exp" ] || why="exit status"
    [ -z "$why" ] && ! running "$here" "$name" && why="not running"
    [ -z "$why" ] && ! no_copy "$there" "$name" && why="a copy is left"
    [ -z "$why" ] && ! no_incoming "$here" "$name" && why="--incoming left"
    [ -z "$why" ] && ! console_grows "$here" "$name" && why="console stuck"
    if [ -z "$why" ]; then
        echo "ok - $desc ($how)" >"$out.res"
    else
        {
            echo "not ok - $desc ($how, expected $exp): $why"
            echo "# console: p0=${p0:-} p1=${p1:-}"
            console_dump "$here" "$name" | tail -3 | sed 's/^/# console: /'
            echo "# A:"; "$XL" -H "$A" list 2>&1 | sed 's/^/#   /'
            echo "# B:"; "$XL" -H "$B" list 2>&1 | sed 's/^/#   /'
            sed 's/^/# S: /' "$out.err" | grep -v "$(printf '\r')" | tail -15
            [ -f "$out.res-err" ] && sed 's/^/# resolve: /' "$out.res-err"
        } >"$out.res"
    fi
    "$XL" -H "$here" destroy "$name" 2>/dev/null
}

# Print the verdicts of the cases given, in order, as TAP.
report() {
    for n in "$@"; do
        line=$(head -1 "$T/$n.res" 2>/dev/null)
        case $line in
        "ok - "*) ok "${line#ok - }" ;;
        *) fail "${line#not ok - }"; tail -n +2 "$T/$n.res" ;;
        esac
    done
}

# A few at a time: each case is mostly waiting for its guest and console.
batch() {
    t0=$(date +%s) count=$#
    names=""
    for c in "$@"; do
        set -- $(echo "$c" | tr ':' ' ')
        run_case "$1" "$2" "$3" "$4" "$5" &
        names="$names $1"
    done
    wait
    report $names
    diag "batch of $count cases: $(( $(date +%s) - t0 )) s"
}

# SIGINT to S in the live phase: cancelled, the domain stays on A.  Runs
# beside the last batch; the verdict goes to $T/int1.res.
sigint_case() {
    xlh "$A" create -e "$ex/memdirty.cfg" 'name="int1"' 'memory=32' \
        'cmdline="wss=16M"' >/dev/null 2>&1
    "$XL" -H "$A" migrate -e --json --bandwidth 8M int1 "local:$B" \
        >"$T/int1.json" 2>"$T/int1.err" &
    spid=$!
    wait_for 20 grep -q '"status":"live"' "$T/int1.json" ||
        echo "# no live progress seen before SIGINT" >"$T/int1.diag"
    kill -INT $spid
    wait $spid
    rc=$?
    if [ $rc = 1 ] && running "$A" int1 && no_copy "$B" int1 &&
       console_grows "$A" int1 &&
       tail -1 "$T/int1.json" |
           grep -q '"status":"cancelled","where":"source"'; then
        echo "ok - SIGINT in the live phase: exit 1, \"cancelled\", on A, B clean" \
            >"$T/int1.res"
    else
        {
            echo "not ok - SIGINT in the live phase (rc $rc)"
            sed 's/^/# /' "$T/int1.err" | grep -v "$(printf '\r')" | tail
            tail -1 "$T/int1.json" | sed 's/^/# /'
        } >"$T/int1.res"
    fi
    xlh "$A" destroy int1
}

# At most 9 at a time: more would crowd the hosts' control connections.
# A restore failure injected on R goes with the first receiver batch.
for side in send recv; do
    [ $side = send ] && cases=$SEND_CASES || cases=$RECV_CASES
    for action in exit stop; do
        list=""
        for c in $cases; do
            list="$list $side-${c%:*}-$action:$side:${c%:*}:$action:${c#*:}"
        done
        [ $side$action = recvexit ] &&
            list="$list fail1:recv:stream-end:fail:A"
        [ $side$action = recvstop ] && sigint_case &
        batch $list
    done
done
report int1
[ -f "$T/int1.diag" ] && cat "$T/int1.diag"

# R's reason for the injected failure reached S.
grep -q 'injected failure at stream-end' "$T/fail1.err" &&
    grep -q '^Migration failed, resuming at sender.$' "$T/fail1.err" &&
    ok "S printed R's reason and Xen's message" ||
    { fail "S printed R's reason and Xen's message"
      sed 's/^/# /' "$T/fail1.err"; }

# R commits without permission and vanishes before its ready message: S
# must not resume its copy (the domain would run twice) but leave it and
# exit 3; migrate-resolve then finds the copy on B and destroys S's.
xlh "$A" create -e "$ex/memdirty.cfg" 'name="ec"' 'memory=16' \
    'cmdline="wss=1M rate=4M"' >/dev/null 2>&1
FERRY_MIGRATE_FAULT=recv:early-commit:fail "$XL" -H "$A" migrate -e ec \
    "local:$B" >"$T/ec.out" 2>"$T/ec.err"
rc=$?
if [ $rc = 3 ] &&
   grep -q "the target reports a committed copy it cannot have" "$T/ec.err" &&
   ! grep -q "Migration failed, resuming at sender" "$T/ec.err" &&
   running "$B" ec && ! running "$A" ec; then
    ok "R committed before go: S does not resume its copy, exits 3"
else
    fail "R committed before go (rc $rc)"
    sed 's/^/# /' "$T/ec.err" | grep -v "$(printf '\r')" | tail -8
fi
"$XL" -H "$A" migrate-resolve ec "local:$B" >"$T/ec.res" 2>&1
rc=$?
[ $rc = 0 ] && no_domain "$A" ec && running "$B" ec &&
    ok "... and migrate-resolve leaves it on B only" ||
    { fail "migrate-resolve after an early commit (rc $rc)"
      sed 's/^/# /' "$T/ec.res"; }
xlh "$B" destroy ec 2>/dev/null

check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit
done_testing
