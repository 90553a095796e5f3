#!/bin/sh
# xl evacuate: four hosts on this machine (a 512 MiB source, targets of
# 256, 192 and 160 MiB) and twelve domains of every shipped guest on the
# source.  The dry run changes nothing and prints the plan; the real run
# empties the source following exactly that plan, within each target's
# free memory and the inventory's tag rule, and every guest runs on
# (checksum guests give their known results after the move; memdirty and
# pagetables report no corruption).  Then a target dies in the middle of
# a migration to it: that domain stays on the source, the others go
# elsewhere, no domain is lost, the report says what happened and the
# exit status is 4.  Malformed inventories are refused with file, line
# and element.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"evacuate"' "$top_srcdir/xl/xl-cmdtable.c" ||
   ! grep -q '"migrate"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl evacuate or xl migrate is not there"
    exit 77
fi
export FERRY_DATADIR="$top_srcdir/share"

plan 29
start_host S 512M || exit 99
start_host T1 256M || exit 99
start_host T2 192M || exit 99
start_host T3 160M || exit 99
S=$T/S
ex="$top_srcdir/examples"
CS3M=$(checksum_expect 3000000)

# The inventory: T3 is "slow" and the checksum guests keep off it.
cat >"$T/fleet.xml" <<EOF
<?xml version="1.0"?>
<fleet version="1">
  <host name="S" transport="local" address="S"/>
  <host name="T1" transport="local" address="T1" tags="fast"/>
  <host name="T2" transport="local" address="T2" tags="fast"/>
  <host name="T3" transport="local" address="T3" tags="slow"/>
  <rule domains="cs*" exclude-tags="slow"/>
</fleet>
EOF

# mk NAME GUEST MEMORY [-p] [xl.cfg settings...]
mk() {
    n=$1 g=$2 m=$3 p=""; shift 3
    [ "${1:-}" = -p ] && { p=-p; shift; }
    xlh "$S" create $p -e "$ex/$g.cfg" "name=\"$n\"" "memory=$m" \
        'on_poweroff="preserve"' "$@" >"$T/create.out" 2>&1 ||
        { diag "create $n failed"; sed 's/^/# /' "$T/create.out"; }
}
# The checksum guests are the largest, so they are migrated first, while
# they compute (steps=3000000 takes several seconds even alone).
mk cs1 checksum 48 'cmdline="steps=3000000"'
mk cs2 checksum 46 'cmdline="steps=3000000"'
mk cs3 checksum 44 'cmdline="steps=3000000"'
mk cs4 checksum 42 'cmdline="steps=3000000"'
mk md1 memdirty 40 'cmdline="wss=4M rate=1M"'
mk id1 idle 36
mk pt1 pagetables 32
mk md2 memdirty 28 'cmdline="wss=2M rate=512K"'
mk id2 idle 24
mk pt2 pagetables 20
mk id3 idle 18
mk id4 idle 16
n=$(xlh "$S" list | grep -vc -e '^Name' -e '^Domain-0')
[ "$n" = 12 ] && ok "12 domains on the source" ||
    fail "12 domains on the source ($n)"

free_before() { sed -n "s/.*\"host\":\"$1\".*\"free_kb\":\([0-9]*\).*/\1/p" \
    "$T/dry.json"; }
plan_lines() { grep '"event":"plan"' "$1" | grep -v '"replan"'; }
# field KEY: the value of KEY in each JSON line on stdin.
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
list_names() { xlh "$1" list | awk 'NR > 1 && $1 != "Domain-0" {print $1}' |
    sort; }
# snap: every host's domain names into $T/list.HOST (xl is slow under load).
snap() {
    for hn in S T1 T2 T3; do
        [ -f "$T/$hn/ferry-hv.pid" ] && list_names "$T/$hn" >"$T/list.$hn"
    done
}

