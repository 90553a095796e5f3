#!/bin/sh
# Network abuse of a migration listener, over loopback: what a peer
# without the fleet's credentials, or with them but hostile, can do to a
# host (issue 10).  Each attempt is refused with a message naming why,
# the host keeps serving, and nothing is lost: the domain runs on exactly
# one host.  Cases: an anonymous push over tcp:// (it learns nothing but
# a nonce); a push from a host with no fleet key, and with another
# fleet's key; fake targets, keyless or proving another fleet's key (the
# sender sends them nothing of the domain); a stream changed on the path
# (both sides name the failed MAC); forged resolves (a paused domain, a
# migration in progress, a local restore in progress); a TLS sender whose
# certificate is from the fleet CA but not on the allow-list; a target
# whose certificate names another host; sender and target certificates
# revoked in a CRL; plain TCP to a TLS port; silent and half-finished
# handshakes holding every slot (closed at the 10 s handshake timeout,
# after which a migration succeeds); idle connections beyond the per-peer
# limit, after which a real migration still succeeds; a sender that stops
# mid-stream (its incoming domain is destroyed at the idle timeout); a
# keyless listener.
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null 2>&1; then
    echo "1..0 # SKIP no openssl command (tests/run.sh installs it)"
    exit 77
fi
NA="$top_builddir/tests/integration/net-abuse"
CP="$top_builddir/tests/integration/cutproxy"
ex="$top_srcdir/examples"
mult=${FERRY_TEST_TIMEOUT_MULTIPLIER:-1}

plan 46

creds A && creds B || { echo "Bail out! ferry-creds failed"; exit 99; }
start_host A 192M || exit 99
start_listener B 192M --migrate-listen 127.0.0.1:0 \
    --migrate-listen tls://127.0.0.1:0 --migrate-max 4 --migrate-per-peer 2 \
    --migrate-idle-timeout 4 || exit 99
A=$T/A B=$T/B
TCP_B=$(mig_addr "$B" tcp)
TLS_B=$(mig_addr "$B" tls)
uuid_of() { "$XL" -H "$1" list -v "$2" | awk 'NR == 2 {print $7}'; }

xlh "$A" create -e "$ex/idle.cfg" 'name="rf"' 'memory=16' >/dev/null 2>&1 ||
    diag "rf did not start on A"
# refused LABEL PATTERN TARGET ARGS...: xl migrate of rf from A fails
# (exit 1), says PATTERN, rf still runs on A and B has nothing of it.
refused() {
    label=$1 pat=$2 tgt=$3; shift 3
    xlh "$A" migrate -e "$@" rf "$tgt" >"$T/ref.out" 2>"$T/ref.err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$T/ref.err" &&
       running "$A" rf && no_domain "$B" rf && no_leftovers "$B"; then
        ok "$label: refused, says why, rf runs on A only"
    else
        fail "$label (rc $rc)"
        sed 's/.*\r//; s/^/# /' "$T/ref.err" | tail -8
        xlh "$B" list | sed 's/^/# B: /'
    fi
}

# ---- tcp:// without the fleet key ------------------------------------------
"$NA" anon "${TCP_B#tcp://}" >"$T/anon" 2>&1
sed 's/^/# /' "$T/anon"
if grep -q '^got: ferry-auth 2 hmac-sha256 [0-9a-f]\{64\}|$' "$T/anon" &&
   ! grep -q "free_memkb\|$B\|xl migration receiver" "$T/anon" &&
   grep -q "^closed by the listener" "$T/anon"; then
    ok "anonymous push: told a nonce and nothing else, then closed"
else fail "anonymous push"; fi
check "... B logs that it did not authenticate" wait_for 5 log_has "$B" \
    "did not authenticate (it sent \"ferry-migrate 1 "

mv "$A/migrate.key" "$A/migrate.key.real"
refused "push from a host with no fleet key" \
    "fleet key $A/migrate.key: No such file or directory" "$TCP_B"
"$CREDS" --fleet "$T/fleet2" --name W --no-tls "$T/W" >/dev/null
cp "$T/W/migrate.key" "$A/migrate.key"
refused "push with another fleet's key" \
    "refused us: this host does not hold the target's fleet key" "$TCP_B"
check "... B logs the failed proof" wait_for 5 log_has "$B" \
    "failed authentication: it does not hold this host's fleet key"
mv "$A/migrate.key.real" "$A/migrate.key"

