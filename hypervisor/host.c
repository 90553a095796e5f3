/* SPDX-License-Identifier: MIT */
/*
 * The host: machine memory, the frame table, the M2P and the heap.
 *
 * Machine memory is one shared mapping so that toolstack processes can map
 * a domain's frames from the same file (zero-copy foreign mapping).  No page
 * loop may take a page fault (a fault costs more than copying the page), so
 * every frame is populated before it is handed out.  Populating all of it
 * before the daemon answers took 11 s for 4 GiB here, so the host answers
 * at once and populates in the background: a thread walks machine memory
 * in chunks, and alloc_heap_pages populates any chunk of a run the thread
 * has not reached yet before it returns the run (see populate_frames).
 * Populating includes one read of every page through our mapping, which a
 * shadowing outer hypervisor charges as a fault (see touch_pages).
 * Transparent huge pages were the other way to start fast; measured here
 * (anonymous THP, as this kernel offers none for shared memory) a huge
 * page costs more to populate than its 512 small ones (direct compaction:
 * 4.9-19.6 s per GiB against 2.2-2.7 s), so the mapping does not ask for
 * them.
 *
 * The heap is a bitmap of free frames under heap_lock, allocating naturally
 * aligned runs of 2^order frames.  As on Xen (page_alloc.c), freeing does
 * not zero a frame: it marks it PGC_need_scrub, and the frame is zeroed
 * later, by whichever comes first of the background scrubber (Xen scrubs
 * from its idle loop; here a thread at the lowest priority) and the
 * allocator that hands it out again (alloc_heap_pages scrubs every frame
 * of its run that is still marked).  So no domain and no toolstack process
 * is ever given a frame that holds what an earlier owner left -- not by
 * allocation, so not by a foreign map or FRAME_COPY either, which reach
 * only frames a domain was allocated -- while destroying a domain costs
 * only its bookkeeping.  Unlike Xen, frames a live domain gives back are
 * marked too (Xen trusts a live guest to clear what it frees).
 *
 * The free states of a frame, each checked by the auditor:
 *  - clean: count_info PGC_state_free, maybe_nonzero bit clear, zeros;
 *  - dirty: PGC_state_free | PGC_need_scrub, maybe_nonzero bit set, its
 *    bit set in scrub_bitmap, counted in nr_need_scrub;
 *  - held by the scrubber: out of free_bitmap (and scrub_bitmap) while it
 *    is zeroed, named by scrub_held; still counted in free_pages.
 * A domain frame whose maybe_nonzero bit is clear when it is freed holds
 * zeros (every write to a domain's frame sets the bit first, which the
 * saver's zero pages rely on too), so it goes back clean and nothing ever
 * zeroes it: an untouched domain is destroyed without a scrub.  Frames the
 * hypervisor writes itself (shared_info, grant frames, its page tables)
 * are freed with need_scrub set, as Xen's free_xenheap_pages does.
 * MEMF_no_scrub hands a dirty frame out as it is, its bit still set; only
 * the hypervisor's own allocations, which overwrite the frame, use it.
 *
  * The M2P lives in machine frames owned by DOMID_XEN, so that guests can
 * map it read-only as they do on Xen; MFN 0 is reserved, as on a PC, so
 * that 0 can mean "no frame" in vCPU state.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hv.h"

struct host host;
_Thread_local struct vcpu *current;

/* ------------------------------------------------------------------------
 * Small primitives
 * ------------------------------------------------------------------------ */

void spin_lock_init(spinlock_t *l)
{
    pthread_mutex_init(&l->m, NULL);
}

void spin_lock_destroy(spinlock_t *l)
{
    pthread_mutex_destroy(&l->m);
}

void cpu_relax(void)
{
    sched_yield();
}

/* ------------------------------------------------------------------------
 * The union word of struct page_info
 * ------------------------------------------------------------------------ */

unsigned int page_nr_validated_ptes(const struct page_info *pg)
{
    return atomic_load(&pg->u) & PGU_NR_VALIDATED_MASK;
}

static void update_u(struct page_info *pg, uint32_t mask, uint32_t val)
{
    uint32_t x = atomic_load(&pg->u);

    while ( !atomic_compare_exchange_weak(&pg->u, &x, (x & ~mask) | val) )
        ;
}

void page_set_nr_validated_ptes(struct page_info *pg, unsigned int n)
{
    ASSERT(n <= L1_PAGETABLE_ENTRIES);
    update_u(pg, PGU_NR_VALIDATED_MASK, n);
}

unsigned int page_partial_flags(const struct page_info *pg)
{
    return (atomic_load(&pg->u) >> PGU_PARTIAL_FLAGS_BIT) & 1U;
}

