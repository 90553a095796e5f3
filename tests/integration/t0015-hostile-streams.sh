#!/bin/sh
# Hostile save files: a checksum guest saved on host A is rewritten by
# mkstream into one hostile stream per case (unknown mandatory records in
# both layers, a PFN past the P2M, an L1 naming a PFN the stream never
# sends, page tables whose entries fail validation, a P2M frame that is a
# page table, a vCPU whose cr3 or GDT lies outside the domain, no vCPU 0,
# a record longer than the cap, a truncated and a corrupted record, wrong
# versions, big-endian and HVM headers, an L1 table sent good and sent
# again bad in a last pass of its own), each with a correct digest so
# that the restore checks, not the digest, must refuse it.  On host B
# every one fails with exit 1 and a message naming the record (or header)
# and its offset as mkstream reports it, leaves no domain and no memory
# behind, and a guest already running on B keeps running; the auditor
# stays clean.  A stream holding only what Xen's
# minimal PV stream holds restores and runs, and an unknown optional
# record is skipped.  An L1 table sent again in a last pass with a bit
# the guest may set (the restore pins L1 tables as they arrive and must
# unpin and revalidate one sent again) restores with that copy: saved
# again on B, the table has the bit.
. "$(dirname "$0")/lib.sh"

MK="$top_builddir/tests/integration/mkstream"
if ! grep -q '"save"' "$top_srcdir/xl/xl-cmdtable.c" || [ ! -x "$MK" ]; then
    echo "1..0 # SKIP xl save or mkstream is not there"
    exit 77
fi

plan 36
start_host A 96M || exit 99
start_host B 128M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"
ndomains() { "$XL" -H "$B" list | grep -c .; }
last_tick() { console_dump "$B" tick | sed -n 's/^tick //p' | tail -1; }

check "A: checksum" xlh "$A" create -e "$ex/checksum.cfg" 'memory=8' \
    'cmdline="steps=100000000"'
wait_for 10 console_has "$A" checksum 'checksum: up' ||
    diag "checksum did not start"
check "A: xl save" xlh "$A" save checksum "$T/good.save"

# The bystander on B.
printf 'name = "tick"\nmemory = 8\nkernel = "%s"\n' \
    "$top_builddir/tests/guests/ticker.img" >"$T/tick.cfg"
check "B: a ticker already running" xlh "$B" create -e "$T/tick.cfg"
wait_for 10 console_has "$B" tick 'tick 2' || diag "ticker did not start"
pid0=$(cat "$B/ferry-hv.pid")
free0=$(free_mib "$B")
n0=$(ndomains)
tick0=$(last_tick)

# refused DESCRIPTION WHY MKSTREAM-ARGS...: the rewritten file is refused
# on B with exit 1, a message naming what mkstream changed at its offset
# and saying WHY, and nothing is left behind.
refused() {
    d=$1 why=$2; shift 2
    if ! "$MK" rewrite "$T/good.save" "$T/bad.save" "$@" \
        >"$T/mk.out" 2>"$T/mk.err"; then
        fail "$d (mkstream $*)"; sed 's/^/# /' "$T/mk.err"; return
    fi
    read -r off name <"$T/mk.out"
    [ "$name" = unknown ] && name='unknown mandatory'
    xlh "$B" restore -e "$T/bad.save" >"$T/r.out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] &&
       grep -F -- "$name" "$T/r.out" | grep -F -- "at offset $off:" |
           grep -q -F -- "$why" &&
       grep -q 'Failed to restore domain' "$T/r.out" &&
       no_domain "$B" checksum && [ "$(ndomains)" = "$n0" ] &&
       [ "$(free_mib "$B")" = "$free0" ]; then
        ok "$d: $name at offset $off"
    else
        fail "$d: rc $rc, expected '$name' at offset $off: $why"
    fi
    grep -v '^Restoring\|^Loading\|^ Savefile\|^Parsing' "$T/r.out" |
        sed 's/^/# /'
}

refused "unknown mandatory libxc record" "not supported" inject-mandatory
refused "unknown mandatory libxl record" "not supported" \
    inject-libxl-mandatory
refused "a PFN beyond the P2M" "beyond max_pfn" pfn-beyond
refused "an L1 naming a PFN never sent" "which the stream never sent" unsent
refused "a superpage in an L2" "Cannot migrate superpage" l2-pse
refused "a refused flag in an L2 entry" "Bad flags for L2" l2-reserved
refused "a refused flag in an L1 entry" "the L1 table at pfn" l1-reserved
refused "an L1 sent again in a last pass with a refused flag" \
    "the L1 table at pfn" resend-l1-bad
refused "an L4 naming a writable data page" "does not validate" l4-to-data
refused "a P2M frame that is a page table" \
    "P2M frame 0 (pfn" p2m-frame-table
