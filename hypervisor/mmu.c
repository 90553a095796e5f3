/* SPDX-License-Identifier: MIT */
/*
 * The guest-facing memory-management hypercalls: mmu_update, mmuext_op,
 * update_va_mapping(_otherdomain) and new_guest_cr3 (xen/arch/x86/mm.c,
 * xen/arch/x86/pv/mm.c).
 *
 * This file is the hypercall layer above the reference machinery of page.c
 * and pt.c: it decodes requests, finds the frames they name, takes the
 * page_lock of a page table before changing one of its entries, and turns
 * the internal -EINTR/-ERESTART of (de)validation into continuations.  It
 * never counts references itself; every reference it takes or drops goes
 * through get_page/_get_page_type/get_page_from_lNe and their puts.
 *
 * Invariants kept here:
 *  - An entry of a validated page table changes only under that table's
 *    page_lock, by compare-and-exchange, after the new entry's references
 *    were taken; the old entry's references are dropped afterwards (for
 *    L2..L4 deferred to current->old_guest_table, because dropping them may
 *    devalidate a whole tree and must not happen under a page_lock).
 *  - A batch never starts a request while current->old_guest_table is set:
 *    the hypercall returns -ERESTART and the next call finishes that put
 *    first (put_old_guest_table at entry).
 *  - Continuations follow one contract: processing starts at reqs[*done];
 *    on -ERESTART the progress is in *done (and in the vCPU) and the caller
 *    calls again with the same arguments; on 0 or an error *done counts the
 *    completed requests.  When the batch is over but a deferred put is still
 *    pending, the final rc waits in current->hcall_cont_rc (Xen passes it in
 *    the foreigndom slot of a last continuation) and the next call, after
 *    the put, returns it.
 *  - A failed request leaves every count as it was before that request;
 *    earlier requests of the batch stay applied.
 */
#include <string.h>

#include "hv.h"

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

#define L1_PAGETABLE_SHIFT 12
#define L2_PAGETABLE_SHIFT 21
#define L3_PAGETABLE_SHIFT 30
#define L4_PAGETABLE_SHIFT 39
#define PT_INDEX(va, shift) ((unsigned int)(((va) >> (shift)) & 511))

/* The end of Xen's range in a 64-bit PV address space (L4 slot 271). */
#define HYPERVISOR_VIRT_END   0xFFFF880000000000UL
#define RO_MPT_SLOT           256U

/* The marker of a pending final continuation in v->hcall_cont_rc. */
#define HCALL_CONT_FINAL      (1ULL << 63)

/* Xen's __addr_ok(): guest half, or above the hypervisor's slots. */
static bool addr_ok(uint64_t va)
{
    return va < (1UL << 47) || va >= HYPERVISOR_VIRT_END;
}

static bool is_canonical_address(uint64_t va)
{
    return ((int64_t)va >> 47) == ((int64_t)va >> 63);
}

/*
 * Auto-translated domains (ferry's Arm/HVM-style ones, with a p2m) play the
 * part of Xen's HVM guests here: refcounting paging mode, no PV MMU.
 */
static bool paging_mode_translate(const struct domain *d)
{
    return d->translated;
}

static bool paging_mode_refcounts(const struct domain *d)
{
    return d->translated;
}

static bool is_pv_domain(const struct domain *d)
{
    return !d->translated;
}

static bool vm_assist_m2p_strict(const struct domain *d)
{
    return d->vm_assist & (1UL << VMASST_TYPE_m2p_strict);
}

/* Page-table entries live in machine memory shared with the guest CPU. */
static intpte_t *map_table(mfn_t mfn)
{
    return map_domain_page(mfn);
}

