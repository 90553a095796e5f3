/* SPDX-License-Identifier: MIT */
/*
 * Page-table and vCPU-context translation between machine and
 * pseudo-physical frame numbers, for the save/restore stream.
 *
 * Machine frame numbers differ between hosts (and between two domains on
 * one host), so a stream carries none: the saver normalises each page
 * table it sends and each vCPU context from MFNs to the guest's PFNs, and
 * the restorer localises them to the MFNs the new domain was given.  The
 * rules, error codes and messages are Xen's (xg_sr_save_x86_pv.c,
 * xg_sr_restore_x86_pv.c, xg_sr_common_x86_pv.{c,h}); see sr-pt.h for
 * the contract of each function.
 *
 * Invariants kept here:
 *  - a frame is translated only after sr__mfn_in_pseudophysmap() accepted
 *    it (save: the MFN found in the table; restore: the MFN the P2M gives
 *    for the PFN found), so nothing outside the guest enters a stream or
 *    a restored table;
 *  - only the frame bits 12..51 of an entry change; flags, including NX
 *    and the bits 52..62 that software may use, are kept exactly; entries
 *    without _PAGE_PRESENT are never interpreted;
 *  - the hypervisor's L4 slots 256..271 are never carried: 0 in the
 *    stream, 0 in a localised table (the hypervisor fills them itself);
 *  - restore-side functions leave their output untouched on failure, and
 *    check a whole table before populating anything for it.
 *
 * Messages go to the caller's buffer; nothing here prints or exits.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sr-pt.h"

/* ---------------------------------------------------------------------
 * Messages
 * --------------------------------------------------------------------- */

static void __attribute__((format(printf, 3, 0)))
msg_vappend(struct sr__pt_ctx *ctx, size_t *off, const char *fmt, va_list ap)
{
    int n;

    if ( !ctx->msg || *off >= ctx->msg_size )
        return;

    n = vsnprintf(ctx->msg + *off, ctx->msg_size - *off, fmt, ap);
    if ( n > 0 )
        *off += (size_t)n;
}

static void __attribute__((format(printf, 3, 4)))
msg_append(struct sr__pt_ctx *ctx, size_t *off, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vappend(ctx, off, fmt, ap);
    va_end(ap);
}

/* Replace the message with a formatted one. */
static void __attribute__((format(printf, 2, 3)))
pt_msg(struct sr__pt_ctx *ctx, const char *fmt, ...)
{
    size_t off = 0;
    va_list ap;

    va_start(ap, fmt);
    msg_vappend(ctx, &off, fmt, ap);
    va_end(ap);
}

/*
 * A message about a frame that is not the guest's: the caller's text,
 * then what the M2P and the P2M say about @mfn, as Xen's
 * dump_bad_pseudophysmap_entry() logs it, so the reader can tell a
 * foreign or granted frame (M2P points elsewhere) from a stale P2M.
 */
static void __attribute__((format(printf, 3, 4)))
pt_bad_mfn_msg(struct sr__pt_ctx *ctx, uint64_t mfn, const char *fmt, ...)
{
    size_t off = 0;
    uint64_t pfn = SR__INVALID_FRAME;
    va_list ap;

    va_start(ap, fmt);
    msg_vappend(ctx, &off, fmt, ap);
    va_end(ap);

    msg_append(ctx, &off, ": mfn %#" PRIx64 ", max %#" PRIx64,
               mfn, ctx->max_mfn);
    if ( mfn != SR__INVALID_FRAME && mfn <= ctx->max_mfn )
    {
        pfn = ctx->m2p[mfn];
        msg_append(ctx, &off, ", m2p[%#" PRIx64 "] = %#" PRIx64
                   ", max_pfn %#" PRIx64, mfn, pfn, ctx->max_pfn);
    }
    if ( pfn != SR__INVALID_FRAME && pfn <= ctx->max_pfn )
        msg_append(ctx, &off, ", p2m[%#" PRIx64 "] = %#" PRIx64,
                   pfn, ctx->p2m[pfn]);
}

