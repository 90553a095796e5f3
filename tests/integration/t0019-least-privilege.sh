#!/bin/sh
# least_privilege (issue 10): a builder session, the kind a stream parser
# (xl restore, xl migrate-receive) builds its domain through, gets no
# machine memory, acts only on the domain it created and writes only its
# frames; a control session writes none.  Tried by least-priv against a
# victim domain, which runs on untouched; then an xl restore, held
# mid-stream, is seen to hold its staging area and no machine memory.
# The stream is parsed by a confined child (xl/xl-sandbox.c): sandbox-probe
# confines itself the same way and, in the middle of restoring a save
# file, tries what a taken-over parser would (a new session, the daemon's
# memory, ptrace, exec...), each refused while the restore goes on; and
# the parsing child of a held xl restore and of a held migrate-receive
# shows seccomp filtering and no_new_privs in /proc/PID/status.
. "$(dirname "$0")/lib.sh"

plan 73
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
# The confinement from inside, in the middle of a stream.
"$top_builddir/tests/integration/sandbox-probe" "$A" "$(cat "$A/ferry-hv.pid")" \
    "$T/saved.save" >"$T/probe.out" 2>"$T/probe.err"
# Its checks, numbered in our sequence.
while IFS= read -r line; do
    case $line in
    "ok "*) ok "${line#ok * - }" ;;
    "not ok "*) fail "${line#not ok * - }" ;;
    "#"*) echo "$line" ;;
    esac
done <"$T/probe.out"
pn=$(grep -c '^\(not \)\{0,1\}ok ' "$T/probe.out")
grep -q '^not ok' "$T/probe.out" && sed 's/^/# /' "$T/probe.err"
[ "$pn" = 17 ] && ok "sandbox-probe ran all its checks" ||
    fail "sandbox-probe ran $pn checks of 17"

# The children of pid $1.
children_of() {
    grep -l "^PPid:[[:space:]]*$1\$" /proc/[0-9]*/status 2>/dev/null |
        sed 's|^/proc/||; s|/status$||'
}
# "<Seccomp> <NoNewPrivs>" of pid $1: "2 1" when confined.
confinement() {
    awk '/^Seccomp:/ {s = $2} /^NoNewPrivs:/ {n = $2}
         END {print s " " n}' "/proc/$1/status" 2>/dev/null
}

hold_restore "$A" "$T/saved.save"
sleep 1
parser=$(children_of $rpid | head -1)
staging=$(grep -c ferry-staging "/proc/${parser:-0}/maps" 2>/dev/null)
machine=$(for p in $rpid $parser; do
        cat "/proc/$p/maps"; ls -l "/proc/$p/fd"; done 2>/dev/null |
    grep -c ferry-machine-memory)
conf=$(confinement "${parser:-0}")
[ -n "$parser" ] && [ "$conf" = "2 1" ] &&
    ok "xl restore mid-stream: its parser (pid $parser) is confined" ||
    fail "xl restore mid-stream: parser '${parser}', Seccomp/NoNewPrivs '$conf'"
tail -c +9000001 "$T/saved.save" >&3
exec 3>&-
wait $rpid
rc=$?
[ "${staging:-0}" -ge 1 ] && [ "$machine" = 0 ] &&
    ok "xl restore mid-stream: a staging area, no machine memory" ||
    fail "xl restore mid-stream: $staging staging, $machine machine-memory maps or fds"
[ $rc = 0 ] && running "$A" saved &&
    ok "A: xl restore through a builder session, and the domain runs" ||
    { fail "A: xl restore through a builder session (exit $rc)"
      sed 's/^/# /' "$T/restore.out"; }

# A migration held mid-stream (the receiver stops when its parser reports
# the last pages): the receiver's parser is confined, the receiver itself
# (which commits and forks the monitor) is not, and the migration then
# ends well.
start_host B 128M || exit 99
B=$T/B
check "A: a domain to migrate" xlh "$A" create "$ex/idle.cfg" 'name="mig"'
FERRY_MIGRATE_FAULT=recv:live:stop "$XL" -H "$A" migrate mig "local:$B" \
    >"$T/mig.out" 2>&1 &
mpid=$!
wait_for 30 grep -q 'stopping (pid' "$T/mig.out" ||
    diag "the receiver did not stop"
recv=$(sed -n 's/.*: stopping (pid \([0-9]*\))$/\1/p' "$T/mig.out" | head -1)
rparser=$(children_of "${recv:-0}" | head -1)
conf=$(confinement "${rparser:-0}")
rconf=$(confinement "${recv:-0}")
[ -n "$rparser" ] && [ "$conf" = "2 1" ] && [ "$rconf" = "0 0" ] &&
    ok "migrate-receive mid-stream: its parser (pid $rparser) is confined" ||
    fail "migrate-receive mid-stream: receiver '$recv' ($rconf), parser '$rparser' ($conf)"
[ -n "$recv" ] && kill -CONT "$recv"
wait $mpid
rc=$?
[ $rc = 0 ] && running "$B" mig && no_domain "$A" mig &&
    ok "A->B: the migration through the confined parser ends well" ||
    { fail "A->B: migration (exit $rc)"; sed 's/^/# /' "$T/mig.out"; }
check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit

# The daemon is not dumpable: another process of its user (not root)
# cannot read its /proc/PID files.  Tried with a daemon run as nobody.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    asnobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    # Outside $T, which only root may enter.
    nd=$(mktemp -d /tmp/ferry-nobody.XXXXXX) && chmod 755 "$nd" &&
        chown 65534:65534 "$nd"
    asnobody "$HV" --run-dir "$nd/run" --memory 16M >"$T/nobody.out" 2>&1
    npid=$(cat "$nd/run/ferry-hv.pid" 2>/dev/null)
    if [ -n "$npid" ] && ! asnobody cat "/proc/$npid/environ" \
            >/dev/null 2>&1; then
        ok "a daemon's own user cannot read its /proc/PID/environ"
    else
        fail "a daemon's own user reads its /proc/PID/environ (pid '$npid')"
        sed 's/^/# /' "$T/nobody.out"
    fi
    [ -n "$npid" ] && kill "$npid" &&
        wait_for 10 sh -c "! kill -0 $npid 2>/dev/null"
    rm -rf "$nd"
else
    ok "# SKIP not root, or no setpriv"
fi
done_testing
