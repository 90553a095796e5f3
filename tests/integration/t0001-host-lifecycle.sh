#!/bin/sh
# Two hosts side by side; on each, xl creates a guest that boots, writes
# its console and powers off; xl list shows it in xl's format; xl destroy
# gives every frame back, and the auditor agrees.
. "$(dirname "$0")/lib.sh"

plan 17
hello="$top_builddir/tests/guests/hello.img"
start_host A 192M || exit 99
start_host B 256M || exit 99
A=$T/A B=$T/B

# Both answer, each for its own memory (192 and 256 MiB).
if [ "$(xlh "$A" info | grep '^total_memory')" = "total_memory           : 192" ] &&
   [ "$(xlh "$B" info | grep '^total_memory')" = "total_memory           : 256" ]; then
    ok "two daemons answer at once, each for its own host"
else
    fail "two daemons answer at once, each for its own host"
fi

for h in "$A" "$B"; do
    name=$(basename "$h")
    free0=$(free_mib "$h")
    cat >"$T/hello-$name.cfg" <<CFG
name = "hello"
memory = 16
kernel = "$hello"
CFG
    check "$name: xl create boots the guest" xlh "$h" create -e "$T/hello-$name.cfg"
    if wait_for 10 console_has "$h" hello "hello from a ferry guest"; then
        ok "$name: xl console shows the guest's output"
    else
        fail "$name: xl console shows the guest's output"
        xlh "$h" dmesg | sed 's/^/# /'
    fi
    # Powered off and kept (xl create -e: no monitor applies on_poweroff).
    if wait_for 10 sh -c "\"$XL\" -H \"$h\" list hello | grep -Eq '^hello +[0-9]+ +16 +1 +---s--  +[0-9]+\.[0-9]$'"; then
        ok "$name: xl list shows the powered-off domain in xl's format"
    else
        fail "$name: xl list shows the powered-off domain in xl's format"
        xlh "$h" list | sed 's/^/# /'
    fi
    check "$name: the auditor is clean with the domain present" xlh "$h" audit
    check "$name: xl destroy" xlh "$h" destroy hello
    check_fails "$name: the domain is gone" xlh "$h" list hello
    free1=$(free_mib "$h")
    if [ "$free0" = "$free1" ]; then
        ok "$name: every frame came back ($free1 MiB free)"
    else
        fail "$name: every frame came back ($free0 MiB before, $free1 after)"
    fi
done

# xl info: xl's keys, in xl's order, padded to 23 columns, this host's memory.
if xlh "$A" info >"$T/info" &&
   [ "$(awk -F' *: ' '{print $1}' "$T/info" | grep -E '^(host|nr_cpus|total_memory|free_memory|xen_major|xen_version|xend_config_format)$' | tr '\n' ' ')" = \
     "host nr_cpus total_memory free_memory xen_major xen_version xend_config_format " ] &&
   grep -Eq '^total_memory           : 192$' "$T/info"; then
    ok "xl info: xl's keys and layout, this host's 192 MiB"
else
    fail "xl info: xl's keys and layout"; sed 's/^/# /' "$T/info"
fi

check "xl list of a missing domain fails" sh -c "! \"$XL\" -H \"$A\" list nosuch"
done_testing
