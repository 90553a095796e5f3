/* SPDX-License-Identifier: MIT */
/*
 * References: the general reference count (count_info) and the type
 * reference count (type_info) of every frame, as xen/arch/x86/mm.c keeps
 * them.
 *
 * A general reference keeps a frame allocated to its owner; a type
 * reference additionally pins the frame's use (page table of level k,
 * descriptor page, writable data ...).  Types are mutually exclusive while
 * the type count is non-zero, which is the whole of PV memory safety: a
 * page the guest can write is never a page table and vice versa.  The first
 * type reference of a page-table type validates the frame's contents
 * (validate_page() in pt.c); dropping the last one devalidates them.
 *
 * Invariants kept here:
 *  - count_info, type_info and the union word change only through the
 *    cmpxchg loops below (or atomic read-modify-write operations where Xen
 *    relies on owning the page's validation exclusively);
 *  - a page-table page whose type count reaches 0 is not validated and not
 *    partial, but keeps its type field (reference 3.4);
 *  - the page that carries PGT_partial has type count 1 and holds one extra
 *    general reference, dropped by whoever clears the flag;
 *  - while a page is "validate-locked" (type count 1, neither validated nor
 *    partial) only the thread that locked it changes type_info.
 *
 * Callers of the preemptible variants must be ready for -EINTR ("nothing
 * happened, redo") and -ERESTART ("progress recorded in the page, call
 * again"); the hypercall layer turns both into continuations.
 */
#include "hv.h"

/* The page this thread holds with page_lock() (Xen's current_locked_page). */
static _Thread_local struct page_info *current_locked_page;

/* Race injection for the unit tests (see hv.h); always NULL in the daemon. */
void (*_Atomic hv_put_page_type_race)(struct page_info *pg);

/*
 * The window between reading type_info and the cmpxchg that acts on what
 * was read: another vCPU may change the page here, and a unit test can
 * make it do so deterministically.
 */
static inline void put_page_type_race_window(struct page_info *pg)
{
    void (*hook)(struct page_info *) =
        atomic_load_explicit(&hv_put_page_type_race, memory_order_relaxed);

    if ( unlikely(hook != NULL) )
        hook(pg);
}

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

/* Print a domain as Xen's %pd does: d<id>, d[IO], d[XEN], NULL. */
static const char *pd(const struct domain *d, char *buf, size_t len)
{
    if ( !d )
        return "NULL";
    switch ( d->domain_id )
    {
    case DOMID_IO:
        return "d[IO]";
    case DOMID_XEN:
        return "d[XEN]";
    case DOMID_COW:
        return "d[COW]";
    case DOMID_IDLE:
        return "d[IDLE]";
    }
    snprintf(buf, len, "d%u", d->domain_id);
    return buf;
}

static bool owner_is_dying(const struct page_info *pg)
{
    const struct domain *d = page_get_owner(pg);

    return d && domain_is_dying(d);
}

static bool is_special_page(const struct page_info *pg)
{
    return atomic_load(&pg->count_info) & (PGC_xen_heap | PGC_extra);
}

/* The deferred put pending on the current vCPU, if any. */
static struct page_info *current_old_guest_table(void)
{
    return current ? current->old_guest_table : NULL;
}

/* ------------------------------------------------------------------------
 * General references
 * ------------------------------------------------------------------------ */

struct domain *page_get_owner_and_reference(struct page_info *pg)
{
    uint64_t x, y = atomic_load(&pg->count_info);
    struct domain *owner;

    do {
        x = y;
        /*
         * Count 0: not allocated.  Count -1: the increment would wrap.
         * Count -2: the last value is reserved for get_page_light().
         */
        if ( unlikely(((x + 2) & PGC_count_mask) <= 2) )
            return NULL;
    } while ( (y = cmpxchg64(&pg->count_info, x, x + 1)) != x );

    owner = page_get_owner(pg);
    ASSERT(owner);
    return owner;
}

