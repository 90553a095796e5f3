/* SPDX-License-Identifier: MIT */
/*
 * sr-save.c: the save engine, non-live and live (Xen's xg_sr_save.c with
 * the PV parts of xg_sr_save_x86_pv.c, and the stream writing of libxl's
 * libxl_stream_write.c).
 *
 * sr_save_domain() writes one PV domain to an sr_io: the xl save-file
 * header with the domain's config, the libxl v2 header, a LIBXC_CONTEXT
 * record, the whole libxc v3 stream, then the libxl END.  The libxc
 * stream is Xen's: image and domain headers, X86_PV_INFO,
 * STATIC_DATA_END, X86_PV_P2M_FRAMES, memory in PAGE_DATA batches of at
 * most 1024 PFNs, X86_TSC_INFO, SHARED_INFO, one X86_PV_VCPU_BASIC per
 * online vCPU, END.
 *
 * Zero pages.  A page that nothing wrote since its frame left the heap
 * holds zeros (the heap scrubs every frame it takes back), and costs only
 * its PFN: a PAGE_DATA entry of type XALLOC, Xen's "allocate only", for
 * which a receiver populates a fresh frame (zero, the heap's again) and
 * writes nothing.  The sender does not read memory to find them: the
 * hypervisor keeps a conservative per-frame "may hold data" bit, set on
 * every path that can write a frame (paging_mark_dirty, which the guest
 * CPU, copy_to_guest, page-table and descriptor updates and grant unmaps
 * call, and every writable foreign mapping at map time; the builder maps
 * only its boot area writable), and getpageframeinfo3 with
 * XC_PFINFO_ZERO answers XALLOC for an ordinary page whose bit is clear.
 * So the answer costs nothing beyond the type query each batch makes
 * anyway: a 2 GiB untouched domain goes out as ~4 MiB of PFNs.  Reading
 * each page and testing it for zeros (the other way to find them) would
 * cost a read of all memory; it is not done.  XALLOC is asked for only
 * on a PFN's first send: a receiver leaves an XALLOC page as it is, so a
 * page sent with data once and zeroed since must go out as data again;
 * later passes and the VERIFY pass are unchanged.  A write racing the
 * query is as safe as one racing a read: log-dirty was enabled before
 * the first query, and every path that sets the bit also marks the page
 * dirty (or, for a foreign mapping, happens before the saver starts).
 *
 * Memory, non-live: the domain is suspended and every PFN sent once.
 * Live (Xen's send_domain_memory_live): log-dirty is enabled, every PFN
 * is sent while the domain runs, then the pages dirtied meanwhile, pass
 * after pass, until the pre-copy policy (sr__precopy_decide) says stop;
 * then the domain is suspended and the last dirty set sent, with the
 * page tables deferred during the live passes; with debug a VERIFY
 * record and every page again follow.  Then the state records.
 *
 * Invariants:
 * - The domain is only read.  It must be shut down with reason suspend
 *   when its state is read; the caller resumes or destroys it afterwards.
 *   A live save starts with the domain running and refuses otherwise.
 * - Log-dirty is off again on every return of a live save.
 * - The P2M is read once, through the frame-list tree shared_info
 *   points at, and copied: every later lookup uses the copy, and every
 *   MFN read from guest memory is range-checked before it is mapped.
 * - Nothing is written for a page until its whole batch has been typed,
 *   mapped and normalised, so a fatal error never leaves a half record
 *   behind the last complete one (the caller aborts the file anyway).
 * - Machine frame numbers never reach the stream: page tables, the P2M
 *   frame list and vCPU contexts are normalised to PFNs (sr-pt.c).  While
 *   the domain runs, a page table naming a frame outside the guest's
 *   pseudo-physical map, or a frame the guest gave away after it was
 *   typed (races with the guest), is sent as XTAB and deferred to the
 *   final pass; once the guest is suspended that is fatal, as in Xen.
 *   No page is ever dropped silently.
 * - Every PFN the final pass must send is in ctx->todo when it starts:
 *   what a live pass left unsent, the last dirty set and the deferred
 *   pages.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sr.h"
#include "sr-pt.h"
#include "../libxc/xc.h"

#define MAX_BATCH_SIZE  1024            /* Xen's, and getpageframeinfo3's */
#define FPP             (SR_PAGE_SIZE / sizeof(uint64_t))  /* 512 */
#define RUNNING_MIN_NS  20000000ULL     /* a pass's rate after 20 ms */

struct save_ctx
{
    xc_interface *xch;
    uint32_t domid;
    struct sr_io *io;
    char *msg;
    size_t msglen;

    xc_domaininfo_t info;
    uint64_t max_mfn;                   /* highest machine frame */
    const uint8_t *shinfo;              /* read-only mapping */
    bool trailer;                       /* ferry's digest after END */

    uint64_t max_pfn;                   /* highest PFN (count - 1) */
    uint64_t *p2m;                      /* copy, max_pfn + 1 entries */
    uint64_t nr_leaves;                 /* P2M frames */
    uint64_t *leaf_mfns;
    struct sr__pt_ctx pt;
    char ptmsg[SR__PT_MSG_SIZE];

    uint64_t *batch_pfns;
    xen_pfn_t *batch_types;
    uint8_t *batch_pages;               /* MAX_BATCH_SIZE pages */

    /* Live save (all bitmaps: bit pfn % 64 of word pfn / 64). */
    const struct sr_save_args *a;
    struct sr_precopy_policy pol;       /* defaults filled in */
    bool live;                          /* the domain may be running */
    bool verifying;                     /* the VERIFY pass: not counted */
    bool logdirty_on;
    uint64_t nr_words;                  /* bitmap words for max_pfn + 1 */
    uint64_t *todo;                     /* PFNs the current pass sends */
    uint64_t *dirty;                    /* the last CLEAN */
    uint64_t *deferred;                 /* page tables to resend */
    uint64_t *sent;                     /* data pages sent at least once */
    uint64_t t_live_ns;                 /* the live phase began */
    uint64_t t_pass_ns, pass_bytes0;    /* the current pass began */
    uint64_t pass_bytes;                /* the last pass sent */
    unsigned int throttle;              /* percent set; 0: none */
    unsigned int throttle_raises;       /* passes that raised it */
    struct sr_progress prog;
    struct sr_save_stats st;
};

/* Store the first failure's message; return rc. */
static int __attribute__((format(printf, 3, 4)))
save_fail(struct save_ctx *ctx, int rc, const char *fmt, ...)
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

/* A stream-layer failure: pass its message up. */
static int io_fail(struct save_ctx *ctx, int rc)
{
    return save_fail(ctx, rc, "%s", sr_io_errmsg(ctx->io)[0]
                     ? sr_io_errmsg(ctx->io) : strerror(-rc));
}

