/* SPDX-License-Identifier: MIT */
/*
 * memory_op: how a domain gains frames and gives them back, what it may
 * learn about the host's memory, and, for a translated (Arm-style) domain,
 * how frames are placed in its physmap (xen/common/memory.c,
 * xen/arch/x86/mm/p2m.c's xenmem_add_to_physmap_one, xen/arch/arm/mm.c).
 *
 * A PV domain has no physmap in the hypervisor: its guest frame numbers are
 * MFNs, the guest keeps its own P2M, and the hypervisor's only record is the
 * M2P, which populate_physmap fills in and frees reset.  A translated domain
 * (DOMCREATE_translated) has a hypervisor p2m, d->p2m, grown on demand under
 * d->p2m_lock; its entries hold no references, as on Arm for the domain's
 * own RAM, because the frames are the domain's own and live at least as
 * long as their PGC_allocated reference.
 *
 * Invariants kept here:
 *  - populate_physmap sets M2P[mfn + i] = gpfn + i for PV, and frees reset
 *    it; nothing else here writes the M2P of a PV frame (invariant 10);
 *  - decrease_reservation drops only the allocation reference: a frame that
 *    is still pinned or mapped lingers, still counted in tot_pages, until
 *    its last reference goes (invariant 9);
 *  - a xen-heap frame (shared_info, grant frames) appears at most once in a
 *    translated domain's physmap: its GFN is recorded in its page_info and a
 *    second add_to_physmap is -EBUSY until remove_from_physmap (section 8);
 *    every p2m entry removal or overwrite resets the recorded GFN.
 *
 * Locks: the grant-table lock (held across a grant_table add) ranks above
 * d->p2m_lock, which ranks above d->page_alloc_lock; frees (put_page) are
 * never done with p2m_lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "hv.h"

/* Xen's CONFIG_DOMU_MAX_ORDER, and for the control domain MAX_ORDER. */
#define DOMU_MAX_ORDER   9U
#define CTLDOM_MAX_ORDER 20U

/* The highest GFN of a translated domain: bounds d->p2m at 128 MiB. */
#define P2M_MAX_GFN ((1ULL << 24) - 1)

/* shared_info's arch.max_pfn: the guest's P2M size in entries. */
#define SHARED_INFO_MAX_PFN_OFFSET 3088

/* machphys_mfn_list reports the M2P in 2 MiB chunks of 512 frames. */
#define M2P_CHUNK_FRAMES 512U

struct memop_args
{
    struct domain *domain;
    uint64_t *extent_list;
    unsigned int nr_extents;
    unsigned int extent_order;
    unsigned int memflags;
    unsigned int nr_done;
    bool preempted;
};

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static bool is_xen_heap_page(const struct page_info *pg)
{
    return atomic_load(&pg->count_info) & PGC_xen_heap;
}

static unsigned int max_order(const struct domain *d)
{
    return is_control_domain(d) ? CTLDOM_MAX_ORDER : DOMU_MAX_ORDER;
}

/* ------------------------------------------------------------------------
 * The xen-heap GFN (Arm, commit 71320946d5)
 *
 * Arm keeps the GFN of a xen-heap frame in its type_info, whose count it
 * shrank to two bits.  On x86 type_info must stay whole: the frame carries
 * a real writable type reference for its share with the guest.  ferry keeps
 * the GFN in the 32-bit union word instead, as GFN + 1 so that 0, the value
 * alloc_heap_pages() leaves, means "no GFN".  For a xen-heap frame that word
 * is otherwise unused: such a frame never becomes a page table, so it never
 * has nr_validated_ptes, partial_flags or linear_pt_count, and the TLB
 * timestamp is written only when its type count reaches 0, which happens
 * once the share is gone and the frame is on its way back to the heap.
 * Updates are cmpxchg loops on the whole word, under d->p2m_lock.
 * ------------------------------------------------------------------------ */

uint64_t page_get_xenheap_gfn(const struct page_info *pg)
{
    uint32_t u = atomic_load(&pg->u);

    ASSERT(is_xen_heap_page(pg));
    return u ? (uint64_t)u - 1 : INVALID_GFN;
}

