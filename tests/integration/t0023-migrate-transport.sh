#!/bin/sh
# The migration transport on its own (xl/xl-transport.c driven by the
# chan-test helper in place of xl): local: and ssh-style children on
# pipes, ferry-hv --migrate-listen over tcp:// and tls:// with mutual
# certificate checks, a second channel to the same target (resolve), the
# limit on concurrent receivers, and links cut by cutproxy.  Each exchange
# carries data whose hash the receiver sends back, so a corrupted, short
# or reordered stream fails.
. "$(dirname "$0")/lib.sh"

CT="$top_builddir/tests/integration/chan-test"
CP="$top_builddir/tests/integration/cutproxy"
if ! command -v openssl >/dev/null 2>&1; then
    echo "1..0 # SKIP no openssl command (tests/run.sh installs it)"
    exit 77
fi

plan 30

# ---- credentials: the fleet's (ferry-creds) for A, B and the sender S;
# a rogue CA ------------------------------------------------------------------
C=$T/certs
{ creds A && creds B && creds S && fleet_certs "$C"; } || {
    echo "Bail out! cannot make test credentials with ferry-creds/openssl"
    exit 99; }
fleet="--tls-ca $T/fleet/ca.pem"
asB="--tls-cert $T/B/tls/host.pem --tls-key $T/B/tls/host.key $fleet"
# Senders prove the fleet key of S's run dir (tcp://).
FERRY_RUNDIR=$T/S
export FERRY_RUNDIR

# ---- pipes: local: and an ssh command ------------------------------------
"$CT" send --bulk 4 local:/some/dir w1 >"$T/o" 2>"$T/e"
if [ $? -eq 0 ] && grep -qx "banner: receiver H=/some/dir g= args=-e,arg with 'quotes'" "$T/o" &&
   grep -qx "child: exit 0" "$T/o"; then
    ok "local: runs this binary as -H DIR migrate-receive ARGS, 4 MiB intact"
else fail "local: exchange"; sed 's/^/# /' "$T/o" "$T/e"; fi

mkdir -p "$T/bin"
ln -s "$CT" "$T/bin/xl"
printf '#!/bin/sh\n# fake ssh: drop the host, run the command\nshift\nexec "$@"\n' \
    >"$T/fakessh"
chmod +x "$T/fakessh"
PATH="$T/bin:$PATH" "$CT" send -s "$T/fakessh" hostx w2 >"$T/o" 2>"$T/e"
if [ $? -eq 0 ] &&
   grep -qxF "rune: exec $T/fakessh hostx xl migrate-receive -e 'arg with '\\''quotes'\\'''" "$T/o" &&
   grep -qx "banner: receiver H=- g= args=-e,arg with 'quotes'" "$T/o"; then
    ok "HOST: exec SSH HOST xl migrate-receive ARGS, quoted for the shell"
else fail "ssh-style exchange"; sed 's/^/# /' "$T/o" "$T/e"; fi

"$CT" send -s '' "exec $CT -H /x migrate-receive y" w3 >"$T/o" 2>"$T/e"
if [ $? -eq 0 ] && grep -qx "banner: receiver H=/x g= args=y" "$T/o"; then
    ok "-s '': HOST is the whole command"
else fail "-s '' exchange"; sed 's/^/# /' "$T/o" "$T/e"; fi

if "$CT" send -s '' "exit 3" w4 >"$T/o" 2>"$T/e"; then
    fail "a receiver that dies at once fails the sender"
else
    grep -q "stream truncated at offset 0" "$T/e" &&
        ok "a receiver that dies at once: end of stream, no hang" ||
        { fail "dead receiver message"; sed 's/^/# /' "$T/e"; }
fi

"$CT" send --reopen local:/d w5 >"$T/o" 2>"$T/e"
if [ $? -eq 0 ] && [ "$(grep -c '^child: exit 0$' "$T/o")" = 2 ] &&
   grep -q "reply: echo again bytes=4096" "$T/o"; then
    ok "a second channel to the same target (resolve)"
else fail "reopen"; sed 's/^/# /' "$T/o" "$T/e"; fi