/* The domain must be a PV domain shut down for suspend (Xen's check). */
static int check_suspended(struct save_ctx *ctx)
{
    uint32_t flags;

    if ( xc_domain_getinfo_single(ctx->xch, ctx->domid, &ctx->info) )
        return save_fail(ctx, -errno, "Unable to get domain info for "
                         "domain %u: %s", ctx->domid, strerror(errno));
    flags = ctx->info.flags;
    if ( flags & XEN_DOMINF_hvm_guest )
        return save_fail(ctx, -EOPNOTSUPP, "Domain %u is not PV",
                         ctx->domid);
    if ( !(flags & XEN_DOMINF_shutdown) ||
         ((flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask) !=
         SHUTDOWN_suspend )
        return save_fail(ctx, -EINVAL, "Domain has not been suspended: "
                         "shutdown %d, reason %u",
                         !!(flags & XEN_DOMINF_shutdown),
                         (flags >> XEN_DOMINF_shutdownshift) &
                         XEN_DOMINF_shutdownmask);
    return 0;
}

static void *map_ro(struct save_ctx *ctx, uint64_t mfn)
{
    return xc_map_foreign_frame(ctx->xch, ctx->domid, XC_MAP_READ, mfn);
}

/* An MFN read from guest memory that is about to be mapped. */
static bool mfn_plausible(const struct save_ctx *ctx, uint64_t mfn)
{
    return mfn && mfn <= ctx->max_mfn;
}

/*
 * Read the guest's P2M through the 3-level tree: shared_info names the
 * top page, whose entries name the mid pages, whose entries name the
 * leaves, which hold the P2M itself (Xen's map_p2m_tree).  Every MFN
 * read from the guest is checked before it is mapped.
 */
static int map_p2m_tree(struct save_ctx *ctx)
{
    const uint64_t *fll, *mid = NULL, *leaf = NULL;
    uint64_t fll_mfn, fll_entries, mfn, saved_mfn = 0, saved_x = 0;
    uint64_t pfn, x, max_pfn;

    fll_entries = ctx->max_pfn / (FPP * FPP) + 1;
    if ( fll_entries > FPP )
        return save_fail(ctx, -E2BIG, "max_pfn %#" PRIx64 " too large for "
                         "p2m tree", ctx->max_pfn);

    fll_mfn = *(const uint64_t *)(ctx->shinfo + SHINFO_PFN_TO_MFN_FLL);
    if ( !mfn_plausible(ctx, fll_mfn) )
        return save_fail(ctx, -EINVAL, "Bad mfn %#" PRIx64 " for p2m frame "
                         "list list", fll_mfn);
    if ( !(fll = map_ro(ctx, fll_mfn)) )
        return save_fail(ctx, -errno, "Failed to map p2m frame list list "
                         "at %#" PRIx64 ": %s", fll_mfn, strerror(errno));

    for ( x = 0; x < fll_entries; x++ )
    {
        if ( !mfn_plausible(ctx, fll[x]) )
            return save_fail(ctx, -EINVAL, "Bad mfn %#" PRIx64 " at index %"
                             PRIu64 " (of %" PRIu64 ") in p2m frame list "
                             "list", fll[x], x, fll_entries);
        if ( fll[x] != saved_mfn )
        {
            saved_mfn = fll[x];
            saved_x = x;
        }
    }
    /*
     * Identical trailing top entries can only name mid pages of invalid
     * entries (one frame cannot back two ranges of PFNs across a
     * migration), so the P2M ends before them, as Xen concludes.
     */
    max_pfn = (saved_x + 1) * FPP * FPP - 1;
    if ( max_pfn < ctx->max_pfn )
        ctx->max_pfn = max_pfn;

    ctx->nr_leaves = ctx->max_pfn / FPP + 1;
    ctx->leaf_mfns = calloc(ctx->nr_leaves, sizeof(*ctx->leaf_mfns));
    ctx->p2m = malloc((ctx->max_pfn + 1) * sizeof(*ctx->p2m));
    if ( !ctx->leaf_mfns || !ctx->p2m )
        return save_fail(ctx, -ENOMEM, "Cannot allocate the local p2m");

    for ( x = 0; x < ctx->nr_leaves; x++ )
    {
        if ( x % FPP == 0 && !(mid = map_ro(ctx, fll[x / FPP])) )
            return save_fail(ctx, -errno, "Failed to map p2m frame list: "
                             "%s", strerror(errno));
        ctx->leaf_mfns[x] = mid[x % FPP];
        if ( !mfn_plausible(ctx, ctx->leaf_mfns[x]) )
            return save_fail(ctx, -EINVAL, "Bad mfn %#" PRIx64 " at index %"
                             PRIu64 " (of %" PRIu64 ") in p2m frame list",
                             ctx->leaf_mfns[x], x, ctx->nr_leaves);
    }

    for ( pfn = 0; pfn <= ctx->max_pfn; pfn++ )
    {
        if ( pfn % FPP == 0 )
        {
            mfn = ctx->leaf_mfns[pfn / FPP];
            if ( !(leaf = map_ro(ctx, mfn)) )
                return save_fail(ctx, -errno, "Failed to map p2m frame at "
                                 "%#" PRIx64 ": %s", mfn, strerror(errno));
        }
        ctx->p2m[pfn] = leaf[pfn % FPP];
    }
    return 0;
}

/* Map shared_info, copy the P2M and set up the normalisation context. */
static int map_domain(struct save_ctx *ctx)
{
    uint64_t count;
    int rc;

    ctx->max_mfn = xc_max_page(ctx->xch) - 1;
    ctx->shinfo = map_ro(ctx, ctx->info.shared_info_frame);
    if ( !ctx->shinfo )
        return save_fail(ctx, -errno, "Failed to map shared info frame at "
                         "mfn %#" PRIx64 ": %s",
                         (uint64_t)ctx->info.shared_info_frame,
                         strerror(errno));

    count = *(const uint64_t *)(ctx->shinfo + SHINFO_MAX_PFN);
    if ( count == 0 || count - 1 > SR_PFN_MASK )
        return save_fail(ctx, -EINVAL, "Invalid max_pfn %#" PRIx64
                         " in shared info", count);
    ctx->max_pfn = count - 1;
    if ( *(const uint64_t *)(ctx->shinfo + SHINFO_P2M_CR3) )
        return save_fail(ctx, -EOPNOTSUPP, "Linear p2m list not supported");
    if ( (rc = map_p2m_tree(ctx)) )
        return rc;

    ctx->pt = (struct sr__pt_ctx){
        .max_mfn = ctx->max_mfn,
        .m2p = xc_m2p(ctx->xch),
        .max_pfn = ctx->max_pfn,
        .p2m = ctx->p2m,
        .msg = ctx->ptmsg,
        .msg_size = sizeof(ctx->ptmsg),
    };
    return 0;
}

/* The headers and the records before memory. */
static int write_start(struct save_ctx *ctx, const struct sr_save_args *a)
{
    struct sr_x86_pv_info pvi = { .guest_width = 8, .pt_levels = 4 };
    struct sr_x86_pv_p2m_frames hdr = {
        .start_pfn = htole32(0),
        .end_pfn = htole32((uint32_t)ctx->max_pfn),
    };
    struct xc_host_info hi;
    uint32_t flags = SR_XL_FLAG_STREAMV2 | a->xl_mandatory_flags;
    uint32_t cfg_len = a->config_json ? strlen(a->config_json) + 1 : 0;
    uint64_t *pfns = NULL;
    struct iovec iov[2];
    int rc;

    if ( xc_host_info(ctx->xch, &hi) )
        return save_fail(ctx, -errno, "Unable to get Xen version: %s",
                         strerror(errno));
    if ( ctx->max_pfn > UINT32_MAX )
        return save_fail(ctx, -E2BIG, "max_pfn %#" PRIx64 " does not fit "
                         "X86_PV_P2M_FRAMES", ctx->max_pfn);
    if ( cfg_len )
        flags |= SR_XL_FLAG_JSON;

    /* The P2M frames as PFNs: each must be the guest's own. */
    if ( !(pfns = malloc(ctx->nr_leaves * sizeof(*pfns))) )
        return save_fail(ctx, -ENOMEM, "Unable to allocate p2m frame list");
    for ( uint64_t i = 0; i < ctx->nr_leaves; i++ )
    {
        if ( !sr__mfn_in_pseudophysmap(&ctx->pt, ctx->leaf_mfns[i]) )
        {
            rc = save_fail(ctx, -ERANGE, "Bad mfn %#" PRIx64 " for p2m "
                           "frame %" PRIu64, ctx->leaf_mfns[i], i);
            goto out;
        }
        pfns[i] = htole64(ctx->pt.m2p[ctx->leaf_mfns[i]]);
    }

    iov[0] = (struct iovec){ .iov_base = &hdr, .iov_len = sizeof(hdr) };
    iov[1] = (struct iovec){ .iov_base = pfns,
                             .iov_len = ctx->nr_leaves * sizeof(*pfns) };
    if ( (rc = sr_write_xl_hdr(ctx->io, flags, a->config_json, cfg_len)) ||
         /* ferry's -z: all after the xl header is one zlib stream. */
         ((flags & SR_XL_FLAG_FERRY_ZLIB) &&
          (rc = sr_io_deflate_start(ctx->io, 1))) ||
         (rc = sr_write_libxl_hdr(ctx->io)) ||
         (rc = sr_write_record(ctx->io, SR_LIBXL, SR_LIBXL_LIBXC_CONTEXT,
                               NULL, 0)) ||
         (rc = sr_write_libxc_ihdr(ctx->io)) ||
         (rc = sr_write_libxc_dhdr(ctx->io, hi.xen_major, hi.xen_minor)) ||
         (rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_X86_PV_INFO,
                               &pvi, sizeof(pvi))) ||
         (rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_STATIC_DATA_END,
                               NULL, 0)) ||
         (rc = sr_write_recordv(ctx->io, SR_LIBXC,
                                SR_LIBXC_X86_PV_P2M_FRAMES, iov, 2)) )
        rc = io_fail(ctx, rc);
 out:
    free(pfns);
    return rc;
}

