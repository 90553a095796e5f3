# hostile-crash: store into its own L4 through the read-only mapping the
# builder gave it.  PV page tables are never writable by the guest: the
# store faults, and with no handler the domain crashes with a log line
# naming the address and the PTE.
        .include "../../guests/abi.inc"
        .org 0x400000
        .entry start
start:  ldq r1, [rsi + SI_PT_BASE]
        mov r2, 0x1234
        stq [r1 + 8], r2
        halt