# ---- the dry run --------------------------------------------------------
xlh "$S" list | awk '{print $1, $2}' >"$T/before.list"
"$XL" evacuate --fleet "$T/fleet.xml" --dry-run S >"$T/dry.txt" 2>&1
rc=$?
if [ $rc = 0 ] && grep -q '^Evacuation plan for S ' "$T/dry.txt" &&
   grep -q '^Dry run: nothing was changed.  12 domains would move, 0 would stay on S.' "$T/dry.txt"; then
    ok "dry run prints the plan"
else
    fail "dry run prints the plan (rc $rc)"
fi
sed 's/^/# /' "$T/dry.txt"
"$XL" evacuate --fleet "$T/fleet.xml" --dry-run --json S >"$T/dry.json" 2>&1
rc=$?
[ $rc = 0 ] && [ "$(plan_lines "$T/dry.json" | grep -c '"target":"T')" = 12 ] &&
    ok "dry run --json: 12 plan events with a target" ||
    { fail "dry run --json: 12 plan events with a target (rc $rc)"
      sed 's/^/# /' "$T/dry.json"; }
xlh "$S" list | awk '{print $1, $2}' >"$T/after.list"
if cmp -s "$T/before.list" "$T/after.list" &&
   [ -z "$(list_names "$T/T1")$(list_names "$T/T2")$(list_names "$T/T3")" ]
then
    ok "the dry run changed nothing"
else
    fail "the dry run changed nothing"
fi
if plan_lines "$T/dry.json" | grep '"domain":"cs' | grep -q '"target":"T3"'
then
    fail "the rule keeps checksum guests off T3"
else
    ok "the rule keeps checksum guests off T3"
fi

# ---- the real run -------------------------------------------------------
t0=$(date +%s)
"$XL" evacuate --fleet "$T/fleet.xml" --parallel 3 --json S >"$T/run.json" \
    2>"$T/run.err"
rc=$?
diag "evacuation took $(( $(date +%s) - t0 )) s"
[ $rc = 0 ] && ok "the evacuation exits 0" ||
    { fail "the evacuation exits 0 (rc $rc)"; sed 's/^/# /' "$T/run.err"
      grep -v progress "$T/run.json" | sed 's/^/# /'; }
[ -z "$(list_names "$S")" ] && ok "the source is empty" ||
    fail "the source is empty: $(list_names "$S" | tr '\n' ' ')"
plan_lines "$T/dry.json" >"$T/plan.dry"
plan_lines "$T/run.json" >"$T/plan.run"
cmp -s "$T/plan.dry" "$T/plan.run" &&
    ok "the real run made the dry run's plan" ||
    { fail "the real run made the dry run's plan"
      diff "$T/plan.dry" "$T/plan.run" | sed 's/^/# /'; }

# Every domain is where the plan said, and only there.
snap
bad=""
for n in cs1 cs2 cs3 cs4 md1 md2 pt1 pt2 id1 id2 id3 id4; do
    want=$(grep "\"domain\":\"$n\"" "$T/plan.dry" | field target)
    where=""
    for hn in T1 T2 T3; do
        grep -qx "$n" "$T/list.$hn" && where="$where$hn"
    done
    [ "$where" = "$want" ] || bad="$bad $n:$where(want $want)"
done
[ -z "$bad" ] && ok "each domain is on its planned target, once" ||
    fail "each domain is on its planned target, once:$bad"

# No target got more than it had free before.
over=""
for hn in T1 T2 T3; do
    sum=$(grep "\"target\":\"$hn\"" "$T/plan.dry" | field memory_kb |
          awk '{s += $1} END {print s + 0}')
    free=$(free_before "$hn")
    diag "$hn: $sum KiB placed, $free KiB free before"
    [ "$sum" -le "$free" ] || over="$over $hn"
done
[ -z "$over" ] && ok "no target holds more than its free memory" ||
    fail "targets over their free memory:$over"

# The report: all twelve migrated, with where and downtime.
report=$(grep '"event":"report"' "$T/run.json")
nm=$(echo "$report" | grep -o '"outcome":"migrated","where":"T[123]","target":"T[123]","downtime_ms":[0-9]*,"total_time_ms":[0-9]*' | wc -l)
[ "$nm" = 12 ] && echo "$report" | grep -q '"status":"empty","exit_status":0' &&
    ok "the report lists 12 migrated domains with where and downtime" ||
    { fail "the report lists 12 migrated domains ($nm)"
      echo "$report" | sed 's/^/# /'; }
echo "$report" | grep -o '"domain":"[a-z0-9]*"[^}]*"downtime_ms":[0-9]*' |
    sed 's/"domid".*"where"/ ->/; s/,"target".*downtime_ms"/ downtime ms/' |
    sed 's/^/# /'
[ "$(grep -c '"event":"done"' "$T/run.json")" = 12 ] &&
    ok "one done event per domain" || fail "one done event per domain"

# ---- the guests run on where they went ----------------------------------
host_of() { grep "\"domain\":\"$1\"" "$T/plan.dry" | field target; }
running() {
    case $("$XL" -H "$1" list "$2" 2>/dev/null | awk 'NR == 2 {print $5}') in
    r-----|-b----|------) return 0 ;;
    esac
    return 1
}
diag "$(( $(date +%s) - t0 )) s: checking the guests"
bad=""
for n in md1 md2 pt1 pt2 id1 id2 id3 id4; do
    hd=$T/$(host_of "$n")
    console_dump "$hd" "$n" >"$T/con"
    if ! grep -q 'resumed, cancelled=0' "$T/con" ||
       grep -q -e MISMATCH -e FAILED "$T/con" || ! running "$hd" "$n"
    then
        bad="$bad $n"
        sed "s/^/# $n: /" "$T/con" | tail -5
    fi
