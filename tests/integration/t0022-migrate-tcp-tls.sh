#!/bin/sh
# xl migrate over tcp:// and tls:// to a host's ferry-hv --migrate-listen:
# a checksum guest migrated live mid-run finishes on the target with the
# result of an uninterrupted run, over plain TCP and over mutual TLS (with
# the default TLS files of the source's run dir).  A sender whose
# certificate comes from another CA, one with a missing certificate file,
# and a client presenting no certificate at all are refused with a message
# naming the failure, and the domain keeps running on the source.  A
# migration whose link is cut mid-stream (cutproxy) fails with exit 1,
# the domain runs on at the source and finishes with the right result,
# and nothing is left on the target.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"migrate"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl migrate is not there"
    exit 77
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "1..0 # SKIP no openssl command (tests/run.sh installs it)"
    exit 77
fi
CP="$top_builddir/tests/integration/cutproxy"

plan 17
ex="$top_srcdir/examples"
STEPS='cmdline="steps=3000000"'
EXPECT=$(checksum_expect 3000000)

# ---- credentials: the fleet's, made by ferry-creds; and a rogue CA ------
C=$T/certs
{ creds A && creds B && fleet_certs "$C"; } || {
    echo "Bail out! cannot make test credentials with ferry-creds/openssl"
    exit 99; }

start_host A 256M || exit 99
start_listener B 256M --migrate-listen 127.0.0.1:0 \
    --migrate-listen tls://127.0.0.1:0 || exit 99
A=$T/A B=$T/B
# Both hosts use their default files: <run dir>/migrate.key and
# <run dir>/tls/{host.pem,host.key,ca.pem,allowed-dn}.
TCP_B=$(mig_addr "$B" tcp)
TLS_B=$(mig_addr "$B" tls)
diag "B listens on $TCP_B and $TLS_B"

# Checksum guests whose runs overlap: cs1 goes over tcp://, cs2 over
# tls://, cs3 (started last, so that it is still running) is cut; an idle
# guest, rf, is the one refused.
start_checksum() {
    xlh "$A" create -e "$ex/checksum.cfg" "$STEPS" "name=\"$1\"" \
        >/dev/null 2>&1 && wait_for 10 console_has "$A" "$1" 'up steps='
}
# migrate_ok LABEL DOMAIN TARGET ARGS...: xl migrate from A to B exits 0
# and the domain has left A.
migrate_ok() {
    label=$1 dom=$2 tgt=$3; shift 3
    xlh "$A" migrate -e "$@" "$dom" "$tgt" >"$T/mig.out" 2>"$T/mig.err"
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^Migration successful.$' "$T/mig.err" &&
       no_domain "$A" "$dom" && running "$B" "$dom"; then
        ok "$label: xl migrate exits 0, $dom left A and runs on B"
    else
        fail "$label: xl migrate (rc $rc)"
        sed 's/.*\r//; s/^/# /' "$T/mig.err" | tail -15
    fi
}
# refused LABEL PATTERN TARGET ARGS...: xl migrate of rf fails with
# exit 1, says PATTERN, rf still runs on A and B has nothing of it.
refused() {
    label=$1 pat=$2 tgt=$3; shift 3
    xlh "$A" migrate -e "$@" rf "$tgt" >"$T/ref.out" 2>"$T/ref.err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$T/ref.err" &&
       grep -q '^Migration failed, resuming at sender.$' "$T/ref.err" &&
       running "$A" rf && no_domain "$B" rf && no_leftovers "$B"; then
        ok "$label: refused, says why, the domain still runs on A"
    else
        fail "$label (rc $rc)"
        sed 's/^/# /' "$T/ref.err"
        xlh "$B" list | sed 's/^/# B: /'
    fi
}

for d in cs1 cs2; do
    start_checksum $d || diag "$d did not start on A"
done
xlh "$A" create -e "$ex/idle.cfg" 'name="rf"' >/dev/null 2>&1 ||
    diag "rf did not start on A"

