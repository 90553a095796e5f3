#!/bin/sh
# xl evacuate --json with a domain whose name needs JSON escapes (a quote,
# a backslash, a control character, UTF-8): the plan names it exactly,
# and the error of its failed move, which evacuate reads from its xl
# migrate child's JSON and writes again in its own, comes through
# unchanged (its \u0001 used to come out as "u0001").  One domain moves,
# the other cannot (the target has a domain of that name already).
. "$(dirname "$0")/lib.sh"

export FERRY_DATADIR="$top_srcdir/share"
plan 5
start_host S 96M || exit 99
start_host D 96M || exit 99
S=$T/S D=$T/D
ex="$top_srcdir/examples"
NAME=$(printf 'q"u\\o\001te \303\251')       # q"u\o^Ate é
JNAME='q\"u\\o\u0001te é'                    # as JSON writes it

cat >"$T/fleet.xml" <<EOF2
<?xml version="1.0"?>
<fleet version="1">
  <host name="S" transport="local" address="S"/>
  <host name="D" transport="local" address="D"/>
</fleet>
EOF2
cfgname='name="q\"u\\o\x01te é"'
check "S: the oddly named guest and a plain one" sh -c \
    "'$XL' -H '$S' create -e '$ex/idle.cfg' '$cfgname' &&
     '$XL' -H '$S' create -e '$ex/idle.cfg' 'name=\"plain\"'"
check "D: a guest of that name already" \
    xlh "$D" create -e "$ex/idle.cfg" "$cfgname"

"$XL" evacuate --fleet "$T/fleet.xml" --json S >"$T/run.json" 2>"$T/run.err"
grep -F '"event":"plan"' "$T/run.json" |
    grep -qF "\"domain\":\"$JNAME\"" &&
    ok "the plan names the domain exactly" ||
    { fail "the plan names the domain exactly"; sed 's/^/# /' "$T/run.json"; }
grep -F '"event":"failed"' "$T/run.json" | grep -qF \
    "\"error\":\"the target refused the domain: a domain named \\\"$JNAME\\\" already exists on the target\"" &&
    ok "its error comes through the child's JSON unchanged" ||
    { fail "its error comes through the child's JSON unchanged"
      grep -F '"event":"failed"' "$T/run.json" | sed 's/^/# /'; }
[ "$(domid_of "$D" plain)" ] && [ "$(domid_of "$S" "$NAME")" ] &&
    ok "plain moved, the other stays on S" ||
    fail "plain moved, the other stays on S"
done_testing
