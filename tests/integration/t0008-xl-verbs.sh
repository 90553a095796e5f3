#!/bin/sh
# The verbs scripts use: xl help (every verb of the table, each with its
# line and its man-page entry), domid, domname, rename, uptime, vcpu-list,
# mem-max, dmesg -c and reboot, with Xen's xl formats and messages.
. "$(dirname "$0")/lib.sh"

plan 23
start_host A 128M || exit 99
h=$T/A
cfg=$top_srcdir/examples/idle.cfg

# xl help: exit 0, one line per verb, each verb in xl.1.
if xlh "$h" help >"$T/help" 2>&1; then ok "xl help exits 0"; else
    fail "xl help exits 0"; sed 's/^/# /' "$T/help"; fi
verbs=$(sed -n 's/^ \([a-z][a-z-]*\)  *[A-Z].*/\1/p' "$T/help")
n=$(echo "$verbs" | wc -w)
missing=""
for v in create list destroy shutdown reboot console pause unpause suspend \
         resume save restore migrate info dmesg domid domname rename uptime \
         vcpu-list mem-max help; do
    echo "$verbs" | grep -qx -- "$v" || missing="$missing $v"
done
[ -z "$missing" ] && [ "$n" -ge 22 ] &&
    ok "xl help lists every verb with a description ($n)" ||
    { fail "xl help lists every verb (missing:$missing)"; sed 's/^/# /' "$T/help"; }
undoc=""
for v in $verbs; do
    [ "$v" = migrate-receive ] && continue     # internal, as in Xen's xl.1
    lit="\\fB$(echo "$v" | sed 's/-/\\-/g')\\fR"
    grep -qF -- "$lit" "$top_srcdir/man/xl.1" ||
        grep -qF -- "\\fB$v\\fR" "$top_srcdir/man/xl.1" ||
        grep -qx -- ".B $v" "$top_srcdir/man/xl.1" || undoc="$undoc $v"
done
[ -z "$undoc" ] && ok "every listed verb has its entry in xl.1" ||
    fail "verbs without an entry in xl.1:$undoc"
xlh "$h" help rename >"$T/out" 2>&1 && grep -q '^Usage: xl .*rename <Domain> <NewDomainName>' "$T/out" &&
    ok "xl help VERB prints its usage" || { fail "xl help VERB prints its usage"; sed 's/^/# /' "$T/out"; }
check_fails "xl help of an unknown verb fails" xlh "$h" help nosuch

check "xl create idle" xlh "$h" create -q "$cfg"
wait_for 10 console_has "$h" idle "idle: up" || diag "idle did not start"
id=$(domid_of "$h" idle)

# domid and domname.
[ "$(xlh "$h" domid idle)" = "$id" ] && ok "xl domid idle -> $id" || fail "xl domid idle"
[ "$(xlh "$h" domname "$id")" = idle ] && ok "xl domname $id -> idle" || fail "xl domname $id"
[ "$(xlh "$h" domname 0)" = Domain-0 ] && ok "xl domname 0 -> Domain-0" || fail "xl domname 0"
xlh "$h" domid nosuch >"$T/out" 2>&1
[ $? = 1 ] && grep -q "Can't get domid of domain name 'nosuch', maybe this domain does not exist." "$T/out" &&
    ok "xl domid of no domain: Xen's message, exit 1" || { fail "xl domid of no domain"; sed 's/^/# /' "$T/out"; }
xlh "$h" domname 999 >"$T/out" 2>&1
[ $? = 1 ] && grep -q "Can't get domain name of domain id '999', maybe this domain does not exist." "$T/out" &&
    ok "xl domname of no domain: Xen's message, exit 1" || { fail "xl domname of no domain"; sed 's/^/# /' "$T/out"; }

# vcpu-list: Xen's header and a line for the guest's vCPU 0.
xlh "$h" vcpu-list idle >"$T/out" 2>&1
if head -1 "$T/out" | grep -q '^Name  *ID  *VCPU  *CPU State   Time(s) Affinity (Hard / Soft)$' &&
   grep -Eq "^idle +$id +0 +[0-9]+ +[-r][-b]- +[0-9]+\.[0-9]  all / all$" "$T/out"; then
    ok "xl vcpu-list: Xen's columns, vCPU 0 of idle"