/* ---------------------------------------------------------------------
 * Frames
 * --------------------------------------------------------------------- */

bool sr__is_pagetable_type(uint32_t type)
{
    type &= XEN_DOMCTL_PFINFO_LTABTYPE_MASK;

    return type >= XEN_DOMCTL_PFINFO_L1TAB && type <= XEN_DOMCTL_PFINFO_L4TAB;
}

bool sr__mfn_in_pseudophysmap(const struct sr__pt_ctx *ctx, uint64_t mfn)
{
    uint64_t pfn;

    if ( mfn > ctx->max_mfn )
        return false;

    pfn = ctx->m2p[mfn];

    return pfn <= ctx->max_pfn && ctx->p2m[pfn] == mfn;
}

/* The level (1..4) of a page-table type; 0 for any other type. */
static unsigned int pt_level(uint32_t type)
{
    if ( !sr__is_pagetable_type(type) )
        return 0;

    return (type & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) >>
           XEN_DOMCTL_PFINFO_LTAB_SHIFT;
}

/* Whether slot @i of a level-@level table belongs to the hypervisor. */
static bool pt_xen_slot(unsigned int level, unsigned int i)
{
    return level == 4 &&
           i >= ROOT_PAGETABLE_FIRST_XEN_SLOT &&
           i <= ROOT_PAGETABLE_LAST_XEN_SLOT;
}

/* ---------------------------------------------------------------------
 * Page tables
 * --------------------------------------------------------------------- */

int sr__normalise_pagetable(struct sr__pt_ctx *ctx, uint32_t type,
                            const uint64_t *src, uint64_t *dst)
{
    unsigned int level = pt_level(type), i;
    uint64_t pte, mfn;
    int rc = 0;

    /* Every other type is data, sent as it is. */
    if ( !level )
    {
        memmove(dst, src, SR__PT_ENTRIES * sizeof(*dst));
        goto out;
    }

    for ( i = 0; i < SR__PT_ENTRIES; i++ )
    {
        pte = src[i];

        /* The restoring hypervisor supplies its own slots. */
        if ( pt_xen_slot(level, i) )
            pte = 0;

        if ( pte & _PAGE_PRESENT )
        {
            mfn = sr__pte_to_frame(pte);

            /*
             * Xen's saver finds this fatal at any time.  But while the
             * guest runs, the page typed as a table may have been freed
             * and reused as data since it was typed (ferry's pagetables
             * guest recycles its tables every round): defer it like a bad
             * MFN, and refuse it only once the guest is paused.
             */
            if ( level > 1 && (pte & _PAGE_PSE) )
            {
                pt_msg(ctx, "Cannot migrate superpage (L%u[%u]: 0x%016"
                       PRIx64 ")", level, i, pte);
                rc = (ctx->flags & SR__PT_LIVE) ? -EAGAIN : -E2BIG;
                goto out;
            }

            /*
             * While the guest runs, a table may be caught between two
             * updates, or map a grant; the caller resends it once the
             * guest is paused, when the same failure is fatal.
             */
            if ( !sr__mfn_in_pseudophysmap(ctx, mfn) )
            {
                pt_bad_mfn_msg(ctx, mfn, "Bad mfn for L%u[%u]", level, i);
                rc = (ctx->flags & SR__PT_LIVE) ? -EAGAIN : -ERANGE;
                goto out;
            }

            pte = sr__merge_pte(pte, ctx->m2p[mfn]);
        }

        dst[i] = pte;
    }

 out:
    return rc;
}

/*
 * The flags of a present L2..L4 entry that the hypervisor refuses when it
 * validates the table (Xen's L2..L4_DISALLOW_MASK, the same for every
 * domain): the cache attributes PWT and PCD, and GLOBAL.  PSE is refused
 * apart, as Xen's saver does, with -E2BIG.  Checking them here names the
 * table and the entry, where the hypervisor's refusal can name only the
 * table.  L1 entries are left to the hypervisor: which of their flags it
 * accepts depends on the domain's privileges, and software may use the
 * high bits.
 */