# ---- ferry-hv --migrate-listen -------------------------------------------
FERRY_HV_EXTRA_ARGS="--xl $CT --migrate-listen 127.0.0.1:0 --migrate-listen tls://127.0.0.1:0"
start_host A 32M || exit 99
FERRY_HV_EXTRA_ARGS="--xl $CT --migrate-max 1 --migrate-listen 127.0.0.1:0"
start_host B 32M || exit 99
FERRY_HV_EXTRA_ARGS=
A=$T/A B=$T/B
RA=$(cd "$A" && pwd -P)
TCP_A=$(mig_addr "$A" tcp)
TLS_A=$(mig_addr "$A" tls)
TCP_B=$(mig_addr "$B" tcp)
case "$TCP_A $TLS_A $TCP_B" in
    tcp://127.0.0.1:[1-9]*" "tls://127.0.0.1:[1-9]*" "tcp://127.0.0.1:[1-9]*)
        ok "listeners on free ports, recorded in DIR/migrate.addr" ;;
    *) fail "migrate.addr: '$TCP_A' '$TLS_A' '$TCP_B'" ;;
esac

"$CT" send --bulk 4 "$TCP_A" t1 >"$T/o" 2>"$T/e"
if [ $? -eq 0 ] && grep -qx "banner: receiver H=$RA g= args=" "$T/o" &&
   grep -q "reply: echo t1 bytes=4194304" "$T/o"; then
    ok "tcp://: receiver is xl -H RUNDIR migrate-receive --fd 3, 4 MiB intact"
else fail "tcp:// exchange"; sed 's/^/# /' "$T/o" "$T/e"; fi
check "ferry-hv logged the connection and its receiver" \
    wait_for 5 log_has "$A" "migration from 127.0.0.1:[0-9]* on $TCP_A: receiver pid [0-9]*"
check "ferry-hv reaped the receiver and logged its status" \
    wait_for 5 log_has "$A" "migration receiver pid [0-9]* (from 127.0.0.1:[0-9]*) exited with status 0"

"$CT" send --bulk 4 --reopen --tls-cert "$T/B/tls/host.pem" \
    --tls-key "$T/B/tls/host.key" $fleet "$TLS_A" t2 >"$T/o" 2>"$T/e"
if [ $? -eq 0 ] && grep -qx "banner: receiver H=$RA g= args=" "$T/o" &&
   grep -q "reply: echo t2 bytes=4194304" "$T/o" &&
   grep -q "reply: echo again bytes=4096" "$T/o"; then
    ok "tls://: mutual TLS with fleet certificates, 4 MiB intact, reopen"
else fail "tls:// exchange"; sed 's/^/# /' "$T/o" "$T/e"; fi
# ChaCha20-Poly1305 first: ~1.5x AES-256-GCM on the machines we measure.
grep -qx "tls: TLS_CHACHA20_POLY1305_SHA256" "$T/o" &&
    ok "tls://: the faster cipher suite is the one negotiated" ||
    { fail "tls:// cipher suite"; sed 's/^/# /' "$T/o"; }

# Default TLS files: <run dir of -H>/tls/{host.pem,host.key,ca.pem}.
FERRY_RUNDIR=$T/S "$CT" send "$TLS_A" t3 >"$T/o" 2>"$T/e"
[ $? -eq 0 ] && grep -q "reply: echo t3" "$T/o" &&
    ok "tls://: default files from the run dir's tls/" ||
    { fail "default TLS files"; sed 's/^/# /' "$T/o" "$T/e"; }

rm "$T/S/tls/host.key"
FERRY_RUNDIR=$T/S "$CT" send "$TLS_A" t4 >"$T/o" 2>"$T/e"
[ $? -ne 0 ] && grep -q "TLS key $T/S/tls/host.key: No such file" "$T/e" &&
    ok "a missing TLS file is named" ||
    { fail "missing key"; sed 's/^/# /' "$T/o" "$T/e"; }

# A client whose certificate comes from another CA.
"$CT" send --tls-cert "$C/rogue.pem" --tls-key "$C/rogue.key" $fleet \
    "$TLS_A" t5 >"$T/o" 2>"$T/e"
if [ $? -ne 0 ] && grep -q "TLS .* with 127.0.0.1:[0-9]* failed: the target refused our certificate" "$T/e" &&
   ! grep -q "^banner" "$T/o"; then
    ok "sender with a certificate from another CA: refused, says why"
else fail "rogue client"; sed 's/^/# /' "$T/o" "$T/e"; fi
check "receiver logged the refused certificate" wait_for 5 log_has "$A" \
    "migrate-receive: TLS handshake with 127.0.0.1:[0-9]* failed: certificate verify failed: the client's certificate is not signed by our CA"

