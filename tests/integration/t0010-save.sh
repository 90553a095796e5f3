#!/bin/sh
# xl save: a saved file starts with the xl magic; with -c the guest's
# suspend is cancelled and it runs on, without -c the domain is gone; a
# save that cannot write its file fails, leaves an existing file as it
# was and lets the guest run on; a save that fails once the guest is
# suspended (ticker shuts down for suspend without unmapping shared_info,
# which is not its own frame) leaves an existing file untouched and the
# domain in place; a guest that has powered off or is paused is refused
# at once and left as it was; the auditor agrees throughout.
. "$(dirname "$0")/lib.sh"

plan 25
start_host A 64M || exit 99
h=$T/A
free0=$(free_mib "$h")
magic='Xen saved domain, xl format'

check "xl create idle" xlh "$h" create -e "$top_srcdir/examples/idle.cfg"
wait_for 10 console_has "$h" idle "idle: up" || diag "idle did not start"

# xl save -c: the file is written and the guest keeps running.
if xlh "$h" save -c idle "$T/idle.save" >"$T/save.out" 2>&1; then
    ok "xl save -c exits 0"
else
    fail "xl save -c exits 0"; sed 's/^/# /' "$T/save.out"
fi
grep -q "^Saving to $T/idle.save new xl format (info 0x3/0x80000000/[0-9]*)$" \
    "$T/save.out" && ok "it prints xl's \"Saving to\" line" ||
    { fail "it prints xl's \"Saving to\" line"; sed 's/^/# /' "$T/save.out"; }
[ "$(head -c 27 "$T/idle.save" 2>/dev/null)" = "$magic" ] &&
    ok "the file starts with the xl magic" ||
    fail "the file starts with the xl magic"
# 16 MiB of memory: all 4096 PFNs are in the file, the pages nothing
# wrote as XALLOC (their PFN only), the rest with their data.
FERRY_RUNDIR=$T/nohost "$XL" stream-info "$T/idle.save" >"$T/si.out" 2>&1
grep -qx 'pfns_distinct: 4096' "$T/si.out" &&
    ok "the file holds every page ($(grep -E '^pages_(data|xalloc):' \
        "$T/si.out" | tr '\n' ' '))" ||
    { fail "the file holds every page"; sed 's/^/# /' "$T/si.out"; }
if wait_for 10 console_has "$h" idle "idle: resumed, cancelled=1" &&
   xlh "$h" list idle | grep -Eq -- ' -b---- | r----- '; then
    ok "-c: the suspend is cancelled and the guest runs on"
else
    fail "-c: the guest runs on"; console_dump "$h" idle | sed 's/^/# /'
    xlh "$h" list | sed 's/^/# /'
fi
check "the auditor is clean after xl save -c" xlh "$h" audit
ls "$T"/idle.save.tmp-* >/dev/null 2>&1 && fail "no temporary file is left" ||
    ok "no temporary file is left"

# A save that cannot create its file fails before touching the guest
# (a directory that does not exist: unwritable even for root).
if xlh "$h" save idle "$T/nodir/idle.save" >"$T/bad.out" 2>&1; then
    fail "a save to an unwritable path fails"
else
    grep -q "Failed to open temp file $T/nodir/idle.save for writing" \
        "$T/bad.out" && ok "a save to an unwritable path fails" ||
        { fail "the failure is reported"; sed 's/^/# /' "$T/bad.out"; }
fi
xlh "$h" list idle | grep -Eq -- ' -b---- | r----- ' &&
    ok "after the failed save the guest still runs" ||
    { fail "after the failed save the guest still runs"
      xlh "$h" list | sed 's/^/# /'; }

# -p: saved, then left paused; unpause lets it run on.
check "xl save -p" xlh "$h" save -p idle "$T/idle2.save"
xlh "$h" list idle | grep -q -- '--p---' &&
    ok "-p: the domain is left paused" ||
    { fail "-p: the domain is left paused"; xlh "$h" list | sed 's/^/# /'; }
xlh "$h" unpause idle

# Plain xl save: the file replaces the old one and the domain is gone.
rm -f "$T/idle.save"
check "xl save (no -c)" xlh "$h" save idle "$T/idle.save"
[ "$(head -c 27 "$T/idle.save" 2>/dev/null)" = "$magic" ] &&
    ok "the file is written" || fail "the file is written"
if xlh "$h" list idle >/dev/null 2>&1; then
    fail "the domain is destroyed after the save"
else
    ok "the domain is destroyed after the save"
fi
[ "$(free_mib "$h")" = "$free0" ] && ok "every frame came back" ||
    fail "every frame came back"

printf 'name = "tick"\nmemory = 8\nkernel = "%s"\n' \
    "$top_builddir/tests/guests/ticker.img" >"$T/tick.cfg"
check "xl create ticker" xlh "$h" create -e "$T/tick.cfg"
wait_for 10 console_has "$h" tick "tick 1" || diag "ticker did not start"
echo "old contents" >"$T/tick.save"
if xlh "$h" save tick "$T/tick.save" >"$T/tick.out" 2>&1; then
    fail "a save failing after the suspend exits 1"
else
    ok "a save failing after the suspend exits 1"
fi
grep -q "Bad mfn for L1" "$T/tick.out" &&
    grep -q "^Failed to save domain, resuming domain$" "$T/tick.out" &&
    ok "it names the bad frame and says it resumes the domain" ||
    { fail "it names the bad frame and resumes"; sed 's/^/# /' "$T/tick.out"; }
[ "$(cat "$T/tick.save")" = "old contents" ] &&
    ! ls "$T"/tick.save.tmp-* >/dev/null 2>&1 &&
    ok "the existing file is untouched and no temporary file is left" ||
    fail "the existing file is untouched and no temporary file is left"
xlh "$h" list tick >/dev/null 2>&1 && ok "the domain is not destroyed" ||
    fail "the domain is not destroyed"
xlh "$h" destroy tick

# A guest that cannot suspend is refused at once, not after the timeout,
# and is left as it was: a save must not resume a powered-off guest.
check "xl create checksum (a short run)" xlh "$h" create -e \
    "$top_srcdir/examples/checksum.cfg" 'cmdline="steps=1000"'
wait_for 20 finished "$h" checksum || diag "checksum did not finish"
s0=$(date +%s)
xlh "$h" save checksum "$T/off.save" >"$T/off.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $(($(date +%s) - s0)) -lt 10 ] &&
   grep -q "^domain [0-9]* cannot suspend: it has shut down (poweroff)$" \
       "$T/off.out" && [ ! -e "$T/off.save" ] && finished "$h" checksum; then
    ok "a powered-off domain: refused at once, says why, stays shut down"
else
    fail "a powered-off domain: refused at once (rc $rc)"
    sed 's/^/# /' "$T/off.out"; xlh "$h" list | sed 's/^/# /'
fi
xlh "$h" destroy checksum
xlh "$h" create -p -e "$top_srcdir/examples/idle.cfg" >/dev/null 2>&1
xlh "$h" suspend idle >"$T/paused.out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "cannot suspend: it is paused" "$T/paused.out" &&
    xlh "$h" list idle | grep -q -- '--p---' &&
    ok "a paused domain: xl suspend refuses it at once and it stays paused" ||
    { fail "a paused domain: xl suspend refuses it (rc $rc)"
      sed 's/^/# /' "$T/paused.out"; }
xlh "$h" destroy idle
check "the auditor is clean at the end" xlh "$h" audit
done_testing
