/* SPDX-License-Identifier: MIT */
/*
 * The descriptor tables of PV vCPUs (xen/arch/x86/pv/descriptor-tables.c):
 * the GDT a guest installs with set_gdt (or the toolstack with
 * setvcpucontext), descriptors changed with update_descriptor, the checks
 * every descriptor passes, and the teardown of the LDT's shadow mappings,
 * which pv_map_ldt_shadow_page (mmu.c) makes when the guest first uses a
 * page of its LDT.
 *
 * Invariants:
 *  - each frame of a vCPU's GDT (v->gdt_frames) and each shadow-mapped
 *    page of its LDT (v->ldt_frames) holds one general and one
 *    PGT_seg_desc_page type reference;
 *  - a frame reaches that type only through validate_segdesc_page, so
 *    every descriptor in it passed check_descriptor; since the type
 *    excludes PGT_writable_page, no guest mapping of it is writable while
 *    a table uses it, and a writably mapped frame cannot join a table.
 *    The guest changes a live descriptor only through update_descriptor,
 *    which checks it first;
 *  - a vCPU's tables change only on the vCPU itself (set_gdt, SET_LDT,
 *    NEW_BASEPTR, its first use of an LDT page) or while it cannot run
 *    (setvcpucontext of a paused domain, domain destruction): Xen's
 *    v == current || !vcpu_cpu_dirty(v).  No lock is needed.
 */
#include "hv.h"

/* Bits of a descriptor's high word (xen/arch/x86/include/asm/desc.h). */
#define _SEGMENT_TYPE (15U << 8)
#define _SEGMENT_S    (1U << 12)
#define _SEGMENT_DPL  (3U << 13)
#define _SEGMENT_P    (1U << 15)

/* A 64-bit PV guest's kernel runs in ring 3. */
#define GUEST_KERNEL_RPL 3U

/* ------------------------------------------------------------------------
 * The LDT and the GDT of a vCPU
 * ------------------------------------------------------------------------ */

/*
 * Drop the LDT's shadow mappings and their type references.  True if any
 * was dropped: the caller flushes the TLB.
 */
bool pv_destroy_ldt(struct vcpu *v)
{
    unsigned int i, mappings_dropped = 0;

    ASSERT(v == current || !atomic_load(&v->running));

    for ( i = 0; i < ARRAY_SIZE(v->ldt_frames); i++ )
    {
        struct page_info *pg;

        if ( !v->ldt_frames[i] )
            continue;

        pg = mfn_to_page(v->ldt_frames[i]);
        v->ldt_frames[i] = 0;
        mappings_dropped++;

        ASSERT((atomic_load(&pg->type_info) & PGT_type_mask) ==
               PGT_seg_desc_page);
        ASSERT(page_get_owner(pg) == v->domain);
        put_page_and_type(pg);
    }

    return mappings_dropped;
}

void pv_destroy_gdt(struct vcpu *v)
{
    unsigned int i;

    ASSERT(v == current || !atomic_load(&v->running));

    v->gdt_ents = 0;
    for ( i = 0; i < FIRST_RESERVED_GDT_PAGE; i++ )
    {
        if ( v->gdt_frames[i] )
            put_page_and_type(mfn_to_page(v->gdt_frames[i]));
        v->gdt_frames[i] = 0;
    }
}

/*
 * Take all the new frames' references before dropping the old ones, so
 * that a GDT re-installed over itself never passes through type count 0.
 */
int pv_set_gdt(struct vcpu *v, const uint64_t *frames, unsigned int entries)
{
    struct domain *d = v->domain;
    unsigned int i, nr_frames = (entries + 511) / 512;

    ASSERT(v == current || !atomic_load(&v->running));

    if ( entries > FIRST_RESERVED_GDT_ENTRY )
        return -EINVAL;

    /* Check the pages in the new GDT. */
    for ( i = 0; i < nr_frames; i++ )
        if ( !mfn_valid(frames[i]) ||
             !get_page_and_type(mfn_to_page(frames[i]), d,
                                PGT_seg_desc_page) )
            goto fail;

    /* Tear down the old GDT, install the new one. */
    pv_destroy_gdt(v);
    v->gdt_ents = entries;
    for ( i = 0; i < nr_frames; i++ )
        v->gdt_frames[i] = frames[i];
    return 0;

 fail:
    while ( i-- > 0 )
        put_page_and_type(mfn_to_page(frames[i]));
    return -EINVAL;
}

