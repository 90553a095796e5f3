/* SPDX-License-Identifier: MIT */
/*
 * Page-table and vCPU-context translation for the save/restore stream
 * (internal to saverestore/).
 *
 * A PV guest's page tables and its vCPU context name machine frames, and
 * machine frame numbers mean nothing on another host.  So the saver
 * "normalises" every page-table page it sends and every vCPU context:
 * each MFN becomes the guest's pseudo-physical frame number (PFN) through
 * the host's M2P, checked against the guest's P2M.  The restorer
 * "localises" them: each PFN becomes the MFN the new domain got for it on
 * the new host, populating frames on demand since tables may arrive
 * before the pages they point at.  This follows Xen's
 * xg_sr_save_x86_pv.c (normalise_pagetable, write_one_vcpu_basic) and
 * xg_sr_restore_x86_pv.c (x86_pv_localise_page, process_vcpu_basic),
 * with Xen's rules, error codes and message texts.
 *
 * Everything here is a pure function over caller-supplied buffers: the
 * caller maps the M2P and the P2M and hands them over in struct
 * sr__pt_ctx.  Nothing prints or exits; failures return a negative errno
 * and leave a one-line message in the context's message buffer.
 *
 * Only 64-bit (4-level) PV guests exist in ferry, so the 32-bit PAE rules
 * of Xen's saver (compat L3/L2 Xen slots, extended cr3) are absent.
 */
#ifndef FERRY_SAVERESTORE_SR_PT_H
#define FERRY_SAVERESTORE_SR_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../hypervisor/include/public/abi.h"

/* Entries in one page-table page. */
#define SR__PT_ENTRIES 512

/* Bits 12..51 of a PTE name the frame (Xen's PTE_FRAME_MASK). */
#define SR__PTE_FRAME_MASK 0x000ffffffffff000ULL

/* The P2M's "no frame here" value, as a 64-bit word. */
#define SR__INVALID_FRAME (~(uint64_t)0)

/*
 * A vCPU's GDT may use entries below Xen's reserved ones only (Xen's
 * FIRST_RESERVED_GDT_ENTRY, 14 frames of 512 descriptors).
 */
#define SR__FIRST_RESERVED_GDT_ENTRY 7168U

/* sr__pt_ctx.flags */
#define SR__PT_LIVE (1U << 0)   /* guest still running: bad frames retry */

/* Room that suffices for every message this file writes. */
#define SR__PT_MSG_SIZE 256

/*
 * The domain as the saver (or the restorer) sees it.
 *
 * max_pfn is the highest PFN, as in Xen's ctx->x86.pv.max_pfn (the
 * shared_info max_pfn field is one more: an entry count); the P2M has
 * max_pfn + 1 entries, SR__INVALID_FRAME where no frame is populated.
 * The M2P has max_mfn + 1 entries.
 *
 * Restore side only: pfn_types, when not NULL, holds the type of every
 * PFN as the stream declared it (XEN_DOMCTL_PFINFO_*, max_pfn + 1
 * entries) and makes sr__localise_vcpu check that the frames it converts
 * have the right type, as Xen's process_vcpu_basic does.  populate
 * allocates a frame for @pfn in the new domain and returns its MFN
 * (after which the M2P seen through m2p must map it back to @pfn);
 * sr__localise_pagetable stores that MFN into p2m itself.
 *
 * msg, when not NULL, receives a NUL-terminated message on failure
 * (msg_size bytes at most, SR__PT_MSG_SIZE is enough).
 */
struct sr__pt_ctx
{
    uint64_t max_mfn;
    const uint64_t *m2p;
    uint64_t max_pfn;
    uint64_t *p2m;
    unsigned int flags;
    const uint32_t *pfn_types;
    int (*populate)(void *arg, uint64_t pfn, uint64_t *mfn);
    void *populate_arg;
    char *msg;
    size_t msg_size;
};

/* Xen's pte_to_frame: the frame a PTE names, flags stripped. */
static inline uint64_t sr__pte_to_frame(uint64_t pte)
{
    return (pte & SR__PTE_FRAME_MASK) >> PAGE_SHIFT;
}

