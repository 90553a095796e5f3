/* SPDX-License-Identifier: MIT */
/*
 * hv.h: the hypervisor core's internal interface.
 *
 * ferry-hv is a user-space hypervisor: one process per host, owning that
 * host's machine memory and enforcing Xen's x86-64 PV memory-management
 * rules on it.  This header is shared by every file of hypervisor/ and by
 * the unit tests, which compile the real sources.  Nothing outside
 * hypervisor/ and tests/ includes it; the toolstack talks to the daemon
 * through the control protocol and hypervisor/include/public/abi.h.
 *
 * Names follow Xen's where the function does what Xen's does (get_page,
 * _get_page_type, promote_l2_table ...), so that a reader who knows Xen can
 * check ferry against it line by line.  Functions of ferry's own carry the
 * hv_ prefix.
 *
 * WHICH XEN
 *
 * ferry mirrors one build of one Xen: x86-64, release build, with shadow
 * paging, i.e. Xen HEAD c447b73 built with CONFIG_SHADOW_PAGING=y,
 * CONFIG_DEBUG=n and without CONFIG_PV32 or CONFIG_BIGMEM.  Shadow paging
 * because PV log-dirty, which ferry models, needs it in Xen; that fixes the
 * count_info layout (PGC_shadowed_pt at bit 56, a 56-bit count).  Release
 * because that is what hosts run: where a rule differs between builds,
 * ferry follows the release build (so guests may set PTE bit 62, which a
 * debug build reserves as _PAGE_GNTTAB).  Xen's gdprintk lines, debug-only in
 * Xen, are nevertheless kept (see Logging below).
 *
 * THE MODEL
 *
 * Machine memory is one shared mapping (a memfd, or a file in the host's run
 * directory) of max_page frames; frame N lives at host.mem + N * PAGE_SIZE.
 * Beside it, the frame table holds one struct page_info per frame, and the
 * M2P (machine_to_phys_mapping) holds one 8-byte entry per frame, stored in
 * machine frames owned by DOMID_XEN so that guests can map it read-only as
 * on Xen.  There is exactly one host per process: `host` is a global, as
 * frame_table and machine_to_phys_mapping are in Xen.
 *
 * CONCURRENCY
 *
 * Hypercalls run on many threads at once (one per guest vCPU plus the
 * control threads).  count_info and type_info change only by cmpxchg loops
 * with Xen's semantics; the union word likewise.  Lock order, outermost
 * first:  scrub_lock -> domlist_lock -> d->page_alloc_lock -> heap_lock
 * (scrub_lock: the background scrubber's batch, held by the auditor for a
 * whole audit), and for the
 * hypervisor's own page tables: page_lock (PGT_locked of a guest table) ->
 * the XSA-345 L3 lock -> map_pgdir_lock.  Never take a page_lock while
 * holding an L3 lock.  A thread holds at most one page_lock at a time.
 *
 * "current" is the vCPU on whose behalf this thread runs a hypercall (a
 * guest vCPU, or a vCPU of the control domain, domain 0, for toolstack
 * operations).  Deferred puts (old_guest_table) and preemption hang off it
 * exactly as in Xen.
 *
 * ERRORS
 *
 * Functions return 0 or a negative errno, Xen's values.  -ERESTART and
 * -EINTR are internal to (de)validation and the hypercall layer turns them
 * into continuations: a do_*() hypercall that returns -ERESTART has
 * recorded its progress and must be called again with the same arguments.
 */
#ifndef FERRY_HV_H
#define FERRY_HV_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "include/public/abi.h"

/* ------------------------------------------------------------------------
 * Basics
 * ------------------------------------------------------------------------ */

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))

typedef uint64_t mfn_t;
typedef uint64_t pfn_t;
typedef uint64_t intpte_t;

/* A hypervisor bug: log where, then abort (Xen's BUG()). */
#define BUG() hv_bug(__FILE__, __LINE__, NULL)
#define BUG_ON(c) do { if ( unlikely(c) ) hv_bug(__FILE__, __LINE__, #c); } \
                  while ( 0 )
#ifndef ASSERT      /* the unit tests' harness.h has its own */
#define ASSERT(c) BUG_ON(!(c))
#endif
void hv_bug(const char *file, int line, const char *cond)
    __attribute__((noreturn));

/* Spinlocks are mutexes: ThreadSanitizer understands them. */
typedef struct { pthread_mutex_t m; } spinlock_t;
void spin_lock_init(spinlock_t *l);
void spin_lock_destroy(spinlock_t *l);
static inline void spin_lock(spinlock_t *l) { pthread_mutex_lock(&l->m); }
static inline void spin_unlock(spinlock_t *l) { pthread_mutex_unlock(&l->m); }
static inline bool spin_trylock(spinlock_t *l)
{
    return pthread_mutex_trylock(&l->m) == 0;
}
/* What a spinning CPU does between tries: give the core away. */
void cpu_relax(void);

/* cmpxchg with Xen's contract: returns the value seen before the exchange. */
static inline uint64_t cmpxchg64(_Atomic uint64_t *p, uint64_t old,
                                 uint64_t new)
{
    atomic_compare_exchange_strong(p, &old, new);
    return old;
}
static inline uint32_t cmpxchg32(_Atomic uint32_t *p, uint32_t old,
                                 uint32_t new)
{
    atomic_compare_exchange_strong(p, &old, new);
    return old;
}

/* ------------------------------------------------------------------------
 * Logging (hypervisor/log.c)
 *
 * Every line goes to the host's console ring, which `xl dmesg` reads, and
 * to the daemon's log sink if one is set.  Xen's gdprintk lines (debug
 * builds only on Xen) are always kept: ferry's hypervisor is a model meant
 * to be read, and tests check them.
 * ------------------------------------------------------------------------ */

enum hv_loglvl { HVLOG_ERR, HVLOG_WARNING, HVLOG_INFO, HVLOG_DEBUG };

#define XENLOG_ERR     HVLOG_ERR
#define XENLOG_WARNING HVLOG_WARNING
#define XENLOG_INFO    HVLOG_INFO
#define XENLOG_DEBUG   HVLOG_DEBUG

