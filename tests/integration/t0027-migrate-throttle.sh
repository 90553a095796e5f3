#!/bin/sh
# The migration throttle (issue 11 aim 4, QEMU's auto-converge).  A
# memdirty guest that dirties faster than --bandwidth lets the live passes
# send does not converge with --no-throttle: its progress never reports a
# throttle and the stop-and-copy pass still has most of its working set
# to send.  By default the same migration throttles its vCPU (the
# progress reports cpu-throttle-percentage rising, the summary the
# highest) and stops with a much smaller set, the guest still intact on
# the target.  A migration cancelled while the throttle is on leaves the
# domain on the source unthrottled: the hypervisor logs the throttle
# lifted, and the guest runs at full speed again.  Bad throttle options
# are refused before anything happens.
. "$(dirname "$0")/lib.sh"

plan 11
start_host A 160M || exit 99
start_host B 160M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"
GUEST='cmdline="wss=24M rate=0"'
BW=64M

# The pages the stop-and-copy pass had to send (its first progress
# object's "remaining", in bytes), and the highest throttle reported.
stop_copy_bytes() {
    grep '"status":"stop-copy"' "$1" | head -1 |
        sed -n 's/.*"remaining":\([0-9]*\),.*/\1/p'
}
max_throttle() {
    tail -1 "$1" | sed -n 's/.*"max-cpu-throttle-percentage":\([0-9]*\).*/\1/p'
}

check_fails "--throttle-initial 0 is refused" \
    xlh "$A" migrate --throttle-initial 0 nosuch "local:$B"
check_fails "--throttle-max 100 is refused" \
    xlh "$A" migrate --throttle-max 100 nosuch "local:$B"

check "A: memdirty guest" xlh "$A" create -e "$ex/memdirty.cfg" \
    'name="md"' 'memory=48' "$GUEST"
wait_for 10 console_has "$A" md 'pass' || diag "md did not start"

# --no-throttle: the old behaviour.
xlh "$A" migrate -e --json --no-throttle --bandwidth $BW md "local:$B" \
    >"$T/off.json" 2>"$T/off.err"
rc=$?
off=$(stop_copy_bytes "$T/off.json")
if [ $rc -eq 0 ] && ! grep -q '"cpu-throttle-percentage":[1-9]' "$T/off.json" &&
   [ "$(max_throttle "$T/off.json")" = 0 ] && [ -n "$off" ]; then
    ok "--no-throttle: never throttled; stop-and-copy had $off bytes"
else
    fail "--no-throttle (rc $rc)"
    tail -3 "$T/off.json" "$T/off.err" | sed 's/^/# /'
fi

# Back to A, throttled by default.
xlh "$B" migrate -e --json --bandwidth $BW md "local:$A" \
    >"$T/on.json" 2>"$T/on.err"
rc=$?
on=$(stop_copy_bytes "$T/on.json")
top=$(max_throttle "$T/on.json")
grep '"dirty-pages-rate"' "$T/off.json" | tail -1 |
    sed 's/.*\("dirty-pages-rate":[0-9]*\).*/# --no-throttle: \1/'
grep '"status":"live"' "$T/on.json" |
    sed -n 's/.*"iteration":\([0-9]*\),.*"cpu-throttle-percentage":\([0-9]*\)}/\1:\2/p' |
    uniq | tr '\n' ' ' | sed 's/^/# iteration:throttle /'; echo
if [ $rc -eq 0 ] && [ -n "$top" ] && [ "$top" -ge 20 ] &&
   grep -q '"cpu-throttle-percentage":20}' "$T/on.json"; then
    ok "default: throttled from 20% up to $top%"
else
    fail "default: throttled (rc $rc, max $top)"
    tail -3 "$T/on.json" "$T/on.err" | sed 's/^/# /'
fi
if [ -n "$on" ] && [ -n "$off" ] && [ $((on * 4)) -le "$off" ]; then
    ok "throttled: stop-and-copy had $on bytes, under a quarter of $off"
else
    fail "throttled stop-and-copy ($on bytes against $off)"
fi
sleep 1
if running "$A" md && ! console_has "$A" md 'MISMATCH'; then
    ok "md runs intact on A"
else
    fail "md on A"; console_dump "$A" md | tail -5 | sed 's/^/# /'
fi

# Cancelled while throttled: the source is left unthrottled.
id=$(domid_of "$A" md)
# (xl itself in the background, not a function's subshell, for the kill)
"$XL" -H "$A" migrate -e --json --bandwidth $BW md "local:$B" \
    >"$T/cancel.json" 2>"$T/cancel.err" &
pid=$!
wait_for 60 grep -q '"cpu-throttle-percentage":[1-9]' "$T/cancel.json" ||
    diag "no throttle reported before the cancel"
kill -INT $pid
wait $pid
rc=$?
last=$(xlh "$A" dmesg | grep "d$id: vCPU throttle" | tail -1)
diag "$last"
if [ $rc -eq 1 ] && tail -1 "$T/cancel.json" | grep -q '"status":"cancelled"' &&
   echo "$last" | grep -q "d$id: vCPU throttle 0% (was [1-9][0-9]*%)"; then
    ok "cancelled: the throttle was lifted"
else
    fail "cancelled: throttle lifted (rc $rc)"
    tail -3 "$T/cancel.json" "$T/cancel.err" | sed 's/^/# /'
fi
# Unthrottled, a spinning vCPU runs most of a second in a second (the
# bound is loose: other helpers' load shares the host's CPUs).
c0=$(cpu_time "$A" md); sleep 2; c1=$(cpu_time "$A" md)
if running "$A" md && awk -v a="$c0" -v b="$c1" 'BEGIN { exit !(b - a > 0.3) }'
then
    ok "md runs on A at more than the cap ($c0 s -> $c1 s)"
else
    fail "md's CPU time on A after the cancel ($c0 s -> $c1 s)"
fi
check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit
done_testing
