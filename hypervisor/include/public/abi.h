/* SPDX-License-Identifier: MIT */
/*
 * ferry's hypervisor ABI: the numbers and wire structures that guests and
 * the toolstack share with ferry-hv.
 *
 * Everything here has Xen's value and, for structures, Xen's x86-64 layout,
 * because the stream formats carry these structures verbatim and the
 * toolstack above makes the same calls that Xen's does.  Every structure's
 * size and the offsets the stream format depends on are pinned by static
 * assertions at the bottom, so a change that breaks the layout does not
 * compile.
 *
 * Error returns are negative errno values; ferry-hv runs on Linux, whose
 * errno numbering for every value used here equals Xen's.
 */
#ifndef FERRY_PUBLIC_ABI_H
#define FERRY_PUBLIC_ABI_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t domid_t;

/* Reserved domain identifiers (public/xen.h). */
#define DOMID_FIRST_RESERVED 0x7FF0U
#define DOMID_SELF           0x7FF0U
#define DOMID_IO             0x7FF1U
#define DOMID_XEN            0x7FF2U
#define DOMID_COW            0x7FF3U
#define DOMID_INVALID        0x7FF4U
#define DOMID_IDLE           0x7FFFU
#define DOMID_ANY            0x7FF5U

/* Continuation marker: Xen's own -ERESTART (85 on Linux as on Xen). */
#define ERESTART 85

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1UL << PAGE_SHIFT)
#define L1_PAGETABLE_ENTRIES 512
#define INVALID_MFN   (~0UL)
#define INVALID_GFN   (~0UL)
#define INVALID_M2P_ENTRY (~0UL)
#define SHARED_M2P_ENTRY  (~0UL - 1UL)
#define VALID_M2P(e) (!((e) & (1UL << 63)))

/* Hypercall numbers (public/xen.h). */
#define __HYPERVISOR_set_trap_table                0
#define __HYPERVISOR_mmu_update                    1
#define __HYPERVISOR_set_gdt                       2
#define __HYPERVISOR_update_descriptor            10
#define __HYPERVISOR_memory_op                    12
#define __HYPERVISOR_update_va_mapping            14
#define __HYPERVISOR_set_timer_op                 15
#define __HYPERVISOR_xen_version                  17
#define __HYPERVISOR_console_io                   18
#define __HYPERVISOR_grant_table_op               20
#define __HYPERVISOR_vm_assist                    21
#define __HYPERVISOR_update_va_mapping_otherdomain 22
#define __HYPERVISOR_vcpu_op                      24
#define __HYPERVISOR_mmuext_op                    26
#define __HYPERVISOR_sched_op                     29
#define __HYPERVISOR_event_channel_op             32
#define __HYPERVISOR_domctl                       36

/* mmu_update (public/xen.h). */
#define MMU_NORMAL_PT_UPDATE       0
#define MMU_MACHPHYS_UPDATE        1
#define MMU_PT_UPDATE_PRESERVE_AD  2
#define MMU_PT_UPDATE_NO_TRANSLATE 3
#define MMU_UPDATE_PREEMPTED       (~(~0U >> 1))

struct mmu_update
{
    uint64_t ptr;   /* machine address of the PTE, command in bits 2:0 */
    uint64_t val;
};

/* mmuext_op (public/xen.h). */
#define MMUEXT_PIN_L1_TABLE        0
#define MMUEXT_PIN_L2_TABLE        1
#define MMUEXT_PIN_L3_TABLE        2
#define MMUEXT_PIN_L4_TABLE        3
#define MMUEXT_UNPIN_TABLE         4
#define MMUEXT_NEW_BASEPTR         5
#define MMUEXT_TLB_FLUSH_LOCAL     6
#define MMUEXT_INVLPG_LOCAL        7
#define MMUEXT_TLB_FLUSH_MULTI     8
#define MMUEXT_INVLPG_MULTI        9
#define MMUEXT_TLB_FLUSH_ALL      10
#define MMUEXT_INVLPG_ALL         11
#define MMUEXT_FLUSH_CACHE        12
#define MMUEXT_SET_LDT            13
#define MMUEXT_NEW_USER_BASEPTR   15
#define MMUEXT_CLEAR_PAGE         16
#define MMUEXT_COPY_PAGE          17
#define MMUEXT_FLUSH_CACHE_GLOBAL 18
#define MMUEXT_MARK_SUPER         19
#define MMUEXT_UNMARK_SUPER       20