# A client with no certificate at all.
openssl s_client -connect "${TLS_A#tls://}" -CAfile "$T/fleet/ca.pem" \
    </dev/null >"$T/o" 2>&1
check "receiver logged a client without a certificate" wait_for 5 log_has \
    "$A" "migrate-receive: TLS handshake with 127.0.0.1:[0-9]* failed: the client presented no certificate"

# A target whose certificate is not from our CA.
"$CT" send $asB --tls-ca "$C/rogue-ca.pem" "$TLS_A" t6 >"$T/o" 2>"$T/e"
[ $? -ne 0 ] && grep -q "certificate verify failed: the target's certificate is not signed by our CA" "$T/e" &&
    ok "target with a certificate from another CA: refused, says why" ||
    { fail "rogue target"; sed 's/^/# /' "$T/o" "$T/e"; }

# tls:// to a plain listener.
"$CT" send $asB "tls://${TCP_A#tcp://}" t7 >"$T/o" 2>"$T/e"
[ $? -ne 0 ] && grep -q "did not answer in TLS" "$T/e" &&
    ok "tls:// to a tcp listener: says so" ||
    { fail "tls to plain"; sed 's/^/# /' "$T/o" "$T/e"; }

# ---- the limit on concurrent receivers (B: --migrate-max 1) --------------
# A sender stuck behind a proxy that stops forwarding holds B's only slot.
"$CP" --cut-after 300 --mode hang "${TCP_B#tcp://}" >"$T/cp1" 2>/dev/null &
cp1=$!
wait_for 5 test -s "$T/cp1"
"$CT" send "tcp://127.0.0.1:$(cat "$T/cp1")" held >"$T/held.o" 2>&1 &
held=$!
wait_for 5 grep -q "^banner" "$T/held.o"
"$CT" send "$TCP_B" t8 >"$T/o" 2>"$T/e"
[ $? -ne 0 ] && grep -q "closed the connection before sending its banner" "$T/e" &&
    ok "beyond --migrate-max: closed at once, sender says so" ||
    { fail "limit"; sed 's/^/# /' "$T/o" "$T/e"; }
check "the refusal is logged" log_has "$B" "refused: 1 incoming migrations already running"
kill "$held" "$cp1"
wait "$held" "$cp1" 2>/dev/null
check "the held receiver exits once its link is gone" wait_for 10 log_has \
    "$B" "exited with status 1"
"$CT" send "$TCP_B" t9 >"$T/o" 2>"$T/e" &&
    ok "the slot is free again" || { fail "slot"; sed 's/^/# /' "$T/e"; }

# ---- links cut by cutproxy -----------------------------------------------
# The pid of the first receiver A started after log line N.
rpid_since() {
    tail -n +"$(($1 + 1))" "$A/ferry-hv.log" |
        sed -n 's/.* receiver pid \([0-9]*\)$/\1/p' | head -1
}
exited1() { log_has "$A" "receiver pid $1 (from .*) exited with status 1"; }
before=$(wc -l <"$A/ferry-hv.log")
"$CP" --cut-after 3000000 "${TCP_A#tcp://}" >"$T/cp2" 2>/dev/null &
cp2=$!
wait_for 5 test -s "$T/cp2"
"$CT" send --bulk 16 "tcp://127.0.0.1:$(cat "$T/cp2")" c1 >"$T/o" 2>"$T/e"
if [ $? -ne 0 ] && grep -q "Connection reset by peer" "$T/e"; then
    ok "cut (RST) after 3 MB: the sender fails at once with the reason"
else fail "cut rst"; sed 's/^/# /' "$T/o" "$T/e"; fi
check "... and the receiver failed too" wait_for 10 exited1 "$(rpid_since "$before")"
"$CT" send "tcp://127.0.0.1:$(cat "$T/cp2")" c2 >"$T/o" 2>"$T/e" &&
    ok "a new connection through the proxy works (resolve after a cut)" ||
    { fail "after cut"; sed 's/^/# /' "$T/e"; }
kill "$cp2"; wait "$cp2" 2>/dev/null

