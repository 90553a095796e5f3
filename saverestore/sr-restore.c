/* SPDX-License-Identifier: MIT */
/*
 * The restore engine: a saved stream (xl header, libxl v2, libxc v3) into
 * a new x86-64 PV domain on this host, after Xen's xg_sr_restore.c and
 * xg_sr_restore_x86_pv.c.
 *
 * The domain is created with the vCPUs, maximum memory and UUID the caller
 * passes (xl takes them from the config it chose: the one in the xl header
 * or the user's); the header's config JSON is handed back, not parsed
 * here.  Then memory is populated on first
 * sight of each PFN, page-table pages are localised (PFNs become the new
 * MFNs) before they are written, and at END the vCPU contexts are set,
 * the pinned tables pinned, the guest's P2M, start_info and shared_info
 * rewritten for the new host.  After the libxl END, ferry's digest
 * trailer (sr.h) is checked against a SHA-256 of the whole stream before
 * the domain is returned paused; the caller names and unpauses it.
 *
 * A live stream (xl migrate) sends pages several times: the last copy
 * wins, overwriting the frame populated for the first one in place, and
 * its type (which may differ from the earlier copies': an L1 freed to
 * NOTAB, a table deferred as XTAB then resent) is what gets pinned.
 * After a VERIFY record (the sender's --debug) every page arrives once
 * more and is compared with the domain's instead of written; each page
 * that differs is counted and fails the restore.  When the stream goes
 * on after ferry's trailer (a migration's handshake) the trailer is
 * required and nothing past it is read.
 *
 * What is left for the end is what a migration's downtime costs, so the
 * work that grows with memory is done as the pages arrive:
 *  - each L1 table is pinned (validated) once its batch is written, so
 *    that at the end the vCPUs' trees and the guest's pins validate only
 *    the few upper tables.  A PFN pinned so and sent again is unpinned
 *    before its batch is written (a validated table takes no writable
 *    reference, and its old copy's validation says nothing of the new)
 *    and, if still an L1, pinned again after.  A pin that fails while the
 *    stream arrives is no error (the table may name frames that later
 *    batches make right); the table is validated with the rest at the
 *    end, where a failure is fatal.  Then the pins the guest did not have
 *    are dropped: an L1 an L2 names stays validated through it.
 *  - each P2M frame gets the new MFNs as it arrives, its old MFNs kept
 *    aside for relinking the frame list; only the frames covering PFNs
 *    populated since are written at the end.
 *  - the PFNs page tables named before they were sent are counted as
 *    they arrive: the end checks a counter, not a list.
 * A VERIFY pass compares a P2M frame with the copy that was sent.
 *
 * The caller says how much memory the restore was admitted with (a
 * migration receiver: what it checked against its free memory; xl
 * restore: the host's free memory).  Every allocation a stream field
 * drives is bounded by it before it happens: record bodies
 * (sr_rec_length_bound), the P2M range and the bookkeeping sized by it,
 * and the PFNs page tables name before they are sent (one note per PFN).
 * So a stream that claims 2^32 PFNs costs its reader nothing before it
 * is refused.
 *
 * Invariants: the local P2M (ctx->p2m) holds the new MFN of every
 * populated PFN and SR__INVALID_FRAME elsewhere; a PFN's bit in
 * live_pins is set exactly while its frame holds a pin this engine took
 * on an L1 copy it wrote last; nothing is written into
 * the guest except through frames the host confirmed are the new
 * domain's; every failure destroys the half-built domain, so the host is
 * as before.  Messages name the record type and its offset.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sr.h"
#include "sr-pt.h"
#include "../libxc/xc.h"

#define FPP          (SR_PAGE_SIZE / 8)    /* P2M entries per frame */
#define PIN_BATCH    1024                  /* Xen's MAX_PIN_BATCH */
#define PENDING_MFN  (SR__INVALID_FRAME - 1)

/*
 * The guest's P2M frames are rewritten as they arrive, not all at the end
 * while the migrated domain is down: a frame's copy from the stream (old
 * MFNs) is kept in old_p2m (CAPTURED) and the frame gets the new MFNs
 * instead; a PFN it covers that is populated afterwards makes it STALE,
 * and only STALE frames are written once the stream is complete.
 */
#define P2M_CAPTURED 1
#define P2M_STALE    2

#define NO_RECORD    (~(uint64_t)0)
#define DEMANDED     (NO_RECORD - 1)       /* not sent, a table named it */

/* A PFN a page table named before the stream sent it. */
struct demand
{
    uint64_t pfn, table_pfn, rec_off;
    unsigned int level;
};

/* An old-host MFN of the saved guest and its PFN. */
struct mfn_pfn
{
    uint64_t mfn, pfn;
};

struct restore_ctx
{
    struct sr_io *io;
    xc_interface *xch;              /* a builder session of its own */
    uint64_t *m2p;                  /* this domain's frames' PFNs only */
    size_t m2p_bytes;
    uint32_t domid;
    bool created;
    uint64_t shinfo_mfn;            /* the new domain's shared_info */
    char *msg;
    size_t msglen;

    unsigned int max_vcpus;
    uint64_t max_pages;             /* maxmem, in pages */
    uint64_t admitted_pages;        /* bound of stream-driven allocations */
    bool have_info, have_static_end, have_shinfo;
    uint64_t max_pfn;               /* valid once p2m != NULL */
    uint64_t *p2m;                  /* pfn -> new mfn */
    uint32_t *pfn_types;            /* XEN_DOMCTL_PFINFO_* per pfn */
    uint64_t *p2m_pfns;             /* the guest's P2M frames */
    xen_pfn_t *p2m_mfns;            /* and their new MFNs, once checked */
    uint64_t nr_p2m_frames;
    uint8_t shinfo[SR_SHARED_INFO_SIZE];
    uint64_t *old_p2m;              /* the guest's P2M as saved (old MFNs) */
    size_t old_p2m_bytes;           /* its mapping, populated in advance */
    uint8_t *p2m_state;             /* per P2M frame: P2M_CAPTURED ... */
    struct mfn_pfn *p2m_index;      /* (frame index, pfn), sorted by pfn */
    uint64_t nr_p2m_index;
    uint64_t *live_pins;            /* L1s pinned as they came, by PFN */
    uint64_t *guest_pins;           /* last copy's type has LPINTAB */
    uint64_t live_pins_words;       /* of each bitmap */
    struct mmuext_op *pin_ops;      /* PIN_BATCH of them, and the PFNs */
    uint64_t *pin_pfns;
    uint64_t *pend_l1;              /* the L1s of the batch in flight */
    uint32_t nr_pend;
    struct mfn_pfn *known;          /* old MFN -> PFN, sorted by MFN, for */
    uint64_t nr_known, known_cap;   /* the frames of the frame-list tree */
    struct vcpu_guest_context **vcpus;
    char ptmsg[SR__PT_MSG_SIZE];
    struct sr__pt_ctx pt;

    const struct sr_restore_args *a;
    struct sr_restore_result *r;
    bool verify;                    /* after VERIFY: compare, not write */
    uint64_t first_mismatch;        /* PFN of the first VERIFY mismatch */
    struct sr_progress prog;

    /* Per-record buffers, grown to the largest PAGE_DATA seen. */
    uint32_t cap;
    xen_pfn_t *ext;
    uint64_t *pop_pfns;
    xen_pfn_t *mfns;
    uint8_t *pages;                 /* pages_cap pages, where no staging */
    uint8_t *vpages;                /* pages_cap pages: a VERIFY copy's */
    uint32_t pages_cap;

    /*
     * The pipelined write (xc_frames_write_start): the daemon copies one
     * batch from one half of the staging area while the next record's
     * pages are read into the other.  The copy in flight is waited for
     * before anything of the next batch is applied (populated, noted,
     * written), so that a batch that fails stops the restore with
     * nothing after it done; the record it came from names it.
     */
    bool copy_in_flight;
    uint64_t copy_rec_off;

    /*
     * Where things came from, so that a hostile stream's message names
     * the record at fault: the PAGE_DATA offset of each PFN's last copy
     * (NO_RECORD: never sent; DEMANDED: never sent, and noted once in
     * demand, which so stays within one entry per PFN), the PFNs page
     * tables named before the
     * stream sent them, each vCPU's X86_PV_VCPU_BASIC and the libxc END.
     */
    uint64_t *pfn_rec_off;
    uint64_t nr_pfn_rec_off;
    struct demand *demand;
    size_t nr_demand, demand_cap;
    uint64_t nr_unmet;              /* PFNs still DEMANDED */
    uint64_t *vcpu_rec_off;
    uint64_t end_rec_off;
    uint64_t p2m_rec_off;           /* the last X86_PV_P2M_FRAMES */
    struct sr_rec rec;              /* the libxc records' buffer */
};