done
[ -z "$bad" ] && ok "memdirty, pagetables, idle run on with no errors" ||
    fail "guests with errors after the move:$bad"
# The busy guests have shown they run on; stop them so that the checksum
# guests finish sooner.
for n in md1 md2 pt1 pt2 id1 id2 id3 id4; do
    xlh "$T/$(host_of "$n")" destroy "$n" 2>/dev/null
done
for n in cs1 cs2 cs3 cs4; do
    hd=$T/$(host_of "$n")
    wait_for 120 finished "$hd" "$n" || diag "$n did not finish"
    r=$(result_of "$hd" "$n")
    [ "$r" = "$CS3M" ] && ok "$n: result $r after the move" ||
        { fail "$n: result '$r' after the move, expected $CS3M"
          console_dump "$hd" "$n" | sed 's/^/# /'; }
done
check "T1: auditor clean" xlh "$T/T1" audit
check "T2: auditor clean" xlh "$T/T2" audit
check "T3: auditor clean" xlh "$T/T3" audit

# ---- a target dies in the middle of a migration to it -------------------
diag "$(( $(date +%s) - t0 )) s: the run with a failing target"
# (lib.sh's helpers use $h, $d, $pid and $i: the loops here use others.)
for hn in S T1 T2 T3; do
    for dn in $(list_names "$T/$hn"); do xlh "$T/$hn" destroy "$dn"; done
done
mk ea idle 40
mk eb idle 32
mk ec idle 24
mk ed idle 16
mk ep idle 16 -p           # paused: cannot suspend itself, so it stays
"$XL" evacuate --fleet "$T/fleet.xml" --dry-run --json S >"$T/dry2.json"
# The first migration to T2 stops itself after its first live pass; one
# migration at a time, so it is the only one in flight when T2 dies and
# every domain planned after it is placed again without T2.
victim=$(plan_lines "$T/dry2.json" | grep '"target":"T2"' | head -1 |
         field domain)
diag "the first domain for T2: $victim"
FERRY_EVACUATE_FAULT="T2:1:send:live:stop" \
    "$XL" evacuate --fleet "$T/fleet.xml" --parallel 1 --json S \
    >"$T/run2.json" 2>"$T/run2.err" &
evpid=$!
started() { grep '"event":"start".*"target":"T2"' "$T/run2.json"; }
wait_for 30 started
mpid=$(started | head -1 | field pid)
stopped() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ]; }
if [ -n "$mpid" ] && wait_for 30 stopped "$mpid"; then
    stop_host "$T/T2"
    kill -CONT "$mpid"
    ok "the migration of $victim to T2 stopped and T2 was killed"
