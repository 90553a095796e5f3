#!/bin/sh
# Sizes are read one way everywhere (common/size.h): ferry-hv --memory,
# xl.cfg memory and maxmem, and xl migrate --bandwidth take the same
# units (100MiB, 2G, 512k ...) and refuse, with the value and what is
# wrong with it, a size that does not fit 64 bits instead of wrapping it.
. "$(dirname "$0")/lib.sh"

plan 9
ex="$top_srcdir/examples"

# refused WHAT EXPECTED-MESSAGE COMMAND...: fails, says so, leaves nothing.
refused() {
    d=$1; want=$2; shift 2
    if "$@" >"$T/out" 2>&1; then
        fail "$d: accepted"
    elif grep -qF -- "$want" "$T/out"; then
        ok "$d"
    else
        fail "$d: no \"$want\""; sed 's/^/# /' "$T/out"
    fi
}

refused "ferry-hv --memory 2^64 bytes" \
    "ferry-hv: --memory '18446744073709551616' is too large" \
    "$HV" --run-dir "$T/X" --memory 18446744073709551616
refused "ferry-hv --memory 2^64 bytes in G" \
    "ferry-hv: --memory '17179869184G' is too large" \
    "$HV" --run-dir "$T/X" --memory 17179869184G
refused "ferry-hv --memory 1.5G" \
    "ferry-hv: --memory '1.5G' is not a size (digits, then optionally B, K, M, G or T)" \
    "$HV" --run-dir "$T/X" --memory 1.5G
[ ! -e "$T/X/ferry-hv.pid" ] && ok "no daemon was started" ||
    fail "no daemon was started"

# The units as sizes: 96MiB of machine memory is 96 MiB.
start_host A 96MiB || exit 99
start_host B 64M || exit 99
A=$T/A B=$T/B
xlh "$A" info | grep -q '^total_memory *: 96$' &&
    ok "A: --memory 96MiB is 96 MiB" ||
    { fail "A: --memory 96MiB is 96 MiB"; xlh "$A" info | sed 's/^/# /'; }

check "A: idle guest with memory = \"16MiB\"" \
    xlh "$A" create -e "$ex/idle.cfg" 'memory="16MiB"'
refused "migrate --bandwidth 2^64 bytes/s, in G" \
    'migrate: --bandwidth "17179869184G" is too large' \
    xlh "$A" migrate --bandwidth 17179869184G idle "local:$B"
check "migrate --bandwidth 100MiB" \
    xlh "$A" migrate -e --bandwidth 100MiB idle "local:$B"
[ "$(domid_of "$B" idle)" ] && no_domain "$A" idle &&
    ok "the guest moved to B" || fail "the guest moved to B"
done_testing
