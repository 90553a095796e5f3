/* SPDX-License-Identifier: MIT */
/*
 * Page-table validation: what it takes for a frame to become (promote) or
 * stop being (demote) a page table of level 1..4, or a descriptor page,
 * as xen/arch/x86/mm.c does it for 64-bit PV guests.
 *
 * Promoting a table takes, for every present entry, the references that
 * entry implies: a general ref on the target plus, for L1 entries with RW,
 * a writable type ref, and for L2..L4 entries a type ref of the next lower
 * level (which validates the target in turn, recursively).  Demoting drops
 * them again.  _get_page_type() and _put_page_type() in page.c call in here
 * when a page-table type count goes 0 -> 1 or 1 -> 0.
 *
 * L2..L4 (de)validation is preemptible.  Progress lives in the page itself:
 * entries [0, nr_validated_ptes) hold their refs; if partial_flags has
 * PTF_partial_set, entry nr_validated_ptes holds one general ref on a
 * target that may itself be partial (reference 4.9).  The exact places
 * where preemption is checked and the way partial_flags is carried follow
 * Xen after XSA-299 and XSA-310; changing them re-opens those bugs.
 *
 * Every stored guest entry carries the 64-bit PV adjustments (reference
 * 4.7), and slots 256..271 of a validated L4 hold Xen's values only.
 */
#include "hv.h"

/* 24-bit flag values used below (reference 4.1). */
#define FL_PRESENT  0x001U
#define FL_RW       0x002U
#define FL_USER     0x004U
#define FL_PWT      0x008U
#define FL_PCD      0x010U
#define FL_ACCESSED 0x020U
#define FL_PAT      0x080U
#define FL_GLOBAL   0x100U
#define PAGE_CACHE_ATTRS (FL_PAT | FL_PCD | FL_PWT)
#define CACHE_UC    (FL_PCD | FL_PWT)

/* Xen's MSR_PAT: the memory type of each PAT/PCD/PWT combination. */
#define XEN_MSR_PAT 0x050100070406ULL
#define MT_UC  0x00U
#define MT_WC  0x01U
#define MT_UCM 0x07U

/* Slots Xen writes into every 64-bit PV L4 (init_xen_l4_slots). */
#define L4_SLOT_RO_MPT    256
#define L4_SLOT_MMCFG     257
#define L4_SLOT_LINEAR    258
#define L4_SLOT_SH_LINEAR 259
#define L4_SLOT_PERDOMAIN 260
#define L4_SLOT_XEN_FIRST 261
#define __PAGE_HYPERVISOR_RW 0x8000000000000063ULL   /* P|RW|A|D|NX */

/* The all-ones MFN a PTE can name: Xen's INVALID_MFN in a PTE. */
#define PTE_INVALID_MFN (PADDR_MASK >> PAGE_SHIFT)

/*
 * Entries are read and written with relaxed atomics: a vCPU's page walk may
 * read a table while a hypercall of another vCPU validates it, as on
 * hardware.
 */