bool get_page(struct page_info *pg, const struct domain *d)
{
    const struct domain *owner = page_get_owner_and_reference(pg);
    char b1[16], b2[16];

    if ( likely(owner == d) )
        return true;

    if ( !domain_is_dying(d) )
        gdprintk(XENLOG_INFO,
                 "Error mfn %05lx: rd=%s od=%s caf=%08lx taf=%016lx\n",
                 (unsigned long)page_to_mfn(pg), pd(d, b1, sizeof(b1)),
                 pd(owner, b2, sizeof(b2)),
                 (unsigned long)(atomic_load(&pg->count_info) - !!owner),
                 (unsigned long)atomic_load(&pg->type_info));

    if ( owner )
        put_page(pg);
    return false;
}

/*
 * Take a reference known to be covered by one already held (the one that
 * goes with PGT_partial).  It cannot fail: get_page() keeps the last count
 * value in reserve for it.
 */
void get_page_light(struct page_info *pg)
{
    uint64_t x, nx, y = atomic_load(&pg->count_info);

    do {
        x = y;
        nx = x + 1;
        BUG_ON(!(x & PGC_count_mask));      /* not allocated? */
        BUG_ON(!(nx & PGC_count_mask));     /* overflow? */
    } while ( (y = cmpxchg64(&pg->count_info, x, nx)) != x );
}

/*
 * The last general reference is gone: no mapping of the frame can remain,
 * so a writable type (whose count is necessarily 0 by now) is cleared to
 * record that all writable mappings went.  Xen-heap pages have their type
 * managed by their owner and keep it.
 */
static void cleanup_page_mappings(struct page_info *pg)
{
    uint64_t t = atomic_load(&pg->type_info);
    /* Caches are coherent here: PGT_non_coherent needs no flush. */
    uint64_t clear = PGT_non_coherent;

    if ( (t & PGT_type_mask) == PGT_writable_page && !is_special_page(pg) )
    {
        ASSERT((t & (PGT_type_mask | PGT_count_mask)) == PGT_writable_page);
        clear |= PGT_type_mask | PGT_count_mask;
    }
    /*
     * One read-modify-write, and none when there is nothing to clear: the
     * count is 0, so nobody else changes the word meanwhile (this runs
     * once per frame when a domain is destroyed).
     */
    if ( t & clear )
        atomic_fetch_and(&pg->type_info, ~clear);
}

void put_page(struct page_info *pg)
{
    uint64_t x, nx, y = atomic_load(&pg->count_info);

    do {
        ASSERT((y & PGC_count_mask) != 0);
        x = y;
        nx = x - 1;
    } while ( unlikely((y = cmpxchg64(&pg->count_info, x, nx)) != x) );

    if ( unlikely((nx & PGC_count_mask) == 0) )
    {
        cleanup_page_mappings(pg);
        free_domheap_pages(pg, 0);
    }
}

void put_page_alloc_ref(struct page_info *pg)
{
    uint64_t old = atomic_fetch_and(&pg->count_info, ~PGC_allocated);

    /*
     * The allocation reference must never be the last one of a domheap
     * page: the caller holds another.
     */
    if ( old & PGC_allocated )
    {
        BUG_ON((atomic_load(&pg->count_info) &
                (PGC_xen_heap | PGC_count_mask)) <= 1);
        put_page(pg);
    }
}

/* ------------------------------------------------------------------------
 * Dropping type references
 * ------------------------------------------------------------------------ */

/*
 * The last type reference of a page table goes: the caller has already
 * cleared PGT_validated/PGT_partial keeping the count at 1, so nobody else
 * can touch the page's type while its entries are released.
 */