else
    fail "xl vcpu-list"; sed 's/^/# /' "$T/out"
fi

# uptime: Xen's long and short formats; the guest's runs from its create.
sleep 1
xlh "$h" uptime >"$T/out" 2>&1
if grep -Eq '^Name +ID Uptime$' "$T/out" &&
   grep -Eq "^Domain-0 +0 +[ 0-9]?[0-9]:[0-9][0-9]:[0-9][0-9]$" "$T/out" &&
   grep -Eq "^idle +$id +0:00:0[1-9]$|^idle +$id +0:00:[1-5][0-9]$" "$T/out"; then
    ok "xl uptime: every domain, H:MM:SS since it started"
else
    fail "xl uptime"; sed 's/^/# /' "$T/out"
fi
xlh "$h" uptime -s idle | grep -Eq "^ [0-9][0-9]:[0-9][0-9]:[0-9][0-9] up +0:00, idle \\($id\\)$" &&
    ok "xl uptime -s: uptime(1)'s short form" || { fail "xl uptime -s"; xlh "$h" uptime -s idle | sed 's/^/# /'; }

# rename: the new name resolves, a taken name is refused.
check "xl rename idle idle2" xlh "$h" rename idle idle2
[ "$(xlh "$h" domid idle2)" = "$id" ] && no_domain "$h" idle &&
    ok "the domain is idle2 now" || fail "the domain is idle2 now"
check "xl create a second idle" xlh "$h" create -q -e "$cfg"
xlh "$h" rename idle2 idle >"$T/out" 2>&1
[ $? = 1 ] && grep -q "Can't rename domain 'idle2'." "$T/out" &&
    [ "$(xlh "$h" domid idle2)" = "$id" ] &&
    ok "renaming to a taken name fails and changes nothing" ||
    { fail "renaming to a taken name fails"; sed 's/^/# /' "$T/out"; }
xlh "$h" destroy idle

# mem-max: Xen's sizes; a bad or overflowing size is refused.
check "xl mem-max idle2 64 (MiB)" xlh "$h" mem-max idle2 64
check "xl mem-max idle2 65536k" xlh "$h" mem-max idle2 65536k
xlh "$h" mem-max idle2 99999999999999t >"$T/out" 2>&1
[ $? = 1 ] && grep -q "invalid memory size: 99999999999999t" "$T/out" &&
    ok "xl mem-max refuses a size that overflows" || { fail "mem-max overflow"; sed 's/^/# /' "$T/out"; }

# reboot: the guest reboots itself, the monitor applies on_reboot =
# "restart", and the new domain keeps the name the old one had.
xlh "$h" reboot -w idle2 >"$T/out" 2>&1
if grep -q "^Rebooting domain $id$" "$T/out" &&
   wait_for 10 sh -c "\"$XL\" -H \"$h\" domid idle2 | grep -qvx $id" &&
   wait_for 10 console_has "$h" idle2 "idle: up"; then
    ok "xl reboot: restarted as a new idle2 domain ($(xlh "$h" domid idle2))"
else
    fail "xl reboot"; sed 's/^/# /' "$T/out"; xlh "$h" list | sed 's/^/# /'
fi

# dmesg -c: prints, then the next dmesg starts after what was printed.
xlh "$h" dmesg >"$T/d1"
xlh "$h" dmesg -c >"$T/d2"
xlh "$h" dmesg >"$T/d3"
if [ -s "$T/d1" ] && [ -s "$T/d2" ] && [ "$(wc -l <"$T/d3")" -lt "$(wc -l <"$T/d2")" ] &&
   ! grep -qF "$(head -1 "$T/d2")" "$T/d3"; then
    ok "xl dmesg -c clears what it printed ($(wc -l <"$T/d2") lines, then $(wc -l <"$T/d3"))"
else
    fail "xl dmesg -c clears"; wc -l "$T/d1" "$T/d2" "$T/d3" | sed 's/^/# /'
fi
xlh "$h" destroy idle2
done_testing