static void page_set_xenheap_gfn(struct page_info *pg, uint64_t gfn)
{
    uint32_t x = atomic_load(&pg->u);
    uint32_t nx = gfn == INVALID_GFN ? 0 : (uint32_t)(gfn + 1);

    ASSERT(is_xen_heap_page(pg));
    ASSERT(gfn == INVALID_GFN || gfn <= P2M_MAX_GFN);
    while ( !atomic_compare_exchange_weak(&pg->u, &x, nx) )
        ;
}

/* ------------------------------------------------------------------------
 * The p2m of a translated domain (all under d->p2m_lock)
 * ------------------------------------------------------------------------ */

static int p2m_ensure(struct domain *d, uint64_t gfn)
{
    uint64_t size, *p;

    if ( gfn < d->p2m_size )
        return 0;
    if ( gfn > P2M_MAX_GFN )
        return -EINVAL;
    size = max(d->p2m_size * 2, (gfn + 512) & ~511ULL);
    size = min(size, P2M_MAX_GFN + 1);
    p = realloc(d->p2m, size * sizeof(*p));
    if ( !p )
        return -ENOMEM;
    for ( uint64_t i = d->p2m_size; i < size; i++ )
        p[i] = INVALID_MFN;
    d->p2m = p;
    d->p2m_size = size;
    return 0;
}

static mfn_t p2m_get_entry(const struct domain *d, uint64_t gfn)
{
    return gfn < d->p2m_size ? d->p2m[gfn] : INVALID_MFN;
}

/*
 * The frame an entry stops mapping: a xen-heap frame loses its recorded
 * GFN, a RAM frame its M2P entry (x86's p2m_remove_page).
 */
static void p2m_unhook(mfn_t mfn)
{
    struct page_info *pg;

    if ( !mfn_valid(mfn) )
        return;
    pg = mfn_to_page(mfn);
    if ( is_xen_heap_page(pg) )
        page_set_xenheap_gfn(pg, INVALID_GFN);
    else
        set_gpfn_from_mfn(mfn, INVALID_M2P_ENTRY);
}

/* Write one entry, unhooking what it mapped before. */
static void p2m_set_entry(struct domain *d, uint64_t gfn, mfn_t mfn)
{
    mfn_t old = d->p2m[gfn];

    if ( old != INVALID_MFN && old != mfn )
        p2m_unhook(old);
    d->p2m[gfn] = mfn;
}

mfn_t gfn_to_mfn(struct domain *d, uint64_t gfn)
{
    mfn_t mfn;

    if ( !d->translated )
        return gfn;
    spin_lock(&d->p2m_lock);
    mfn = p2m_get_entry(d, gfn);
    spin_unlock(&d->p2m_lock);
    return mfn;
}

int guest_physmap_add_page(struct domain *d, uint64_t gfn, mfn_t mfn,
                           unsigned int order)
{
    uint64_t nr = 1ULL << order;
    int rc;

    if ( !d->translated )
    {
        /* PV: the guest keeps the P2M; the hypervisor only the M2P. */
        for ( uint64_t i = 0; i < nr; i++ )
            set_gpfn_from_mfn(mfn + i, gfn + i);
        return 0;
    }

    spin_lock(&d->p2m_lock);
    rc = p2m_ensure(d, gfn + nr - 1);
    if ( !rc )
    {
        for ( uint64_t i = 0; i < nr; i++ )
        {
            p2m_set_entry(d, gfn + i, mfn + i);
            set_gpfn_from_mfn(mfn + i, gfn + i);
        }
    }
    spin_unlock(&d->p2m_lock);
    return rc;
}

/* Remove [gfn, gfn + 2^order) -> mfn; p2m_lock held. */
static int p2m_remove_mapping(struct domain *d, uint64_t gfn, mfn_t mfn,
                              uint64_t nr)
{
    /*
     * Refuse when an entry maps something else: two removals of the same
     * GFN may race, and the loser must not unmap the winner's new frame.
     */
    for ( uint64_t i = 0; i < nr; i++ )
    {
        mfn_t cur = p2m_get_entry(d, gfn + i);

        if ( cur != INVALID_MFN && (!mfn_valid(mfn) || cur != mfn + i) )
            return -EILSEQ;
    }
    for ( uint64_t i = 0; i < nr && gfn + i < d->p2m_size; i++ )
    {
        if ( d->p2m[gfn + i] == INVALID_MFN )
            continue;
        p2m_unhook(d->p2m[gfn + i]);
        d->p2m[gfn + i] = INVALID_MFN;
    }
    return 0;
}

