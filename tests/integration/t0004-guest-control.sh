#!/bin/sh
# A running guest makes progress; xl pause stops it and xl unpause resumes
# it; xl shutdown makes it power off cooperatively, and the monitor xl
# create left behind applies on_poweroff=destroy.
. "$(dirname "$0")/lib.sh"

plan 15
start_host A 64M || exit 99
h=$T/A
free0=$(free_mib "$h")
printf 'name = "tick"\nmemory = 8\nkernel = "%s"\n' \
    "$top_builddir/tests/guests/ticker.img" >"$T/tick.cfg"
ticks() { console_dump "$h" tick | grep -c '^tick'; }

check "xl create (with its monitor)" xlh "$h" create "$T/tick.cfg"
wait_for 10 console_has "$h" tick "tick 2" && ok "the guest makes progress" ||
    fail "the guest makes progress"

check "xl pause" xlh "$h" pause tick
n1=$(ticks); sleep 1; n2=$(ticks)
if [ "$n1" = "$n2" ] && xlh "$h" list tick | grep -q -- '--p---'; then
    ok "paused: no progress ($n1 -> $n2), state --p---"
else
    fail "paused: no progress ($n1 -> $n2)"; xlh "$h" list | sed 's/^/# /'
fi
check "xl unpause" xlh "$h" unpause tick
sleep 1; n3=$(ticks)
[ "$n3" -gt "$n2" ] && ok "unpaused: progress again ($n2 -> $n3)" ||
    fail "unpaused: progress again ($n2 -> $n3)"

check "xl shutdown -w" timeout 20 "$XL" -H "$h" shutdown -w tick
if wait_for 10 sh -c "! \"$XL\" -H \"$h\" list tick"; then
    ok "the guest powered off and the monitor destroyed it"
else
    fail "the guest powered off and the monitor destroyed it"
    xlh "$h" list | sed 's/^/# /'
fi
[ "$(free_mib "$h")" = "$free0" ] && ok "every frame came back" ||
    fail "every frame came back"
# Suspend (what a save asks of the guest) and resume in place.
check "xl create idle" xlh "$h" create -e "$top_srcdir/examples/idle.cfg"
wait_for 10 console_has "$h" idle "idle: up" || diag "idle did not start"
check "xl suspend: the guest suspends itself" xlh "$h" suspend idle
xlh "$h" list idle | grep -q -- '---ss-' && ok "state ---ss- (shut down, reason suspend)" ||
    { fail "state ---ss-"; xlh "$h" list | sed 's/^/# /'; }
if xlh "$h" resume idle && wait_for 10 console_has "$h" idle "idle: resumed, cancelled=1" &&
   xlh "$h" list idle | grep -Eq -- ' -b---- | r----- '; then
    ok "xl resume: the suspend hypercall returns 1 and the guest runs on"
else
    fail "xl resume: the guest runs on"; console_dump "$h" idle | sed 's/^/# /'
fi
xlh "$h" destroy idle

printf 'name = "fault"\nmemory = 8\nkernel = "%s"\n' \
    "$top_builddir/tests/guests/fault.img" >"$T/fault.cfg"
check "a guest with a page-fault handler starts" xlh "$h" create -e "$T/fault.cfg"
if wait_for 10 console_has "$h" fault "fault: recovered after 1 fault(s)"; then
    ok "its handler ran once, mapped the page, and iret resumed the load"
else
    fail "its handler ran once, mapped the page, and iret resumed the load"
    console_dump "$h" fault | sed 's/^/# /'; xlh "$h" dmesg | tail -3 | sed 's/^/# /'
fi
xlh "$h" destroy fault
done_testing
