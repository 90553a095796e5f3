/* SPDX-License-Identifier: MIT */
/*
 * Log-dirty tracking and the shadow_op domctl (xen/arch/x86/mm/paging.c).
 *
 * While a domain is being migrated the toolstack asks which of its frames
 * were written since it last looked.  Xen answers with a bitmap indexed by
 * PFN (M2P[mfn], even for PV guests), set by paging_mark_dirty() wherever
 * the hypervisor itself writes or re-types guest memory, and by the shadow
 * fault handler for the guest's own writes.  ferry's guest CPU calls
 * paging_mark_dirty() for every guest write, so the marking path is built
 * to be cheap:
 *
 *  - disabled: one relaxed atomic load of d->logdirty.enabled, no lock;
 *  - enabled: a walk down a trie whose nodes never move, and an atomic OR
 *    on the leaf word.  Only a PFN whose leaf does not exist yet takes
 *    d->logdirty.lock, to add the missing nodes.
 *
 * The trie has Xen's shape: three levels of 512-entry nodes above leaves of
 * 4 KiB (32768 PFNs each), covering 2^42 PFNs; higher PFN bits are ignored,
 * as in Xen, so a guest-chosen M2P value can never make the bitmap huge.
 *
 * Invariants:
 *  - nodes are published with a release store under d->logdirty.lock and
 *    are never unlinked or freed while a marker may be inside the trie:
 *    every marker counts itself in d->logdirty.markers before it re-checks
 *    `enabled`, and OFF / teardown clear `enabled` and wait for the count to
 *    drain before they free anything (both sides sequentially consistent,
 *    so at least one of them sees the other);
 *  - dirty_count counts 0 -> 1 transitions of bits only, so it equals the
 *    number of distinct PFNs marked since the last CLEAN (while quiescent);
 *  - the control operations (shadow_op) are serialised by one global lock,
 *    as all domctls are under Xen's domctl_lock.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hv.h"

#define LOGDIRTY_NODE_ENTRIES 512U
#define LOGDIRTY_LEAF_BITS    (PAGE_SIZE * 8)           /* 32768 PFNs */
#define LOGDIRTY_LEAF_WORDS   (PAGE_SIZE / sizeof(uint64_t))

#define L1_LOGDIRTY_IDX(pfn) ((pfn) & (LOGDIRTY_LEAF_BITS - 1))
#define L2_LOGDIRTY_IDX(pfn) (((pfn) >> 15) & (LOGDIRTY_NODE_ENTRIES - 1))
#define L3_LOGDIRTY_IDX(pfn) (((pfn) >> 24) & (LOGDIRTY_NODE_ENTRIES - 1))
#define L4_LOGDIRTY_IDX(pfn) (((pfn) >> 33) & (LOGDIRTY_NODE_ENTRIES - 1))

/* An inner node: each entry is a lower node, or a leaf at the L2 level. */
struct ld_node
{
    void *e[LOGDIRTY_NODE_ENTRIES];
};

/* Serialises shadow_op calls, as Xen's domctl_lock does. */
static pthread_mutex_t paging_domctl_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------------
 * The trie
 * ------------------------------------------------------------------------ */