int guest_physmap_remove_page(struct domain *d, uint64_t gfn, mfn_t mfn,
                              unsigned int order)
{
    int rc;

    /* PV: nothing to do; the M2P entry goes when the frame is freed. */
    if ( !d->translated )
        return 0;
    spin_lock(&d->p2m_lock);
    rc = p2m_remove_mapping(d, gfn, mfn, 1ULL << order);
    spin_unlock(&d->p2m_lock);
    return rc;
}

void relinquish_p2m_mapping(struct domain *d)
{
    uint64_t *p2m;

    spin_lock(&d->p2m_lock);
    for ( uint64_t gfn = 0; gfn < d->p2m_size; gfn++ )
        if ( d->p2m[gfn] != INVALID_MFN )
            p2m_unhook(d->p2m[gfn]);
    p2m = d->p2m;
    d->p2m = NULL;
    d->p2m_size = 0;
    spin_unlock(&d->p2m_lock);
    free(p2m);
}

/*
 * get_page_from_gfn(): the frame at gfn with a general reference, or NULL.
 * For PV the GFN is the MFN.
 */
static struct page_info *get_page_from_gfn(struct domain *d, uint64_t gfn)
{
    mfn_t mfn = gfn_to_mfn(d, gfn);
    struct page_info *pg;

    if ( !mfn_valid(mfn) )
        return NULL;
    pg = mfn_to_page(mfn);
    return get_page(pg, d) ? pg : NULL;
}

/* ------------------------------------------------------------------------
 * Reservations
 * ------------------------------------------------------------------------ */

static void increase_reservation(struct memop_args *a)
{
    struct domain *d = a->domain;
    unsigned int i;

    if ( a->extent_order > max_order(current->domain) )
        return;

    for ( i = a->nr_done; i < a->nr_extents; i++ )
    {
        struct page_info *pg;

        if ( i != a->nr_done && hypercall_preempt_check() )
        {
            a->preempted = true;
            break;
        }

        pg = alloc_domheap_pages(d, a->extent_order, a->memflags);
        if ( unlikely(!pg) )
        {
            gdprintk(XENLOG_INFO,
                     "Could not allocate order=%d extent: id=%d memflags=%x (%u of %u)\n",
                     a->extent_order, d->domain_id, a->memflags, i,
                     a->nr_extents);
            break;
        }

        /* Tell the domain the new frame's machine address. */
        if ( !d->translated && a->extent_list )
            a->extent_list[i] = page_to_mfn(pg);
    }
    a->nr_done = i;
}

static void populate_physmap(struct memop_args *a)
{
    struct domain *d = a->domain;
    unsigned int i;

    if ( !a->extent_list )
        return;
    if ( a->extent_order > max_order(current->domain) )
        return;

    for ( i = a->nr_done; i < a->nr_extents; i++ )
    {
        struct page_info *pg;
        uint64_t gpfn;
        mfn_t mfn;

        if ( i != a->nr_done && hypercall_preempt_check() )
        {
            a->preempted = true;
            break;
        }

        gpfn = a->extent_list[i];
        pg = alloc_domheap_pages(d, a->extent_order, a->memflags);
        if ( unlikely(!pg) )
        {
            gdprintk(XENLOG_INFO,
                     "Could not allocate order=%u extent: id=%d memflags=%#x (%u of %u)\n",
                     a->extent_order, d->domain_id, a->memflags, i,
                     a->nr_extents);
            break;
        }
        mfn = page_to_mfn(pg);

        if ( guest_physmap_add_page(d, gpfn, mfn, a->extent_order) )
        {
            /*
             * Xen leaves the extent allocated and stops; it is the
             * domain's, freed at the latest when the domain dies.
             */
            break;
        }

        /* PV: the guest learns the MFN through its own list entry. */
        if ( !d->translated )
            a->extent_list[i] = mfn;
    }
    a->nr_done = i;
}

/*
 * Give one frame back: drop its allocation reference (and, for a translated
 * domain, its p2m entry).  The frame is freed when the last reference goes,
 * which is now unless it is pinned, mapped or otherwise held.
 */