static int _put_final_page_type(struct page_info *pg, uint64_t type,
                                 bool preemptible, struct page_info *ptpg)
{
    int rc = devalidate_page(pg, type, preemptible);

    /* Any time de-validation begins, the linear counts are adjusted. */
    if ( ptpg && PGT_type_equal(type, atomic_load(&ptpg->type_info)) &&
         (type & PGT_validated) && rc != -EINTR )
    {
        dec_linear_uses(pg);
        dec_linear_entries(ptpg);
    }

    if ( rc == 0 )
    {
        ASSERT(!page_linear_pt_count(pg) || owner_is_dying(pg));
        page_set_tlbflush_timestamp(pg);
        atomic_fetch_sub(&pg->type_info, 1);
    }
    else if ( rc == -EINTR )
    {
        ASSERT((atomic_load(&pg->type_info) &
                (PGT_count_mask | PGT_validated | PGT_partial)) == 1);
        atomic_fetch_or(&pg->type_info, PGT_validated);
    }
    else
    {
        BUG_ON(rc != -ERESTART);
        get_page_light(pg);
        atomic_fetch_or(&pg->type_info, PGT_partial);
    }
    return rc;
}

int _put_page_type(struct page_info *pg, unsigned int flags,
                   struct page_info *ptpg)
{
    uint64_t x, nx, y = atomic_load(&pg->type_info);
    bool preemptible = flags & PTF_preemptible;

    /* Dropping a type ref of the page we hold locked would deadlock. */
    ASSERT(current_locked_page != pg);

    for ( ; ; )
    {
        x = y;
        nx = x - 1;

        /*
         * A full drop needs a full (validated) type ref, except while the
         * owner is being destroyed.  A partial drop only finishes what
         * PGT_partial left, and does nothing once someone else did.
         */
        if ( !(flags & PTF_partial_set) )
            BUG_ON((x & PGT_partial) ||
                   !((x & PGT_validated) || owner_is_dying(pg)));
        else if ( !(x & PGT_partial) )
            return 0;
        else
            BUG_ON((x & PGT_count_mask) != 1);

        ASSERT((x & PGT_count_mask) != 0);

        switch ( nx & (PGT_locked | PGT_count_mask) )
        {
        case 0:
            if ( unlikely((nx & PGT_type_mask) <= PGT_l4_page_table) &&
                 likely(nx & (PGT_validated | PGT_partial)) )
            {
                int rc;

                /*
                 * Page tables are unvalidated at count 0.  Clearing the
                 * validated bit with the count still 1 is the devalidation
                 * lock: others spin or fail meanwhile.
                 */
                nx = x & ~(PGT_validated | PGT_partial);
                put_page_type_race_window(pg);
                if ( unlikely((y = cmpxchg64(&pg->type_info, x, nx)) != x) )
                    break;
                rc = _put_final_page_type(pg, x, preemptible, ptpg);
                if ( x & PGT_partial )
                    put_page(pg);
                return rc;
            }

            /*
             * The timestamp shares the union word with linear_pt_count:
             * a linear put (ptpg of the same type) must not clobber it.
             */
            if ( !ptpg || !PGT_type_equal(x, atomic_load(&ptpg->type_info)) )
                page_set_tlbflush_timestamp(pg);
            /* fall through */
        default:
            put_page_type_race_window(pg);
            if ( unlikely((y = cmpxchg64(&pg->type_info, x, nx)) != x) )
                break;
            if ( ptpg && PGT_type_equal(x, atomic_load(&ptpg->type_info)) )
            {
                dec_linear_uses(pg);
                dec_linear_entries(ptpg);
            }
            return 0;

        case PGT_locked:
            /* page_unlock() must never be left to drop the last ref. */
            return -EILSEQ;

        case PGT_locked | 1:
            /*
             * The second to last ref must not go while the page is locked:
             * page_unlock() does no type clean-up.  Wait for the unlock.
             */
            cpu_relax();
            y = atomic_load(&pg->type_info);
            break;
        }

        /*
         * A lost race may end a preemptible put with -EINTR, except a
         * partial one (ferry only; Xen checks here too).  The only thing
         * that changes such a page under us is another vCPU resuming its
         * (de)validation, after which the next pass returns 0 at once.
         * And put_old_guest_table() reads -EINTR after PTF_partial_set as
         * "the page is validated again and the holder has a full type
         * ref", which is true only of -EINTR from _put_final_page_type():
         * after a lost race it would clear old_guest_table_partial, and
         * its next put would drop the other vCPU's type ref (or hit the
         * BUG_ON above while that vCPU still validates the page).
         */
        if ( preemptible && !(flags & PTF_partial_set) &&
             hypercall_preempt_check() )
            return -EINTR;
    }
}

