#!/bin/sh
# Guests stay inside their own memory, as 64-bit PV guests on Xen do: the
# guest kernel runs in ring 3, so Xen's L4 slots 256..271 (direct map,
# M2P, linear map) and anything it has not mapped fault with the error
# code Xen delivers; no guest reads what a destroyed domain left in memory;
# the unusual things Xen permits do not disturb the hypervisor.  The daemon
# audits after every hypercall (--audit) and stops on any violation, so
# "the daemon is alive" also says the auditor found nothing.
. "$(dirname "$0")/lib.sh"

plan 22
G="$top_builddir/tests/guests"
# Without the background scrubber every freed frame is still marked when
# the next guest is built, so the allocator's own scrub is what is tested
# (tests/unit/test-scrub.c tests the scrubber and the races between them).
FERRY_HV_EXTRA_ARGS="--audit --no-background-scrub" start_host A 64M || exit 99
h=$T/A
pid=$(cat "$h/ferry-hv.pid")
free0=$(free_mib "$h")

mkcfg() {
    printf 'name = "%s"\nmemory = %s\nkernel = "%s"\n' "$1" "$2" "$G/$3.img" \
        >"$T/$1.cfg"
}
ticks() { console_dump "$h" victim | grep -c '^tick'; }
alive() { kill -0 "$pid" 2>/dev/null; }
# Console text, or a dead daemon (then waiting longer is pointless).
shows() { ! alive || console_has "$h" "$@"; }
# same WHAT EXPECTED-FILE ACTUAL-FILE: one check, the diff on failure.
same() {
    if diff "$2" "$3" >"$T/diff"; then ok "$1"; else
        fail "$1"; sed 's/^/# /' "$T/diff"; fi
}

mkcfg victim 8 ticker
check "a victim domain starts" xlh "$h" create -e "$T/victim.cfg"
wait_for 10 shows victim "tick 3" && alive && ok "the victim ticks" || fail "the victim ticks"

# --- Every access outside the guest's own mappings faults. ------------
# Error codes as a PV kernel sees them (Xen clears U/S for kernel mode):
# 0 not present, 1 protection (read), 2/3 the same for a write, 0x11 an
# instruction fetch from a no-execute page; vec 0d is #GP.  Slot 256 is the
# read-only M2P, which a PV kernel may read (not write), as on Xen.
mkcfg isolation 8 hostile-isolation
check "the isolation guest starts" xlh "$h" create -e "$T/isolation.cfg"
wait_for 20 shows isolation "isolation: done" || diag "the isolation guest did not finish"
console_dump "$h" isolation >"$T/isolation.out"
cat >"$T/slots.want" <<'W'
isolation: R ffff800000000000 vec=ff ec=0000 cr2=0000000000000000
isolation: W ffff800000000000 vec=0e ec=0003 cr2=ffff800000000000
isolation: R ffff808000000000 vec=0e ec=0000 cr2=ffff808000000000
isolation: W ffff808000000000 vec=0e ec=0002 cr2=ffff808000000000
isolation: R ffff8140a0502000 vec=0e ec=0001 cr2=ffff8140a0502000
isolation: W ffff8140a0502000 vec=0e ec=0003 cr2=ffff8140a0502000
isolation: R ffff818000000000 vec=0e ec=0000 cr2=ffff818000000000
isolation: W ffff818000000000 vec=0e ec=0002 cr2=ffff818000000000
isolation: R ffff820000000000 vec=0e ec=0000 cr2=ffff820000000000
isolation: W ffff820000000000 vec=0e ec=0002 cr2=ffff820000000000
isolation: R ffff828000000000 vec=0e ec=0001 cr2=ffff828000000000
isolation: W ffff828000000000 vec=0e ec=0003 cr2=ffff828000000000
isolation: R ffff830000000000 vec=0e ec=0001 cr2=ffff830000000000
isolation: W ffff830000000000 vec=0e ec=0003 cr2=ffff830000000000
isolation: R ffff838000000000 vec=0e ec=0000 cr2=ffff838000000000
isolation: W ffff838000000000 vec=0e ec=0002 cr2=ffff838000000000
isolation: R ffff840000000000 vec=0e ec=0000 cr2=ffff840000000000
isolation: W ffff840000000000 vec=0e ec=0002 cr2=ffff840000000000
isolation: R ffff848000000000 vec=0e ec=0000 cr2=ffff848000000000
isolation: W ffff848000000000 vec=0e ec=0002 cr2=ffff848000000000
isolation: R ffff850000000000 vec=0e ec=0000 cr2=ffff850000000000
isolation: W ffff850000000000 vec=0e ec=0002 cr2=ffff850000000000
isolation: R ffff858000000000 vec=0e ec=0000 cr2=ffff858000000000
isolation: W ffff858000000000 vec=0e ec=0002 cr2=ffff858000000000
isolation: R ffff860000000000 vec=0e ec=0000 cr2=ffff860000000000
isolation: W ffff860000000000 vec=0e ec=0002 cr2=ffff860000000000
isolation: R ffff868000000000 vec=0e ec=0000 cr2=ffff868000000000
isolation: W ffff868000000000 vec=0e ec=0002 cr2=ffff868000000000
isolation: R ffff870000000000 vec=0e ec=0000 cr2=ffff870000000000
isolation: W ffff870000000000 vec=0e ec=0002 cr2=ffff870000000000
isolation: R ffff878000000000 vec=0e ec=0000 cr2=ffff878000000000
isolation: W ffff878000000000 vec=0e ec=0002 cr2=ffff878000000000
W
sed -n '1,32p' "$T/isolation.out" >"$T/slots.got"
same "reading or writing each of L4 slots 256..271 faults as on Xen" "$T/slots.want" "$T/slots.got"
cat >"$T/other.want" <<'W'
isolation: X ffff830000000000 vec=0e ec=0011 cr2=ffff830000000000
isolation: R 0000700000000000 vec=0e ec=0000 cr2=0000700000000000
isolation: W 0000700000000000 vec=0e ec=0002 cr2=0000700000000000
isolation: R 0000000000c00000 vec=0e ec=0000 cr2=0000000000c00000
isolation: W 0000000000c00000 vec=0e ec=0002 cr2=0000000000c00000
isolation: R 0000800000000000 vec=0d ec=0000 cr2=0000000000000000
isolation: W 000000000040c000 vec=0e ec=0003 cr2=000000000040c000
W
sed -n '33,39p' "$T/isolation.out" >"$T/other.got"
same "fetching from the direct map, unmapped, non-canonical and read-only addresses fault" "$T/other.want" "$T/other.got"
cat >"$T/hcall.want" <<'W'
isolation: hcall-directmap  rc=fffffffffffffff2
isolation: hcall-ro-m2p     rc=fffffffffffffff2
isolation: done
W
sed -n '40,$p' "$T/isolation.out" >"$T/hcall.got"
same "hypercall pointers into Xen's range: -EFAULT" "$T/hcall.want" "$T/hcall.got"

