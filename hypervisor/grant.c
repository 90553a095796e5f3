/* SPDX-License-Identifier: MIT */
/*
 * Grant tables, version 1 (xen/common/grant_table.c,
 * xen/arch/x86/pv/grant_table.c): how one domain lets another map a frame
 * of its own.
 *
 * The granting domain writes 8-byte entries {flags, domid, frame} into its
 * grant frames: xen-heap frames the hypervisor allocates (setup_table grows
 * the table, up to Xen's default of 64 frames) and shares writable with it.
 * The hypervisor keeps, per entry, an active record (pin counts of the
 * mappings, the mapping domain, the frame) and, per mapping domain, a
 * maptrack table whose index is the handle returned by map_grant_ref.
 *
 * A PV host mapping is an L1 entry written straight into the mapping
 * domain's page table, P|A|D|NX|GNTTAB (+RW, +US for application maps),
 * adjusted as every guest L1 entry is; _PAGE_GNTTAB is 0 in the release
 * build ferry mirrors, so nothing marks the entry as a grant's.  It owns the references an ordinary
 * L1 entry would own: one general reference on the frame and, unless
 * read-only, one writable type reference.  So the page-table code releases
 * them like any other entry when the mapping domain's tables go, and a
 * guest that zaps the entry with mmu_update drops them too, leaving the
 * pin counts stale: unmap then fails with general_error because the entry
 * no longer matches.
 *
 * A domain gets its table on first use (Xen creates it, with one frame,
 * with the domain; ferry defers that so domains that never grant carry no
 * extra frame).  The table lives until the domain is freed
 * (grant_table_free): other domains may still unmap grants of a dead
 * domain, and need its active entries for that.  Its frames go back to the
 * heap earlier, at the end of destruction, once no guest reference is left.
 *
 * Locks: each table's lock covers everything in it; at most one table lock
 * is held at a time (map and unmap touch two tables one after the other),
 * and a table lock ranks above d->p2m_lock and d->page_alloc_lock.  Page
 * locks are taken with no table lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "hv.h"

#define INITIAL_NR_GRANT_FRAMES 1U
#define MAX_GRANT_FRAMES        64U     /* Xen's opt_max_grant_frames */
#define GRANT_PER_FRAME         (PAGE_SIZE / sizeof(struct grant_entry_v1))
/* Xen's opt_max_maptrack_frames (1024) of 256 16-byte entries each. */
#define MAX_MAPTRACK            (1024U * 256U)
#define MAPTRACK_TAIL           (~0U)
#define INVALID_MAPTRACK_HANDLE (~0U)
#define GNTTAB_UNMAP_BATCH_SIZE 32U

#define GTF_sub_page (1U << 8)

/* Pin counts: four 8-bit counters in one word (Xen's GNTPIN_*). */
#define GNTPIN_hstw_inc  (1U << 0)
#define GNTPIN_hstr_inc  (1U << 8)
#define GNTPIN_devw_inc  (1U << 16)
#define GNTPIN_devr_inc  (1U << 24)
#define GNTPIN_hstw_mask (0xFFU << 0)
#define GNTPIN_hstr_mask (0xFFU << 8)
#define GNTPIN_devw_mask (0xFFU << 16)
#define GNTPIN_devr_mask (0xFFU << 24)
/* The top bit of each counter an increment touches: it would overflow. */
#define GNTPIN_incr2oflow_mask(x) ((x) << 7)

/* Flags of a grant PTE, in the 24-bit encoding (reference 4.1). */
#define FL_NX        0x800000U
#define FL_GLOBAL    0x100U
#define FL_CACHE     (_PAGE_PWT | _PAGE_PCD | _PAGE_PAT)

struct active_grant_entry
{
    uint32_t pin;               /* GNTPIN_* counts of the mappings */
    domid_t domid;              /* the domain mapping it */
    mfn_t mfn;                  /* the granted frame, while pinned */
};

struct grant_mapping
{
    grant_ref_t ref;
    uint16_t flags;             /* GNTMAP_*; 0: free or being set up */
    domid_t domid;              /* the granting domain */
    uint32_t next;              /* free-list link */
    bool busy;                  /* an unmap of this handle is under way */
};

struct grant_table
{
    spinlock_t lock;
    struct domain *domain;
    unsigned int nr_grant_frames;
    mfn_t shared[MAX_GRANT_FRAMES];     /* 0: given back to the heap */
    struct active_grant_entry *active;  /* nr_grant_frames * 512 */
    struct grant_mapping *maptrack;
    unsigned int maptrack_limit;
    unsigned int maptrack_head;         /* free list */
};

/* What unmap_common() leaves for unmap_common_complete(). */
struct gnttab_unmap_common
{
    uint64_t host_addr;
    uint64_t dev_bus_addr;
    grant_handle_t handle;
    int16_t status;
    unsigned int done;          /* GNTMAP_host_map/device_map/readonly */
    struct domain *rd;          /* referenced until completion */
    grant_ref_t ref;
    mfn_t mfn;
};

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static bool is_iomem_page(mfn_t mfn)
{
    return !mfn_valid(mfn) ||
           page_get_owner(mfn_to_page(mfn)) == host.dom_io;
}