/* ------------------------------------------------------------------------
 * Bitmaps, clocks, progress
 * ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool test_bit(const uint64_t *map, uint64_t pfn)
{
    return map[pfn / 64] & (1ULL << (pfn % 64));
}

static void set_bit(uint64_t *map, uint64_t pfn)
{
    map[pfn / 64] |= 1ULL << (pfn % 64);
}

static void clear_bit(uint64_t *map, uint64_t pfn)
{
    map[pfn / 64] &= ~(1ULL << (pfn % 64));
}

/* The bits of the last word past max_pfn: they name no PFN. */
static uint64_t last_word_mask(const struct save_ctx *ctx)
{
    unsigned int bits = (ctx->max_pfn + 1) % 64;

    return bits ? (1ULL << bits) - 1 : ~0ULL;
}

static uint64_t count_bits(const uint64_t *map, uint64_t words)
{
    uint64_t n = 0;

    for ( uint64_t w = 0; w < words; w++ )
        n += (uint64_t)__builtin_popcountll(map[w]);
    return n;
}

const char *sr_phase_name(enum sr_phase phase)
{
    static const char *const names[] = {
        [SR_PHASE_SETUP] = "setup",
        [SR_PHASE_MEMORY] = "memory",
        [SR_PHASE_LIVE] = "live",
        [SR_PHASE_STOP_COPY] = "stop-copy",
        [SR_PHASE_VERIFY] = "verify",
        [SR_PHASE_STATE] = "state",
        [SR_PHASE_DONE] = "done",
    };

    return (unsigned int)phase < sizeof(names) / sizeof(names[0])
           ? names[phase] : "unknown";
}

/* Tell the caller where the save is (at most once per batch). */
static void report(struct save_ctx *ctx)
{
    if ( !ctx->a->progress )
        return;
    ctx->prog.bytes = sr_io_offset(ctx->io);
    ctx->prog.pages_sent = ctx->st.pages_sent;
    ctx->prog.pages_resent = ctx->st.pages_resent;
    ctx->a->progress(ctx->a->progress_arg, &ctx->prog);
}

static void start_phase(struct save_ctx *ctx, enum sr_phase phase,
                        uint64_t total)
{
    ctx->prog.phase = phase;
    ctx->prog.pass_total = total;
    ctx->prog.pass_done = 0;
    ctx->t_pass_ns = now_ns();
    ctx->pass_bytes0 = sr_io_offset(ctx->io);
    report(ctx);
}

/* ------------------------------------------------------------------------
 * The pre-copy policy
 * ------------------------------------------------------------------------ */

uint64_t sr__expected_downtime_ms(uint64_t dirty_pages, uint64_t throughput)
{
    if ( !throughput )
        return 0;
    /* dirty_pages < 2^52: the product fits after the page-size shift. */
    return (uint64_t)((unsigned __int128)dirty_pages * SR_PAGE_SIZE * 1000 /
                      throughput);
}

bool sr__precopy_timed_out(const struct sr_precopy_policy *p,
                           uint64_t elapsed_ms)
{
    return p->timeout_ms && elapsed_ms >= p->timeout_ms;
}

