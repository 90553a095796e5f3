# Shared helpers for ferry's integration tests (sourced, POSIX sh).
#
# Each test starts its own ferry-hv daemons in a fresh directory, drives
# the real xl, and prints TAP: plan with `plan N`, then `ok`/`fail` per
# check.  Daemons started here are stopped by pid on exit, whatever
# happens; nothing else is touched.

set -u

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
XL="$top_builddir/xl/xl"
HV="$top_builddir/hypervisor/ferry-hv"
AS="$top_builddir/guests/ferry-as"
export FERRY_GUEST_PATH="$top_builddir/guests${FERRY_GUEST_PATH:+:$FERRY_GUEST_PATH}"

T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX")
_n=0
_failed=0
_hosts=""

cleanup() {
    for h in $_hosts; do
        if [ -f "$h/ferry-hv.pid" ]; then
            pid=$(cat "$h/ferry-hv.pid" 2>/dev/null)
            [ -n "$pid" ] && kill "$pid" 2>/dev/null
            i=0
            while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
                sleep 0.05; i=$((i + 1))
            done
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        fi
    done
    # Domain monitors xl left behind exit when their host goes away.
    rm -rf "$T"
}
# A signal ends the test; the EXIT trap cleans up on the way out (dash
# would otherwise run cleanup and carry on with the script).
trap cleanup EXIT
trap 'exit 1' INT TERM

# Sanitizer builds: every process writes its reports to files in $T, so
# that a report from a detached daemon is not lost with its stderr.
for v in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS; do
    eval "cur=\${$v:-}"
    export "$v=${cur:+$cur:}log_path=$T/sanitizer"
done

# plan N: N checks of the test's own, plus the final sanitizer check.
plan() { echo "1..$(($1 + 1))"; }

ok() {
    _n=$((_n + 1))
    echo "ok $_n - $*"
}

fail() {
    _n=$((_n + 1)); _failed=$((_failed + 1))
    echo "not ok $_n - $*"
}

# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
    d=$1; shift
    if "$@" >"$T/out" 2>&1; then ok "$d"; else
        fail "$d"; sed 's/^/# /' "$T/out"; fi
}

# check_fails DESCRIPTION COMMAND...: ok if the command fails.
check_fails() {
    d=$1; shift
    if "$@" >"$T/out" 2>&1; then fail "$d"; sed 's/^/# /' "$T/out"; else
        ok "$d"; fi
}

diag() { echo "# $*"; }

# Stop the hosts, then check that no process wrote a sanitizer report.
stop_all_hosts() {
    for h in $_hosts; do
        [ -f "$h/ferry-hv.pid" ] && stop_host "$h"
    done
    _hosts=""
}

done_testing() {
    stop_all_hosts
    if ls "$T"/sanitizer.* >/dev/null 2>&1; then
        fail "no sanitizer reports"
        cat "$T"/sanitizer.* | head -60 | sed 's/^/# /'
    else
        ok "no sanitizer reports"
    fi
    [ "$_failed" -eq 0 ]
}

# start_host NAME MEMORY: a daemon with run dir $T/NAME, which the
# caller then uses as "$T/NAME".  (Not to be called in $(...): the list
# of hosts to stop at exit must be this shell's.)  Extra ferry-hv options
# come from $FERRY_HV_EXTRA_ARGS (split on blanks), e.g.
# FERRY_HV_EXTRA_ARGS="--migrate-listen 127.0.0.1:0 --xl $XL" start_host A 64M
start_host() {
    dir="$T/$1"
    # shellcheck disable=SC2086
    "$HV" --run-dir "$dir" --memory "$2" ${FERRY_HV_EXTRA_ARGS:-} \
        >"$T/$1.start" 2>&1 || {
        cat "$T/$1.start" >&2; return 1; }
    _hosts="$_hosts $dir"
}