# ---- fake targets: the sender checks the target before any domain data -----
# fake_target LABEL PATTERN [--key F]: xl migrate of rf to a net-abuse
# target (keyless, or proving key F) fails (exit 1), says PATTERN, rf
# still runs on A, and the target got not one byte after its answer.
fake_target() {
    label=$1 pat=$2; shift 2
    "$NA" target "$@" $((5 * mult)) >"$T/ft" 2>&1 &
    ft=$!
    wait_for 5 grep -q '^port ' "$T/ft"
    xlh "$A" migrate -e rf "tcp://127.0.0.1:$(sed -n 's/^port //p' "$T/ft")" \
        >"$T/ft.out" 2>"$T/ft.err"
    rc=$?
    wait "$ft"
    sed 's/^/# /' "$T/ft"
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$T/ft.err" && running "$A" rf &&
       grep -q '^then 0 bytes from the sender, closed' "$T/ft"; then
        ok "$label: refused before any domain data, rf runs on A"
    else
        fail "$label (rc $rc)"; sed 's/.*\r//; s/^/# /' "$T/ft.err" | tail -5
    fi
}
fake_target "a keyless fake target" \
    "runs without a fleet key (ferry-hv --migrate-insecure), so it cannot prove it is the host you meant"
fake_target "a fake target proving another fleet's key" \
    "could not prove that it holds our fleet key: refusing to migrate to it" \
    --key "$T/W/migrate.key"

# ---- a stream changed on the path (1 bit, 100 KB in) ------------------------
# (rf's stream is ~160 KB: the pages it never wrote cost only their PFNs.)
"$CP" --flip-at 100000 "${TCP_B#tcp://}" >"$T/cp" 2>"$T/cp.err" &
cp=$!
wait_for 5 test -s "$T/cp"
# The sender reports B's reason, not only that its writes failed (while
# it still writes, or, the stream being short, once it has written all).
refused "a stream changed on the path" \
    "the target \(says\|failed\): .*record [0-9]* from 127.0.0.1:[0-9]* failed its MAC: the stream was changed on the path" \
    "tcp://127.0.0.1:$(cat "$T/cp")"
check "... the proxy did change it, and B says so" wait_for 5 log_has "$B" \
    "Domain creation failed: .*record [0-9]* from 127.0.0.1:[0-9]* failed its MAC: the stream was changed on the path"
kill "$cp"; wait "$cp" 2>/dev/null

# ---- forged resolves (from a peer with the fleet key) ------------------------
xlh "$B" create -p -e "$ex/idle.cfg" 'name="pd"' 'memory=16' >/dev/null 2>&1
U=$(uuid_of "$B" pd)
"$NA" resolve --key "$A/migrate.key" "$TCP_B" pd "$U" >"$T/res1" 2>&1
sed 's/^/# /' "$T/res1"
"$XL" -H "$B" list pd | awk 'NR == 2 && $5 ~ /p/ { ok = 1 } END { exit !ok }' &&
    grep -q '^answer: committed$' "$T/res1" &&
    ok "forged resolve for a paused domain: answered, the domain stays paused" ||
    fail "forged resolve for a paused domain"
check "... B logs that it changed nothing" log_has "$B" \
    "resolve pd without a migration token: answered committed, changed nothing"

# A migration in progress (its receiver stopped in the live phase): its
# incoming domain is named by a token the forger does not have.
xlh "$A" create -e "$ex/idle.cfg" 'name="mp"' 'memory=16' >/dev/null 2>&1
# (Its uuid now: once the stream is sent, A lists it as mp--migratedaway.)
U=$(uuid_of "$A" mp)
FERRY_MIGRATE_FAULT=recv:live:stop "$XL" -H "$A" migrate -e mp "local:$B" \
    >"$T/mp.out" 2>"$T/mp.err" &
mpid=$!
wait_for 20 grep -q 'stopping (pid' "$T/mp.err"
"$NA" resolve --key "$A/migrate.key" --token 0123456789abcdef0123456789abcdef \
    "$TCP_B" mp "$U" >"$T/res2" 2>&1
sed 's/^/# /' "$T/res2"
grep -q "^answer: error resolve refused: the request does not carry the token of this domain's migration" "$T/res2" &&
    ok "forged resolve for a migration in progress: refused" ||
    fail "forged resolve for a migration in progress"
