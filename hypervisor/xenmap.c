/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor's own address space: map_pages_to_xen and friends
 * (xen/arch/x86/mm.c), with Xen's superpage handling and the XSA-345
 * per-L3 lock.
 *
 * DESIGN
 *
 * Xen's own page tables are real x86-64 4-level tables, kept in machine
 * frames taken from the heap and rooted at host.idle_pg_table, the "idle
 * page table" L4.  Guests see part of them: init_xen_l4_slots (pt.c) copies
 * L4 slots 261..271 of the idle table into every guest L4, and slot 256 (the
 * read-only M2P) into those that ask for it.  Nothing but ferry's own code
 * walks these tables for the hypervisor (there is no MMU under ferry-hv),
 * yet they hold exactly what Xen's would, so that xen_map_to_mfn, the
 * guest's view of the M2P and the tests can check them entry by entry.
 *
 * Layout (hv.h): slot 256 the guest-readable M2P, slot 261 the read-write
 * M2P and the vmap area, slots 262..271 a direct map of all machine memory.
 * The L3 tables of slots 256 and 261..271 are made by xenmap_init and live
 * until xenmap_dispose: guests copy those L4 entries once, so an L3 made
 * later would never reach them.  No L3 table is ever freed while the host
 * runs (Xen frees only L2 and L1 tables), which is what makes a lock word
 * in the L3 table's page_info safe to use.
 *
 * Table frames: allocated zeroed from the heap, owned by DOMID_XEN with
 * count_info = PGC_xen_heap | PGC_state_inuse | 1 (like the M2P frames);
 * their type_info is unused except for PGT_locked on L3 tables.  A table
 * frame goes back to the heap only through free_xen_pagetable, which
 * claims it with a cmpxchg on count_info, so freeing the same table twice
 * (the second race of XSA-345) stops the hypervisor at once.
 *
 * Superpages: map_pages_to_xen writes a 1 GiB or 2 MiB entry whenever the
 * virtual frame number and the MFN are both aligned to it, enough frames
 * are left and the caller did not ask for MAP_SMALL_PAGES (or PAT, which
 * shares the PSE bit).  Mapping 4 KiB inside a superpage that does not
 * already map exactly that frame splits ("shatters") the superpage into a
 * lower table of 512 equivalent entries.  With PAGE_HYPERVISOR flags, a
 * lower table whose 512 entries map consecutive frames from an aligned
 * base with identical flags is replaced by one superpage entry and freed,
 * first at L2 and then at L3.  modify_xen_mappings changes flags and
 * destroy_xen_mappings removes mappings, shattering superpages they only
 * partly cover and freeing L1/L2 tables they empty.
 *
 * CONCURRENCY (XSA-345, Xen commit 1ce75e99d7)
 *
 * Entries are read and written with atomic loads and stores, since the
 * L4 is read without any lock.  Every per-iteration update of
 * map_pages_to_xen and modify_xen_mappings, and every xen_map_to_mfn,
 * holds the lock of the L3 table it goes through: PGT_locked in that
 * page's type_info, taken by a cmpxchg loop that leaves the rest of the
 * word alone.  One lock covers 512 GiB of address space.  Without it two
 * races corrupt the tables: (1) a thread holding a pointer into an L2 (or
 * L1) while another replaces the L3 (or L2) entry by a superpage and frees
 * that table, so the first writes into a freed frame; (2) two threads that
 * both read the same L3 entry, both write a 1 GiB entry and both free the
 * old L2 and its L1s.  map_pgdir_lock, a global spinlock, still guards the
 * install of a newly allocated table and the re-check before coalescing.
 * Lock order: page_lock -> L3 lock -> map_pgdir_lock -> heap_lock; nothing
 * here takes a page_lock.
 *
 * Differences from Xen: there is no TLB, so the flushes Xen issues before
 * freeing a table have nothing to do; the L3 lock is always taken (Xen
 * skips it during early boot, when only one CPU runs); xen_map_to_mfn does
 * not allocate an L3 for an empty L4 slot, it just answers INVALID_MFN.
 */
#include "hv.h"

#ifndef PAGETABLE_ORDER
#define PAGETABLE_ORDER 9
#endif
#define PT_ENTRIES      (1U << PAGETABLE_ORDER)
#define L2_SHIFT        21
#define L3_SHIFT        30
#define L4_SHIFT        39
/* Frames covered by one L2 entry (2 MiB) and one L3 entry (1 GiB). */
#define L2_FRAMES       (1UL << (L2_SHIFT - PAGE_SHIFT))
#define L3_FRAMES       (1UL << (L3_SHIFT - PAGE_SHIFT))