void page_set_partial_flags(struct page_info *pg, unsigned int f)
{
    /* Only PTF_partial_set fits in the one-bit field (reference 1.3). */
    ASSERT(!(f & ~PTF_partial_set));
    update_u(pg, 1U << PGU_PARTIAL_FLAGS_BIT,
             (f & PTF_partial_set) << PGU_PARTIAL_FLAGS_BIT);
}

int16_t page_linear_pt_count(const struct page_info *pg)
{
    return (int16_t)(uint16_t)(atomic_load(&pg->u) >> PGU_LINEAR_SHIFT);
}

void page_clear_validation_state(struct page_info *pg)
{
    atomic_store(&pg->u, 0);
}

/*
 * Xen's tlbflush_current_time(): the clock ticks at each flush
 * (flush_tlb_domain), and the timestamp only reads it.  It used to tick
 * here, a read-modify-write of one shared word for every page whose type
 * count reached 0 (each frame of a domain being destroyed).  Relaxed: the
 * type count's update that follows orders it, and nothing in ferry
 * compares timestamps (flushes are synchronous, see vcpu.c).
 */
void page_set_tlbflush_timestamp(struct page_info *pg)
{
    atomic_store_explicit(&pg->u,
                          atomic_load_explicit(&host.tlbflush_clock,
                                               memory_order_relaxed),
                          memory_order_relaxed);
}

/* Add delta to linear_pt_count if the result keeps the sign `want`. */
static bool linear_add(struct page_info *pg, int delta, int want)
{
    uint32_t x = atomic_load(&pg->u), nx;
    int oc, nc;

    do {
        oc = (int16_t)(uint16_t)(x >> PGU_LINEAR_SHIFT);
        if ( (want > 0 && oc < 0) || (want < 0 && oc > 0) )
            return false;
        nc = oc + delta;
        if ( (want > 0 && nc <= 0) || (want < 0 && nc >= 0) ||
             nc > INT16_MAX || nc < INT16_MIN )
            return false;
        nx = (x & 0xFFFFU) | ((uint32_t)(uint16_t)nc << PGU_LINEAR_SHIFT);
    } while ( !atomic_compare_exchange_weak(&pg->u, &x, nx) );
    return true;
}

bool inc_linear_entries(struct page_info *pg)
{
    return linear_add(pg, 1, 1);
}

void dec_linear_entries(struct page_info *pg)
{
    uint32_t old = atomic_fetch_sub(&pg->u, 1U << PGU_LINEAR_SHIFT);

    ASSERT((int16_t)(uint16_t)(old >> PGU_LINEAR_SHIFT) > 0);
}

bool inc_linear_uses(struct page_info *pg)
{
    return linear_add(pg, -1, -1);
}

void dec_linear_uses(struct page_info *pg)
{
    uint32_t old = atomic_fetch_add(&pg->u, 1U << PGU_LINEAR_SHIFT);

    ASSERT((int16_t)(uint16_t)(old >> PGU_LINEAR_SHIFT) < 0);
}

/* ------------------------------------------------------------------------
 * Ownership
 * ------------------------------------------------------------------------ */

struct domain *page_get_owner(const struct page_info *pg)
{
    unsigned int o = atomic_load(&pg->owner);

    return o ? host.domain_by_id[o - 1] : NULL;
}

void page_set_owner(struct page_info *pg, struct domain *d)
{
    atomic_store(&pg->owner, d ? (uint16_t)(d->domain_id + 1) : 0);
}

/* ------------------------------------------------------------------------
 * The heap
 * ------------------------------------------------------------------------ */

static bool bit_free(uint64_t mfn)
{
    return host.free_bitmap[mfn / 64] & (1ULL << (mfn % 64));
}

static void mark_range(uint64_t *map, uint64_t mfn, uint64_t nr, bool set)
{
    for ( uint64_t i = mfn; i < mfn + nr; i++ )
    {
        if ( set )
            map[i / 64] |= 1ULL << (i % 64);
        else
            map[i / 64] &= ~(1ULL << (i % 64));
    }
}

/* Clear the bits of the naturally aligned run in map; how many were set. */
static uint64_t take_bits(uint64_t *map, uint64_t mfn, uint64_t nr)
{
    uint64_t n = 0;

    if ( nr >= 64 )
    {
        for ( uint64_t w = mfn / 64; w < (mfn + nr) / 64; w++ )
        {
            n += (uint64_t)__builtin_popcountll(map[w]);
            map[w] = 0;
        }
        return n;
    }
    uint64_t mask = ((1ULL << nr) - 1) << (mfn % 64);

    n = (uint64_t)__builtin_popcountll(map[mfn / 64] & mask);
    map[mfn / 64] &= ~mask;
    return n;
}

