# ticker: prints "tick N" every 100 ms (timer + SCHEDOP_block) until it is
# asked to power off through ferry's control word, then powers off.  The
# integration tests use it to see a guest make progress, stop under
# xl pause, resume under xl unpause and shut down cooperatively.
        .include "../../guests/abi.inc"
        .equ PERIOD_NS, 100000000
        .org 0x400000
        .entry start

start:  mov r12, rsi                    # start_info
        # Map shared_info in the slot just past the direct map.
        ldq r13, [r12 + SI_NR_PAGES]
        shl r13, r13, 12
        mov r1, 0x400000
        add r13, r13, r1                # r13 = shared_info VA
        mov rax, HYPERVISOR_update_va_mapping
        mov rdi, r13
        ldq rsi, [r12 + SI_SHARED_INFO]
        or rsi, rsi, 0x63               # P|RW|A|D
        mov rdx, 2                      # UVMF_INVLPG
        hcall
        mov r14, 0                      # tick count

loop:   rdtime r1
        mov r2, PERIOD_NS
        add rdi, r1, r2
        mov rax, HYPERVISOR_set_timer_op
        hcall
wait:   mov r1, 0
        stb [r13], r1                   # clear evtchn_upcall_pending
        ldq r2, [r13 + SHINFO_FERRY_CONTROL]
        test r2, r2
        jne control
        mov rax, HYPERVISOR_sched_op
        mov rdi, SCHEDOP_block
        hcall
        rdtime r1                       # woken: timer due yet?
        ldq r2, [r13 + SHINFO_FERRY_CONTROL]
        test r2, r2
        jne control
        add r14, r14, 1
        mov r1, r14
        call print_tick
        jmp loop

control:
        mov r1, 0
        stq [r13 + SHINFO_FERRY_CONTROL], r1  # acknowledge
        and r2, r2, 0xff
        sub r2, r2, 1                   # the reason
        mov r8, r2
        mov r1, msg_bye
        mov r3, msg_bye_end - msg_bye
        call print
        jmp shutdown

        .include "lib.inc"

# print_tick: "tick N\n" with N in r1, decimal.
print_tick:
        mov r6, numbuf_end
        mov r7, 10
        mov r8, 0
        stb [r6 - 1], r8
        sub r6, r6, 1
        mov r8, 10                      # '\n'
        stb [r6 - 1], r8
        sub r6, r6, 1
digit:  rem r9, r1, r7
        add r9, r9, 48
        stb [r6 - 1], r9
        sub r6, r6, 1
        div r1, r1, r7
        test r1, r1
        jne digit
        mov r8, msg_tick
        ldl r9, [r8]
        stl [r6 - 5], r9
        mov r9, 32
        stb [r6 - 1], r9
        sub r6, r6, 5
        mov r1, r6
        mov r3, numbuf_end - 1
        sub r3, r3, r6
        jmp print

msg_tick:  .ascii "tick"
msg_bye:   .ascii "ticker: shutting down\n"
msg_bye_end:
           .align 8
numbuf:    .space 64
numbuf_end:
           .align 8