kill -CONT "$(sed -n 's/.*stopping (pid \([0-9]*\))$/\1/p' "$T/mp.err")"
wait "$mpid"
rc=$?
[ $rc -eq 0 ] && no_domain "$A" mp && running "$B" mp &&
    ok "... and that migration then completes: mp runs on B only" ||
    { fail "migration after a forged resolve (rc $rc)"; sed 's/.*\r//; s/^/# /' "$T/mp.err" | tail -5; }

# A local restore in progress: the stream comes through a FIFO that
# stalls for 4 s after 100 KB, in its memory (and the resolve comes then)
# (xl restore opens the file twice: the first time for the header and
# configuration alone; net-abuse feed gives each open its part, whatever
# the timing).
xlh "$A" create -e "$ex/idle.cfg" 'name="rs"' 'memory=16' >/dev/null 2>&1
U=$(uuid_of "$A" rs)
xlh "$A" save rs "$T/rs.save" >/dev/null 2>&1 || diag "save rs failed"
hlen=$((48 + $(u32 "$T/rs.save" 44)))
mkfifo "$T/fifo"
"$NA" feed "$T/rs.save" "$T/fifo" "$hlen" 100000 $((4 * mult)) >"$T/feed" \
    2>&1 &
feeder=$!
xlh "$B" restore -e "$T/fifo" >"$T/rs.out" 2>&1 &
rpid=$!
wait_for 10 grep -q '^paused' "$T/feed"
"$NA" resolve --key "$A/migrate.key" "$TCP_B" rs "$U" >"$T/res3" 2>&1
sed 's/^/# /' "$T/res3"
wait "$rpid"
rc=$?
# (A restore that failed early leaves the feeder waiting for a reader.)
kill "$feeder" 2>/dev/null
wait "$feeder"
sed 's/^/# /' "$T/feed"
[ $rc -eq 0 ] && running "$B" rs && grep -q '^answer: aborted$' "$T/res3" &&
    ok "forged resolve for a restore in progress: the restore completes" ||
    { fail "forged resolve for a restore in progress (rc $rc)"; sed 's/^/# /' "$T/rs.out"; }
check "... B logs that it changed nothing" log_has "$B" \
    "resolve rs without a migration token: answered aborted, changed nothing"

# ---- tls:// identities --------------------------------------------------------
# From the fleet CA, but not a migration certificate (OU=monitoring).
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/mon.key" -out "$T/mon.csr" -subj "/O=ferry/OU=monitoring/CN=A" \
    >/dev/null 2>&1 &&
openssl x509 -req -in "$T/mon.csr" -CA "$T/fleet/ca.pem" \
    -CAkey "$T/fleet/ca.key" -CAcreateserial -out "$T/mon.pem" -days 2 \
    >/dev/null 2>&1 || diag "cannot make the monitoring certificate"
refused "TLS sender from the fleet CA, not on the allow-list" \
    "refused us: this host does not accept your certificate's subject" \
    "$TLS_B" --tls-cert "$T/mon.pem" --tls-key "$T/mon.key"
check "... B logs the subject it refused" wait_for 5 log_has "$B" \
    "its certificate's subject \"CN=A,OU=monitoring,O=ferry\" is not on the allow-list"
# B's certificate names B and 127.0.0.1, not "localhost".
refused "a target whose certificate names another host" \
    "the target's certificate does not name localhost" \
    "tls://localhost:${TLS_B##*:}"
# Certificates revoked in a CRL of the fleet CA: A's in B's (its default
# run-dir file), B's in the one A's sender is given.
mkcrl "$T/fleet" "$T/crl-A.pem" "$A/tls/host.pem" &&
    mkcrl "$T/fleet" "$T/crl-B.pem" "$B/tls/host.pem" ||
    diag "cannot make the CRLs"
cp "$T/crl-A.pem" "$B/tls/crl.pem"
refused "a TLS sender whose certificate is revoked" \
    "TLS .* failed: .*certificate revoked" "$TLS_B"
check "... B logs the revoked certificate" wait_for 5 log_has "$B" \
    "TLS handshake with 127.0.0.1:[0-9]* failed: certificate verify failed: the client's certificate: certificate revoked"
rm -f "$B/tls/crl.pem"
refused "a target whose certificate is revoked" \
    "certificate verify failed: the target's certificate: certificate revoked" \
    "$TLS_B" --tls-crl "$T/crl-B.pem"
