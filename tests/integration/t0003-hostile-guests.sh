#!/bin/sh
# Hostile guests get the errors Xen gives; the host and the other domains
# are not affected.
. "$(dirname "$0")/lib.sh"

plan 22
G="$top_builddir/tests/guests"
start_host A 64M || exit 99
h=$T/A
free0=$(free_mib "$h")

mkcfg() {
    printf 'name = "%s"\nmemory = %s\nkernel = "%s"\n' "$1" "$2" "$G/$3.img" \
        >"$T/$1.cfg"
}
ticks() { console_dump "$h" victim | grep -c '^tick'; }

mkcfg victim 8 ticker
check "a victim domain starts" xlh "$h" create -e "$T/victim.cfg"
wait_for 10 console_has "$h" victim "tick 3" && ok "the victim ticks" || fail "the victim ticks"

mkcfg hostile 8 hostile
check "the hostile guest starts" xlh "$h" create -e "$T/hostile.cfg"
wait_for 20 console_has "$h" hostile "hostile: done" || diag "hostile guest did not finish"
console_dump "$h" hostile >"$T/hostile.out"
expect() {
    if grep -q "^hostile: $1 *rc=$2\$" "$T/hostile.out"; then ok "$3"; else
        fail "$3"; sed 's/^/# /' "$T/hostile.out"; fi
}
expect map-pt-rw fffffffffffffff0 "mapping its own L4 writable: -EBUSY"
expect map-pt-ro 0000000000000000 "mapping its own L4 read-only is allowed"
expect l4-xen-slot ffffffffffffffea "writing Xen's L4 slot 258: -EINVAL"
expect pin-twice ffffffffffffffea "pinning its L4 a second time: -EINVAL"
expect pin-self-rw fffffffffffffff0 "pinning an L1 that maps itself writable: -EBUSY"
expect pin-self-ro 0000000000000000 "pinning it with a read-only self map works"
expect foreign-mapped 0000000000000000 "no frame of another domain, Xen or the free heap can be mapped"
expect gdt-pt ffffffffffffffea "its L4 as a GDT frame (set_gdt): -EINVAL"
expect desc-pt ffffffffffffffea "a descriptor written into its L4 (update_descriptor): -EINVAL"
expect otherdom-dom0 ffffffffffffffff "update_va_mapping_otherdomain for domain 0: -EPERM"
check "the auditor is clean after the hostile guest" xlh "$h" audit

mkcfg crash 8 hostile-crash
check "a guest storing into its own page table starts" xlh "$h" create -e "$T/crash.cfg"
if wait_for 10 sh -c "\"$XL\" -H \"$h\" list crash | grep -q -- '---sc-'"; then
    ok "it is crashed (state ---sc-)"
else
    fail "it is crashed (state ---sc-)"; xlh "$h" list | sed 's/^/# /'
fi
if xlh "$h" dmesg | grep -Eq 'domain crashed: vCPU 0: unhandled page fault at 0x[0-9a-f]+ \(rip 0x[0-9a-f]+, error code 0x3, pte 0x[0-9a-f]+\)'; then
    ok "the log names the address and the PTE"
else
    fail "the log names the address and the PTE"; xlh "$h" dmesg | tail -5 | sed 's/^/# /'
fi

mkcfg loop 8 hostile-loop
check "a guest looping on hypercalls starts" xlh "$h" create -e "$T/loop.cfg"
sleep 1
check "xl pause of the looping guest returns" timeout 5 "$XL" -H "$h" pause loop
n1=$(ticks); sleep 1; n2=$(ticks)
[ "$n2" -gt "$n1" ] && ok "the victim keeps ticking ($n1 -> $n2)" || fail "the victim keeps ticking ($n1 -> $n2)"
for d in loop crash hostile victim; do xlh "$h" destroy "$d"; done
[ "$(free_mib "$h")" = "$free0" ] && ok "every frame came back" || fail "every frame came back"
check "the auditor is clean at the end" xlh "$h" audit
done_testing