static int fail(struct restore_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first message: it names what went wrong first. */
static int fail(struct restore_ctx *ctx, int rc, const char *fmt, ...)
{
    va_list ap;

    if ( ctx->msg && ctx->msglen && !ctx->msg[0] )
    {
        va_start(ap, fmt);
        vsnprintf(ctx->msg, ctx->msglen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int fail_rec(struct restore_ctx *ctx, const struct sr_rec *rec,
                    int rc, const char *what)
{
    return fail(ctx, rc, "restore: %s record (type %#x) at offset %" PRIu64
                ": %s", sr_libxc_rec_name(rec->type), rec->type,
                rec->offset, what);
}

static int fail_io(struct restore_ctx *ctx, int rc)
{
    const char *m = sr_io_errmsg(ctx->io);

    return fail(ctx, rc, "restore: %s", m && m[0] ? m : strerror(-rc));
}

/* ------------------------------------------------------------------------
 * The new domain
 * ------------------------------------------------------------------------ */

/*
 * The domain is created as the caller's config says (xl parsed it: the
 * engine knows nothing of xl.cfg or JSON, only the sizes it needs).
 */
static int create_domain(struct restore_ctx *ctx,
                         const struct sr_restore_args *a)
{
    uint32_t domid = DOMID_ANY;
    xc_domaininfo_t info;

    if ( !a->max_vcpus || !a->max_memkb )
        return fail(ctx, -EINVAL, "restore: no vCPUs or memory to create"
                    " the domain with");
    if ( !a->admitted_memkb )
        return fail(ctx, -EINVAL, "restore: no admitted memory to bound"
                    " the stream by");
    if ( xc_domain_create(ctx->xch, &domid, a->max_vcpus, a->uuid) )
        return fail(ctx, -errno, "restore: cannot create the domain: %s",
                    strerror(errno));
    ctx->domid = domid;
    ctx->created = true;
    ctx->max_vcpus = a->max_vcpus;
    ctx->max_pages = a->max_memkb >> 2;
    ctx->admitted_pages = a->admitted_memkb >> 2;
    if ( ctx->admitted_pages > ctx->max_pages )
        ctx->admitted_pages = ctx->max_pages;
    if ( xc_domain_setmaxmem(ctx->xch, domid, a->max_memkb) )
        return fail(ctx, -errno, "restore: cannot set max memory of domain"
                    " %u: %s", domid, strerror(errno));
    /* Fixed for the domain's life: asked now, not once it is complete. */
    if ( xc_domain_getinfo_single(ctx->xch, domid, &info) )
        return fail(ctx, -errno, "restore: domain %u vanished", domid);
    ctx->shinfo_mfn = info.shared_info_frame;
    ctx->vcpus = calloc(ctx->max_vcpus, sizeof(*ctx->vcpus));
    if ( !ctx->vcpus )
        return -ENOMEM;
    if ( a->created && a->created(a->created_arg, domid, ctx->msg,
                                  ctx->msglen) )
        return fail(ctx, -ECANCELED, "restore: the caller refused domain"
                    " %u", domid);
    return 0;
}

/*
 * The restore's own M2P: the engine sees no machine memory (and so not
 * the host's M2P), and needs the PFN of only the frames it populated.
 * Every other entry reads 0, which sr__mfn_in_pseudophysmap still
 * refuses unless the frame really is PFN 0's (p2m[0] == mfn).
 */
static void set_m2p(struct restore_ctx *ctx, uint64_t mfn, uint64_t pfn)
{
    if ( mfn <= ctx->pt.max_mfn )
        ctx->m2p[mfn] = pfn;
}

/* @pfn has a new frame: the P2M frame that covers it must say so. */
static void p2m_entry_changed(struct restore_ctx *ctx, uint64_t pfn)
{
    if ( pfn / FPP < ctx->nr_p2m_frames )
        ctx->p2m_state[pfn / FPP] |= P2M_STALE;
}

/* sr__pt_ctx's populate callback: one PFN, order 0. */
static int populate_one(void *arg, uint64_t pfn, uint64_t *mfn)
{
    struct restore_ctx *ctx = arg;
    xen_pfn_t ext = pfn;

    if ( xc_domain_populate_physmap_exact(ctx->xch, ctx->domid, 1, 0, 0,
                                          &ext) )
        return -errno;
    *mfn = ext;
    set_m2p(ctx, ext, pfn);
    p2m_entry_changed(ctx, pfn);
    return 0;
}

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

static int handle_pv_info(struct restore_ctx *ctx, const struct sr_rec *rec)
{
    const struct sr_x86_pv_info *info = (const void *)rec->body;

    if ( ctx->have_info )
        return fail_rec(ctx, rec, -EINVAL, "duplicate X86_PV_INFO");
    if ( info->guest_width != 8 || info->pt_levels != 4 )
        return fail_rec(ctx, rec, -EOPNOTSUPP,
                        "only 64-bit 4-level PV guests are supported");
    ctx->have_info = true;
    return 0;
}

/* Grow the local P2M and type array to cover PFNs 0..max_pfn. */
static int grow_p2m(struct restore_ctx *ctx, uint64_t max_pfn)
{
    uint64_t old = ctx->p2m ? ctx->max_pfn + 1 : 0;
    uint64_t *p2m;
    uint32_t *types;

    if ( old > max_pfn )
        return 0;
    p2m = realloc(ctx->p2m, (max_pfn + 1) * sizeof(*p2m));
    if ( !p2m )
        return -ENOMEM;
    ctx->p2m = p2m;
    types = realloc(ctx->pfn_types, (max_pfn + 1) * sizeof(*types));
    if ( !types )
        return -ENOMEM;
    ctx->pfn_types = types;
    if ( (max_pfn + 64) / 64 > ctx->live_pins_words )
    {
        uint64_t words = (max_pfn + 64) / 64, old_words = ctx->live_pins_words;
        uint64_t *pins = realloc(ctx->live_pins, words * sizeof(*pins));

        if ( !pins )
            return -ENOMEM;
        memset(pins + old_words, 0, (words - old_words) * sizeof(*pins));
        ctx->live_pins = pins;
        pins = realloc(ctx->guest_pins, words * sizeof(*pins));
        if ( !pins )
            return -ENOMEM;
        memset(pins + old_words, 0, (words - old_words) * sizeof(*pins));
        ctx->guest_pins = pins;
        ctx->live_pins_words = words;
    }
    for ( uint64_t pfn = old; pfn <= max_pfn; pfn++ )
    {
        p2m[pfn] = SR__INVALID_FRAME;
        types[pfn] = XEN_DOMCTL_PFINFO_XTAB;
    }
    ctx->max_pfn = max_pfn;
    ctx->pt.max_pfn = max_pfn;
    ctx->pt.p2m = p2m;
    ctx->pt.pfn_types = types;
    return 0;
}

/*
 * The buffer the guest's old P2M is read into once the stream is
 * complete, while the domain is down: populated now, when the P2M frames
 * are announced, so that reading into it then costs no page faults.
 */
static int grow_old_p2m(struct restore_ctx *ctx)
{
    size_t bytes = ctx->nr_p2m_frames * SR_PAGE_SIZE;
    void *p;

    if ( bytes <= ctx->old_p2m_bytes )
        return 0;
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if ( p == MAP_FAILED )
        return -ENOMEM;
    /* Populated is not enough: the first touch of each page from user
     * space still faults on this host (its shadow page tables). */
    memset(p, 0xff, bytes);
    if ( ctx->old_p2m )
    {
        /* The frames captured so far stay captured. */
        memcpy(p, ctx->old_p2m, ctx->old_p2m_bytes);
        munmap(ctx->old_p2m, ctx->old_p2m_bytes);
    }
    ctx->old_p2m = p;
    ctx->old_p2m_bytes = bytes;
    return 0;
}

static int cmp_pfn(const void *a, const void *b)
{
    const struct mfn_pfn *x = a, *y = b;

    return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/* The P2M frames by PFN (each entry's mfn field is the frame's index). */
static int index_p2m_frames(struct restore_ctx *ctx)
{
    struct mfn_pfn *ix = realloc(ctx->p2m_index,
                                 ctx->nr_p2m_frames * sizeof(*ix));
    uint64_t n = 0;

    if ( !ix )
        return -ENOMEM;
    for ( uint64_t i = 0; i < ctx->nr_p2m_frames; i++ )
        if ( ctx->p2m_pfns[i] != SR__INVALID_FRAME )
            ix[n++] = (struct mfn_pfn){ .mfn = i, .pfn = ctx->p2m_pfns[i] };
    qsort(ix, n, sizeof(*ix), cmp_pfn);
    ctx->p2m_index = ix;
    ctx->nr_p2m_index = n;
    return 0;
}

/* The index of the P2M frame at @pfn, or -1 if @pfn holds none. */
static int64_t p2m_frame_of(const struct restore_ctx *ctx, uint64_t pfn)
{
    struct mfn_pfn key = { .pfn = pfn }, *e;

    if ( !ctx->nr_p2m_index || pfn < ctx->p2m_index[0].pfn ||
         pfn > ctx->p2m_index[ctx->nr_p2m_index - 1].pfn )
        return -1;
    e = bsearch(&key, ctx->p2m_index, ctx->nr_p2m_index, sizeof(*e),
                cmp_pfn);
    return e ? (int64_t)e->mfn : -1;
}

/* What P2M frame @i must hold on this host: the local P2M's slice. */
static void compose_p2m_frame(const struct restore_ctx *ctx, uint64_t i,
                              uint64_t *frame)
{
    for ( uint64_t j = 0; j < FPP; j++ )
    {
        uint64_t p = i * FPP + j;

        frame[j] = p <= ctx->max_pfn ? ctx->p2m[p] : SR__INVALID_FRAME;
    }
}

static int handle_p2m_frames(struct restore_ctx *ctx,
                             const struct sr_rec *rec)
{
    const struct sr_x86_pv_p2m_frames *h = (const void *)rec->body;
    const uint64_t *pfns = (const uint64_t *)(rec->body + sizeof(*h));
    uint64_t first, count, *frames;
    int rc;

    if ( !ctx->have_info )
        return fail_rec(ctx, rec, -EINVAL, "X86_PV_INFO not yet seen");
    if ( rec->length < sizeof(*h) || h->start_pfn > h->end_pfn )
        return fail_rec(ctx, rec, -EINVAL, "bad P2M range");
    first = h->start_pfn / FPP;
    count = h->end_pfn / FPP - first + 1;
    if ( rec->length != sizeof(*h) + count * 8 )
        return fail_rec(ctx, rec, -EINVAL, "length does not match range");
    if ( h->end_pfn >= ctx->max_pages )
        return fail_rec(ctx, rec, -EINVAL,
                        "P2M larger than the domain's maximum memory");
    /* Before the P2M and its bookkeeping are allocated for it. */
    if ( h->end_pfn >= ctx->admitted_pages )
        return fail(ctx, -E2BIG, "restore: %s record (type %#x) at offset %"
                    PRIu64 ": P2M of %" PRIu64 " PFNs (%" PRIu64 " MiB) "
                    "exceeds the %" PRIu64 " MiB admitted for this restore",
                    sr_libxc_rec_name(rec->type), rec->type, rec->offset,
                    (uint64_t)h->end_pfn + 1, ((uint64_t)h->end_pfn + 1) >> 8,
                    ctx->admitted_pages >> 8);
    rc = grow_p2m(ctx, h->end_pfn);
    if ( rc )
        return fail_rec(ctx, rec, rc, "out of memory");
    if ( first + count > ctx->nr_p2m_frames )
    {
        uint8_t *state;

        frames = realloc(ctx->p2m_pfns, (first + count) * sizeof(*frames));
        if ( !frames )
            return fail_rec(ctx, rec, -ENOMEM, "out of memory");
        for ( uint64_t i = ctx->nr_p2m_frames; i < first + count; i++ )
            frames[i] = SR__INVALID_FRAME;
        ctx->p2m_pfns = frames;
        state = realloc(ctx->p2m_state, first + count);
        if ( !state )
            return fail_rec(ctx, rec, -ENOMEM, "out of memory");
        memset(state + ctx->nr_p2m_frames, P2M_STALE,
               first + count - ctx->nr_p2m_frames);
        ctx->p2m_state = state;
        ctx->nr_p2m_frames = first + count;
    }
    for ( uint64_t i = 0; i < count; i++ )
    {
        /* A frame that moved to another PFN holds nothing of ours yet. */
        if ( ctx->p2m_pfns[first + i] != pfns[i] )
            ctx->p2m_state[first + i] = P2M_STALE;
        ctx->p2m_pfns[first + i] = pfns[i];
    }
    ctx->p2m_rec_off = rec->offset;
    if ( index_p2m_frames(ctx) || grow_old_p2m(ctx) )
        return fail_rec(ctx, rec, -ENOMEM, "out of memory");
    return 0;
}

static bool populatable(unsigned int type)
{
    return sr_pfinfo_has_data(type) || type == SR_PFINFO_XALLOC;
}

/* Room in the per-record buffers for @count entries. */
static int grow_buffers(struct restore_ctx *ctx, uint32_t count)
{
    void *p;

    if ( count <= ctx->cap )
        return 0;
#define GROW(f)                                                     \
    do {                                                            \
        if ( !(p = realloc(ctx->f, count * sizeof(*ctx->f))) )      \
            return -ENOMEM;                                         \
        ctx->f = p;                                                 \
    } while ( 0 )
    GROW(ext);
    GROW(pop_pfns);
    GROW(mfns);
    GROW(pend_l1);
#undef GROW
    ctx->cap = count;
    return 0;
}

/*
 * Room for @count pages where no staging area takes them (and for a
 * VERIFY copy's): apart from grow_buffers(), which populating a batch
 * calls while its pages are read, so that they never move under it.
 */
static int grow_pages(struct restore_ctx *ctx, uint32_t count)
{
    void *p;

    if ( count <= ctx->pages_cap && (!ctx->verify || ctx->vpages) )
        return 0;
    if ( count < ctx->pages_cap )
        count = ctx->pages_cap;
    if ( !(p = realloc(ctx->pages, (size_t)count * SR_PAGE_SIZE)) )
        return -ENOMEM;
    ctx->pages = p;
    if ( ctx->verify )
    {
        if ( !(p = realloc(ctx->vpages, (size_t)count * SR_PAGE_SIZE)) )
            return -ENOMEM;
        ctx->vpages = p;
    }
    ctx->pages_cap = count;
    return 0;
}

/* Add @pfn to the batch to populate unless it has (or will have) a frame. */
static int want_frame(struct restore_ctx *ctx, uint64_t pfn, unsigned int *n)
{
    if ( ctx->p2m[pfn] != SR__INVALID_FRAME )
        return 0;
    if ( *n == ctx->cap && grow_buffers(ctx, ctx->cap * 2) )
        return -ENOMEM;
    ctx->p2m[pfn] = PENDING_MFN;        /* a PFN twice in one batch */
    ctx->pop_pfns[*n] = pfn;
    ctx->ext[(*n)++] = pfn;
    return 0;
}

/*
 * The frames a batch's page tables name, so that localising them does not
 * populate one frame per call.  Entries that localisation will refuse
 * (past max_pfn) or ignore (Xen's L4 slots) are left to it.
 */
static int want_table_frames(struct restore_ctx *ctx,
                             const struct sr_page_data *pd, unsigned int *n)
{
    uint32_t p = 0;
    int rc;

    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        unsigned int type = sr_entry_type(pd->entries[i]);
        uint32_t dtype = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        const uint64_t *pte;
        bool l4;

        if ( !sr_pfinfo_has_data(type) )
            continue;
        pte = (const uint64_t *)(pd->pages + (size_t)p++ * SR_PAGE_SIZE);
        if ( !sr__is_pagetable_type(dtype) )
            continue;
        l4 = (dtype & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) ==
             XEN_DOMCTL_PFINFO_L4TAB;
        for ( unsigned int e = 0; e < SR__PT_ENTRIES; e++ )
        {
            uint64_t pfn = sr__pte_to_frame(pte[e]);

            if ( !(pte[e] & _PAGE_PRESENT) || pfn > ctx->max_pfn ||
                 (l4 && e >= 256 && e < 272) )
                continue;
            if ( (rc = want_frame(ctx, pfn, n)) )
                return rc;
        }
    }
    return 0;
}

/*
 * One populate_physmap_exact for every PFN of the batch not yet seen,
 * and for those its page tables name.
 */
static int populate_batch(struct restore_ctx *ctx, const struct sr_rec *rec,
                          const struct sr_page_data *pd)
{
    xen_pfn_t *ext;
    uint64_t *pfns;
    unsigned int n = 0;
    int rc = 0;

    for ( uint32_t i = 0; i < pd->count && !rc; i++ )
        if ( populatable(sr_entry_type(pd->entries[i])) )
            rc = want_frame(ctx, sr_entry_pfn(pd->entries[i]), &n);
    if ( !rc )
        rc = want_table_frames(ctx, pd, &n);
    ext = ctx->ext;
    pfns = ctx->pop_pfns;
    if ( rc )
    {
        for ( unsigned int i = 0; i < n; i++ )
            ctx->p2m[pfns[i]] = SR__INVALID_FRAME;
        return fail_rec(ctx, rec, rc, "out of memory");
    }
    if ( !n )
        return 0;
    if ( xc_domain_populate_physmap_exact(ctx->xch, ctx->domid, n, 0, 0,
                                          ext) )
    {
        rc = -errno;
        for ( unsigned int i = 0; i < n; i++ )
            ctx->p2m[pfns[i]] = SR__INVALID_FRAME;
        return fail_rec(ctx, rec, rc, "cannot populate the domain's memory");
    }
    for ( unsigned int i = 0; i < n; i++ )
    {
        ctx->p2m[pfns[i]] = ext[i];
        set_m2p(ctx, ext[i], pfns[i]);
        p2m_entry_changed(ctx, pfns[i]);
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void report(struct restore_ctx *ctx, enum sr_phase phase)
{
    if ( !ctx->a->progress )
        return;
    ctx->prog.phase = phase;
    ctx->prog.p2m_size = ctx->p2m ? ctx->max_pfn + 1 : 0;
    ctx->prog.bytes = sr_io_offset(ctx->io);
    ctx->prog.pages_sent = ctx->r->pages_received;
    ctx->a->progress(ctx->a->progress_arg, &ctx->prog);
}

/*
 * The VERIFY pass (Xen's verify mode of process_page_data): each page is
 * localised as it would have been written and compared with the frame
 * the domain holds.  Nothing is populated: a PFN without a frame, or
 * with another type than its last copy had (XALLOC counting as NOTAB),
 * differs too.
 */
static void verify_page_data(struct restore_ctx *ctx,
                             const struct sr_page_data *pd)
{
    uint64_t page[SR__PT_ENTRIES];
    uint32_t n = 0, p = 0, q = 0;
    bool have;

    /* Only the PFNs with a frame are read; the others differ anyway. */
    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        uint64_t pfn = sr_entry_pfn(pd->entries[i]);
        unsigned int type = sr_entry_type(pd->entries[i]);

        if ( sr_pfinfo_has_data(type) && ctx->p2m[pfn] != SR__INVALID_FRAME &&
             ctx->p2m[pfn] != PENDING_MFN )
            ctx->mfns[n++] = ctx->p2m[pfn];
    }
    have = !n || !xc_frames_read(ctx->xch, ctx->domid, ctx->mfns, n,
                                 ctx->pages);
    ctx->pt.populate = NULL;
    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        uint64_t pfn = sr_entry_pfn(pd->entries[i]);
        unsigned int type = sr_entry_type(pd->entries[i]);
        uint32_t dtype = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        const uint8_t *mine;
        bool ok, frame;
        int64_t f;

        if ( !sr_pfinfo_has_data(type) )
            continue;
        frame = ctx->p2m[pfn] != SR__INVALID_FRAME &&
                ctx->p2m[pfn] != PENDING_MFN;
        memcpy(page, pd->pages + (size_t)p++ * SR_PAGE_SIZE, SR_PAGE_SIZE);
        /* A P2M frame rewritten on arrival compares as it was sent. */
        mine = ctx->pages + (size_t)q * SR_PAGE_SIZE;
        f = p2m_frame_of(ctx, pfn);
        if ( f >= 0 && (ctx->p2m_state[f] & P2M_CAPTURED) )
            mine = (const uint8_t *)(ctx->old_p2m + (uint64_t)f * FPP);
        /*
         * A last copy of type XALLOC was an ordinary page the sender knew
         * to be zero: its VERIFY copy is NOTAB, with the data, compared
         * like any other.
         */
        ok = frame && have &&
             (ctx->pfn_types[pfn] == dtype ||
              (dtype == XEN_DOMCTL_PFINFO_NOTAB &&
               ctx->pfn_types[pfn] == XEN_DOMCTL_PFINFO_XALLOC)) &&
             (!sr__is_pagetable_type(dtype) ||
              !sr__localise_pagetable(&ctx->pt, dtype, page)) &&
             !memcmp(mine, page, SR_PAGE_SIZE);
        q += frame;
        if ( ok )
            continue;
        if ( !ctx->r->verify_mismatches++ )
            ctx->first_mismatch = pfn;
    }
    ctx->pt.populate = populate_one;
}

/* A table of this record names @pfn, which the stream has not sent yet. */
static int note_demand(struct restore_ctx *ctx, const struct sr_rec *rec,
                       uint64_t pfn, uint64_t table_pfn, unsigned int level)
{
    struct demand *d;

    if ( ctx->nr_demand == ctx->demand_cap )
    {
        size_t cap = ctx->demand_cap ? ctx->demand_cap * 2 : 256;

        d = realloc(ctx->demand, cap * sizeof(*d));
        if ( !d )
            return fail_rec(ctx, rec, -ENOMEM, "out of memory");
        ctx->demand = d;
        ctx->demand_cap = cap;
    }
    ctx->demand[ctx->nr_demand++] = (struct demand){
        .pfn = pfn, .table_pfn = table_pfn, .rec_off = rec->offset,
        .level = level,
    };
    return 0;
}

/*
 * The record of each PFN's last copy, for the messages at the end; and
 * the PFNs this record's tables name that the stream has not sent yet,
 * which stream_complete checks were sent in the end.  Entries that
 * localisation refuses (past max_pfn) or ignores (Xen's L4 slots) are
 * left to it.
 */
static int note_page_data(struct restore_ctx *ctx, const struct sr_rec *rec,
                          const struct sr_page_data *pd)
{
    uint64_t *off;
    uint32_t p = 0;
    int rc;

    if ( ctx->nr_pfn_rec_off <= ctx->max_pfn )
    {
        off = realloc(ctx->pfn_rec_off, (ctx->max_pfn + 1) * sizeof(*off));
        if ( !off )
            return fail_rec(ctx, rec, -ENOMEM, "out of memory");
        for ( uint64_t q = ctx->nr_pfn_rec_off; q <= ctx->max_pfn; q++ )
            off[q] = NO_RECORD;
        ctx->pfn_rec_off = off;
        ctx->nr_pfn_rec_off = ctx->max_pfn + 1;
    }
    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        off = &ctx->pfn_rec_off[sr_entry_pfn(pd->entries[i])];
        ctx->nr_unmet -= *off == DEMANDED;
        *off = rec->offset;
    }
    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        unsigned int type = sr_entry_type(pd->entries[i]);
        const uint64_t *pte;

        if ( !sr_pfinfo_has_data(type) )
            continue;
        pte = (const uint64_t *)(pd->pages + (size_t)p++ * SR_PAGE_SIZE);
        if ( (type & 7) < 1 || (type & 7) > 4 )
            continue;
        for ( unsigned int e = 0; e < SR__PT_ENTRIES; e++ )
        {
            uint64_t pfn = sr__pte_to_frame(pte[e]);

            if ( !(pte[e] & _PAGE_PRESENT) || pfn > ctx->max_pfn ||
                 ((type & 7) == 4 && e >= ROOT_PAGETABLE_FIRST_XEN_SLOT &&
                  e <= ROOT_PAGETABLE_LAST_XEN_SLOT) ||
                 ctx->pfn_rec_off[pfn] != NO_RECORD )
                continue;
            rc = note_demand(ctx, rec, pfn, sr_entry_pfn(pd->entries[i]),
                             type & 7);
            if ( rc )
                return rc;
            ctx->pfn_rec_off[pfn] = DEMANDED;
            ctx->nr_unmet++;
        }
    }
    return 0;
}

/* The pipelined write of the last batch: done, or the restore fails. */
static int wait_copy(struct restore_ctx *ctx)
{
    if ( !ctx->copy_in_flight )
        return 0;
    ctx->copy_in_flight = false;
    if ( !xc_frames_wait(ctx->xch) )
        return 0;
    return fail(ctx, -errno, "restore: %s record (type %#x) at offset %"
                PRIu64 ": cannot write the domain's frames",
                sr_libxc_rec_name(SR_LIBXC_PAGE_DATA), SR_LIBXC_PAGE_DATA,
                ctx->copy_rec_off);
}


/* ------------------------------------------------------------------------
 * L1 tables pinned as they arrive
 * ------------------------------------------------------------------------ */

static bool live_pinned(const struct restore_ctx *ctx, uint64_t pfn)
{
    return (ctx->live_pins[pfn / 64] >> (pfn % 64)) & 1;
}

static void set_live_pin(struct restore_ctx *ctx, uint64_t pfn, bool on)
{
    if ( on )
        ctx->live_pins[pfn / 64] |= 1ULL << (pfn % 64);
    else
        ctx->live_pins[pfn / 64] &= ~(1ULL << (pfn % 64));
}

static int pin_buffers(struct restore_ctx *ctx)
{
    if ( !ctx->pin_ops )
        ctx->pin_ops = malloc(PIN_BATCH * sizeof(*ctx->pin_ops));
    if ( !ctx->pin_pfns )
        ctx->pin_pfns = malloc(PIN_BATCH * sizeof(*ctx->pin_pfns));
    return ctx->pin_ops && ctx->pin_pfns ? 0 : -ENOMEM;
}

/* Queue a pin or unpin of @pfn's frame; *n counts the queue. */
static void queue_pin(struct restore_ctx *ctx, unsigned int cmd,
                      uint64_t pfn, unsigned int *n)
{
    memset(&ctx->pin_ops[*n], 0, sizeof(ctx->pin_ops[*n]));
    ctx->pin_ops[*n].cmd = cmd;
    ctx->pin_ops[*n].arg1.mfn = ctx->p2m[pfn];
    ctx->pin_pfns[(*n)++] = pfn;
}

/*
 * Pin the queued L1 tables, as many as validate now.  One that does not
 * is no error yet: its entries may name frames the stream has still to
 * make right (a page that was a table when the table was sent, a
 * writable mapping of a page that becomes a table), and at the end it is
 * validated with the rest of the tree, where a failure is fatal.  The
 * hypervisor stops at the first that fails: the ones before it are
 * pinned, the batch goes on after it.
 */
static void pin_queued(struct restore_ctx *ctx, unsigned int n)
{
    unsigned int first = 0, done;

    while ( first < n )
    {
        done = 0;
        if ( !xc_mmuext_op_done(ctx->xch, ctx->pin_ops + first, n - first,
                                ctx->domid, &done) )
            done = n - first;
        for ( unsigned int k = first; k < first + done && k < n; k++ )
            set_live_pin(ctx, ctx->pin_pfns[k], true);
        first += done + 1;
    }
}

/* Unpin the queued tables; 0, or -errno having set the message. */
static int unpin_queued(struct restore_ctx *ctx, unsigned int n)
{
    for ( unsigned int k = 0; k < n; k++ )
        set_live_pin(ctx, ctx->pin_pfns[k], false);
    if ( n && xc_mmuext_op(ctx->xch, ctx->pin_ops, n, ctx->domid) )
        return fail(ctx, -errno, "restore: cannot unpin %u page tables"
                    " pinned as they arrived: %s", n, strerror(errno));
    return 0;
}

/*
 * A PFN pinned as it arrived and now sent again: its frame cannot be
 * written while it is a validated table (Xen's rule for a writable
 * mapping), and whatever its new copy is, the old one's validation no
 * longer says anything.  Unpinned before the batch is written; the new
 * copy, if an L1, is pinned again after it.
 */
static int unpin_resent(struct restore_ctx *ctx, const struct sr_page_data *pd)
{
    unsigned int n = 0;
    int rc;

    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        uint64_t pfn = sr_entry_pfn(pd->entries[i]);

        if ( !live_pinned(ctx, pfn) )
            continue;
        set_live_pin(ctx, pfn, false);      /* a PFN twice in one batch */
        queue_pin(ctx, MMUEXT_UNPIN_TABLE, pfn, &n);
        if ( n == PIN_BATCH && (rc = unpin_queued(ctx, n)) )
            return rc;
        n %= PIN_BATCH;
    }
    return unpin_queued(ctx, n);
}

/* The L1 tables of a batch being written, to pin once it is. */
static void note_arrived(struct restore_ctx *ctx,
                         const struct sr_page_data *pd)
{
    ctx->nr_pend = 0;
    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        unsigned int type = sr_entry_type(pd->entries[i]);
        uint32_t dtype = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;

        if ( sr_pfinfo_has_data(type) &&
             (dtype & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) ==
             XEN_DOMCTL_PFINFO_L1TAB )
            ctx->pend_l1[ctx->nr_pend++] = sr_entry_pfn(pd->entries[i]);
    }
}

