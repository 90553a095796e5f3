# hostile: a guest that tries what a PV guest must not be able to do, and
# prints what the hypervisor answered, one "hostile: <what> rc=<hex>" line
# each, then powers off.  t0003-hostile-guests.sh checks every answer
# against Xen's.
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .equ PTE_P_A, 0x21
        .equ PTE_P_RW_A_D, 0x63
        .org BASE
        .entry start

start:  mov r12, rsi                    # start_info
        ldq r13, [r12 + SI_NR_PAGES]
        shl r13, r13, 12
        mov r1, BASE
        add r13, r13, r1                # r13 = the free VA slot
        ldq r15, [r12 + SI_MFN_LIST]    # r15 = P2M list
        ldq r1, [r12 + SI_PT_BASE]
        mov r2, BASE
        sub r1, r1, r2
        shr r1, r1, 12                  # pfn of the L4
        shl r1, r1, 3
        add r1, r1, r15
        ldq r14, [r1]                   # r14 = MFN of the boot L4

        # 1. Map a page-table frame (the L4) writable: -EBUSY.
        mov rdi, r13
        shl rsi, r14, 12
        or rsi, rsi, PTE_P_RW_A_D
        mov rax, HYPERVISOR_update_va_mapping
        mov rdx, 2
        hcall
        mov r1, name_rwpt
        call report

        # 2. The same read-only is allowed: 0.  Then unmap it again.
        mov rdi, r13
        shl rsi, r14, 12
        or rsi, rsi, PTE_P_A
        mov rax, HYPERVISOR_update_va_mapping
        mov rdx, 2
        hcall
        mov r1, name_ropt
        call report
        call unmap_slot

        # 3. Write Xen's slot 258 of its own L4: -EINVAL.
        shl r1, r14, 12
        add r1, r1, 258 * 8             # MMU_NORMAL_PT_UPDATE (cmd 0)
        mov r2, 0
        call mmu_update1
        mov r1, name_xenslot
        call report

        # 4. Pin the L4 a second time: -EINVAL.
        mov r1, MMUEXT_PIN_L4_TABLE
        mov r2, r14
        call mmuext1
        mov r1, name_pin2
        call report

        # 5. A table that maps itself writable.  Take the first free frame
        #    F, make its direct-map entry read-only, write F[0] = F|RW,
        #    then pin it as L1: -EBUSY.  (r9: F's MFN, r11: F's VA.)
        ldq r1, [r12 + SI_PT_BASE]
        mov r3, BASE
        sub r1, r1, r3
        shr r1, r1, 12
        ldq r3, [r12 + SI_NR_PT_FRAMES]
        add r1, r1, r3                  # first free pfn
        shl r3, r1, 3
        add r3, r3, r15
        ldq r9, [r3]
        shl r11, r1, 12
        mov r3, BASE
        add r11, r11, r3
        mov rdi, r11
        shl rsi, r9, 12
        or rsi, rsi, PTE_P_A            # read-only now
        mov rax, HYPERVISOR_update_va_mapping
        mov rdx, 2
        hcall
        mov r1, name_ro
        call report
        shl r1, r9, 12                  # F[0] = F | P|RW|A|D
        shl r2, r9, 12
        or r2, r2, PTE_P_RW_A_D
        call mmu_update1
        mov r1, name_write
        call report
        mov r1, MMUEXT_PIN_L1_TABLE
        mov r2, r9
        call mmuext1
        mov r1, name_selfrw
        call report
        # 6. Read-only self map instead: the pin succeeds (0), then unpin.
        shl r1, r9, 12
        shl r2, r9, 12
        or r2, r2, PTE_P_A
        call mmu_update1
        mov r1, MMUEXT_PIN_L1_TABLE
        mov r2, r9
        call mmuext1
        mov r1, name_selfro
        call report
        mov r1, MMUEXT_UNPIN_TABLE
        mov r2, r9
        call mmuext1
        mov r1, name_unpin
        call report

        # Descriptor tables.  d. Its L4 as a GDT frame: -EINVAL.
        mov r3, req
        stq [r3], r14
        mov rdi, r3
        mov rsi, 1
        mov rax, HYPERVISOR_set_gdt
        hcall
        mov r1, name_gdtpt
        call report

        # e. A descriptor written into its L4: -EINVAL.
        shl rdi, r14, 12
        movabs rsi, 0x00cff2000000ffff
        mov rax, HYPERVISOR_update_descriptor
        hcall
        mov r1, name_descpt
        call report

        # f. A mapping on behalf of domain 0: -EPERM.
        mov rdi, r13
        shl rsi, r14, 12
        or rsi, rsi, PTE_P_A
        mov rdx, UVMF_INVLPG
        mov r10, 0
        mov rax, HYPERVISOR_update_va_mapping_otherdomain
        hcall
        mov r1, name_otherdom
        call report

        # 7. Map every machine frame that is not ours, read-only, into the
        #    free slot: count successes (r5, must be 0) and -EBUSY answers
        #    (r14).  Our own frames are marked in a bitmap at `bitmap`.
        mov rax, HYPERVISOR_memory_op
        mov rdi, XENMEM_maximum_ram_page
        mov rsi, 0
        hcall
        mov r9, rax                     # max MFN + 1
        mov r11, 0                      # pfn