/* Is the naturally aligned run [mfn, mfn + nr) entirely free? */
static bool run_free(uint64_t mfn, uint64_t nr)
{
    if ( nr >= 64 )
    {
        for ( uint64_t w = mfn / 64; w < (mfn + nr) / 64; w++ )
            if ( host.free_bitmap[w] != ~0ULL )
                return false;
        return true;
    }
    uint64_t mask = ((1ULL << nr) - 1) << (mfn % 64);

    return (host.free_bitmap[mfn / 64] & mask) == mask;
}

static int64_t find_free_run(unsigned int order)
{
    uint64_t nr = 1ULL << order, start = host.alloc_hint & ~(nr - 1);

    for ( uint64_t pass = 0; pass < 2; pass++ )
    {
        uint64_t end = pass ? start : host.max_page;

        for ( uint64_t mfn = pass ? 0 : start; mfn + nr <= end; mfn += nr )
        {
            /* Skip whole empty words quickly. */
            if ( nr < 64 && !host.free_bitmap[mfn / 64] )
            {
                mfn = (mfn | 63) + 1 - nr;
                continue;
            }
            if ( run_free(mfn, nr) )
                return (int64_t)mfn;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * Populating machine memory
 * ------------------------------------------------------------------------ */

static bool chunk_populated(uint64_t c)
{
    return atomic_load(&host.populated[c / 64]) & (1ULL << (c % 64));
}

/*
 * Read one byte of every page of [p, p + len).  MADV_POPULATE_WRITE fills
 * our page tables, but under a hypervisor that shadows them (PVM here) the
 * first access to each page through a mapping still exits to the outer
 * host: measured here, 1.3 s per GiB for the first touch of populated
 * memory against 0.04 s for a second memset.  Paying it now, in the
 * populating thread, keeps it out of the page loops that would otherwise
 * meet it first (a migration's FRAME_COPY, the scrub of a freed domain).
 * A read is enough: the write that follows takes no further exit.
 */
static void touch_pages(const volatile uint8_t *p, uint64_t len)
{
    uint8_t sum = 0;

    for ( uint64_t off = 0; off < len; off += PAGE_SIZE )
        sum |= p[off];
    (void)sum;
}

/*
 * Claim chunk c for populating.  False: it is populated already, or was by
 * the claimer we waited for.  A claimer that failed gives its claim back,
 * and we try again ourselves.
 */
static bool claim_chunk(uint64_t c)
{
    uint64_t bit = 1ULL << (c % 64);

    while ( !chunk_populated(c) )
    {
        if ( !(atomic_fetch_or(&host.populating[c / 64], bit) & bit) )
            return true;
        while ( (atomic_load(&host.populating[c / 64]) & bit) &&
                !chunk_populated(c) )
            sched_yield();
    }
    return false;
}

/*
 * Make chunk c resident in the machine-memory file and mapped in our page
 * tables; touch: also touched once (see touch_pages).  None of it writes
 * to the frames' contents.  The claim keeps two populaters (the background
 * thread and an allocator) off one chunk, so that no frame of it is
 * handed out, and written, while the other still reads it.
 *
 * Only the background thread touches.  An allocator that meets a chunk the
 * thread has not reached is on somebody's critical path (a domain being
 * built, a migration arriving on a fresh host), and most of a new domain's
 * frames are never written before they are sent as "allocate only": the
 * touch is then left to the first access, which pays it only for frames
 * that are used.
 */
static int populate_chunk(uint64_t c, bool touch)
{
    uint64_t first = c * POPULATE_CHUNK_FRAMES, nr = POPULATE_CHUNK_FRAMES;
    int rc = 0;

    if ( !claim_chunk(c) )
        return 0;
    if ( first + nr > host.max_page )
        nr = host.max_page - first;
#ifdef MADV_POPULATE_WRITE
    if ( madvise(host.mem + (first << PAGE_SHIFT), nr << PAGE_SHIFT,
                 MADV_POPULATE_WRITE) )
        rc = -errno;
#else
    rc = -EINVAL;
#endif
    /*
     * A kernel without MADV_POPULATE_WRITE (before 5.14): allocate the
     * file's pages, leaving only the mapping's cheaper faults.
     */
    if ( rc == -EINVAL )
        rc = -posix_fallocate(host.mem_fd, (off_t)(first << PAGE_SHIFT),
                              (off_t)(nr << PAGE_SHIFT));
    if ( rc )
    {
        atomic_fetch_and(&host.populating[c / 64], ~(1ULL << (c % 64)));
        return rc == -EFAULT ? -ENOMEM : rc;
    }
    if ( touch )
        touch_pages(host.mem + (first << PAGE_SHIFT), nr << PAGE_SHIFT);
    atomic_fetch_or(&host.populated[c / 64], 1ULL << (c % 64));
    atomic_fetch_add(&host.populated_chunks, 1);
    return 0;
}

/* Populate every chunk of frames [mfn, mfn + nr) not populated yet. */
static int populate_frames(uint64_t mfn, uint64_t nr)
{
    for ( uint64_t c = mfn / POPULATE_CHUNK_FRAMES;
          c <= (mfn + nr - 1) / POPULATE_CHUNK_FRAMES; c++ )
    {
        int rc = populate_chunk(c, false);

        if ( rc )
            return rc;
    }
    return 0;
}

uint64_t host_nr_populate_chunks(void)
{
    return (host.max_page + POPULATE_CHUNK_FRAMES - 1) /
           POPULATE_CHUNK_FRAMES;
}

bool host_frame_populated(mfn_t mfn)
{
    return mfn < host.max_page && chunk_populated(mfn / POPULATE_CHUNK_FRAMES);
}

static double mono_secs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *populate_main(void *arg)
{
    uint64_t nr = host_nr_populate_chunks(), c;
    double t0 = mono_secs();

    (void)arg;
    pthread_mutex_lock(&host.populate_lock);
    while ( host.populate_held && !atomic_load(&host.populate_stop) )
        pthread_cond_wait(&host.populate_cond, &host.populate_lock);
    pthread_mutex_unlock(&host.populate_lock);
    for ( c = 0; c < nr && !atomic_load(&host.populate_stop); c++ )
    {
        int rc = populate_chunk(c, true);

        /*
         * Out of memory: stop here.  Allocations populate what they take
         * and fail cleanly (-ENOMEM) if they cannot.
         */
        if ( rc )
        {
            printk("ferry-hv: populating machine memory stopped at %llu MiB: "
                   "%s; frames are populated when they are allocated",
                   (unsigned long long)(c * POPULATE_CHUNK_FRAMES >> 8),
                   strerror(-rc));
            break;
        }
    }
    if ( c == nr )
        printk("ferry-hv: machine memory populated in %.2f s",
               mono_secs() - t0);
    pthread_mutex_lock(&host.populate_lock);
    host.populate_done = true;
    pthread_cond_broadcast(&host.populate_cond);
    pthread_mutex_unlock(&host.populate_lock);
    return NULL;
}

void host_populate_release(void)
{
    pthread_mutex_lock(&host.populate_lock);
    host.populate_held = false;
    pthread_cond_broadcast(&host.populate_cond);
    pthread_mutex_unlock(&host.populate_lock);
}

void host_populate_wait(void)
{
    pthread_mutex_lock(&host.populate_lock);
    while ( host.populate_running && !host.populate_done )
        pthread_cond_wait(&host.populate_cond, &host.populate_lock);
    pthread_mutex_unlock(&host.populate_lock);
}

/* ------------------------------------------------------------------------
 * Scrubbing (Xen's PGC_need_scrub, scrub_free_pages)
 * ------------------------------------------------------------------------ */

/*
 * Zero frame mfn, which the caller owns (out of the free bitmap), and
 * record that it holds zeros.  Relaxed: the frame reaches anyone else only
 * through heap_lock or a later hand-over, which order these stores.
 */
static void scrub_one_page(mfn_t mfn)
{
    memset(map_domain_page(mfn), 0, PAGE_SIZE);
    atomic_fetch_and_explicit(&host.maybe_nonzero[mfn / 64],
                              ~(1ULL << (mfn % 64)), memory_order_relaxed);
}

/*
 * Put frames [mfn, mfn + nr), their count_info already written, into the
 * free bitmap, and the marked ones into scrub_bitmap too.  Under heap_lock.
 * Freeing a frame that is free already is a hypervisor bug.
 */
static void heap_insert(uint64_t mfn, uint64_t nr)
{
    uint64_t dirty = 0;

    for ( uint64_t i = mfn; i < mfn + nr; i++ )
    {
        BUG_ON(bit_free(i));
        host.free_bitmap[i / 64] |= 1ULL << (i % 64);
        if ( atomic_load_explicit(&mfn_to_page(i)->count_info,
                                  memory_order_relaxed) & PGC_need_scrub )
        {
            host.scrub_bitmap[i / 64] |= 1ULL << (i % 64);
            dirty++;
        }
    }
    host.free_pages += nr;
    /* The scrubber sleeps only when nothing needs it. */
    if ( dirty && !host.nr_need_scrub )
        pthread_cond_signal(&host.scrub_cond);
    host.nr_need_scrub += dirty;
}

/*
 * One batch of the background scrubber, under scrub_lock: take one bitmap
 * word's dirty frames (at most 64, 256 KiB) out of the free heap, so that
 * no allocator can be given a frame mid-scrub, zero them outside the lock,
 * and give them back clean.  An allocator that finds no run while a batch
 * is out waits for it (scrub_returned) rather than fail.
 */
static void scrub_batch(void)
{
    uint64_t words = (host.max_page + 63) / 64, w = 0, mask = 0;

    spin_lock(&host.heap_lock);
    for ( uint64_t i = 0; i < words && host.nr_need_scrub; i++ )
    {
        w = (host.scrub_hint + i) % words;
        if ( host.scrub_bitmap[w] )
        {
            mask = host.scrub_bitmap[w];
            break;
        }
    }
    if ( mask )
    {
        BUG_ON((host.free_bitmap[w] & mask) != mask);
        host.free_bitmap[w] &= ~mask;
        host.scrub_bitmap[w] = 0;
        host.nr_need_scrub -= (uint64_t)__builtin_popcountll(mask);
        host.scrub_held_word = w;
        host.scrub_held_mask = mask;
        host.scrub_hint = w;
    }
    spin_unlock(&host.heap_lock);
    if ( !mask )
        return;

    for ( uint64_t m = mask; m; m &= m - 1 )
    {
        mfn_t mfn = w * 64 + (uint64_t)__builtin_ctzll(m);

        scrub_one_page(mfn);
        atomic_store_explicit(&mfn_to_page(mfn)->count_info, PGC_state_free,
                              memory_order_relaxed);
    }

    spin_lock(&host.heap_lock);
    host.free_bitmap[w] |= mask;
    host.scrub_held_mask = 0;
    pthread_cond_broadcast(&host.scrub_returned);
    spin_unlock(&host.heap_lock);
}

/*
 * The background scrubber.  Xen scrubs from its idle loop; the nearest
 * thing here is the lowest priority a process may give itself, so that a
 * busy host spends its CPUs on its domains and migrations, and the frames
 * the scrubber has not reached are zeroed by the allocation that takes
 * them.  Batches are small because an allocator or the auditor may be
 * waiting for the one in hand.
 */
static void *scrub_main(void *arg)
{
    (void)arg;
    if ( setpriority(PRIO_PROCESS, (id_t)gettid(), 19) )
        printk("ferry-hv: cannot lower the scrubber's priority: %s",
               strerror(errno));
    spin_lock(&host.heap_lock);
    for ( ; ; )
    {
        while ( !host.nr_need_scrub && !host.scrub_stop )
            pthread_cond_wait(&host.scrub_cond, &host.heap_lock.m);
        if ( host.scrub_stop )
            break;
        spin_unlock(&host.heap_lock);
        spin_lock(&host.scrub_lock);
        scrub_batch();
        spin_unlock(&host.scrub_lock);
        spin_lock(&host.heap_lock);
    }
    spin_unlock(&host.heap_lock);
    return NULL;
}

uint64_t hv_scrub_pending(void)
{
    uint64_t n;

    spin_lock(&host.heap_lock);
    n = host.nr_need_scrub +
        (uint64_t)__builtin_popcountll(host.scrub_held_mask);
    spin_unlock(&host.heap_lock);
    return n;
}

/* ------------------------------------------------------------------------
 * Allocating and freeing
 * ------------------------------------------------------------------------ */

struct page_info *alloc_heap_pages(unsigned int order, unsigned int memflags)
{
    uint64_t nr = 1ULL << order;
    int64_t mfn;

    if ( order > 30 )
        return NULL;
    spin_lock(&host.heap_lock);
    for ( ; ; )
    {
        mfn = host.free_pages >= nr ? find_free_run(order) : -1;
        /* The scrubber holds a few free frames for a moment. */
        if ( mfn >= 0 || !host.scrub_held_mask )
            break;
        pthread_cond_wait(&host.scrub_returned, &host.heap_lock.m);
    }
    if ( mfn >= 0 )
    {
        mark_range(host.free_bitmap, (uint64_t)mfn, nr, false);
        host.nr_need_scrub -= take_bits(host.scrub_bitmap, (uint64_t)mfn, nr);
        host.free_pages -= nr;
        host.alloc_hint = (uint64_t)mfn + nr;
    }
    spin_unlock(&host.heap_lock);
    if ( mfn < 0 )
        return NULL;
    /* The background thread may not have reached these frames yet. */
    if ( populate_frames((uint64_t)mfn, nr) )
    {
        /* Back as they were: the marked ones still need their scrub. */
        spin_lock(&host.heap_lock);
        heap_insert((uint64_t)mfn, nr);
        spin_unlock(&host.heap_lock);
        return NULL;
    }

    /*
     * The frames are ours alone now: relaxed stores, published by
     * whatever hands the run on (a domain's page_alloc_lock, a lock of
     * the hypervisor's own).
     */
    for ( uint64_t i = 0; i < nr; i++ )
    {
        struct page_info *pg = mfn_to_page((uint64_t)mfn + i);
        uint64_t caf = atomic_load_explicit(&pg->count_info,
                                            memory_order_relaxed);

        ASSERT((caf & PGC_state) == PGC_state_free);
        /*
         * Still marked: it holds an earlier owner's data.  Zero it, as
         * Xen's alloc_heap_pages does, unless the caller overwrites it
         * (MEMF_no_scrub), which leaves its maybe_nonzero bit set.
         */
        if ( (caf & PGC_need_scrub) && !(memflags & MEMF_no_scrub) )
            scrub_one_page((uint64_t)mfn + i);
        atomic_store_explicit(&pg->count_info, PGC_state_inuse,
                              memory_order_relaxed);
        atomic_store_explicit(&pg->type_info, 0, memory_order_relaxed);
        atomic_store_explicit(&pg->owner, 0, memory_order_relaxed);
        atomic_store_explicit(&pg->u, 0, memory_order_relaxed);
        pg->list_next = pg->list_prev = 0;
    }
    return mfn_to_page((uint64_t)mfn);
}

/*
 * Make frame mfn free in the frame table, marked if it may hold data.
 * Nobody maps it any more (domain frames arrive here after
 * flush_tlb_domain(), which also orders every write the domain made, and
 * the maybe_nonzero bit each write set, before us), so it is ours:
 * relaxed stores, published by heap_lock to the allocator that takes it
 * next.
 */
static void prepare_free(mfn_t mfn, bool need_scrub)
{
    struct page_info *p = mfn_to_page(mfn);
    _Atomic uint64_t *w = &host.maybe_nonzero[mfn / 64];
    uint64_t bit = 1ULL << (mfn % 64);
    bool dirty = atomic_load_explicit(w, memory_order_relaxed) & bit;

    /* Freeing a page that still has a type count is a hypervisor bug. */
    BUG_ON(atomic_load_explicit(&p->type_info, memory_order_relaxed) &
           PGT_count_mask);
    /* A dirty free frame has its bit set (the auditor checks it). */
    if ( need_scrub && !dirty )
    {
        atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
        dirty = true;
    }
    atomic_store_explicit(&p->count_info,
                          PGC_state_free | (dirty ? PGC_need_scrub : 0),
                          memory_order_relaxed);
    atomic_store_explicit(&p->type_info, 0, memory_order_relaxed);
    atomic_store_explicit(&p->owner, 0, memory_order_relaxed);
    set_gpfn_from_mfn(mfn, INVALID_M2P_ENTRY);
}

void free_heap_pages(struct page_info *pg, unsigned int order,
                     bool need_scrub)
{
    uint64_t nr = 1ULL << order, mfn = page_to_mfn(pg);

    for ( uint64_t i = 0; i < nr; i++ )
        prepare_free(mfn + i, need_scrub);
    spin_lock(&host.heap_lock);
    heap_insert(mfn, nr);
    spin_unlock(&host.heap_lock);
}

void hv_free_heap_page_list(const mfn_t *mfns, unsigned int nr,
                            bool need_scrub)
{
    for ( unsigned int i = 0; i < nr; i++ )
        prepare_free(mfns[i], need_scrub);
    spin_lock(&host.heap_lock);
    for ( unsigned int i = 0; i < nr; i++ )
        heap_insert(mfns[i], 1);
    spin_unlock(&host.heap_lock);
}

void hv_frame_written(mfn_t mfn)
{
    _Atomic uint64_t *w;
    uint64_t bit = 1ULL << (mfn % 64);

    if ( !mfn_valid(mfn) )
        return;
    w = &host.maybe_nonzero[mfn / 64];
    /*
     * Most writes hit frames already marked: a load first keeps the word's
     * cache line shared between the vCPUs that write neighbouring frames.
     * Sequentially consistent, so that a saver that reads the bit after
     * the writer went on to write the frame sees it set.
     */
    if ( !(atomic_load_explicit(w, memory_order_relaxed) & bit) )
        atomic_fetch_or(w, bit);
}

bool hv_frame_maybe_nonzero(mfn_t mfn)
{
    return !mfn_valid(mfn) ||
           (atomic_load(&host.maybe_nonzero[mfn / 64]) &
            (1ULL << (mfn % 64)));
}

uint64_t hv_free_pages(void)
{
    uint64_t n;

    spin_lock(&host.heap_lock);
    n = host.free_pages;
    spin_unlock(&host.heap_lock);
    return n;
}

/* ------------------------------------------------------------------------
 * Host set-up and tear-down
 * ------------------------------------------------------------------------ */

/*
 * fd >= 0: machine memory, populated in the background (populate_main).
 * fd < 0: the frame table, small, populated now.
 */
static void *map_memory(size_t len, int fd)
{
    int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS |
                                       MAP_POPULATE;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);

    return p == MAP_FAILED ? NULL : p;
}

/*
 * Machine memory is an anonymous memfd, shared with the toolstack by
 * passing its descriptor (HELLO).  Not a file on disk: the kernel would
 * write every page a guest dirties back to it.
 */
static int open_machine_memory(size_t len)
{
    int fd = memfd_create("ferry-machine-memory", MFD_CLOEXEC);

    if ( fd < 0 )
        return -errno;
    if ( ftruncate(fd, (off_t)len) < 0 )
    {
        int rc = -errno;

        close(fd);
        return rc;
    }
    return fd;
}

static int populate_start(bool held)
{
    uint64_t words = (host_nr_populate_chunks() + 63) / 64;
    int rc;

    host.populated = calloc(words, sizeof(*host.populated));
    host.populating = calloc(words, sizeof(*host.populating));
    if ( !host.populated || !host.populating )
        return -ENOMEM;
    host.populate_held = held;
    rc = pthread_create(&host.populate_thread, NULL, populate_main, NULL);
    if ( rc )
        return -rc;
    host.populate_running = true;
    return 0;
}

static int scrub_start(void)
{
    int rc = pthread_create(&host.scrub_thread, NULL, scrub_main, NULL);

    if ( rc )
        return -rc;
    host.scrub_running = true;
    return 0;
}

static void scrub_stop(void)
{
    if ( !host.scrub_running )
        return;
    spin_lock(&host.heap_lock);
    host.scrub_stop = true;
    pthread_cond_broadcast(&host.scrub_cond);
    spin_unlock(&host.heap_lock);
    pthread_join(host.scrub_thread, NULL);
    host.scrub_running = false;
}

static void populate_stop(void)
{
    if ( host.populate_running )
    {
        atomic_store(&host.populate_stop, true);
        host_populate_release();
        pthread_join(host.populate_thread, NULL);
        host.populate_running = false;
    }
    free((void *)host.populated);
    free((void *)host.populating);
    host.populated = NULL;
    host.populating = NULL;
}

/*
 * A hypervisor frame that privileged guests may map read-only, as Xen's
 * share_xen_page_with_privileged_guests(SHARE_ro): owned by DOMID_XEN and
 * typed none|validated with one type reference, so that nobody can ever
 * take a writable type reference (a writable mapping) to it.
 */
static void share_xen_frame_ro(struct page_info *pg)
{
    page_set_owner(pg, host.dom_xen);
    atomic_store(&pg->type_info, PGT_none | PGT_validated | 1);
    atomic_store(&pg->count_info,
                 PGC_xen_heap | PGC_allocated | PGC_state_inuse | 1);
}

/* Give the M2P its frames, owned by the hypervisor (DOMID_XEN). */
static int m2p_init(void)
{
    uint64_t bytes = host.max_page * sizeof(uint64_t);
    unsigned int order = 0;
    struct page_info *pg;

    host.m2p_nr_frames = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
    while ( (1ULL << order) < host.m2p_nr_frames )
        order++;
    pg = alloc_heap_pages(order, MEMF_no_scrub);
    if ( !pg )
        return -ENOMEM;
    host.m2p_first_mfn = page_to_mfn(pg);
    host.m2p = map_domain_page(host.m2p_first_mfn);
    memset(host.m2p, 0xff, (1ULL << order) * PAGE_SIZE);
    for ( uint64_t i = 0; i < (1ULL << order); i++ )
        share_xen_frame_ro(&pg[i]);
    return 0;
}

static int special_domains_init(unsigned int nr_control_vcpus)
{
    int rc;

    rc = domain_create(DOMID_XEN, DOMCREATE_privileged, 0, &host.dom_xen);
    if ( !rc )
        rc = domain_create(DOMID_IO, DOMCREATE_privileged, 0, &host.dom_io);
    if ( !rc )
        rc = domain_create(0, DOMCREATE_privileged,
                           nr_control_vcpus ? nr_control_vcpus : 1,
                           &host.dom0);
    if ( rc )
        return rc;
    /* Domain 0 runs from the start: its vCPUs are the toolstack's threads. */
    domain_unpause_by_systemcontroller(host.dom0);
    for ( unsigned int i = 0; i < host.dom0->max_vcpus; i++ )
        atomic_store(&host.dom0->vcpu[i]->is_down, false);
    return 0;
}

/* DOMAIN_WAIT's condition: its timeouts count on the monotonic clock. */
static void state_wait_init(void)
{
    pthread_condattr_t attr;

    pthread_mutex_init(&host.state_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&host.state_cond, &attr);
    pthread_condattr_destroy(&attr);
}

int host_init(const struct host_params *p)
{
    size_t len;
    int rc;

    memset(&host, 0, sizeof(host));
    host.mem_fd = -1;
    host.opt_pv_linear_pt = true;
    spin_lock_init(&host.heap_lock);
    spin_lock_init(&host.scrub_lock);
    pthread_cond_init(&host.scrub_cond, NULL);
    pthread_cond_init(&host.scrub_returned, NULL);
    spin_lock_init(&host.domlist_lock);
    state_wait_init();
    pthread_mutex_init(&host.populate_lock, NULL);
    pthread_cond_init(&host.populate_cond, NULL);

    host.max_page = p->memory_bytes >> PAGE_SHIFT;
    if ( host.max_page < 1024 || host.max_page > (1ULL << 32) - 2 )
        return -EINVAL;
    len = host.max_page << PAGE_SHIFT;

    rc = open_machine_memory(len);
    if ( rc < 0 )
        goto fail;
    host.mem_fd = rc;
    rc = -ENOMEM;
    host.mem = map_memory(len, host.mem_fd);
    host.frame_table = map_memory(host.max_page * sizeof(struct page_info),
                                  -1);
    host.free_bitmap = calloc((host.max_page + 63) / 64, sizeof(uint64_t));
    host.scrub_bitmap = calloc((host.max_page + 63) / 64, sizeof(uint64_t));
    /* Machine memory starts zeroed: no frame may hold data yet. */
    host.maybe_nonzero = calloc((host.max_page + 63) / 64, sizeof(uint64_t));
    if ( !host.mem || !host.frame_table || !host.free_bitmap ||
         !host.scrub_bitmap || !host.maybe_nonzero )
        goto fail;
    rc = populate_start(p->populate_held);
    if ( rc )
        goto fail;

    for ( uint64_t mfn = 0; mfn < host.max_page; mfn++ )
        atomic_store(&host.frame_table[mfn].count_info, PGC_state_free);
    /* MFN 0 stays reserved: 0 means "no frame" in vCPU state. */
    mark_range(host.free_bitmap, 1, host.max_page - 1, true);
    host.free_pages = host.max_page - 1;
    if ( p->scrub_background )
    {
        rc = scrub_start();
        if ( rc )
            goto fail;
    }

    rc = special_domains_init(p->nr_control_vcpus);
    if ( rc )
        goto fail;
    share_xen_frame_ro(&host.frame_table[0]);
    rc = m2p_init();
    if ( rc )
        goto fail;
    rc = xenmap_init();
    if ( rc )
        goto fail;
    return 0;

 fail:
    host_dispose();
    return rc;
}

/* Destroy d to the end, unless it already is (then nothing happens). */
static void kill_to_completion(struct domain *d)
{
    if ( d )
        while ( domain_kill(d) == -ERESTART )
            ;
}

void host_dispose(void)
{
    /*
     * Nothing acts for a guest any more.  With no current vCPU, domain 0
     * is not "self" to domain_kill() and no kill is preempted.
     */
    set_current(NULL);
    /*
     * Guest vCPUs may still be running (a daemon stopped with guests up):
     * their runner threads validate tables against the idle L4's Xen
     * slots, so they stop before those are torn down.
     */
    for ( unsigned int id = 0; id < ARRAY_SIZE(host.domain_by_id); id++ )
        if ( host.domain_by_id[id] )
            domain_rt_stop(host.domain_by_id[id]);
    if ( host.idle_pg_table )
        xenmap_dispose();
    for ( unsigned int id = 0; id < ARRAY_SIZE(host.domain_by_id); id++ )
    {
        struct domain *d = host.domain_by_id[id];

        if ( !d || d == host.dom_xen || d == host.dom_io )
            continue;
        kill_to_completion(d);
    }
    /*
     * The special domains go last: they own the hypervisor's frames (the
     * M2P) and MMIO, which guests' tables referenced until just now.
     */
    kill_to_completion(host.dom_io);
    kill_to_completion(host.dom_xen);
    scrub_stop();
    populate_stop();
    if ( host.mem )
        munmap(host.mem, host.max_page << PAGE_SHIFT);
    if ( host.frame_table )
        munmap(host.frame_table, host.max_page * sizeof(struct page_info));
    if ( host.mem_fd >= 0 )
        close(host.mem_fd);
    free(host.free_bitmap);
    free(host.scrub_bitmap);
    free((void *)host.maybe_nonzero);
    pthread_cond_destroy(&host.scrub_returned);
    pthread_cond_destroy(&host.scrub_cond);
    spin_lock_destroy(&host.scrub_lock);
    pthread_cond_destroy(&host.populate_cond);
    pthread_mutex_destroy(&host.populate_lock);
    pthread_cond_destroy(&host.state_cond);
    pthread_mutex_destroy(&host.state_lock);
    memset(&host, 0, sizeof(host));
    host.mem_fd = -1;
}