static int guest_remove_page(struct domain *d, uint64_t gmfn)
{
    struct page_info *pg;
    mfn_t mfn = gfn_to_mfn(d, gmfn);
    int rc;

    if ( d->translated && mfn == INVALID_MFN )
        return -ENOENT;
    if ( unlikely(!mfn_valid(mfn)) )
    {
        gdprintk(XENLOG_INFO, "Domain %u page number %lx invalid\n",
                 d->domain_id, (unsigned long)gmfn);
        return -EINVAL;
    }

    pg = mfn_to_page(mfn);
    if ( unlikely(!get_page(pg, d)) )
    {
        gdprintk(XENLOG_INFO, "Bad page free for Dom%u GFN %lx\n",
                 d->domain_id, (unsigned long)gmfn);
        return -ENXIO;
    }

    rc = guest_physmap_remove_page(d, gmfn, mfn, 0);
    if ( !rc )
        put_page_alloc_ref(pg);
    put_page(pg);
    return rc != -ENOENT ? rc : -EINVAL;
}

static void decrease_reservation(struct memop_args *a)
{
    unsigned int i;

    if ( !a->extent_list || a->extent_order > max_order(current->domain) )
        return;

    for ( i = a->nr_done; i < a->nr_extents; i++ )
    {
        uint64_t gmfn;
        bool failed = false;

        if ( i != a->nr_done && hypercall_preempt_check() )
        {
            a->preempted = true;
            break;
        }

        gmfn = a->extent_list[i];
        for ( uint64_t j = 0; j < (1ULL << a->extent_order); j++ )
        {
            if ( guest_remove_page(a->domain, gmfn + j) )
            {
                failed = true;
                break;
            }
        }
        if ( failed )
            break;
    }
    a->nr_done = i;
}

/*
 * increase_reservation, decrease_reservation and populate_physmap.  Every
 * failure before the work starts returns the start extent, as Xen does:
 * these ops report extents done, never an errno.
 */
static long memop_reservation(unsigned int *cmd, unsigned int op,
                              const struct xen_memory_reservation *r)
{
    unsigned int start_extent = *cmd >> MEMOP_EXTENT_SHIFT;
    struct memop_args args = { 0 };
    struct domain *d;

    if ( !r )
        return start_extent;
    /* Is the size too large to encode a continuation? */
    if ( r->nr_extents > (UINT32_MAX >> MEMOP_EXTENT_SHIFT) )
        return start_extent;
    if ( unlikely(start_extent >= r->nr_extents) )
        return start_extent;

    d = lock_domain_by_any_id(r->domid);
    if ( !d )
        return start_extent;
    if ( !xsm_target_ok(current->domain, d) )
    {
        put_domain(d);
        return start_extent;
    }

    args.domain = d;
    args.extent_list = r->extent_start;
    args.nr_extents = (unsigned int)r->nr_extents;
    args.extent_order = r->extent_order;
    args.nr_done = start_extent;

    switch ( op )
    {
    case XENMEM_increase_reservation:
        increase_reservation(&args);
        break;
    case XENMEM_decrease_reservation:
        decrease_reservation(&args);
        break;
    default:
        populate_physmap(&args);
        break;
    }
    put_domain(d);

    if ( args.preempted )
    {
        /* The continuation: the guest's cmd now names the next extent. */
        *cmd = op | (args.nr_done << MEMOP_EXTENT_SHIFT);
        return -ERESTART;
    }
    return args.nr_done;
}

/* ------------------------------------------------------------------------
 * Information about the domain and the host
 * ------------------------------------------------------------------------ */

/* PV guests record nr_pfns, not max_pfn, in shared_info: hence the - 1. */
uint64_t domain_get_maximum_gpfn(struct domain *d)
{
    uint64_t max_pfn = 0;

    if ( d->translated )
    {
        spin_lock(&d->p2m_lock);
        for ( uint64_t gfn = d->p2m_size; gfn-- > 0; )
            if ( d->p2m[gfn] != INVALID_MFN )
            {
                max_pfn = gfn;
                break;
            }
        spin_unlock(&d->p2m_lock);
        return max_pfn;
    }
    mfn_t si_mfn = __atomic_load_n(&d->shared_info_mfn, __ATOMIC_RELAXED);

    if ( si_mfn )
    {
        uint8_t *si = map_domain_page(si_mfn);

        max_pfn = __atomic_load_n((uint64_t *)(si +
                                               SHARED_INFO_MAX_PFN_OFFSET),
                                  __ATOMIC_RELAXED);
        unmap_domain_page(si);
    }
    return (max_pfn ? max_pfn : 1) - 1;
}