unsigned int sr__throttle_next(const struct sr_precopy_policy *p,
                               unsigned int cur, uint64_t dirty_bytes,
                               uint64_t sent_bytes)
{
    unsigned int top = p->throttle_max ? p->throttle_max
                                       : SR_DEFAULT_THROTTLE_MAX;
    unsigned int next;

    if ( !p->throttle_initial || dirty_bytes <= sent_bytes / 2 )
        return cur;
    next = cur ? cur + p->throttle_increment : p->throttle_initial;
    if ( top > SR_DEFAULT_THROTTLE_MAX )
        top = SR_DEFAULT_THROTTLE_MAX;
    if ( next > top )
        next = cur > top ? cur : top;
    return next;
}

enum sr__precopy_decision
sr__precopy_decide(const struct sr_precopy_policy *p,
                   const struct sr__precopy_state *s)
{
    unsigned int max_iter = p->max_iterations ? p->max_iterations
                                              : SR_DEFAULT_MAX_ITERATIONS;
    uint64_t target = p->target_dirty_pages ? p->target_dirty_pages
                                            : SR_DEFAULT_TARGET_DIRTY;

    if ( sr__precopy_timed_out(p, s->elapsed_ms) )
        return p->timeout_action == SR_TIMEOUT_FORCE
               ? SR__PRECOPY_STOP_AND_COPY : SR__PRECOPY_ABORT;
    /* Xen's simple_precopy_policy, then ferry's downtime criterion. */
    if ( s->iteration >= max_iter )
        return SR__PRECOPY_STOP_AND_COPY;
    if ( !s->dirty_known )
        return SR__PRECOPY_CONTINUE;
    if ( s->dirty_pages < target )
        return SR__PRECOPY_STOP_AND_COPY;
    if ( p->max_downtime_ms && s->throughput &&
         sr__expected_downtime_ms(s->dirty_pages, s->throughput) <=
         p->max_downtime_ms )
        return SR__PRECOPY_STOP_AND_COPY;
    return SR__PRECOPY_CONTINUE;
}

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/*
 * May pfn go out as XALLOC if its frame is untouched?  Only on its first
 * send, outside the VERIFY pass (see the top of this file).
 */
static bool first_send(const struct save_ctx *ctx, uint64_t pfn)
{
    return !ctx->verifying && (!ctx->sent || !test_bit(ctx->sent, pfn));
}

/* Count a data page sent, and whether it was sent before. */
static void count_sent(struct save_ctx *ctx, uint64_t pfn)
{
    if ( ctx->verifying )
        return;
    ctx->st.pages_sent++;
    if ( !ctx->sent )
        return;
    if ( test_bit(ctx->sent, pfn) )
        ctx->st.pages_resent++;
    else
        set_bit(ctx->sent, pfn);
    /* A consistent copy went out: later changes are logged as dirty. */
    clear_bit(ctx->deferred, pfn);
}

/*
 * Copy a batch's plain (non page-table) data pages into ctx->batch_pages
 * through the machine-memory file: one pread per run of frames adjacent
 * both in machine memory and in the batch.  Touching a fresh mapping
 * costs a fault per page here (11-15 us; MADV_POPULATE_READ first does
 * not remove it), which capped a save at ~0.3 GB/s; the file is read
 * through the kernel's warm mapping (ferry-bench: 2.4-2.9x faster saves
 * to /dev/null).  Page tables are still read through the mapping, to be
 * normalised.
 */
static int read_plain_pages(struct save_ctx *ctx, const void *const *src,
                            const unsigned int *slot, unsigned int nr)
{
    for ( unsigned int i = 0, j; i < nr; i = j )
    {
        for ( j = i + 1; j < nr && slot[j] == slot[j - 1] + 1 &&
                         (const uint8_t *)src[j] ==
                         (const uint8_t *)src[j - 1] + SR_PAGE_SIZE; j++ )
            ;
        if ( xc_mapped_read(ctx->xch, src[i], ctx->batch_pages +
                            (size_t)slot[i] * SR_PAGE_SIZE,
                            (size_t)(j - i) * SR_PAGE_SIZE) )
            return save_fail(ctx, -errno, "Failed to read guest pages: %s",
                             strerror(errno));
    }
    return 0;
}

/*
 * One PAGE_DATA record for the n PFNs in ctx->batch_pfns (Xen's
 * write_batch): types from one getpageframeinfo3 call, the data-bearing
 * frames mapped in one call, page tables normalised.  While live, a page
 * table that does not normalise is sent as XTAB and deferred.
 */
