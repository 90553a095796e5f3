#!/bin/sh
# Admission and bounds (issue 10): a stream's claims cost its reader
# nothing it was not admitted for.  A checksum guest saved on host A is
# rewritten by mkstream into:
#  - a migration whose preamble under-claims memory (8 MiB) while the
#    stream's config says 512 GiB and its P2M claims 2^27 PFNs;
#  - a migration whose P2M claims 2^32 PFNs (a 64 MiB X86_PV_P2M_FRAMES);
#  - save files with a P2M of 2^32 PFNs, and of 2^27 PFNs under a config
#    of 512 GiB maxmem, with its whole frame list (2 MiB) or only its
#    last frame (a short record that claims as much).
# xl migrate-receive (on stdin, as over ssh) and xl restore on host B
# refuse each one with a message naming what was claimed and what was
# admitted, leave nothing behind, and their peak RSS stays under 64 MiB
# above that of a receiver refusing at once; xl stream-info says the
# 2^27 P2M is bad.
. "$(dirname "$0")/lib.sh"

MK="$top_builddir/tests/integration/mkstream"
RSS="$top_builddir/tests/integration/maxrss"
plan 16
start_host A 96M || exit 99
start_host B 128M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"
ndomains() { "$XL" -H "$B" list | grep -c .; }
rss() { cat "$T/rss"; }

check "A: checksum" xlh "$A" create -e "$ex/checksum.cfg" 'memory=8' \
    'cmdline="steps=100000000"'
wait_for 10 console_has "$A" checksum 'checksum: up' ||
    diag "checksum did not start"
check "A: xl save" xlh "$A" save checksum "$T/good.save"
xlh "$A" destroy checksum 2>/dev/null
free0=$(free_mib "$B")
n0=$(ndomains)

# The steady state: a receiver that refuses the preamble at once.
printf 'ferry-migrate 1 {"op":"nosuch"}\n' >"$T/bad.mig"
"$RSS" "$T/rss" "$XL" -H "$B" migrate-receive -e <"$T/bad.mig" \
    >/dev/null 2>&1
base=$(rss)
diag "steady state: a refusing receiver peaks at $base KiB"

# left_nothing: no domain, no memory held on B.
left_nothing() {
    no_domain "$B" checksum && [ "$(ndomains)" = "$n0" ] &&
        [ "$(free_mib "$B")" = "$free0" ]
}
# bounded WHAT: the last run peaked under 64 MiB above the steady state.
bounded() {
    peak=$(rss)
    if [ $((peak - base)) -lt 65536 ]; then
        ok "$1: peak RSS $peak KiB, $((peak - base)) KiB above steady"
    else
        fail "$1: peak RSS $peak KiB, $((peak - base)) KiB above steady"
    fi
}
# receive WHAT FILE TEXT [TEXT2]: a receiver refuses FILE naming TEXT
# (and TEXT2).  Its offsets count the handshake's bytes too, so the
# tests name the record, not its offset.
receive() {
    "$RSS" "$T/rss" "$XL" -H "$B" migrate-receive -e <"$2" \
        >"$T/recv.out" 2>"$T/recv.err"
    rc=$?
    if [ $rc -eq 1 ] && grep 'Domain creation failed' "$T/recv.err" |
       grep -F -- "$3" | grep -q -F -- "${4:-$3}" && left_nothing; then
        ok "receiver refuses $1"
    else
        fail "receiver refuses $1 (rc $rc)"
        sed 's/^/# /' "$T/recv.err"
    fi
    bounded "receiver, $1"
}
# restore WHAT FILE TEXT: xl restore refuses FILE naming TEXT.
restore() {
    "$RSS" "$T/rss" "$XL" -H "$B" restore -e "$2" >"$T/r.out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q -F -- "$3" "$T/r.out" &&
       grep -q 'Failed to restore domain' "$T/r.out" && left_nothing; then
        ok "xl restore refuses $1"
    else
        fail "xl restore refuses $1 (rc $rc)"
        sed 's/^/# /' "$T/r.out"
    fi
    bounded "xl restore, $1"
}

# 512 GiB of maxmem and a P2M of 2^27 PFNs: what the config claims.
"$MK" rewrite "$T/good.save" "$T/big.save" maxmem 536870912 >/dev/null &&
"$MK" rewrite "$T/big.save" "$T/p27.save" p2m-claim 0x8000000 \
    >"$T/p27.mk" &&
"$MK" rewrite "$T/p27.save" "$T/under.mig" --preamble=8192 none \
    >/dev/null || diag "mkstream failed"
receive "a preamble under-claiming memory" "$T/under.mig" \
    "the stream's config has maxmem 536870912 KiB, the preamble admitted 8192 KiB"

# 2^32 PFNs under the domain's own 8 MiB: the record is refused before
# its 64 MiB body is read.
"$MK" rewrite "$T/good.save" "$T/p32.save" p2m-claim 0x100000000 \
    >"$T/p32.mk" &&
"$MK" rewrite "$T/p32.save" "$T/p32.mig" --preamble none >/dev/null ||
    diag "mkstream failed"
read -r off32 name32 <"$T/p32.mk"
receive "a P2M of 2^32 PFNs" "$T/p32.mig" "($name32) at offset" \
    "length 0x4000008 exceeds 0x28, the most a domain of 8 MiB admitted here can need"

restore "a P2M of 2^32 PFNs" "$T/p32.save" \
    "($name32) at offset $off32: length 0x4000008 exceeds 0x28"
read -r off27 name27 <"$T/p27.mk"
restore "a P2M of 2^27 PFNs under 512 GiB of maxmem" "$T/p27.save" \
    "($name27) at offset $off27: length 0x200008 exceeds 0x"
"$MK" rewrite "$T/big.save" "$T/tail.save" p2m-claim-tail 0x8000000 \
    >"$T/tail.mk" || diag "mkstream failed"
read -r offt namet <"$T/tail.mk"
restore "a short P2M record claiming 2^27 PFNs" "$T/tail.save" \
    "$namet record (type 0x3) at offset $offt: P2M of 134217728 PFNs (524288 MiB) exceeds the $free0 MiB admitted for this restore"

FERRY_RUNDIR=$T/nohost "$XL" stream-info "$T/p27.save" >"$T/si.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -qx 'result: bad' "$T/si.out" &&
   grep -q -F "($name27) at offset $off27: the P2M claims 134217728 PFNs (524288 MiB), the stream sends 2048 of them" "$T/si.out"; then
    ok "stream-info: the 2^27 P2M is an error"
else
    fail "stream-info: the 2^27 P2M is an error (rc $rc)"
    sed 's/^/# /' "$T/si.out"
fi

# The good file still restores.
check "xl restore of the good file" xlh "$B" restore -p -e "$T/good.save"
xlh "$B" destroy checksum
check "B: auditor clean" xlh "$B" audit
check "A: auditor clean" xlh "$A" audit
done_testing