void hv_printk(enum hv_loglvl lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define printk(...)    hv_printk(HVLOG_INFO, __VA_ARGS__)
/* Xen's gdprintk: prefixed with the current vCPU as "d<dom>v<vcpu> ". */
void hv_gdprintk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define gdprintk(lvl, ...) hv_gdprintk(__VA_ARGS__)

/* Copy the console ring (oldest first) into buf; returns bytes written. */
size_t hv_console_read(char *buf, size_t len, uint64_t *cursor);
/*
 * Forget the console ring up to upto (a cursor hv_console_read returned):
 * later reads start there at the earliest (xl dmesg -c, Xen's
 * readconsolering with clear).  Lines written since stay.
 */
void hv_console_clear(uint64_t upto);
/* Does the ring hold a line containing needle?  (for tests) */
bool hv_log_contains(const char *needle);
void hv_log_clear(void);
void hv_log_set_sink(FILE *f, enum hv_loglvl max_lvl);

/* ------------------------------------------------------------------------
 * struct page_info and its bit fields (xen/arch/x86/include/asm/mm.h)
 * ------------------------------------------------------------------------ */

#define PG_shift(idx)   (64 - (idx))
#define PG_mask(x, idx) ((uint64_t)(x) << PG_shift(idx))

/* type_info */
#define PGT_none          PG_mask(0, 3)
#define PGT_l1_page_table PG_mask(1, 3)
#define PGT_l2_page_table PG_mask(2, 3)
#define PGT_l3_page_table PG_mask(3, 3)
#define PGT_l4_page_table PG_mask(4, 3)
#define PGT_seg_desc_page PG_mask(5, 3)
#define PGT_shared_page   PG_mask(6, 3)
#define PGT_writable_page PG_mask(7, 3)
#define PGT_type_mask     PG_mask(7, 3)
#define PGT_root_page_table PGT_l4_page_table
#define PGT_locked        PG_mask(1, 4)
#define PGT_pinned        PG_mask(1, 5)
#define PGT_validated     PG_mask(1, 6)
#define PGT_pae_xen_l2    0ULL          /* no 32-bit PV in ferry */
#define PGT_partial       PG_mask(1, 8)
#define PGT_non_coherent  PG_mask(1, 9)
#define PGT_count_width   PG_shift(9)
#define PGT_count_mask    ((1ULL << PGT_count_width) - 1)
#define PGT_type_equal(x, y) (!(((x) ^ (y)) & PGT_type_mask))
/* Level (1..4) of a page-table type word, 0 for other types. */
#define PGT_pt_level(t) \
    ((((t) & PGT_type_mask) >= PGT_l1_page_table && \
      ((t) & PGT_type_mask) <= PGT_l4_page_table) ? \
     (unsigned int)(((t) & PGT_type_mask) >> PG_shift(3)) : 0U)
#define PGT_for_level(l) PG_mask((uint64_t)(l), 3)

/*
 * count_info, as in an x86-64 Xen built with CONFIG_SHADOW_PAGING (see the
 * top of this file): bit 56 is PGC_shadowed_pt and the count is 56 bits
 * wide.  ferry's log-dirty does not build shadow tables, so it never sets
 * PGC_shadowed_pt; the bit is named so that the count stops where Xen's
 * does and no flag of ferry's can land on it.
 */
#define PGC_allocated       PG_mask(1, 1)
#define PGC_xen_heap        PG_mask(1, 2)
#define PGC_extra           PG_mask(1, 3)
#define PGC_broken          PG_mask(1, 4)
#define PGC_state           PG_mask(3, 6)
#define PGC_state_inuse     PG_mask(0, 6)
#define PGC_state_offlining PG_mask(1, 6)
#define PGC_state_offlined  PG_mask(2, 6)
#define PGC_state_free      PG_mask(3, 6)
#define PGC_need_scrub      PG_mask(1, 7)
#define PGC_shadowed_pt     PG_mask(1, 8)
#define PGC_count_width     PG_shift(8)
#define PGC_count_mask      ((1ULL << PGC_count_width) - 1)

/* Flags of _put_page_type and friends (xen/arch/x86/mm.c). */
#define PTF_partial_set           (1U << 0)
#define PTF_preemptible           (1U << 2)
#define PTF_defer                 (1U << 3)
#define PTF_retain_ref_on_restart (1U << 4)

/*
 * The 32-bit union word.  As in Xen it is either the TLB-flush timestamp or
 * {nr_validated_ptes:10, pad:5, partial_flags:1, linear_pt_count:16}, and
 * writing the timestamp clobbers the other three.  All updates go through
 * the helpers below (cmpxchg on the whole word), because linear_pt_count
 * changes concurrently with the owner of the validation.
 */
#define PGU_NR_VALIDATED_MASK 0x000003FFU
#define PGU_PARTIAL_FLAGS_BIT 15
#define PGU_LINEAR_SHIFT      16

/* 32 bytes per frame, as in Xen (non-BIGMEM). */
struct page_info
{
    uint32_t list_next;             /* page-list links: MFN + 1, 0 = none */
    uint32_t list_prev;
    _Atomic uint64_t count_info;
    _Atomic uint64_t type_info;
    _Atomic uint16_t owner;         /* domid + 1 of the owner; 0: anonymous */
    uint16_t pad;
    _Atomic uint32_t u;             /* the union word, see above */
};
_Static_assert(sizeof(struct page_info) == 32, "page_info is 32 bytes");

unsigned int page_nr_validated_ptes(const struct page_info *pg);
void page_set_nr_validated_ptes(struct page_info *pg, unsigned int n);
unsigned int page_partial_flags(const struct page_info *pg);
void page_set_partial_flags(struct page_info *pg, unsigned int f);
int16_t page_linear_pt_count(const struct page_info *pg);
/* Zero nr_validated_ptes, partial_flags and linear_pt_count together. */
void page_clear_validation_state(struct page_info *pg);
/* Set the TLB-flush timestamp (clobbers the validation fields). */
void page_set_tlbflush_timestamp(struct page_info *pg);
/* Linear page-table counters (xen/arch/x86/mm.c inc/dec_linear_*). */
bool inc_linear_entries(struct page_info *pg);
void dec_linear_entries(struct page_info *pg);
bool inc_linear_uses(struct page_info *pg);
void dec_linear_uses(struct page_info *pg);

/* ------------------------------------------------------------------------
 * The host: machine memory, frame table, M2P, heap (hypervisor/host.c)
 * ------------------------------------------------------------------------ */

struct domain;
struct vcpu;

struct host_params
{
    uint64_t memory_bytes;      /* machine memory; rounded down to frames */
    unsigned int nr_control_vcpus;  /* vCPUs of domain 0 (toolstack threads) */
    /* Tests: the background population waits for host_populate_release. */
    bool populate_held;
    /* Start the background scrubber (the daemon does; most tests do not). */
    bool scrub_background;
};

/* Machine memory is populated in chunks of this many frames (2 MiB). */
#define POPULATE_CHUNK_FRAMES 512ULL

struct host
{
    uint64_t max_page;              /* number of machine frames */
    uint8_t *mem;                   /* machine memory, max_page frames */
    int mem_fd;
    struct page_info *frame_table;
    uint64_t *m2p;                  /* machine_to_phys_mapping */
    mfn_t m2p_first_mfn;            /* M2P storage: contiguous frames */
    uint64_t m2p_nr_frames;

    /*
     * Frames that may hold something other than zeros (bit set), see
     * hv_frame_written().  Set lock-free, cleared by the heap's scrub.
     */
    _Atomic uint64_t *maybe_nonzero;

    spinlock_t heap_lock;           /* the free-frame bitmap */
    uint64_t *free_bitmap;          /* bit set: frame is free */
    uint64_t free_pages;            /* frames the scrubber holds included */
    uint64_t alloc_hint;

    /*
     * Scrubbing (host.c): free frames marked PGC_need_scrub have their bit
     * set in scrub_bitmap (nr_need_scrub of them, Xen's node_need_scrub).
     * The scrubber takes one word's worth out of the free bitmap at a time
     * (scrub_held_*) while it zeroes them.  All under heap_lock; the
     * conditions use it as their mutex.  scrub_lock is held by the
     * scrubber for a batch and by the auditor for an audit, so that an
     * audit sees no batch in flight.
     */
    uint64_t *scrub_bitmap;
    uint64_t nr_need_scrub;
    uint64_t scrub_hint;            /* bitmap word to look at first */
    uint64_t scrub_held_word, scrub_held_mask;
    pthread_cond_t scrub_cond;      /* the scrubber waits for work here */
    pthread_cond_t scrub_returned;  /* allocators wait for a held batch */
    spinlock_t scrub_lock;
    pthread_t scrub_thread;
    bool scrub_running, scrub_stop;

    /*
     * Background population of machine memory (host.c).  A chunk's bit in
     * populating is claimed, atomically, by whoever populates it (the
     * thread or an allocator); its bit in populated is set once it is
     * populated and touched.  Others wait for the claimer, so no frame is
     * handed out while a populate still reads it.  The lock guards only
     * the held/done flags (it nests inside nothing).
     */
    _Atomic uint64_t *populating;
    _Atomic uint64_t *populated;
    _Atomic uint64_t populated_chunks;
    _Atomic bool populate_stop;
    pthread_t populate_thread;
    bool populate_running;
    pthread_mutex_t populate_lock;
    pthread_cond_t populate_cond;
    bool populate_held, populate_done;

    spinlock_t domlist_lock;
    /* Broadcast when a domain shuts down or starts dying (DOMAIN_WAIT). */
    pthread_mutex_t state_lock;
    pthread_cond_t state_cond;      /* on CLOCK_MONOTONIC */
    /*
     * Indexed by domid.  Written under domlist_lock; read without it by
     * page_get_owner() and by the listings, which take a reference
     * (get_domain_by_id) before they use what they found: hence atomic.
     */
    struct domain *_Atomic domain_by_id[0x8000];
    domid_t last_domid;

    struct domain *dom_xen;         /* owner of the hypervisor's own frames */
    struct domain *dom_io;
    struct domain *dom0;            /* the control domain: toolstack vCPUs */

    mfn_t idle_pg_table;            /* the hypervisor's own L4 */
    _Atomic uint32_t tlbflush_clock;
    bool opt_pv_linear_pt;          /* Xen's pv-linear-pt, default true */
    unsigned int preempt_every;     /* spontaneous preemption period; 0: off */
    bool audit_every_hypercall;
};

extern struct host host;

int host_init(const struct host_params *p);
void host_dispose(void);
/* Background population: chunks in all, whether mfn's chunk is done, let a
 * held population start, wait until it has finished. */
uint64_t host_nr_populate_chunks(void);
bool host_frame_populated(mfn_t mfn);
void host_populate_release(void);
void host_populate_wait(void);

static inline struct page_info *mfn_to_page(mfn_t mfn)
{
    return &host.frame_table[mfn];
}
static inline mfn_t page_to_mfn(const struct page_info *pg)
{
    return (mfn_t)(pg - host.frame_table);
}
static inline bool mfn_valid(mfn_t mfn) { return mfn < host.max_page; }
/* The hypervisor's direct map of a frame. */
static inline void *map_domain_page(mfn_t mfn)
{
    return host.mem + (mfn << PAGE_SHIFT);
}
static inline void unmap_domain_page(const void *p) { (void)p; }

/* M2P (invariant 10: INVALID for free and shared xen-heap frames). */
static inline uint64_t get_gpfn_from_mfn(mfn_t mfn)
{
    return __atomic_load_n(&host.m2p[mfn], __ATOMIC_RELAXED);
}
static inline void set_gpfn_from_mfn(mfn_t mfn, uint64_t pfn)
{
    __atomic_store_n(&host.m2p[mfn], pfn, __ATOMIC_RELAXED);
}

/* Owner of a frame (NULL: anonymous, e.g. free). */
struct domain *page_get_owner(const struct page_info *pg);
void page_set_owner(struct page_info *pg, struct domain *d);

/*
 * The heap.  alloc_heap_pages returns 2^order contiguous, naturally aligned
 * frames, zeroed, with count_info = PGC_state_inuse and no owner; NULL when
 * none are free.  With MEMF_no_scrub a frame may still hold an earlier
 * owner's data (its maybe_nonzero bit is then set): only for frames the
 * hypervisor overwrites itself, never for a domain's.
 * free_heap_pages marks the frames that may hold data PGC_need_scrub, as
 * Xen's does; they are zeroed in the background or when allocated again,
 * whichever comes first (host.c).  need_scrub: mark every frame; without
 * it, a frame is marked if its maybe_nonzero bit is set, which is exact
 * for domain frames only (the hypervisor's own writes set no bit).
 * hv_scrub_pending: free frames not zeroed yet.
 */
#define MEMF_no_scrub (1U << 0)
struct page_info *alloc_heap_pages(unsigned int order, unsigned int memflags);
void free_heap_pages(struct page_info *pg, unsigned int order,
                     bool need_scrub);
/* free_heap_pages of nr single frames, under one heap_lock. */
void hv_free_heap_page_list(const mfn_t *mfns, unsigned int nr,
                            bool need_scrub);
uint64_t hv_free_pages(void);
uint64_t hv_scrub_pending(void);

/*
 * Which frames may hold data (ferry's, for the saver's zero pages and the
 * heap's scrub).  alloc_heap_pages hands out frames zeroed, bit clear, so
 * a frame nothing has written since it left the heap still is zero.
 * hv_frame_written() must be called
 * before (or, for a domain under log-dirty, in the same operation as the
 * paging_mark_dirty of) every write to a frame a domain owns: it is
 * called from paging_mark_dirty(), which Xen's write paths and ferry's
 * guest CPU call, and for every frame the toolstack maps writable.
 * The heap clears the bit when it zeroes the frame (and sets it for a
 * frame freed with need_scrub).  A clear bit therefore proves the frame
 * is zero; a set one proves nothing.
 */
void hv_frame_written(mfn_t mfn);
bool hv_frame_maybe_nonzero(mfn_t mfn);

/* ------------------------------------------------------------------------
 * Domains and vCPUs (hypervisor/domain.c)
 * ------------------------------------------------------------------------ */

/*
 * Domain life cycle (xen/common/domain.c):
 *
 *   domain_create()        ALIVE, controller pause count 1
 *      |  domain_kill()         (destroydomain)
 *      v
 *   DYING                  paused; relinquish_resources may be preempted
 *      |  relinquish done
 *      v
 *   DEAD                   all frames freed; struct freed at last put_domain
 */
enum domain_state { DOMSTATE_ALIVE, DOMSTATE_DYING, DOMSTATE_DEAD };

/*
 * Log-dirty state (hypervisor/paging.c).  The bitmap is indexed by PFN and
 * kept, as in Xen, as a trie: three levels of 512-entry nodes above 4 KiB
 * leaves (2^42 PFNs).  Nodes are added under `lock` and published with a
 * release store; marking a PFN is lock-free (an atomic OR on a leaf), and
 * nodes are freed only once no marker can be inside them (see `markers`).
 */
struct logdirty
{
    spinlock_t lock;            /* node allocation, CLEAN/PEEK, OFF */
    bool enabled;               /* read and written with __atomic builtins */
    void *bitmap;               /* the trie's root node; NULL: empty */
    _Atomic unsigned int markers;   /* threads inside paging_mark_*() */
    _Atomic uint64_t dirty_count;
    _Atomic uint64_t fault_count;
    _Atomic uint64_t failed_allocs;
};

struct grant_table;

struct vcpu
{
    unsigned int vcpu_id;
    struct domain *domain;

    /* Register state, the whole CPU as the stream carries it. */
    struct vcpu_guest_context ctxt;
    bool is_initialised;
    _Atomic bool is_down;           /* not online */
    _Atomic int pause_count;        /* vcpu_pause() nesting */
    _Atomic bool blocked;           /* SCHEDOP_block */
    _Atomic bool running;
    _Atomic uint64_t cpu_time;      /* ns run so far (the guest CPU adds) */
    _Atomic int processor;          /* host CPU its runner last started on */

    /* Base page tables: each holds one general + one L4 type reference. */
    mfn_t guest_table;              /* 0: none */
    mfn_t guest_table_user;         /* 0: none */
    /* GDT frames and LDT pages: general + seg_desc type ref each. */
    mfn_t gdt_frames[16];
    unsigned int gdt_ents;
    /*
     * The LDT's shadow mappings (Xen's pv_ldt_ptes): ldt_frames[n] is the
     * frame of LDT page n (ctxt.ldt_base + n * PAGE_SIZE) once the guest
     * has used it, 0 before.  Set by the vCPU itself only.
     */
    mfn_t ldt_frames[16];

    /* Deferred put (xen/arch/x86/mm.c put_old_guest_table). */
    struct page_info *old_guest_table;
    struct page_info *old_guest_ptpg;
    bool old_guest_table_partial;

    /* Preemption: a budget for real runs, injection points for tests. */
    unsigned int preempt_budget;
    struct preempt_point
    {
        unsigned int level;         /* 1..4; 0: any level */
        unsigned int index;         /* entry index */
        unsigned int op;            /* PREEMPT_PROMOTE / _DEMOTE / _ANY */
        mfn_t mfn;                  /* INVALID_MFN: any table */
        unsigned int hits;          /* fire this many times, then disarm */
    } preempt_inject[4];

    /* Bumped whenever Xen would flush this vCPU's TLB. */
    _Atomic uint64_t tlb_flush_gen;
    uint64_t hcall_cont_rc;         /* rc carried across a final continuation */
    void *runner;                   /* the guest CPU (issue 3), opaque here */
};

struct domain
{
    domid_t domain_id;
    _Atomic int refcnt;             /* get_domain / put_domain */
    _Atomic int state;              /* enum domain_state */
    bool is_privileged;             /* domain 0 */
    bool translated;                /* auto-translated: has a p2m (Arm/HVM) */
    bool cache_flush_permitted;     /* iomem/ioport capability */

    spinlock_t page_alloc_lock;
    uint32_t page_list_head, page_list_tail;    /* MFN + 1 */
    uint32_t xenpage_list_head, xenpage_list_tail;
    _Atomic uint32_t tot_pages;
    _Atomic uint32_t max_pages;
    _Atomic uint32_t xenheap_pages;
    _Atomic uint32_t extra_pages;
    _Atomic uint32_t nr_l4_pages;

    _Atomic int controller_pause_count;
    /*
     * Set (release) once domain_create has built the domain: until then
     * get_domain_by_id does not find it, as Xen inserts a domain into its
     * list only at the end of domain_create.  domain_by_id holds it from
     * the start so that the domid is taken and page_get_owner works.
     */
    _Atomic bool listed;
    _Atomic bool creation_finished;
    _Atomic bool is_shutting_down;
    _Atomic bool is_shut_down;
    _Atomic int shutdown_code;      /* -1: none */

    mfn_t shared_info_mfn;
    uint64_t vm_assist;
    uint8_t handle[16];
    uint32_t ssidref;

    /* The p2m of an auto-translated domain (NULL for PV). */
    spinlock_t p2m_lock;
    uint64_t *p2m;                  /* gfn -> mfn, INVALID_MFN when absent */
    uint64_t p2m_size;

    struct logdirty logdirty;
    struct grant_table *grant_table;
    struct domain_rt *rt;           /* running guests (hypervisor/vcpu.c) */
    /* Migration throttle: percent of each vCPU's time withheld (0..99). */
    _Atomic unsigned int throttle_pct;

    /* Continuation state of a preempted destroy. */
    unsigned int relinquish_stage;
    /* Pages relinquish_memory() has visited in the current pass. */
    uint32_t relmem_list_head, relmem_list_tail;

    unsigned int max_vcpus;
    struct vcpu **vcpu;
};

#define for_each_vcpu(d, v) \
    for ( unsigned int i_##v = 0; \
          i_##v < (d)->max_vcpus && ((v) = (d)->vcpu[i_##v], 1); i_##v++ ) \
        if ( v )

/* The vCPU this thread acts for (Xen's `current`). */
extern _Thread_local struct vcpu *current;
static inline void set_current(struct vcpu *v) { current = v; }

#define DOMCREATE_translated (1U << 0)      /* ferry: Arm-style p2m */
#define DOMCREATE_privileged (1U << 1)

/* Creates a domain with domid (DOMID_ANY: the next free one). */
int domain_create(domid_t domid, unsigned int flags, unsigned int max_vcpus,
                  struct domain **d_out);
/* The same, with the toolstack's handle and ssidref (Xen's createdomain
 * config) in place before any lookup can find the domain. */
int domain_create_as(domid_t domid, unsigned int flags,
                     unsigned int max_vcpus, const uint8_t handle[16],
                     uint32_t ssidref, struct domain **d_out);
/*
 * Wake the toolstack's waiters (DOMAIN_WAIT) after a domain's shutdown or
 * dying state changed; domain_wait_shutdown blocks until d has shut down
 * or is dying, or until timeout_ms has passed.
 */
void domain_state_changed(void);
void domain_wait_shutdown(struct domain *d, unsigned int timeout_ms);
/* Look up and take a reference (NULL if absent); put_domain drops it. */
struct domain *get_domain_by_id(domid_t domid);
bool get_domain(struct domain *d);
void put_domain(struct domain *d);
/* Xen's rcu_lock_domain_by_id(): the system domains are not listed. */
struct domain *lock_domain_by_id(domid_t domid);
/* Xen's rcu_lock_domain_by_any_id(): DOMID_SELF is the caller's domain. */
struct domain *lock_domain_by_any_id(domid_t domid);
/* The toolstack's domain; the system domains (DOMID_XEN ...) never are. */
static inline bool is_control_domain(const struct domain *d)
{
    return d->is_privileged && d->domain_id < DOMID_FIRST_RESERVED;
}
/* XSM_TARGET under the dummy policy: the domain itself or the controller. */
static inline bool xsm_target_ok(const struct domain *src,
                                 const struct domain *d)
{
    return src == d || is_control_domain(src);
}
/* destroydomain: -ERESTART while there is more to do. */
int domain_kill(struct domain *d);
/*
 * Return a xen-heap frame that d shared (shared_info, grant frames) to the
 * heap if no reference is left on it; false if something still holds it.
 */
bool free_xenheap_frame_if_unused(struct domain *d, mfn_t mfn);
static inline bool domain_is_dying(const struct domain *d)
{
    return atomic_load(&d->state) != DOMSTATE_ALIVE;
}

int domain_pause_by_systemcontroller(struct domain *d);
int domain_unpause_by_systemcontroller(struct domain *d);
bool domain_is_paused(const struct domain *d);
void domain_shutdown(struct domain *d, unsigned int reason);

/* Page ownership and accounting (xen/common/page_alloc.c). */
#define MEMF_no_refcount (1U << 1)
int assign_pages(struct page_info *pg, unsigned int nr, struct domain *d,
                 unsigned int memflags);
struct page_info *alloc_domheap_pages(struct domain *d, unsigned int order,
                                      unsigned int memflags);
void free_domheap_pages(struct page_info *pg, unsigned int order);
void share_xen_page_with_guest(struct page_info *pg, struct domain *d,
                               bool writable);
/* Walk a domain's page list under page_alloc_lock: fn returns non-zero to stop. */
int domain_for_each_page(struct domain *d, bool xenpages,
                         int (*fn)(struct page_info *pg, void *arg), void *arg);

/* ------------------------------------------------------------------------
 * Running guests (hypervisor/vcpu.c, hypervisor/hypercall.c)
 *
 * Each online, initialised vCPU of a domain runs on a thread of its own
 * executing the guest ISA (isa.h) through the guest's page tables.  The
 * runtime is created with the domain and needs no caller to start it: a
 * runner thread appears for each vCPU the first time the domain is
 * runnable, and parks whenever it is not (paused, blocked, down, shut
 * down).
 * ------------------------------------------------------------------------ */

struct domain_rt;

int domain_rt_init(struct domain *d);
/* Stop and join every runner (domain_kill).  Idempotent. */
void domain_rt_stop(struct domain *d);
/* Stop, then free the runtime (domain_free only).  Idempotent. */
void domain_rt_destroy(struct domain *d);
/* The domain may have become runnable: start or wake its runners. */
void domain_rt_kick(struct domain *d);
/* Return only when no vCPU of d is executing guest code. */
void domain_rt_sync(struct domain *d);
/* The same for one vCPU (vcpu_pause() in Xen). */
void vcpu_pause(struct vcpu *v);

/*
 * The migration throttle (QEMU's auto-converge, as a scheduler cap):
 * while pct is not 0 each vCPU of the domain runs at most (100 - pct)% of
 * every SCHED_THROTTLE_PERIOD_NS of wall time, and is parked (not
 * running, so pausing it stays immediate) for the rest.  A migration
 * sets it while pre-copy does not converge; it is lifted when the
 * migration ends (by the toolstack, and by the hypervisor when log-dirty
 * is switched off or the domain is resumed).  -EINVAL above
 * SCHED_THROTTLE_MAX.
 */
#define SCHED_THROTTLE_MAX 99U
#define SCHED_THROTTLE_PERIOD_NS 10000000ULL
int domain_set_throttle(struct domain *d, unsigned int pct);

/*
 * One vCPU's duty-cycle account.  sched_throttle_charge() adds ran_ns of
 * guest execution ending at now and returns 0 if the vCPU may run on, or
 * the time until which it must be parked.  An overrun (a step longer
 * than what was left) is owed and parks it longer, so that over many
 * periods the share is the cap.  Used by the runners; public for tests.
 */
struct sched_throttle
{
    uint64_t start;                 /* the account's origin (ns) */
    uint64_t ran;                   /* ns run since start */
    unsigned int pct;               /* the cap it counts for */
};
uint64_t sched_throttle_charge(struct sched_throttle *t, unsigned int pct,
                               uint64_t now, uint64_t ran_ns);
void vcpu_unpause(struct vcpu *v);
/*
 * Xen's domain_pause(): vcpu_pause() each vCPU of d, so it returns once
 * none of them runs guest code (the caller's own vCPU excepted).  The
 * counts are per vCPU, so these nest with each other and with
 * vcpu_pause().
 */
void domain_pause(struct domain *d);
void domain_unpause(struct domain *d);

/* Crash the domain: log why, and shut it down with SHUTDOWN_crash. */
void domain_crash(struct domain *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ask the guest to shut down (SHUTDOWN_* reason): ferry's control event. */
int domain_request_shutdown(struct domain *d, unsigned int reason);

/*
 * The guest's console: what it wrote with console_io.  The ring is counted
 * apart from the domain: domain_console_get takes a reference (NULL if the
 * domain has no runtime), console_put drops it, and the ring lives until
 * the last one goes, so a reader can drain it after the domain is gone.
 * console_read copies from *cursor (bytes ever written) and sets *lost to
 * what the ring overwrote before it was read, so one read never returns
 * more than DOMAIN_CONSOLE_RING bytes.
 */
#define DOMAIN_CONSOLE_RING (64U << 10)
struct domain_console;
void domain_console_put(struct domain *d, const char *buf, size_t len);
struct domain_console *domain_console_get(struct domain *d);
void console_put(struct domain_console *con);
domid_t console_domid(const struct domain_console *con);
size_t console_read(struct domain_console *con, char *buf, size_t len,
                    uint64_t *cursor, uint64_t *lost);

/* Guest system time in ns (what rdtime returns and timers count in). */
uint64_t hv_system_time(void);
/* Arm (deadline ns, 0: cancel) the vCPU's one-shot timer. */
void vcpu_set_timer(struct vcpu *v, uint64_t deadline);

/* Copy through v's page tables; -EFAULT unless every byte is reachable. */
int copy_from_guest(struct vcpu *v, void *dst, uint64_t va, size_t len);
int copy_to_guest(struct vcpu *v, uint64_t va, const void *src, size_t len);

struct cpu_user_regs;
/* The guest's hcall instruction (hypercall.c); *action: ISA_HCALL_*. */
long hv_guest_hypercall(struct vcpu *v, struct cpu_user_regs *regs,
                        int *action);

/* ------------------------------------------------------------------------
 * Preemption (hypervisor/preempt.c)
 * ------------------------------------------------------------------------ */

#define PREEMPT_PROMOTE 1U
#define PREEMPT_DEMOTE  2U
#define PREEMPT_ANY     (PREEMPT_PROMOTE | PREEMPT_DEMOTE)
#define HV_PREEMPT_BUDGET 4096      /* the daemon's host.preempt_every */

/* Xen's hypercall_preempt_check(): true when this hypercall should stop. */
bool hypercall_preempt_check(void);
/* The same, asked by (de)validation before entry idx of table mfn. */
bool hypercall_preempt_check_pt(unsigned int level, unsigned int idx,
                                mfn_t mfn, unsigned int op);
/* Test hook: make the check fire before entry idx of a level-`level` table. */
void hv_inject_preempt(struct vcpu *v, unsigned int level, unsigned int idx,
                       mfn_t mfn, unsigned int op, unsigned int hits);
void hv_clear_preempt(struct vcpu *v);

/* ------------------------------------------------------------------------
 * References (hypervisor/page.c)
 * ------------------------------------------------------------------------ */

struct domain *page_get_owner_and_reference(struct page_info *pg);
bool get_page(struct page_info *pg, const struct domain *d);
void get_page_light(struct page_info *pg);
void put_page(struct page_info *pg);
void put_page_alloc_ref(struct page_info *pg);

int _get_page_type(struct page_info *pg, uint64_t type, bool preemptible);
int _put_page_type(struct page_info *pg, unsigned int flags,
                   struct page_info *ptpg);
bool get_page_type(struct page_info *pg, uint64_t type);    /* 1/0 */
int get_page_type_preemptible(struct page_info *pg, uint64_t type);
void put_page_type(struct page_info *pg);
int put_page_type_preemptible(struct page_info *pg);
bool get_page_and_type(struct page_info *pg, struct domain *d, uint64_t type);
void put_page_and_type(struct page_info *pg);
int put_page_and_type_preemptible(struct page_info *pg);
int put_old_guest_table(struct vcpu *v);

bool page_lock(struct page_info *pg);
void page_unlock(struct page_info *pg);
/*
 * Race injection, for unit tests only (NULL otherwise): when set,
 * _put_page_type() calls it with the page between reading type_info and
 * the cmpxchg that acts on what it read.  A test changes the page there,
 * as another vCPU could, and so loses that cmpxchg deterministically.  The
 * hook runs on the putting thread, which holds no lock at that point.
 */
extern void (*_Atomic hv_put_page_type_race)(struct page_info *pg);

/* ------------------------------------------------------------------------
 * Page-table validation (hypervisor/pt.c)
 * ------------------------------------------------------------------------ */

/* Flags of a PTE as Xen's 24-bit encoding (bits 11:0 and 63:52). */
#define get_pte_flags(x) ((uint32_t)(((x) >> 40) & ~0xFFFULL) | \
                          (uint32_t)((x) & 0xFFFULL))
#define put_pte_flags(x) ((((intpte_t)(x) & ~0xFFFULL) << 40) | \
                          ((x) & 0xFFFULL))
#define pte_mfn(e) (((e) & PTE_MFN_MASK) >> PAGE_SHIFT)
#define _PAGE_GUEST_KERNEL (1U << 12)
/*
 * Xen's debug builds mark grant PTEs with PTE bit 62 (flag bit 22), forbid
 * guests that bit, and fault a guest that drops a marked entry other than
 * through the grant interface.  Release builds, which ferry mirrors, define
 * _PAGE_GNTTAB as 0 (xen/arch/x86/include/asm/page.h): grant PTEs carry no
 * mark, and bit 62 is the guest's, one of the AVAIL_HIGH bits.
 */
#define _PAGE_GNTTAB       0U

/* Disallow masks in Xen's 24-bit flag encoding (reference 4.1). */
#define BASE_DISALLOW_MASK 0xFF000198U
#define L2_DISALLOW_MASK   BASE_DISALLOW_MASK
#define L3_DISALLOW_MASK   BASE_DISALLOW_MASK
#define L4_DISALLOW_MASK   BASE_DISALLOW_MASK
uint32_t l1_disallow_mask(const struct domain *d);
/*
 * Would replacing entry o by n change only flags that need no
 * re-validation (same MFN; only NX, AVAIL_HIGH, AVAIL, G, D, A, US differ)?
 * Both present.  Xen's l?e_has_changed() fast path.
 */
bool pte_fastpath_update(intpte_t o, intpte_t n);

int validate_page(struct page_info *pg, uint64_t type, bool preemptible);
int devalidate_page(struct page_info *pg, uint64_t type, bool preemptible);
int get_page_from_l1e(intpte_t l1e, struct domain *l1e_owner,
                      struct domain *pg_owner);
void put_page_from_l1e(intpte_t l1e, struct domain *l1e_owner);
/* L2..L4 entries: flags are PTF_*; table is the MFN holding the entry. */
int get_page_from_l2e(intpte_t l2e, mfn_t table, struct domain *d,
                      unsigned int flags);
int get_page_from_l3e(intpte_t l3e, mfn_t table, struct domain *d,
                      unsigned int flags);
int get_page_from_l4e(intpte_t l4e, mfn_t table, struct domain *d,
                      unsigned int flags);
int put_page_from_l2e(intpte_t l2e, mfn_t table, unsigned int flags);
int put_page_from_l3e(intpte_t l3e, mfn_t table, unsigned int flags);
int put_page_from_l4e(intpte_t l4e, mfn_t table, unsigned int flags);
/* Write Xen's slots 256..271 into an L4 (init_xen_l4_slots). */
void init_xen_l4_slots(intpte_t *l4t, mfn_t l4mfn, const struct domain *d);
intpte_t adjust_guest_l1e(intpte_t e, const struct domain *d);
intpte_t adjust_guest_l2e(intpte_t e, const struct domain *d);
intpte_t adjust_guest_l3e(intpte_t e, const struct domain *d);
intpte_t adjust_guest_l4e(intpte_t e, const struct domain *d);
bool is_guest_l4_slot(unsigned int slot);

/* ------------------------------------------------------------------------
 * Guest memory-management hypercalls (hypervisor/mmu.c)
 *
 * All act for `current`.  -ERESTART: progress recorded in *done (and in the
 * vCPU); call again with the same arguments to continue.
 * ------------------------------------------------------------------------ */

long do_mmu_update(struct mmu_update *reqs, unsigned int count,
                   unsigned int *done, unsigned int foreigndom);
long do_mmuext_op(struct mmuext_op *ops, unsigned int count,
                  unsigned int *done, unsigned int foreigndom);
long do_update_va_mapping(uint64_t va, uint64_t val, uint64_t flags);
long do_update_va_mapping_otherdomain(uint64_t va, uint64_t val,
                                      uint64_t flags, domid_t domid);
int new_guest_cr3(mfn_t mfn);
/* Flush the soft TLBs of every vCPU of d (Xen's flush_tlb_mask). */
void flush_tlb_domain(struct domain *d);

/* ------------------------------------------------------------------------
 * memory_op and grant tables (hypervisor/memory.c, hypervisor/grant.c)
 * ------------------------------------------------------------------------ */

/*
 * memory_op.  *cmd is the guest's command register: the op in its low
 * MEMOP_EXTENT_SHIFT bits, the start extent above them.  When the
 * reservation ops (increase/decrease_reservation, populate_physmap) or
 * add_to_physmap_batch are preempted they return -ERESTART after rewriting
 * *cmd to op | (next extent << MEMOP_EXTENT_SHIFT), exactly what Xen's
 * hypercall_create_continuation() writes into the guest's register: call
 * again with the same cmd pointer and arg.  The final return value is what
 * Xen returns (extents done for the reservation ops, 0/-errno otherwise).
 * arg per op: struct xen_memory_reservation (0, 1, 6), struct
 * xen_memory_domain (3, 4, 14), struct xen_machphys_mfn_list (5), struct
 * xen_add_to_physmap (7), struct xen_remove_from_physmap (15), struct
 * xen_add_to_physmap_batch (23); unused for maximum_ram_page (2).
 */
long do_memory_op(unsigned int *cmd, void *arg);
/* The domain's highest PFN (XENMEM_maximum_gpfn): a PV guest's own
 * shared_info max_pfn less one, a translated guest's highest P2M entry. */
uint64_t domain_get_maximum_gpfn(struct domain *d);
/*
 * grant_table_op: uop points at count structures of the op's type.  Never
 * preempted (ferry's batches are short); per-op results in each status.
 */
long do_grant_table_op(unsigned int cmd, void *uop, unsigned int count);
/*
 * Grant tables and domain destruction: gnttab_release_mappings() drops the
 * dying domain's mappings of other domains' grants (-ERESTART: call again);
 * grant_table_destroy() returns its grant frames to the heap once no guest
 * reference is left on them; grant_table_free() (last put_domain) frees any
 * frame still left and the table itself.
 */
int gnttab_release_mappings(struct domain *d);
void grant_table_destroy(struct domain *d);
void grant_table_free(struct domain *d);
/*
 * The grant frame idx of d for XENMAPSPACE_grant_table, growing the table
 * as Xen's gnttab_map_frame_begin() does.  On success *mfn holds a general
 * reference and the table lock is held until gnttab_map_frame_end().
 * Lock order: grant-table lock -> d->p2m_lock -> d->page_alloc_lock.
 */
int gnttab_map_frame_begin(struct domain *d, unsigned long idx, mfn_t *mfn);
void gnttab_map_frame_end(struct domain *d, mfn_t mfn);
/*
 * For the auditor: call fn for every granted frame of rd that device
 * mappings (GNTMAP_device_map) hold, with the mapping domain and the
 * number of read-only and writable device mappings.  Each holds one
 * general reference; each writable one also a writable type reference.
 * Takes rd's grant-table lock.
 */
void gnttab_audit_device_pins(struct domain *rd,
                              void (*fn)(void *arg, domid_t mapper, mfn_t mfn,
                                         unsigned int nr_ro,
                                         unsigned int nr_rw),
                              void *arg);
/* Arm-style xen-heap GFN kept in page_info (set and read under p2m_lock). */
uint64_t page_get_xenheap_gfn(const struct page_info *pg);
/*
 * Race injection, for unit tests only (NULL otherwise): when set,
 * add_to_physmap of a xen-heap frame (shared_info, a grant frame) calls it
 * just before taking the p2m_lock under which it writes the entry, so that
 * a test can run a competing add there, as another vCPU could.
 */
extern void (*_Atomic hv_xenheap_add_race)(struct domain *d, mfn_t mfn,
                                           uint64_t gfn);
/*
 * The physmap of a translated domain (d->p2m) and, for PV, the M2P side of
 * it.  guest_physmap_remove_page: -EILSEQ when gfn does not map mfn.
 */
int guest_physmap_add_page(struct domain *d, uint64_t gfn, mfn_t mfn,
                           unsigned int order);
int guest_physmap_remove_page(struct domain *d, uint64_t gfn, mfn_t mfn,
                              unsigned int order);
/* gfn -> mfn of a translated domain (INVALID_MFN if absent); PV: gfn. */
mfn_t gfn_to_mfn(struct domain *d, uint64_t gfn);
/* Drop every p2m entry of a dying translated domain. */
void relinquish_p2m_mapping(struct domain *d);

/* ------------------------------------------------------------------------
 * Toolstack operations (hypervisor/domctl.c, hypervisor/paging.c)
 * ------------------------------------------------------------------------ */

/*
 * All act for `current` (a vCPU of domain 0) on d, with Xen's checks and
 * error codes.  setvcpucontext: ctxt NULL resets the vCPU; -ERESTART means
 * a base table's validation (or a reset's devalidation) was preempted:
 * call again with the same arguments.  getpageframeinfo3 overwrites each
 * of the num MFNs in array with its XEN_DOMCTL_PFINFO_* type word.
 */
int domctl_getdomaininfo(struct domain *d,
                         struct xen_domctl_getdomaininfo *info);
int domctl_max_mem(struct domain *d, uint64_t max_memkb);
int domctl_getvcpuinfo(struct domain *d, unsigned int vcpu,
                       struct xen_domctl_getvcpuinfo *info);
int domctl_getvcpucontext(struct domain *d, unsigned int vcpu,
                          struct vcpu_guest_context *ctxt);
int domctl_setvcpucontext(struct domain *d, unsigned int vcpu,
                          const struct vcpu_guest_context *ctxt);
int domctl_getpageframeinfo3(struct domain *d, unsigned int num,
                             uint64_t *array);
/* The same with FERRY_PFINFO_* flags (control.h): XALLOC for zero pages. */
int hv_getpageframeinfo3(struct domain *d, unsigned int num, uint64_t *array,
                         unsigned int flags);
int domctl_shadow_op(struct domain *d, struct xen_domctl_shadow_op *sc);
/* pausedomain / unpausedomain: the domctl checks around domain.c's calls. */
int domctl_pausedomain(struct domain *d);
int domctl_unpausedomain(struct domain *d);
int domctl_resumedomain(struct domain *d);

/*
 * Descriptor tables (hypervisor/descriptor-tables.c, as
 * xen/arch/x86/pv/descriptor-tables.c).  Each of the ceil(entries / 512)
 * frames of a vCPU's GDT holds a general + seg_desc type reference,
 * recorded in v->gdt_frames.  pv_set_gdt: -EINVAL for more than
 * FIRST_RESERVED_GDT_ENTRY entries or a frame that cannot be typed
 * seg_desc.  do_set_gdt (hypercall 2) does it for current, with the frame
 * list already copied in.  do_update_descriptor (hypercall 10) writes one
 * descriptor at a guest physical address.  check_descriptor fixes up
 * *desc and says whether a guest may have it in a table.
 */
int pv_set_gdt(struct vcpu *v, const uint64_t *frames, unsigned int entries);
void pv_destroy_gdt(struct vcpu *v);
long do_set_gdt(const uint64_t *frames, unsigned int entries);
long do_update_descriptor(uint64_t gaddr, uint64_t desc);
bool check_descriptor(uint64_t *desc);
int validate_segdesc_page(struct page_info *pg);
/*
 * The LDT is mapped lazily, as on Xen: the guest CPU calls
 * pv_map_ldt_shadow_page (mmu.c) for current when it reads a descriptor
 * in an LDT page it has not used yet (offset: of that descriptor from
 * ldt_base, below ldt_ents * 8).  It takes a general + seg_desc type
 * reference on the frame the guest's kernel page tables map there and
 * records it in ldt_frames; false (the guest gets a fault) if nothing is
 * mapped there or the frame cannot take that type.  pv_destroy_ldt drops
 * them all (SET_LDT, NEW_BASEPTR, destruction); true if there were any.
 */
bool pv_map_ldt_shadow_page(unsigned int offset);
bool pv_destroy_ldt(struct vcpu *v);
/*
 * Drop v's guest_table and guest_table_user references (Xen's
 * vcpu_destroy_pagetables, used by vCPU reset and domain destruction).
 * -ERESTART: the rest is parked in v->old_guest_table; call again.
 */
int vcpu_destroy_pagetables(struct vcpu *v);

/* Log-dirty: called wherever Xen calls paging_mark_dirty(). */
void paging_mark_dirty(struct domain *d, mfn_t mfn);
void paging_mark_pfn_dirty(struct domain *d, pfn_t pfn);
bool paging_mode_log_dirty(const struct domain *d);
/* The guest CPU fixed up a write fault while logging (stats.fault_count). */
void paging_note_write_fault(struct domain *d);
/* Turn log-dirty off and free the bitmap (domain_kill calls it). */
void paging_teardown(struct domain *d);

/* ------------------------------------------------------------------------
 * The hypervisor's own address space (hypervisor/xenmap.c)
 * ------------------------------------------------------------------------ */

#define PAGE_HYPERVISOR_RW (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | \
                            _PAGE_DIRTY | _PAGE_NX)
