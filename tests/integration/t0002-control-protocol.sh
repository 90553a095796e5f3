#!/bin/sh
# Malformed control requests get errors; the daemon keeps serving.
. "$(dirname "$0")/lib.sh"

start_host A 128M || exit 99
h=$T/A
# ctl-abuse prints the plan and checks 1..29; ours follow.
"$top_builddir/tests/integration/ctl-abuse" "$h" 2 || _failed=$((_failed + 1))
_n=29
check "the daemon still answers xl after the abuse" xlh "$h" list
done_testing