stop_host() {
    pid=$(cat "$1/ferry-hv.pid")
    kill "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.05; i=$((i + 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

# xlh DIR ARGS...: xl against the host in DIR.
xlh() { h=$1; shift; "$XL" -H "$h" "$@"; }

# start_listener NAME MEMORY ARGS...: start_host with the real xl as its
# migration receiver and the ferry-hv options ARGS (--migrate-listen ...).
start_listener() {
    _sl_name=$1 _sl_mem=$2
    shift 2
    FERRY_HV_EXTRA_ARGS="--xl $XL $*"
    start_host "$_sl_name" "$_sl_mem"
    _sl_rc=$?
    FERRY_HV_EXTRA_ARGS=
    return $_sl_rc
}
# mig_addr HOST SCHEME: the HOST's tcp:// or tls:// listener, as its
# DIR/migrate.addr records it.
mig_addr() { grep "^$2://" "$1/migrate.addr"; }
# log_has HOST PATTERN: a line of the host's ferry-hv.log matches.
log_has() { grep -q -- "$2" "$1/ferry-hv.log"; }
# receivers_ended HOST: how many migration receivers of the host have
# ended; more_ended HOST N: more than N.
receivers_ended() { grep -c "exited with status" "$1/ferry-hv.log"; }
more_ended() { [ "$(receivers_ended "$1")" -gt "$2" ]; }

# hold_restore HOST SAVE: start `xl restore -e` on HOST from a FIFO and
# feed it SAVE's header and config, then the stream's first 9 MB, so that
# the restore is held mid-stream.  xl restore opens the file twice (its
# header and config, then the stream); fd 3, the FIFO's one writer, keeps
# it open throughout.  Sets rpid to xl's pid; its output is in
# $T/restore.out.
hold_restore() {
    mkfifo "$T/fifo"
    "$XL" -H "$1" restore -e "$T/fifo" >"$T/restore.out" 2>&1 &
    rpid=$!
    exec 3>"$T/fifo"
    _hr_hdr=$((48 + $(od -An -tu4 -j44 -N4 "$2")))
    head -c $_hr_hdr "$2" >&3
    wait_for 30 _hr_reopened ||
        diag "xl restore did not open the stream again"
    head -c 9000000 "$2" >&3
}
_hr_reopened() {
    grep -q 'Parsing config' "$T/restore.out" &&
        ls -l "/proc/$rpid/fd" | grep -q "$T/fifo"
}

# wait_for SECONDS COMMAND...: poll until the command succeeds.  The
# limit scales with FERRY_TEST_TIMEOUT_MULTIPLIER: a sanitizer build runs
# the same steps several times slower, and only a failing wait pays it.
wait_for() {
    limit=$(( $1 * 20 * ${FERRY_TEST_TIMEOUT_MULTIPLIER:-1} )); shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05; i=$((i + 1))
    done
    return 1
}

# The free memory (MiB) of a host, as xl info reports it.
free_mib() { xlh "$1" info | awk -F': ' '/^free_memory/ {print $2}'; }

# What a domain wrote on its console until now, at once (ferry's --dump).
# Tests poll this: a reader that follows the console for a time window
# costs that window on every poll, long enough in a sanitizer build for a
# short guest to finish between two steps of a test.
console_dump() { "$XL" -H "$1" console --dump "$2" </dev/null 2>/dev/null; }

# Whether the domain's console output contains a string.
console_has() { console_dump "$1" "$2" | grep -q -- "$3"; }

# ----------------------------------------------------------------------
# Reading save files (the xl, libxl and libxc layouts of ferry-stream).
# ----------------------------------------------------------------------

# u32 FILE OFFSET / u8 FILE OFFSET: little-endian integers from the file.
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }

# page_data_pages FILE: one line "OFFSET TYPE" for every data-bearing page
# of every PAGE_DATA record, TYPE being the PFINFO nibble (0 NOTAB, 1-4
# L1..L4, 9-12 the same pinned).  Walks the xl header, the libxl header
# and LIBXC_CONTEXT, the libxc headers, then the libxc records to END.
page_data_pages() {
    f=$1
    off=$((48 + $(u32 "$f" 44) + 16 + 8 + 24 + 16))
    size=$(wc -c <"$f")
    while [ $off -lt "$size" ]; do
        type=$(u32 "$f" $off) len=$(u32 "$f" $((off + 4)))
        body=$((off + 8))
        [ "$type" = 0 ] && return 0
        if [ "$type" = 1 ]; then
            count=$(u32 "$f" "$body")
            # The type nibble of each entry: the top byte of each u64.
            od -An -tu1 -v -j $((body + 8)) -N $((count * 8)) "$f" |
                tr -s ' ' '\n' | sed '/^$/d' |
                awk -v data=$((body + 8 + count * 8)) '
                    NR % 8 == 0 {
                        t = int($1 / 16)
                        if (t <= 4 || (t >= 9 && t <= 12))
                            print data + 4096 * page++, t
                    }'
        fi
        off=$((body + (len + 7) / 8 * 8))
    done
}

