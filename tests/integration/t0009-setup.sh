#!/bin/sh
# Setup steps a new user takes: a tcp:// listener started from the build
# tree runs its receiver without --xl (ferry-hv finds the xl of its own
# tree, not PATH's); xl create -n lists the keys ferry ignores; xl info
# KEY prints one value; a host that is not there is reported once.
. "$(dirname "$0")/lib.sh"

plan 8
start_host A 64M || exit 99
# B listens, without --xl, and with no xl in its PATH.
saved_path=$PATH
PATH=/usr/bin:/bin
FERRY_HV_EXTRA_ARGS="--migrate-listen 127.0.0.1:0 --migrate-insecure"
start_host B 64M
rc=$?
FERRY_HV_EXTRA_ARGS=
PATH=$saved_path
[ $rc = 0 ] || exit 99
A=$T/A B=$T/B
TCP_B=$(grep '^tcp://' "$B/migrate.addr")
if grep -q "receiver: .*/xl/xl" "$B/ferry-hv.log"; then
    ok "ferry-hv run from the build tree runs that tree's xl"
else
    fail "ferry-hv run from the build tree runs that tree's xl"
    grep receiver "$B/ferry-hv.log" | sed 's/^/# /'
fi
check "xl create idle on A" xlh "$A" create -q -e "$top_srcdir/examples/idle.cfg"
wait_for 10 console_has "$A" idle "idle: up" || diag "idle did not start"
xlh "$A" migrate -e --insecure idle "$TCP_B" >"$T/mig.out" 2>&1
rc=$?
if [ $rc = 0 ] && no_domain "$A" idle && running "$B" idle; then
    ok "xl migrate over tcp:// to it works (its receiver ran)"
else
    fail "xl migrate over tcp:// (rc $rc)"
    sed 's/.*\r//; s/^/# /' "$T/mig.out" | tail -8
fi

# xl create -n: the JSON on stdout, every ignored key on stderr.
cat >"$T/ign.cfg" <<CFG
name = "ign"
memory = 16
kernel = "idle"
disk = [ "phy:/dev/vg/ign,xvda,w" ]
vif = [ "bridge=xenbr0" ]
nested = 1
CFG
"$XL" create -n "$T/ign.cfg" >"$T/ign.json" 2>"$T/ign.err"
if grep -q "ign.cfg:4: ignored (not supported by ferry): disk = " "$T/ign.err" &&
   grep -q "ign.cfg:5: ignored (not supported by ferry): vif = " "$T/ign.err" &&
   grep -q "ign.cfg:6: ignored (not supported by ferry): nested = 1" "$T/ign.err"; then
    ok "xl create -n lists disk, vif and nested with their lines"
else
    fail "xl create -n lists the ignored keys"; sed 's/^/# /' "$T/ign.err"
fi
grep -q '"name": "ign"' "$T/ign.json" && ! grep -q ignored "$T/ign.json" &&
    ok "and stdout is the JSON alone" || fail "and stdout is the JSON alone"

# xl info KEY.
v=$(xlh "$A" info total_memory)
[ "$v" = 64 ] && ok "xl info total_memory prints 64" ||
    fail "xl info total_memory prints 64 (got '$v')"
xlh "$A" info no_such_key >"$T/out" 2>&1
[ $? = 1 ] && grep -q 'no key "no_such_key"' "$T/out" &&
    ok "xl info of an unknown key fails" || { fail "xl info of an unknown key fails"; sed 's/^/# /' "$T/out"; }

# No host: one line, with the cause.
"$XL" -H "$T/none" list >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ] &&
   grep -q "cannot connect to ferry-hv at $T/none/control.sock" "$T/err"; then
    ok "no host at -H DIR: one error line, exit 1"
else
    fail "no host at -H DIR: one error line (rc $rc)"; sed 's/^/# /' "$T/err"
fi
xlh "$B" destroy idle
done_testing