#define PAGE_HYPERVISOR_RO (_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX)
#define PAGE_HYPERVISOR    PAGE_HYPERVISOR_RW
#define MAP_SMALL_PAGES    (1UL << 9)       /* _PAGE_AVAIL0 */
/* Flags of an entry that points to a lower table of Xen's own tables. */
#define __PAGE_HYPERVISOR  (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | \
                            _PAGE_DIRTY)
#define __PAGE_HYPERVISOR_RO (_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX)
/* Leaf flags of the guest-readable M2P view at RO_MPT_VIRT_START. */
#define HV_RO_MPT_FLAGS    (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | \
                            _PAGE_NX)

/*
 * The hypervisor's virtual layout (xen/arch/x86/include/asm/config.h):
 * slot 256 the read-only M2P (RO_MPT_VIRT_START, abi.h); slot 261 the
 * read-write M2P, then the vmap area, where map_pages_to_xen callers put
 * their mappings; slots 262..271 the direct map of all machine memory
 * (MFN m at HV_DIRECTMAP_VIRT_START + m * PAGE_SIZE).  Every L3 table of
 * slots 261..271 exists from xenmap_init on, because init_xen_l4_slots
 * copies those L4 entries into each guest L4 once.
 */
#define HV_L4_SLOT_VIRT(s)     (0xFFFF000000000000UL | ((uint64_t)(s) << 39))
#define HV_RDWR_MPT_VIRT_START HV_L4_SLOT_VIRT(261)
#define HV_RDWR_MPT_VIRT_END   (HV_RDWR_MPT_VIRT_START + (1UL << 38))
#define HV_VMAP_VIRT_START     HV_RDWR_MPT_VIRT_END
#define HV_VMAP_VIRT_END       (HV_VMAP_VIRT_START + (64UL << 30))
#define HV_DIRECTMAP_VIRT_START HV_L4_SLOT_VIRT(262)
#define HV_DIRECTMAP_VIRT_END  HV_L4_SLOT_VIRT(272)