/* Xen's merge_pte: replace the frame of @pte, keeping every flag bit. */
static inline uint64_t sr__merge_pte(uint64_t pte, uint64_t frame)
{
    return (pte & ~SR__PTE_FRAME_MASK) |
           ((frame << PAGE_SHIFT) & SR__PTE_FRAME_MASK);
}

/* True for the L1..L4 types of getpageframeinfo3 (pinned or not). */
bool sr__is_pagetable_type(uint32_t type);

/*
 * Whether @mfn is one of the guest's frames: mfn <= max_mfn,
 * m2p[mfn] <= max_pfn and p2m[m2p[mfn]] == mfn (Xen's
 * mfn_in_pseudophysmap, the single notion of "frame of this guest").
 */
bool sr__mfn_in_pseudophysmap(const struct sr__pt_ctx *ctx, uint64_t mfn);

/*
 * Save side: translate the 512 entries of @src into @dst (which may be
 * @src).  @type is the getpageframeinfo3 type; pages of any other type
 * than L1..L4 are copied unchanged.  L4 slots 256..271 (Xen's) become 0;
 * non-present entries are copied unchanged; a present entry with PSE in
 * an L2 or higher table fails with -E2BIG; a present entry naming a frame
 * outside the pseudo-physical map fails with -EAGAIN while SR__PT_LIVE is
 * set (the caller resends the page after pausing the guest) and with
 * -ERANGE otherwise.  On failure @dst is partly written.
 */
int sr__normalise_pagetable(struct sr__pt_ctx *ctx, uint32_t type,
                            const uint64_t *src, uint64_t *dst);

/*
 * Restore side: translate @page in place from PFNs to the new domain's
 * MFNs.  Every present entry is checked first (PFN <= max_pfn, else
 * -ERANGE; PSE in L2 and above, -E2BIG; PWT, PCD or GLOBAL in L2 and
 * above, which the hypervisor refuses, -EINVAL) so that a bad table
 * allocates nothing; then each PFN not yet populated is populated once through
 * ctx->populate (a negative return is passed on; an invalid MFN back is
 * -ENOMEM; without a callback nothing is populated); then each entry is
 * converted, and the MFN must pass sr__mfn_in_pseudophysmap (-ERANGE,
 * which is also what an unpopulated PFN ends in).  L4 slots 256..271 are
 * forced to 0: the hypervisor fills its own slots when it validates the
 * table.  @page is unchanged unless 0 is returned.
 */
int sr__localise_pagetable(struct sr__pt_ctx *ctx, uint32_t type,
                           uint64_t *page);

/*
 * Save side, one vCPU's basic context (Xen's write_one_vcpu_basic):
 * vCPU 0's rdx (the start_info MFN its SCHEDOP_shutdown(suspend) passed)
 * becomes a PFN; gdt_frames[0 .. ceil(gdt_ents / 512)) become PFNs
 * (gdt_ents above 7168 is refused); cr3 (MFN << 12) becomes PFN << 12;
 * a non-zero ctrlreg[1] (the user-mode L4) becomes (PFN << 12) | 1, bit 0
 * telling the restorer it is valid.  Any frame outside the
 * pseudo-physical map fails with -ERANGE; @c is then unchanged.
 */
int sr__normalise_vcpu(struct sr__pt_ctx *ctx, unsigned int vcpu_id,
                       struct vcpu_guest_context *c);

/*
 * Restore side, the inverse (Xen's process_vcpu_basic, less the
 * start_info page rewrite and the setvcpucontext call): VGCF_online is
 * set; vCPU 0's rdx, the GDT frames, cr3 and (when bit 0 is set)
 * ctrlreg[1] become the new domain's MFNs.  A PFN past max_pfn or whose
 * frame is not the guest's fails with -ERANGE, a frame of the wrong type
 * (with pfn_types: start_info and GDT frames NOTAB, cr3 and cr1 L4) with
 * -EINVAL; @c is then unchanged.
 */
int sr__localise_vcpu(struct sr__pt_ctx *ctx, unsigned int vcpu_id,
                      struct vcpu_guest_context *c);

#endif /* FERRY_SAVERESTORE_SR_PT_H */
