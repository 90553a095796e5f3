#!/bin/sh
# Abandoned builds (issue 10): a domain built through a builder session
# belongs to that session until the builder says the build is done.  An
# `xl restore` killed mid-stream (held on a FIFO, as t0019 does) and an
# `xl migrate-receive` killed before "go" leave no domain behind on their
# host, and every frame comes back (xl info's free memory is what it was
# before); a restore that completes keeps its domain after xl exits.
. "$(dirname "$0")/lib.sh"

plan 10
start_host A 128M || exit 99
start_host B 128M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"

# Only Domain-0 is listed on host $1.
only_dom0() { [ "$("$XL" -H "$1" list 2>/dev/null | wc -l)" = 2 ]; }
# Host $1 has a domain besides Domain-0 (named or not yet).
more_than_dom0() { [ "$("$XL" -H "$1" list 2>/dev/null | wc -l)" -gt 2 ]; }
# Host $1 has $2 MiB free.
free_is() { [ "$(free_mib "$1")" = "$2" ]; }

check "A: a domain to save" xlh "$A" create -e "$ex/idle.cfg" 'name="saved"'
check "A: xl save" xlh "$A" save saved "$T/saved.save"
free0=$(free_mib "$A")

# ---- xl restore, killed mid-stream ----------------------------------------
hold_restore "$A" "$T/saved.save"
wait_for 30 more_than_dom0 "$A" &&
    ok "A: the restore held mid-stream has built part of a domain" ||
    fail "A: no domain while the restore is held mid-stream"
kill -9 $rpid
wait $rpid 2>/dev/null
exec 3>&-
if wait_for 20 only_dom0 "$A" && wait_for 20 free_is "$A" "$free0"; then
    ok "A: xl restore killed mid-stream: no domain left, $free0 MiB free again"
else
    fail "A: xl restore killed mid-stream left $(free_mib "$A") MiB free of $free0"
    "$XL" -H "$A" list 2>&1 | sed 's/^/#   /'
fi
log_has "$A" "its builder went away before the domain was complete" &&
    ok "A: ferry-hv says why it destroyed the domain" ||
    fail "A: ferry-hv did not log the abandoned build"

# ---- xl restore that completes keeps its domain ---------------------------
check "A: xl restore to the end" xlh "$A" restore -e "$T/saved.save"
# Its builder session closed when xl exited: the domain stays and runs.
sleep 1
running "$A" saved &&
    ok "A: the restored domain outlives xl restore and runs" ||
    fail "A: the restored domain did not outlive xl restore"

# ---- xl migrate-receive, killed before "go" -------------------------------
# R stops after it wrote "ready" (its domain "saved--incoming" is built
# and named) and is killed there.  S is stopped first, so that nothing
# but the host itself can clean up after R: S's resolve would otherwise
# abort the incoming copy.
freeB=$(free_mib "$B")
FERRY_MIGRATE_FAULT=recv:ready:stop \
    "$XL" -H "$A" migrate -e saved "local:$B" >"$T/mig.out" 2>"$T/mig.err" &
spid=$!
wait_for 60 grep -q 'stopping (pid' "$T/mig.err"
kill -STOP $spid
rrpid=$(sed -n 's/.*: stopping (pid \([0-9]*\))$/\1/p' "$T/mig.err" | head -1)
"$XL" -H "$B" list 2>/dev/null | grep -q -- '^saved--incoming ' &&
    ok "B: the receiver holds saved--incoming before go" ||
    fail "B: no saved--incoming while the receiver waits for go"
[ -n "$rrpid" ] && kill -9 "$rrpid"
if wait_for 20 only_dom0 "$B" && wait_for 20 free_is "$B" "$freeB"; then
    ok "B: migrate-receive killed before go: no domain left, $freeB MiB free again"
else
    fail "B: migrate-receive killed before go left $(free_mib "$B") MiB free of $freeB"
    "$XL" -H "$B" list 2>&1 | sed 's/^/#   /'
fi
kill -CONT $spid
wait $spid
rc=$?
[ $rc = 1 ] && running "$A" saved &&
    ok "A: the sender resumed its copy (exit 1)" ||
    { fail "A: the sender exited $rc, or saved does not run on A"
      sed 's/^/# S: /' "$T/mig.err" | tail -10; }
done_testing