#define l1_off(v) ((unsigned int)((v) >> PAGE_SHIFT) & (PT_ENTRIES - 1))
#define l2_off(v) ((unsigned int)((v) >> L2_SHIFT) & (PT_ENTRIES - 1))
#define l3_off(v) ((unsigned int)((v) >> L3_SHIFT) & (PT_ENTRIES - 1))
#define l4_off(v) ((unsigned int)((v) >> L4_SHIFT) & (PT_ENTRIES - 1))

/* Count_info of every table frame while it is in use. */
#define XEN_PT_COUNT_INFO (PGC_xen_heap | PGC_state_inuse | 1)

/* The only flags modify_xen_mappings changes. */
#define MODIFY_FLAGS_MASK (_PAGE_NX | _PAGE_DIRTY | _PAGE_ACCESSED | \
                           _PAGE_RW | _PAGE_PRESENT)

_Atomic bool hv_xenmap_widen_races;

static spinlock_t map_pgdir_lock = { PTHREAD_MUTEX_INITIALIZER };
static _Atomic uint64_t nr_xen_pt_frames;

/* ------------------------------------------------------------------------
 * Entries
 * ------------------------------------------------------------------------ */

static inline intpte_t read_pte(const intpte_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void write_pte(intpte_t *p, intpte_t e)
{
    __atomic_store_n(p, e, __ATOMIC_RELEASE);
}

static inline intpte_t pte_from_mfn(mfn_t mfn, uint64_t flags)
{
    return ((mfn << PAGE_SHIFT) & PTE_MFN_MASK) | (flags & ~PTE_MFN_MASK);
}

static inline uint64_t pte_get_flags(intpte_t e)
{
    return e & ~PTE_MFN_MASK;
}

static inline bool pte_present(intpte_t e)
{
    return e & _PAGE_PRESENT;
}

/* Present and a superpage (only meaningful in L2 and L3 entries). */
static inline bool pte_is_super(intpte_t e)
{
    return (e & (_PAGE_PRESENT | _PAGE_PSE)) == (_PAGE_PRESENT | _PAGE_PSE);
}

/* Leaf flags to superpage flags and back (Xen's l1f_to_lNf/lNf_to_l1f). */
static inline uint64_t l1f_to_lNf(uint64_t f)
{
    return (f & _PAGE_PRESENT) ? (f | _PAGE_PSE) : f;
}

static inline uint64_t lNf_to_l1f(uint64_t f)
{
    return (f & _PAGE_PRESENT) ? (f & ~_PAGE_PSE) : f;
}

static inline intpte_t *xen_table(mfn_t mfn)
{
    return map_domain_page(mfn);
}

/* The page_info of the table that holds entry p. */
static inline struct page_info *table_page_of(const intpte_t *p)
{
    return mfn_to_page(((const uint8_t *)p - host.mem) >> PAGE_SHIFT);
}

/*
 * Can (virt, mfn) start an entry covering 2^order frames?  Only the
 * alignment of present mappings matters, so a non-present one uses mfn 0.
 */
static inline bool lne_aligned(uint64_t virt, mfn_t mfn, uint64_t flags,
                               uint64_t frames)
{
    if ( !(flags & _PAGE_PRESENT) )
        mfn = 0;
    return !(((virt >> PAGE_SHIFT) | mfn) & (frames - 1));
}

/*
 * Test hook: give the CPU away between reading an entry and acting on it,
 * so that on a machine with few cores the races of XSA-345 can happen.
 * One window in eight is enough to lose them all without the L3 lock, and
 * keeps the threads that wait for that lock from starving the test.
 */
static inline void race_window(void)
{
    static _Thread_local unsigned int tick;

    if ( atomic_load_explicit(&hv_xenmap_widen_races, memory_order_relaxed) &&
         !(++tick & 7) )
        cpu_relax();
}

/* ------------------------------------------------------------------------
 * Table frames
 * ------------------------------------------------------------------------ */

/* A zeroed table frame owned by DOMID_XEN, or INVALID_MFN. */
static mfn_t alloc_xen_pagetable(void)
{
    struct page_info *pg = alloc_heap_pages(0, 0);

    if ( !pg )
        return INVALID_MFN;
    page_set_owner(pg, host.dom_xen);
    atomic_store(&pg->count_info, XEN_PT_COUNT_INFO);
    atomic_fetch_add(&nr_xen_pt_frames, 1);
    return page_to_mfn(pg);
}

/*
 * Give a table frame back to the heap (INVALID_MFN: nothing to do).  The
 * cmpxchg claims the frame: a second free of the same table finds
 * count_info changed and is a hypervisor bug.
 */
static void free_xen_pagetable(mfn_t mfn)
{
    struct page_info *pg;

    if ( mfn == INVALID_MFN )
        return;
    pg = mfn_to_page(mfn);
    BUG_ON(page_get_owner(pg) != host.dom_xen);
    BUG_ON(cmpxchg64(&pg->count_info, XEN_PT_COUNT_INFO, PGC_state_inuse) !=
           XEN_PT_COUNT_INFO);
    BUG_ON(atomic_load(&pg->type_info) & PGT_locked);
    page_set_owner(pg, NULL);
    atomic_fetch_sub(&nr_xen_pt_frames, 1);
    free_heap_pages(pg, 0, true);
}

uint64_t hv_xenmap_nr_tables(void)
{
    return atomic_load(&nr_xen_pt_frames);
}

/* Free the L2 table of a non-superpage L3 entry and the L1s under it. */
static void free_xen_l2_tree(intpte_t l3e)
{
    intpte_t *l2t = xen_table(pte_mfn(l3e));

    for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
    {
        intpte_t l2e = read_pte(&l2t[i]);

        if ( pte_present(l2e) && !(l2e & _PAGE_PSE) )
            free_xen_pagetable(pte_mfn(l2e));
    }
    free_xen_pagetable(pte_mfn(l3e));
}

/* ------------------------------------------------------------------------
 * The XSA-345 L3 table lock
 * ------------------------------------------------------------------------ */

static void l3t_lock(struct page_info *pg)
{
    uint64_t x;

    do {
        while ( (x = atomic_load(&pg->type_info)) & PGT_locked )
            cpu_relax();
    } while ( cmpxchg64(&pg->type_info, x, x | PGT_locked) != x );
}

static void l3t_unlock(struct page_info *pg)
{
    uint64_t x, y = atomic_load(&pg->type_info);

    do {
        x = y;
        BUG_ON(!(x & PGT_locked));
    } while ( (y = cmpxchg64(&pg->type_info, x, x & ~PGT_locked)) != x );
}

/* Release the L3 lock held in *held, if any (Xen's L3T_UNLOCK). */
static void l3t_unlock_held(struct page_info **held)
{
    if ( *held )
    {
        l3t_unlock(*held);
        *held = NULL;
    }
}

/* ------------------------------------------------------------------------
 * Walking and populating (virt_to_xen_l3e / l2e / l1e)
 *
 * Each returns a pointer to the entry for v, allocating a missing lower
 * table and installing it under map_pgdir_lock (another thread may have
 * installed one meanwhile: then ours goes back), or NULL when no frame is
 * left.  The caller of virt_to_xen_l2e/l1e holds the L3 lock, so the level
 * above cannot have become a superpage; finding one is a hypervisor bug.
 * ------------------------------------------------------------------------ */

/* Install a new table below *pe unless some thread already did. */
static intpte_t *populate_entry(intpte_t *pe)
{
    intpte_t e = read_pte(pe);

    if ( !pte_present(e) )
    {
        mfn_t mfn = alloc_xen_pagetable();

        if ( mfn == INVALID_MFN )
            return NULL;
        spin_lock(&map_pgdir_lock);
        if ( !pte_present(read_pte(pe)) )
        {
            write_pte(pe, pte_from_mfn(mfn, __PAGE_HYPERVISOR));
            mfn = INVALID_MFN;
        }
        spin_unlock(&map_pgdir_lock);
        free_xen_pagetable(mfn);
        e = read_pte(pe);
    }
    BUG_ON(e & _PAGE_PSE);
    return xen_table(pte_mfn(e));
}

static intpte_t *virt_to_xen_l3e(uint64_t v)
{
    intpte_t *l3t = populate_entry(xen_table(host.idle_pg_table) + l4_off(v));

    return l3t ? l3t + l3_off(v) : NULL;
}

static intpte_t *virt_to_xen_l2e(uint64_t v)
{
    intpte_t *pl3e = virt_to_xen_l3e(v), *l2t;

    if ( !pl3e )
        return NULL;
    l2t = populate_entry(pl3e);
    return l2t ? l2t + l2_off(v) : NULL;
}

static intpte_t *virt_to_xen_l1e(uint64_t v)
{
    intpte_t *pl2e = virt_to_xen_l2e(v), *l1t;

    if ( !pl2e )
        return NULL;
    race_window();
    l1t = populate_entry(pl2e);
    return l1t ? l1t + l1_off(v) : NULL;
}

/* The L3 entry of v if its L3 table exists (no allocation), else NULL. */
static intpte_t *lookup_xen_l3e(uint64_t v)
{
    intpte_t l4e = read_pte(xen_table(host.idle_pg_table) + l4_off(v));

    return pte_present(l4e) ? xen_table(pte_mfn(l4e)) + l3_off(v) : NULL;
}

/* ------------------------------------------------------------------------
 * Shattering superpages
 *
 * Build a lower table of 512 entries equivalent to superpage entry `old`
 * (read under the L3 lock), then install it under map_pgdir_lock only if
 * the entry is still a superpage; otherwise the new table goes back.
 * ------------------------------------------------------------------------ */

static int shatter_l3e(intpte_t *pl3e, intpte_t ol3e)
{
    mfn_t l2mfn = alloc_xen_pagetable();
    intpte_t *l2t;

    if ( l2mfn == INVALID_MFN )
        return -ENOMEM;
    l2t = xen_table(l2mfn);
    for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
        write_pte(&l2t[i], pte_from_mfn(pte_mfn(ol3e) + i * L2_FRAMES,
                                        pte_get_flags(ol3e)));

    spin_lock(&map_pgdir_lock);
    if ( pte_is_super(read_pte(pl3e)) )
    {
        write_pte(pl3e, pte_from_mfn(l2mfn, __PAGE_HYPERVISOR));
        l2mfn = INVALID_MFN;
    }
    spin_unlock(&map_pgdir_lock);
    free_xen_pagetable(l2mfn);
    return 0;
}

static int shatter_l2e(intpte_t *pl2e, intpte_t ol2e)
{
    mfn_t l1mfn = alloc_xen_pagetable();
    intpte_t *l1t;

    if ( l1mfn == INVALID_MFN )
        return -ENOMEM;
    l1t = xen_table(l1mfn);
    for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
        write_pte(&l1t[i], pte_from_mfn(pte_mfn(ol2e) + i,
                                        lNf_to_l1f(pte_get_flags(ol2e))));

    spin_lock(&map_pgdir_lock);
    if ( pte_is_super(read_pte(pl2e)) )
    {
        write_pte(pl2e, pte_from_mfn(l1mfn, __PAGE_HYPERVISOR));
        l1mfn = INVALID_MFN;
    }
    spin_unlock(&map_pgdir_lock);
    free_xen_pagetable(l1mfn);
    return 0;
}

/*
 * Does superpage entry `super`, covering `frames` frames, already map
 * mfn at virt with these flags (ignoring A and D)?
 */
static bool super_maps(intpte_t super, uint64_t frames, uint64_t virt,
                       mfn_t mfn, uint64_t flags)
{
    uint64_t off = (virt >> PAGE_SHIFT) & (frames - 1);

    return (pte_mfn(super) & ~(frames - 1)) + off == mfn &&
           !((lNf_to_l1f(pte_get_flags(super)) ^ flags) &
             ~(_PAGE_ACCESSED | _PAGE_DIRTY));
}

/* ------------------------------------------------------------------------
 * Coalescing (flags == PAGE_HYPERVISOR only)
 *
 * Both re-read the entry under map_pgdir_lock, because it may have been
 * cleared or made a superpage by another path, and give up if so.
 * ------------------------------------------------------------------------ */

enum coalesce_result { CO_GONE, CO_SUPER, CO_TABLE };

/* L1 of *pl2e to a 2 MiB entry.  CO_GONE: the L2 entry was not present. */
static enum coalesce_result coalesce_l2e(intpte_t *pl2e, uint64_t flags)
{
    intpte_t ol2e, *l1t;
    mfn_t base;
    unsigned int i;

    spin_lock(&map_pgdir_lock);
    ol2e = read_pte(pl2e);
    if ( !pte_present(ol2e) || (ol2e & _PAGE_PSE) )
    {
        spin_unlock(&map_pgdir_lock);
        return pte_present(ol2e) ? CO_SUPER : CO_GONE;
    }
    l1t = xen_table(pte_mfn(ol2e));
    base = pte_mfn(read_pte(&l1t[0])) & ~(mfn_t)(PT_ENTRIES - 1);
    for ( i = 0; i < PT_ENTRIES; i++ )
    {
        intpte_t l1e = read_pte(&l1t[i]);

        if ( pte_mfn(l1e) != base + i || pte_get_flags(l1e) != flags )
            break;
    }
    if ( i < PT_ENTRIES )
    {
        spin_unlock(&map_pgdir_lock);
        return CO_TABLE;
    }
    write_pte(pl2e, pte_from_mfn(base, l1f_to_lNf(flags)));
    spin_unlock(&map_pgdir_lock);
    free_xen_pagetable(pte_mfn(ol2e));
    return CO_SUPER;
}

/* L2 of *pl3e, all 2 MiB entries, to a 1 GiB entry. */
static void coalesce_l3e(intpte_t *pl3e, uint64_t flags)
{
    intpte_t ol3e, *l2t;
    mfn_t base;
    unsigned int i;

    spin_lock(&map_pgdir_lock);
    ol3e = read_pte(pl3e);
    if ( !pte_present(ol3e) || (ol3e & _PAGE_PSE) )
        goto unlock;
    l2t = xen_table(pte_mfn(ol3e));
    base = pte_mfn(read_pte(&l2t[0])) & ~(L3_FRAMES - 1);
    for ( i = 0; i < PT_ENTRIES; i++ )
    {
        intpte_t l2e = read_pte(&l2t[i]);

        if ( pte_mfn(l2e) != base + i * L2_FRAMES ||
             pte_get_flags(l2e) != l1f_to_lNf(flags) )
            break;
    }
    if ( i < PT_ENTRIES )
        goto unlock;
    write_pte(pl3e, pte_from_mfn(base, l1f_to_lNf(flags)));
    spin_unlock(&map_pgdir_lock);
    free_xen_pagetable(pte_mfn(ol3e));
    return;

 unlock:
    spin_unlock(&map_pgdir_lock);
}

/* ------------------------------------------------------------------------
 * map_pages_to_xen
 * ------------------------------------------------------------------------ */

/* Where the next iteration of map_pages_to_xen starts. */
struct map_cursor
{
    uint64_t virt;
    mfn_t mfn;
    uint64_t nr;
};

static void cursor_advance(struct map_cursor *c, uint64_t frames)
{
    c->virt += frames << PAGE_SHIFT;
    if ( c->mfn != INVALID_MFN )
        c->mfn += frames;
    c->nr -= frames;
}

/* Frames from c to the end of the superpage (of `frames`) it lies in. */
static uint64_t to_super_end(const struct map_cursor *c, uint64_t frames)
{
    uint64_t left = frames - (c->mfn & (frames - 1));

    return min(left, c->nr);
}

/*
 * Map nr frames from mfn at virt with flags (INVALID_MFN with non-present
 * flags only builds the tables, as Xen's populate_pt_range).  Returns 0 or
 * -ENOMEM; mappings made before running out of frames stay.
 */
int map_pages_to_xen(uint64_t virt, mfn_t mfn, uint64_t nr, uint64_t flags)
{
    struct map_cursor c = { .virt = virt, .mfn = mfn, .nr = nr };
    struct page_info *l3page = NULL;
    bool may_super = !(flags & (_PAGE_PAT | MAP_SMALL_PAGES));
    int rc = -ENOMEM;

    while ( c.nr != 0 )
    {
        intpte_t *pl3e, *pl2e, *pl1e, ol3e, ol2e;

        /* One L3 lock per iteration: drop the previous one first. */
        l3t_unlock_held(&l3page);
        pl3e = virt_to_xen_l3e(c.virt);
        if ( !pl3e )
            goto out;
        l3page = table_page_of(pl3e);
        l3t_lock(l3page);
        ol3e = read_pte(pl3e);
        race_window();

        if ( may_super && c.nr >= L3_FRAMES &&
             lne_aligned(c.virt, c.mfn, flags, L3_FRAMES) )
        {
            /* A 1 GiB page: the old L2 and its L1s go. */
            write_pte(pl3e, pte_from_mfn(c.mfn, l1f_to_lNf(flags)));
            if ( pte_present(ol3e) && !(ol3e & _PAGE_PSE) )
                free_xen_l2_tree(ol3e);
            cursor_advance(&c, L3_FRAMES);
            continue;
        }

        if ( pte_is_super(ol3e) )
        {
            if ( super_maps(ol3e, L3_FRAMES, c.virt, c.mfn, flags) )
            {
                cursor_advance(&c, to_super_end(&c, L3_FRAMES));
                continue;
            }
            if ( shatter_l3e(pl3e, ol3e) )
                goto out;
        }

        pl2e = virt_to_xen_l2e(c.virt);
        if ( !pl2e )
            goto out;
        race_window();
        ol2e = read_pte(pl2e);

        if ( may_super && c.nr >= L2_FRAMES &&
             lne_aligned(c.virt, c.mfn, flags, L2_FRAMES) )
        {
            /* A 2 MiB page: the old L1 goes. */
            write_pte(pl2e, pte_from_mfn(c.mfn, l1f_to_lNf(flags)));
            if ( pte_present(ol2e) && !(ol2e & _PAGE_PSE) )
                free_xen_pagetable(pte_mfn(ol2e));
            cursor_advance(&c, L2_FRAMES);
            goto check_l3;
        }

        if ( pte_is_super(ol2e) )
        {
            if ( super_maps(ol2e, L2_FRAMES, c.virt, c.mfn, flags) )
            {
                cursor_advance(&c, to_super_end(&c, L2_FRAMES));
                goto check_l3;
            }
            if ( shatter_l2e(pl2e, ol2e) )
                goto out;
        }

        /* A 4 KiB page. */
        pl1e = virt_to_xen_l1e(c.virt);
        if ( !pl1e )
            goto out;
        race_window();
        write_pte(pl1e, pte_from_mfn(c.mfn, flags));
        cursor_advance(&c, 1);

        if ( flags == PAGE_HYPERVISOR &&
             (c.nr == 0 || lne_aligned(c.virt, c.mfn, flags, L2_FRAMES)) &&
             coalesce_l2e(pl2e, flags) == CO_GONE )
            continue;

 check_l3:
        if ( flags == PAGE_HYPERVISOR &&
             (c.nr == 0 || lne_aligned(c.virt, c.mfn, flags, L3_FRAMES)) )
            coalesce_l3e(pl3e, flags);
    }
    rc = 0;

 out:
    l3t_unlock_held(&l3page);
    return rc;
}

/* ------------------------------------------------------------------------
 * modify_xen_mappings / destroy_xen_mappings
 * ------------------------------------------------------------------------ */

/* Are all 512 entries of table mfn zero? */
static bool table_is_empty(mfn_t mfn)
{
    const intpte_t *t = xen_table(mfn);

    for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
        if ( read_pte(&t[i]) )
            return false;
    return true;
}

/* Zap *pe and free the table below it if that table is empty. */
static void free_if_empty(intpte_t *pe)
{
    intpte_t e;

    spin_lock(&map_pgdir_lock);
    e = read_pte(pe);
    if ( pte_present(e) && !(e & _PAGE_PSE) && table_is_empty(pte_mfn(e)) )
    {
        write_pte(pe, 0);
        spin_unlock(&map_pgdir_lock);
        free_xen_pagetable(pte_mfn(e));
        return;
    }
    spin_unlock(&map_pgdir_lock);
}

/* Entry e with its modifiable flags replaced by nf, or empty. */
static intpte_t modified_pte(intpte_t e, uint64_t nf)
{
    if ( !(nf & _PAGE_PRESENT) )
        return 0;
    return pte_from_mfn(pte_mfn(e),
                        (pte_get_flags(e) & ~MODIFY_FLAGS_MASK) | nf);
}

/*
 * Change the flags of [s, e) to nf (only NX, D, A, RW and P count), or
 * remove the mappings when nf lacks _PAGE_PRESENT.  Creates no mapping;
 * shatters superpages it covers only in part.  Returns 0 or -ENOMEM.
 */
int modify_xen_mappings(uint64_t s, uint64_t e, uint64_t nf)
{
    struct page_info *l3page = NULL;
    uint64_t v = s;
    int rc = -ENOMEM;

    nf &= MODIFY_FLAGS_MASK;
    ASSERT(!(s & (PAGE_SIZE - 1)));
    ASSERT(!(e & (PAGE_SIZE - 1)));

    while ( v < e )
    {
        intpte_t *pl3e, *pl2e, *pl1e, l3e, l2e;

        l3t_unlock_held(&l3page);
        pl3e = virt_to_xen_l3e(v);
        if ( !pl3e )
            goto out;
        l3page = table_page_of(pl3e);
        l3t_lock(l3page);
        l3e = read_pte(pl3e);
        race_window();

        if ( !pte_present(l3e) )
        {
            /* Callers never create mappings through here. */
            ASSERT(!(nf & _PAGE_PRESENT));
            v = (v + (1UL << L3_SHIFT)) & ~((1UL << L3_SHIFT) - 1);
            continue;
        }

        if ( l3e & _PAGE_PSE )
        {
            if ( !l2_off(v) && !l1_off(v) && e - v >= (1UL << L3_SHIFT) )
            {
                /* The whole 1 GiB page changes. */
                write_pte(pl3e, modified_pte(l3e, nf));
                v += 1UL << L3_SHIFT;
                continue;
            }
            if ( shatter_l3e(pl3e, l3e) )
                goto out;
            l3e = read_pte(pl3e);
        }

        /* Present and not a superpage: the L2 exists. */
        pl2e = xen_table(pte_mfn(l3e)) + l2_off(v);
        race_window();
        l2e = read_pte(pl2e);

        if ( !pte_present(l2e) )
        {
            ASSERT(!(nf & _PAGE_PRESENT));
            v = (v + (1UL << L2_SHIFT)) & ~((1UL << L2_SHIFT) - 1);
            goto check_l3;
        }

        if ( l2e & _PAGE_PSE )
        {
            if ( !l1_off(v) && e - v >= (1UL << L2_SHIFT) )
            {
                /* The whole 2 MiB page changes. */
                write_pte(pl2e, modified_pte(l2e, nf));
                v += 1UL << L2_SHIFT;
            }
            else if ( shatter_l2e(pl2e, l2e) )
                goto out;
            /* After shattering, the next iteration does the 4 KiB pages. */
        }
        else
        {
            intpte_t l1e;

            pl1e = xen_table(pte_mfn(l2e)) + l1_off(v);
            race_window();
            l1e = read_pte(pl1e);
            if ( !pte_present(l1e) )
                ASSERT(!(nf & _PAGE_PRESENT));
            write_pte(pl1e, modified_pte(l1e, nf));
            v += PAGE_SIZE;

            /* Only a removal that finished this L1 may empty it. */
            if ( (nf & _PAGE_PRESENT) || (v != e && l1_off(v) != 0) )
                continue;
            free_if_empty(pl2e);
        }

 check_l3:
        /* Only a removal that finished this L2 may empty it. */
        if ( (nf & _PAGE_PRESENT) ||
             (v != e && l2_off(v) + l1_off(v) != 0) )
            continue;
        free_if_empty(pl3e);
    }
    rc = 0;

 out:
    l3t_unlock_held(&l3page);
    return rc;
}

int destroy_xen_mappings(uint64_t s, uint64_t e)
{
    return modify_xen_mappings(s, e, 0);
}

/* ------------------------------------------------------------------------
 * xen_map_to_mfn
 * ------------------------------------------------------------------------ */

mfn_t xen_map_to_mfn(uint64_t virt)
{
    intpte_t *pl3e = lookup_xen_l3e(virt), l3e, l2e, l1e;
    struct page_info *l3page = NULL;
    mfn_t ret = INVALID_MFN;

    if ( !pl3e )
        goto out;
    l3page = table_page_of(pl3e);
    l3t_lock(l3page);

    l3e = read_pte(pl3e);
    if ( !pte_present(l3e) )
        goto out;
    if ( l3e & _PAGE_PSE )
    {
        ret = pte_mfn(l3e) + ((uint64_t)l2_off(virt) << PAGETABLE_ORDER) +
              l1_off(virt);
        goto out;
    }
    race_window();
    l2e = read_pte(xen_table(pte_mfn(l3e)) + l2_off(virt));
    if ( !pte_present(l2e) )
        goto out;
    if ( l2e & _PAGE_PSE )
    {
        ret = pte_mfn(l2e) + l1_off(virt);
        goto out;
    }
    l1e = read_pte(xen_table(pte_mfn(l2e)) + l1_off(virt));
    if ( pte_present(l1e) )
        ret = pte_mfn(l1e);

 out:
    l3t_unlock_held(&l3page);
    return ret;
}

/* ------------------------------------------------------------------------
 * Set-up and tear-down
 * ------------------------------------------------------------------------ */

/* Give L4 slot `slot` of the idle table an empty L3 table. */
static int prealloc_l3(unsigned int slot, uint64_t l4flags)
{
    intpte_t *l4t = xen_table(host.idle_pg_table);
    mfn_t mfn = alloc_xen_pagetable();

    if ( mfn == INVALID_MFN )
        return -ENOMEM;
    write_pte(&l4t[slot], pte_from_mfn(mfn, l4flags));
    return 0;
}

/*
 * Guests walk to the read-only M2P through the L3 and L2 entries of slot
 * 256: like Xen's, they are read-only and user-accessible.
 */
static void ro_mpt_set_table_flags(void)
{
    intpte_t *l3t = xen_table(pte_mfn(xen_table(host.idle_pg_table)[
                                  l4_off(RO_MPT_VIRT_START)]));
    const uint64_t tf = __PAGE_HYPERVISOR_RO | _PAGE_USER;

    for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
    {
        intpte_t l3e = read_pte(&l3t[i]), *l2t;

        if ( !pte_present(l3e) || (l3e & _PAGE_PSE) )
            continue;
        write_pte(&l3t[i], pte_from_mfn(pte_mfn(l3e), tf));
        l2t = xen_table(pte_mfn(l3e));
        for ( unsigned int j = 0; j < PT_ENTRIES; j++ )
        {
            intpte_t l2e = read_pte(&l2t[j]);

            if ( pte_present(l2e) && !(l2e & _PAGE_PSE) )
                write_pte(&l2t[j], pte_from_mfn(pte_mfn(l2e), tf));
        }
    }
}

/*
 * The M2P, read-write for the hypervisor in slot 261 and read-only for
 * guests in slot 256.  The whole allocated run is mapped, not just
 * m2p_nr_frames: it is all M2P storage owned by DOMID_XEN and filled with
 * INVALID_M2P_ENTRY, as Xen maps its M2P in whole 2 MiB chunks, and an
 * aligned power-of-two run lets the 2 MiB path apply once it is big enough.
 * Xen's paging_init writes the read-only view's entries by hand (2 MiB or
 * 1 GiB pages, flags P|U|PSE); here it goes through map_pages_to_xen, so a
 * small M2P gets 4 KiB pages, with leaf flags HV_RO_MPT_FLAGS.
 */
static int map_m2p(void)
{
    uint64_t run = 1;
    int rc;

    while ( run < host.m2p_nr_frames )
        run <<= 1;
    rc = map_pages_to_xen(HV_RDWR_MPT_VIRT_START, host.m2p_first_mfn, run,
                          PAGE_HYPERVISOR);
    if ( !rc )
        rc = map_pages_to_xen(RO_MPT_VIRT_START, host.m2p_first_mfn, run,
                              HV_RO_MPT_FLAGS);
    if ( !rc )
        ro_mpt_set_table_flags();
    return rc;
}

int xenmap_init(void)
{
    mfn_t l4mfn;
    int rc;

    atomic_store(&nr_xen_pt_frames, 0);
    l4mfn = alloc_xen_pagetable();
    if ( l4mfn == INVALID_MFN )
        return -ENOMEM;
    host.idle_pg_table = l4mfn;

    rc = prealloc_l3(l4_off(RO_MPT_VIRT_START),
                     __PAGE_HYPERVISOR_RO | _PAGE_USER);
    for ( unsigned int slot = l4_off(HV_RDWR_MPT_VIRT_START);
          !rc && slot <= ROOT_PAGETABLE_LAST_XEN_SLOT; slot++ )
        rc = prealloc_l3(slot, __PAGE_HYPERVISOR);
    if ( !rc )
        rc = map_m2p();
    if ( !rc )
        rc = map_pages_to_xen(HV_DIRECTMAP_VIRT_START, 0, host.max_page,
                              PAGE_HYPERVISOR);
    /* On failure host_init's clean-up calls xenmap_dispose. */
    return rc;
}

/* Free the table below a present, non-superpage entry of a level-`level`
 * table, and everything under it. */
static void free_xen_tree(intpte_t e, unsigned int level)
{
    if ( !pte_present(e) || (level < 4 && (e & _PAGE_PSE)) )
        return;
    if ( level > 2 )
    {
        intpte_t *t = xen_table(pte_mfn(e));

        for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
            free_xen_tree(read_pte(&t[i]), level - 1);
    }
    free_xen_pagetable(pte_mfn(e));
}

void xenmap_dispose(void)
{
    intpte_t *l4t = xen_table(host.idle_pg_table);

    for ( unsigned int i = 0; i < PT_ENTRIES; i++ )
        free_xen_tree(read_pte(&l4t[i]), 4);
    free_xen_pagetable(host.idle_pg_table);
    host.idle_pg_table = 0;
}
