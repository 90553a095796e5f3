#!/bin/sh
# A create that fails (here: more memory than the host has) exits 1 and
# leaves nothing behind: no half-built domain holding memory, and no
# monitor process, with -e or without (xl.1, "create").
. "$(dirname "$0")/lib.sh"

plan 8
start_host A 64M || exit 99
h=$T/A
free0=$(free_mib "$h")
cfg=$top_srcdir/examples/idle.cfg

# Processes that name this host's run directory: xl's monitors keep the
# argv of the xl create that forked them.  (Only looked at, never killed.)
monitors() { ps -eo pid=,args= | grep -F -- "$h" | grep -v grep | grep -c ' create '; }

for e in "" -e; do
    # shellcheck disable=SC2086
    xlh "$h" create $e -q "$cfg" memory=4096 'name="big"' >"$T/out" 2>&1
    rc=$?
    if [ "$rc" = 1 ] && grep -q "Cannot allocate memory" "$T/out"; then
        ok "create ${e:-(monitor)} beyond the host's memory exits 1 with the cause"
    else
        fail "create ${e:-(monitor)} beyond the host's memory exits 1 (rc=$rc)"
        sed 's/^/# /' "$T/out"
    fi
    if no_domain "$h" big && [ "$(free_mib "$h")" = "$free0" ]; then
        ok "create ${e:-(monitor)}: no domain left, all $free0 MiB free"
    else
        fail "create ${e:-(monitor)}: no domain left, all memory free"
        xlh "$h" list | sed 's/^/# /'; diag "free $(free_mib "$h") of $free0"
    fi
done
sleep 0.2
n=$(monitors)
[ "$n" = 0 ] && ok "no monitor process is left" ||
    { fail "no monitor process is left ($n)"; ps -eo pid=,args= | grep -F -- "$h" | sed 's/^/# /'; }

# The same host still creates a domain that fits, and exits 0.
check "a create that fits still works" xlh "$h" create -e -q "$cfg"
check "and it runs" wait_for 10 console_has "$h" idle "idle: up"
xlh "$h" destroy idle
[ "$(free_mib "$h")" = "$free0" ] && ok "destroy gave every frame back" ||
    fail "destroy gave every frame back"
done_testing