struct mmuext_op
{
    uint32_t cmd;
    uint32_t pad;
    union
    {
        uint64_t mfn;           /* PIN*, UNPIN, NEW_*BASEPTR, CLEAR/COPY */
        uint64_t linear_addr;   /* INVLPG, SET_LDT */
    } arg1;
    union
    {
        uint32_t nr_ents;       /* SET_LDT */
        uint64_t vcpumask;      /* guest address of a vCPU bitmap (*_MULTI) */
        uint64_t src_mfn;       /* COPY_PAGE */
    } arg2;
};

/*
 * Descriptor tables (public/arch-x86/xen.h, xen-x86_64.h).  The last two
 * of a vCPU's 16 GDT frames hold Xen's own descriptors: a guest GDT has at
 * most FIRST_RESERVED_GDT_ENTRY entries.  An LDT has at most 8192, so its
 * shadow mappings (one per page touched) number at most 16.
 */
#define FIRST_RESERVED_GDT_PAGE  14U
#define FIRST_RESERVED_GDT_BYTE  (FIRST_RESERVED_GDT_PAGE * 4096U)
#define FIRST_RESERVED_GDT_ENTRY (FIRST_RESERVED_GDT_BYTE / 8U)
#define MAX_LDT_ENTS             8192U
#define FLAT_KERNEL_CS           0xe033U

/* update_va_mapping flags. */
#define UVMF_NONE           0UL
#define UVMF_TLB_FLUSH      1UL
#define UVMF_INVLPG         2UL
#define UVMF_FLUSHTYPE_MASK 3UL
#define UVMF_LOCAL          0UL
#define UVMF_ALL            4UL

/* vm_assist types. */
#define VMASST_CMD_enable                0
#define VMASST_CMD_disable               1
#define VMASST_TYPE_writable_pagetables  2
#define VMASST_TYPE_m2p_strict          32

/* memory_op (public/memory.h). */
#define MEMOP_EXTENT_SHIFT 6
#define MEMOP_CMD_MASK     ((1U << MEMOP_EXTENT_SHIFT) - 1)
#define XENMEM_increase_reservation   0
#define XENMEM_decrease_reservation   1
#define XENMEM_maximum_ram_page       2
#define XENMEM_current_reservation    3
#define XENMEM_maximum_reservation    4
#define XENMEM_machphys_mfn_list      5
#define XENMEM_populate_physmap       6
#define XENMEM_add_to_physmap         7
#define XENMEM_maximum_gpfn          14
#define XENMEM_remove_from_physmap   15
#define XENMEM_add_to_physmap_batch  23

#define XENMAPSPACE_shared_info  0
#define XENMAPSPACE_grant_table  1
#define XENMAPSPACE_gmfn         2
#define XENMAPSPACE_gmfn_range   3
#define XENMAPSPACE_gmfn_foreign 4
#define XENMAPSPACE_dev_mmio     5

struct xen_memory_reservation
{
    uint64_t *extent_start;     /* in: GPFNs or MFNs; out: MFNs (PV populate) */
    uint64_t nr_extents;
    uint32_t extent_order;
    uint32_t mem_flags;
    domid_t domid;
};

struct xen_add_to_physmap
{
    domid_t domid;
    uint16_t size;
    uint32_t space;             /* XENMAPSPACE_* */
    uint64_t idx;
    uint64_t gpfn;
};

struct xen_remove_from_physmap
{
    domid_t domid;
    uint64_t gpfn;
};

/* current_reservation, maximum_reservation, maximum_gpfn. */
struct xen_memory_domain
{
    domid_t domid;
};

/* machphys_mfn_list: one MFN per 2 MiB chunk of the M2P. */
struct xen_machphys_mfn_list
{
    uint32_t max_extents;       /* in: room in extent_start */
    uint64_t *extent_start;     /* out: the chunks' first MFNs */
    uint32_t nr_extents;        /* out: chunks written */
};

