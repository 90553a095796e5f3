# hello: the smallest guest: print a line, power off.  Used by the
# integration tests of host life cycle.
        .include "../../guests/abi.inc"
        .org 0x400000
        .entry start
start:  mov rax, HYPERVISOR_console_io
        mov rdi, 0                      # CONSOLEIO_write
        mov rsi, msg_end - msg
        mov rdx, msg
        hcall
        mov r8, 0                       # SHUTDOWN_poweroff
        stq [sp - 8], r8
        lea rsi, [sp - 8]
        mov rax, HYPERVISOR_sched_op
        mov rdi, SCHEDOP_shutdown
        hcall
        halt
msg:    .ascii "hello from a ferry guest\n"
msg_end:
        .align 8