static uint64_t pt_disallowed(unsigned int level)
{
    return level > 1 ? _PAGE_PWT | _PAGE_PCD | _PAGE_GLOBAL : 0;
}

/* Restore pass 1: refuse the whole table before anything is allocated. */
static int localise_check(struct sr__pt_ctx *ctx, unsigned int level,
                          const uint64_t *page)
{
    unsigned int i;
    uint64_t pte;

    for ( i = 0; i < SR__PT_ENTRIES; i++ )
    {
        pte = page[i];

        if ( pt_xen_slot(level, i) || !(pte & _PAGE_PRESENT) )
            continue;

        if ( level > 1 && (pte & _PAGE_PSE) )
        {
            pt_msg(ctx, "Cannot migrate superpage (L%u[%u]: 0x%016" PRIx64
                   ")", level, i, pte);
            return -E2BIG;
        }

        if ( pte & pt_disallowed(level) )
        {
            pt_msg(ctx, "Bad flags for L%u[%u] - pte %016" PRIx64
                   " (flags %#" PRIx64 " are refused in an L%u table)",
                   level, i, pte, pte & pt_disallowed(level), level);
            return -EINVAL;
        }

        if ( sr__pte_to_frame(pte) > ctx->max_pfn )
        {
            pt_msg(ctx, "Bad pfn for L%u[%u] - pte %016" PRIx64
                   " (max_pfn %#" PRIx64 ")", level, i, pte, ctx->max_pfn);
            return -ERANGE;
        }
    }

    return 0;
}

/*
 * Restore pass 2: tables may arrive before the pages they map, so give
 * every PFN they name a frame now.  A PFN named twice is populated once:
 * the first call fills its P2M entry.
 */
static int localise_populate(struct sr__pt_ctx *ctx, unsigned int level,
                             const uint64_t *page)
{
    unsigned int i;
    uint64_t pte, pfn, mfn;
    int rc;

    if ( !ctx->populate )
        return 0;

    for ( i = 0; i < SR__PT_ENTRIES; i++ )
    {
        pte = page[i];

        if ( pt_xen_slot(level, i) || !(pte & _PAGE_PRESENT) )
            continue;

        pfn = sr__pte_to_frame(pte);
        if ( ctx->p2m[pfn] != SR__INVALID_FRAME )
            continue;

        mfn = SR__INVALID_FRAME;
        rc = ctx->populate(ctx->populate_arg, pfn, &mfn);
        if ( rc )
        {
            pt_msg(ctx, "Failed to populate physmap for pfn %#" PRIx64,
                   pfn);
            return rc < 0 ? rc : -EIO;
        }

        if ( mfn == SR__INVALID_FRAME )
        {
            pt_msg(ctx, "Populate physmap failed for pfn %#" PRIx64, pfn);
            return -ENOMEM;
        }

        ctx->p2m[pfn] = mfn;
    }

    return 0;
}

int sr__localise_pagetable(struct sr__pt_ctx *ctx, uint32_t type,
                           uint64_t *page)
{
    unsigned int level = pt_level(type), i;
    uint64_t out[SR__PT_ENTRIES];
    uint64_t pte, mfn;
    int rc = 0;

    /* Only page tables name frames. */
    if ( !level )
        goto out;

    rc = localise_check(ctx, level, page);
    if ( rc )
        goto out;

    rc = localise_populate(ctx, level, page);
    if ( rc )
        goto out;

    for ( i = 0; i < SR__PT_ENTRIES; i++ )
    {
        pte = page[i];

        if ( pt_xen_slot(level, i) )
            pte = 0;

        if ( pte & _PAGE_PRESENT )
        {
            mfn = ctx->p2m[sr__pte_to_frame(pte)];

            if ( !sr__mfn_in_pseudophysmap(ctx, mfn) )
            {
                pt_bad_mfn_msg(ctx, mfn, "Bad mfn for L%u[%u] - pte %016"
                               PRIx64, level, i, pte);
                rc = -ERANGE;
                goto out;
            }

            pte = sr__merge_pte(pte, mfn);
        }

        out[i] = pte;
    }

    memcpy(page, out, sizeof(out));

 out:
    return rc;
}