struct xen_add_to_physmap_batch
{
    domid_t domid;
    uint16_t space;             /* XENMAPSPACE_* */
    uint16_t size;              /* number of idxs/gpfns/errs */
    domid_t foreign_domid;      /* XENMAPSPACE_gmfn_foreign only */
    uint64_t *idxs;
    uint64_t *gpfns;
    int32_t *errs;              /* out: per-entry result */
};

/* Bit 31 of add_to_physmap's idx for grant_table: a v2 status frame. */
#define XENMAPIDX_grant_table_status 0x80000000U

/* grant_table_op (public/grant_table.h). */
#define GNTTABOP_map_grant_ref    0
#define GNTTABOP_unmap_grant_ref  1
#define GNTTABOP_setup_table      2
#define GNTTABOP_query_size       6

#define GNTST_okay              0
#define GNTST_general_error   (-1)
#define GNTST_bad_domain      (-2)
#define GNTST_bad_gntref      (-3)
#define GNTST_bad_handle      (-4)
#define GNTST_bad_virt_addr   (-5)
#define GNTST_bad_dev_addr    (-6)
#define GNTST_permission_denied (-8)
#define GNTST_bad_page        (-9)
#define GNTST_eagain         (-12)
#define GNTST_no_space       (-13)

#define GTF_invalid         0U
#define GTF_permit_access   1U
#define GTF_type_mask       3U
#define GTF_readonly       (1U << 2)
#define GTF_reading        (1U << 3)
#define GTF_writing        (1U << 4)

#define GNTMAP_device_map      (1U << 0)
#define GNTMAP_host_map        (1U << 1)
#define GNTMAP_readonly        (1U << 2)
#define GNTMAP_application_map (1U << 3)
#define GNTMAP_contains_pte    (1U << 4)

typedef uint32_t grant_ref_t;
typedef uint32_t grant_handle_t;

/* A v1 grant entry, 8 bytes, as the granting guest writes it. */
struct grant_entry_v1
{
    uint16_t flags;
    domid_t domid;
    uint32_t frame;
};

struct gnttab_setup_table
{
    domid_t dom;
    uint32_t nr_frames;
    int16_t status;
    uint64_t *frame_list;       /* out: MFNs for PV */
};

struct gnttab_query_size
{
    domid_t dom;
    uint32_t nr_frames;         /* out */
    uint32_t max_nr_frames;     /* out */
    int16_t status;             /* out */
};

struct gnttab_map_grant_ref
{
    uint64_t host_addr;
    uint32_t flags;
    grant_ref_t ref;
    domid_t dom;
    int16_t status;
    grant_handle_t handle;
    uint64_t dev_bus_addr;
};

struct gnttab_unmap_grant_ref
{
    uint64_t host_addr;
    uint64_t dev_bus_addr;
    grant_handle_t handle;
    int16_t status;
};

/* sched_op (public/sched.h). */
#define SCHEDOP_yield           0
#define SCHEDOP_block           1
#define SCHEDOP_shutdown        2
#define SCHEDOP_poll            3
#define SCHEDOP_remote_shutdown 4
#define SCHEDOP_shutdown_code   5

#define SHUTDOWN_poweroff   0
#define SHUTDOWN_reboot     1
#define SHUTDOWN_suspend    2
#define SHUTDOWN_crash      3
#define SHUTDOWN_watchdog   4
#define SHUTDOWN_soft_reset 5

/* console_io. */
#define CONSOLEIO_write 0
#define CONSOLEIO_read  1

/* Page-table entry flags (x86-64). */
#define _PAGE_PRESENT  0x001UL
#define _PAGE_RW       0x002UL
#define _PAGE_USER     0x004UL
#define _PAGE_PWT      0x008UL
#define _PAGE_PCD      0x010UL
#define _PAGE_ACCESSED 0x020UL
#define _PAGE_DIRTY    0x040UL
#define _PAGE_PAT      0x080UL
#define _PAGE_PSE      0x080UL
#define _PAGE_GLOBAL   0x100UL
#define _PAGE_AVAIL    0xE00UL
#define _PAGE_NX       (1UL << 63)
#define PADDR_MASK     ((1UL << 52) - 1)
#define PTE_MFN_MASK   (PADDR_MASK & ~(PAGE_SIZE - 1))