/* ------------------------------------------------------------------------
 * Taking type references
 * ------------------------------------------------------------------------ */

/* Log a wrong-type request, unless it may be a linear page-table attempt. */
static void bad_type(struct page_info *pg, uint64_t x, uint64_t type)
{
    uint64_t saw = x & PGT_type_mask;
    mfn_t mfn = page_to_mfn(pg);

    if ( (saw == PGT_l2_page_table && type == PGT_l1_page_table) ||
         (saw == PGT_l3_page_table && type == PGT_l2_page_table) ||
         (saw == PGT_l4_page_table && type == PGT_l3_page_table) )
        return;
    gdprintk(XENLOG_WARNING,
             "Bad type (saw %016lx != exp %016lx) for mfn %05lx (pfn %05lx)\n",
             (unsigned long)x, (unsigned long)type, (unsigned long)mfn,
             (unsigned long)get_gpfn_from_mfn(mfn));
}

/*
 * Spin while another thread validates the page (it holds the page
 * "validate-locked").  Returns false when a preemptible caller should stop.
 */
static bool wait_for_validation(struct page_info *pg, uint64_t x,
                                bool preemptible, uint64_t *y)
{
    do {
        if ( preemptible && hypercall_preempt_check() )
            return false;
        cpu_relax();
    } while ( (*y = atomic_load(&pg->type_info)) == x );
    return true;
}

int _get_page_type(struct page_info *pg, uint64_t type, bool preemptible)
{
    uint64_t x, nx, y = atomic_load(&pg->type_info);
    int rc = 0;

    ASSERT(!(type & ~PGT_type_mask));

    for ( ; ; )
    {
        x = y;
        nx = x + 1;

        if ( unlikely((nx & PGT_count_mask) == 0) )
        {
            gdprintk(XENLOG_WARNING, "Type count overflow on mfn %05lx\n",
                     (unsigned long)page_to_mfn(pg));
            return -EINVAL;
        }

        if ( unlikely((x & PGT_count_mask) == 0) )
        {
            /* Type ref 0 -> 1: a type change is allowed (re-validates). */
            if ( (x & PGT_type_mask) != type )
            {
                nx &= ~(PGT_type_mask | PGT_validated);
                nx |= type;
            }
        }
        else if ( unlikely((x & PGT_type_mask) != type) )
        {
            bad_type(pg, x, type);
            return -EINVAL;
        }
        else if ( unlikely(!(x & PGT_validated)) )
        {
            ASSERT((x & (PGT_type_mask | PGT_count_mask)) == (type | 1));
            if ( !(x & PGT_partial) )
            {
                /* Validate-locked elsewhere: wait, then start over. */
                if ( !wait_for_validation(pg, x, preemptible, &y) )
                    return -EINTR;
                continue;
            }
            /*
             * Partially (de)validated: take the validation lock instead of
             * a new count, and resume where the page says.
             */
            nx = x & ~PGT_partial;
        }

        if ( likely((y = cmpxchg64(&pg->type_info, x, nx)) == x) )
            break;
        if ( preemptible && hypercall_preempt_check() )
            return -EINTR;
    }

    /* Fully validated already: done. */
    if ( likely(nx & PGT_validated) )
        return 0;

    /*
     * The page is validate-locked by us.  On a type change no vCPU may keep
     * a stale (writable) translation of a frame about to become a page
     * table or descriptor page.
     */
    if ( unlikely((x & PGT_count_mask) == 0) && (x & PGT_type_mask) != type )
    {
        struct domain *d = page_get_owner(pg);

        if ( d )
            flush_tlb_domain(d);
    }

    /* No IOMMU and coherent caches: nothing else precedes validation. */
    if ( type == PGT_writable_page || type == PGT_shared_page )
        atomic_fetch_or(&pg->type_info, PGT_validated);
    else
    {
        /* The TLB timestamp may have clobbered the validation fields. */
        if ( !(x & PGT_partial) )
            page_clear_validation_state(pg);
        rc = validate_page(pg, type, preemptible);
    }

    /*
     * If we took over a PGT_partial page, the general ref that went with
     * the flag is ours to drop (validate_page() took a fresh one if it set
     * the flag again).
     */
    if ( (x & PGT_partial) && !(nx & PGT_partial) )
        put_page(pg);

    return rc;
}