/* ---------------------------------------------------------------------
 * vCPU context
 * --------------------------------------------------------------------- */

/* Xen refuses GDTs that reach its reserved descriptors. */
static int vcpu_gdt_frames(struct sr__pt_ctx *ctx,
                           const struct vcpu_guest_context *v,
                           unsigned int *frames)
{
    if ( v->gdt_ents > SR__FIRST_RESERVED_GDT_ENTRY )
    {
        pt_msg(ctx, "GDT entry count (%" PRIu64 ") out of range (max %u)",
               v->gdt_ents, SR__FIRST_RESERVED_GDT_ENTRY);
        return -ERANGE;
    }

    *frames = (unsigned int)((v->gdt_ents + 511) / 512);

    return 0;
}

int sr__normalise_vcpu(struct sr__pt_ctx *ctx, unsigned int vcpu_id,
                       struct vcpu_guest_context *c)
{
    struct vcpu_guest_context v = *c;
    unsigned int i, frames;
    uint64_t mfn;
    int rc;

    /*
     * vCPU 0 suspended itself with SCHEDOP_shutdown(suspend), passing
     * its start_info MFN in rdx; the restorer rewrites that page.
     */
    if ( vcpu_id == 0 )
    {
        mfn = v.user_regs.rdx;
        if ( !sr__mfn_in_pseudophysmap(ctx, mfn) )
        {
            pt_bad_mfn_msg(ctx, mfn, "Bad mfn for suspend record");
            rc = -ERANGE;
            goto out;
        }
        v.user_regs.rdx = ctx->m2p[mfn];
    }

    rc = vcpu_gdt_frames(ctx, &v, &frames);
    if ( rc )
        goto out;

    for ( i = 0; i < frames; i++ )
    {
        mfn = v.gdt_frames[i];
        if ( !sr__mfn_in_pseudophysmap(ctx, mfn) )
        {
            pt_bad_mfn_msg(ctx, mfn, "Bad mfn for frame %u of vcpu%u's GDT",
                           i, vcpu_id);
            rc = -ERANGE;
            goto out;
        }
        v.gdt_frames[i] = ctx->m2p[mfn];
    }

    /* The PFN is re-encoded alone: cr3's low flag bits are dropped. */
    mfn = xen_cr3_to_pfn(v.ctrlreg[3]);
    if ( !sr__mfn_in_pseudophysmap(ctx, mfn) )
    {
        pt_bad_mfn_msg(ctx, mfn, "Bad mfn for vcpu%u's cr3", vcpu_id);
        rc = -ERANGE;
        goto out;
    }
    v.ctrlreg[3] = xen_pfn_to_cr3(ctx->m2p[mfn]);

    /*
     * The user-mode L4; 0 means none.  PFN 0 is a valid frame, so bit 0
     * tells the restorer that the field holds one.
     */
    if ( v.ctrlreg[1] )
    {
        mfn = v.ctrlreg[1] >> PAGE_SHIFT;
        if ( !sr__mfn_in_pseudophysmap(ctx, mfn) )
        {
            pt_bad_mfn_msg(ctx, mfn, "Bad mfn for vcpu%u's cr1", vcpu_id);
            rc = -ERANGE;
            goto out;
        }
        v.ctrlreg[1] = 1 | (ctx->m2p[mfn] << PAGE_SHIFT);
    }

    *c = v;

 out:
    return rc;
}

/*
 * One frame of a restored vCPU context: @pfn must be in range, have the
 * type the stream declared for it (@want, compared under @mask; skipped
 * without pfn_types) and be populated.  @what names the field in
 * messages ("cr3", "GDT frame 2", "Start Info"); @pfn_label is how Xen's
 * messages introduce the PFN ("cr3 (pfn 0x5)", "Start Info pfn 0x5").
 */
