#!/bin/sh
# The shipped guests on two hosts: checksum gives the result its model
# computes (tests/checksum-results) on both hosts (whose machine frames
# differ) whether or not it is paused mid-run; pagetables and memdirty run with their self-checks silent and
# the auditor clean; everything they held is freed when they go.
. "$(dirname "$0")/lib.sh"

plan 14
start_host A 256M || exit 99
start_host B 384M || exit 99
A=$T/A B=$T/B
EXPECT=$(checksum_expect 100000)    # the guest's model computed it
ex="$top_srcdir/examples"


# Shift B's frames: a guest created and kept first, so checksum's MFNs on
# B differ from A's.
check "B: a filler domain" xlh "$B" create -e "$ex/idle.cfg" 'name="filler"'
check "A: checksum" xlh "$A" create -e "$ex/checksum.cfg" 'cmdline="steps=100000"'
check "B: checksum" xlh "$B" create -e "$ex/checksum.cfg" 'cmdline="steps=100000"'
# Pause B's run a few times while it computes.
for i in 1 2 3; do
    xlh "$B" pause checksum 2>/dev/null; sleep 0.2; xlh "$B" unpause checksum 2>/dev/null
done
wait_for 60 sh -c "\"$XL\" -H \"$A\" list checksum | grep -q -- '---s--'" &&
wait_for 60 sh -c "\"$XL\" -H \"$B\" list checksum | grep -q -- '---s--'" ||
    diag "checksum did not finish on both hosts"
ra=$(result_of "$A" checksum) rb=$(result_of "$B" checksum)
[ "$ra" = "$EXPECT" ] && ok "A: result $ra" || fail "A: result '$ra', expected $EXPECT"
[ "$rb" = "$EXPECT" ] && ok "B (paused 3 times, other frames): result $rb" ||
    fail "B: result '$rb', expected $EXPECT"
xlh "$A" destroy checksum; xlh "$B" destroy checksum; xlh "$B" destroy filler

freeA=$(free_mib "$A")
check "A: pagetables" xlh "$A" create -e "$ex/pagetables.cfg"
check "A: memdirty" xlh "$A" create -e "$ex/memdirty.cfg" 'memory=64' 'cmdline="wss=32M"'
clean=yes
for i in 1 2 3 4 5 6; do
    sleep 2
    xlh "$A" audit >"$T/audit" 2>&1 || { clean=no; sed 's/^/# /' "$T/audit"; }
done
[ $clean = yes ] && ok "the auditor stays clean while they run" ||
    fail "the auditor stays clean while they run"
console_dump "$A" pagetables >"$T/pt.out"
rounds=$(sed -n 's/^pagetables: round //p' "$T/pt.out" | tail -1)
[ "${rounds:-0}" -gt 100 ] && ok "pagetables made progress ($rounds rounds)" ||
    fail "pagetables made progress (${rounds:-0} rounds)"
! grep -q MISMATCH "$T/pt.out" && ok "pagetables: self-checks silent" ||
    { fail "pagetables: self-checks silent"; grep MISMATCH "$T/pt.out" | head -3 | sed 's/^/# /'; }
console_dump "$A" memdirty >"$T/md.out"
grep -q '^memdirty: pass' "$T/md.out" && ! grep -q MISMATCH "$T/md.out" &&
    ok "memdirty: passes, self-checks silent" ||
    { fail "memdirty: passes, self-checks silent"; tail -3 "$T/md.out" | sed 's/^/# /'; }
check "A: xl shutdown -w memdirty" timeout 20 "$XL" -H "$A" shutdown -w memdirty
check "A: xl destroy pagetables" xlh "$A" destroy pagetables
xlh "$A" destroy memdirty 2>/dev/null
[ "$(free_mib "$A")" = "$freeA" ] && ok "A: every frame came back" ||
    fail "A: every frame came back"
done_testing