int xenmap_init(void);
void xenmap_dispose(void);
int map_pages_to_xen(uint64_t virt, mfn_t mfn, uint64_t nr, uint64_t flags);
int destroy_xen_mappings(uint64_t s, uint64_t e);
int modify_xen_mappings(uint64_t s, uint64_t e, uint64_t nf);
/* Translate a hypervisor virtual address (INVALID_MFN if unmapped). */
mfn_t xen_map_to_mfn(uint64_t virt);
/* Table frames of the hypervisor's own page tables, L4 included. */
uint64_t hv_xenmap_nr_tables(void);
/*
 * Test hook: when set, xenmap yields the CPU between reading an entry and
 * acting on it, widening the windows the XSA-345 L3 lock closes.
 */
extern _Atomic bool hv_xenmap_widen_races;

/* ------------------------------------------------------------------------
 * The auditor (hypervisor/audit.c)
 *
 * Checks invariants 1-14 of the reference over one domain (d != NULL) or
 * the whole host.  Returns 0, or -EILSEQ with the first violation written
 * to msg ("mfn 0x1234: general count 3, expected 4 (...)").
 * ------------------------------------------------------------------------ */

int audit_domain(struct domain *d, char *msg, size_t len);
int audit_host(char *msg, size_t len);
/*
 * Auditing after every hypercall (configure --enable-debug-audit, or
 * host.audit_every_hypercall): every hypercall entry point calls
 * hv_audit_before_hypercall() first and hv_audit_after_hypercall("name")
 * when it returns to the guest (also after -ERESTART), which audits the
 * host once no hypercall is in flight and BUG()s on a violation.  Both are
 * no-ops when auditing is off.
 */
void hv_audit_before_hypercall(void);
void hv_audit_after_hypercall(const char *what);

#endif /* FERRY_HV_H */