/* ------------------------------------------------------------------------
 * Wrappers: boolean (never preemptible) and 0/-errno (preemptible)
 * ------------------------------------------------------------------------ */

void put_page_type(struct page_info *pg)
{
    int rc = _put_page_type(pg, 0, NULL);

    ASSERT(rc == 0);
}

bool get_page_type(struct page_info *pg, uint64_t type)
{
    int rc = _get_page_type(pg, type, false);

    if ( likely(rc == 0) )
        return true;
    ASSERT(rc != -EINTR && rc != -ERESTART);
    return false;
}

int put_page_type_preemptible(struct page_info *pg)
{
    return _put_page_type(pg, PTF_preemptible, NULL);
}

int get_page_type_preemptible(struct page_info *pg, uint64_t type)
{
    ASSERT(!current_old_guest_table());
    return _get_page_type(pg, type, true);
}

bool get_page_and_type(struct page_info *pg, struct domain *d, uint64_t type)
{
    if ( !get_page(pg, d) )
        return false;
    if ( unlikely(!get_page_type(pg, type)) )
    {
        put_page(pg);
        return false;
    }
    return true;
}

void put_page_and_type(struct page_info *pg)
{
    put_page_type(pg);
    put_page(pg);
}

int put_page_and_type_preemptible(struct page_info *pg)
{
    int rc = put_page_type_preemptible(pg);

    if ( likely(rc == 0) )
        put_page(pg);
    return rc;
}

/*
 * Finish a deferred put: the type ref (partial or full) and the general
 * ref parked in v->old_guest_table.  -ERESTART: call again later.
 */
int put_old_guest_table(struct vcpu *v)
{
    struct page_info *pg = v->old_guest_table;
    int rc;

    if ( !pg )
        return 0;

    rc = _put_page_type(pg, PTF_preemptible |
                            (v->old_guest_table_partial ? PTF_partial_set : 0),
                        v->old_guest_ptpg);
    if ( rc == -ERESTART || rc == -EINTR )
    {
        v->old_guest_table_partial = (rc == -ERESTART);
        return -ERESTART;
    }

    /* Anything else would leak the type ref; the general ref goes anyway. */
    ASSERT(rc == 0);
    put_page(pg);
    v->old_guest_table = NULL;
    v->old_guest_ptpg = NULL;
    /* The safest default for a setter that forgets the flag. */
    v->old_guest_table_partial = true;
    return rc;
}

/* ------------------------------------------------------------------------
 * Page locks (serialise PTE updates of one table)
 * ------------------------------------------------------------------------ */

bool page_lock(struct page_info *pg)
{
    uint64_t x, nx;

    /* One page lock per thread at a time. */
    ASSERT(current_locked_page == NULL);

    do {
        while ( (x = atomic_load(&pg->type_info)) & PGT_locked )
            cpu_relax();
        nx = x + (1 | PGT_locked);
        if ( !(x & PGT_validated) || !(x & PGT_count_mask) ||
             !(nx & PGT_count_mask) )
            return false;
    } while ( cmpxchg64(&pg->type_info, x, nx) != x );

    current_locked_page = pg;
    return true;
}

void page_unlock(struct page_info *pg)
{
    uint64_t x, nx, y = atomic_load(&pg->type_info);

    ASSERT(current_locked_page == pg);

    do {
        x = y;
        ASSERT((x & PGT_count_mask) && (x & PGT_locked));
        nx = x - (1 | PGT_locked);
        /* The lock's type ref is never the last one. */
        ASSERT(nx & PGT_count_mask);
    } while ( (y = cmpxchg64(&pg->type_info, x, nx)) != x );

    current_locked_page = NULL;
}