static long memop_domain_info(unsigned int op,
                              const struct xen_memory_domain *arg)
{
    struct domain *d;
    long rc;

    if ( !arg )
        return -EFAULT;
    d = lock_domain_by_any_id(arg->domid);
    if ( !d )
        return -ESRCH;
    if ( !xsm_target_ok(current->domain, d) )
    {
        put_domain(d);
        return -EPERM;
    }

    switch ( op )
    {
    case XENMEM_current_reservation:
        rc = (long)atomic_load(&d->tot_pages) -
             (long)atomic_load(&d->extra_pages);
        break;
    case XENMEM_maximum_reservation:
        rc = atomic_load(&d->max_pages);
        break;
    default:
        rc = (long)domain_get_maximum_gpfn(d);
        break;
    }
    put_domain(d);
    return rc;
}

/*
 * The M2P's frames in 2 MiB chunks: the saver maps them read-only as
 * DOMID_XEN pages.  ferry's M2P is one contiguous run from m2p_first_mfn,
 * so chunk i starts at m2p_first_mfn + 512 i.
 */
static long machphys_mfn_list(struct xen_machphys_mfn_list *xmml)
{
    uint64_t m2p_bytes = host.max_page * sizeof(uint64_t);
    uint32_t i;

    if ( !xmml )
        return -EFAULT;
    for ( i = 0; i != xmml->max_extents &&
                 (uint64_t)i * M2P_CHUNK_FRAMES * PAGE_SIZE < m2p_bytes; i++ )
    {
        if ( !xmml->extent_start )
            return -EFAULT;
        xmml->extent_start[i] = host.m2p_first_mfn +
                                (uint64_t)i * M2P_CHUNK_FRAMES;
    }
    xmml->nr_extents = i;
    return 0;
}

/* ------------------------------------------------------------------------
 * add_to_physmap / remove_from_physmap (translated domains only)
 * ------------------------------------------------------------------------ */

/* Xen's xatp_permission_check(). */
static long xatp_permission_check(struct domain *d, unsigned int space)
{
    if ( !d->translated )
        return -EACCES;
    /* dev_mmio: only the hardware domain, for itself; ferry has none. */
    if ( space == XENMAPSPACE_dev_mmio )
        return -EACCES;
    return xsm_target_ok(current->domain, d) ? 0 : -EPERM;
}

/*
 * Make gfn free for mfn: a xen-heap frame there is simply unhooked, a RAM
 * frame is given back (x86: "normal domain memory is freed, to avoid
 * leaking memory").  Called without p2m_lock: guest_remove_page takes it.
 */
static int clear_destination(struct domain *d, uint64_t gfn, mfn_t mfn)
{
    mfn_t prev;
    int rc = 0;

    spin_lock(&d->p2m_lock);
    prev = p2m_get_entry(d, gfn);
    if ( mfn_valid(prev) && is_xen_heap_page(mfn_to_page(prev)) )
    {
        if ( prev != mfn )
            rc = p2m_remove_mapping(d, gfn, prev, 1);
        prev = INVALID_MFN;
    }
    spin_unlock(&d->p2m_lock);

    if ( !rc && mfn_valid(prev) && prev != mfn )
        rc = guest_remove_page(d, gfn);
    return rc;
}

/* Race injection for the unit tests (see hv.h); NULL in the daemon. */
void (*_Atomic hv_xenheap_add_race)(struct domain *d, mfn_t mfn,
                                    uint64_t gfn);

/*
 * A xen-heap frame goes into the physmap at most once (Arm's rule, section
 * 8, xen/arch/arm/mm.c xenmem_add_to_physmap_one): with no recorded GFN the
 * entry is written and the GFN recorded, with one the answer is -EBUSY
 * until remove_from_physmap.  Check and set happen under one hold of
 * p2m_lock, so a caller that gets -EBUSY has changed nothing.  A RAM frame
 * the entry mapped before is given back (x86: "normal domain memory is
 * freed, to avoid leaking memory"), but only once the new entry is in, and
 * after the lock is dropped, since frees never run under p2m_lock; the
 * general ref taken under the lock keeps it from going meanwhile.
 */