/* Pin the L1 tables of the batch last written. */
static void pin_arrived(struct restore_ctx *ctx)
{
    unsigned int n = 0;

    for ( uint32_t k = 0; k < ctx->nr_pend; k++ )
    {
        queue_pin(ctx, MMUEXT_PIN_L1_TABLE, ctx->pend_l1[k], &n);
        if ( n == PIN_BATCH )
        {
            pin_queued(ctx, n);
            n = 0;
        }
    }
    pin_queued(ctx, n);
    ctx->nr_pend = 0;
}

/* The last batch is written (wait_copy), and its L1 tables pinned. */
static int settle_copy(struct restore_ctx *ctx)
{
    int rc = wait_copy(ctx);

    if ( !rc )
        pin_arrived(ctx);
    return rc;
}

/*
 * Once the guest's own pins and its vCPUs' tables hold the tree, the
 * pins taken as the tables arrived go, but for those the guest had
 * pinned itself (pin_pagetables kept them): each L1 that an L2 names
 * stays validated through it, as it was on the old host.
 */
static int drop_live_pins(struct restore_ctx *ctx)
{
    unsigned int n = 0;
    int rc;

    for ( uint64_t w = 0; w < ctx->live_pins_words; w++ )
    {
        uint64_t v = ctx->live_pins[w];

        while ( v )
        {
            queue_pin(ctx, MMUEXT_UNPIN_TABLE,
                      w * 64 + (uint64_t)__builtin_ctzll(v), &n);
            v &= v - 1;
            if ( n == PIN_BATCH && (rc = unpin_queued(ctx, n)) )
                return rc;
            n %= PIN_BATCH;
        }
    }
    return unpin_queued(ctx, n);
}