static intpte_t pte_read(const intpte_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void pte_write(intpte_t *p, intpte_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static struct grant_table *gt_of(struct domain *d)
{
    return __atomic_load_n(&d->grant_table, __ATOMIC_ACQUIRE);
}

static unsigned int nr_grant_entries(const struct grant_table *gt)
{
    return gt->nr_grant_frames * GRANT_PER_FRAME;
}

/* The shared entry of ref, or NULL once its frame went back to the heap. */
static struct grant_entry_v1 *shared_entry(const struct grant_table *gt,
                                           grant_ref_t ref)
{
    mfn_t mfn = gt->shared[ref / GRANT_PER_FRAME];

    if ( !mfn )
        return NULL;
    return (struct grant_entry_v1 *)map_domain_page(mfn) +
           ref % GRANT_PER_FRAME;
}

/* ------------------------------------------------------------------------
 * The table: creation, growth, maptrack handles
 * ------------------------------------------------------------------------ */

static int gnttab_grow_table(struct grant_table *gt, unsigned int req)
{
    struct domain *d = gt->domain;
    unsigned int cur = gt->nr_grant_frames;
    struct page_info *pg[MAX_GRANT_FRAMES];
    struct active_grant_entry *act;
    unsigned int i;

    if ( req < INITIAL_NR_GRANT_FRAMES )
        req = INITIAL_NR_GRANT_FRAMES;
    ASSERT(req <= MAX_GRANT_FRAMES && req > cur);

    /*
     * Frames shared now would miss the dying domain's relinquish pass.
     * destruction's first step takes this lock, so the check is final.
     */
    if ( domain_is_dying(d) )
        return -EINVAL;

    if ( req > INITIAL_NR_GRANT_FRAMES )
        gdprintk(XENLOG_INFO,
                 "Expanding d%d grant table from %u to %u frames\n",
                 d->domain_id, cur, req);

    act = realloc(gt->active, req * GRANT_PER_FRAME * sizeof(*act));
    if ( !act )
        goto fail;
    memset(act + cur * GRANT_PER_FRAME, 0,
           (req - cur) * GRANT_PER_FRAME * sizeof(*act));
    gt->active = act;

    for ( i = cur; i < req; i++ )
    {
        pg[i] = alloc_heap_pages(0, 0);
        if ( !pg[i] )
        {
            while ( i-- > cur )
                free_heap_pages(pg[i], 0, false);
            goto fail;
        }
    }

    /* Share the new frames with the domain: writable, M2P invalid. */
    for ( i = cur; i < req; i++ )
    {
        share_xen_page_with_guest(pg[i], d, true);
        gt->shared[i] = page_to_mfn(pg[i]);
    }
    gt->nr_grant_frames = req;
    return 0;

 fail:
    gdprintk(XENLOG_INFO,
             "Allocation failure when expanding d%d grant table\n",
             d->domain_id);
    return -ENOMEM;
}

/* d's table, created on first use; NULL for a dying domain without one. */
static struct grant_table *grant_table_get(struct domain *d)
{
    struct grant_table *gt = gt_of(d), *expected = NULL;

    if ( gt )
        return gt;
    if ( domain_is_dying(d) )
        return NULL;
    gt = calloc(1, sizeof(*gt));
    if ( !gt )
        return NULL;
    spin_lock_init(&gt->lock);
    gt->domain = d;
    gt->maptrack_head = MAPTRACK_TAIL;
    if ( !__atomic_compare_exchange_n(&d->grant_table, &expected, gt, false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) )
    {
        /* Another thread installed one first. */
        spin_lock_destroy(&gt->lock);
        free(gt);
        return expected;
    }
    return gt;
}

/*
 * Lock a table, giving it its initial frame if it has none yet: from the
 * guests' point of view the table has existed, one frame large, since the
 * domain was created.
 */
static void grant_table_lock(struct grant_table *gt)
{
    spin_lock(&gt->lock);
    if ( !gt->nr_grant_frames )
        gnttab_grow_table(gt, INITIAL_NR_GRANT_FRAMES);
}

static grant_handle_t get_maptrack_handle(struct grant_table *lgt)
{
    grant_handle_t h = INVALID_MAPTRACK_HANDLE;

    spin_lock(&lgt->lock);
    if ( lgt->maptrack_head == MAPTRACK_TAIL &&
         lgt->maptrack_limit < MAX_MAPTRACK )
    {
        unsigned int lim = lgt->maptrack_limit;
        unsigned int nlim = lim ? min(lim * 2, MAX_MAPTRACK) : 256U;
        struct grant_mapping *mt = realloc(lgt->maptrack,
                                           nlim * sizeof(*mt));

        if ( mt )
        {
            for ( unsigned int i = lim; i < nlim; i++ )
            {
                memset(&mt[i], 0, sizeof(mt[i]));
                mt[i].next = i + 1 < nlim ? i + 1 : MAPTRACK_TAIL;
            }
            lgt->maptrack = mt;
            lgt->maptrack_limit = nlim;
            lgt->maptrack_head = lim;
        }
    }
    if ( lgt->maptrack_head != MAPTRACK_TAIL )
    {
        h = lgt->maptrack_head;
        lgt->maptrack_head = lgt->maptrack[h].next;
        lgt->maptrack[h].flags = 0;
        lgt->maptrack[h].busy = false;
    }
    spin_unlock(&lgt->lock);
    return h;
}

/* Table lock held. */
static void __put_maptrack_handle(struct grant_table *lgt, grant_handle_t h)
{
    lgt->maptrack[h].flags = 0;
    lgt->maptrack[h].busy = false;
    lgt->maptrack[h].next = lgt->maptrack_head;
    lgt->maptrack_head = h;
}

static void put_maptrack_handle(struct grant_table *lgt, grant_handle_t h)
{
    spin_lock(&lgt->lock);
    __put_maptrack_handle(lgt, h);
    spin_unlock(&lgt->lock);
}

/* ------------------------------------------------------------------------
 * Shared entry status (the granting guest's flags word)
 * ------------------------------------------------------------------------ */

/*
 * Mark the entry in use (GTF_reading, and GTF_writing for a writable map)
 * after checking, on first pin, that it grants access to ldomid.  The
 * guest may race us on the word, so the cmpxchg is retried a few times
 * before the guest is deemed misbehaving, as Xen does.
 */
static int set_status_v1(struct grant_entry_v1 *shah, bool pinned,
                         bool readonly, domid_t ldomid)
{
    uint32_t *raw = (uint32_t *)shah;
    uint32_t scombo = __atomic_load_n(raw, __ATOMIC_RELAXED);
    unsigned int retries = 0;

    for ( ; ; )
    {
        unsigned int flags = scombo & 0xFFFFU;
        domid_t domid = (domid_t)(scombo >> 16);
        uint32_t ncombo;

        if ( !pinned &&
             ((flags & (GTF_type_mask | GTF_sub_page)) != GTF_permit_access ||
              domid != ldomid) )
        {
            gdprintk(XENLOG_WARNING,
                     "Bad flags (%x) or dom (%d); expected d%d\n",
                     flags, domid, ldomid);
            return GNTST_general_error;
        }

        ncombo = scombo | GTF_reading;
        if ( !readonly )
        {
            ncombo |= GTF_writing;
            if ( unlikely(flags & GTF_readonly) )
            {
                gdprintk(XENLOG_WARNING,
                         "Attempt to write-pin a r/o grant entry\n");
                return GNTST_general_error;
            }
        }

        if ( __atomic_compare_exchange_n(raw, &scombo, ncombo, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) )
            return GNTST_okay;

        if ( retries++ == 4 )
        {
            gdprintk(XENLOG_WARNING, "Shared grant entry is unstable\n");
            return GNTST_general_error;
        }
    }
}

/* Clear GTF_reading / GTF_writing once no mapping needs them. */
static void reduce_status_for_pin(struct grant_entry_v1 *shah,
                                  const struct active_grant_entry *act,
                                  bool readonly)
{
    uint16_t clear = act->pin ? 0 : GTF_reading;

    if ( !shah )
        return;
    if ( !readonly && !(act->pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) )
        clear |= GTF_writing;
    if ( clear )
        __atomic_fetch_and(&shah->flags, (uint16_t)~clear, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------------
 * PV host mappings (xen/arch/x86/pv/grant_table.c)
 * ------------------------------------------------------------------------ */

static uint32_t grant_to_pte_flags(unsigned int gflags)
{
    uint32_t f = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY |
                 _PAGE_GNTTAB | FL_NX;

    if ( gflags & GNTMAP_application_map )
        f |= _PAGE_USER;
    if ( !(gflags & GNTMAP_readonly) )
        f |= _PAGE_RW;
    return f;
}

/*
 * The L1 entry for linear through v's page tables (Xen's guest_map_l1e):
 * L4, L3 and L2 entries must be present and the L2 entry no superpage.
 */
static intpte_t *map_guest_l1e(const struct vcpu *v, uint64_t linear,
                               mfn_t *gl1mfn)
{
    int64_t top = (int64_t)linear >> 47;
    mfn_t mfn = v->guest_table;

    if ( (top != 0 && top != -1) || !mfn )
        return NULL;
    for ( unsigned int level = 4; level > 1; level-- )
    {
        unsigned int idx = (linear >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
        intpte_t e = pte_read((intpte_t *)map_domain_page(mfn) + idx);

        if ( !(e & _PAGE_PRESENT) || (level == 2 && (e & _PAGE_PSE)) )
            return NULL;
        mfn = pte_mfn(e);
        if ( !mfn_valid(mfn) )
            return NULL;
    }
    *gl1mfn = mfn;
    return (intpte_t *)map_domain_page(mfn) + ((linear >> PAGE_SHIFT) & 511);
}

/* Find the L1 entry addr names: a PTE's machine address or a linear one. */
static intpte_t *locate_l1e(uint64_t addr, unsigned int flags,
                            mfn_t *gl1mfn, bool log)
{
    if ( flags & GNTMAP_contains_pte )
    {
        /* addr must be aligned, or we would corrupt adjacent entries. */
        if ( addr & (sizeof(intpte_t) - 1) )
        {
            if ( log )
                gdprintk(XENLOG_WARNING, "Misaligned PTE address %lx\n",
                         (unsigned long)addr);
            return NULL;
        }
        *gl1mfn = addr >> PAGE_SHIFT;
        if ( !mfn_valid(*gl1mfn) )
            return NULL;
        return (intpte_t *)((uint8_t *)map_domain_page(*gl1mfn) +
                            (addr & (PAGE_SIZE - 1)));
    }
    return map_guest_l1e(current, addr, gl1mfn);
}

/*
 * The L1 table gl1mfn that a grant PTE is in, referenced and locked so its
 * type cannot change under us; NULL, holding nothing, if d may not have it
 * or it is not an L1 table now.  unlock_gl1() releases it.
 */
static struct page_info *lock_gl1(mfn_t gl1mfn, struct domain *d)
{
    struct page_info *pg = mfn_to_page(gl1mfn);

    if ( !get_page(pg, d) )
        return NULL;
    if ( page_lock(pg) )
    {
        if ( (atomic_load(&pg->type_info) & PGT_type_mask) ==
             PGT_l1_page_table )
            return pg;
        page_unlock(pg);
    }
    put_page(pg);
    return NULL;
}

static void unlock_gl1(struct page_info *pg)
{
    page_unlock(pg);
    put_page(pg);
}

static int create_grant_pv_mapping(uint64_t addr, mfn_t frame,
                                   unsigned int flags)
{
    struct domain *currd = current->domain;
    intpte_t nl1e, ol1e, *pl1e;
    struct page_info *pg;
    mfn_t gl1mfn = 0;
    int rc = GNTST_general_error;

    nl1e = (frame << PAGE_SHIFT) | put_pte_flags(grant_to_pte_flags(flags));
    nl1e = adjust_guest_l1e(nl1e, currd);

    pl1e = locate_l1e(addr, flags, &gl1mfn, true);
    if ( !pl1e )
    {
        if ( !(flags & GNTMAP_contains_pte) )
            gdprintk(XENLOG_WARNING,
                     "Could not find L1 PTE for linear address %lx\n",
                     (unsigned long)addr);
        goto out;
    }

    pg = lock_gl1(gl1mfn, currd);
    if ( !pg )
        goto out;
    ol1e = pte_read(pl1e);
    pte_write(pl1e, nl1e);
    unlock_gl1(pg);

    /* The entry replaced is released as mod_l1_entry would. */
    put_page_from_l1e(ol1e, currd);
    rc = GNTST_okay;
 out:
    return rc;
}

/* Zap the grant PTE at addr, checking it still maps frame as granted. */
static int replace_grant_pv_mapping(uint64_t addr, mfn_t frame,
                                    unsigned int flags)
{
    struct domain *currd = current->domain;
    uint32_t gflags = grant_to_pte_flags(flags), oflags;
    intpte_t ol1e, *pl1e;
    struct page_info *pg;
    mfn_t gl1mfn = 0;
    int rc = GNTST_general_error;

    /* What adjust_guest_l1e() added when the mapping was made. */
    gflags |= (gflags & _PAGE_USER) ? FL_GLOBAL
                                    : (_PAGE_GUEST_KERNEL | _PAGE_USER);

    pl1e = locate_l1e(addr, flags, &gl1mfn, false);
    if ( !pl1e )
        goto out;

    pg = lock_gl1(gl1mfn, currd);
    if ( !pg )
        goto out;

    ol1e = pte_read(pl1e);
    oflags = get_pte_flags(ol1e);

    /* Is the entry still the grant's mapping, with its permissions? */
    if ( unlikely(pte_mfn(ol1e) != frame) ||
         unlikely((oflags ^ gflags) & (_PAGE_PRESENT | _PAGE_RW)) )
    {
        gdprintk(XENLOG_ERR, "PTE %lx for %lx doesn't match grant (%lx)\n",
                 (unsigned long)ol1e, (unsigned long)addr,
                 (unsigned long)((frame << PAGE_SHIFT) |
                                 put_pte_flags(gflags)));
        goto out_unlock;
    }
    if ( unlikely((oflags ^ gflags) & ~(_PAGE_AVAIL | FL_CACHE)) )
        gdprintk(XENLOG_WARNING,
                 "PTE flags %x for %lx don't match grant (%x)\n",
                 oflags, (unsigned long)addr, gflags);

    /* The grant, not the entry, owns the refs: no put_page_from_l1e. */
    pte_write(pl1e, 0);
    rc = GNTST_okay;

 out_unlock:
    unlock_gl1(pg);
 out:
    return rc;
}

/* ------------------------------------------------------------------------
 * map_grant_ref
 * ------------------------------------------------------------------------ */

/*
 * The granted frame with a general reference (check_get_page_from_gfn):
 * for PV the entry's frame is an MFN, for a translated granter a GFN.
 */
static int get_paged_frame(uint64_t gfn, mfn_t *mfn, struct page_info **pg,
                           struct domain *rd)
{
    mfn_t m = gfn_to_mfn(rd, gfn);

    if ( !mfn_valid(m) || !get_page(mfn_to_page(m), rd) )
        return GNTST_bad_page;
    *mfn = m;
    *pg = mfn_to_page(m);
    return GNTST_okay;
}

/*
 * Take the type references the mapping holds on top of its general one:
 * writable for a writable device or host mapping, plus a second general
 * reference when both kinds are made at once.
 */
static bool take_frame_refs(struct page_info *pg, struct domain *rd,
                            struct domain *ld, unsigned int flags,
                            unsigned int *refcnt, unsigned int *typecnt)
{
    bool ro = flags & GNTMAP_readonly;

    if ( (flags & GNTMAP_device_map) && !ro )
    {
        if ( !get_page_type(pg, PGT_writable_page) )
            return false;
        (*typecnt)++;
    }
    if ( flags & GNTMAP_host_map )
    {
        /* Only a second ref if device_map claimed the first one. */
        if ( flags & GNTMAP_device_map )
        {
            if ( !get_page(pg, rd) )
                return false;
            (*refcnt)++;
        }
        /* gnttab_host_mapping_get_page_type() */
        if ( !ro && (ld == rd || !rd->translated) )
        {
            if ( !get_page_type(pg, PGT_writable_page) )
                return false;
            (*typecnt)++;
        }
    }
    return true;
}

static void map_grant_ref(struct gnttab_map_grant_ref *op)
{
    struct domain *ld = current->domain, *rd, *owner = NULL;
    struct grant_table *lgt, *rgt = NULL;
    struct active_grant_entry *act;
    struct grant_entry_v1 *shah;
    struct page_info *pg = NULL;
    unsigned int refcnt = 0, typecnt = 0, pin_incr = 0;
    bool ro = op->flags & GNTMAP_readonly, host_map_created = false;
    grant_handle_t handle;
    grant_ref_t ref = op->ref;
    mfn_t mfn = INVALID_MFN;
    int rc = GNTST_okay;

    if ( op->flags & GNTMAP_device_map )
        pin_incr += ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
    if ( op->flags & GNTMAP_host_map )
        pin_incr += ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    if ( unlikely(!pin_incr) )
    {
        gdprintk(XENLOG_INFO, "Bad flags in grant map op: %x\n", op->flags);
        op->status = GNTST_bad_gntref;
        return;
    }

    if ( unlikely(ld->translated &&
                  (op->flags & (GNTMAP_device_map | GNTMAP_application_map |
                                GNTMAP_contains_pte))) )
    {
        gdprintk(XENLOG_INFO, "No device mapping in HVM domain\n");
        op->status = GNTST_general_error;
        return;
    }
    /* ferry does not model p2m host mappings (create_grant_p2m_mapping). */
    if ( unlikely(ld->translated) )
    {
        op->status = GNTST_general_error;
        return;
    }

    rd = lock_domain_by_id(op->dom);
    if ( unlikely(!rd) )
    {
        gdprintk(XENLOG_INFO, "Could not find domain %d\n", op->dom);
        op->status = GNTST_bad_domain;
        return;
    }

    lgt = grant_table_get(ld);
    handle = lgt ? get_maptrack_handle(lgt) : INVALID_MAPTRACK_HANDLE;
    if ( unlikely(handle == INVALID_MAPTRACK_HANDLE) )
    {
        put_domain(rd);
        gdprintk(XENLOG_INFO, "Failed to obtain maptrack handle\n");
        op->status = GNTST_no_space;
        return;
    }

    rgt = grant_table_get(rd);
    if ( !rgt )
    {
        gdprintk(XENLOG_WARNING, "Bad ref %#x for d%d\n", ref, rd->domain_id);
        rc = GNTST_bad_gntref;
        goto out_handle;
    }
    grant_table_lock(rgt);

    /* Bounds check on the grant ref. */
    if ( unlikely(ref >= nr_grant_entries(rgt)) )
    {
        gdprintk(XENLOG_WARNING, "Bad ref %#x for d%d\n", ref, rd->domain_id);
        rc = GNTST_bad_gntref;
        goto unlock_out;
    }

    shah = shared_entry(rgt, ref);
    act = &rgt->active[ref];

    /* If already pinned, check the active domid and avoid overflow. */
    if ( act->pin &&
         (act->domid != ld->domain_id ||
          (act->pin & GNTPIN_incr2oflow_mask(pin_incr))) )
    {
        gdprintk(XENLOG_WARNING,
                 "Bad domain (%d != %d), or risk of counter overflow %08x, or subpage %d\n",
                 act->domid, ld->domain_id, act->pin, 0);
        rc = GNTST_general_error;
        goto unlock_out;
    }

    if ( !act->pin ||
         (!ro && !(act->pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask))) )
    {
        rc = shah ? set_status_v1(shah, act->pin, ro, ld->domain_id)
                  : GNTST_general_error;
        if ( rc != GNTST_okay )
            goto unlock_out;

        if ( !act->pin )
        {
            uint32_t gfn = __atomic_load_n(&shah->frame, __ATOMIC_RELAXED);

            rc = get_paged_frame(gfn, &mfn, &pg, rd);
            if ( rc != GNTST_okay )
                goto unlock_out_clear;
            act->domid = ld->domain_id;
            act->mfn = mfn;
        }
    }

    act->pin += pin_incr;
    mfn = act->mfn;
    spin_unlock(&rgt->lock);

    /* pg may be set, with a reference included, by get_paged_frame(). */
    if ( !pg )
    {
        pg = mfn_valid(mfn) ? mfn_to_page(mfn) : NULL;
        if ( pg )
            owner = page_get_owner_and_reference(pg);
    }
    else
        owner = page_get_owner(pg);
    if ( owner )
        refcnt++;

    if ( !pg || owner == host.dom_io )
    {
        /* MMIO: ferry's granting domains have no iomem to grant. */
        if ( pg )
        {
            put_page(pg);
            refcnt--;
        }
        gdprintk(XENLOG_WARNING,
                 "Iomem mapping not permitted %#lx (domain %d)\n",
                 (unsigned long)mfn, rd->domain_id);
        rc = GNTST_general_error;
        goto undo_out;
    }
    if ( owner != rd ||
         !take_frame_refs(pg, rd, ld, op->flags, &refcnt, &typecnt) )
    {
        if ( !domain_is_dying(rd) )
            gdprintk(XENLOG_WARNING, "Could not pin grant frame %#lx\n",
                     (unsigned long)mfn);
        rc = GNTST_general_error;
        goto undo_out;
    }
    if ( op->flags & GNTMAP_host_map )
    {
        rc = create_grant_pv_mapping(op->host_addr, mfn, op->flags);
        if ( rc != GNTST_okay )
            goto undo_out;
        host_map_created = true;
    }

    /* Readers look at flags first: fill it last. */
    spin_lock(&lgt->lock);
    lgt->maptrack[handle].domid = op->dom;
    lgt->maptrack[handle].ref = ref;
    lgt->maptrack[handle].flags = (uint16_t)(op->flags & 0x1FU);
    spin_unlock(&lgt->lock);

    op->dev_bus_addr = mfn << PAGE_SHIFT;
    op->handle = handle;
    op->status = GNTST_okay;
    put_domain(rd);
    return;

 undo_out:
    if ( host_map_created )
    {
        replace_grant_pv_mapping(op->host_addr, mfn, op->flags);
        flush_tlb_domain(ld);
    }
    while ( typecnt-- )
        put_page_type(pg);
    while ( refcnt-- )
        put_page(pg);

    spin_lock(&rgt->lock);
    shah = shared_entry(rgt, ref);
    act = &rgt->active[ref];
    act->pin -= pin_incr;
 unlock_out_clear:
    reduce_status_for_pin(shah, act, ro);
 unlock_out:
    spin_unlock(&rgt->lock);
 out_handle:
    op->status = (int16_t)rc;
    put_maptrack_handle(lgt, handle);
    put_domain(rd);
}

/* ------------------------------------------------------------------------
 * unmap_grant_ref
 * ------------------------------------------------------------------------ */

static void unmap_common(struct gnttab_unmap_common *op)
{
    struct domain *ld = current->domain, *rd;
    struct grant_table *lgt = gt_of(ld), *rgt;
    struct grant_mapping *map;
    unsigned int flags;
    grant_ref_t ref;
    domid_t dom;
    int rc = GNTST_okay;

    if ( lgt )
        spin_lock(&lgt->lock);
    if ( unlikely(!lgt || op->handle >= lgt->maptrack_limit) )
    {
        if ( lgt )
            spin_unlock(&lgt->lock);
        gdprintk(XENLOG_INFO, "Bad d%d handle %#x\n", ld->domain_id,
                 op->handle);
        op->status = GNTST_bad_handle;
        return;
    }
    map = &lgt->maptrack[op->handle];
    if ( unlikely(!map->flags) )
    {
        spin_unlock(&lgt->lock);
        gdprintk(XENLOG_INFO, "Zero flags for d%d handle %#x\n",
                 ld->domain_id, op->handle);
        op->status = GNTST_bad_handle;
        return;
    }
    if ( unlikely(map->busy) )
    {
        /* Another unmap of this handle is in flight. */
        spin_unlock(&lgt->lock);
        gdprintk(XENLOG_WARNING, "Unstable handle %#x\n", op->handle);
        op->status = GNTST_bad_handle;
        return;
    }
    dom = map->domid;
    ref = map->ref;
    flags = map->flags;
    map->busy = true;
    spin_unlock(&lgt->lock);

    rd = get_domain_by_id(dom);
    if ( unlikely(!rd) )
    {
        /* This can happen when a grant is implicitly unmapped. */
        gdprintk(XENLOG_INFO, "Could not find domain %d\n", dom);
        domain_shutdown(ld, SHUTDOWN_crash);      /* naughty... */
        spin_lock(&lgt->lock);
        lgt->maptrack[op->handle].busy = false;
        spin_unlock(&lgt->lock);
        return;
    }

    rgt = gt_of(rd);
    spin_lock(&rgt->lock);
    if ( unlikely(ref >= nr_grant_entries(rgt)) )
    {
        spin_unlock(&rgt->lock);
        gdprintk(XENLOG_WARNING, "Unstable d%d handle %#x\n", rd->domain_id,
                 op->handle);
        rc = GNTST_bad_handle;
        goto out;
    }
    op->mfn = rgt->active[ref].mfn;
    op->ref = ref;
    spin_unlock(&rgt->lock);

    if ( op->dev_bus_addr && (flags & GNTMAP_device_map) &&
         unlikely(op->dev_bus_addr != (op->mfn << PAGE_SHIFT)) )
    {
        gdprintk(XENLOG_WARNING,
                 "Bus address doesn't match gntref (%lx != %lx)\n",
                 (unsigned long)op->dev_bus_addr,
                 (unsigned long)(op->mfn << PAGE_SHIFT));
        rc = GNTST_bad_dev_addr;
        goto out;
    }

    if ( op->host_addr && (flags & GNTMAP_host_map) )
    {
        rc = replace_grant_pv_mapping(op->host_addr, op->mfn, flags);
        if ( rc < 0 )
            goto out;
        op->done |= GNTMAP_host_map | (flags & GNTMAP_readonly);
    }
    if ( op->dev_bus_addr && (flags & GNTMAP_device_map) )
        op->done |= GNTMAP_device_map | (flags & GNTMAP_readonly);

 out:
    spin_lock(&lgt->lock);
    map = &lgt->maptrack[op->handle];
    map->flags &= ~(op->done & (GNTMAP_host_map | GNTMAP_device_map));
    map->busy = false;
    if ( !(map->flags & (GNTMAP_host_map | GNTMAP_device_map)) )
        __put_maptrack_handle(lgt, op->handle);
    spin_unlock(&lgt->lock);

    /* A writable mapping went: the frame may have been written. */
    if ( rc == GNTST_okay && !(flags & GNTMAP_readonly) && op->done )
        paging_mark_dirty(rd, op->mfn);

    op->status = (int16_t)rc;
    op->rd = rd;
}

/* Drop what the mapping held, now that the TLBs are flushed. */
static void unmap_common_complete(struct gnttab_unmap_common *op)
{
    struct domain *rd = op->rd;
    struct grant_table *rgt;
    struct active_grant_entry *act;
    struct page_info *pg;
    bool ro = op->done & GNTMAP_readonly;
    uint32_t unpin = 0;

    if ( !rd )
        return;
    if ( !op->done )
        goto out;

    pg = !is_iomem_page(op->mfn) ? mfn_to_page(op->mfn) : NULL;
    if ( op->done & GNTMAP_device_map )
    {
        if ( pg )
        {
            if ( ro )
                put_page(pg);
            else
                put_page_and_type(pg);
        }
        unpin += ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
    }
    if ( op->done & GNTMAP_host_map )
    {
        if ( pg )
        {
            if ( !ro && !rd->translated )
                put_page_type(pg);
            put_page(pg);
        }
        unpin += ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    }

    rgt = gt_of(rd);
    spin_lock(&rgt->lock);
    act = &rgt->active[op->ref];
    ASSERT(act->pin >= unpin);
    act->pin -= unpin;
    reduce_status_for_pin(shared_entry(rgt, op->ref), act, ro);
    spin_unlock(&rgt->lock);

 out:
    op->rd = NULL;
    put_domain(rd);
}

static long gnttab_unmap_grant_ref(struct gnttab_unmap_grant_ref *uop,
                                   unsigned int count)
{
    struct gnttab_unmap_common common[GNTTAB_UNMAP_BATCH_SIZE];

    while ( count )
    {
        unsigned int c = min(count, GNTTAB_UNMAP_BATCH_SIZE);

        for ( unsigned int i = 0; i < c; i++ )
        {
            memset(&common[i], 0, sizeof(common[i]));
            common[i].host_addr = uop[i].host_addr;
            common[i].dev_bus_addr = uop[i].dev_bus_addr;
            common[i].handle = uop[i].handle;
            common[i].mfn = INVALID_MFN;
            common[i].status = uop[i].status;
            unmap_common(&common[i]);
            uop[i].status = common[i].status;
        }

        flush_tlb_domain(current->domain);

        for ( unsigned int i = 0; i < c; i++ )
            unmap_common_complete(&common[i]);

        uop += c;
        count -= c;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * setup_table, query_size
 * ------------------------------------------------------------------------ */

/* What the guest uses to name grant frame i: MFN for PV, else its GFN. */
static uint64_t gnttab_shared_gfn(struct domain *d, struct grant_table *gt,
                                  unsigned int i)
{
    /* A dead domain's frames may be back in the heap already. */
    if ( !gt->shared[i] )
        return INVALID_GFN;
    if ( d->translated )
        return page_get_xenheap_gfn(mfn_to_page(gt->shared[i]));
    return gt->shared[i];
}

/*
 * The domain that setup_table or query_size names, referenced in *dp, and
 * its grant table, locked: the caller unlocks the table and puts *dp.
 * NULL, with *status saying why, if the caller may not have it.
 */
static struct grant_table *gnttab_lock_target(domid_t dom, int16_t *status,
                                              struct domain **dp)
{
    struct domain *d = lock_domain_by_any_id(dom);
    struct grant_table *gt = NULL;

    if ( !d )
    {
        *status = GNTST_bad_domain;
        return NULL;
    }
    if ( !xsm_target_ok(current->domain, d) )
        *status = GNTST_permission_denied;
    else if ( !(gt = grant_table_get(d)) )
        *status = GNTST_general_error;
    if ( !gt )
    {
        put_domain(d);
        return NULL;
    }

    grant_table_lock(gt);
    *dp = d;
    return gt;
}

static long gnttab_setup_table(struct gnttab_setup_table *op,
                               unsigned int count)
{
    struct domain *d;
    struct grant_table *gt;

    if ( count != 1 )
        return -EINVAL;
    if ( !op || (op->nr_frames && !op->frame_list) )
        return -EFAULT;

    gt = gnttab_lock_target(op->dom, &op->status, &d);
    if ( !gt )
        return 0;
    if ( unlikely(op->nr_frames > MAX_GRANT_FRAMES) )
    {
        gdprintk(XENLOG_INFO, "d%d is limited to %u grant-table frames\n",
                 d->domain_id, MAX_GRANT_FRAMES);
        op->status = GNTST_general_error;
        goto out;
    }
    if ( op->nr_frames > gt->nr_grant_frames &&
         gnttab_grow_table(gt, op->nr_frames) )
    {
        gdprintk(XENLOG_INFO,
                 "Expand grant table of d%d to %u failed. Current: %u Max: %u\n",
                 d->domain_id, op->nr_frames, gt->nr_grant_frames,
                 MAX_GRANT_FRAMES);
        op->status = GNTST_general_error;
        goto out;
    }

    op->status = GNTST_okay;
    for ( unsigned int i = 0; i < op->nr_frames; i++ )
        op->frame_list[i] = gnttab_shared_gfn(d, gt, i);

 out:
    spin_unlock(&gt->lock);
    put_domain(d);
    return 0;
}

static long gnttab_query_size(struct gnttab_query_size *op,
                              unsigned int count)
{
    struct domain *d;
    struct grant_table *gt;

    if ( count != 1 )
        return -EINVAL;
    if ( !op )
        return -EFAULT;

    gt = gnttab_lock_target(op->dom, &op->status, &d);
    if ( !gt )
        return 0;
    op->nr_frames = gt->nr_grant_frames;
    op->max_nr_frames = MAX_GRANT_FRAMES;
    op->status = GNTST_okay;
    spin_unlock(&gt->lock);
    put_domain(d);
    return 0;
}

long do_grant_table_op(unsigned int cmd, void *uop, unsigned int count)
{
    ASSERT(current);

    if ( (int)count < 0 )
        return -EINVAL;

    switch ( cmd )
    {
    case GNTTABOP_map_grant_ref:
    {
        struct gnttab_map_grant_ref *op = uop;

        if ( count && !op )
            return -EFAULT;
        for ( unsigned int i = 0; i < count; i++ )
            map_grant_ref(&op[i]);
        return 0;
    }
    case GNTTABOP_unmap_grant_ref:
        if ( count && !uop )
            return -EFAULT;
        return gnttab_unmap_grant_ref(uop, count);
    case GNTTABOP_setup_table:
        return gnttab_setup_table(uop, count);
    case GNTTABOP_query_size:
        return gnttab_query_size(uop, count);
    default:
        return -ENOSYS;
    }
}

/* ------------------------------------------------------------------------
 * XENMAPSPACE_grant_table (memory.c's add_to_physmap)
 * ------------------------------------------------------------------------ */

int gnttab_map_frame_begin(struct domain *d, unsigned long idx, mfn_t *mfn)
{
    struct grant_table *gt = grant_table_get(d);
    int rc = 0;

    if ( !gt )
        return -EINVAL;
    grant_table_lock(gt);
    /* Status frames exist only in version 2. */
    if ( idx & XENMAPIDX_grant_table_status )
        rc = -EINVAL;
    else if ( idx >= gt->nr_grant_frames )
    {
        if ( idx + 1 <= MAX_GRANT_FRAMES )
            gnttab_grow_table(gt, (unsigned int)idx + 1);
        if ( idx >= gt->nr_grant_frames )
            rc = -EINVAL;
    }
    if ( !rc )
    {
        *mfn = gt->shared[idx];
        /* Hold the frame while our caller maps it. */
        if ( !get_page(mfn_to_page(*mfn), d) )
            rc = -EBUSY;
    }
    if ( rc )
        spin_unlock(&gt->lock);
    return rc;
}

void gnttab_map_frame_end(struct domain *d, mfn_t mfn)
{
    put_page(mfn_to_page(mfn));
    spin_unlock(&gt_of(d)->lock);
}

/* ------------------------------------------------------------------------
 * Destruction
 * ------------------------------------------------------------------------ */

/*
 * The dying domain d's mappings of other domains' grants.  A PV host
 * mapping's page references belong to its PTE and go when d's page tables
 * are torn down; only the granters' pin counts are dropped here.  Device
 * mappings have no PTE: their references go now.
 */
int gnttab_release_mappings(struct domain *d)
{
    struct grant_table *gt = gt_of(d);
    unsigned int h = 0;

    if ( !gt )
        return 0;
    BUG_ON(!domain_is_dying(d));

    for ( ; ; )
    {
        struct grant_table *rgt;
        struct active_grant_entry *act;
        struct page_info *pg;
        struct domain *rd;
        unsigned int flags, puts_type = 0, puts = 0;
        grant_ref_t ref;
        domid_t dom;
        bool ro;

        spin_lock(&gt->lock);
        while ( h < gt->maptrack_limit &&
                !(gt->maptrack[h].flags &
                  (GNTMAP_host_map | GNTMAP_device_map)) )
            h++;
        if ( h == gt->maptrack_limit )
        {
            spin_unlock(&gt->lock);
            break;
        }
        flags = gt->maptrack[h].flags;
        ref = gt->maptrack[h].ref;
        dom = gt->maptrack[h].domid;
        __put_maptrack_handle(gt, h);
        spin_unlock(&gt->lock);

        gdprintk(XENLOG_INFO, "Grant release %#x ref %#x flags %#x d%d\n",
                 h, ref, flags, dom);
        ro = flags & GNTMAP_readonly;

        rd = get_domain_by_id(dom);
        if ( !rd )
            continue;               /* nothing to clear up */
        rgt = gt_of(rd);
        spin_lock(&rgt->lock);
        act = &rgt->active[ref];
        pg = !is_iomem_page(act->mfn) ? mfn_to_page(act->mfn) : NULL;
        if ( flags & GNTMAP_device_map )
        {
            BUG_ON(!(act->pin & (ro ? GNTPIN_devr_mask : GNTPIN_devw_mask)));
            act->pin -= ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
            puts++;
            puts_type += !ro;
        }
        if ( flags & GNTMAP_host_map )
        {
            BUG_ON(!(act->pin & (ro ? GNTPIN_hstr_mask : GNTPIN_hstw_mask)));
            act->pin -= ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
            /* gnttab_release_host_mappings(): external domains only. */
            if ( d->translated )
            {
                puts++;
                puts_type += !ro && !rd->translated;
            }
        }
        reduce_status_for_pin(shared_entry(rgt, ref), act, ro);
        spin_unlock(&rgt->lock);

        while ( pg && puts_type-- )
            put_page_type(pg);
        while ( pg && puts-- )
            put_page(pg);
        put_domain(rd);

        if ( hypercall_preempt_check() )
            return -ERESTART;
    }
    return 0;
}

/*
 * The end of destruction: give back every grant frame nothing references
 * any more.  A frame still mapped by someone (a privileged foreign mapping)
 * waits for grant_table_free().
 */
void grant_table_destroy(struct domain *d)
{
    struct grant_table *gt = gt_of(d);

    if ( !gt )
        return;
    spin_lock(&gt->lock);
    for ( unsigned int i = 0; i < gt->nr_grant_frames; i++ )
        if ( gt->shared[i] && free_xenheap_frame_if_unused(d, gt->shared[i]) )
            gt->shared[i] = 0;
    spin_unlock(&gt->lock);
}

/* The last reference to d went: free the table. */
void grant_table_free(struct domain *d)
{
    struct grant_table *gt = gt_of(d);

    if ( !gt )
        return;
    for ( unsigned int i = 0; i < gt->nr_grant_frames; i++ )
        if ( gt->shared[i] && !free_xenheap_frame_if_unused(d, gt->shared[i]) )
            printk("d%u: grant frame %#lx still referenced, leaked\n",
                   d->domain_id, (unsigned long)gt->shared[i]);
    d->grant_table = NULL;
    free(gt->active);
    free(gt->maptrack);
    spin_lock_destroy(&gt->lock);
    free(gt);
}

/*
 * The auditor's view of device mappings.  A GNTMAP_device_map mapping has
 * no PTE to own its references: map_grant_ref took one general reference
 * on the granted frame and, unless read-only, one writable type reference,
 * and unmap_grant_ref drops them.  Its pin count in the granter's active
 * entry (devr, devw) counts those mappings, so it counts those references.
 */
void gnttab_audit_device_pins(struct domain *rd,
                              void (*fn)(void *arg, domid_t mapper, mfn_t mfn,
                                         unsigned int nr_ro,
                                         unsigned int nr_rw),
                              void *arg)
{
    struct grant_table *gt = gt_of(rd);

    if ( !gt )
        return;
    spin_lock(&gt->lock);
    for ( unsigned int i = 0; i < nr_grant_entries(gt); i++ )
    {
        const struct active_grant_entry *act = &gt->active[i];
        unsigned int ro = (act->pin & GNTPIN_devr_mask) / GNTPIN_devr_inc;
        unsigned int rw = (act->pin & GNTPIN_devw_mask) / GNTPIN_devw_inc;

        if ( ro || rw )
            fn(arg, act->domid, act->mfn, ro, rw);
    }
    spin_unlock(&gt->lock);
}