static int add_xenheap_frame(struct domain *d, mfn_t mfn, uint64_t gfn)
{
    struct page_info *pg = mfn_to_page(mfn), *displaced = NULL;
    void (*race)(struct domain *, mfn_t, uint64_t) =
        atomic_load_explicit(&hv_xenheap_add_race, memory_order_relaxed);
    mfn_t prev;
    int rc;

    if ( unlikely(race != NULL) )
        race(d, mfn, gfn);

    spin_lock(&d->p2m_lock);
    if ( page_get_xenheap_gfn(pg) != INVALID_GFN )
        rc = -EBUSY;
    else if ( !(rc = p2m_ensure(d, gfn)) )
    {
        prev = p2m_get_entry(d, gfn);
        if ( mfn_valid(prev) && prev != mfn &&
             !is_xen_heap_page(mfn_to_page(prev)) &&
             get_page(mfn_to_page(prev), d) )
            displaced = mfn_to_page(prev);
        /* Unhooks what was there: its M2P entry, or its xen-heap GFN. */
        p2m_set_entry(d, gfn, mfn);
        page_set_xenheap_gfn(pg, gfn);
    }
    spin_unlock(&d->p2m_lock);

    if ( displaced )
    {
        put_page_alloc_ref(displaced);
        put_page(displaced);
    }
    return rc;
}

/* XENMAPSPACE_gmfn: move the RAM frame at GFN idx to gfn (x86 HVM). */
static int move_gmfn(struct domain *d, uint64_t idx, uint64_t gfn)
{
    struct page_info *pg = get_page_from_gfn(d, idx);
    mfn_t mfn;
    uint64_t old_gfn;
    int rc;

    if ( !pg )
        return -EINVAL;
    mfn = page_to_mfn(pg);

    /* Is the frame really at idx (x86: -EXDEV)?  Xen-heap frames never. */
    old_gfn = get_gpfn_from_mfn(mfn);
    if ( is_xen_heap_page(pg) || old_gfn != idx )
    {
        rc = -EXDEV;
        goto out;
    }

    rc = clear_destination(d, gfn, mfn);
    if ( rc )
        goto out;

    spin_lock(&d->p2m_lock);
    if ( old_gfn != gfn )
        rc = p2m_remove_mapping(d, old_gfn, mfn, 1);
    if ( !rc )
        rc = p2m_ensure(d, gfn);
    if ( !rc )
    {
        p2m_set_entry(d, gfn, mfn);
        set_gpfn_from_mfn(mfn, gfn);
    }
    spin_unlock(&d->p2m_lock);

 out:
    put_page(pg);
    return rc;
}

static int xenmem_add_to_physmap_one(struct domain *d, unsigned int space,
                                     uint64_t idx, uint64_t gfn)
{
    mfn_t mfn;
    int rc;

    if ( gfn == INVALID_GFN || gfn > P2M_MAX_GFN )
        return -EINVAL;

    switch ( space )
    {
    case XENMAPSPACE_shared_info:
        if ( idx != 0 || !d->shared_info_mfn )
            return -EINVAL;
        return add_xenheap_frame(d, d->shared_info_mfn, gfn);

    case XENMAPSPACE_grant_table:
        rc = gnttab_map_frame_begin(d, idx, &mfn);
        if ( rc )
            return rc;
        rc = add_xenheap_frame(d, mfn, gfn);
        gnttab_map_frame_end(d, mfn);
        return rc;

    case XENMAPSPACE_gmfn:
        return move_gmfn(d, idx, gfn);

    case XENMAPSPACE_gmfn_range:
    case XENMAPSPACE_gmfn_foreign:
    case XENMAPSPACE_dev_mmio:
    default:
        /* Not modelled: ferry's translated domains are Arm-style guests. */
        return -ENOSYS;
    }
}

static long add_to_physmap(unsigned int start_extent,
                           const struct xen_add_to_physmap *xatp)
{
    struct domain *d;
    long rc;

    /* Check for malicious or buggy input. */
    if ( start_extent != (uint16_t)start_extent )
        return -EDOM;
    if ( !xatp )
        return -EFAULT;
    /* Foreign mapping is only possible via add_to_physmap_batch. */
    if ( xatp->space == XENMAPSPACE_gmfn_foreign )
        return -ENOSYS;

    d = lock_domain_by_any_id(xatp->domid);
    if ( !d )
        return -ESRCH;
    rc = xatp_permission_check(d, xatp->space);
    if ( !rc )
        rc = xenmem_add_to_physmap_one(d, xatp->space, xatp->idx,
                                       xatp->gpfn);
    put_domain(d);
    return rc;
}

