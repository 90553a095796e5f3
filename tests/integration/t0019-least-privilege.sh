#!/bin/sh
# least_privilege (issue 10): a builder session, the kind a stream parser
# (xl restore, xl migrate-receive) builds its domain through, gets no
# machine memory, acts only on the domain it created and writes only its
# frames; a control session writes none.  Tried by least-priv against a
# victim domain, which runs on untouched; then an xl restore goes through
# a builder session and its process holds no machine memory.
. "$(dirname "$0")/lib.sh"

plan 39
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
[ "$_n" = 33 ] && ok "least-priv ran all its checks" ||
    fail "least-priv ran $_n checks of 33"
check "the victim still runs" running "$A" victim
check "A: a domain to save" xlh "$A" create -e "$ex/idle.cfg" 'name="saved"'
check "A: xl save" xlh "$A" save saved "$T/saved.save"
check "A: xl restore" xlh "$A" restore -e "$T/saved.save"
check "A: auditor clean" xlh "$A" audit
done_testing
