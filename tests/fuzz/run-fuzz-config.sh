#!/bin/sh
# A bounded fuzz run of the JSON readers for `make check`: fuzz-config-
# driver runs the config target (fuzz-config.c) over the committed seeds
# (tests/fuzz/corpus-config: configs as ferry and libxl write them, the
# migration protocol's one-line objects), then over deterministic
# mutations of them for FUZZ_SECONDS (3 by default).  Any crash, failed
# round trip or sanitizer report fails the test; the driver's message
# says how to replay the input.  The long run with libFuzzer is
# `make fuzz-config`.
. "$(dirname "$0")/../integration/lib.sh"

DRV="$top_builddir/tests/fuzz/fuzz-config-driver"

plan 1
"$DRV" -t "${FUZZ_SECONDS:-3}" -s "${FUZZ_SEED:-1}" \
    "$top_srcdir/tests/fuzz/corpus-config" >"$T/fuzz.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^ok 2 - ' "$T/fuzz.out"; then
    ok "fuzz-config-driver: $(sed -n 's/^ok [12] - //p' "$T/fuzz.out" |
        tr '\n' ';')"
else
    fail "fuzz-config-driver exited with $rc"
    sed 's/^/# /' "$T/fuzz.out" | head -60
fi
done_testing