long do_set_gdt(const uint64_t *frames, unsigned int entries)
{
    struct vcpu *curr = current;
    long ret;

    /* The hypercall layer has copied ceil(entries / 512) frames. */
    if ( entries > FIRST_RESERVED_GDT_ENTRY )
        return -EINVAL;

    if ( (ret = pv_set_gdt(curr, frames, entries)) == 0 )
        atomic_fetch_add(&curr->tlb_flush_gen, 1);     /* flush_tlb_local */
    return ret;
}

/* ------------------------------------------------------------------------
 * Descriptors
 * ------------------------------------------------------------------------ */

/*
 * Xen's check_descriptor for a 64-bit PV guest: may the guest have this
 * descriptor in a table?  Fixes the DPL (and a call gate's selector) up
 * in *desc.
 */
bool check_descriptor(uint64_t *desc)
{
    uint32_t a = (uint32_t)*desc, b = (uint32_t)(*desc >> 32), cs, dpl;

    /* A not-present descriptor always faults, so it is safe. */
    if ( !(b & _SEGMENT_P) )
        return true;

    /* The guest kernel runs in ring 3: raise the DPL to it. */
    dpl = (b >> 13) & 3;
    if ( dpl < GUEST_KERNEL_RPL )
        dpl = GUEST_KERNEL_RPL;
    b = (b & ~_SEGMENT_DPL) | (dpl << 13);

    /* Code and data segments are fine; no base or limit checks. */
    if ( b & _SEGMENT_S )
        goto good;

    /* Type 0 is harmless: the second half of a 64-bit call gate. */
    if ( (b & _SEGMENT_TYPE) == 0 )
        return true;
    /* Everything but a call gate is refused. */
    if ( (b & _SEGMENT_TYPE) != 0xc00 )
        return false;

    /* The gate may not lead into one of Xen's own segments. */
    cs = a >> 16;
    if ( (cs >> 3) >= FIRST_RESERVED_GDT_ENTRY && cs != FLAT_KERNEL_CS &&
         !(cs & 4) )
        return false;
    /*
     * DPL 0, so that using the gate faults and can be emulated; the
     * original DPL is kept in the selector's RPL.
     */
    b &= ~_SEGMENT_DPL;
    cs = (cs & ~3U) | dpl;
    a = (a & 0xffffU) | (cs << 16);
    /* Reserved bits must be zero. */
    if ( b & 0xff )
        return false;

 good:
    *desc = ((uint64_t)b << 32) | a;
    return true;
}

int validate_segdesc_page(struct page_info *pg)
{
    uint64_t *descs = map_domain_page(page_to_mfn(pg));
    unsigned int i;

    for ( i = 0; i < 512; i++ )
    {
        uint64_t desc = __atomic_load_n(&descs[i], __ATOMIC_RELAXED);

        if ( !check_descriptor(&desc) )
            break;
        __atomic_store_n(&descs[i], desc, __ATOMIC_RELAXED);
    }
    unmap_domain_page(descs);
    return i == 512 ? 0 : -EINVAL;
}

/*
 * Write one descriptor at guest physical address gaddr.  A frame that a
 * GDT or LDT uses keeps its seg_desc type for the write; any other frame
 * must be able to take the writable type, which a page table in use
 * cannot: the guest can write there only what it could store itself.
 */
long do_update_descriptor(uint64_t gaddr, uint64_t desc)
{
    struct domain *currd = current->domain;
    struct page_info *page;
    uint64_t *entry;
    mfn_t mfn;
    long ret = -EINVAL;

    /* gaddr must be aligned, or it would corrupt adjacent descriptors. */
    if ( (gaddr & (sizeof(desc) - 1)) || !check_descriptor(&desc) )
        return -EINVAL;

    mfn = gfn_to_mfn(currd, gaddr >> PAGE_SHIFT);
    if ( !mfn_valid(mfn) )
        return -EINVAL;
    page = mfn_to_page(mfn);
    if ( !get_page(page, currd) )
        return -EINVAL;

    /* Check if the given frame is in use in an unsafe context. */
    switch ( atomic_load(&page->type_info) & PGT_type_mask )
    {
    case PGT_seg_desc_page:
        if ( unlikely(!get_page_type(page, PGT_seg_desc_page)) )
            goto out;
        break;
    default:
        if ( unlikely(!get_page_type(page, PGT_writable_page)) )
            goto out;
        break;
    }

    paging_mark_dirty(currd, mfn);

    /* All is good, so make the update. */
    entry = (uint64_t *)map_domain_page(mfn) + (gaddr & (PAGE_SIZE - 1)) / 8;
    __atomic_store_n(entry, desc, __ATOMIC_RELAXED);
    unmap_domain_page(entry);

    put_page_type(page);
    ret = 0;

 out:
    put_page(page);
    return ret;
}