static int write_batch(struct save_ctx *ctx, unsigned int n)
{
    uint8_t types[MAX_BATCH_SIZE];
    xen_pfn_t mfns[MAX_BATCH_SIZE];
    void *ptrs[MAX_BATCH_SIZE];
    int errs[MAX_BATCH_SIZE];
    const void *plain_src[MAX_BATCH_SIZE];
    unsigned int plain_slot[MAX_BATCH_SIZE], nr_plain = 0;
    const uint64_t *pfns = ctx->batch_pfns;
    unsigned int i, nr_data = 0, m = 0, out = 0;
    int rc;

    for ( i = 0; i < n; i++ )
        ctx->batch_types[i] = ctx->p2m[pfns[i]];
    if ( xc_get_pfn_type_batch_flags(ctx->xch, ctx->domid, n,
                                     ctx->batch_types,
                                     ctx->verifying ? 0 : XC_PFINFO_ZERO) )
        return save_fail(ctx, -errno, "Failed to get types for pfn batch "
                         "%#" PRIx64 "+%u: %s", pfns[0], n, strerror(errno));

    for ( i = 0; i < n; i++ )
    {
        types[i] = ctx->batch_types[i] >> XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        if ( !sr_pfinfo_valid(types[i]) )
            return save_fail(ctx, -EINVAL, "Unknown type %#" PRIx64
                             " for pfn %#" PRIx64,
                             (uint64_t)ctx->batch_types[i], pfns[i]);
        if ( types[i] == SR_PFINFO_XALLOC )
        {
            if ( first_send(ctx, pfns[i]) )
            {
                /* Zeros: the PFN is all the receiver needs. */
                count_sent(ctx, pfns[i]);
                ctx->st.pages_zero++;
                continue;
            }
            /* Sent before: its data must overwrite the earlier copy. */
            types[i] = SR_PFINFO_NOTAB;
            ctx->batch_types[i] = XEN_DOMCTL_PFINFO_NOTAB;
        }
        if ( sr_pfinfo_has_data(types[i]) )
            mfns[nr_data++] = ctx->p2m[pfns[i]];
    }

    if ( nr_data &&
         xc_map_foreign_frames(ctx->xch, ctx->domid, XC_MAP_READ, mfns,
                               nr_data, ptrs, errs) < 0 )
        return save_fail(ctx, -errno, "Failed to map guest pages: %s",
                         strerror(errno));

    for ( i = 0; i < n; i++ )
    {
        uint8_t *dst = ctx->batch_pages + (size_t)out * SR_PAGE_SIZE;

        if ( !sr_pfinfo_has_data(types[i]) )
            continue;
        /* Plain data is read in runs below, not through the mapping. */
        if ( ptrs[m] &&
             !sr__is_pagetable_type((uint32_t)ctx->batch_types[i]) )
        {
            plain_src[nr_plain] = ptrs[m++];
            plain_slot[nr_plain++] = out++;
            count_sent(ctx, pfns[i]);
            continue;
        }
        if ( !ptrs[m] && ctx->live )
        {
            /*
             * The guest gave the frame away since it was typed (it
             * ballooned): the final pass sends whatever the PFN is then.
             */
            m++;
            types[i] = SR_PFINFO_XTAB;
            set_bit(ctx->deferred, pfns[i]);
            continue;
        }
        if ( !ptrs[m] )
            return save_fail(ctx, errs[m] ? errs[m] : -EFAULT,
                             "Failed to map guest pfn %#" PRIx64 " (mfn %#"
                             PRIx64 "): %s", pfns[i], mfns[m],
                             strerror(errs[m] ? -errs[m] : EFAULT));
        ctx->ptmsg[0] = '\0';
        rc = sr__normalise_pagetable(&ctx->pt,
                                     (uint32_t)ctx->batch_types[i],
                                     ptrs[m++], (uint64_t *)dst);
        if ( rc == -EAGAIN && ctx->live )
        {
            /* Xen's deferral: no data now, the final pass resends it. */
            types[i] = SR_PFINFO_XTAB;
            set_bit(ctx->deferred, pfns[i]);
            continue;
        }
        if ( rc )
            return save_fail(ctx, rc, "Failed to normalise pfn %#" PRIx64
                             ": %s", pfns[i], ctx->ptmsg);
        count_sent(ctx, pfns[i]);
        out++;
    }

    if ( (rc = read_plain_pages(ctx, plain_src, plain_slot, nr_plain)) )
        return rc;
    rc = sr_write_page_data(ctx->io, n, pfns, types, ctx->batch_pages);
    return rc ? io_fail(ctx, rc) : 0;
}

/* Sleep until the pass's bytes are within the bandwidth limit. */
static void pace(struct save_ctx *ctx)
{
    uint64_t bytes = sr_io_offset(ctx->io) - ctx->pass_bytes0;
    uint64_t due, now = now_ns();
    struct timespec ts;

    if ( !ctx->live || !ctx->pol.bandwidth_limit )
        return;
    due = ctx->t_pass_ns + (uint64_t)((unsigned __int128)bytes *
                                      1000000000ULL /
                                      ctx->pol.bandwidth_limit);
    while ( now < due )
    {
        /* Short naps, so that a cancel or a timeout is seen in time. */
        uint64_t nap = due - now < 50000000ULL ? due - now : 50000000ULL;

        if ( (ctx->a->cancel && atomic_load(ctx->a->cancel)) ||
             sr__precopy_timed_out(&ctx->pol,
                                   (now - ctx->t_live_ns) / 1000000) )
            return;
        ts.tv_sec = (time_t)(nap / 1000000000ULL);
        ts.tv_nsec = (long)(nap % 1000000000ULL);
        nanosleep(&ts, NULL);
        now = now_ns();
    }
}

/*
 * The figures of the pass so far, so that they are not 0 through the
 * whole first pass: the throughput since the pass began (once it has run
 * long enough to mean something), and the expected downtime as QEMU
 * reckons it, what the pass still has to send at that throughput.  At
 * the end of a pass live_pass() and note_dirty() set the figures the
 * policy decides on.
 */
static void running_figures(struct save_ctx *ctx)
{
    uint64_t ns = now_ns() - ctx->t_pass_ns;
    uint64_t bytes = sr_io_offset(ctx->io) - ctx->pass_bytes0;

    if ( ns < RUNNING_MIN_NS || !bytes )
        return;
    ctx->prog.throughput = (uint64_t)((unsigned __int128)bytes *
                                      1000000000ULL / ns);
    ctx->prog.expected_downtime_ms =
        sr__expected_downtime_ms(ctx->prog.pass_total > ctx->prog.pass_done
                                 ? ctx->prog.pass_total - ctx->prog.pass_done
                                 : 0, ctx->prog.throughput);
}

/*
 * Between two batches: pacing, cancel, the timeout of the live phase
 * (at which the pass stops: *stop, or the save fails), and progress.
 */
static int after_batch(struct save_ctx *ctx, unsigned int n, bool *stop)
{
    pace(ctx);
    if ( ctx->a->cancel && atomic_load(ctx->a->cancel) )
        return save_fail(ctx, -ECANCELED, "Save of domain %u cancelled",
                         ctx->domid);
    if ( ctx->live &&
         sr__precopy_timed_out(&ctx->pol,
                               (now_ns() - ctx->t_live_ns) / 1000000) )
    {
        if ( ctx->pol.timeout_action != SR_TIMEOUT_FORCE )
            return save_fail(ctx, -ETIMEDOUT, "Live phase of domain %u "
                             "timed out after %" PRIu64 " ms", ctx->domid,
                             ctx->pol.timeout_ms);
        *stop = true;
    }
    ctx->prog.pass_done += n;
    running_figures(ctx);
    report(ctx);
    return 0;
}

/*
 * Send the PFNs of ctx->todo in order, in batches, clearing each bit as
 * its batch goes: if the pass stops early (a forced timeout) ctx->todo
 * holds exactly what is still to send.
 */
static int send_todo(struct save_ctx *ctx, bool *stop)
{
    unsigned int n = 0;
    int rc;

    *stop = false;
    for ( uint64_t w = 0; w < ctx->nr_words; w++ )
    {
        uint64_t v = ctx->todo[w];

        while ( v )
        {
            ctx->batch_pfns[n++] = w * 64 + (uint64_t)__builtin_ctzll(v);
            v &= v - 1;
            if ( n < MAX_BATCH_SIZE )
                continue;
            ctx->todo[w] = v;
            if ( (rc = write_batch(ctx, n)) ||
                 (rc = after_batch(ctx, n, stop)) )
                return rc;
            n = 0;
            if ( *stop )
                return 0;
        }
        ctx->todo[w] = 0;
    }
    if ( n && ((rc = write_batch(ctx, n)) ||
               (rc = after_batch(ctx, n, stop))) )
        return rc;
    return 0;
}

