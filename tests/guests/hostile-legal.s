# hostile-legal: unusual things Xen permits a PV guest, which must leave
# the hypervisor and its auditor (ferry-hv --audit) undisturbed:
#
#  1. MMU_MACHPHYS_UPDATE of its own shared_info frame (pfn 0x77);
#  2. a grant device mapping (GNTMAP_device_map) of one of its own frames,
#     granted to itself.  A guest does not know its domain id, so it grants
#     and maps as each id in turn until the map succeeds.
#
# Prints "legal: <what> rc=<hex>" lines, "legal: holding", and then keeps
# the device mapping until it is destroyed.
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .equ HYPERVISOR_grant_table_op, 20
        .equ GNTTABOP_map_grant_ref, 0
        .equ GNTTABOP_setup_table, 2
        .equ GTF_permit_access, 1
        .equ GNTMAP_device_map, 1
        .equ MMU_MACHPHYS_UPDATE, 1
        .org BASE
        .entry start

start:  mov r12, rsi                    # start_info
        ldq r13, [r12 + SI_NR_PAGES]
        shl r13, r13, 12
        add r13, r13, BASE              # r13 = the free VA slot

        # 1. The M2P entry of shared_info.
        mov r3, req
        ldq r1, [r12 + SI_SHARED_INFO]
        or r1, r1, MMU_MACHPHYS_UPDATE
        stq [r3], r1
        mov r1, 0x77
        stq [r3 + 8], r1
        mov rdi, r3
        mov rsi, 1
        mov rdx, 0
        mov r10, DOMID_SELF
        mov rax, HYPERVISOR_mmu_update
        hcall
        mov r1, name_machphys
        call report

        # 2. A grant table of one frame, mapped at the free slot.
        mov rax, HYPERVISOR_grant_table_op
        mov rdi, GNTTABOP_setup_table
        mov rsi, setup
        mov rdx, 1
        hcall
        mov r1, setup
        ldsw rax, [r1 + 8]              # status
        mov r1, name_setup
        call report
        mov rdi, r13
        ldq rsi, [r12 + SI_MFN_LIST]    # unused; keep the P2M list in r14
        mov r14, rsi
        mov r1, gframe
        ldq rsi, [r1]
        shl rsi, rsi, 12
        or rsi, rsi, PTE_SHINFO
        mov rdx, UVMF_INVLPG
        mov rax, HYPERVISOR_update_va_mapping
        hcall
        mov r1, name_mapgt
        call report

        # The frame granted: the last PFN's.
        ldq r1, [r12 + SI_NR_PAGES]
        sub r1, r1, 1
        shl r1, r1, 3
        add r1, r1, r14
        ldq r11, [r1]                   # r11 = its MFN
        stl [r13 + 4], r11

        mov r9, 1                       # the domain id tried
try:    stw [r13 + 2], r9
        mov r1, GTF_permit_access
        stw [r13], r1
        mov r3, mapop
        mov r1, 0
        stq [r3], r1                    # host_addr
        stq [r3 + 24], r1               # dev_bus_addr
        mov r1, GNTMAP_device_map
        stl [r3 + 8], r1
        mov r1, 0
        stl [r3 + 12], r1               # ref 0
        stw [r3 + 16], r9               # dom
        mov rax, HYPERVISOR_grant_table_op
        mov rdi, GNTTABOP_map_grant_ref
        mov rsi, r3
        mov rdx, 1
        hcall
        mov r3, mapop
        ldsw rax, [r3 + 18]             # status
        test rax, rax
        je mapped
        add r9, r9, 1
        cmp r9, 1024
        jb try
mapped: mov r1, name_devmap
        call report
        mov r3, mapop
        ldq rax, [r3 + 24]              # dev_bus_addr ^ (MFN << 12): 0
        shl r1, r11, 12
        xor rax, rax, r1
        mov r1, name_busaddr
        call report

        mov r1, msg_hold
        mov r3, msg_hold_end - msg_hold
        call print
hold:   halt
        jmp hold

# report: print "legal: <name at r1, 16 bytes> rc=<rax, 16 digits>".
report: mov r2, line + 7
        mov r3, 16
        copy r2, r1, r3
        mov r1, rax
        mov r6, line_end - 1
        mov r7, 16
        call puthex
        mov r1, line
        mov r3, line_end - line
        jmp print

        .include "lib.inc"

        .align 8
req:    .space 16
setup:  .word DOMID_SELF, 0             # dom
        .long 1                         # nr_frames
        .word 0, 0, 0, 0                # status
        .quad gframe                    # frame_list
gframe: .quad 0
mapop:  .space 32
line:   .ascii "legal:                  rc=0000000000000000\n"
line_end:
name_machphys:  .ascii "machphys-shinfo "
name_setup:     .ascii "setup-table     "
name_mapgt:     .ascii "map-grant-frame "
name_devmap:    .ascii "device-map      "
name_busaddr:   .ascii "bus-addr-xor    "
msg_hold:       .ascii "legal: holding\n"
msg_hold_end:
        .align 8