/* Guest-visible L4 slots reserved for the hypervisor. */
#define ROOT_PAGETABLE_FIRST_XEN_SLOT 256
#define ROOT_PAGETABLE_LAST_XEN_SLOT  271
#define ROOT_PAGETABLE_XEN_SLOTS \
    (ROOT_PAGETABLE_LAST_XEN_SLOT - ROOT_PAGETABLE_FIRST_XEN_SLOT + 1)
#define RO_MPT_VIRT_START   0xFFFF800000000000UL
#define RO_MPT_VIRT_END     0xFFFF804000000000UL
#define MACH2PHYS_NR_ENTRIES (1UL << 35)

/* x86-64 register file as Xen's public headers lay it out (200 bytes). */
struct cpu_user_regs
{
    uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    uint64_t rax, rcx, rdx, rsi, rdi;
    uint32_t error_code;
    uint32_t entry_vector;
    uint64_t rip;
    uint16_t cs, _pad0[1];
    uint8_t saved_upcall_mask;
    uint8_t _pad1[3];
    uint64_t rflags;
    uint64_t rsp;
    uint16_t ss, _pad2[3];
    uint16_t es, _pad3[3];
    uint16_t ds, _pad4[3];
    uint16_t fs, _pad5[3];
    uint16_t gs, _pad6[3];
};

struct trap_info
{
    uint8_t vector;
    uint8_t flags;
    uint16_t cs;
    uint64_t address;
};

#define VGCF_i387_valid                (1UL << 0)
#define VGCF_in_kernel                 (1UL << 2)
#define VGCF_failsafe_disables_events  (1UL << 3)
#define VGCF_syscall_disables_events   (1UL << 4)
#define VGCF_online                    (1UL << 5)
#define VGCF_in_syscall                (1UL << 8)

/* The whole vCPU state that a stream carries (5168 bytes). */
struct vcpu_guest_context
{
    uint8_t fpu_ctxt[512];
    uint64_t flags;
    struct cpu_user_regs user_regs;
    struct trap_info trap_ctxt[256];
    uint64_t ldt_base, ldt_ents;
    uint64_t gdt_frames[16], gdt_ents;
    uint64_t kernel_ss, kernel_sp;
    uint64_t ctrlreg[8];        /* ctrlreg[3]: kernel L4 MFN << 12; [1]: user */
    uint64_t debugreg[8];
    uint64_t event_callback_eip;
    uint64_t failsafe_callback_eip;
    uint64_t syscall_callback_eip;
    uint64_t vm_assist;
    uint64_t fs_base;
    uint64_t gs_base_kernel;
    uint64_t gs_base_user;
};

#define xen_pfn_to_cr3(pfn) ((uint64_t)(pfn) << 12)
#define xen_cr3_to_pfn(cr3) ((uint64_t)(cr3) >> 12)

/*
 * start_info (public/xen.h), 1168 bytes on x86-64.  ferry guests write
 * their console with console_io, so console.domU.mfn is 0.
 */
#define MAX_GUEST_CMDLINE 1024
#define SIF_PRIVILEGED (1U << 0)
struct start_info
{
    char magic[32];             /* "xen-3.0-x86_64" */
    uint64_t nr_pages;
    uint64_t shared_info;       /* machine address of shared_info */
    uint32_t flags;
    uint32_t pad0;
    uint64_t store_mfn;
    uint32_t store_evtchn;
    uint32_t pad1;
    struct
    {
        uint64_t mfn;
        uint32_t evtchn;
        uint32_t pad;
    } console;
    uint64_t pt_base;           /* virtual address of the initial L4 */
    uint64_t nr_pt_frames;
    uint64_t mfn_list;          /* virtual address of the P2M list */
    uint64_t mod_start;
    uint64_t mod_len;
    int8_t cmd_line[MAX_GUEST_CMDLINE];
    uint64_t first_p2m_pfn;
    uint64_t nr_p2m_frames;
};

/*
 * shared_info (public/xen.h) offsets on x86-64: 32 vcpu_info of 64 bytes,
 * event-channel bitmaps, wallclock, then the arch part the saver reads.
 */