static int alloc_buffers(struct save_ctx *ctx)
{
    ctx->batch_pfns = malloc(MAX_BATCH_SIZE * sizeof(*ctx->batch_pfns));
    ctx->batch_types = malloc(MAX_BATCH_SIZE * sizeof(*ctx->batch_types));
    ctx->batch_pages = malloc((size_t)MAX_BATCH_SIZE * SR_PAGE_SIZE);
    ctx->nr_words = (ctx->max_pfn + 64) / 64;
    ctx->prog.p2m_size = ctx->max_pfn + 1;
    ctx->todo = calloc(ctx->nr_words, sizeof(uint64_t));
    if ( ctx->live )
    {
        ctx->dirty = calloc(ctx->nr_words, sizeof(uint64_t));
        ctx->deferred = calloc(ctx->nr_words, sizeof(uint64_t));
        ctx->sent = calloc(ctx->nr_words, sizeof(uint64_t));
    }
    if ( !ctx->batch_pfns || !ctx->batch_types || !ctx->batch_pages ||
         !ctx->todo ||
         (ctx->live && (!ctx->dirty || !ctx->deferred || !ctx->sent)) )
        return save_fail(ctx, -ENOMEM, "Unable to allocate batch buffers");
    return 0;
}

/* Every PFN, in order: the non-live memory, or the VERIFY pass. */
static int send_all(struct save_ctx *ctx, enum sr_phase phase)
{
    bool stop;

    memset(ctx->todo, 0xff, ctx->nr_words * sizeof(uint64_t));
    ctx->todo[ctx->nr_words - 1] &= last_word_mask(ctx);
    start_phase(ctx, phase, ctx->max_pfn + 1);
    return send_todo(ctx, &stop);
}

/* Every PFN once, in order (Xen's send_domain_memory_nonlive). */
static int send_memory(struct save_ctx *ctx)
{
    int rc;

    if ( (rc = alloc_buffers(ctx)) )
        return rc;
    return send_all(ctx, SR_PHASE_MEMORY);
}

/* ------------------------------------------------------------------------
 * Live memory (Xen's send_domain_memory_live)
 * ------------------------------------------------------------------------ */