static int localise_frame(struct sr__pt_ctx *ctx, uint64_t pfn,
                          uint32_t want, uint32_t mask, const char *what,
                          const char *pfn_label, uint64_t *mfn)
{
    uint32_t type;

    if ( pfn > ctx->max_pfn )
    {
        pt_msg(ctx, "%s out of range", pfn_label);
        return -ERANGE;
    }

    if ( ctx->pfn_types )
    {
        type = ctx->pfn_types[pfn];
        if ( (type & mask) != want )
        {
            if ( want == XEN_DOMCTL_PFINFO_NOTAB )
                pt_msg(ctx, "%s has bad type %u", pfn_label,
                       type >> XEN_DOMCTL_PFINFO_LTAB_SHIFT);
            else
                pt_msg(ctx, "%s has bad type %u, expected %u", pfn_label,
                       type >> XEN_DOMCTL_PFINFO_LTAB_SHIFT,
                       want >> XEN_DOMCTL_PFINFO_LTAB_SHIFT);
            return -EINVAL;
        }
    }

    *mfn = ctx->p2m[pfn];
    if ( !sr__mfn_in_pseudophysmap(ctx, *mfn) )
    {
        pt_bad_mfn_msg(ctx, *mfn, "%s has bad mfn", what);
        return -ERANGE;
    }

    return 0;
}

int sr__localise_vcpu(struct sr__pt_ctx *ctx, unsigned int vcpu_id,
                      struct vcpu_guest_context *c)
{
    struct vcpu_guest_context v = *c;
    char what[32], label[64];
    unsigned int i, frames;
    uint64_t pfn, mfn;
    int rc;

    if ( vcpu_id == 0 )
    {
        pfn = v.user_regs.rdx;
        snprintf(label, sizeof(label), "Start Info pfn %#" PRIx64, pfn);
        rc = localise_frame(ctx, pfn, XEN_DOMCTL_PFINFO_NOTAB, ~0U,
                            "Start Info", label, &mfn);
        if ( rc )
            goto out;
        v.user_regs.rdx = mfn;
    }

    v.flags |= VGCF_online;

    rc = vcpu_gdt_frames(ctx, &v, &frames);
    if ( rc )
        goto out;

    for ( i = 0; i < frames; i++ )
    {
        pfn = v.gdt_frames[i];
        snprintf(what, sizeof(what), "GDT frame %u", i);
        snprintf(label, sizeof(label), "GDT frame %u (pfn %#" PRIx64 ")",
                 i, pfn);
        rc = localise_frame(ctx, pfn, XEN_DOMCTL_PFINFO_NOTAB, ~0U,
                            what, label, &mfn);
        if ( rc )
            goto out;
        v.gdt_frames[i] = mfn;
    }

    /* The pinned bit does not matter for the top-level table. */
    pfn = xen_cr3_to_pfn(v.ctrlreg[3]);
    snprintf(label, sizeof(label), "cr3 (pfn %#" PRIx64 ")", pfn);
    rc = localise_frame(ctx, pfn, XEN_DOMCTL_PFINFO_L4TAB,
                        XEN_DOMCTL_PFINFO_LTABTYPE_MASK, "cr3", label, &mfn);
    if ( rc )
        goto out;
    v.ctrlreg[3] = xen_pfn_to_cr3(mfn);

    /* Bit 0 is the saver's "valid" mark; the hypervisor wants MFN << 12. */
    if ( v.ctrlreg[1] & 1 )
    {
        pfn = v.ctrlreg[1] >> PAGE_SHIFT;
        snprintf(label, sizeof(label), "cr1 (pfn %#" PRIx64 ")", pfn);
        rc = localise_frame(ctx, pfn, XEN_DOMCTL_PFINFO_L4TAB,
                            XEN_DOMCTL_PFINFO_LTABTYPE_MASK, "cr1", label,
                            &mfn);
        if ( rc )
            goto out;
        v.ctrlreg[1] = mfn << PAGE_SHIFT;
    }

    *c = v;

 out:
    return rc;
}
