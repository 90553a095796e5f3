#!/bin/sh
# A console attached before the domain ends gets every byte the guest
# wrote, even when its monitor destroys it the moment it powers off
# (on_poweroff = "destroy"): xl create -c, xl create then xl console, and
# a restored domain with its monitor.  The checksum guest's last line,
# "result: ...", is written just before it powers off.
. "$(dirname "$0")/lib.sh"

plan 9
start_host A 128M || exit 99
h=$T/A
cfg=$top_srcdir/examples/checksum.cfg
to=$((60 * ${FERRY_TEST_TIMEOUT_MULTIPLIER:-1}))

# xl create -c of a short run, a few times: the console shows the whole
# output, from "checksum: up" to "result:", and xl exits 0.
good=0
for i in 1 2 3 4 5; do
    timeout "$to" "$XL" -H "$h" create -q -c "$cfg" 'cmdline="steps=2000"' \
        "name=\"c$i\"" >"$T/c$i.out" 2>&1 </dev/null && \
        grep -q '^checksum: up' "$T/c$i.out" &&
        grep -q '^result: [0-9a-f]\{16\}$' "$T/c$i.out" &&
        good=$((good + 1))
done
[ "$good" = 5 ] && ok "xl create -c: the result line every time (5 runs)" ||
    { fail "xl create -c: the result line every time ($good of 5)"; sed 's/^/# /' "$T"/c*.out; }
wait_for 10 no_domain "$h" c5 && ok "the monitor destroyed the domains" ||
    fail "the monitor destroyed the domains"

# xl create, then xl console attached while it runs (about a second).
check "xl create checksum (with its monitor)" \
    xlh "$h" create -q "$cfg" 'cmdline="steps=200000"' 'name="long"'
timeout "$to" "$XL" -H "$h" console long >"$T/long.out" 2>&1 </dev/null
rc=$?
if [ "$rc" = 0 ] && grep -q '^result: [0-9a-f]\{16\}$' "$T/long.out"; then
    ok "xl console attached before the end gets the result line"
else
    fail "xl console attached before the end gets the result line (rc=$rc)"
    sed 's/^/# /' "$T/long.out"
fi
# (The console ends when the guest has shut down; its monitor destroys
# it a moment later.)
wait_for "$to" no_domain "$h" long &&
    ok "and the domain is gone (the monitor destroyed it)" ||
    fail "and the domain is gone"

# A restored domain with its monitor: save it mid-run (about 8 s of
# work, so that a loaded machine still saves it before the end), restore
# it, attach.
check "xl create checksum -e" \
    xlh "$h" create -q -e "$cfg" 'cmdline="steps=2000000"' 'name="rs"'
wait_for 10 console_has "$h" rs "checksum: up" || diag "rs did not start"
check "xl save" xlh "$h" save rs "$T/rs.save"
check "xl restore (with its monitor)" xlh "$h" restore "$T/rs.save"
timeout "$to" "$XL" -H "$h" console rs >"$T/rs.out" 2>&1 </dev/null
if grep -q '^result: [0-9a-f]\{16\}$' "$T/rs.out" &&
   wait_for "$to" no_domain "$h" rs; then
    ok "restored: the console gets the result line, then the domain is gone"
else
    fail "restored: the console gets the result line"
    sed 's/^/# /' "$T/rs.out"; xlh "$h" list | sed 's/^/# /'
fi
done_testing