# ---- migration helpers: HOST is a run dir, NAME a domain name ------------
# result_of HOST NAME: what a checksum guest printed as "result: ...".
result_of() { console_dump "$1" "$2" | sed -n 's/^result: //p'; }
# checksum_expect STEPS: the checksum guest's result for steps=STEPS, as
# its model (tests/unit/test-checksum-model.c) computes it: the line of
# tests/checksum-results, which that test checks against the model.
checksum_expect() {
    sed -n "s/^$1 \([0-9a-f]\{16\}\)\$/\1/p" \
        "$top_srcdir/tests/checksum-results" | grep . ||
        echo "checksum_expect: no steps=$1 in tests/checksum-results" >&2
}
# finished HOST NAME: the domain has shut down.
finished() {
    "$XL" -H "$1" list "$2" 2>/dev/null | grep -q -- '---s--'
}
no_domain() { ! "$XL" -H "$1" list "$2" >/dev/null 2>&1; }
domid_of() { "$XL" -H "$1" list "$2" 2>/dev/null | awk 'NR == 2 {print $2}'; }
# running HOST NAME: running or blocked, neither paused nor shut down.
running() {
    "$XL" -H "$1" list "$2" 2>/dev/null |
        awk 'NR == 2 && $5 !~ /[psc]/ { ok = 1 } END { exit !ok }'
}
# The last "memdirty: pass N" the guest printed so far.
last_pass() {
    console_dump "$1" "$2" |
        sed -n 's/^memdirty: pass \([0-9]*\) .*/\1/p' | tail -1
}
# console_grows HOST NAME: a memdirty guest is making progress, its pass
# count goes up (it prints one at most once a second).
console_grows() {
    p0=""
    i=0
    limit=$((40 * ${FERRY_TEST_TIMEOUT_MULTIPLIER:-1}))
    while [ -z "$p0" ] && [ $i -lt $limit ]; do
        p0=$(last_pass "$1" "$2"); i=$((i + 1))
        [ -n "$p0" ] || sleep 0.5
    done
    [ -n "$p0" ] || return 1
    i=0
    while [ $i -lt $limit ]; do
        p1=$(last_pass "$1" "$2")
        [ -n "$p1" ] && [ "$p1" -gt "$p0" ] && return 0
        i=$((i + 1))
        sleep 0.5
    done
    return 1
}
# cpu_grows HOST NAME: the domain's CPU time (xl list's Time(s)) goes up
# within a few seconds, for guests that print nothing while they work.
cpu_time() { "$XL" -H "$1" list "$2" 2>/dev/null | awk 'NR == 2 {print $6}'; }
cpu_above() { awk -v a="$(cpu_time "$1" "$2")" -v b="$3" \
    'BEGIN { exit !(a != "" && a + 0 > b + 0) }'; }
cpu_grows() {
    t0=$(cpu_time "$1" "$2")
    [ -n "$t0" ] &&
        wait_for 5 \
            cpu_above "$1" "$2" "$t0"
}
# no_leftovers HOST: no leftover of a migration on the host.
no_leftovers() {
    ! "$XL" -H "$1" list 2>/dev/null |
        grep -q -- '--incoming\|--migratedaway\|--aborted'
}

# ---- credentials made by ferry-creds(8), the one command for a host ------
CREDS="$top_srcdir/tools/ferry-creds"
# creds NAME [ARGS...]: NAME's run dir $T/NAME gets the credentials of the
# test's fleet $T/fleet (the fleet key, and a certificate for host NAME
# and 127.0.0.1 unless ARGS say otherwise), before its daemon starts.
creds() {
    _creds_host=$1; shift
    if [ $# -eq 0 ]; then set -- --addr 127.0.0.1; fi
    "$CREDS" --fleet "$T/fleet" --name "$_creds_host" "$@" \
        "$T/$_creds_host" >/dev/null
}

# ---- test certificates (EC P-256, valid for 2 days) ----------------------
# mkca DIR NAME: a self-signed CA, DIR/NAME.{key,pem}, CN=NAME.
mkca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout "$1/$2.key" -out "$1/$2.pem" -days 2 \
        -subj "/CN=$2" >/dev/null 2>&1
}
# mkcert DIR NAME CA: DIR/NAME.{key,pem}, CN=NAME, signed by DIR/CA.
mkcert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1/$2.key" -out "$1/$2.csr" -subj "/CN=$2" \
        >/dev/null 2>&1 &&
    openssl x509 -req -in "$1/$2.csr" -CA "$1/$3.pem" -CAkey "$1/$3.key" \
        -CAcreateserial -out "$1/$2.pem" -days 2 >/dev/null 2>&1
}
# fleet_certs DIR: a fleet CA with certificates hostA and hostB, and a
# rogue CA with a certificate rogue; fails if openssl cannot make them.
fleet_certs() {
    mkdir -p "$1" && mkca "$1" fleet-ca && mkca "$1" rogue-ca &&
        mkcert "$1" hostA fleet-ca && mkcert "$1" hostB fleet-ca &&
        mkcert "$1" rogue rogue-ca
}
# mkcrl FLEET OUT CERT...: OUT, a CRL of the fleet CA FLEET/ca.{pem,key}
# (as ferry-creds made it) revoking each CERT, made by openssl ca with a
# database of its own (FLEET/crl-db, started afresh).
mkcrl() {
    _crl_ca=$1 _crl_db=$1/crl-db _crl_out=$2
    shift 2
    rm -rf "$_crl_db" && mkdir -p "$_crl_db" && : >"$_crl_db/index" &&
    printf '[ca]\ndefault_ca = fleet\n[fleet]\ndatabase = %s\ndefault_md = sha256\ndefault_crl_days = 2\n' \
        "$_crl_db/index" >"$_crl_db/ca.cnf" || return 1
    for _crl_c in "$@"; do
        openssl ca -config "$_crl_db/ca.cnf" -cert "$_crl_ca/ca.pem" \
            -keyfile "$_crl_ca/ca.key" -revoke "$_crl_c" >/dev/null 2>&1 ||
            return 1
    done
    openssl ca -config "$_crl_db/ca.cnf" -cert "$_crl_ca/ca.pem" \
        -keyfile "$_crl_ca/ca.key" -gencrl -out "$_crl_out" >/dev/null 2>&1
}
