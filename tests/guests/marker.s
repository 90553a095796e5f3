# marker: fills every free page of its memory, and part of its shared_info,
# with a 64-bit marker that appears nowhere in any image (it is computed),
# prints "marker: written", and waits to be destroyed.  scan.s then looks
# for the marker in a new domain's memory (t0018).
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .equ MARK_A, 0x5ca1ab1e0ddba11
        .equ MARK_B, 0x0f0e0d0c0b0a0908
        .org BASE
        .entry start

start:  mov r12, rsi                    # start_info
        movabs r9, MARK_A
        movabs r10, MARK_B
        xor r9, r9, r10                 # r9 = the marker
        ldq r1, [r12 + SI_PT_BASE]
        sub r1, r1, BASE
        shr r1, r1, 12
        ldq r2, [r12 + SI_NR_PT_FRAMES]
        add r1, r1, r2                  # first free PFN
        shl r1, r1, 12
        add r1, r1, BASE                # its VA
        ldq r13, [r12 + SI_NR_PAGES]
        shl r13, r13, 12
        add r13, r13, BASE              # the end of the direct map
        mov r3, 4096
fill:   fillq r1, r9, r3
        add r1, r1, 4096
        cmp r1, r13
        jb fill

        # shared_info: vcpu_info slots of vCPUs that do not exist.
        mov rdi, r13
        ldq rsi, [r12 + SI_SHARED_INFO]
        or rsi, rsi, PTE_SHINFO
        mov rdx, UVMF_INVLPG
        mov rax, HYPERVISOR_update_va_mapping
        hcall
        add r1, r13, 1024
        mov r3, 512
        fillq r1, r9, r3

        mov rax, HYPERVISOR_console_io
        mov rdi, CONSOLEIO_write
        mov rsi, msg_end - msg
        mov rdx, msg
        hcall
wait:   halt
        jmp wait

msg:    .ascii "marker: written\n"
msg_end:
        .align 8