static long add_to_physmap_batch(unsigned int *cmd,
                                 struct xen_add_to_physmap_batch *xatpb)
{
    unsigned int extent = *cmd >> MEMOP_EXTENT_SHIFT;
    struct domain *d;
    long rc;

    if ( extent != (uint16_t)extent )
        return -EDOM;
    if ( !xatpb )
        return -EFAULT;
    if ( xatpb->space == XENMAPSPACE_gmfn_range )
        return -EOPNOTSUPP;

    d = lock_domain_by_any_id(xatpb->domid);
    if ( !d )
        return -ESRCH;
    rc = xatp_permission_check(d, xatpb->space);
    if ( rc )
        goto out;

    if ( unlikely(xatpb->size < extent) )
    {
        rc = -EILSEQ;
        goto out;
    }
    if ( unlikely(xatpb->size == extent) )
    {
        rc = extent ? -EILSEQ : 0;
        goto out;
    }
    if ( !xatpb->idxs || !xatpb->gpfns || !xatpb->errs )
    {
        rc = -EFAULT;
        goto out;
    }

    while ( xatpb->size > extent )
    {
        if ( xatpb->gpfns[extent] == INVALID_GFN )
        {
            rc = -EINVAL;
            goto out;
        }
        xatpb->errs[extent] = xenmem_add_to_physmap_one(d, xatpb->space,
                                                        xatpb->idxs[extent],
                                                        xatpb->gpfns[extent]);
        /* Check for a continuation if it's not the last iteration. */
        if ( xatpb->size > ++extent && hypercall_preempt_check() )
        {
            *cmd = XENMEM_add_to_physmap_batch |
                   (extent << MEMOP_EXTENT_SHIFT);
            rc = -ERESTART;
            goto out;
        }
    }
    rc = 0;

 out:
    put_domain(d);
    return rc;
}

static long remove_from_physmap(unsigned int start_extent,
                                const struct xen_remove_from_physmap *xrfp)
{
    struct page_info *pg;
    struct domain *d;
    long rc;

    if ( unlikely(start_extent) )
        return -EINVAL;
    if ( !xrfp )
        return -EFAULT;

    d = lock_domain_by_any_id(xrfp->domid);
    if ( !d )
        return -ESRCH;
    rc = d->translated ? (xsm_target_ok(current->domain, d) ? 0 : -EPERM)
                       : -EACCES;
    if ( !rc )
    {
        pg = get_page_from_gfn(d, xrfp->gpfn);
        if ( pg )
        {
            rc = guest_physmap_remove_page(d, xrfp->gpfn, page_to_mfn(pg),
                                           0);
            put_page(pg);
        }
        else
            rc = -ENOENT;
    }
    put_domain(d);
    return rc;
}

/* ------------------------------------------------------------------------
 * The hypercall
 * ------------------------------------------------------------------------ */

long do_memory_op(unsigned int *cmd, void *arg)
{
    unsigned int op = *cmd & MEMOP_CMD_MASK;
    unsigned int start_extent = *cmd >> MEMOP_EXTENT_SHIFT;

    ASSERT(current);

    switch ( op )
    {
    case XENMEM_increase_reservation:
    case XENMEM_decrease_reservation:
    case XENMEM_populate_physmap:
        return memop_reservation(cmd, op, arg);

    case XENMEM_maximum_ram_page:
        if ( unlikely(start_extent) )
            return -EINVAL;
        return (long)host.max_page;

    case XENMEM_current_reservation:
    case XENMEM_maximum_reservation:
    case XENMEM_maximum_gpfn:
        if ( unlikely(start_extent) )
            return -EINVAL;
        return memop_domain_info(op, arg);

    case XENMEM_machphys_mfn_list:
        /* An arch op: Xen matches the whole cmd, extent bits included. */
        if ( unlikely(start_extent) )
            return -ENOSYS;
        return machphys_mfn_list(arg);

    case XENMEM_add_to_physmap:
        return add_to_physmap(start_extent, arg);

    case XENMEM_add_to_physmap_batch:
        return add_to_physmap_batch(cmd, arg);

    case XENMEM_remove_from_physmap:
        return remove_from_physmap(start_extent, arg);

    default:
        return -ENOSYS;
    }
}