/* The domain must be running: a live save copies it while it does. */
static int check_running(struct save_ctx *ctx)
{
    if ( xc_domain_getinfo_single(ctx->xch, ctx->domid, &ctx->info) )
        return save_fail(ctx, -errno, "Unable to get domain info for "
                         "domain %u: %s", ctx->domid, strerror(errno));
    if ( ctx->info.flags & XEN_DOMINF_hvm_guest )
        return save_fail(ctx, -EOPNOTSUPP, "Domain %u is not PV",
                         ctx->domid);
    if ( ctx->info.flags & (XEN_DOMINF_shutdown | XEN_DOMINF_dying) )
        return save_fail(ctx, -EINVAL, "Domain %u is already %s: a live "
                         "save needs it running", ctx->domid,
                         ((ctx->info.flags >> XEN_DOMINF_shutdownshift) &
                          XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend
                         ? "suspended" : "shut down");
    if ( !ctx->a->suspend )
        return save_fail(ctx, -EINVAL, "A live save of domain %u needs a "
                         "way to suspend it", ctx->domid);
    return 0;
}

/*
 * Xen's enable_logdirty: a bitmap left enabled by an earlier save that
 * died is switched off and on again.
 */
static int enable_logdirty(struct save_ctx *ctx)
{
    if ( xc_shadow_control(ctx->xch, ctx->domid,
                           XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0, 0,
                           NULL) < 0 &&
         (errno != EINVAL ||
          xc_shadow_control(ctx->xch, ctx->domid, XEN_DOMCTL_SHADOW_OP_OFF,
                            NULL, 0, 0, NULL) < 0 ||
          xc_shadow_control(ctx->xch, ctx->domid,
                            XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0,
                            0, NULL) < 0) )
        return save_fail(ctx, -errno, "Failed to enable logdirty for "
                         "domain %u: %s", ctx->domid, strerror(errno));
    ctx->logdirty_on = true;
    return 0;
}

static void disable_logdirty(struct save_ctx *ctx)
{
    if ( !ctx->logdirty_on )
        return;
    /* Best effort: the domain may have been destroyed under us. */
    xc_shadow_control(ctx->xch, ctx->domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL,
                      0, 0, NULL);
    ctx->logdirty_on = false;
}

/*
 * Read and clear the dirty bitmap into ctx->dirty and OR it into
 * ctx->todo; returns the number of dirty PFNs in *count.
 */
static int clean_dirty(struct save_ctx *ctx, unsigned int mode,
                       uint64_t *count)
{
    uint64_t pages = ctx->max_pfn + 1, n = 0;

    if ( xc_shadow_control(ctx->xch, ctx->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
                           (uint8_t *)ctx->dirty, pages, mode, NULL) !=
         (int64_t)pages )
        return save_fail(ctx, -errno ? -errno : -EIO, "Failed to retrieve "
                         "logdirty bitmap: %s", strerror(errno ? errno : EIO));
    /* The hypervisor writes whole bytes: the tail bits name no PFN. */
    ctx->dirty[ctx->nr_words - 1] &= last_word_mask(ctx);
    for ( uint64_t w = 0; w < ctx->nr_words; w++ )
    {
        n += (uint64_t)__builtin_popcountll(ctx->dirty[w]);
        ctx->todo[w] |= ctx->dirty[w];
    }
    *count = n;
    return 0;
}

/*
 * Read the guest's P2M again through the leaves found at the start: a
 * guest that balloons while it runs moves PFNs to other frames (Xen
 * refreshes a linear P2M the same way).  Every PFN whose frame changed
 * is sent again.  A leaf the guest gave away is fatal: the frame list
 * sent at the start would no longer be true.
 */
static int refresh_p2m(struct save_ctx *ctx)
{
    xen_pfn_t mfns[FPP];
    void *ptrs[FPP];
    int errs[FPP];

    for ( uint64_t x = 0; x < ctx->nr_leaves; x += FPP )
    {
        unsigned int n = ctx->nr_leaves - x < FPP
                         ? (unsigned int)(ctx->nr_leaves - x) : FPP;

        memcpy(mfns, ctx->leaf_mfns + x, n * sizeof(*mfns));
        if ( xc_map_foreign_frames(ctx->xch, ctx->domid, XC_MAP_READ, mfns,
                                   n, ptrs, errs) )
            return save_fail(ctx, -EINVAL, "Failed to map the p2m of domain"
                             " %u again: its frame list changed", ctx->domid);
        for ( unsigned int i = 0; i < n; i++ )
        {
            const uint64_t *leaf = ptrs[i];
            uint64_t first = (x + i) * FPP;

            for ( uint64_t j = 0; j < FPP && first + j <= ctx->max_pfn; j++ )
            {
                uint64_t v = __atomic_load_n(&leaf[j], __ATOMIC_RELAXED);

                if ( v == ctx->p2m[first + j] )
                    continue;
                ctx->p2m[first + j] = v;
                set_bit(ctx->todo, first + j);
            }
        }
    }
    return 0;
}

/* One live pass over ctx->todo; *stop when the timeout forced an end. */
static int live_pass(struct save_ctx *ctx, bool *stop)
{
    uint64_t ns, bytes;
    int rc;

    ctx->prog.iteration = ctx->st.iterations;
    start_phase(ctx, SR_PHASE_LIVE, count_bits(ctx->todo, ctx->nr_words));
    if ( (rc = send_todo(ctx, stop)) )
        return rc;
    ctx->st.iterations++;
    ns = now_ns() - ctx->t_pass_ns;
    bytes = sr_io_offset(ctx->io) - ctx->pass_bytes0;
    ctx->pass_bytes = bytes;
    if ( ns && ctx->prog.pass_total )
        ctx->prog.throughput = (uint64_t)((unsigned __int128)bytes *
                                          1000000000ULL / ns);
    return 0;
}

/* After a pass: the dirty set, its rate and what it would cost to stop. */
static void note_dirty(struct save_ctx *ctx, uint64_t dirty)
{
    uint64_t ns = now_ns() - ctx->t_pass_ns;

    ctx->prog.dirty_pages = dirty;
    ctx->prog.dirty_rate = ns ? (uint64_t)((unsigned __int128)dirty *
                                           SR_PAGE_SIZE * 1000000000ULL / ns)
                              : 0;
    ctx->prog.expected_downtime_ms =
        sr__expected_downtime_ms(dirty, ctx->prog.throughput);
}

/* After a CLEAN: throttle a domain that dirties faster than we send. */
static int throttle(struct save_ctx *ctx, uint64_t dirty)
{
    unsigned int next = sr__throttle_next(&ctx->pol, ctx->throttle,
                                          dirty * SR_PAGE_SIZE,
                                          ctx->pass_bytes);

    if ( next == ctx->throttle )
        return 0;
    if ( xc_domain_set_throttle(ctx->xch, ctx->domid, next) )
        return save_fail(ctx, -errno, "Failed to throttle domain %u to "
                         "%u%%: %s", ctx->domid, next, strerror(errno));
    if ( next > ctx->throttle )
        ctx->throttle_raises++;
    ctx->throttle = next;
    ctx->prog.throttle_pct = next;
    if ( next > ctx->st.throttle_max_pct )
        ctx->st.throttle_max_pct = next;
    return 0;
}

/* Whatever happened: the domain runs at full speed again. */
static void lift_throttle(struct save_ctx *ctx)
{
    if ( !ctx->throttle )
        return;
    /* Best effort: the hypervisor also lifts it with log-dirty. */
    xc_domain_set_throttle(ctx->xch, ctx->domid, 0);
    ctx->throttle = 0;
    ctx->prog.throttle_pct = 0;
}

static enum sr__precopy_decision decide(struct save_ctx *ctx,
                                        bool dirty_known, uint64_t dirty)
{
    struct sr__precopy_state s = {
        /* Passes that raised the throttle are its, not the limit's. */
        .iteration = ctx->st.iterations - ctx->throttle_raises,
        .dirty_known = dirty_known,
        .dirty_pages = dirty,
        .throughput = ctx->prog.throughput,
        .elapsed_ms = (now_ns() - ctx->t_live_ns) / 1000000,
    };

    return sr__precopy_decide(&ctx->pol, &s);
}

/*
 * The pre-copy loop, in Xen's order: the full pass; then, while the
 * policy says continue, CLEAN and send the dirty set.  When the policy
 * says stop after a CLEAN, that dirty set still goes out live (as in
 * Xen), and the final pass sends what it dirtied meanwhile.
 */
static int send_memory_live(struct save_ctx *ctx)
{
    enum sr__precopy_decision d;
    uint64_t dirty;
    bool stop;
    int rc;

    ctx->t_live_ns = now_ns();
    ctx->pt.flags |= SR__PT_LIVE;
    memset(ctx->todo, 0xff, ctx->nr_words * sizeof(uint64_t));
    ctx->todo[ctx->nr_words - 1] &= last_word_mask(ctx);

    for ( ;; )
    {
        if ( (rc = live_pass(ctx, &stop)) )
            return rc;
        if ( stop )
            return 0;
        d = decide(ctx, false, 0);
        if ( d != SR__PRECOPY_CONTINUE )
            break;
        if ( (rc = clean_dirty(ctx, 0, &dirty)) ||
             (rc = refresh_p2m(ctx)) )
            return rc;
        note_dirty(ctx, dirty);
        if ( (rc = throttle(ctx, dirty)) )
            return rc;
        d = decide(ctx, true, dirty);
        if ( d == SR__PRECOPY_ABORT )
            break;
        /* Xen sends that last set live, unless there is none. */
        if ( d == SR__PRECOPY_STOP_AND_COPY )
            return dirty ? live_pass(ctx, &stop) : 0;
    }
    if ( d == SR__PRECOPY_ABORT )
        return save_fail(ctx, -ETIMEDOUT, "Live phase of domain %u timed "
                         "out after %" PRIu64 " ms", ctx->domid,
                         ctx->pol.timeout_ms);
    return 0;
}

/*
 * Xen's suspend_and_send_dirty: suspend, CLEAN once more, add what the
 * live passes left (a forced stop, the deferred page tables) and send it
 * all with the guest stopped, where a table that fails is fatal.
 */
static int suspend_and_send_dirty(struct save_ctx *ctx)
{
    const struct sr_save_args *a = ctx->a;
    uint64_t dirty;
    bool stop;
    int rc;

    if ( (rc = a->suspend(a->suspend_arg)) )
        return save_fail(ctx, rc, "Failed to suspend domain %u: %s",
                         ctx->domid, strerror(-rc));
    ctx->st.t_suspended_ns = now_ns();
    ctx->live = false;
    ctx->pt.flags &= ~SR__PT_LIVE;
    if ( (rc = check_suspended(ctx)) ||
         (rc = clean_dirty(ctx, XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, &dirty)) ||
         (rc = refresh_p2m(ctx)) )
        return rc;
    note_dirty(ctx, dirty);
    for ( uint64_t w = 0; w < ctx->nr_words; w++ )
        ctx->todo[w] |= ctx->deferred[w];
    start_phase(ctx, SR_PHASE_STOP_COPY, count_bits(ctx->todo,
                                                    ctx->nr_words));
    return send_todo(ctx, &stop);
}

/* Xen's verify_frames: a VERIFY record, then every page again. */
static int verify_frames(struct save_ctx *ctx)
{
    int rc;

    if ( (rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_VERIFY,
                               NULL, 0)) )
        return io_fail(ctx, rc);
    ctx->verifying = true;
    rc = send_all(ctx, SR_PHASE_VERIFY);
    ctx->verifying = false;
    return rc;
}