# Plain TCP to the TLS port: a handshake failure, nothing disclosed.
"$NA" anon "${TLS_B#tls://}" >"$T/anon2" 2>&1
sed 's/^/# /' "$T/anon2"
grep -q '^got: $' "$T/anon2" && grep -q "^closed by the listener" "$T/anon2" &&
    ok "plain TCP to a TLS port: nothing disclosed, closed" ||
    fail "plain TCP to a TLS port"
check "... B logs the failed handshake" wait_for 5 log_has "$B" \
    "TLS handshake with 127.0.0.1:[0-9]* failed"

# ---- the handshake timeout alone ---------------------------------------------
# Two silent connections from 127.0.0.3 and two from 127.0.0.4 that send
# half a proof line take all four slots; each is closed at the 10 s
# handshake timeout, and its slot is free again.
nexit() { [ "$(grep -c "(from $1:[0-9]*) exited with status" "$B/ferry-hv.log")" -ge "$2" ]; }
"$NA" idle --from 127.0.0.3 2 $((30 * mult)) "${TCP_B#tcp://}" >"$T/idle3" 2>&1 &
i3=$!
"$NA" idle --from 127.0.0.4 --half 2 $((30 * mult)) "${TCP_B#tcp://}" \
    >"$T/idle4" 2>&1 &
i4=$!
wait_for 5 grep -q '^opened 2 of 2' "$T/idle3"
wait_for 5 grep -q '^opened 2 of 2' "$T/idle4"
wait_for 5 log_has "$B" "from 127.0.0.4:[0-9]* on .*: receiver pid"
refused "four silent handshakes hold every slot" \
    "closed the connection before sending its banner" "$TCP_B"
wait "$i3" "$i4"
for f in idle3 idle4; do
    sed 's/^/# /' "$T/$f"
    awk -v hi=$((10 + 4 * mult)) '/^closed by the listener: 2 of 2, the last after/ {
             t = $(NF - 1) + 0; ok = t >= 8 && t <= hi }
         END { exit !ok }' "$T/$f" &&
        ok "$f: both closed by B at the 10 s handshake timeout" ||
        fail "$f: closed at the handshake timeout"
done
timed_out() { log_has "$B" "$1:[0-9]* did not authenticate within 10 s; closed"; }
check "... B logs the timeout for the silent and the half-finished ones" \
    eval 'timed_out 127.0.0.3 && timed_out 127.0.0.4'
xlh "$A" create -e "$ex/idle.cfg" 'name="ht"' 'memory=16' >/dev/null 2>&1
wait_for 5 nexit 127.0.0.3 2 && wait_for 5 nexit 127.0.0.4 2
xlh "$A" migrate -e ht "$TCP_B" >"$T/mig.out" 2>"$T/mig.err"
rc=$?
[ $rc -eq 0 ] && no_domain "$A" ht && running "$B" ht &&
    ok "... their slots are free: a migration then succeeds" ||
    { fail "migration after the handshake timeout (rc $rc)"; sed 's/.*\r//; s/^/# /' "$T/mig.err" | tail -5; }

# ---- idle connections ----------------------------------------------------------
# Six from 127.0.0.2: the per-peer limit (2) closes four at once, the
# handshake timeout (10 s) the other two; meanwhile a real migration from
# 127.0.0.1 goes through.
"$NA" idle --from 127.0.0.2 6 20 "${TCP_B#tcp://}" >"$T/idle" 2>&1 &
idler=$!
wait_for 5 grep -q '^opened' "$T/idle"
wait_for 5 log_has "$B" "refused: 2 connections from 127.0.0.2 already"
xlh "$A" migrate -e rf "$TCP_B" >"$T/mig.out" 2>"$T/mig.err"
rc=$?
[ $rc -eq 0 ] && no_domain "$A" rf && running "$B" rf &&
    ok "six idle connections: a real migration still succeeds" ||
    { fail "migration beside idle connections (rc $rc)"; sed 's/.*\r//; s/^/# /' "$T/mig.err" | tail -5; }
wait "$idler"
sed 's/^/# /' "$T/idle"
awk '/^closed by the listener: 6 of 6, the last after/ {
         t = $(NF - 1) + 0; ok = t >= 8 && t <= 14 }
     END { exit !ok }' "$T/idle" &&
    ok "... all six closed by B, the last at the 10 s handshake timeout" ||
    fail "idle connections closed"