#define SHINFO_VCPU_INFO(n)        ((n) * 64)
#define VCPU_INFO_UPCALL_PENDING   0      /* u8 */
#define VCPU_INFO_UPCALL_MASK      1      /* u8 */
#define VCPU_INFO_PENDING_SEL      8      /* u64 */
#define SHINFO_EVTCHN_PENDING      2048
#define SHINFO_EVTCHN_MASK         2560
#define SHINFO_WC_VERSION          3072
#define SHINFO_MAX_PFN             3088   /* highest PFN + 1 */
#define SHINFO_PFN_TO_MFN_FLL      3096   /* pfn_to_mfn_frame_list_list */
#define SHINFO_NMI_REASON          3104
#define SHINFO_P2M_CR3             3112
#define SHINFO_P2M_VADDR           3120
#define SHINFO_P2M_GENERATION      3128
/*
 * ferry's control word, in the unused tail of shared_info (past 3136):
 * the toolstack's request to the guest.  Xen uses xenstore's
 * control/shutdown for this; ferry has no xenstore.  The hypervisor writes
 * FERRY_CONTROL_MAGIC | (reason + 1) and raises event port
 * FERRY_CONTROL_PORT on vCPU 0; the guest acts on it when woken and
 * writes 0 back to acknowledge.  See ferry-guests(7).
 */
#define SHINFO_FERRY_CONTROL       3584   /* u64 */
#define FERRY_CONTROL_MAGIC        0x464552525900ULL   /* "FERRY\0" */
#define FERRY_CONTROL_PORT         1
#define FERRY_TIMER_PORT           2

/* Domain control (public/domctl.h). */
#define XEN_DOMCTL_INTERFACE_VERSION 0x18
#define XEN_DOMCTL_createdomain        1
#define XEN_DOMCTL_destroydomain       2
#define XEN_DOMCTL_pausedomain         3
#define XEN_DOMCTL_unpausedomain       4
#define XEN_DOMCTL_getdomaininfo       5
#define XEN_DOMCTL_max_mem            11
#define XEN_DOMCTL_resumedomain       27
#define XEN_DOMCTL_setvcpucontext     12
#define XEN_DOMCTL_getvcpucontext     13
#define XEN_DOMCTL_max_vcpus          15
#define XEN_DOMCTL_shadow_op          10
#define XEN_DOMCTL_getpageframeinfo3  61

#define XEN_DOMCTL_CDF_hvm      (1U << 0)

/* getdomaininfo flags. */
#define XEN_DOMINF_dying    (1U << 0)
#define XEN_DOMINF_hvm_guest (1U << 1)
#define XEN_DOMINF_shutdown (1U << 2)
#define XEN_DOMINF_paused   (1U << 3)
#define XEN_DOMINF_blocked  (1U << 4)
#define XEN_DOMINF_running  (1U << 5)
#define XEN_DOMINF_debugged (1U << 6)
#define XEN_DOMINF_xs_domain (1U << 7)
#define XEN_DOMINF_hap      (1U << 8)
#define XEN_DOMINF_shutdownshift 16
#define XEN_DOMINF_shutdownmask  0xffU

/* XEN_DOMCTL_getvcpuinfo.  cpu: for ferry, the host CPU the vCPU's
 * thread last started running on. */
struct xen_domctl_getvcpuinfo
{
    uint32_t vcpu;
    uint8_t online;                 /* not taken down (VCPUOP_down) */
    uint8_t blocked;                /* waiting for an event */
    uint8_t running;                /* executing guest code now */
    uint8_t pad;
    uint64_t cpu_time;              /* ns */
    uint32_t cpu;
    uint32_t pad2;
};

struct xen_domctl_getdomaininfo
{
    domid_t domain;
    uint16_t pad0;
    uint32_t flags;
    uint64_t tot_pages;
    uint64_t max_pages;
    uint64_t outstanding_pages;
    uint64_t shr_pages;
    uint64_t paged_pages;
    uint64_t shared_info_frame;     /* MFN for PV */
    uint64_t cpu_time;
    uint32_t nr_online_vcpus;
    uint32_t max_vcpu_id;
    uint32_t ssidref;
    uint8_t handle[16];
    uint32_t cpupool;
    uint8_t gpaddr_bits;
    uint8_t pad1[7];
    uint64_t arch_config;
};

