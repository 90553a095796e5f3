# fault: registers a page-fault handler (set_trap_table), touches an
# unmapped address, and lets the handler map a page there and return with
# iret; the load then runs again and succeeds.  Prints
# "fault: recovered after N fault(s) at <slot>" and powers off.
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .org BASE
        .entry start

start:  mov r12, rsi                    # start_info
        ldq r13, [r12 + SI_NR_PAGES]
        shl r13, r13, 12
        mov r1, BASE
        add r13, r13, r1                # the empty slot after the direct map
        mov rax, HYPERVISOR_set_trap_table
        mov rdi, traps
        hcall
        mov r11, 0                      # faults handled
        ldq r9, [r13 + 8]               # faults once, then succeeds
        add r11, r11, 48                # the count as a digit
        mov r1, msg_count
        stb [r1], r11
        mov rax, HYPERVISOR_console_io
        mov rdi, 0
        mov rsi, msg_end - msg
        mov rdx, msg
        hcall
        mov r8, 0                       # SHUTDOWN_poweroff
        jmp shutdown
        .include "lib.inc"

# The #PF handler: r1 = error code, r2 = faulting address; map shared_info
# read-only at that page and return to the faulting load.
handler:
        push rax
        push rdi
        push rsi
        push rdx
        add r11, r11, 1
        mov rdi, r2
        and rdi, rdi, -4096
        ldq rsi, [r12 + SI_SHARED_INFO]
        or rsi, rsi, 0x21               # P|A, read-only
        mov rdx, 2
        mov rax, HYPERVISOR_update_va_mapping
        hcall
        pop rdx
        pop rsi
        pop rdi
        pop rax
        iret

        .align 8
traps:  .byte 14, 0
        .word 0
        .long 0
        .quad handler
        .quad 0, 0                      # end of the table
msg:    .ascii "fault: recovered after "
msg_count:
        .ascii "? fault(s)\n"
msg_end:
        .align 8