static int handle_page_data(struct restore_ctx *ctx, struct sr_rec *rec)
{
    struct sr_page_data pd;
    uint32_t p = 0;
    uint8_t *out;
    bool staged;
    char what[SR__PT_MSG_SIZE + 64];
    int rc;

    if ( !ctx->p2m )
        return fail_rec(ctx, rec, -EINVAL,
                        "X86_PV_P2M_FRAMES not yet seen");
    rc = sr_parse_page_data(ctx->io, rec, &pd);
    if ( rc )
        return fail_io(ctx, rc);
    for ( uint32_t i = 0; i < pd.count; i++ )
    {
        uint64_t pfn = sr_entry_pfn(pd.entries[i]);

        if ( pfn > ctx->max_pfn )
        {
            snprintf(what, sizeof(what), "pfn %#" PRIx64
                     " beyond max_pfn %#" PRIx64, pfn, ctx->max_pfn);
            return fail_rec(ctx, rec, -ERANGE, what);
        }
    }
    if ( grow_buffers(ctx, pd.count + 1) || pin_buffers(ctx) )
        return fail_rec(ctx, rec, -ENOMEM, "out of memory");

    /*
     * The pages are read straight to where the daemon copies them from
     * (the half of the builder session's staging area that no copy is
     * reading), while it copies the last batch out of the other half.
     * A batch too large for it, or a VERIFY copy, goes to memory here.
     */
    out = ctx->verify ? NULL : xc_frames_buffer(ctx->xch, pd.nr_pages);
    staged = out != NULL;
    if ( !out )
    {
        if ( grow_pages(ctx, pd.nr_pages + 1) )
            return fail_rec(ctx, rec, -ENOMEM, "out of memory");
        out = ctx->verify ? ctx->vpages : ctx->pages;
    }
    if ( !pd.pages && (rc = sr_read_page_data_pages(ctx->io, rec, out)) )
        return fail_io(ctx, rc);
    if ( pd.pages && pd.nr_pages )
        memcpy(out, pd.pages, (size_t)pd.nr_pages * SR_PAGE_SIZE);
    pd.pages = out;
    /* Nothing of this batch is applied unless the last one was. */
    if ( (rc = settle_copy(ctx)) )
        return rc;
    if ( ctx->verify )
    {
        verify_page_data(ctx, &pd);
        report(ctx, SR_PHASE_VERIFY);
        return 0;
    }
    rc = populate_batch(ctx, rec, &pd);
    if ( !rc )
        rc = note_page_data(ctx, rec, &pd);
    if ( rc )
        return rc;

    /* The last copy's type is the PFN's type, whatever came before. */
    for ( uint32_t i = 0; i < pd.count; i++ )
    {
        unsigned int type = sr_entry_type(pd.entries[i]);
        int64_t f = p2m_frame_of(ctx, sr_entry_pfn(pd.entries[i]));

        uint64_t pfn = sr_entry_pfn(pd.entries[i]);

        /* Until its data is composed below, the frame is not ours. */
        if ( f >= 0 )
            ctx->p2m_state[f] = P2M_STALE;
        ctx->pfn_types[pfn] = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        /* The end pins these only, not looking at every PFN's type. */
        if ( ctx->pfn_types[pfn] & XEN_DOMCTL_PFINFO_LPINTAB )
            ctx->guest_pins[pfn / 64] |= 1ULL << (pfn % 64);
        else
            ctx->guest_pins[pfn / 64] &= ~(1ULL << (pfn % 64));
        if ( sr_pfinfo_has_data(type) )
            ctx->mfns[p++] = ctx->p2m[sr_entry_pfn(pd.entries[i])];
    }
    if ( (rc = unpin_resent(ctx, &pd)) )
        return rc;
    if ( !pd.nr_pages )
        goto out;
    /* Tables are localised in place; the daemon checks each frame is the
     * domain's as it copies. */
    p = 0;
    for ( uint32_t i = 0; i < pd.count; i++ )
    {
        unsigned int type = sr_entry_type(pd.entries[i]);
        uint32_t dtype = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        uint8_t *dst;
        int64_t f;

        if ( !sr_pfinfo_has_data(type) )
            continue;
        dst = out + (size_t)p++ * SR_PAGE_SIZE;
        f = p2m_frame_of(ctx, sr_entry_pfn(pd.entries[i]));
        if ( f >= 0 && dtype == XEN_DOMCTL_PFINFO_NOTAB )
        {
            /* A P2M frame: keep the old MFNs, write the new ones. */
            memcpy(ctx->old_p2m + (uint64_t)f * FPP, dst, SR_PAGE_SIZE);
            compose_p2m_frame(ctx, (uint64_t)f, (uint64_t *)dst);
            ctx->p2m_state[f] = P2M_CAPTURED;
            continue;
        }
        if ( !sr__is_pagetable_type(dtype) )
            continue;
        ctx->ptmsg[0] = '\0';
        rc = sr__localise_pagetable(&ctx->pt, dtype, (uint64_t *)dst);
        if ( rc )
        {
            snprintf(what, sizeof(what), "pfn %#" PRIx64 ": %s",
                     sr_entry_pfn(pd.entries[i]), ctx->ptmsg);
            return fail_rec(ctx, rec, rc, what);
        }
    }
    if ( staged )
    {
        if ( xc_frames_write_start(ctx->xch, ctx->domid, ctx->mfns,
                                   pd.nr_pages, out) )
            return fail_rec(ctx, rec, -errno,
                            "cannot write the domain's frames");
        ctx->copy_in_flight = true;
        ctx->copy_rec_off = rec->offset;
    }
    else if ( xc_frames_write(ctx->xch, ctx->domid, ctx->mfns, pd.nr_pages,
                              out) )
        return fail_rec(ctx, rec, -errno,
                        "cannot write the domain's frames");
    note_arrived(ctx, &pd);
    if ( !staged )
        pin_arrived(ctx);
 out:
    ctx->r->pages_received += pd.nr_pages;
    report(ctx, SR_PHASE_MEMORY);
    return 0;
}