mark:   shl r1, r11, 3
        add r1, r1, r15
        ldq r1, [r1]                    # MFN of pfn r11
        call mark_mfn
        add r11, r11, 1
        ldq r1, [r12 + SI_NR_PAGES]
        cmp r11, r1
        jb mark
        ldq r1, [r12 + SI_SHARED_INFO]  # shared_info is ours too
        shr r1, r1, 12
        call mark_mfn
        mov r11, 0                      # mfn
        mov r5, 0
        mov r14, 0
scan:   shr r3, r11, 3
        mov r1, bitmap
        add r3, r3, r1
        ldb r3, [r3]
        and r1, r11, 7
        shr r3, r3, r1
        and r3, r3, 1
        jne next                        # our own frame
        mov rdi, r13
        shl rsi, r11, 12
        or rsi, rsi, PTE_P_A
        mov rax, HYPERVISOR_update_va_mapping
        mov rdx, 2
        hcall
        test rax, rax
        jne refused
        add r5, r5, 1
        call unmap_slot
        jmp next
refused:
        cmp rax, -16
        jne next
        add r14, r14, 1
next:   add r11, r11, 1
        cmp r11, r9
        jb scan
        mov rax, r5
        mov r1, name_foreign
        call report
        mov rax, r14
        mov r1, name_ebusy
        call report

        mov r1, msg_done
        mov r3, msg_done_end - msg_done
        call print
        mov r8, 0                       # SHUTDOWN_poweroff
        jmp shutdown

# mark_mfn: set bit r1 (an MFN of ours) in the bitmap.  Changes r1, r3,
# r5 and r8.
mark_mfn:
        shr r3, r1, 3
        mov r5, bitmap
        add r3, r3, r5
        ldb r5, [r3]
        and r1, r1, 7
        mov r8, 1
        shl r8, r8, r1
        or r5, r5, r8
        stb [r3], r5
        ret

# unmap_slot: clear the free VA slot.
unmap_slot:
        mov rdi, r13
        mov rsi, 0
        mov rax, HYPERVISOR_update_va_mapping
        mov rdx, 2
        hcall
        ret

# mmu_update1: one request {ptr = r1, val = r2}; rax = the result.
mmu_update1:
        mov r3, req
        stq [r3], r1
        stq [r3 + 8], r2
        mov rdi, r3
        mov rsi, 1
        mov rdx, 0
        mov r10, DOMID_SELF
        mov rax, HYPERVISOR_mmu_update
        hcall
        ret

# mmuext1: one op {cmd = r1, mfn = r2}; rax = the result.
mmuext1:
        mov r3, req
        stq [r3], r1
        stq [r3 + 8], r2
        mov r1, 0
        stq [r3 + 16], r1
        mov rdi, r3
        mov rsi, 1
        mov rdx, 0
        mov r10, DOMID_SELF
        mov rax, HYPERVISOR_mmuext_op
        hcall
        ret

# report: print "hostile: <name at r1> rc=<rax as 16 hex digits>\n".
report: push rax
        mov r2, line
        mov r3, 16
        copy r2, r1, r3                 # names are 16 bytes, space-padded
        mov r6, line + 16 + 3 + 16      # after "rc=" and 16 digits
        pop r1
        mov r7, 16
        call puthex
        mov r1, prefix
        mov r3, 9
        call print
        mov r1, line
        mov r3, line_end - line
        jmp print

        .include "lib.inc"

prefix:       .ascii "hostile: "
name_rwpt:    .ascii "map-pt-rw       "
name_ropt:    .ascii "map-pt-ro       "
name_xenslot: .ascii "l4-xen-slot     "
name_pin2:    .ascii "pin-twice       "
name_ro:      .ascii "direct-map-ro   "
name_write:   .ascii "write-self-rw   "
name_selfrw:  .ascii "pin-self-rw     "
name_selfro:  .ascii "pin-self-ro     "
name_unpin:   .ascii "unpin           "
name_foreign: .ascii "foreign-mapped  "
name_ebusy:   .ascii "foreign-ebusy   "
name_gdtpt:   .ascii "gdt-pt          "
name_descpt:  .ascii "desc-pt         "
name_otherdom: .ascii "otherdom-dom0   "
line:         .ascii "                rc=0000000000000000\n"
line_end:
msg_done:     .ascii "hostile: done\n"
msg_done_end:
              .align 8
req:          .space 32
              .align 4096
bitmap:       .space 65536