static intpte_t pte_read(const intpte_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void pte_write(intpte_t *p, intpte_t val)
{
    __atomic_store_n(p, val, __ATOMIC_RELAXED);
}

/* The guest CPU drops its cached translations when the generation moves. */
static void flush_tlb_vcpu(struct vcpu *v)
{
    atomic_fetch_add(&v->tlb_flush_gen, 1);
}

/* test_and_set_bit / test_and_clear_bit on type_info, as a cmpxchg loop. */
static bool test_and_set_type_flag(struct page_info *pg, uint64_t flag)
{
    uint64_t x = atomic_load(&pg->type_info), y;

    while ( (y = cmpxchg64(&pg->type_info, x, x | flag)) != x )
        x = y;
    return x & flag;
}

static bool test_and_clear_type_flag(struct page_info *pg, uint64_t flag)
{
    uint64_t x = atomic_load(&pg->type_info), y;

    while ( (y = cmpxchg64(&pg->type_info, x, x & ~flag)) != x )
        x = y;
    return x & flag;
}

/* ------------------------------------------------------------------------
 * Finding frames and owners
 * ------------------------------------------------------------------------ */

/*
 * The owner of the frames a request maps (Xen's get_pg_owner): DOMID_SELF,
 * DOMID_IO, DOMID_XEN or a domain ID other than the caller's own.  Takes a
 * domain reference; put_pg_owner drops it.
 */
static struct domain *get_pg_owner(domid_t domid)
{
    struct domain *curr = current->domain, *pg_owner = NULL;

    if ( unlikely(domid == curr->domain_id) )
    {
        gdprintk(XENLOG_WARNING, "Cannot specify itself as foreign domain\n");
        return NULL;
    }

    switch ( domid )
    {
    case DOMID_IO:
        pg_owner = host.dom_io;
        break;
    case DOMID_XEN:
        pg_owner = host.dom_xen;
        break;
    case DOMID_SELF:
        pg_owner = curr;
        break;
    default:
        pg_owner = lock_domain_by_id(domid);
        if ( !pg_owner )
            gdprintk(XENLOG_WARNING, "Unknown domain d%d\n", domid);
        return pg_owner;
    }
    return get_domain(pg_owner) ? pg_owner : NULL;
}

static void put_pg_owner(struct domain *pg_owner)
{
    put_domain(pg_owner);
}

static struct page_info *get_page_from_mfn(mfn_t mfn, struct domain *d)
{
    struct page_info *pg = mfn_valid(mfn) ? mfn_to_page(mfn) : NULL;

    if ( unlikely(!pg) || unlikely(!get_page(pg, d)) )
    {
        gdprintk(XENLOG_WARNING, "Could not get page ref for mfn %05lx\n",
                 (unsigned long)mfn);
        return NULL;
    }
    return pg;
}

/*
 * Xen's default XSM policy for XSM_TARGET hooks (xsm/dummy.h): a domain
 * may act on itself; the control domain on anyone.
 */
static int xsm_target(const struct domain *src, const struct domain *target)
{
    return (src == target || src->is_privileged) ? 0 : -EPERM;
}

/* xsm_mmu_update: the frames' owner (unless DOMID_IO), then the tables'. */
static int xsm_mmu_update(const struct domain *d, const struct domain *t,
                          const struct domain *f)
{
    int rc = 0;

    if ( f != host.dom_io )
        rc = xsm_target(d, f);
    if ( t && !rc )
        rc = xsm_target(d, t);
    return rc;
}

/* The p2m types this model distinguishes. */
enum p2m_type { p2m_ram_rw, p2m_mmio_direct, p2m_invalid };

/*
 * A general reference to the frame a guest names by frame number: the MFN
 * itself for a PV domain (1:1), the p2m's entry for a translated one.
 */
static struct page_info *get_page_from_gfn(struct domain *d, uint64_t gfn,
                                           enum p2m_type *t)
{
    mfn_t mfn = gfn;
    struct page_info *pg;

    if ( paging_mode_translate(d) )
    {
        spin_lock(&d->p2m_lock);
        mfn = (d->p2m && gfn < d->p2m_size) ? d->p2m[gfn] : INVALID_MFN;
        spin_unlock(&d->p2m_lock);
        if ( t )
            *t = mfn == INVALID_MFN ? p2m_invalid : p2m_ram_rw;
    }
    else if ( t )
        *t = likely(d != host.dom_io) ? p2m_ram_rw : p2m_mmio_direct;

    if ( !mfn_valid(mfn) )
        return NULL;
    pg = mfn_to_page(mfn);
    return get_page(pg, d) ? pg : NULL;
}

/*
 * A general and a type reference to a frame of d (Xen's static
 * get_page_and_type_from_mfn, as NEW_BASEPTR uses it: no partial state
 * coming in).  On failure the general reference is dropped unless the
 * frame became current->old_guest_table, which then owns it.
 */
static int get_page_and_type_from_mfn(mfn_t mfn, uint64_t type,
                                      struct domain *d, bool preemptible)
{
    struct page_info *pg;
    int rc;

    if ( !mfn_valid(mfn) )
        return -EINVAL;
    pg = mfn_to_page(mfn);
    if ( unlikely(!get_page(pg, d)) )
        return -EINVAL;

    rc = _get_page_type(pg, type, preemptible);
    if ( unlikely(rc) && pg != current->old_guest_table )
        put_page(pg);
    return rc;
}

/* ------------------------------------------------------------------------
 * Walking the guest's own page tables
 * ------------------------------------------------------------------------ */

/*
 * The L1 entry that maps va in v's kernel page tables, and the L1 frame
 * holding it (Xen's map_guest_l1e, which reads the L2 entry through the
 * linear map: the L4 and L3 entries must be present, the L2 entry present
 * and not a superpage).  NULL when there is none.  Nothing is referenced:
 * the caller takes its own reference on *gl1mfn and re-checks its type.
 */
static intpte_t *map_guest_l1e(const struct vcpu *v, uint64_t va,
                               mfn_t *gl1mfn)
{
    mfn_t mfn = v->guest_table;
    intpte_t e;

    if ( unlikely(!addr_ok(va)) || !mfn || !mfn_valid(mfn) )
        return NULL;

    e = pte_read(map_table(mfn) + PT_INDEX(va, L4_PAGETABLE_SHIFT));
    if ( !(e & _PAGE_PRESENT) || !mfn_valid(pte_mfn(e)) )
        return NULL;
    e = pte_read(map_table(pte_mfn(e)) + PT_INDEX(va, L3_PAGETABLE_SHIFT));
    if ( (e & (_PAGE_PRESENT | _PAGE_PSE)) != _PAGE_PRESENT ||
         !mfn_valid(pte_mfn(e)) )
        return NULL;
    e = pte_read(map_table(pte_mfn(e)) + PT_INDEX(va, L2_PAGETABLE_SHIFT));
    if ( (e & (_PAGE_PRESENT | _PAGE_PSE)) != _PAGE_PRESENT ||
         !mfn_valid(pte_mfn(e)) )
        return NULL;

    *gl1mfn = pte_mfn(e);
    return map_table(*gl1mfn) + PT_INDEX(va, L1_PAGETABLE_SHIFT);
}

/*
 * Read len bytes at guest virtual address va of the current vCPU (Xen's
 * copy_from_guest for a guest pointer inside a hypercall argument, such as
 * a vCPU bitmap).  -EFAULT when any byte is not mapped.
 */
static int copy_from_guest_va(void *dst, uint64_t va, size_t len)
{
    uint8_t *out = dst;

    while ( len )
    {
        size_t off = va & (PAGE_SIZE - 1);
        size_t n = min(len, PAGE_SIZE - off);
        mfn_t gl1mfn;
        intpte_t *pl1e = map_guest_l1e(current, va, &gl1mfn);
        intpte_t l1e = pl1e ? pte_read(pl1e) : 0;
        const uint8_t *src;

        if ( !(l1e & _PAGE_PRESENT) || !mfn_valid(pte_mfn(l1e)) )
            return -EFAULT;
        src = (const uint8_t *)map_domain_page(pte_mfn(l1e)) + off;
        for ( size_t i = 0; i < n; i++ )
            out[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        out += n;
        va += n;
        len -= n;
    }
    return 0;
}

/*
 * Xen's vcpumask_to_pcpumask: the guest bitmap at bmap names vCPUs of d, 64
 * to a word.  It is checked whole before anything is flushed, so that a
 * fault flushes nothing, as in Xen.
 */
static int vcpumask_read_word(uint64_t bmap, unsigned int offs,
                              uint64_t *word)
{
    return copy_from_guest_va(word, bmap + offs * sizeof(*word),
                              sizeof(*word));
}

static int vcpumask_check(const struct domain *d, uint64_t bmap)
{
    uint64_t vmask;

    for ( unsigned int offs = 0; offs * 64U < d->max_vcpus; offs++ )
        if ( vcpumask_read_word(bmap, offs, &vmask) )
            return -EFAULT;
    return 0;
}

static int flush_tlb_vcpumask(struct domain *d, uint64_t bmap)
{
    uint64_t vmask;
    int rc = vcpumask_check(d, bmap);

    for ( unsigned int offs = 0; !rc && offs * 64U < d->max_vcpus; offs++ )
    {
        rc = vcpumask_read_word(bmap, offs, &vmask);
        for ( unsigned int bit = 0; !rc && bit < 64; bit++ )
        {
            unsigned int id = offs * 64U + bit;

            if ( !(vmask & (1ULL << bit)) )
                continue;
            if ( id >= d->max_vcpus )
                return 0;
            if ( d->vcpu[id] )
                flush_tlb_vcpu(d->vcpu[id]);
        }
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Changing one entry (xen/arch/x86/mm.c mod_l1_entry .. mod_l4_entry)
 * ------------------------------------------------------------------------ */

/*
 * Write new over old at p (Xen's update_intpte with its debug-build
 * cmpxchg).  Under the table's page_lock nobody but the guest CPU setting
 * Accessed/Dirty can change the entry; PRESERVE_AD keeps those bits.
 */
/*
 * The frame holding p was written on its owner's behalf.  With log-dirty
 * on, a live save must send it again: Xen's log-dirty paging marks the
 * frames its write_guest_entry hook writes, and so must we, or a page
 * table changed by mmu_update or update_va_mapping during the last
 * pre-copy pass reaches the target stale.
 */
static void mark_entry_dirty(const intpte_t *p)
{
    mfn_t mfn = (mfn_t)(((const uint8_t *)p - host.mem) >> PAGE_SHIFT);
    struct domain *owner = page_get_owner(mfn_to_page(mfn));

    if ( owner )
        paging_mark_dirty(owner, mfn);
}

static void update_intpte(intpte_t *p, intpte_t old, intpte_t new,
                          bool preserve_ad)
{
    for ( ; ; )
    {
        intpte_t want = new, seen = old;

        if ( preserve_ad )
            want |= old & (_PAGE_ACCESSED | _PAGE_DIRTY);
        if ( __atomic_compare_exchange_n(p, &seen, want, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) )
        {
            mark_entry_dirty(p);
            break;
        }
        /* Only Accessed and Dirty may change behind our back. */
        BUG_ON((seen ^ old) & ~(intpte_t)(_PAGE_ACCESSED | _PAGE_DIRTY));
        old = seen;
    }
}

static unsigned int pte_slot(const intpte_t *p)
{
    return (unsigned int)(((uintptr_t)p & (PAGE_SIZE - 1)) /
                          sizeof(intpte_t));
}

/*
 * Update the L1 entry at pl1e to nl1e, mapping a frame of pg_dom.  Xen
 * also passes the L1's MFN, for shadow mode only.
 */
static int mod_l1_entry(intpte_t *pl1e, intpte_t nl1e, unsigned int cmd,
                        struct vcpu *pt_vcpu, struct domain *pg_dom)
{
    bool preserve_ad = cmd == MMU_PT_UPDATE_PRESERVE_AD;
    intpte_t ol1e = pte_read(pl1e);
    struct domain *pt_dom = pt_vcpu->domain;
    struct page_info *page = NULL;
    uint32_t disallow;
    int rc = 0;

    if ( !(get_pte_flags(nl1e) & _PAGE_PRESENT) )
    {
        /* A non-present entry holds nothing: no check, no reference. */
        update_intpte(pl1e, ol1e, nl1e, preserve_ad);
        goto put_old;
    }

    disallow = l1_disallow_mask(pt_dom);
    if ( unlikely(get_pte_flags(nl1e) & disallow) )
    {
        gdprintk(XENLOG_WARNING, "Bad L1 flags %#x\n",
                 get_pte_flags(nl1e) & disallow);
        return -EINVAL;
    }

    /* Translate a foreign guest's frame number into its MFN. */
    if ( cmd != MMU_PT_UPDATE_NO_TRANSLATE && paging_mode_translate(pg_dom) )
    {
        page = get_page_from_gfn(pg_dom, pte_mfn(nl1e), NULL);
        if ( !page )
            return -EINVAL;
        nl1e = (nl1e & ~PTE_MFN_MASK) |
               ((intpte_t)page_to_mfn(page) << PAGE_SHIFT);
    }

    nl1e = adjust_guest_l1e(nl1e, pt_dom);

    /* Fast path: same frame, only flags that need no re-validation. */
    if ( (ol1e & _PAGE_PRESENT) && pte_fastpath_update(ol1e, nl1e) )
    {
        update_intpte(pl1e, ol1e, nl1e, preserve_ad);
        if ( page )
            put_page(page);
        return 0;
    }

    rc = get_page_from_l1e(nl1e, pt_dom, pg_dom);
    if ( page )
        put_page(page);
    if ( rc < 0 )
        return rc;
    /* A positive result is the set of flags to flip (RW, cache bits). */
    nl1e ^= put_pte_flags((intpte_t)rc);
    rc = 0;

    update_intpte(pl1e, ol1e, nl1e, preserve_ad);

 put_old:
    put_page_from_l1e(ol1e, pt_dom);
    return rc;
}

/*
 * What differs between levels 2, 3 and 4 when one of their entries is
 * updated: the disallowed flags, the guest-entry adjustment, and how the
 * referenced table is taken and released.  One updater serves all three,
 * as Xen's mod_l2/l3/l4_entry share one shape.
 */
struct pt_level
{
    const char *name;                   /* "L2" .. "L4", for the log */
    uint32_t disallow;
    intpte_t (*adjust)(intpte_t e, const struct domain *d);
    int (*get)(intpte_t e, mfn_t table, struct domain *d, unsigned int flags);
    int (*put)(intpte_t e, mfn_t table, unsigned int flags);
};

static const struct pt_level pt_levels[5] = {
    [2] = { "L2", L2_DISALLOW_MASK, adjust_guest_l2e, get_page_from_l2e,
            put_page_from_l2e },
    [3] = { "L3", L3_DISALLOW_MASK, adjust_guest_l3e, get_page_from_l3e,
            put_page_from_l3e },
    [4] = { "L4", L4_DISALLOW_MASK, adjust_guest_l4e, get_page_from_l4e,
            put_page_from_l4e },
};

/*
 * Update the entry at pe (in table frame mfn, of level 2..4) to ne.  Taking
 * the new table may be preempted (-EINTR/-ERESTART from validating it);
 * the old one is released through old_guest_table (PTF_defer), because
 * dropping it may devalidate a whole tree.
 */
static int mod_lN_entry(unsigned int level, intpte_t *pe, intpte_t ne,
                        mfn_t mfn, bool preserve_ad, struct vcpu *vcpu)
{
    const struct pt_level *l = &pt_levels[level];
    struct domain *d = vcpu->domain;
    intpte_t oe;
    int rc;

    if ( level == 4 && unlikely(!is_guest_l4_slot(pte_slot(pe))) )
    {
        gdprintk(XENLOG_WARNING, "L4 update in Xen-private area, slot %#lx\n",
                 (unsigned long)pte_slot(pe));
        return -EINVAL;
    }

    oe = pte_read(pe);
    if ( get_pte_flags(ne) & _PAGE_PRESENT )
    {
        if ( unlikely(get_pte_flags(ne) & l->disallow) )
        {
            gdprintk(XENLOG_WARNING, "Bad %s flags %x\n", l->name,
                     get_pte_flags(ne) & l->disallow);
            return -EINVAL;
        }

        ne = l->adjust(ne, d);

        if ( (oe & _PAGE_PRESENT) && pte_fastpath_update(oe, ne) )
        {
            update_intpte(pe, oe, ne, preserve_ad);
            return 0;
        }

        rc = l->get(ne, mfn, d, 0);
        if ( unlikely(rc < 0) )
            return rc;
    }

    update_intpte(pe, oe, ne, preserve_ad);
    l->put(oe, mfn, PTF_defer);
    return 0;
}

/* ------------------------------------------------------------------------
 * Continuations
 * ------------------------------------------------------------------------ */

/*
 * The batch is over but a deferred put is pending: remember rc for the
 * call that finishes the put (Xen's last continuation, which carries rc in
 * place of foreigndom).  The hypercall number keeps one hypercall from
 * consuming another's result.
 */
static void set_final_continuation(struct vcpu *v, unsigned int op, long rc)
{
    v->hcall_cont_rc = HCALL_CONT_FINAL | ((uint64_t)op << 32) |
                       (uint32_t)(int32_t)rc;
}

static bool take_final_continuation(struct vcpu *v, unsigned int op,
                                    long *rc)
{
    uint64_t c = v->hcall_cont_rc;

    if ( !(c & HCALL_CONT_FINAL) || ((c >> 32) & 0xFFFF) != op )
        return false;
    v->hcall_cont_rc = 0;
    *rc = (int32_t)(uint32_t)c;
    return true;
}

/*
 * What mmu_update and mmuext_op do first on every (re)entry: finish the
 * deferred put, hand back a final continuation's rc, and recognise Xen's
 * own continuation marker.  Returns true when *rc is the call's answer;
 * otherwise strips the marker from *count and the batch proceeds.
 */
static bool batch_entry(struct vcpu *curr, unsigned int op, const void *reqs,
                        unsigned int *count, unsigned int foreigndom,
                        long *rc)
{
    *rc = put_old_guest_table(curr);
    if ( unlikely(*rc) )
        return true;    /* -ERESTART: nothing else done, call again */
    if ( take_final_continuation(curr, op, rc) )
        return true;
    if ( unlikely(*count == MMU_UPDATE_PREEMPTED) && !reqs )
    {
        *rc = (int)foreigndom;
        return true;
    }
    *count &= ~MMU_UPDATE_PREEMPTED;
    return false;
}

/*
 * Before op i of a batch that began at start: -ERESTART when a deferred
 * put is pending or (after the first op) when preempted, -EFAULT when
 * there is no array to read; 0 to go on.
 */
static long batch_next(const struct vcpu *curr, const void *reqs,
                       unsigned int i, unsigned int start)
{
    if ( curr->old_guest_table || (i > start && hypercall_preempt_check()) )
        return -ERESTART;
    if ( unlikely(!reqs) )
        return -EFAULT;
    return 0;
}

/*
 * The end of a batch (all_done: every op ran).  A deferred put still
 * pending turns rc into a final continuation: the call that finishes the
 * put returns rc.
 */
static long batch_exit(struct vcpu *curr, unsigned int op, long rc,
                       bool all_done)
{
    if ( rc != -ERESTART && curr->old_guest_table )
    {
        ASSERT(rc || all_done);
        set_final_continuation(curr, op, rc);
        rc = -ERESTART;
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * mmu_update (#1)
 * ------------------------------------------------------------------------ */

struct mmu_update_ctx
{
    struct domain *pt_owner;    /* owner of the page tables (PFD) */
    struct domain *pg_owner;    /* owner of the frames mapped (FD) */
    struct vcpu *v;             /* a vCPU of pt_owner */
    bool flush_linear_pt;       /* an L2..L4 entry changed */
};

/*
 * Write a raw 8-byte value into a frame that has (or just took) a
 * writable type: the frame is not a page table, so its contents mean
 * nothing to the hypervisor.
 */
static void paging_write_guest_entry(intpte_t *p, intpte_t val)
{
    pte_write(p, val);
    mark_entry_dirty(p);
}

/* MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD, _NO_TRANSLATE. */
static int mmu_normal_update(struct mmu_update_ctx *c, uint64_t ptr,
                             uint64_t val, unsigned int cmd)
{
    enum p2m_type p2mt;
    struct page_info *page;
    intpte_t *va;
    mfn_t mfn;
    bool ad = cmd == MMU_PT_UPDATE_PRESERVE_AD;
    int rc;

    if ( unlikely(paging_mode_refcounts(c->pt_owner)) )
        return -EOPNOTSUPP;
    rc = xsm_mmu_update(current->domain, c->pt_owner, c->pg_owner);
    if ( rc )
        return rc;

    ptr -= cmd;
    page = get_page_from_gfn(c->pt_owner, ptr >> PAGE_SHIFT, &p2mt);
    if ( unlikely(!page) || p2mt != p2m_ram_rw )
    {
        if ( page )
            put_page(page);
        gdprintk(XENLOG_WARNING, "Could not get page for normal update\n");
        return -EINVAL;
    }

    mfn = page_to_mfn(page);
    va = map_table(mfn) + ((ptr & (PAGE_SIZE - 1)) / sizeof(intpte_t));
    rc = -EINVAL;

    if ( page_lock(page) )
    {
        switch ( atomic_load(&page->type_info) & PGT_type_mask )
        {
        case PGT_l1_page_table:
            rc = mod_l1_entry(va, val, cmd, c->v, c->pg_owner);
            break;

        case PGT_l2_page_table:
        case PGT_l3_page_table:
        case PGT_l4_page_table:
            if ( unlikely(c->pg_owner != c->pt_owner) )
                break;
            rc = mod_lN_entry(PGT_pt_level(atomic_load(&page->type_info)),
                              va, val, mfn, ad, c->v);
            if ( !rc )
                c->flush_linear_pt = true;
            break;

        case PGT_writable_page:
            paging_write_guest_entry(va, val);
            rc = 0;
            break;
        }
        page_unlock(page);
        if ( rc == -EINTR )
            rc = -ERESTART;
    }
    else if ( get_page_type(page, PGT_writable_page) )
    {
        /*
         * Not a validated table: the write needs a writable type, which a
         * devalidated (count 0) page table silently takes.
         */
        paging_write_guest_entry(va, val);
        put_page_type(page);
        rc = 0;
    }
    put_page(page);
    return rc;
}

/* MMU_MACHPHYS_UPDATE: M2P[ptr >> 12] = val. */
static int mmu_machphys_update(struct mmu_update_ctx *c, uint64_t ptr,
                               uint64_t val)
{
    mfn_t mfn = ptr >> PAGE_SHIFT;
    struct page_info *page;
    int rc;

    if ( unlikely(current->domain != c->pt_owner) )
        return -EPERM;
    if ( unlikely(paging_mode_translate(c->pg_owner)) )
        return -EINVAL;
    rc = xsm_mmu_update(current->domain, NULL, c->pg_owner);
    if ( rc )
        return rc;

    page = get_page_from_mfn(mfn, c->pg_owner);
    if ( unlikely(!page) )
    {
        gdprintk(XENLOG_WARNING,
                 "Could not get page for mach->phys update\n");
        return -EINVAL;
    }

    set_gpfn_from_mfn(mfn, val);
    paging_mark_pfn_dirty(c->pg_owner, val);
    put_page(page);
    return 0;
}

long do_mmu_update(struct mmu_update *reqs, unsigned int count,
                   unsigned int *done, unsigned int foreigndom)
{
    struct vcpu *curr = current;
    struct domain *d = curr->domain;
    struct mmu_update_ctx c = { .pt_owner = d, .v = curr };
    unsigned int pt_dom, start = done ? *done : 0, i = start;
    long rc;

    if ( batch_entry(curr, __HYPERVISOR_mmu_update, reqs, &count,
                     foreigndom, &rc) )
        return rc;

    if ( (pt_dom = foreigndom >> 16) != 0 )
    {
        /* The page tables belong to a foreign domain (PFD). */
        c.pt_owner = lock_domain_by_id((domid_t)(pt_dom - 1));
        if ( !c.pt_owner )
            return -ESRCH;
        if ( c.pt_owner == d )
        {
            put_domain(c.pt_owner);
        }
        else if ( !c.pt_owner->vcpu || !(c.v = c.pt_owner->vcpu[0]) )
        {
            rc = -EINVAL;
            goto out;
        }
    }

    if ( (c.pg_owner = get_pg_owner((domid_t)foreigndom)) == NULL )
    {
        rc = -ESRCH;
        goto out;
    }

    for ( ; i < count; i++ )
    {
        struct mmu_update req;
        unsigned int cmd;

        rc = batch_next(curr, reqs, i, start);
        if ( rc )
            break;

        req = reqs[i];
        cmd = req.ptr & (sizeof(intpte_t) - 1);
        switch ( cmd )
        {
        case MMU_NORMAL_PT_UPDATE:
        case MMU_PT_UPDATE_PRESERVE_AD:
        case MMU_PT_UPDATE_NO_TRANSLATE:
            rc = mmu_normal_update(&c, req.ptr, req.val, cmd);
            break;
        case MMU_MACHPHYS_UPDATE:
            rc = mmu_machphys_update(&c, req.ptr, req.val);
            break;
        default:
            rc = -ENOSYS;
            break;
        }
        if ( unlikely(rc) )
            break;
    }

    rc = batch_exit(curr, __HYPERVISOR_mmu_update, rc, i == count);

    put_pg_owner(c.pg_owner);

    /* Changed L2..L4 entries: flush every vCPU of the tables' owner. */
    if ( c.flush_linear_pt )
        flush_tlb_domain(c.pt_owner);

 out:
    if ( c.pt_owner != d )
        put_domain(c.pt_owner);
    if ( done )
        *done = i;
    return rc;
}

/* ------------------------------------------------------------------------
 * new_guest_cr3 and the base page tables
 * ------------------------------------------------------------------------ */

/*
 * Slot 256 of a 64-bit L4 (the read-only M2P): filled from the idle table
 * when the L4 becomes a kernel base and m2p_strict is off, zapped when it
 * becomes a user base and m2p_strict is on (Xen's fill_ro_mpt/zap_ro_mpt).
 */
static void fill_ro_mpt(mfn_t mfn)
{
    intpte_t *l4t = map_table(mfn);
    intpte_t e;

    if ( !host.idle_pg_table || pte_read(&l4t[RO_MPT_SLOT]) )
        return;
    e = pte_read(map_table(host.idle_pg_table) + RO_MPT_SLOT);
    pte_write(&l4t[RO_MPT_SLOT], e);
}

static void zap_ro_mpt(mfn_t mfn)
{
    pte_write(map_table(mfn) + RO_MPT_SLOT, 0);
}

/* Park a base table whose put was interrupted in old_guest_table. */
static int put_base_table(struct vcpu *v, mfn_t mfn)
{
    struct page_info *page = mfn_to_page(mfn);
    int rc = put_page_and_type_preemptible(page);

    switch ( rc )
    {
    case -EINTR:
    case -ERESTART:
        v->old_guest_ptpg = NULL;
        v->old_guest_table = page;
        /* -EINTR: we still hold the type ref; -ERESTART: PGT_partial does. */
        v->old_guest_table_partial = rc == -ERESTART;
        return -ERESTART;
    default:
        BUG_ON(rc);
        return 0;
    }
}

int new_guest_cr3(mfn_t mfn)
{
    struct vcpu *curr = current;
    struct domain *d = curr->domain;
    mfn_t old_base_mfn;
    int rc = put_old_guest_table(curr);

    if ( unlikely(rc) )
        return rc;

    /* A restart after the put of the old base was preempted lands here. */
    old_base_mfn = curr->guest_table;
    if ( old_base_mfn == mfn )
    {
        flush_tlb_vcpu(curr);       /* write_ptbase */
        return 0;
    }

    rc = get_page_and_type_from_mfn(mfn, PGT_root_page_table, d, true);
    switch ( rc )
    {
    case 0:
        break;
    case -EINTR:
    case -ERESTART:
        return -ERESTART;
    default:
        gdprintk(XENLOG_WARNING, "Error while installing new baseptr %05lx\n",
                 (unsigned long)mfn);
        return rc;
    }

    /*
     * The shadow LDT was found through the old tables: drop it (flushed
     * below), to be mapped through the new ones on next use.
     */
    pv_destroy_ldt(curr);

    if ( !vm_assist_m2p_strict(d) )
        fill_ro_mpt(mfn);
    curr->guest_table = mfn;
    flush_tlb_vcpu(curr);           /* write_ptbase */

    if ( likely(old_base_mfn != 0) )
        rc = put_base_table(curr, old_base_mfn);
    return rc;
}

static int new_guest_user_cr3(mfn_t mfn)
{
    struct vcpu *curr = current;
    struct domain *currd = curr->domain;
    mfn_t old_mfn = curr->guest_table_user;
    int rc;

    /* A restart after the put of the old base was preempted lands here. */
    if ( old_mfn == mfn )
        return 0;

    if ( mfn != 0 )
    {
        rc = get_page_and_type_from_mfn(mfn, PGT_root_page_table, currd,
                                        true);
        if ( unlikely(rc) )
        {
            if ( rc == -EINTR )
                rc = -ERESTART;
            else if ( rc != -ERESTART )
                gdprintk(XENLOG_WARNING, "Error %d installing new mfn %05lx\n",
                         rc, (unsigned long)mfn);
            return rc;
        }
        if ( vm_assist_m2p_strict(currd) )
            zap_ro_mpt(mfn);
    }

    curr->guest_table_user = mfn;

    if ( old_mfn != 0 )
        return put_base_table(curr, old_mfn);
    return 0;
}

/* ------------------------------------------------------------------------
 * mmuext_op (#26)
 * ------------------------------------------------------------------------ */

static int mmuext_pin(struct vcpu *curr, struct domain *pg_owner,
                      uint64_t gfn, uint64_t type)
{
    struct domain *currd = curr->domain;
    struct page_info *page;
    bool drop_ref = false;
    int rc;

    if ( paging_mode_refcounts(pg_owner) )
        return 0;

    page = get_page_from_gfn(pg_owner, gfn, NULL);
    if ( unlikely(!page) )
        return -EINVAL;

    rc = get_page_type_preemptible(page, type);
    if ( unlikely(rc) )
    {
        if ( rc == -EINTR )
            rc = -ERESTART;
        else if ( rc != -ERESTART )
            gdprintk(XENLOG_WARNING, "Error %d while pinning mfn %05lx\n",
                     rc, (unsigned long)page_to_mfn(page));
        /* A table left half-validated by the error owns our reference. */
        if ( page != curr->old_guest_table )
            put_page(page);
        return rc;
    }

    if ( unlikely(test_and_set_type_flag(page, PGT_pinned)) )
    {
        gdprintk(XENLOG_WARNING, "mfn %05lx already pinned\n",
                 (unsigned long)page_to_mfn(page));
        rc = -EINVAL;
        drop_ref = true;
        goto out;
    }

    /* A page is dirtied when its pin status is set. */
    paging_mark_dirty(pg_owner, page_to_mfn(page));

    /* We can race the owner's destruction, which drops every pin. */
    if ( unlikely(pg_owner != currd) )
    {
        spin_lock(&pg_owner->page_alloc_lock);
        drop_ref = domain_is_dying(pg_owner) &&
                   test_and_clear_type_flag(page, PGT_pinned);
        spin_unlock(&pg_owner->page_alloc_lock);
    }

 out:
    if ( drop_ref )
    {
        /* Dropping an L2+ may devalidate a tree: defer it. */
        if ( type == PGT_l1_page_table )
            put_page_and_type(page);
        else
        {
            curr->old_guest_ptpg = NULL;
            curr->old_guest_table = page;
            curr->old_guest_table_partial = false;
        }
    }
    return rc;
}

static int mmuext_unpin(struct vcpu *curr, struct domain *pg_owner,
                        uint64_t gfn)
{
    struct page_info *page;
    int rc;

    if ( paging_mode_refcounts(pg_owner) )
        return 0;

    page = get_page_from_gfn(pg_owner, gfn, NULL);
    if ( unlikely(!page) )
    {
        gdprintk(XENLOG_WARNING, "mfn %05lx bad, or bad owner d%d\n",
                 (unsigned long)gfn, pg_owner->domain_id);
        return -EINVAL;
    }

    if ( !test_and_clear_type_flag(page, PGT_pinned) )
    {
        put_page(page);
        gdprintk(XENLOG_WARNING, "mfn %05lx not pinned\n",
                 (unsigned long)gfn);
        return -EINVAL;
    }

    rc = put_page_and_type_preemptible(page);
    switch ( rc )
    {
    case -EINTR:
    case -ERESTART:
        /*
         * The rest of the put waits in old_guest_table; the op itself has
         * succeeded (the batch stops before its next op).
         */
        curr->old_guest_ptpg = NULL;
        curr->old_guest_table = page;
        curr->old_guest_table_partial = rc == -ERESTART;
        rc = 0;
        break;
    default:
        BUG_ON(rc);
        break;
    }
    put_page(page);

    /* A page is dirtied when its pin status is cleared. */
    paging_mark_dirty(pg_owner, page_to_mfn(page));
    return rc;
}

static int mmuext_set_ldt(struct vcpu *curr, uint64_t linear,
                          unsigned int ents)
{
    uint64_t ptr = ents ? linear : 0;

    if ( paging_mode_translate(curr->domain) )
        return -EINVAL;
    if ( ents > MAX_LDT_ENTS ||
         (ents && ((ptr & (PAGE_SIZE - 1)) || !addr_ok(ptr))) )
    {
        gdprintk(XENLOG_WARNING, "Bad args to SET_LDT: ptr=%lx, ents=%x\n",
                 (unsigned long)ptr, ents);
        return -EINVAL;
    }
    if ( curr->ctxt.ldt_ents != ents || curr->ctxt.ldt_base != ptr )
    {
        /* The old LDT's pages are mapped again on their next use. */
        if ( pv_destroy_ldt(curr) )
            flush_tlb_vcpu(curr);
        curr->ctxt.ldt_base = ptr;
        curr->ctxt.ldt_ents = ents;
    }
    return 0;
}

/*
 * Map the guest's LDT page holding the descriptor at offset (Xen's
 * pv_map_ldt_shadow_page, reached from the guest CPU's descriptor read,
 * as Xen's from its #PF handler).  The frame is found through the vCPU's
 * kernel page tables, as the CPU would, and must be one of the domain's
 * that can take the seg_desc type: a frame the guest can write, or a page
 * table, cannot.  The caller has checked that this page is not mapped yet.
 */
bool pv_map_ldt_shadow_page(unsigned int offset)
{
    struct vcpu *curr = current;
    struct domain *currd = curr->domain;
    struct page_info *page;
    uint64_t linear = curr->ctxt.ldt_base + offset;
    intpte_t *pl1e, gl1e = 0;
    mfn_t gl1mfn;

    /*
     * The caller's checks guarantee neither happens (only this vCPU
     * changes its LDT); Xen asserts, a release build returns false.
     */
    if ( unlikely((offset >> 3) >= curr->ctxt.ldt_ents) ||
         unlikely(curr->ldt_frames[offset >> PAGE_SHIFT]) )
        return false;

    pl1e = map_guest_l1e(curr, linear, &gl1mfn);
    if ( pl1e )
        gl1e = pte_read(pl1e);
    if ( unlikely(!(gl1e & _PAGE_PRESENT)) )
        return false;

    page = get_page_from_gfn(currd, pte_mfn(gl1e), NULL);
    if ( unlikely(!page) )
        return false;

    if ( unlikely(!get_page_type(page, PGT_seg_desc_page)) )
    {
        put_page(page);
        return false;
    }

    curr->ldt_frames[offset >> PAGE_SHIFT] = page_to_mfn(page);
    return true;
}

/* A reference to a RAM frame of pg_owner that can be written (CLEAR/COPY). */
static struct page_info *get_ram_page(struct domain *pg_owner, uint64_t gfn)
{
    enum p2m_type p2mt;
    struct page_info *page = get_page_from_gfn(pg_owner, gfn, &p2mt);

    if ( unlikely(p2mt != p2m_ram_rw) && page )
    {
        put_page(page);
        page = NULL;
    }
    return page;
}

/* gfn's RAM frame with a general and a writable type reference, or NULL. */
static struct page_info *get_writable_ram_page(struct domain *pg_owner,
                                               uint64_t gfn)
{
    struct page_info *page = get_ram_page(pg_owner, gfn);

    if ( page && !get_page_type(page, PGT_writable_page) )
    {
        put_page(page);
        page = NULL;
    }
    return page;
}

static int mmuext_clear_page(struct domain *pg_owner, uint64_t gfn)
{
    struct page_info *page = get_writable_ram_page(pg_owner, gfn);

    if ( !page )
    {
        gdprintk(XENLOG_WARNING, "Error clearing mfn %05lx\n",
                 (unsigned long)gfn);
        return -EINVAL;
    }

    /* A page is dirtied when it's being cleared. */
    paging_mark_dirty(pg_owner, page_to_mfn(page));
    memset(map_domain_page(page_to_mfn(page)), 0, PAGE_SIZE);
    put_page_and_type(page);
    return 0;
}

static int mmuext_copy_page(struct domain *pg_owner, uint64_t dst_gfn,
                            uint64_t src_gfn)
{
    struct page_info *src_page, *dst_page;

    src_page = get_ram_page(pg_owner, src_gfn);
    if ( unlikely(!src_page) )
    {
        gdprintk(XENLOG_WARNING, "Error copying from mfn %05lx\n",
                 (unsigned long)src_gfn);
        return -EINVAL;
    }

    dst_page = get_writable_ram_page(pg_owner, dst_gfn);
    if ( !dst_page )
    {
        put_page(src_page);
        gdprintk(XENLOG_WARNING, "Error copying to mfn %05lx\n",
                 (unsigned long)dst_gfn);
        return -EINVAL;
    }

    /* A page is dirtied when it's being copied to. */
    paging_mark_dirty(pg_owner, page_to_mfn(dst_page));
    memmove(map_domain_page(page_to_mfn(dst_page)),
            map_domain_page(page_to_mfn(src_page)), PAGE_SIZE);
    put_page_and_type(dst_page);
    put_page(src_page);
    return 0;
}

/* The TLB and cache maintenance commands: only for the caller's domain. */
static int mmuext_flush(struct vcpu *curr, const struct mmuext_op *op)
{
    struct domain *currd = curr->domain;

    switch ( op->cmd )
    {
    case MMUEXT_TLB_FLUSH_LOCAL:
        flush_tlb_vcpu(curr);
        return 0;

    case MMUEXT_INVLPG_LOCAL:
        /* paging_invlpg ignores non-canonical addresses. */
        if ( is_canonical_address(op->arg1.linear_addr) )
            flush_tlb_vcpu(curr);
        return 0;

    case MMUEXT_TLB_FLUSH_MULTI:
    case MMUEXT_INVLPG_MULTI:
        if ( vcpumask_check(currd, op->arg2.vcpumask) )
            return -EINVAL;
        /* A single-page flush of a bad address flushes nothing. */
        if ( op->cmd == MMUEXT_TLB_FLUSH_MULTI ||
             addr_ok(op->arg1.linear_addr) )
            flush_tlb_vcpumask(currd, op->arg2.vcpumask);
        return 0;

    case MMUEXT_TLB_FLUSH_ALL:
        flush_tlb_domain(currd);
        return 0;

    case MMUEXT_INVLPG_ALL:
        if ( addr_ok(op->arg1.linear_addr) )
            flush_tlb_domain(currd);
        return 0;

    case MMUEXT_FLUSH_CACHE:
    case MMUEXT_FLUSH_CACHE_GLOBAL:
        /* Machine memory is coherent here; only the permission matters. */
        return currd->cache_flush_permitted ? 0 : -EACCES;
    }
    BUG();
}

static long mmuext_one(struct vcpu *curr, struct domain *pg_owner,
                       const struct mmuext_op *op)
{
    struct domain *currd = curr->domain;

    /* HVM-like (translated) callers may only pin and unpin. */
    if ( paging_mode_translate(currd) && op->cmd > MMUEXT_UNPIN_TABLE )
        return -EOPNOTSUPP;

    switch ( op->cmd )
    {
    case MMUEXT_PIN_L1_TABLE:
    case MMUEXT_PIN_L2_TABLE:
    case MMUEXT_PIN_L3_TABLE:
    case MMUEXT_PIN_L4_TABLE:
        return mmuext_pin(curr, pg_owner, op->arg1.mfn,
                          PGT_for_level(op->cmd - MMUEXT_PIN_L1_TABLE + 1));

    case MMUEXT_UNPIN_TABLE:
        return mmuext_unpin(curr, pg_owner, op->arg1.mfn);

    case MMUEXT_NEW_BASEPTR:
        if ( unlikely(currd != pg_owner) )
            return -EPERM;
        if ( unlikely(paging_mode_translate(currd)) )
            return -EINVAL;
        return new_guest_cr3(op->arg1.mfn);

    case MMUEXT_NEW_USER_BASEPTR:
        if ( unlikely(currd != pg_owner) )
            return -EPERM;
        if ( unlikely(paging_mode_translate(currd)) )
            return -EINVAL;
        return new_guest_user_cr3(op->arg1.mfn);

    case MMUEXT_TLB_FLUSH_LOCAL:
    case MMUEXT_INVLPG_LOCAL:
    case MMUEXT_TLB_FLUSH_MULTI:
    case MMUEXT_INVLPG_MULTI:
    case MMUEXT_TLB_FLUSH_ALL:
    case MMUEXT_INVLPG_ALL:
    case MMUEXT_FLUSH_CACHE:
    case MMUEXT_FLUSH_CACHE_GLOBAL:
        if ( unlikely(currd != pg_owner) )
            return -EPERM;
        return mmuext_flush(curr, op);

    case MMUEXT_SET_LDT:
        if ( unlikely(currd != pg_owner) )
            return -EPERM;
        return mmuext_set_ldt(curr, op->arg1.linear_addr, op->arg2.nr_ents);

    case MMUEXT_CLEAR_PAGE:
        return mmuext_clear_page(pg_owner, op->arg1.mfn);

    case MMUEXT_COPY_PAGE:
        return mmuext_copy_page(pg_owner, op->arg1.mfn, op->arg2.src_mfn);

    case MMUEXT_MARK_SUPER:
    case MMUEXT_UNMARK_SUPER:
        return -EOPNOTSUPP;

    default:
        return -ENOSYS;
    }
}

long do_mmuext_op(struct mmuext_op *ops, unsigned int count,
                  unsigned int *done, unsigned int foreigndom)
{
    struct vcpu *curr = current;
    struct domain *pg_owner;
    unsigned int start = done ? *done : 0, i = start;
    long rc;

    if ( batch_entry(curr, __HYPERVISOR_mmuext_op, ops, &count, foreigndom,
                     &rc) )
        return rc;

    if ( (pg_owner = get_pg_owner((domid_t)foreigndom)) == NULL )
        return -ESRCH;
    if ( !is_pv_domain(pg_owner) )
    {
        put_pg_owner(pg_owner);
        return -EINVAL;
    }
    rc = xsm_target(curr->domain, pg_owner);
    if ( rc )
    {
        put_pg_owner(pg_owner);
        return rc;
    }

    for ( ; i < count; i++ )
    {
        rc = batch_next(curr, ops, i, start);
        if ( rc )
            break;

        rc = mmuext_one(curr, pg_owner, &ops[i]);
        if ( unlikely(rc) )
            break;
    }

    rc = batch_exit(curr, __HYPERVISOR_mmuext_op, rc, i == count);

    put_pg_owner(pg_owner);
    if ( done )
        *done = i;
    return rc;
}

/* ------------------------------------------------------------------------
 * update_va_mapping (#14) and update_va_mapping_otherdomain (#22)
 * ------------------------------------------------------------------------ */

/* The flush an update_va_mapping asks for, after a successful update. */
static int update_va_flush(struct vcpu *v, uint64_t va, uint64_t flags)
{
    struct domain *d = v->domain;
    uint64_t bmap_ptr = flags & ~UVMF_FLUSHTYPE_MASK;

    switch ( flags & UVMF_FLUSHTYPE_MASK )
    {
    case UVMF_TLB_FLUSH:
        if ( bmap_ptr == UVMF_LOCAL )
            flush_tlb_vcpu(v);
        else if ( bmap_ptr == UVMF_ALL )
            flush_tlb_domain(d);
        else
            return flush_tlb_vcpumask(d, bmap_ptr);
        break;

    case UVMF_INVLPG:
        if ( bmap_ptr == UVMF_LOCAL )
        {
            if ( is_canonical_address(va) )
                flush_tlb_vcpu(v);
        }
        else if ( bmap_ptr == UVMF_ALL )
            flush_tlb_domain(d);
        else
            return flush_tlb_vcpumask(d, bmap_ptr);
        break;
    }
    return 0;
}

static int __do_update_va_mapping(uint64_t va, uint64_t val, uint64_t flags,
                                  struct domain *pg_owner)
{
    struct vcpu *v = current;
    struct domain *d = v->domain;
    struct page_info *gl1pg = NULL;
    intpte_t *pl1e;
    mfn_t gl1mfn = 0;
    int rc = xsm_target(d, pg_owner);

    if ( rc )
        return rc;

    rc = -EINVAL;
    pl1e = map_guest_l1e(v, va, &gl1mfn);
    if ( pl1e )
        gl1pg = get_page_from_mfn(gl1mfn, d);
    if ( unlikely(!gl1pg) )
        goto out;

    if ( !page_lock(gl1pg) )
    {
        put_page(gl1pg);
        goto out;
    }

    if ( (atomic_load(&gl1pg->type_info) & PGT_type_mask) !=
         PGT_l1_page_table )
    {
        page_unlock(gl1pg);
        put_page(gl1pg);
        goto out;
    }

    rc = mod_l1_entry(pl1e, val, MMU_NORMAL_PT_UPDATE, v, pg_owner);

    page_unlock(gl1pg);
    put_page(gl1pg);

 out:
    /*
     * An error means the entry did not change: skip the flush, which
     * would be useless, and va has not been vetted.
     */
    if ( rc )
        return rc;
    return update_va_flush(v, va, flags);
}

long do_update_va_mapping(uint64_t va, uint64_t val, uint64_t flags)
{
    return __do_update_va_mapping(va, val, flags, current->domain);
}

long do_update_va_mapping_otherdomain(uint64_t va, uint64_t val,
                                      uint64_t flags, domid_t domid)
{
    struct domain *pg_owner;
    int rc;

    if ( (pg_owner = get_pg_owner(domid)) == NULL )
        return -ESRCH;

    rc = __do_update_va_mapping(va, val, flags, pg_owner);

    put_pg_owner(pg_owner);
    return rc;
}
