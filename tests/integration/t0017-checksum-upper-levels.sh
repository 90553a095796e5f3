#!/bin/sh
# checksum_upper_levels: the checksum guest keeps changing its L2, L3 and
# L4 entries, so its result shows a restore that got the upper levels of
# its page tables wrong.  A checksum guest is saved twice mid-run (xl save
# -c, a moment later xl save).  The later file restores to the result of
# the guest's model.  mkstream then gives the later file the L2-L4 tables
# of the earlier one: valid tables of the right levels, which the
# hypervisor accepts, but the upper levels of an earlier moment, as a
# restorer that localised stale or wrong upper-level entries would leave
# them.  Restored, that file must not give the model's result.  mkstream
# refuses to make it if no upper-level table changed between the saves,
# as for a guest that never changes them.
. "$(dirname "$0")/lib.sh"

MK="$top_builddir/tests/integration/mkstream"
if [ ! -x "$MK" ]; then
    echo "1..0 # SKIP mkstream is not there"
    exit 77
fi

# ended HOST NAME: the domain has shut down or crashed.
ended() { "$XL" -H "$1" list "$2" 2>/dev/null | grep -Eq -- '---s--|----c-'; }

plan 8
start_host A 128M || exit 99
A=$T/A
ex="$top_srcdir/examples"
EXPECT=$(checksum_expect 1000000)

check "A: checksum, steps=1000000" xlh "$A" create -e "$ex/checksum.cfg" \
    'memory=8' 'cmdline="steps=1000000"'
wait_for 10 console_has "$A" checksum 'up steps=' ||
    diag "checksum did not start"
check "A: xl save -c mid-run (the earlier moment)" \
    xlh "$A" save -c checksum "$T/early.save"
sleep 0.1
check "A: xl save mid-run (the later moment)" \
    xlh "$A" save checksum "$T/late.save"

if "$MK" rewrite "$T/late.save" "$T/stale.save" upper-from "$T/early.save" \
       >"$T/mk.out" 2>&1; then
    ok "checksum_upper_levels: L2-L4 tables changed between the saves"
else
    fail "checksum_upper_levels: L2-L4 tables changed between the saves"
fi
sed 's/^/# /' "$T/mk.out"

check "A: xl restore of the later save" xlh "$A" restore -e "$T/late.save"
wait_for 60 finished "$A" checksum || diag "checksum did not finish"
r=$(result_of "$A" checksum)
[ -n "$EXPECT" ] && [ "$r" = "$EXPECT" ] &&
    ok "A: the restored guest gives the model's result $r" ||
    fail "A: result '$r', the model's '$EXPECT'"
xlh "$A" destroy checksum

# The stale upper levels: refused, crashed or another result, never the
# right one.
if [ ! -s "$T/stale.save" ]; then
    fail "checksum_upper_levels: stale L2-L4 tables: no file"
elif xlh "$A" restore -e "$T/stale.save" >"$T/stale.out" 2>&1; then
    wait_for 60 ended "$A" checksum || diag "checksum did not finish"
    r=$(result_of "$A" checksum)
    [ "$r" != "$EXPECT" ] &&
        ok "checksum_upper_levels: stale L2-L4 tables: result '$r'" ||
        fail "checksum_upper_levels: stale L2-L4 tables: the model's $r"
    console_dump "$A" checksum | sed 's/^/# /'
else
    ok "checksum_upper_levels: stale L2-L4 tables refused"
    sed 's/^/# /' "$T/stale.out"
fi
check "A: auditor clean" xlh "$A" audit
xlh "$A" destroy checksum 2>/dev/null
done_testing
