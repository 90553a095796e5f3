#!/bin/sh
# xl evacuate over the network: two target hosts, each in a network
# namespace of its own reached through a veth pair, one listening for
# migrations on tcp:// and one on tls:// (mutual TLS with a fleet CA).
# xl asks B's daemon for its free memory through its run directory
# (run-dir= in the inventory) and C through the migration preamble.  Four domains on the source (in this
# namespace) are spread over both; the source ends empty, the plan is the
# dry run's, the checksum guest gives its known result on its new host.
# Skipped, with the reason, where network namespaces cannot be made.
. "$(dirname "$0")/lib.sh"

skip() { echo "1..0 # SKIP $*"; exit 77; }
grep -q '"evacuate"' "$top_srcdir/xl/xl-cmdtable.c" ||
    skip "xl evacuate is not there"
"$HV" --help 2>&1 | grep -q -- '--migrate-listen' ||
    skip "ferry-hv has no --migrate-listen"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
command -v openssl >/dev/null 2>&1 || skip "no openssl command"
export FERRY_DATADIR="$top_srcdir/share"

# Namespaces and links named after this shell, deleted on exit.
NS_B=ferry-ev$$-b NS_C=ferry-ev$$-c
netns_cleanup() {
    cleanup
    ip netns del "$NS_B" 2>/dev/null
    ip netns del "$NS_C" 2>/dev/null
}
trap netns_cleanup EXIT
# ns NAME VETH SUBNET: a namespace joined to this one by a /30 link; this
# side is SUBNET.1, the namespace's SUBNET.2.
ns() {
    ip netns add "$1" 2>"$T/ns.err" || return 1
    ip netns exec "$1" ip link set lo up &&
    ip link add "$2a" type veth peer name "$2b" &&
    ip link set "$2b" netns "$1" &&
    ip addr add "$3.1/30" dev "$2a" && ip link set "$2a" up &&
    ip netns exec "$1" ip addr add "$3.2/30" dev "$2b" &&
    ip netns exec "$1" ip link set "$2b" up
}
# Unlikely subnets, different per run, so parallel runs do not clash.
n=$(( $$ % 250 + 1 ))
if ! ns "$NS_B" "fev$n" "10.231.$n" 2>>"$T/ns.err"; then
    skip "cannot make a network namespace: $(head -1 "$T/ns.err")"
fi
ns "$NS_C" "few$n" "10.232.$n" || skip "cannot make a second namespace"

# ---- credentials (ferry-creds): S, B, and C, whose certificate names
# the address it listens on --------------------------------------------------
creds S && creds B --no-tls && creds C --addr "10.232.$n.2" ||
    skip "ferry-creds cannot make the credentials"

plan 8
HV_REAL=$HV
# start_host runs "$HV": a wrapper runs the daemon in a namespace.
in_ns() {
    printf '#!/bin/sh\nexec ip netns exec %s "%s" "$@"\n' "$1" "$HV_REAL" \
        >"$T/hv-$1"
    chmod +x "$T/hv-$1"
    HV="$T/hv-$1"
}
start_host S 256M || exit 99
in_ns "$NS_B"
FERRY_HV_EXTRA_ARGS="--xl $XL --migrate-listen 10.231.$n.2:0"
start_host B 128M || exit 99
in_ns "$NS_C"
FERRY_HV_EXTRA_ARGS="--xl $XL --migrate-listen tls://10.232.$n.2:0"
start_host C 128M || exit 99
HV=$HV_REAL FERRY_HV_EXTRA_ARGS=
S=$T/S
ADDR_B=$(sed -n 's|^tcp://||p' "$T/B/migrate.addr")
ADDR_C=$(sed -n 's|^tls://||p' "$T/C/migrate.addr")
diag "B listens on tcp://$ADDR_B in $NS_B, C on tls://$ADDR_C in $NS_C"

