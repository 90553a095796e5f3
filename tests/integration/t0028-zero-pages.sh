#!/bin/sh
# Zero pages (issue 11, aim 2): on a save's first pass a page nothing
# wrote since the domain was built costs only its PFN (PAGE_DATA type
# XALLOC).  An idle 1 GiB domain saves to a file of at most 8 MiB (the
# aim's 16 MiB for 2 GiB) in which every PFN is present, most as XALLOC;
# xl stream-info accepts it; the file restores and the guest runs on.  A
# checksum guest (its data written by the guest CPU, its page tables by
# mmu_update) migrated live, and saved and restored, still gives the
# result of an uninterrupted run.
. "$(dirname "$0")/lib.sh"

plan 13
start_host A 1152M || exit 99
start_host B 64M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"
key() { sed -n "s/^$2: //p" "$1"; }
si() { FERRY_RUNDIR=$T/nohost "$XL" stream-info "$@"; }
finished_or_gone() { finished "$1" "$2" || no_domain "$1" "$2"; }

# ---- an idle 1 GiB domain -----------------------------------------------
check "A: idle with 1 GiB" xlh "$A" create -e "$ex/idle.cfg" 'memory=1024'
wait_for 10 console_has "$A" idle "idle: up" || diag "idle did not start"
t0=$(date +%s.%N)
check "A: xl save idle" xlh "$A" save idle "$T/idle.save"
t1=$(date +%s.%N)
size=$(wc -c <"$T/idle.save")
diag "1 GiB idle: $size bytes in $(awk "BEGIN { print $t1 - $t0 }") s"
[ "$size" -le $((8 * 1024 * 1024)) ] &&
    ok "the file is at most 8 MiB ($size bytes)" ||
    fail "the file is at most 8 MiB ($size bytes)"

si "$T/idle.save" >"$T/idle.info" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(key "$T/idle.info" result)" = ok ] &&
   [ "$(key "$T/idle.info" digest)" = ok ]; then
    ok "xl stream-info: ok"
else
    fail "xl stream-info: ok (rc $rc)"
    sed 's/^/# /' "$T/idle.info"
fi
xalloc=$(key "$T/idle.info" pages_xalloc)
data=$(key "$T/idle.info" pages_data)
diag "pages_data $data, pages_xalloc $xalloc"
[ "$(key "$T/idle.info" pfns_distinct)" = 262144 ] &&
   [ $((data + xalloc)) = 262144 ] && [ "$xalloc" -gt 250000 ] &&
    ok "every PFN once, all but the boot area's as XALLOC" ||
    fail "every PFN once, all but the boot area's as XALLOC"

check "A: xl restore of the idle file" xlh "$A" restore -e "$T/idle.save"
# idle says "alive" every 10 seconds of its own time: it runs on.
wait_for 30 console_has "$A" idle "idle: alive" &&
    ok "the restored idle guest runs" ||
    fail "the restored idle guest runs"
check "A: auditor clean" xlh "$A" audit
xlh "$A" destroy idle

# ---- checksum guests ----------------------------------------------------
STEPS='cmdline="steps=3000000"'
EXPECT=$(checksum_expect 3000000)
# The checksum guest that came to B ($1: how) finishes with EXPECT.
expect_result_on_B() {
    wait_for 240 finished_or_gone "$B" checksum ||
        diag "checksum did not finish on B"
    r=$(result_of "$B" checksum)
    [ "$r" = "$EXPECT" ] && ok "B: the $1 guest's result $r" ||
        fail "B: $1: result '$r', expected $EXPECT"
}
check "A: checksum guest" xlh "$A" create -e "$ex/checksum.cfg" "$STEPS"
if xlh "$A" migrate -e checksum "local:$B" >"$T/mig.out" 2>&1; then
    expect_result_on_B migrated
else
    fail "A->B: xl migrate checksum"
    sed 's/^/# /' "$T/mig.out"
fi
xlh "$B" destroy checksum 2>/dev/null

check "A: checksum guest again" xlh "$A" create -e "$ex/checksum.cfg" "$STEPS"
wait_for 10 console_has "$A" checksum 'up steps=' ||
    diag "no output from checksum yet"
if xlh "$A" save checksum "$T/cs.save" >"$T/cs.out" 2>&1 &&
   xlh "$B" restore -e "$T/cs.save" >>"$T/cs.out" 2>&1; then
    expect_result_on_B restored
else
    fail "A->B: xl save and restore checksum"
    sed 's/^/# /' "$T/cs.out"
fi
check "B: auditor clean" xlh "$B" audit
done_testing