refused "vCPU cr3 outside the domain" "cr3 (pfn" cr3-outside
refused "vCPU GDT outside the domain" "GDT frame 0 (pfn" gdt-outside
refused "no vCPU 0 context" "no X86_PV_VCPU_BASIC record for vCPU 0" \
    drop X86_PV_VCPU_BASIC
refused "a record length past the cap" "exceeds max" length-cap PAGE_DATA
refused "a truncated record" "truncated at offset" truncate-in PAGE_DATA
refused "a corrupted record, digest intact" "reserved bytes set" \
    flip-in X86_PV_INFO
refused "libxc stream version 1" "version 1 not supported (2..3)" \
    libxc-version 1
refused "libxl stream version 3" "version 3 not supported (expected 2)" \
    libxl-version 3
refused "a big-endian libxc stream" "unable to handle big endian streams" \
    libxc-big-endian
refused "a big-endian libxl stream" "big-endian streams not supported" \
    libxl-big-endian
refused "an HVM domain header" "x86 HVM streams not supported" hvm

# A flipped data byte with the old digest: only the digest can tell.
"$MK" rewrite "$T/good.save" "$T/bad.save" --digest=keep \
    flip-in PAGE_DATA >/dev/null 2>&1
xlh "$B" restore -e "$T/bad.save" >"$T/r.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q 'digest mismatch' "$T/r.out" &&
   no_domain "$B" checksum && [ "$(free_mib "$B")" = "$free0" ]; then
    ok "a flipped data byte under the old digest is refused"
else
    fail "a flipped data byte under the old digest is refused (rc $rc)"
    sed 's/^/# /' "$T/r.out"
fi

check "B: auditor clean after the refusals" xlh "$B" audit
[ "$(cat "$B/ferry-hv.pid")" = "$pid0" ] && kill -0 "$pid0" &&
    ok "B: the daemon is the same, alive" ||
    fail "B: the daemon is the same, alive"
tick1=$(last_tick)
[ -n "$tick0" ] && [ -n "$tick1" ] && [ "$tick1" -gt "$tick0" ] &&
    ok "B: the ticker kept running (tick $tick0 -> $tick1)" ||
    fail "B: the ticker kept running ('$tick0' -> '$tick1')"

# An unknown optional record is skipped.
"$MK" rewrite "$T/good.save" "$T/opt.save" inject-optional >/dev/null
check "an unknown optional record is skipped" \
    xlh "$B" restore -p -e "$T/opt.save"
xlh "$B" destroy checksum

# Only what Xen's minimal PV stream holds (reference 1.8), no digest.
"$MK" rewrite "$T/good.save" "$T/min.save" --digest=none minimal >/dev/null
"$MK" dump "$T/min.save" | awk '$1 == "libxc" { print $2 }' | sort -u |
    tr '\n' ' ' >"$T/min.types"
min="END PAGE_DATA STATIC_DATA_END X86_PV_INFO X86_PV_P2M_FRAMES"
[ "$(cat "$T/min.types")" = "$min X86_PV_VCPU_BASIC " ] &&
    ok "the minimal stream holds only the minimal records" ||
    fail "the minimal stream holds: $(cat "$T/min.types")"
xlh "$B" restore -e "$T/min.save" >"$T/min.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'no ferry digest: not checked' "$T/min.out" &&
    ok "the minimal stream restores" ||
    { fail "the minimal stream restores (rc $rc)"
      sed 's/^/# /' "$T/min.out"; }
wait_for 10 console_has "$B" checksum 'checksum: resumed, cancelled=0' &&
    ok "its guest runs: 'checksum: resumed, cancelled=0'" ||
    { fail "its guest runs"; console_dump "$B" checksum | sed 's/^/# /'; }
xlh "$B" destroy checksum

# The last pass's copy of an L1 table is the one the domain gets.
"$MK" rewrite "$T/good.save" "$T/resend.save" resend-l1-avail >/dev/null
before=$("$MK" l1-entry "$T/good.save")
want=$("$MK" l1-entry "$T/resend.save")
xlh "$B" restore -e "$T/resend.save" >"$T/rs.out" 2>&1
rc=$?
[ $rc -eq 0 ] &&
    wait_for 10 console_has "$B" checksum 'checksum: resumed, cancelled=0' &&
    ok "an L1 sent again in a last pass restores and the guest runs" ||
    { fail "an L1 sent again in a last pass restores (rc $rc)"
      sed 's/^/# /' "$T/rs.out"; }
xlh "$B" save checksum "$T/again.save" >/dev/null 2>&1
after=$("$MK" l1-entry "$T/again.save")
# The first copy lacks bit 9 (0x200); the last pass's copy has it.
[ -n "$after" ] && [ "$after" = "$want" ] && [ "$after" != "$before" ] &&
    ok "saved again, the L1 holds the last pass's copy ($after)" ||
    fail "saved again, the L1 holds '$after', expected '$want'"
check "B: auditor clean at the end" xlh "$B" audit
check "A: auditor clean at the end" xlh "$A" audit
xlh "$B" destroy checksum
xlh "$B" destroy tick
done_testing