static int handle_vcpu_basic(struct restore_ctx *ctx, const struct sr_rec *rec)
{
    const struct sr_x86_pv_vcpu_hdr *h = (const void *)rec->body;
    struct vcpu_guest_context *c;

    if ( rec->length == sizeof(*h) )
        return 0;                       /* empty blob (Xen 4.6-4.8) */
    if ( rec->length != sizeof(*h) + sizeof(*c) )
        return fail_rec(ctx, rec, -EINVAL, "bad vCPU context size");
    if ( h->vcpu_id >= ctx->max_vcpus )
        return fail_rec(ctx, rec, -EINVAL, "vCPU id out of range");
    c = ctx->vcpus[h->vcpu_id];
    if ( !c && !(c = malloc(sizeof(*c))) )
        return fail_rec(ctx, rec, -ENOMEM, "out of memory");
    memcpy(c, rec->body + sizeof(*h), sizeof(*c));
    ctx->vcpus[h->vcpu_id] = c;
    if ( !ctx->vcpu_rec_off &&
         !(ctx->vcpu_rec_off = calloc(ctx->max_vcpus,
                                      sizeof(*ctx->vcpu_rec_off))) )
        return fail_rec(ctx, rec, -ENOMEM, "out of memory");
    ctx->vcpu_rec_off[h->vcpu_id] = rec->offset;
    return 0;
}

static int process_record(struct restore_ctx *ctx, struct sr_rec *rec)
{
    switch ( rec->type )
    {
    case SR_LIBXC_X86_PV_INFO:
        return handle_pv_info(ctx, rec);
    case SR_LIBXC_STATIC_DATA_END:
        if ( ctx->have_static_end )
            return fail_rec(ctx, rec, -EINVAL, "duplicate record");
        ctx->have_static_end = true;
        return 0;
    case SR_LIBXC_X86_PV_P2M_FRAMES:
        return handle_p2m_frames(ctx, rec);
    case SR_LIBXC_PAGE_DATA:
        return handle_page_data(ctx, rec);
    case SR_LIBXC_VERIFY:
        /* Xen's: every page follows again, to be compared. */
        if ( ctx->verify )
            return fail_rec(ctx, rec, -EINVAL, "duplicate record");
        if ( !ctx->p2m )
            return fail_rec(ctx, rec, -EINVAL,
                            "X86_PV_P2M_FRAMES not yet seen");
        ctx->verify = true;
        report(ctx, SR_PHASE_VERIFY);
        return 0;
    case SR_LIBXC_SHARED_INFO:
        if ( !ctx->have_info )
            return fail_rec(ctx, rec, -EINVAL, "X86_PV_INFO not yet seen");
        memcpy(ctx->shinfo, rec->body, SR_SHARED_INFO_SIZE);
        ctx->have_shinfo = true;
        return 0;
    case SR_LIBXC_X86_PV_VCPU_BASIC:
        return handle_vcpu_basic(ctx, rec);
    case SR_LIBXC_X86_TSC_INFO:
    case SR_LIBXC_X86_PV_VCPU_EXTENDED:
    case SR_LIBXC_X86_PV_VCPU_XSAVE:
    case SR_LIBXC_X86_PV_VCPU_MSRS:
    case SR_LIBXC_X86_CPUID_POLICY:
    case SR_LIBXC_X86_MSR_POLICY:
        return 0;                       /* nothing in ferry to restore */
    default:
        return fail_rec(ctx, rec, -EINVAL, "mandatory record not handled");
    }
}

/* The start_info page named by vCPU 0's rdx (an MFN again by now). */
static int process_start_info(struct restore_ctx *ctx, uint64_t mfn,
                              uint64_t shinfo_mfn)
{
    union { struct start_info si; uint8_t page[SR_PAGE_SIZE]; } u;
    struct start_info *si = &u.si;
    xen_pfn_t x = mfn;

    if ( xc_frames_read(ctx->xch, ctx->domid, &x, 1, u.page) )
        return fail(ctx, -errno, "restore: cannot read start_info (mfn %#"
                    PRIx64 ")", mfn);
    si->nr_pages = ctx->max_pfn + 1;
    si->shared_info = shinfo_mfn << SR_PAGE_SHIFT;
    si->flags = 0;
    si->store_mfn = 0;          /* ferry guests have no xenstore ring */
    si->store_evtchn = 0;
    si->console.mfn = 0;        /* nor a console ring: console_io */
    si->console.evtchn = 0;
    if ( xc_frames_write(ctx->xch, ctx->domid, &x, 1, u.page) )
        return fail(ctx, -errno, "restore: cannot write start_info (mfn %#"
                    PRIx64 ")", mfn);
    return 0;
}

static bool find_bad_table(struct restore_ctx *ctx);

static int update_vcpu_context(struct restore_ctx *ctx, uint64_t shinfo_mfn)
{
    int rc;

    if ( !ctx->vcpus[0] )
        return fail(ctx, -EINVAL, "restore: END record (type 0) at offset %"
                    PRIu64 ": no X86_PV_VCPU_BASIC record for vCPU 0",
                    ctx->end_rec_off);
    for ( unsigned int v = 0; v < ctx->max_vcpus; v++ )
    {
        struct vcpu_guest_context *c = ctx->vcpus[v];

        if ( !c )
            continue;
        ctx->ptmsg[0] = '\0';
        rc = sr__localise_vcpu(&ctx->pt, v, c);
        if ( rc )
            return fail(ctx, rc, "restore: X86_PV_VCPU_BASIC record (type"
                        " %#x) at offset %" PRIu64 ": vCPU %u: %s",
                        SR_LIBXC_X86_PV_VCPU_BASIC, ctx->vcpu_rec_off[v], v,
                        ctx->ptmsg);
        if ( v == 0 )
        {
            rc = process_start_info(ctx, c->user_regs.rdx, shinfo_mfn);
            if ( rc )
                return rc;
        }
        if ( xc_vcpu_setcontext(ctx->xch, ctx->domid, v, c) &&
             (rc = -errno) == -EINVAL && find_bad_table(ctx) )
            return rc;
        if ( rc )
            return fail(ctx, rc, "restore: X86_PV_VCPU_BASIC record"
                        " (type %#x) at offset %" PRIu64 ": cannot set the"
                        " context of vCPU %u: %s",
                        SR_LIBXC_X86_PV_VCPU_BASIC, ctx->vcpu_rec_off[v], v,
                        strerror(-rc));
    }
    return 0;
}