/* getpageframeinfo3 type words. */
#define XEN_DOMCTL_PFINFO_LTAB_SHIFT 28
#define XEN_DOMCTL_PFINFO_NOTAB   (0x0U << 28)
#define XEN_DOMCTL_PFINFO_L1TAB   (0x1U << 28)
#define XEN_DOMCTL_PFINFO_L2TAB   (0x2U << 28)
#define XEN_DOMCTL_PFINFO_L3TAB   (0x3U << 28)
#define XEN_DOMCTL_PFINFO_L4TAB   (0x4U << 28)
#define XEN_DOMCTL_PFINFO_LTABTYPE_MASK (0x7U << 28)
#define XEN_DOMCTL_PFINFO_LPINTAB (0x1U << 31)
#define XEN_DOMCTL_PFINFO_XTAB    (0xfU << 28)
#define XEN_DOMCTL_PFINFO_XALLOC  (0xeU << 28)
#define XEN_DOMCTL_PFINFO_BROKEN  (0xdU << 28)
#define XEN_DOMCTL_PFINFO_LTAB_MASK (0xfU << 28)
#define XEN_DOMCTL_PFINFO_MAX     1024

/* shadow_op / log-dirty. */
#define XEN_DOMCTL_SHADOW_OP_OFF              0
#define XEN_DOMCTL_SHADOW_OP_ENABLE_TEST      1
#define XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY  2
#define XEN_DOMCTL_SHADOW_OP_CLEAN           11
#define XEN_DOMCTL_SHADOW_OP_PEEK            12
#define XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION  30
#define XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION  31
#define XEN_DOMCTL_SHADOW_OP_ENABLE          32
#define XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT  (1U << 1)
#define XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY (1U << 2)
#define XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE (1U << 3)
#define XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL  (1U << 4)
#define XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL   (1U << 0)

struct xen_domctl_shadow_op_stats
{
    uint32_t fault_count;
    uint32_t dirty_count;
};

struct xen_domctl_shadow_op
{
    uint32_t op;
    uint32_t mode;
    uint32_t mb;
    uint8_t *dirty_bitmap;      /* ceil(pages / 8) bytes, indexed by PFN */
    uint64_t pages;
    struct xen_domctl_shadow_op_stats stats;
};

/* Layout checks: these sizes and offsets are what the stream carries. */
_Static_assert(sizeof(struct cpu_user_regs) == 200, "cpu_user_regs size");
_Static_assert(sizeof(struct trap_info) == 16, "trap_info size");
_Static_assert(sizeof(struct vcpu_guest_context) == 5168,
               "vcpu_guest_context size");
_Static_assert(offsetof(struct vcpu_guest_context, flags) == 512, "flags");
_Static_assert(offsetof(struct vcpu_guest_context, user_regs) == 520,
               "user_regs");
_Static_assert(offsetof(struct vcpu_guest_context, trap_ctxt) == 720,
               "trap_ctxt");
_Static_assert(offsetof(struct vcpu_guest_context, ldt_base) == 4816,
               "ldt_base");
_Static_assert(offsetof(struct vcpu_guest_context, gdt_frames) == 4832,
               "gdt_frames");
_Static_assert(offsetof(struct vcpu_guest_context, ctrlreg) == 4984,
               "ctrlreg");
_Static_assert(offsetof(struct vcpu_guest_context, vm_assist) == 5136,
               "vm_assist");
_Static_assert(offsetof(struct vcpu_guest_context, gs_base_user) == 5160,
               "gs_base_user");
_Static_assert(offsetof(struct cpu_user_regs, rip) == 128, "rip");
_Static_assert(offsetof(struct cpu_user_regs, rflags) == 144, "rflags");
_Static_assert(sizeof(struct mmu_update) == 16, "mmu_update");
_Static_assert(sizeof(struct mmuext_op) == 24, "mmuext_op");
_Static_assert(sizeof(struct grant_entry_v1) == 8, "grant_entry_v1");
_Static_assert(sizeof(struct start_info) == 1168, "start_info size");
_Static_assert(offsetof(struct start_info, pt_base) == 88, "pt_base");
_Static_assert(offsetof(struct start_info, cmd_line) == 128, "cmd_line");

#endif /* FERRY_PUBLIC_ABI_H */