mkcfg directmap 8 hostile-directmap
check "a guest reading the direct map without a handler starts" xlh "$h" create -e "$T/directmap.cfg"
if wait_for 10 sh -c "! kill -0 $pid || \"$XL\" -H \"$h\" list directmap | grep -q -- '---sc-'" && alive; then
    ok "it is crashed (state ---sc-)"
else
    fail "it is crashed (state ---sc-)"; xlh "$h" list | sed 's/^/# /'
fi
if xlh "$h" dmesg | grep -Eq 'domain crashed: vCPU 0: unhandled page fault at 0xffff830000000000 \(rip 0x[0-9a-f]+, error code 0x1, pte 0x[0-9a-f]+\)'; then
    ok "the log names the direct-map address and error code 0x1"
else
    fail "the log names the direct-map address and error code 0x1"; xlh "$h" dmesg | tail -5 | sed 's/^/# /'
fi
console_has "$h" directmap "read machine memory" && fail "it never read machine memory" || ok "it never read machine memory"

# --- What Xen permits does not stop the daemon under --audit. ----------
mkcfg legal 8 hostile-legal
check "the legal-but-unusual guest starts" xlh "$h" create -e "$T/legal.cfg"
wait_for 20 shows legal "legal: holding" || diag "the legal guest did not get to holding"
console_dump "$h" legal >"$T/legal.out"
cat >"$T/legal.want" <<'W'
legal: machphys-shinfo  rc=0000000000000000
legal: setup-table      rc=0000000000000000
legal: map-grant-frame  rc=0000000000000000
legal: device-map       rc=0000000000000000
legal: bus-addr-xor     rc=0000000000000000
legal: holding
W
same "MMU_MACHPHYS_UPDATE of its shared_info and a grant device map succeed" "$T/legal.want" "$T/legal.out"
alive && ok "the daemon is alive (audited after every hypercall)" || fail "the daemon is alive (audited after every hypercall)"
check "xl audit is clean while the device map is held" xlh "$h" audit

for d in isolation directmap legal; do xlh "$h" destroy "$d"; done
check "xl audit is clean after they are destroyed" xlh "$h" audit

# --- No guest reads a destroyed domain's memory. -----------------------
# The marker guest takes nearly all free memory, so the scanner, as big,
# is built from the frames it had.
m=$(( $(free_mib "$h") - 1 ))
mkcfg marker "$m" marker
mkcfg scan "$m" scan
check "a guest of $m MiB fills its memory with a marker" xlh "$h" create -e "$T/marker.cfg"
wait_for 30 shows marker "marker: written" || diag "the marker guest did not finish"
xlh "$h" destroy marker
check "a new guest of $m MiB starts" xlh "$h" create -e "$T/scan.cfg"
wait_for 90 shows scan "scan: words" || diag "the scanner did not finish"
words=$(printf '%016x' $(( m * 131072 + 512 )))
if console_has "$h" scan "^scan: words $words hits 0000000000000000\$"; then
    ok "it finds no marker in any of its $m MiB or its shared_info"
else
    fail "it finds no marker in any of its $m MiB or its shared_info"; console_dump "$h" scan | sed 's/^/# /'
fi

n1=$(ticks); sleep 1; n2=$(ticks)
[ "$n2" -gt "$n1" ] && ok "the victim kept ticking ($n1 -> $n2)" || fail "the victim kept ticking ($n1 -> $n2)"
alive && ok "the daemon is alive at the end" || fail "the daemon is alive at the end"
for d in scan victim; do xlh "$h" destroy "$d"; done
[ "$(free_mib "$h")" = "$free0" ] && ok "every frame came back" || fail "every frame came back"
check "the auditor is clean at the end" xlh "$h" audit
done_testing