static inline intpte_t pte_read(const intpte_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void pte_write(intpte_t *p, intpte_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint32_t pte_flags(intpte_t e)
{
    return get_pte_flags(e);
}

/* Xen's iomem_access_permitted: no domU holds an iomem capability. */
static bool iomem_access_permitted(const struct domain *d)
{
    return is_control_domain(d) || d->cache_flush_permitted;
}

/* Foreign mappings into such domains take no writable type ref. */
static bool paging_mode_external(const struct domain *d)
{
    return d->translated;
}

static bool is_special_page(const struct page_info *pg)
{
    return atomic_load(&pg->count_info) & (PGC_xen_heap | PGC_extra);
}

static bool is_iomem_page(mfn_t mfn)
{
    if ( !mfn_valid(mfn) )
        return true;
    return page_get_owner(mfn_to_page(mfn)) == host.dom_io;
}

static struct domain *current_domain(void)
{
    return current ? current->domain : NULL;
}

/* ------------------------------------------------------------------------
 * Flag rules and guest-entry adjustment
 * ------------------------------------------------------------------------ */

uint32_t l1_disallow_mask(const struct domain *d)
{
    /*
     * Xen's L1_DISALLOW_MASK.  _PAGE_GNTTAB is 0 in the release build
     * ferry mirrors, so PTE bit 62 is allowed (a debug build refuses it).
     */
    uint32_t mask = (BASE_DISALLOW_MASK | _PAGE_GNTTAB) & ~FL_GLOBAL;

    if ( d != host.dom_io && !d->cache_flush_permitted && !d->translated )
        return mask;
    return mask & ~PAGE_CACHE_ATTRS;
}

bool pte_fastpath_update(intpte_t o, intpte_t n)
{
    /* Bits outside the whitelist: the MFN, P, RW, PWT, PCD, PAT/PSE. */
    const intpte_t watched = PTE_MFN_MASK | _PAGE_PRESENT | _PAGE_RW |
                             _PAGE_PWT | _PAGE_PCD | _PAGE_PAT;

    return !((o ^ n) & watched);
}

intpte_t adjust_guest_l1e(intpte_t e, const struct domain *d)
{
    const intpte_t kernel = put_pte_flags(_PAGE_GUEST_KERNEL);

    (void)d;
    if ( !(e & _PAGE_PRESENT) )
        return e;
    if ( (e & (kernel | _PAGE_GLOBAL)) == (kernel | _PAGE_GLOBAL) )
        gdprintk(XENLOG_WARNING, "Global bit is set in kernel page %lx\n",
                 (unsigned long)pte_mfn(e));
    /* Kernel mappings are user mappings tagged as the guest kernel's. */
    if ( !(e & _PAGE_USER) )
        e |= kernel | _PAGE_USER;
    /* User mappings become global. */
    if ( !(e & kernel) )
        e |= _PAGE_GLOBAL | _PAGE_USER;
    return e;
}

intpte_t adjust_guest_l2e(intpte_t e, const struct domain *d)
{
    (void)d;
    return (e & _PAGE_PRESENT) ? e | _PAGE_USER : e;
}

intpte_t adjust_guest_l3e(intpte_t e, const struct domain *d)
{
    (void)d;
    return (e & _PAGE_PRESENT) ? e | _PAGE_USER : e;
}

intpte_t adjust_guest_l4e(intpte_t e, const struct domain *d)
{
    (void)d;
    /* The accessed bit is always set: Xen may shadow L4s behind the guest. */
    return (e & _PAGE_PRESENT) ? e | _PAGE_ACCESSED | _PAGE_USER : e;
}

bool is_guest_l4_slot(unsigned int slot)
{
    return slot < ROOT_PAGETABLE_FIRST_XEN_SLOT ||
           slot > ROOT_PAGETABLE_LAST_XEN_SLOT;
}

void init_xen_l4_slots(intpte_t *l4t, mfn_t l4mfn, const struct domain *d)
{
    const intpte_t *idle = host.idle_pg_table ?
                           map_domain_page(host.idle_pg_table) : NULL;
    bool ro_mpt = d->vm_assist & (1ULL << VMASST_TYPE_m2p_strict);

    /* 256: the read-only M2P, at once only for m2p_strict guests. */
    pte_write(&l4t[L4_SLOT_RO_MPT],
              ro_mpt && idle ? pte_read(&idle[L4_SLOT_RO_MPT]) : 0);
    /* 257: PCI MMCFG. */
    pte_write(&l4t[L4_SLOT_MMCFG], idle ? pte_read(&idle[L4_SLOT_MMCFG]) : 0);
    /* 258: the self-linear map, hypervisor RW. */
    pte_write(&l4t[L4_SLOT_LINEAR],
              (l4mfn << PAGE_SHIFT) | __PAGE_HYPERVISOR_RW);
    /* 259: shadow linear map (none for PV); 260: no per-domain area yet. */
    pte_write(&l4t[L4_SLOT_SH_LINEAR], 0);
    pte_write(&l4t[L4_SLOT_PERDOMAIN], 0);
    /* 261..271: Xen's text, RW M2P, vmap, frame table, direct map. */
    for ( unsigned int i = L4_SLOT_XEN_FIRST;
          i <= ROOT_PAGETABLE_LAST_XEN_SLOT; i++ )
        pte_write(&l4t[i], idle ? pte_read(&idle[i]) : 0);
}

/* ------------------------------------------------------------------------
 * L1 entries
 * ------------------------------------------------------------------------ */

/*
 * An entry for MMIO (a frame beyond RAM, or owned by DOMID_IO): no refs are
 * kept; only a domain with an iomem capability may map it, uncached.
 */
static int get_mmio_l1e(intpte_t l1e, mfn_t mfn, struct domain *l1e_owner,
                        struct domain *pg_owner)
{
    uint32_t l1f = pte_flags(l1e);
    unsigned int attr, mt;
    int flip = 0;

    /* DOMID_IO reverts to the caller for privilege checks. */
    if ( pg_owner == host.dom_io )
        pg_owner = current_domain() ? current_domain() : l1e_owner;

    if ( !iomem_access_permitted(pg_owner) )
    {
        if ( mfn == PTE_INVALID_MFN )
            return -EINVAL;
        gdprintk(XENLOG_WARNING,
                 "d%d non-privileged attempt to map MMIO space %05lx\n",
                 pg_owner->domain_id, (unsigned long)mfn);
        return -EPERM;
    }
    if ( pg_owner != l1e_owner && !iomem_access_permitted(l1e_owner) )
    {
        if ( mfn == PTE_INVALID_MFN )
            return -EINVAL;
        gdprintk(XENLOG_WARNING,
                 "d%d attempted to map MMIO space %05lx in d%d to d%d\n",
                 current_domain() ? current_domain()->domain_id : 0,
                 (unsigned long)mfn, pg_owner->domain_id,
                 l1e_owner->domain_id);
        return -EPERM;
    }

    /* No read-only MMIO ranges; potentially cacheable types become UC. */
    attr = ((l1f >> 5) & 4) | ((l1f >> 3) & 3);
    mt = (unsigned int)(XEN_MSR_PAT >> (8 * attr)) & 0xFF;
    if ( mt != MT_UC && mt != MT_UCM && mt != MT_WC )
        flip |= (int)((l1f & PAGE_CACHE_ATTRS) ^ CACHE_UC);
    return flip;
}

int get_page_from_l1e(intpte_t l1e, struct domain *l1e_owner,
                      struct domain *pg_owner)
{
    mfn_t mfn = pte_mfn(l1e);
    uint32_t l1f = pte_flags(l1e), disallow;
    struct domain *real_pg_owner = NULL;
    struct page_info *pg;
    bool write;

    if ( unlikely(!(l1f & FL_PRESENT)) )
        return 0;

    disallow = l1_disallow_mask(l1e_owner);
    if ( unlikely(l1f & disallow) )
    {
        gdprintk(XENLOG_WARNING, "Bad L1 flags %#x\n", l1f & disallow);
        return -EINVAL;
    }

    if ( !mfn_valid(mfn) )
        return get_mmio_l1e(l1e, mfn, l1e_owner, pg_owner);
    pg = mfn_to_page(mfn);
    real_pg_owner = page_get_owner_and_reference(pg);
    if ( real_pg_owner == host.dom_io )
    {
        /* The reference only confirmed the DOMID_IO ownership. */
        put_page(pg);
        return get_mmio_l1e(l1e, mfn, l1e_owner, pg_owner);
    }

    if ( unlikely(real_pg_owner != pg_owner) )
    {
        /*
         * The control domain may pass on the right to map its target's
         * frames; nobody may map a free frame, or a foreign one as its own.
         */
        if ( !real_pg_owner || pg_owner == l1e_owner ||
             !is_control_domain(pg_owner) )
        {
            gdprintk(XENLOG_WARNING,
                     "pg_owner d%d l1e_owner d%d, but real_pg_owner d%d\n",
                     pg_owner->domain_id, l1e_owner->domain_id,
                     real_pg_owner ? (int)real_pg_owner->domain_id : -1);
            goto could_not_pin;
        }
        pg_owner = real_pg_owner;
    }

    write = (l1f & FL_RW) &&
            (l1e_owner == pg_owner || !paging_mode_external(pg_owner));
    if ( write && !get_page_type(pg, PGT_writable_page) )
    {
        gdprintk(XENLOG_WARNING,
                 "Could not get page type PGT_writable_page\n");
        goto could_not_pin;
    }

    if ( (l1f & PAGE_CACHE_ATTRS) != 0 && is_special_page(pg) )
    {
        if ( write )
            put_page_type(pg);
        put_page(pg);
        gdprintk(XENLOG_WARNING,
                 "Attempt to change cache attributes of Xen heap page\n");
        return -EACCES;
    }
    return 0;

 could_not_pin:
    gdprintk(XENLOG_WARNING,
             "Error getting mfn %05lx (pfn %05lx) from L1 entry %016lx "
             "for l1e_owner d%d, pg_owner d%d\n",
             (unsigned long)mfn, (unsigned long)get_gpfn_from_mfn(mfn),
             (unsigned long)l1e, l1e_owner->domain_id, pg_owner->domain_id);
    if ( real_pg_owner )
        put_page(pg);
    return -EBUSY;
}

void put_page_from_l1e(intpte_t l1e, struct domain *l1e_owner)
{
    mfn_t mfn = pte_mfn(l1e);
    struct page_info *pg;
    struct domain *pg_owner;

    if ( !(l1e & _PAGE_PRESENT) || is_iomem_page(mfn) )
        return;

    pg = mfn_to_page(mfn);
    pg_owner = page_get_owner(pg);

    /*
     * A grant mapping should be destroyed through the grant interface.  A
     * debug Xen recognises grant PTEs by _PAGE_GNTTAB and, unless the
     * l1e owner is shutting down or dying, logs "Attempt to implicitly
     * unmap" and injects #GP[0] into the current vCPU here (domain_crash of
     * the owner before Xen 4.17).  The release build has no such mark
     * (_PAGE_GNTTAB is 0) and compiles the check out: the entry's refs go
     * like any other entry's, and the grant stays pinned until its unmap
     * (which then fails, the PTE no longer matching) or the mapper's death.
     * A guest may set PTE bit 62 itself, so it could not mark grants here.
     */
    /* Foreign RW mappings into external domains took no type ref. */
    if ( (l1e & _PAGE_RW) &&
         (l1e_owner == pg_owner || !pg_owner ||
          !paging_mode_external(pg_owner)) )
        put_page_and_type(pg);
    else
        put_page(pg);
}

/* ------------------------------------------------------------------------
 * L2..L4 entries
 * ------------------------------------------------------------------------ */

static bool get_page_from_mfn(mfn_t mfn, struct domain *d)
{
    if ( unlikely(!mfn_valid(mfn)) ||
         unlikely(!get_page(mfn_to_page(mfn), d)) )
    {
        gdprintk(XENLOG_WARNING, "Could not get page ref for mfn %05lx\n",
                 (unsigned long)mfn);
        return false;
    }
    return true;
}

/*
 * A general ref (unless the entry already holds one: PTF_partial_set) and
 * a type ref of `type`.  The general ref stays on success, when it came
 * with the entry, when a nested validation was interrupted and the caller
 * asked to retain it, and when the page became old_guest_table.
 */
static int get_page_and_type_from_mfn(mfn_t mfn, uint64_t type,
                                      struct domain *d, unsigned int flags)
{
    bool preemptible = flags & PTF_preemptible;
    bool partial_set = flags & PTF_partial_set;
    bool retain_ref = flags & PTF_retain_ref_on_restart;
    struct page_info *pg;
    int rc;

    if ( likely(!partial_set) && unlikely(!get_page_from_mfn(mfn, d)) )
        return -EINVAL;
    pg = mfn_to_page(mfn);

    rc = _get_page_type(pg, type, preemptible);

    if ( likely(!rc) || partial_set )
        ;
    else if ( (current && pg == current->old_guest_table) ||
              (retain_ref && rc == -ERESTART) )
        ASSERT(preemptible);
    else
        put_page(pg);
    return rc;
}

/*
 * A same-level (linear, recursive) entry, read-only.  A self-map takes no
 * refs.  Otherwise the target must be an already validated table of this
 * level (no validation deadlock), and XSA-240: a table either contains
 * linear entries or is used linearly, never both, so depth stays 1.
 */
static bool get_linear_pagetable(unsigned int level, intpte_t pde,
                                 mfn_t pde_mfn, struct domain *d)
{
    uint64_t want = PGT_for_level(level) | PGT_validated;
    mfn_t mfn = pte_mfn(pde);
    struct page_info *pg, *ptpg;
    uint64_t x, y;

    if ( !host.opt_pv_linear_pt )
    {
        gdprintk(XENLOG_WARNING,
                 "Attempt to create linear p.t. (feature disabled)\n");
        return false;
    }
    if ( pde & _PAGE_RW )
    {
        gdprintk(XENLOG_WARNING,
                 "Attempt to create linear p.t. with write perms\n");
        return false;
    }
    if ( mfn == pde_mfn )
        return true;

    ptpg = mfn_to_page(pde_mfn);
    if ( unlikely(page_get_owner(ptpg) != d) )
        return false;
    if ( unlikely(!get_page_from_mfn(mfn, d)) )
        return false;
    pg = mfn_to_page(mfn);

    if ( !inc_linear_entries(ptpg) )
        goto fail_ref;
    if ( !inc_linear_uses(pg) )
        goto fail_entries;

    y = atomic_load(&pg->type_info);
    do {
        x = y;
        if ( unlikely((x & PGT_count_mask) == PGT_count_mask) ||
             unlikely((x & (PGT_type_mask | PGT_validated)) != want) )
            goto fail_uses;
    } while ( (y = cmpxchg64(&pg->type_info, x, x + 1)) != x );
    return true;

 fail_uses:
    dec_linear_uses(pg);
 fail_entries:
    dec_linear_entries(ptpg);
 fail_ref:
    put_page(pg);
    return false;
}

/*
 * An L2..L4 entry takes a general and a typed reference on the table one
 * level down (or, failing the type, is tried as a same-level linear
 * entry).  L2 entries validate L1s, which are never preempted; L3 and L4
 * entries pass PTF_preemptible, so they may return -EINTR/-ERESTART.
 */
static int get_page_from_lNe(unsigned int level, intpte_t e, mfn_t table,
                             struct domain *d, unsigned int flags)
{
    static const uint32_t disallow[5] = {
        [2] = L2_DISALLOW_MASK, [3] = L3_DISALLOW_MASK,
        [4] = L4_DISALLOW_MASK,
    };
    uint32_t bad = pte_flags(e) & disallow[level];
    int rc;

    if ( unlikely(bad) )
    {
        gdprintk(XENLOG_WARNING, "Bad L%u flags %x\n", level, bad);
        return -EINVAL;
    }
    if ( level == 2 )
        ASSERT(!(flags & PTF_preemptible));
    else
        flags |= PTF_preemptible;
    rc = get_page_and_type_from_mfn(pte_mfn(e), PGT_for_level(level - 1), d,
                                    flags);
    if ( unlikely(rc == -EINVAL) && get_linear_pagetable(level, e, table, d) )
        rc = 0;
    return rc;
}

int get_page_from_l2e(intpte_t l2e, mfn_t table, struct domain *d,
                      unsigned int flags)
{
    return get_page_from_lNe(2, l2e, table, d, flags);
}

int get_page_from_l3e(intpte_t l3e, mfn_t table, struct domain *d,
                      unsigned int flags)
{
    return get_page_from_lNe(3, l3e, table, d, flags);
}

int get_page_from_l4e(intpte_t l4e, mfn_t table, struct domain *d,
                      unsigned int flags)
{
    return get_page_from_lNe(4, l4e, table, d, flags);
}

/*
 * Drop the refs of one L2..L4 entry, or park them in old_guest_table to be
 * dropped before the vCPU's next request (PTF_defer: a replaced entry).
 */
static int put_pt_page(struct page_info *pg, struct page_info *ptpg,
                       unsigned int flags)
{
    int rc = 0;

    if ( flags & PTF_defer )
    {
        ASSERT(!(flags & PTF_partial_set));
        ASSERT(current);
        current->old_guest_ptpg = ptpg;
        current->old_guest_table = pg;
        current->old_guest_table_partial = false;
    }
    else
    {
        rc = _put_page_type(pg, flags | PTF_preemptible, ptpg);
        if ( likely(!rc) )
            put_page(pg);
    }
    return rc;
}

/*
 * Returns 1 when the entry held nothing (not present, or a self-map), else
 * 0 or the error of the put.  PSE entries never validate in ferry (no
 * superpages for PV), so none can be here.
 */
static int put_page_from_lNe(intpte_t e, mfn_t table, unsigned int flags)
{
    if ( !(e & _PAGE_PRESENT) || pte_mfn(e) == table )
        return 1;
    ASSERT(!(e & _PAGE_PSE));
    return put_pt_page(mfn_to_page(pte_mfn(e)), mfn_to_page(table), flags);
}

int put_page_from_l2e(intpte_t l2e, mfn_t table, unsigned int flags)
{
    return put_page_from_lNe(l2e, table, flags);
}

int put_page_from_l3e(intpte_t l3e, mfn_t table, unsigned int flags)
{
    return put_page_from_lNe(l3e, table, flags);
}

int put_page_from_l4e(intpte_t l4e, mfn_t table, unsigned int flags)
{
    return put_page_from_lNe(l4e, table, flags);
}

/* ------------------------------------------------------------------------
 * Promotion
 * ------------------------------------------------------------------------ */

static int promote_l1_table(struct page_info *pg)
{
    struct domain *d = page_get_owner(pg);
    intpte_t *pl1e = map_domain_page(page_to_mfn(pg));
    unsigned int i;
    int ret = 0;

    for ( i = 0; i < L1_PAGETABLE_ENTRIES; i++ )
    {
        intpte_t e = pte_read(&pl1e[i]);

        /* Non-present entries: only the L1TF check, which always passes. */
        if ( e & _PAGE_PRESENT )
        {
            ret = get_page_from_l1e(e, d, d);
            if ( ret < 0 )
                goto fail;
            /* A positive result names flags to flip (MMIO: force UC). */
            if ( ret > 0 )
                e ^= put_pte_flags((uint32_t)ret);
            ret = 0;
        }
        pte_write(&pl1e[i], adjust_guest_l1e(e, d));
    }
    unmap_domain_page(pl1e);
    return 0;

 fail:
    gdprintk(XENLOG_WARNING, "Failure %d in promote_l1_table: slot %#x\n",
             ret, i);
    while ( i-- > 0 )
        put_page_from_l1e(pte_read(&pl1e[i]), d);
    unmap_domain_page(pl1e);
    return ret;
}

/* Make the failing table the vCPU's deferred put (partial). */
static void park_failed_table(struct page_info *pg)
{
    ASSERT(current);
    current->old_guest_ptpg = NULL;
    current->old_guest_table = pg;
    current->old_guest_table_partial = true;
}

/*
 * Finish a deferred put that a failing table found in old_guest_table but
 * that is not its own entry's: the table is about to park itself there.
 * Preemption is ignored (each -ERESTART recorded progress, each -EINTR
 * changed nothing): the frame is an L2 parked by its own failure, whose
 * demotion is bounded work, and the vCPU has only one deferred put.
 */
static void finish_stray_old_guest_table(struct vcpu *v)
{
    while ( put_old_guest_table(v) == -ERESTART )
        ;
    ASSERT(!v->old_guest_table);
}

/*
 * A hard failure (not -EINTR/-ERESTART) at entry i of an L2..L4 `pg`,
 * entry i being `e`: settle who releases what the table holds (reference
 * 4.5, 4.9, 4.10).  Entries [0, i) hold their refs.  Entry i holds a
 * general ref on its target if it came in with PTF_partial_set
 * (`partial_flags`), or if the target's own failure parked it in
 * old_guest_table, which then owns that ref.
 *
 * Xen parks the table when i > 0, transferring old_guest_table's ref to
 * entry i (PTF_partial_set) when old_guest_table is the target, and
 * otherwise just fails.  A guest can make that leak in two ways, which
 * ferry closes; everything else is as in Xen:
 *
 *  - i == 0 with PTF_partial_set and a target that is not
 *    old_guest_table (the target failed at its own entry 0, or was a
 *    partially demoted same-level table that could not be resumed): the
 *    entry's general ref, and the target's remaining partial state if
 *    any, belong to nobody once the table's type is cleared.  ferry
 *    drops them now, as the table's demotion would (PTF_partial_set), and
 *    parks the table at entry 0 only if that put was interrupted.
 *
 *  - i > 0 with old_guest_table set to a frame that is not the target: a
 *    grandchild parked by its own failure, left there because the target
 *    failed at its entry 0 (and so did not park and take it over).  Xen
 *    overwrites old_guest_table (ASSERT_UNREACHABLE(), "safer to leak"),
 *    losing the grandchild's type ref, partial state and general ref;
 *    ferry finishes that deferred put before parking the table.
 */
static void promote_failed(struct page_info *pg, unsigned int i, intpte_t e,
                           unsigned int partial_flags)
{
    struct vcpu *v = current;
    mfn_t mfn = pte_mfn(e);
    struct page_info *target = mfn_valid(mfn) ? mfn_to_page(mfn) : NULL;

    ASSERT(v);
    if ( v->old_guest_table && v->old_guest_table == target )
    {
        ASSERT(v->old_guest_table_partial);
        /* At entry 0 old_guest_table keeps the ref, as in Xen. */
        if ( !i )
            return;
        partial_flags = PTF_partial_set;
    }
    else if ( !i )
    {
        if ( !(partial_flags & PTF_partial_set) ||
             put_page_from_lNe(e, page_to_mfn(pg), PTF_partial_set) >= 0 )
            return;
        /* Interrupted: entry 0 still holds the ref; the table parks. */
    }

    if ( v->old_guest_table && v->old_guest_table != target )
        finish_stray_old_guest_table(v);
    page_set_nr_validated_ptes(pg, i);
    page_set_partial_flags(pg, partial_flags);
    park_failed_table(pg);
}

static int promote_l2_table(struct page_info *pg)
{
    struct domain *d = page_get_owner(pg);
    mfn_t l2mfn = page_to_mfn(pg);
    intpte_t *pl2e = map_domain_page(l2mfn);
    unsigned int start = page_nr_validated_ptes(pg);
    unsigned int partial_flags = page_partial_flags(pg);
    unsigned int i;
    int rc = 0;

    /*
     * Promotion never leaves PTF_partial_set on an L2, but an interrupted
     * demotion of a linear L2 entry can; the flag is then tracked as
     * usual so that its ref is kept.
     */
    for ( i = start; i < L1_PAGETABLE_ENTRIES; i++, partial_flags = 0 )
    {
        intpte_t l2e = pte_read(&pl2e[i]);

        if ( i > start &&
             hypercall_preempt_check_pt(2, i, l2mfn, PREEMPT_PROMOTE) )
            rc = -EINTR;
        else if ( !(l2e & _PAGE_PRESENT) )
            continue;
        else
            rc = get_page_from_l2e(l2e, l2mfn, d, partial_flags);

        /* L2 entries are not preemptible: no nested -ERESTART. */
        ASSERT(rc != -ERESTART);

        if ( rc == -EINTR && i )
        {
            page_set_nr_validated_ptes(pg, i);
            page_set_partial_flags(pg, partial_flags);
            rc = -ERESTART;
        }
        else if ( rc < 0 && rc != -EINTR )
        {
            gdprintk(XENLOG_WARNING,
                     "Failure %d in promote_l2_table: slot %#x\n", rc, i);
            /* promote_l1_table() tears down itself: it never parks. */
            ASSERT(!current || !current->old_guest_table);
            promote_failed(pg, i, l2e, partial_flags);
        }
        if ( rc < 0 )
            break;

        pte_write(&pl2e[i], adjust_guest_l2e(l2e, d));
    }
    unmap_domain_page(pl2e);
    return rc;
}

static int promote_l3_table(struct page_info *pg)
{
    struct domain *d = page_get_owner(pg);
    mfn_t l3mfn = page_to_mfn(pg);
    intpte_t *pl3e = map_domain_page(l3mfn);
    unsigned int start = page_nr_validated_ptes(pg);
    unsigned int partial_flags = page_partial_flags(pg);
    intpte_t l3e = 0;
    unsigned int i;
    int rc = 0;

    for ( i = start; i < L1_PAGETABLE_ENTRIES; i++, partial_flags = 0 )
    {
        l3e = pte_read(&pl3e[i]);

        if ( i > start &&
             hypercall_preempt_check_pt(3, i, l3mfn, PREEMPT_PROMOTE) )
            rc = -EINTR;
        else if ( !(l3e & _PAGE_PRESENT) )
            continue;
        else
            rc = get_page_from_l3e(l3e, l3mfn, d,
                                   partial_flags | PTF_retain_ref_on_restart);

        if ( rc == -ERESTART )
        {
            /* Entry i now holds a general ref on its partial target. */
            page_set_nr_validated_ptes(pg, i);
            page_set_partial_flags(pg, PTF_partial_set);
        }
        else if ( rc == -EINTR && i )
        {
            /*
             * XSA-299/310: store the local flags, which only the first
             * (resumed) entry may carry; a stale partial_set would make
             * the resumption skip a general ref.
             */
            page_set_nr_validated_ptes(pg, i);
            page_set_partial_flags(pg, partial_flags);
            rc = -ERESTART;
        }
        if ( rc < 0 )
            break;

        pte_write(&pl3e[i], adjust_guest_l3e(l3e, d));
    }

    if ( rc < 0 && rc != -ERESTART && rc != -EINTR )
    {
        gdprintk(XENLOG_WARNING,
                 "Failure %d in promote_l3_table: slot %#x\n", rc, i);
        promote_failed(pg, i, l3e, partial_flags);
    }
    unmap_domain_page(pl3e);
    return rc;
}

static int promote_l4_table(struct page_info *pg)
{
    struct domain *d = page_get_owner(pg);
    mfn_t l4mfn = page_to_mfn(pg);
    intpte_t *pl4e = map_domain_page(l4mfn);
    unsigned int partial_flags = page_partial_flags(pg);
    unsigned int i;
    int rc = 0;

    /* No preemption check of its own: nested L3 validation has them. */
    for ( i = page_nr_validated_ptes(pg); i < L1_PAGETABLE_ENTRIES;
          i++, partial_flags = 0 )
    {
        intpte_t l4e;

        if ( !is_guest_l4_slot(i) )
            continue;
        l4e = pte_read(&pl4e[i]);

        if ( !(l4e & _PAGE_PRESENT) )
            continue;
        rc = get_page_from_l4e(l4e, l4mfn, d,
                               partial_flags | PTF_retain_ref_on_restart);

        if ( rc == -ERESTART )
        {
            page_set_nr_validated_ptes(pg, i);
            page_set_partial_flags(pg, PTF_partial_set);
        }
        else if ( rc < 0 )
        {
            if ( rc == -EINTR && i )
            {
                page_set_nr_validated_ptes(pg, i);
                page_set_partial_flags(pg, partial_flags);
                rc = -ERESTART;
            }
            else if ( rc != -EINTR )
            {
                gdprintk(XENLOG_WARNING,
                         "Failure %d in promote_l4_table: slot %#x\n", rc, i);
                promote_failed(pg, i, l4e, partial_flags);
            }
        }
        if ( rc < 0 )
            break;

        pte_write(&pl4e[i], adjust_guest_l4e(l4e, d));
    }

    if ( !rc )
    {
        init_xen_l4_slots(pl4e, l4mfn, d);
        atomic_fetch_add(&d->nr_l4_pages, 1);
    }
    unmap_domain_page(pl4e);
    return rc;
}

int validate_page(struct page_info *pg, uint64_t type, bool preemptible)
{
    struct domain *owner = page_get_owner(pg);
    mfn_t mfn = page_to_mfn(pg);
    int rc;

    /* A page table is dirtied when its type count becomes non-zero. */
    if ( likely(owner != NULL) )
        paging_mark_dirty(owner, mfn);

    switch ( type & PGT_type_mask )
    {
    case PGT_l1_page_table:
        rc = promote_l1_table(pg);
        break;
    case PGT_l2_page_table:
        ASSERT(preemptible);
        rc = promote_l2_table(pg);
        break;
    case PGT_l3_page_table:
        ASSERT(preemptible);
        rc = promote_l3_table(pg);
        break;
    case PGT_l4_page_table:
        ASSERT(preemptible);
        rc = promote_l4_table(pg);
        break;
    case PGT_seg_desc_page:
        rc = validate_segdesc_page(pg);
        break;
    default:
        printk("Bad type in validate_page %lx t=%016lx c=%lx\n",
               (unsigned long)type, (unsigned long)atomic_load(&pg->type_info),
               (unsigned long)atomic_load(&pg->count_info));
        BUG();
    }

    /* We hold the validation lock: nobody else changes type_info. */
    switch ( rc )
    {
    case 0:
        atomic_fetch_or(&pg->type_info, PGT_validated);
        break;
    case -EINTR:
        /* Nothing happened: back to count 0, type kept, not validated. */
        ASSERT((atomic_load(&pg->type_info) &
                (PGT_count_mask | PGT_validated | PGT_partial)) == 1);
        atomic_fetch_and(&pg->type_info, ~PGT_count_mask);
        break;
    default:
        ASSERT(rc < 0);
        gdprintk(XENLOG_WARNING,
                 "Error while validating mfn %05lx (pfn %05lx) for type "
                 "%016lx: caf=%08lx taf=%016lx\n",
                 (unsigned long)mfn, (unsigned long)get_gpfn_from_mfn(mfn),
                 (unsigned long)type,
                 (unsigned long)atomic_load(&pg->count_info),
                 (unsigned long)atomic_load(&pg->type_info));
        if ( !current || pg != current->old_guest_table )
        {
            atomic_store(&pg->type_info, 0);
            break;
        }
        /*
         * The failed table is parked for a deferred put, which will
         * demote what was validated: it stays partial until then.
         */
        ASSERT((atomic_load(&pg->type_info) &
                (PGT_count_mask | PGT_validated)) == 1);
        /* fall through */
    case -ERESTART:
        get_page_light(pg);
        atomic_fetch_or(&pg->type_info, PGT_partial);
        break;
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Demotion
 * ------------------------------------------------------------------------ */

static void demote_l1_table(struct page_info *pg)
{
    struct domain *d = page_get_owner(pg);
    intpte_t *pl1e = map_domain_page(page_to_mfn(pg));

    for ( unsigned int i = 0; i < L1_PAGETABLE_ENTRIES; i++ )
        put_page_from_l1e(pte_read(&pl1e[i]), d);
    unmap_domain_page(pl1e);
}

/*
 * A demotion that stopped at entry i with rc: -ERESTART (entry i's own
 * demotion was preempted) leaves the table with entry i partial; -EINTR
 * after progress leaves it with the entries above i gone (XSA-310) and
 * becomes -ERESTART.  Any other rc is returned as it is.
 */
static int demote_stopped(struct page_info *pg, int rc, unsigned int i,
                          unsigned int partial_flags)
{
    if ( rc == -ERESTART )
    {
        page_set_nr_validated_ptes(pg, i);
        page_set_partial_flags(pg, PTF_partial_set);
    }
    else if ( rc == -EINTR && i < L1_PAGETABLE_ENTRIES - 1 )
    {
        page_set_nr_validated_ptes(pg, i + !(partial_flags & PTF_partial_set));
        page_set_partial_flags(pg, partial_flags);
        rc = -ERESTART;
    }
    return rc;
}

/*
 * Demote L2 or L3 (same code for 64-bit guests): from the last validated
 * entry down to 0, checking for preemption after each entry but the last.
 */
static int demote_l23_table(struct page_info *pg, unsigned int level)
{
    mfn_t mfn = page_to_mfn(pg);
    intpte_t *pte = map_domain_page(mfn);
    unsigned int partial_flags = page_partial_flags(pg);
    unsigned int i = page_nr_validated_ptes(pg) -
                     !(partial_flags & PTF_partial_set);
    int rc;

    for ( ; ; )
    {
        rc = put_page_from_lNe(pte_read(&pte[i]), mfn, partial_flags);
        if ( rc < 0 )
            break;
        partial_flags = 0;
        if ( !i-- )
            break;
        if ( hypercall_preempt_check_pt(level, i, mfn, PREEMPT_DEMOTE) )
        {
            rc = -EINTR;
            break;
        }
    }
    unmap_domain_page(pte);

    rc = demote_stopped(pg, rc, i, partial_flags);
    return rc > 0 ? 0 : rc;
}

static int demote_l4_table(struct page_info *pg)
{
    struct domain *d = page_get_owner(pg);
    mfn_t l4mfn = page_to_mfn(pg);
    intpte_t *pl4e = map_domain_page(l4mfn);
    unsigned int partial_flags = page_partial_flags(pg);
    unsigned int i = page_nr_validated_ptes(pg) -
                     !(partial_flags & PTF_partial_set);
    int rc = 0;

    do {
        if ( is_guest_l4_slot(i) )
            rc = put_page_from_l4e(pte_read(&pl4e[i]), l4mfn, partial_flags);
        if ( rc < 0 )
            break;
        partial_flags = 0;
    } while ( i-- );

    rc = demote_stopped(pg, rc, i, partial_flags);
    unmap_domain_page(pl4e);

    if ( rc >= 0 )
    {
        atomic_fetch_sub(&d->nr_l4_pages, 1);
        rc = 0;
    }
    return rc;
}

int devalidate_page(struct page_info *pg, uint64_t type, bool preemptible)
{
    struct domain *owner = page_get_owner(pg);
    int rc;

    /* A page table is dirtied when its type count becomes zero. */
    if ( likely(owner != NULL) && paging_mode_log_dirty(owner) )
        paging_mark_dirty(owner, page_to_mfn(pg));

    /* A fresh demotion starts above the last entry. */
    if ( !(type & PGT_partial) )
    {
        page_set_nr_validated_ptes(pg, L1_PAGETABLE_ENTRIES);
        page_set_partial_flags(pg, 0);
    }

    switch ( type & PGT_type_mask )
    {
    case PGT_l1_page_table:
        demote_l1_table(pg);
        rc = 0;
        break;
    case PGT_l2_page_table:
        ASSERT(preemptible);
        rc = demote_l23_table(pg, 2);
        break;
    case PGT_l3_page_table:
        ASSERT(preemptible);
        rc = demote_l23_table(pg, 3);
        break;
    case PGT_l4_page_table:
        ASSERT(preemptible);
        rc = demote_l4_table(pg);
        break;
    default:
        gdprintk(XENLOG_WARNING, "type %016lx mfn %05lx\n",
                 (unsigned long)type, (unsigned long)page_to_mfn(pg));
        BUG();
    }
    return rc;
}