else
    fail "the migration to T2 stopped (pid '$mpid')"
    kill -CONT "$mpid" 2>/dev/null
fi
wait $evpid
rc=$?
[ $rc = 4 ] && ok "exit status 4: domains stayed" ||
    { fail "exit status 4 (got $rc)"; sed 's/^/# /' "$T/run2.err"; }
report=$(grep '"event":"report"' "$T/run2.json")
echo "$report" | sed 's/^/# /'
if echo "$report" | grep -q '"lost_targets":\["T2"\]' &&
   echo "$report" | grep -q "\"domain\":\"$victim\"[^}]*\"outcome\":\"stayed\",\"where\":\"source\",\"target\":\"T2\",\"reason\":\"[^\"]" &&
   ! echo "$report" | grep -q '"where":"T2"' &&
   grep -q '"event":"plan","replan":true' "$T/run2.json" &&
   [ "$(echo "$report" | grep -o '"outcome":"migrated"' | wc -l)" = 3 ] &&
   echo "$report" | grep -q '"domain":"ep"[^}]*"outcome":"stayed","where":"source","target":null,"reason":"it is paused' &&
   grep -q '"event":"target-lost","host":"T2"' "$T/run2.json"; then
    ok "the report: T2 lost, $victim and ep stayed with reasons, 3 migrated"
else
    fail "the report: T2 lost, $victim and ep stayed with reasons, 3 migrated"
fi
snap
bad=""
for dn in ea eb ec ed ep; do
    c=0
    for hn in S T1 T3; do
        grep -qx "$dn" "$T/list.$hn" && c=$((c + 1))
    done
    [ $c = 1 ] || bad="$bad $dn:$c"
done
[ -z "$bad" ] && grep -qx "$victim" "$T/list.S" &&
    ok "no domain lost: each on exactly one live host, $victim on S" ||
    fail "domains not on exactly one live host:$bad"
running "$S" "$victim" &&
    ok "$victim runs on at the source" || fail "$victim runs on at the source"

# ---- malformed inventories ----------------------------------------------
diag "$(( $(date +%s) - t0 )) s: malformed inventories"
bad_fleet() {
    f=$T/$1.xml; shift
    cat >"$f"
    "$XL" evacuate --fleet "$f" --dry-run S >"$T/bad.out" 2>&1
    rc=$?
    if [ $rc = 1 ] && grep -q -- "$1" "$T/bad.out"; then
        ok "refused: $(cat "$T/bad.out")"
    else
        fail "refused with '$1' (rc $rc)"; sed 's/^/# /' "$T/bad.out"
    fi
}
bad_fleet schema "schema.xml:3: element <host>: .*max-domains" <<EOF
<fleet>
  <host name="S" transport="local" address="S"/>
  <host name="T1" transport="local" address="T1" max-domains="many"/>
</fleet>
EOF
bad_fleet dup "dup.xml:4: element <host>: duplicate host \"T1\" (first defined at line 3)" <<EOF
<fleet>
  <host name="S" transport="local" address="S"/>
  <host name="T1" transport="local" address="T1"/>
  <host name="T1" transport="local" address="T2"/>
</fleet>
EOF
echo cert >"$T/host.pem"
echo ca >"$T/ca.pem"
bad_fleet cred "cred.xml:4: element <tls>: host \"T9\": cannot read key file $T/nokey.pem: No such file or directory" <<EOF
<fleet>
  <host name="S" transport="local" address="S"/>
  <host name="T9" transport="tls" address="127.0.0.1:9">
    <tls cert="host.pem" key="nokey.pem" ca="ca.pem"/>
  </host>
</fleet>
EOF
"$XL" evacuate --fleet "$T/fleet.xml" --to T1,T9 --dry-run S \
    >"$T/bad.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "unknown host \"T9\" in --to: not in $T/fleet.xml" \
    "$T/bad.out" && ok "refused: $(cat "$T/bad.out")" ||
    { fail "--to with an unknown host refused (rc $rc)"
      sed 's/^/# /' "$T/bad.out"; }
done_testing