cat >"$T/fleet.xml" <<EOF
<?xml version="1.0"?>
<fleet version="1">
  <host name="S" transport="local" address="S"/>
  <host name="B" transport="tcp" address="$ADDR_B" run-dir="B"/>
  <host name="C" transport="tls" address="$ADDR_C">
    <tls cert="S/tls/host.pem" key="S/tls/host.key" ca="S/tls/ca.pem"/>
  </host>
</fleet>
EOF

ex="$top_srcdir/examples"
mk() {
    n=$1 g=$2 m=$3; shift 3
    xlh "$S" create -e "$ex/$g.cfg" "name=\"$n\"" "memory=$m" \
        'on_poweroff="preserve"' "$@" >/dev/null 2>&1 ||
        diag "create $n failed"
}
mk cs1 checksum 32 'cmdline="steps=3000000"'
mk id1 idle 24
mk md1 memdirty 20 'cmdline="wss=2M rate=1M"'
mk id2 idle 16
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
plan_lines() { grep '"event":"plan"' "$1"; }
list_names() { xlh "$1" list | awk 'NR > 1 && $1 != "Domain-0" {print $1}'; }

"$XL" evacuate --fleet "$T/fleet.xml" --dry-run --json S >"$T/dry.json"
rc=$?
[ $rc = 0 ] && grep -q '"host":"C","transport":"tls".*"reachable":true,"free_kb":[1-9]' "$T/dry.json" &&
    [ "$(plan_lines "$T/dry.json" | grep -c '"target":"B"')" = 2 ] &&
    [ "$(plan_lines "$T/dry.json" | grep -c '"target":"C"')" = 2 ] &&
    ok "dry run: C's free memory from the preamble, two domains each" ||
    { fail "dry run: C's free memory, two domains each (rc $rc)"
      sed 's/^/# /' "$T/dry.json"; }

"$XL" evacuate --fleet "$T/fleet.xml" --json S >"$T/run.json" 2>"$T/run.err"
rc=$?
[ $rc = 0 ] && ok "the evacuation over tcp:// and tls:// exits 0" ||
    { fail "the evacuation exits 0 (rc $rc)"; sed 's/^/# /' "$T/run.err"
      grep -v progress "$T/run.json" | sed 's/^/# /'; }
[ -z "$(list_names "$S")" ] && ok "the source is empty" ||
    fail "the source is empty: $(list_names "$S" | tr '\n' ' ')"
plan_lines "$T/dry.json" >"$T/plan.dry"
plan_lines "$T/run.json" >"$T/plan.run"
cmp -s "$T/plan.dry" "$T/plan.run" && ok "the run made the dry run's plan" ||
    fail "the run made the dry run's plan"
bad=""
for dn in cs1 id1 md1 id2; do
    want=$(grep "\"domain\":\"$dn\"" "$T/plan.dry" | field target)
    list_names "$T/$want" | grep -qx "$dn" || bad="$bad $dn"
done
[ -z "$bad" ] && ok "each domain runs on its planned target" ||
    fail "domains not on their planned target:$bad"
report=$(grep '"event":"report"' "$T/run.json")
echo "$report" | sed 's/^/# /'
[ "$(echo "$report" | grep -o '"outcome":"migrated","where":"[BC]"' |
     wc -l)" = 4 ] && ok "the report: 4 migrated, with where" ||
    fail "the report: 4 migrated, with where"
hc=$T/$(grep '"domain":"cs1"' "$T/plan.dry" | field target)
wait_for 120 finished "$hc" cs1 || diag "cs1 did not finish"
r=$(console_dump "$hc" cs1 | sed -n 's/^result: //p')
e=$(checksum_expect 3000000)
[ "$r" = "$e" ] && ok "cs1: result $r on its new host" ||
    fail "cs1: result '$r', expected $e"
console_dump "$T/$(grep '"domain":"md1"' "$T/plan.dry" | field target)" md1 \
    >"$T/md1.con"
grep -q 'resumed, cancelled=0' "$T/md1.con" &&
    ! grep -q -e MISMATCH -e FAILED "$T/md1.con" &&
    ok "md1 runs on with no memory errors" ||
    { fail "md1 runs on with no memory errors"; sed 's/^/# /' "$T/md1.con"; }
done_testing
