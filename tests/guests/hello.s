# hello: the smallest guest: print a line, power off.  Used by the
# integration tests of host life cycle.
        .include "../../guests/abi.inc"
        .org 0x400000
        .entry start
start:  mov r1, msg
        mov r3, msg_end - msg
        call print
        mov r8, 0                       # SHUTDOWN_poweroff
        jmp shutdown
        .include "lib.inc"
msg:    .ascii "hello from a ferry guest\n"
msg_end:
        .align 8