# ---- tcp:// and tls:// (A's default TLS files) -------------------------------
migrate_ok "tcp://" cs1 "$TCP_B"
check "B logged the connection and the receiver's exit 0" wait_for 5 \
    log_has "$B" "migration receiver pid [0-9]* (from 127.0.0.1:[0-9]*) exited with status 0"
migrate_ok "tls://" cs2 "$TLS_B"

# ---- refusals ----------------------------------------------------------------
refused "certificate from another CA" \
    "TLS .* failed: the target refused our certificate" "$TLS_B" \
    --tls-cert "$C/rogue.pem" --tls-key "$C/rogue.key"
check "B's receiver logged the certificate it refused" wait_for 5 log_has \
    "$B" "TLS handshake with 127.0.0.1:[0-9]* failed: certificate verify failed: the client's certificate is not signed by our CA"
refused "missing certificate file" \
    "TLS certificate $T/nonexistent.pem: No such file or directory" \
    "$TLS_B" --tls-cert "$T/nonexistent.pem"
refused "target certificate from another CA" \
    "certificate verify failed: the target's certificate is not signed by our CA" \
    "$TLS_B" --tls-ca "$C/rogue-ca.pem"
refused "tls:// to a plain listener" "did not answer in TLS" \
    "tls://${TCP_B#tcp://}"
openssl s_client -connect "${TLS_B#tls://}" -CAfile "$T/fleet/ca.pem" \
    </dev/null >"$T/s_client.out" 2>&1
check "a client without a certificate: B logs the refusal" wait_for 5 \
    log_has "$B" "TLS handshake with 127.0.0.1:[0-9]* failed: the client presented no certificate"

# ---- a link cut mid-stream -------------------------------------------------
# (1 MB in: pages nothing wrote cost 8 bytes, so cs3's stream is ~3.4 MB.)
xlh "$A" destroy rf
start_checksum cs3 || diag "cs3 did not start on A"
"$CP" --cut-after 1000000 "${TCP_B#tcp://}" >"$T/cp" 2>"$T/cp.err" &
cp=$!
wait_for 5 test -s "$T/cp"
nrecv0=$(receivers_ended "$B")
xlh "$A" migrate -e cs3 "tcp://127.0.0.1:$(cat "$T/cp")" \
    >"$T/cut.out" 2>"$T/cut.err"
rc=$?
if [ $rc -eq 1 ] &&
   grep -q '^Migration failed, resuming at sender.$' "$T/cut.err" &&
   grep -q "cutting a connection after 1000000 bytes" "$T/cp.err"; then
    ok "cut after 1 MB: xl migrate exits 1, resuming at sender"
else
    fail "cut mid-stream (rc $rc)"
    sed 's/^/# /' "$T/cut.err" "$T/cp.err"
fi
sed 's/.*\r//; s/^/# /' "$T/cut.err" | tail -3
running "$A" cs3 && cpu_grows "$A" cs3 &&
    ok "cut: the domain runs on at A, its CPU time advancing" ||
    fail "cut: the domain runs on at A"
wait_for 20 more_ended "$B" "$nrecv0" || diag "B's receiver did not exit"
no_domain "$B" cs3 && no_leftovers "$B" &&
    ok "cut: nothing left on B" ||
    { fail "cut: nothing left on B"; xlh "$B" list | sed 's/^/# /'; }
kill "$cp"
wait "$cp" 2>/dev/null

# ---- the results -------------------------------------------------------------
for hd in "B cs1 tcp://" "B cs2 tls://" "A cs3 cut"; do
    set -- $hd
    eval "h=\$$1"
    # (Not there, e.g. after a failed migration: do not wait for it.)
    if "$XL" -H "$h" list "$2" >/dev/null 2>&1; then
        wait_for 90 finished "$h" "$2" || diag "$2 did not finish on $1"
    fi
    r=$(result_of "$h" "$2")
    [ "$r" = "$EXPECT" ] && ok "$3: $2 finishes on $1 with $r" ||
        fail "$3: $2 on $1: result '$r', expected '$EXPECT'"
    xlh "$h" destroy "$2" >/dev/null 2>&1
done

check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit
done_testing