static void *ld_load(void *const *slot)
{
    return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

/* Walk to the leaf of pfn without allocating; NULL if it does not exist. */
static uint64_t *ld_find_leaf(struct logdirty *ld, uint64_t pfn)
{
    struct ld_node *n = ld_load(&ld->bitmap);

    if ( n )
        n = ld_load(&n->e[L4_LOGDIRTY_IDX(pfn)]);
    if ( n )
        n = ld_load(&n->e[L3_LOGDIRTY_IDX(pfn)]);
    return n ? ld_load(&n->e[L2_LOGDIRTY_IDX(pfn)]) : NULL;
}

/* Return *slot, first filling it with a zeroed allocation if empty. */
static void *ld_fill(struct logdirty *ld, void **slot, size_t size)
{
    void *p = *slot;

    if ( p )
        return p;
    p = calloc(1, size);
    if ( !p )
    {
        atomic_fetch_add(&ld->failed_allocs, 1);
        return NULL;
    }
    __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    return p;
}

/* The slow path: add whatever nodes the leaf of pfn lacks, under the lock. */
static uint64_t *ld_make_leaf(struct logdirty *ld, uint64_t pfn)
{
    struct ld_node *n;
    uint64_t *leaf = NULL;

    spin_lock(&ld->lock);
    n = ld_fill(ld, &ld->bitmap, sizeof(struct ld_node));
    if ( n )
        n = ld_fill(ld, &n->e[L4_LOGDIRTY_IDX(pfn)], sizeof(struct ld_node));
    if ( n )
        n = ld_fill(ld, &n->e[L3_LOGDIRTY_IDX(pfn)], sizeof(struct ld_node));
    if ( n )
        leaf = ld_fill(ld, &n->e[L2_LOGDIRTY_IDX(pfn)], PAGE_SIZE);
    spin_unlock(&ld->lock);
    return leaf;
}

/* Free a detached trie.  Nobody may be inside it any more. */
static void ld_free_trie(struct ld_node *top)
{
    if ( !top )
        return;
    for ( unsigned int i4 = 0; i4 < LOGDIRTY_NODE_ENTRIES; i4++ )
    {
        struct ld_node *l3 = top->e[i4];

        if ( !l3 )
            continue;
        for ( unsigned int i3 = 0; i3 < LOGDIRTY_NODE_ENTRIES; i3++ )
        {
            struct ld_node *l2 = l3->e[i3];

            if ( !l2 )
                continue;
            for ( unsigned int i2 = 0; i2 < LOGDIRTY_NODE_ENTRIES; i2++ )
                free(l2->e[i2]);
            free(l2);
        }
        free(l3);
    }
    free(top);
}

/* ------------------------------------------------------------------------
 * Marking (the hot path)
 * ------------------------------------------------------------------------ */

bool paging_mode_log_dirty(const struct domain *d)
{
    return __atomic_load_n(&d->logdirty.enabled, __ATOMIC_RELAXED);
}

static void set_pfn_logdirty(struct domain *d, pfn_t pfn)
{
    struct logdirty *ld = &d->logdirty;
    uint64_t *leaf, bit, old;

    /*
     * Values with bit 63 set are not part of the pseudo-physical map
     * (INVALID for free or xen-heap frames, SHARED): nothing to mark.
     */
    if ( unlikely(!VALID_M2P(pfn)) )
        return;

    atomic_fetch_add(&ld->markers, 1);
    if ( !__atomic_load_n(&ld->enabled, __ATOMIC_SEQ_CST) )
        goto out;

    leaf = ld_find_leaf(ld, pfn);
    if ( unlikely(!leaf) && !(leaf = ld_make_leaf(ld, pfn)) )
        goto out;       /* counted in failed_allocs; CLEAN/PEEK report it */

    bit = 1ULL << (L1_LOGDIRTY_IDX(pfn) % 64);
    old = __atomic_fetch_or(&leaf[L1_LOGDIRTY_IDX(pfn) / 64], bit,
                            __ATOMIC_RELAXED);
    if ( !(old & bit) )
        atomic_fetch_add_explicit(&ld->dirty_count, 1, memory_order_relaxed);

 out:
    atomic_fetch_sub_explicit(&ld->markers, 1, memory_order_release);
}

void paging_mark_pfn_dirty(struct domain *d, pfn_t pfn)
{
    if ( likely(!paging_mode_log_dirty(d)) )
        return;
    set_pfn_logdirty(d, pfn);
}

/* Mark the frame mfn dirty: we really do mean its PFN, even for PV. */
void paging_mark_dirty(struct domain *d, mfn_t mfn)
{
    /*
     * Every write Xen marks dirty, and every guest write, passes here:
     * the frame may now hold data, whoever owns it and whether or not
     * log-dirty is on (the saver's zero pages rely on it).
     */
    hv_frame_written(mfn);
    if ( likely(!paging_mode_log_dirty(d)) )
        return;
    /* Compare the owner field itself: no lookup of the domain table. */
    if ( !mfn_valid(mfn) ||
         atomic_load_explicit(&mfn_to_page(mfn)->owner,
                              memory_order_relaxed) != d->domain_id + 1 )
        return;
    set_pfn_logdirty(d, get_gpfn_from_mfn(mfn));
}

void paging_note_write_fault(struct domain *d)
{
    if ( likely(!paging_mode_log_dirty(d)) )
        return;
    atomic_fetch_add_explicit(&d->logdirty.fault_count, 1,
                              memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Enable, disable, teardown
 * ------------------------------------------------------------------------ */

/*
 * The guest CPU marks a page dirty when it creates a writable
 * translation, not on every write, so ENABLE and CLEAN must drop those
 * translations (flush_tlb_domain) while no vCPU can write through one,
 * under domain_pause(): otherwise a write between the clear and the flush
 * would never be reported.
 */
static int paging_log_dirty_enable(struct domain *d)
{
    struct logdirty *ld = &d->logdirty;

    /* No passthrough devices in ferry, so only the mode itself is checked. */
    if ( paging_mode_log_dirty(d) )
        return -EINVAL;

    domain_pause(d);
    spin_lock(&ld->lock);
    atomic_store(&ld->dirty_count, 0);
    atomic_store(&ld->fault_count, 0);
    atomic_store(&ld->failed_allocs, 0);
    __atomic_store_n(&ld->enabled, true, __ATOMIC_SEQ_CST);
    spin_unlock(&ld->lock);
    /* Writable translations made before now were never marked. */
    flush_tlb_domain(d);
    domain_unpause(d);
    return 0;
}

/*
 * Turn logging off and free the bitmap.  Xen frees it preemptibly; ferry's
 * free is a walk over allocated nodes only, so it runs to completion.
 */
static void paging_free_log_dirty_bitmap(struct domain *d)
{
    struct logdirty *ld = &d->logdirty;
    struct ld_node *top;

    __atomic_store_n(&ld->enabled, false, __ATOMIC_SEQ_CST);
    /* Markers that saw `enabled` set may still be in the trie. */
    while ( atomic_load(&ld->markers) )
        cpu_relax();

    spin_lock(&ld->lock);
    top = ld->bitmap;
    ld->bitmap = NULL;
    atomic_store(&ld->failed_allocs, 0);
    spin_unlock(&ld->lock);
    ld_free_trie(top);
}

/*
 * Called by domain_kill().  Under the domctl lock, so that a shadow_op
 * that checked "not dying" just before cannot re-enable logging after it.
 */
void paging_teardown(struct domain *d)
{
    pthread_mutex_lock(&paging_domctl_lock);
    paging_free_log_dirty_bitmap(d);
    pthread_mutex_unlock(&paging_domctl_lock);
}

/* ------------------------------------------------------------------------
 * CLEAN and PEEK
 * ------------------------------------------------------------------------ */

/*
 * Copy `bytes` bytes of a leaf to the caller's bitmap (if any) and, for
 * CLEAN, clear the whole leaf as Xen's clear_page() does.  Clearing word by
 * word with an atomic exchange means a concurrent mark is either reported
 * now or kept for the next round, never lost.
 */
static void copy_leaf(uint64_t *leaf, uint8_t *dst, unsigned int bytes,
                      bool clean)
{
    for ( unsigned int w = 0; w < LOGDIRTY_LEAF_WORDS; w++ )
    {
        uint64_t v;
        unsigned int off = w * sizeof(uint64_t);

        if ( !clean && off >= bytes )
            break;
        v = clean ? __atomic_exchange_n(&leaf[w], 0, __ATOMIC_RELAXED)
                  : __atomic_load_n(&leaf[w], __ATOMIC_RELAXED);
        /* x86 is little-endian: the word's bytes are the bitmap's bytes. */
        if ( dst && off < bytes )
            memcpy(dst + off, &v, min(sizeof(v), (size_t)(bytes - off)));
    }
}

/*
 * Cover up to `span` PFNs from *pages on with zeroes (a missing part of the
 * trie).  Xen steps leaf by leaf, each step covering min(4096, ceil(left /
 * 8)) bytes; summed over a run of missing leaves that is the smaller of the
 * span and `left` rounded up to a byte, which is what this adds at once.
 */
static void skip_absent(struct xen_domctl_shadow_op *sc, uint64_t *pages,
                        uint64_t span)
{
    uint64_t left = (sc->pages - *pages + 7) & ~7ULL;
    uint64_t n = min(span, left);

    if ( sc->dirty_bitmap )
        memset(sc->dirty_bitmap + (*pages >> 3), 0, n >> 3);
    *pages += n;
}

/* Copy (and for CLEAN, clear) one present leaf at *pages. */
static void visit_leaf(struct xen_domctl_shadow_op *sc, uint64_t *pages,
                       uint64_t *leaf, bool clean)
{
    unsigned int bytes = PAGE_SIZE;

    if ( ((sc->pages - *pages + 7) >> 3) < bytes )
        bytes = (unsigned int)((sc->pages - *pages + 7) >> 3);
    copy_leaf(leaf, sc->dirty_bitmap ? sc->dirty_bitmap + (*pages >> 3)
                                     : NULL, bytes, clean);
    *pages += (uint64_t)bytes << 3;
}

/* Walk the trie in PFN order until `pages` PFNs are covered. */
static uint64_t walk_bitmap(struct logdirty *ld,
                            struct xen_domctl_shadow_op *sc, bool clean)
{
    const uint64_t l2_span = (uint64_t)LOGDIRTY_NODE_ENTRIES *
                             LOGDIRTY_LEAF_BITS;
    const uint64_t l3_span = l2_span * LOGDIRTY_NODE_ENTRIES;
    struct ld_node *top = ld_load(&ld->bitmap);
    uint64_t pages = 0;

    for ( unsigned int i4 = 0;
          pages < sc->pages && i4 < LOGDIRTY_NODE_ENTRIES; i4++ )
    {
        struct ld_node *l3 = top ? ld_load(&top->e[i4]) : NULL;

        if ( !l3 )
        {
            skip_absent(sc, &pages, l3_span);
            continue;
        }
        for ( unsigned int i3 = 0;
              pages < sc->pages && i3 < LOGDIRTY_NODE_ENTRIES; i3++ )
        {
            struct ld_node *l2 = ld_load(&l3->e[i3]);

            if ( !l2 )
            {
                skip_absent(sc, &pages, l2_span);
                continue;
            }
            for ( unsigned int i2 = 0;
                  pages < sc->pages && i2 < LOGDIRTY_NODE_ENTRIES; i2++ )
            {
                uint64_t *leaf = ld_load(&l2->e[i2]);

                if ( leaf )
                    visit_leaf(sc, &pages, leaf, clean);
                else
                    skip_absent(sc, &pages, LOGDIRTY_LEAF_BITS);
            }
        }
    }
    return pages;
}

static int paging_log_dirty_op(struct domain *d,
                               struct xen_domctl_shadow_op *sc)
{
    struct logdirty *ld = &d->logdirty;
    bool clean = sc->op == XEN_DOMCTL_SHADOW_OP_CLEAN;
    uint64_t pages = 0, failed;
    int rc = 0;

    /*
     * As in Xen, the domain is paused while the bitmap is read and cleared
     * (see domain_pause()).  Marks made by other threads meanwhile
     * are safe: the per-word exchange reports each bit now or next time.
     */
    domain_pause(d);
    spin_lock(&ld->lock);

    sc->stats.fault_count = (uint32_t)min(atomic_load(&ld->fault_count),
                                          (uint64_t)UINT32_MAX);
    sc->stats.dirty_count = (uint32_t)min(atomic_load(&ld->dirty_count),
                                          (uint64_t)UINT32_MAX);

    failed = atomic_load(&ld->failed_allocs);
    if ( unlikely(failed) )
    {
        hv_printk(HVLOG_WARNING,
                  "%u failed page allocs while logging dirty pages of d%d\n",
                  (unsigned int)failed, d->domain_id);
        rc = -ENOMEM;
        goto out;
    }

    /*
     * Absent leaves read as zero.  A null bitmap means the caller only
     * wants the stats (and, for CLEAN, the reset).  `pages` is trimmed to
     * what the trie covers.  Xen preempts this walk (and answers -EBUSY to
     * anyone else meanwhile); ferry's skips missing subtrees whole and
     * touches only leaves that exist, so it runs to completion.
     */
    pages = walk_bitmap(ld, sc, clean);
    if ( pages < sc->pages )
        sc->pages = pages;
    if ( clean )
    {
        atomic_store(&ld->fault_count, 0);
        atomic_store(&ld->dirty_count, 0);
    }

 out:
    spin_unlock(&ld->lock);
    /* The next write to each page must find it clean and mark it again. */
    if ( clean && !rc )
        flush_tlb_domain(d);
    domain_unpause(d);
    return rc;
}

/* ------------------------------------------------------------------------
 * The domctl
 * ------------------------------------------------------------------------ */

static int paging_domctl(struct domain *d, struct xen_domctl_shadow_op *sc)
{
    struct vcpu *curr = current;

    if ( unlikely(curr && d == curr->domain) )
    {
        gdprintk(XENLOG_INFO, "Tried to do a paging op on itself.\n");
        return -EINVAL;
    }
    if ( unlikely(domain_is_dying(d)) )
    {
        gdprintk(XENLOG_INFO, "Tried to do a paging op on dying d%u\n",
                 d->domain_id);
        return -EINVAL;
    }
    if ( unlikely(!d->max_vcpus || !d->vcpu[0]) )
    {
        gdprintk(XENLOG_DEBUG, "Paging op on a domain (%u) with no vcpus\n",
                 d->domain_id);
        return -EINVAL;
    }

    switch ( sc->op )
    {
    case XEN_DOMCTL_SHADOW_OP_ENABLE:
        if ( !(sc->mode & XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY) )
            break;
        /* fall through */
    case XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY:
        return paging_log_dirty_enable(d);

    case XEN_DOMCTL_SHADOW_OP_OFF:
        domain_pause(d);
        paging_free_log_dirty_bitmap(d);
        domain_unpause(d);
        /* The migration that throttled the domain is over, however it
         * ended: a toolstack that died cannot leave it slowed. */
        domain_set_throttle(d, 0);
        return 0;

    case XEN_DOMCTL_SHADOW_OP_CLEAN:
    case XEN_DOMCTL_SHADOW_OP_PEEK:
        if ( sc->mode & ~XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL )
            return -EINVAL;
        return paging_log_dirty_op(d, sc);

    case XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION:
    case XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION:
        /*
         * Xen sizes a per-domain pool for shadow page tables and the
         * log-dirty trie.  ferry has no shadow page tables (a PV guest
         * runs on its own tables) and takes the trie from the host's heap,
         * so there is no pool: a set is accepted and changes nothing, and
         * the allocation reads as 0 MiB.  The toolstack sets one before
         * enabling log-dirty, so refusing would break migration.
         */
        sc->mb = 0;
        return 0;
    }

    /*
     * What is left would go to Xen's shadow code: ENABLE without LOG_DIRTY
     * (test, refcount, translate modes) and ENABLE_TEST.  ferry implements
     * no shadow mode but log-dirty.
     */
    if ( sc->op == XEN_DOMCTL_SHADOW_OP_ENABLE ||
         sc->op == XEN_DOMCTL_SHADOW_OP_ENABLE_TEST )
        return -EOPNOTSUPP;
    return -EINVAL;
}

int domctl_shadow_op(struct domain *d, struct xen_domctl_shadow_op *sc)
{
    int rc;

    pthread_mutex_lock(&paging_domctl_lock);
    rc = paging_domctl(d, sc);
    pthread_mutex_unlock(&paging_domctl_lock);
    return rc;
}
