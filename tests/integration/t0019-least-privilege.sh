#!/bin/sh
# least_privilege (issue 10): a builder session, the kind a stream parser
# (xl restore, xl migrate-receive) builds its domain through, gets no
# machine memory, acts only on the domain it created and writes only its
# frames; a control session writes none.  Tried by least-priv against a
# victim domain, which runs on untouched; then an xl restore, held
# mid-stream, is seen to hold its staging area and no machine memory.
. "$(dirname "$0")/lib.sh"

plan 49
start_host A 128M || exit 99
A=$T/A
ex="$top_srcdir/examples"

xlh "$A" create -e "$ex/idle.cfg" 'name="victim"' || exit 99
victim=$(domid_of "$A" victim)
# least-priv prints its own plan's checks; ours follow them.
"$top_builddir/tests/integration/least-priv" "$A" "$victim" |
    grep -v '^1\.\.' >"$T/lp.out"
cat "$T/lp.out"
_n=$(grep -c '^\(not \)\{0,1\}ok ' "$T/lp.out")
grep -q '^not ok' "$T/lp.out" && _failed=$((_failed + 1))
[ "$_n" = 42 ] && ok "least-priv ran all its checks" ||
    fail "least-priv ran $_n checks of 42"
check "the victim still runs" running "$A" victim
check "A: a domain to save" xlh "$A" create -e "$ex/idle.cfg" 'name="saved"'
check "A: xl save" xlh "$A" save saved "$T/saved.save"
# The restore reads from a FIFO and is held mid-stream (after its first
# batches of pages), so that what the process holds can be looked at:
# its staging area, and nothing of machine memory.  xl restore opens the
# file twice: first its xl header and config (48 bytes and the config's
# length at offset 44), then the stream.  One writer keeps the FIFO open
# throughout, so that the second open finds it (no race with a writer
# closing) and nothing is written while no reader is there.
mkfifo "$T/fifo"
"$XL" -H "$A" restore -e "$T/fifo" >"$T/restore.out" 2>&1 &
rpid=$!
exec 3>"$T/fifo"
hdr=$((48 + $(od -An -tu4 -j44 -N4 "$T/saved.save")))
head -c $hdr "$T/saved.save" >&3
reopened() {
    grep -q 'Parsing config' "$T/restore.out" &&
        ls -l "/proc/$rpid/fd" | grep -q "$T/fifo"
}
wait_for 30 reopened || diag "xl restore did not open the stream again"
head -c 9000000 "$T/saved.save" >&3
sleep 1
staging=$(grep -c ferry-staging "/proc/$rpid/maps")
machine=$( (cat "/proc/$rpid/maps"; ls -l "/proc/$rpid/fd") |
    grep -c ferry-machine-memory)
tail -c +9000001 "$T/saved.save" >&3
exec 3>&-
wait $rpid
rc=$?
[ "$staging" -ge 1 ] && [ "$machine" = 0 ] &&
    ok "xl restore mid-stream: a staging area, no machine memory" ||
    fail "xl restore mid-stream: $staging staging, $machine machine-memory maps or fds"
[ $rc = 0 ] && running "$A" saved &&
    ok "A: xl restore through a builder session, and the domain runs" ||
    { fail "A: xl restore through a builder session (exit $rc)"
      sed 's/^/# /' "$T/restore.out"; }
check "A: auditor clean" xlh "$A" audit
done_testing