static int save_live(struct save_ctx *ctx)
{
    int rc;

    if ( (rc = alloc_buffers(ctx)) ||
         (rc = enable_logdirty(ctx)) ||
         (rc = send_memory_live(ctx)) ||
         (rc = suspend_and_send_dirty(ctx)) )
        return rc;
    if ( ctx->a->debug && (rc = verify_frames(ctx)) )
        return rc;
    disable_logdirty(ctx);
    return 0;
}

/* One X86_PV_VCPU_BASIC record, the context normalised. */
static int write_one_vcpu_basic(struct save_ctx *ctx, unsigned int id,
                                bool *online)
{
    struct {
        struct sr_x86_pv_vcpu_hdr hdr;
        struct vcpu_guest_context c;
    } *rec;
    int rc;

    *online = false;
    if ( !(rec = calloc(1, sizeof(*rec))) )
        return save_fail(ctx, -ENOMEM, "Unable to allocate vcpu record");
    if ( xc_vcpu_getcontext(ctx->xch, ctx->domid, id, &rec->c) )
    {
        /* A vCPU never brought up has no context: it is not sent. */
        rc = errno == ENODATA ? 0
             : save_fail(ctx, -errno, "Failed to get vcpu%u context: %s",
                         id, strerror(errno));
        goto out;
    }
    rc = 0;
    if ( !(rec->c.flags & VGCF_online) )
        goto out;
    *online = true;
    if ( (rc = sr__normalise_vcpu(&ctx->pt, id, &rec->c)) )
    {
        rc = save_fail(ctx, rc, "vcpu%u: %s", id, ctx->ptmsg);
        goto out;
    }
    rec->hdr.vcpu_id = htole32(id);
    rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_X86_PV_VCPU_BASIC,
                         rec, sizeof(*rec));
    if ( rc )
        rc = io_fail(ctx, rc);
 out:
    free(rec);
    return rc;
}

/* The end of the (only) checkpoint, both ENDs, then ferry's trailer. */
static int write_end(struct save_ctx *ctx)
{
    struct sr_x86_tsc_info tsc = { .mode = 0 };
    bool online;
    int rc;

    /* The guest must still be suspended now its state is read. */
    if ( (rc = check_suspended(ctx)) )
        return rc;
    if ( (rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_X86_TSC_INFO,
                               &tsc, sizeof(tsc))) ||
         (rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_SHARED_INFO,
                               ctx->shinfo, SR_SHARED_INFO_SIZE)) )
        return io_fail(ctx, rc);
    for ( unsigned int id = 0; id <= ctx->info.max_vcpu_id; id++ )
    {
        if ( (rc = write_one_vcpu_basic(ctx, id, &online)) )
            return rc;
        if ( id == 0 && !online )
            return save_fail(ctx, -EINVAL, "vcpu0 is not online");
    }
    if ( (rc = sr_write_record(ctx->io, SR_LIBXC, SR_LIBXC_END, NULL, 0)) ||
         (rc = sr_write_record(ctx->io, SR_LIBXL, SR_LIBXL_END, NULL, 0)) ||
         (ctx->trailer && (rc = sr_write_ferry_trailer(ctx->io))) )
        return io_fail(ctx, rc);
    return 0;
}

/* Non-live: suspend first (Xen's order), then every PFN once. */
static int save_nonlive(struct save_ctx *ctx)
{
    const struct sr_save_args *a = ctx->a;
    int rc;

    if ( a->suspend && (rc = a->suspend(a->suspend_arg)) )
        return save_fail(ctx, rc, "Failed to suspend domain %u: %s",
                         a->domid, strerror(-rc));
    ctx->st.t_suspended_ns = now_ns();
    if ( (rc = check_suspended(ctx)) ||
         (rc = map_domain(ctx)) ||
         (rc = write_start(ctx, a)) )
        return rc;
    return send_memory(ctx);
}

/* Live: map and start while the domain runs, then the passes. */
static int save_live_domain(struct save_ctx *ctx)
{
    int rc;

    if ( (rc = check_running(ctx)) ||
         (rc = map_domain(ctx)) ||
         (rc = write_start(ctx, ctx->a)) )
        return rc;
    return save_live(ctx);
}

int sr_save_domain(struct sr_io *io, const struct sr_save_args *a,
                   char *msg, size_t msglen)
{
    struct save_ctx ctx = {
        .xch = a->xch,
        .domid = a->domid,
        .io = io,
        .msg = msg,
        .msglen = msglen,
        .trailer = a->trailer,
        .a = a,
        .live = a->live,
    };
    uint64_t off0 = sr_io_offset(io);
    int rc;

    if ( msg && msglen )
        msg[0] = '\0';
    if ( a->policy )
        ctx.pol = *a->policy;
    if ( !ctx.pol.max_iterations )
        ctx.pol.max_iterations = SR_DEFAULT_MAX_ITERATIONS;
    if ( !ctx.pol.target_dirty_pages )
        ctx.pol.target_dirty_pages = SR_DEFAULT_TARGET_DIRTY;
    ctx.st.t_start_ns = now_ns();
    ctx.prog.phase = SR_PHASE_SETUP;
    report(&ctx);
    /*
     * Each step stops at the first failure; the buffers go either way,
     * and log-dirty is switched off whatever happened.  The digest in
     * ferry's trailer covers the file from its first byte.
     */
    if ( (rc = sr_io_hash_start(io)) )
        rc = io_fail(&ctx, rc);
    else if ( !(rc = a->live ? save_live_domain(&ctx)
                             : save_nonlive(&ctx)) )
    {
        start_phase(&ctx, SR_PHASE_STATE, 0);
        rc = write_end(&ctx);
    }
    /* Before the clean-up's round trips: the stream's own end. */
    ctx.st.t_end_ns = now_ns();
    lift_throttle(&ctx);
    disable_logdirty(&ctx);
    ctx.st.bytes = sr_io_offset(io) - off0;
    if ( !rc )
        start_phase(&ctx, SR_PHASE_DONE, 0);
    if ( a->stats )
        *a->stats = ctx.st;
    free(ctx.batch_pages);
    free(ctx.batch_types);
    free(ctx.batch_pfns);
    free(ctx.todo);
    free(ctx.dirty);
    free(ctx.deferred);
    free(ctx.sent);
    free(ctx.leaf_mfns);
    free(ctx.p2m);
    return rc;
}
