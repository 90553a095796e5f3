#!/bin/sh
# Malformed control requests get errors; the daemon keeps serving.
. "$(dirname "$0")/lib.sh"

start_host A 128M || exit 99
h=$T/A
"$top_builddir/tests/integration/ctl-abuse" "$h"
rc=$?
# The daemon is still alive and answers xl.
if xlh "$h" list >/dev/null 2>&1; then echo "# daemon alive after abuse"; else rc=1; fi
exit $rc