/*
 * A batch of pins failed: the hypervisor stops at the first table that
 * does not validate, so the first one of the batch not pinned now is the
 * culprit.  Name it, its level and the record that carried it.
 */
static int pin_failed(struct restore_ctx *ctx, const struct mmuext_op *ops,
                      unsigned int n, int err)
{
    xen_pfn_t types[PIN_BATCH];
    uint64_t pfn;

    for ( unsigned int i = 0; i < n; i++ )
        types[i] = ops[i].arg1.mfn;
    if ( xc_get_pfn_type_batch(ctx->xch, ctx->domid, n, types) )
        goto batch;
    for ( unsigned int i = 0; i < n; i++ )
    {
        if ( types[i] & XEN_DOMCTL_PFINFO_LPINTAB )
            continue;
        pfn = ctx->pt.m2p[ops[i].arg1.mfn];
        if ( pfn > ctx->max_pfn || pfn >= ctx->nr_pfn_rec_off ||
             ctx->pfn_rec_off[pfn] >= DEMANDED )
            goto batch;
        return fail(ctx, err, "restore: PAGE_DATA record (type %#x) at"
                    " offset %" PRIu64 ": the L%u table at pfn %#" PRIx64
                    " does not validate: %s", SR_LIBXC_PAGE_DATA,
                    ctx->pfn_rec_off[pfn],
                    ops[i].cmd - MMUEXT_PIN_L1_TABLE + 1, pfn,
                    strerror(-err));
    }
 batch:
    return fail(ctx, err, "restore: failed to pin batch of %u page tables:"
                " %s", n, strerror(-err));
}

/*
 * Setting a vCPU's context validates the tree under its cr3, and the
 * hypervisor says only that it failed.  To name the table at fault, pin
 * every table level by level, L1s first: the first pin that fails is the
 * deepest bad table.  True when one was found (and the message set).
 * Only ever run on the way to destroying the domain.
 */
static bool find_bad_table(struct restore_ctx *ctx)
{
    struct mmuext_op ops[PIN_BATCH];
    unsigned int n;

    for ( unsigned int level = 1; level <= 4; level++ )
    {
        uint32_t want = level << XEN_DOMCTL_PFINFO_LTAB_SHIFT;

        n = 0;
        for ( uint64_t pfn = 0; pfn <= ctx->max_pfn; pfn++ )
        {
            /* One pinned as it arrived validated then, and still is. */
            if ( (ctx->pfn_types[pfn] & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) !=
                 want || ctx->pfn_types[pfn] == XEN_DOMCTL_PFINFO_XTAB ||
                 live_pinned(ctx, pfn) )
                continue;
            memset(&ops[n], 0, sizeof(ops[n]));
            ops[n].cmd = MMUEXT_PIN_L1_TABLE + level - 1;
            ops[n++].arg1.mfn = ctx->p2m[pfn];
            if ( n < PIN_BATCH )
                continue;
            if ( xc_mmuext_op(ctx->xch, ops, n, ctx->domid) )
                goto bad;
            n = 0;
        }
        if ( n && xc_mmuext_op(ctx->xch, ops, n, ctx->domid) )
            goto bad;
    }
    return false;
 bad:
    pin_failed(ctx, ops, n, -errno);
    return true;
}

/* The tables the guest had pinned, in PFN order (Xen's pin_pagetables). */
static int pin_pagetables(struct restore_ctx *ctx)
{
    struct mmuext_op ops[PIN_BATCH];
    unsigned int n = 0;

    for ( uint64_t w = 0; w < ctx->live_pins_words; w++ )
    {
        for ( uint64_t v = ctx->guest_pins[w]; v; v &= v - 1 )
        {
            uint64_t pfn = w * 64 + (uint64_t)__builtin_ctzll(v);
            uint32_t type = ctx->pfn_types[pfn], level;

            if ( type == XEN_DOMCTL_PFINFO_XTAB ||
                 type == XEN_DOMCTL_PFINFO_XALLOC ||
                 type == XEN_DOMCTL_PFINFO_BROKEN )
                continue;
            if ( live_pinned(ctx, pfn) )
            {
                /* Pinned as it arrived, its last copy: the guest's pin. */
                set_live_pin(ctx, pfn, false);
                continue;
            }
            level = (type & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) >>
                    XEN_DOMCTL_PFINFO_LTAB_SHIFT;
            if ( level < 1 || level > 4 )
                continue;
            memset(&ops[n], 0, sizeof(ops[n]));
            /* As the pass above: the pin ops are in level order. */
            ops[n].cmd = MMUEXT_PIN_L1_TABLE + level - 1;
            ops[n++].arg1.mfn = ctx->p2m[pfn];
            if ( n < PIN_BATCH )
                continue;
            if ( xc_mmuext_op(ctx->xch, ops, n, ctx->domid) )
                return pin_failed(ctx, ops, n, -errno);
            n = 0;
        }
    }
    if ( n && xc_mmuext_op(ctx->xch, ops, n, ctx->domid) )
        return pin_failed(ctx, ops, n, -errno);
    return 0;
}