check "... B logs the per-peer limit" log_has "$B" \
    "refused: 2 connections from 127.0.0.2 already (--migrate-per-peer)"
check "... and the handshake timeout" log_has "$B" \
    "127.0.0.2:[0-9]* did not authenticate within 10 s; closed"

# ---- a sender that stops mid-stream ------------------------------------------
xlh "$A" create -e "$ex/idle.cfg" 'name="ab"' 'memory=32' >/dev/null 2>&1
# (A file of its own: the background job truncates its output file only
# when it starts, so the first proxy's port could still be read there.)
"$CP" --cut-after 100000 --mode hang "${TCP_B#tcp://}" >"$T/cp-hang" \
    2>/dev/null &
cp=$!
wait_for 5 test -s "$T/cp-hang"
n0=$(receivers_ended "$B")
# (Not through xlh: the signal below must reach xl itself.)
"$XL" -H "$A" migrate -e ab "tcp://127.0.0.1:$(cat "$T/cp-hang")" >"$T/ab.out" \
    2>"$T/ab.err" &
abp=$!
if wait_for 20 more_ended "$B" "$n0" &&
   no_leftovers "$B" && no_domain "$B" ab; then
    ok "a sender gone quiet: B destroys its incoming domain at the idle timeout"
else
    fail "abandoned incoming domain"; xlh "$B" list | sed 's/^/# B: /'
    sed 's/.*\r//; s/^/# sender: /' "$T/ab.err" | tail -3
fi
check "... B's receiver says it timed out" log_has "$B" \
    "migration target: .*Connection timed out"
kill -INT "$abp"
wait "$abp"
rc=$?
[ $rc -eq 1 ] && running "$A" ab &&
    ok "... and the sender, interrupted, resumes ab on A" ||
    { fail "abandoned: sender (rc $rc)"; sed 's/.*\r//; s/^/# /' "$T/ab.err" | tail -5; }
kill "$cp"; wait "$cp" 2>/dev/null

# ---- listeners without a key ---------------------------------------------------
"$HV" --run-dir "$T/K" --memory 16M --migrate-listen 127.0.0.1:0 \
    >"$T/k.out" 2>&1
[ $? -ne 0 ] && grep -q "no fleet key $T/K/migrate.key (create it with ferry-creds); .* only on a loopback address and only with --migrate-insecure" "$T/k.out" &&
    ok "a keyless tcp:// listener does not start without --migrate-insecure" ||
    { fail "keyless listener"; sed 's/^/# /' "$T/k.out"; }
"$HV" --run-dir "$T/K" --memory 16M --migrate-listen 0.0.0.0:0 \
    --migrate-insecure >"$T/k.out" 2>&1
[ $? -ne 0 ] && grep -q "no fleet key" "$T/k.out" &&
    ok "... nor on a non-loopback address, even with --migrate-insecure" ||
    { fail "keyless listener on 0.0.0.0"; sed 's/^/# /' "$T/k.out"; }
start_listener K 64M --migrate-listen 127.0.0.1:0 --migrate-insecure ||
    exit 99
TCP_K=$(mig_addr "$T/K" tcp)
xlh "$A" migrate -e ab "$TCP_K" >"$T/k.out" 2>"$T/k.err"
[ $? -eq 1 ] && grep -q "runs without a fleet key (ferry-hv --migrate-insecure), so it cannot prove it is the host you meant" "$T/k.err" &&
    running "$A" ab && ok "a sender refuses a keyless target" ||
    { fail "sender to a keyless target"; sed 's/.*\r//; s/^/# /' "$T/k.err"; }
xlh "$A" migrate -e --insecure ab "$TCP_K" >"$T/k.out" 2>"$T/k.err"
[ $? -eq 0 ] && running "$T/K" ab && no_domain "$A" ab &&
    ok "... unless told --insecure (loopback only)" ||
    { fail "xl migrate --insecure"; sed 's/.*\r//; s/^/# /' "$T/k.err"; }

# ---- B kept serving, nothing lost --------------------------------------------
for d in rf mp rs pd ht; do
    [ "$(xlh "$A" list 2>/dev/null | grep -c "^$d\b")" = 0 ] &&
        [ "$(xlh "$B" list 2>/dev/null | grep -c "^$d ")" = 1 ] &&
        ok "$d is on B only" || fail "$d on one host"
done
check "A: auditor clean" xlh "$A" audit
check "B: auditor clean" xlh "$B" audit
done_testing
