#!/bin/sh
# make install, staged under DESTDIR below the configured prefix, gives a
# ferry that works from where it was installed: the installed ferry-hv
# runs the installed xl as its migration receiver, the installed xl finds
# the installed guests (no FERRY_GUEST_PATH) and fleet schema (no
# FERRY_DATADIR), and the man pages are installed.  Nothing of the build
# tree is used but the install itself.
. "$(dirname "$0")/lib.sh"

plan 6
unset FERRY_GUEST_PATH FERRY_DATADIR
D=$T/dest
if ${MAKE:-make} -C "$top_builddir" install DESTDIR="$D" >"$T/install.log" 2>&1; then
    ok "make install DESTDIR=..."
else
    fail "make install DESTDIR=..."; tail -20 "$T/install.log" | sed 's/^/# /'
    exit 1
fi
HV=$(find "$D" -type f -path '*/sbin/ferry-hv' | head -1)
XL=$(find "$D" -type f -path '*/bin/xl' ! -path '*/sbin/*' | head -1)
missing=""
[ -x "$HV" ] || missing="$missing ferry-hv"
[ -x "$XL" ] || missing="$missing xl"
for f in bin/ferry-as share/ferry/guests/idle.img share/ferry/guests/memdirty.img \
         share/ferry/guests/checksum.img share/ferry/guests/pagetables.img \
         share/ferry/fleet.rng share/man/man1/xl.1 share/man/man5/xl.cfg.5 \
         share/man/man5/ferry-fleet.5 share/man/man5/ferry-stream.5 \
         share/man/man7/ferry-guests.7 share/man/man7/ferry-isa.7 \
         share/man/man8/ferry-hv.8 share/doc/ferry/examples/idle.cfg; do
    [ -n "$(find "$D" -path "*/$f" | head -1)" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "programs, guests, schema, man pages and examples are installed" ||
    fail "installed files missing:$missing"
diag "installed: $HV and $XL"

# The installed daemon, listening, without --xl: its receiver is the
# installed xl.
FERRY_HV_EXTRA_ARGS="--migrate-listen 127.0.0.1:0 --migrate-insecure"
start_host B 64M || exit 1
FERRY_HV_EXTRA_ARGS=
start_host A 64M || exit 1
A=$T/A B=$T/B
if grep -q "receiver: $(dirname "$HV")/../bin/xl)" "$B/ferry-hv.log" ||
   grep -q "receiver: $XL)" "$B/ferry-hv.log"; then
    ok "the installed ferry-hv runs the installed xl as its receiver"
else
    fail "the installed ferry-hv runs the installed xl"
    grep receiver "$B/ferry-hv.log" | sed 's/^/# /'
fi

# A shipped guest by name, with the installed example config.
cfg=$(find "$D" -path '*/examples/idle.cfg' | head -1)
check "the installed xl creates the shipped idle guest" xlh "$A" create -q -e "$cfg"
if wait_for 10 console_has "$A" idle "idle: up"; then
    ok "and it runs"
else
    fail "and it runs"; xlh "$A" dmesg | tail -5 | sed 's/^/# /'
fi
cat >"$T/fleet.xml" <<FLEET
<?xml version="1.0"?>
<fleet version="1">
  <host name="A" transport="local" address="$A"/>
  <host name="B" transport="local" address="$B"/>
</fleet>
FLEET
"$XL" evacuate --fleet "$T/fleet.xml" --dry-run A >"$T/dry.txt" 2>&1
if [ $? = 0 ] && grep -q '^Evacuation plan for A ' "$T/dry.txt"; then
    ok "the installed xl finds its fleet schema (xl evacuate --dry-run)"
else
    fail "the installed xl finds its fleet schema"; sed 's/^/# /' "$T/dry.txt"
fi
xlh "$A" destroy idle
done_testing