"$CP" --mode close "${TLS_A#tls://}" >"$T/cp3" 2>"$T/cp3.e" &
cp3=$!
wait_for 5 test -s "$T/cp3"
before=$(wc -l <"$A/ferry-hv.log")
# (Fresh output files: a stale banner must not trigger the cut.)
"$CT" send --bulk 256 $asB "tls://127.0.0.1:$(cat "$T/cp3")" c3 \
    >"$T/c3.o" 2>"$T/c3.e" &
snd=$!
wait_for 5 grep -q "^banner" "$T/c3.o"
kill -USR1 "$cp3"
wait "$snd"
st=$?
if [ $st -ne 0 ] && grep -q "chan-test: .*failed" "$T/c3.e" &&
   ! grep -q "^reply" "$T/c3.o"; then
    ok "tls:// cut by SIGUSR1 mid-stream: the sender fails ($(tail -1 "$T/c3.e"))"
else fail "tls cut"; sed "s/^/# /" "$T/c3.o" "$T/c3.e" "$T/cp3.e"; fi
kill "$cp3"; wait "$cp3" 2>/dev/null
check "... and the receiver failed too" wait_for 10 exited1 "$(rpid_since "$before")"

# ---- a receiver that stops reading, and a link that goes dead -------------
# The first must be waited for however long (its kernel still answers),
# the second must fail both ends within about 10 s.  The dead link runs
# meanwhile in a network namespace of its own whose loopback is taken
# down mid-stream (no packet filter needed).
cat >"$T/dead.sh" <<'EOS'
ip link set lo up || exit 1
. "$top_srcdir/tests/integration/lib.sh"
creds D || exit 1
FERRY_RUNDIR=$T/D
export FERRY_RUNDIR
FERRY_HV_EXTRA_ARGS="--xl $CT --migrate-listen 127.0.0.1:0"
start_host D 32M || exit 1
"$CT" send --bulk 2048 "$(cat "$T/D/migrate.addr")" dead >"$T/o" 2>"$T/e" &
snd=$!
wait_for 5 grep -q "^banner" "$T/o"
t0=$(date +%s)
ip link set lo down
wait "$snd"
echo "sender: rc=$? after $(($(date +%s) - t0)) s: $(cat "$T/e")"
wait_for 30 grep -q "exited with status" "$T/D/ferry-hv.log"
echo "receiver: after $(($(date +%s) - t0)) s: $(grep -a "^migrate-receive" "$T/D/ferry-hv.log")"
cp "$T"/sanitizer.* "$OUTER" 2>/dev/null
stop_all_hosts
EOS
dead=
if unshare -n true 2>/dev/null; then
    OUTER=$T CT=$CT top_builddir=$top_builddir top_srcdir=$top_srcdir \
        unshare -n sh "$T/dead.sh" >"$T/dead.out" 2>&1 &
    dead=$!
fi

before=$(wc -l <"$A/ferry-hv.log")
"$CT" send --bulk 64 "$TCP_A" slow >"$T/slow.o" 2>"$T/slow.e" &
snd=$!
wait_for 5 grep -q "^banner" "$T/slow.o"
rp=$(rpid_since "$before")
if [ -n "$rp" ] && kill -STOP "$rp"; then
    sleep 12      # longer than the 10 s after which a link counts as dead
    kill -CONT "$rp"
fi
wait "$snd"
[ $? -eq 0 ] && grep -q "reply: echo slow bytes=67108864" "$T/slow.o" &&
    ok "a receiver stopped for 12 s is waited for, then the data is intact" ||
    { fail "stopped receiver"; sed 's/^/# /' "$T/slow.o" "$T/slow.e"; }

if [ -z "$dead" ]; then
    ok "# SKIP no network namespace for the dead link (unshare -n)"
    ok "# SKIP no network namespace for the dead link (unshare -n)"
else
    wait "$dead"
    sed 's/^/# /' "$T/dead.out"
    grep -q "^sender: rc=1 after 1\?[0-9] s: chan-test: no acknowledgement from 127.0.0.1:[0-9]* for 10 s: the link is down$" "$T/dead.out" &&
        ok "dead link: the sender fails within 20 s, saying so" ||
        fail "dead link: sender"
    grep -q "^receiver: after [12]\?[0-9] s: migrate-receive: .*\(the link is down\|timed out\)" "$T/dead.out" &&
        ok "dead link: the receiver fails too, within 30 s" ||
        fail "dead link: receiver"
fi

done_testing