static int cmp_mfn(const void *a, const void *b)
{
    const struct mfn_pfn *x = a, *y = b;

    return x->mfn < y->mfn ? -1 : x->mfn > y->mfn;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The new MFN of the frame the guest knew as @old_mfn, or @dflt. */
static uint64_t new_mfn_of(const struct restore_ctx *ctx, uint64_t old_mfn,
                           uint64_t dflt)
{
    struct mfn_pfn key = { .mfn = old_mfn }, *e;

    e = bsearch(&key, ctx->known, ctx->nr_known, sizeof(*e), cmp_mfn);
    if ( !e || ctx->p2m[e->pfn] == SR__INVALID_FRAME )
        return dflt;
    return ctx->p2m[e->pfn];
}

/*
 * The new MFNs of the guest's P2M frames, which must be populated data
 * pages of the new domain.
 */
static int p2m_frame_mfns(struct restore_ctx *ctx)
{
    ctx->p2m_mfns = malloc(ctx->nr_p2m_frames * sizeof(*ctx->p2m_mfns));
    if ( !ctx->p2m_mfns )
        return fail(ctx, -ENOMEM, "restore: out of memory");
    for ( uint64_t i = 0; i < ctx->nr_p2m_frames; i++ )
    {
        uint64_t pfn = ctx->p2m_pfns[i];

        if ( pfn > ctx->max_pfn || ctx->p2m[pfn] == SR__INVALID_FRAME ||
             ctx->pfn_types[pfn] != XEN_DOMCTL_PFINFO_NOTAB )
            return fail(ctx, -EINVAL, "restore: X86_PV_P2M_FRAMES record"
                        " (type %#x) at offset %" PRIu64 ": P2M frame %"
                        PRIu64 " (pfn %#" PRIx64 ") is not a populated data"
                        " page", SR_LIBXC_X86_PV_P2M_FRAMES,
                        ctx->p2m_rec_off, i, pfn);
        ctx->p2m_mfns[i] = ctx->p2m[pfn];
    }
    /* One frame each: a frame rewritten on arrival must be no other's. */
    for ( uint64_t i = 1; i < ctx->nr_p2m_index; i++ )
        if ( ctx->p2m_index[i].pfn == ctx->p2m_index[i - 1].pfn )
            return fail(ctx, -EINVAL, "restore: X86_PV_P2M_FRAMES record"
                        " (type %#x) at offset %" PRIu64 ": P2M frames %"
                        PRIu64 " and %" PRIu64 " are both pfn %#" PRIx64,
                        SR_LIBXC_X86_PV_P2M_FRAMES, ctx->p2m_rec_off,
                        ctx->p2m_index[i - 1].mfn, ctx->p2m_index[i].mfn,
                        ctx->p2m_index[i].pfn);
    return 0;
}

/* The PFNs the old P2M covers: up to max_pfn, within the P2M frames. */
static uint64_t old_p2m_entries(const struct restore_ctx *ctx)
{
    uint64_t n = ctx->nr_p2m_frames * FPP;

    return ctx->max_pfn + 1 < n ? ctx->max_pfn + 1 : n;
}

static int add_known(struct restore_ctx *ctx, uint64_t mfn, uint64_t pfn)
{
    if ( ctx->nr_known == ctx->known_cap )
    {
        uint64_t cap = ctx->known_cap ? 2 * ctx->known_cap : 1024;
        struct mfn_pfn *k = realloc(ctx->known, cap * sizeof(*k));

        if ( !k )
            return -ENOMEM;
        ctx->known = k;
        ctx->known_cap = cap;
    }
    ctx->known[ctx->nr_known].mfn = mfn;
    ctx->known[ctx->nr_known++].pfn = pfn;
    return 0;
}

/*
 * The guest's P2M as it was saved (old MFNs), and the old MFN of each P2M
 * frame: the frame-list tree the saver walks (shared_info's root, the mid
 * pages, then the P2M frames, all old MFNs) is relinked through these.
 * Runs while the migrated domain is down: the frames were captured as
 * they arrived, and only one the stream did not send as data is read
 * here; the table holds only the frames the tree can name, rather than
 * the whole P2M inverted and sorted.
 */
static int read_old_p2m(struct restore_ctx *ctx)
{
    int rc = p2m_frame_mfns(ctx);

    if ( rc )
        return rc;
    for ( uint64_t i = 0; i < ctx->nr_p2m_frames; i++ )
    {
        if ( ctx->p2m_state[i] & P2M_CAPTURED )
            continue;
        if ( xc_frames_read(ctx->xch, ctx->domid, &ctx->p2m_mfns[i], 1,
                            ctx->old_p2m + i * FPP) )
            return fail(ctx, -errno, "restore: cannot read P2M frame %"
                        PRIu64 ": %s", i, strerror(errno));
        ctx->p2m_state[i] = P2M_CAPTURED | P2M_STALE;
    }
    for ( uint64_t i = 0; i < ctx->nr_p2m_frames; i++ )
    {
        uint64_t pfn = ctx->p2m_pfns[i], old;

        if ( pfn >= old_p2m_entries(ctx) )
            continue;
        old = ctx->old_p2m[pfn];
        if ( old != SR__INVALID_FRAME && add_known(ctx, old, pfn) )
            return fail(ctx, -ENOMEM, "restore: out of memory");
    }
    qsort(ctx->known, ctx->nr_known, sizeof(*ctx->known), cmp_mfn);
    return 0;
}

/*
 * Make new_mfn_of() answer for each of mfns[0..n) that names a frame of
 * the saved guest: those not yet known (the frame-list root and mid
 * pages, whose PFNs no record gives) are looked for in one pass over the
 * old P2M.
 */
static int resolve_old_mfns(struct restore_ctx *ctx, const uint64_t *mfns,
                            unsigned int n)
{
    uint64_t miss[FPP];
    unsigned int nr_miss = 0;
    uint64_t nr_entries = old_p2m_entries(ctx);
    bool added = false;

    for ( unsigned int i = 0; i < n && i < FPP; i++ )
    {
        struct mfn_pfn key = { .mfn = mfns[i] };

        if ( mfns[i] != SR__INVALID_FRAME && mfns[i] &&
             !bsearch(&key, ctx->known, ctx->nr_known, sizeof(key),
                      cmp_mfn) )
            miss[nr_miss++] = mfns[i];
    }
    if ( !nr_miss )
        return 0;
    qsort(miss, nr_miss, sizeof(*miss), cmp_u64);
    for ( uint64_t pfn = 0; pfn < nr_entries; pfn++ )
    {
        uint64_t v = ctx->old_p2m[pfn];

        if ( v < miss[0] || v > miss[nr_miss - 1] ||
             !bsearch(&v, miss, nr_miss, sizeof(v), cmp_u64) )
            continue;
        if ( add_known(ctx, v, pfn) )
            return fail(ctx, -ENOMEM, "restore: out of memory");
        added = true;
    }
    if ( added )
        qsort(ctx->known, ctx->nr_known, sizeof(*ctx->known), cmp_mfn);
    return 0;
}

/*
 * Copy the local P2M over the guest's P2M frames (Xen's update_guest_p2m)
 * where it is not there yet: the frames rewritten on arrival and not
 * changed since are skipped; the others are composed in batches of the
 * per-record buffers and written in one call each.
 */
#define P2M_WRITE_BATCH 64

static int update_guest_p2m(struct restore_ctx *ctx)
{
    unsigned int n = 0;

    if ( grow_buffers(ctx, P2M_WRITE_BATCH) ||
         grow_pages(ctx, P2M_WRITE_BATCH) )
        return fail(ctx, -ENOMEM, "restore: out of memory");
    for ( uint64_t i = 0; i <= ctx->nr_p2m_frames; i++ )
    {
        if ( i < ctx->nr_p2m_frames )
        {
            if ( !(ctx->p2m_state[i] & P2M_STALE) )
                continue;
            compose_p2m_frame(ctx, i, (uint64_t *)(ctx->pages +
                                                   (size_t)n * SR_PAGE_SIZE));
            ctx->mfns[n++] = ctx->p2m_mfns[i];
            ctx->p2m_state[i] &= ~P2M_STALE;
            if ( n < P2M_WRITE_BATCH )
                continue;
        }
        if ( n && xc_frames_write(ctx->xch, ctx->domid, ctx->mfns, n,
                                  ctx->pages) )
            return fail(ctx, -errno, "restore: cannot write the P2M frames:"
                        " %s", strerror(errno));
        n = 0;
    }
    return 0;
}

/* Whether @mfn is a frame of the new domain that is a guest data page. */
static bool data_mfn(const struct restore_ctx *ctx, uint64_t mfn)
{
    const uint64_t *m2p = ctx->pt.m2p;

    return mfn <= ctx->pt.max_mfn && m2p[mfn] <= ctx->max_pfn &&
           ctx->p2m[m2p[mfn]] == mfn &&
           ctx->pfn_types[m2p[mfn]] == XEN_DOMCTL_PFINFO_NOTAB;
}

/*
 * The frame-list tree under shared_info (root page, then mid pages, then
 * the P2M frames) holds the old host's MFNs: make it name the new ones,
 * so that the guest can be saved again.  Entries that name no frame of
 * the saved guest are left alone.  Each page is read, relinked here and
 * written back.
 */
static int relink_frame_list(struct restore_ctx *ctx, uint64_t top_mfn)
{
    uint64_t top[FPP], mid[FPP];
    xen_pfn_t top_x = top_mfn, mid_x;
    int rc;

    if ( !data_mfn(ctx, top_mfn) ||
         xc_frames_read(ctx->xch, ctx->domid, &top_x, 1, top) )
        return fail(ctx, -EINVAL, "restore: the P2M frame-list root is"
                    " not a data page of the guest");
    if ( (rc = resolve_old_mfns(ctx, top, FPP)) )
        return rc;
    for ( unsigned int i = 0; i < FPP; i++ )
    {
        uint64_t m = new_mfn_of(ctx, top[i], SR__INVALID_FRAME);

        if ( m == SR__INVALID_FRAME )
            continue;
        top[i] = m;
        mid_x = m;
        if ( !data_mfn(ctx, m) ||
             xc_frames_read(ctx->xch, ctx->domid, &mid_x, 1, mid) )
            return fail(ctx, -EINVAL, "restore: P2M frame-list page %u is"
                        " not a data page of the guest", i);
        if ( (rc = resolve_old_mfns(ctx, mid, FPP)) )
            return rc;
        for ( unsigned int j = 0; j < FPP; j++ )
            mid[j] = new_mfn_of(ctx, mid[j], mid[j]);
        if ( xc_frames_write(ctx->xch, ctx->domid, &mid_x, 1, mid) )
            return fail(ctx, -errno, "restore: cannot write P2M frame-list"
                        " page %u", i);
    }
    if ( xc_frames_write(ctx->xch, ctx->domid, &top_x, 1, top) )
        return fail(ctx, -errno, "restore: cannot write the P2M frame-list"
                    " root");
    return 0;
}

/*
 * The new shared_info: the new host's page, with the guest-visible state
 * of the saved one: vcpu_info, the event-channel arrays and the arch
 * part.  The frame-list root is saved raw (an old MFN) and becomes the
 * new MFN of the same page; ferry's control word starts clear, as no
 * request of the old host applies here.  The wallclock is the new host's.
 */
static int handle_shared_info(struct restore_ctx *ctx, uint64_t shinfo_mfn)
{
    uint8_t si[SR_PAGE_SIZE];
    xen_pfn_t mfn = shinfo_mfn;
    uint64_t fll;
    int rc;

    if ( !ctx->have_shinfo )
        return 0;
    if ( xc_frames_read(ctx->xch, ctx->domid, &mfn, 1, si) )
        return fail(ctx, -errno, "restore: cannot read shared_info");
    memcpy(si, ctx->shinfo, SHINFO_WC_VERSION);     /* vcpu_info, evtchn */
    memcpy(si + SHINFO_MAX_PFN, ctx->shinfo + SHINFO_MAX_PFN,
           SHINFO_P2M_GENERATION + 8 - SHINFO_MAX_PFN);
    memcpy(&fll, ctx->shinfo + SHINFO_PFN_TO_MFN_FLL, sizeof(fll));
    if ( (rc = resolve_old_mfns(ctx, &fll, 1)) )
        return rc;
    fll = new_mfn_of(ctx, fll, 0);
    memcpy(si + SHINFO_PFN_TO_MFN_FLL, &fll, sizeof(fll));
    memset(si + SHINFO_FERRY_CONTROL, 0, 8);
    if ( xc_frames_write(ctx->xch, ctx->domid, &mfn, 1, si) )
        return fail(ctx, -errno, "restore: cannot write shared_info");
    return fll ? relink_frame_list(ctx, fll) : 0;
}

/*
 * Every PFN a page table named must be one the stream sent (Xen's saver
 * sends every PFN up to max_pfn, invalid ones as XTAB): a table naming a
 * PFN the stream never mentions would map a page of zeroes the guest
 * never had.  Refused, naming the table and its record.
 */
static int check_demand(struct restore_ctx *ctx)
{
    /* Counted as they came: the list is searched only to name one. */
    if ( !ctx->nr_unmet )
        return 0;
    for ( size_t i = 0; i < ctx->nr_demand; i++ )
    {
        const struct demand *d = &ctx->demand[i];

        if ( d->pfn < ctx->nr_pfn_rec_off &&
             ctx->pfn_rec_off[d->pfn] < DEMANDED )
            continue;
        return fail(ctx, -EINVAL, "restore: PAGE_DATA record (type %#x) at"
                    " offset %" PRIu64 ": the L%u table at pfn %#" PRIx64
                    " names pfn %#" PRIx64 ", which the stream never sent",
                    SR_LIBXC_PAGE_DATA, d->rec_off, d->level, d->table_pfn,
                    d->pfn);
    }
    return 0;
}

static int stream_complete(struct restore_ctx *ctx)
{
    int rc;

    if ( !ctx->p2m )
        return fail(ctx, -EINVAL, "restore: no X86_PV_P2M_FRAMES record");
    rc = check_demand(ctx);
    if ( rc )
        return rc;
    rc = update_vcpu_context(ctx, ctx->shinfo_mfn);
    if ( !rc )
        rc = pin_pagetables(ctx);
    if ( !rc )
        rc = drop_live_pins(ctx);
    if ( !rc )
        rc = read_old_p2m(ctx);
    if ( !rc )
        rc = update_guest_p2m(ctx);
    if ( !rc )
        rc = handle_shared_info(ctx, ctx->shinfo_mfn);
    return rc;
}

/* ------------------------------------------------------------------------
 * The streams
 * ------------------------------------------------------------------------ */

/*
 * The libxc records.  Their buffer (the largest PAGE_DATA's) is the
 * context's, freed with the rest.
 */
static int restore_libxc(struct restore_ctx *ctx)
{
    struct sr_libxc_ihdr ih;
    struct sr_libxc_dhdr dh;
    struct sr_rec *rec = &ctx->rec;
    int rc;

    rec->max_pages = ctx->admitted_pages;
    rec->defer_pages = true;
    rc = sr_read_libxc_ihdr(ctx->io, &ih);
    if ( !rc )
        rc = sr_read_libxc_dhdr(ctx->io, &dh);
    if ( rc )
        return fail_io(ctx, rc);
    for ( ;; )
    {
        rc = sr_read_record(ctx->io, SR_LIBXC, rec);
        if ( rc )
            return fail_io(ctx, rc);
        if ( rec->type == SR_LIBXC_END )
        {
            ctx->end_rec_off = rec->offset;
            break;
        }
        if ( ctx->a->cancel && atomic_load(ctx->a->cancel) )
            return fail(ctx, -ECANCELED, "restore: cancelled");
        rc = process_record(ctx, rec);
        if ( rc )
            return rc;
    }
    rc = settle_copy(ctx);
    if ( rc )
        return rc;
    ctx->r->t_last_page_ns = now_ns();
    if ( ctx->r->verify_mismatches )
        return fail(ctx, -EILSEQ, "VERIFY: pfn %#" PRIx64 " differs (%"
                    PRIu64 " page%s in all)", ctx->first_mismatch,
                    ctx->r->verify_mismatches,
                    ctx->r->verify_mismatches == 1 ? "" : "s");
    report(ctx, SR_PHASE_STATE);
    rc = stream_complete(ctx);
    ctx->r->t_done_ns = now_ns();
    return rc;
}

static int expect_libxl(struct restore_ctx *ctx, struct sr_rec *rec,
                        uint32_t type)
{
    int rc = sr_read_record(ctx->io, SR_LIBXL, rec);

    if ( rc )
        return fail_io(ctx, rc);
    if ( rec->type != type )
        return fail(ctx, -EINVAL, "restore: libxl %s record (type %#x) at"
                    " offset %" PRIu64 " where %s was expected",
                    sr_libxl_rec_name(rec->type), rec->type, rec->offset,
                    sr_libxl_rec_name(type));
    return 0;
}

/*
 * A migration's trailer: required, and read exactly (the handshake
 * follows it on the same channel), with the checks of
 * sr_read_ferry_trailer().
 */
static int read_trailer_exact(struct restore_ctx *ctx)
{
    struct sr_ferry_trailer t;
    uint8_t digest[SR_SHA256_LEN];
    uint64_t covered = sr_io_offset(ctx->io);
    int rc;

    rc = sr_io_hash_final(ctx->io, digest);
    if ( !rc )
        rc = sr_io_read(ctx->io, &t, sizeof(t));
    if ( rc == -ENODATA )
        return fail(ctx, rc, "restore: the stream ended at offset %" PRIu64
                    " where ferry's digest trailer was due", covered);
    if ( rc )
        return fail_io(ctx, rc);
    if ( memcmp(t.magic, SR_FERRY_TRAILER_MAGIC, sizeof(t.magic)) )
        return fail(ctx, -EINVAL, "restore: no ferry digest trailer after"
                    " the libxl END record at offset %" PRIu64, covered);
    /* The algorithm is the one the xl header announced (sr.h). */
    if ( le32toh(t.version) != SR_FERRY_TRAILER_VERSION ||
         le32toh(t.algorithm) != sr_io_hash_alg(ctx->io) )
        return fail(ctx, -EOPNOTSUPP, "restore: ferry digest trailer version"
                    " %u algorithm %u not supported", le32toh(t.version),
                    le32toh(t.algorithm));
    if ( le64toh(t.covered) != covered )
        return fail(ctx, -EINVAL, "restore: ferry digest trailer covers %"
                    PRIu64 " bytes but the stream is %" PRIu64 ": the"
                    " stream is corrupted",
                    (uint64_t)le64toh(t.covered), covered);
    if ( memcmp(t.digest, digest, sizeof(digest)) )
        return fail(ctx, -EILSEQ, "restore: digest mismatch: the stream is"
                    " corrupted");
    return 0;
}

/*
 * The xl header, unless the caller read it (then its flags come in the
 * arguments and the config stays the caller's); *flags either way.
 */
static int read_xl_hdr(struct restore_ctx *ctx, void **config,
                       uint32_t *config_len, uint32_t *flags)
{
    struct sr_xl_hdr xh;
    int rc;

    if ( ctx->a->xl_hdr_read )
        *flags = ctx->a->xl_mandatory_flags;
    else
    {
        /* The digest in ferry's trailer covers the file from its start. */
        rc = sr_io_hash_start(ctx->io);
        if ( !rc )
            rc = sr_read_xl_hdr(ctx->io, &xh, config, config_len);
        if ( rc )
            return fail_io(ctx, rc);
        *flags = xh.mandatory_flags;
        if ( !*config || !*config_len )
            *flags &= ~SR_XL_FLAG_JSON;
    }
    if ( !(*flags & SR_XL_FLAG_JSON) || !(*flags & SR_XL_FLAG_STREAMV2) )
        return fail(ctx, -EOPNOTSUPP, "restore: the save file has no JSON"
                    " domain config or is not a v2 stream");
    return 0;
}

/* Everything the engine holds but the domain itself. */
static void ctx_release(struct restore_ctx *ctx)
{
    xc_interface_close(ctx->xch);
    if ( ctx->m2p )
        munmap(ctx->m2p, ctx->m2p_bytes);
    if ( ctx->vcpus )
        for ( unsigned int v = 0; v < ctx->max_vcpus; v++ )
            free(ctx->vcpus[v]);
    free(ctx->vcpus);
    free(ctx->p2m);
    free(ctx->pfn_types);
    free(ctx->p2m_pfns);
    free(ctx->p2m_mfns);
    free(ctx->p2m_state);
    free(ctx->p2m_index);
    free(ctx->live_pins);
    free(ctx->guest_pins);
    free(ctx->pin_ops);
    free(ctx->pin_pfns);
    free(ctx->pend_l1);
    if ( ctx->old_p2m )
        munmap(ctx->old_p2m, ctx->old_p2m_bytes);
    free(ctx->known);
    free(ctx->ext);
    free(ctx->pop_pfns);
    free(ctx->mfns);
    free(ctx->pages);
    free(ctx->vpages);
    free(ctx->pfn_rec_off);
    free(ctx->demand);
    free(ctx->vcpu_rec_off);
    sr_rec_free(&ctx->rec);
}

int sr_restore_domain(struct sr_io *io, const struct sr_restore_args *a,
                      struct sr_restore_result *r, char *msg, size_t msglen)
{
    struct restore_ctx ctx = {
        .io = io, .msg = msg, .msglen = msglen,
        .a = a, .r = r,
    };
    struct restore_ctx *keep;
    struct sr_libxl_hdr lh;
    struct sr_rec rec;
    void *config = NULL;
    uint32_t config_len = 0, flags = 0;
    int rc;

    sr_rec_init(&rec);
    sr_rec_init(&ctx.rec);
    if ( msg && msglen )
        msg[0] = '\0';
    *r = (struct sr_restore_result){ .domid = 0 };
    ctx.pt.msg = ctx.ptmsg;
    ctx.pt.msg_size = sizeof(ctx.ptmsg);
    ctx.pt.populate = populate_one;
    ctx.pt.populate_arg = &ctx;
    /* The host's highest machine frame, as the saver takes it. */
    ctx.pt.max_mfn = xc_max_page(a->builder ? a->builder : a->xch) - 1;
    /*
     * The domain is built through a builder session (ferry-hv(8), THREAT
     * MODEL): bound to the one domain it creates, seeing no machine
     * memory, each frame it writes checked by the daemon; so a flaw in
     * this parser reaches no other domain's frames.
     */
    ctx.xch = a->builder ? a->builder : xc_builder_open(a->xch);
    if ( !ctx.xch )
    {
        rc = fail(&ctx, -errno, "restore: cannot open a builder session"
                  " with the host: %s", strerror(errno));
        goto out;
    }
    ctx.m2p_bytes = (ctx.pt.max_mfn + 1) * sizeof(*ctx.m2p);
    ctx.m2p = mmap(NULL, ctx.m2p_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if ( ctx.m2p == MAP_FAILED )
    {
        ctx.m2p = NULL;
        rc = fail(&ctx, -ENOMEM, "restore: out of memory");
        goto out;
    }
    ctx.pt.m2p = ctx.m2p;

    report(&ctx, SR_PHASE_SETUP);
    rc = read_xl_hdr(&ctx, &config, &config_len, &flags);
    if ( rc )
        goto out;
    /* ferry's -z: all after the xl header is one zlib stream. */
    if ( (flags & SR_XL_FLAG_FERRY_ZLIB) &&
         (rc = sr_io_inflate_start(io)) )
    {
        fail_io(&ctx, rc);
        goto out;
    }
    rc = create_domain(&ctx, a);
    if ( rc )
        goto out;
    rec.max_pages = ctx.admitted_pages;
    rc = sr_read_libxl_hdr(io, &lh);
    if ( rc )
    {
        fail_io(&ctx, rc);
        goto out;
    }
    rc = expect_libxl(&ctx, &rec, SR_LIBXL_LIBXC_CONTEXT);
    if ( !rc )
        rc = restore_libxc(&ctx);
    if ( !rc )
        rc = expect_libxl(&ctx, &rec, SR_LIBXL_END);
    if ( rc )
        goto out;
    /*
     * Every page is in the (paused) domain by now; a bad digest destroys
     * it below, so a corrupted file never runs.  Xen's files end at the
     * END and are let through unchecked.
     */
    if ( a->stream_continues )
    {
        rc = read_trailer_exact(&ctx);
        r->digest_checked = !rc;
    }
    else if ( (rc = sr_read_ferry_trailer(io, &r->digest_checked)) )
        fail_io(&ctx, rc);
    if ( rc )
        goto out;
    if ( !r->digest_checked && msg && msglen )
        snprintf(msg, msglen, "no ferry digest: not checked");
    /*
     * The domain is complete.  Until the daemon is told so, it dies with
     * this session: the caller that keeps the session says so itself.
     */
    if ( a->keep_builder )
    {
        r->builder = ctx.xch;
        ctx.xch = NULL;
    }
    else if ( xc_domain_build_done(ctx.xch, ctx.domid) )
    {
        rc = fail(&ctx, -errno, "restore: the host would not keep domain"
                  " %u: %s", ctx.domid, strerror(errno));
        goto out;
    }
    r->domid = ctx.domid;
    r->config_json = config;
    config = NULL;
    report(&ctx, SR_PHASE_DONE);
 out:
    if ( rc && ctx.created )
        xc_domain_destroy(ctx.xch, ctx.domid);
    /* The caller's builder session is the caller's to close. */
    if ( ctx.xch == a->builder )
        ctx.xch = NULL;
    if ( !rc && a->defer_release && (keep = malloc(sizeof(*keep))) )
    {
        *keep = ctx;
        r->scratch = keep;
    }
    else
        ctx_release(&ctx);
    free(config);
    sr_rec_free(&rec);
    return rc;
}

void sr_restore_release(struct sr_restore_result *r)
{
    if ( !r->scratch )
        return;
    ctx_release(r->scratch);
    free(r->scratch);
    r->scratch = NULL;
}
