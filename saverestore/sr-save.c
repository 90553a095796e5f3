/* SPDX-License-Identifier: MIT */
/*
 * sr-save.c: the non-live save engine (Xen's xg_sr_save.c with the PV
 * parts of xg_sr_save_x86_pv.c, and the stream writing of libxl's
 * libxl_stream_write.c).
 *
 * sr_save_domain() writes one suspended PV domain to an sr_io: the xl
 * save-file header with the domain's config, the libxl v2 header, a
 * LIBXC_CONTEXT record, the whole libxc v3 stream, then the libxl END.
 * The libxc stream is Xen's non-live one: image and domain headers,
 * X86_PV_INFO, STATIC_DATA_END, X86_PV_P2M_FRAMES, every PFN once in
 * PAGE_DATA batches of at most 1024, X86_TSC_INFO, SHARED_INFO, one
 * X86_PV_VCPU_BASIC per online vCPU, END.
 *
 * Invariants:
 * - The domain is only read.  It must be shut down with reason suspend
 *   when the save starts and still be when the vCPUs are read; the caller
 *   resumes or destroys it afterwards.
 * - The P2M is read once, through the frame-list tree shared_info
 *   points at, and copied: every later lookup uses the copy, and every
 *   MFN read from guest memory is range-checked before it is mapped.
 * - Nothing is written for a page until its whole batch has been typed,
 *   mapped and normalised, so a fatal error never leaves a half record
 *   behind the last complete one (the caller aborts the file anyway).
 * - Machine frame numbers never reach the stream: page tables, the P2M
 *   frame list and vCPU contexts are normalised to PFNs (sr-pt.c); a
 *   frame outside the guest's pseudo-physical map is fatal, as it is in
 *   Xen once the guest is paused.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr.h"
#include "sr-pt.h"
#include "../libxc/xc.h"

#define MAX_BATCH_SIZE  1024            /* Xen's, and getpageframeinfo3's */
#define FPP             (SR_PAGE_SIZE / sizeof(uint64_t))  /* 512 */

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

/*
 * One PAGE_DATA record for PFNs first .. first + n - 1 (Xen's
 * write_batch, non-live): types from one getpageframeinfo3 call, the
 * data-bearing frames mapped in one call, page tables normalised.
 */
static int write_batch(struct save_ctx *ctx, uint64_t first, unsigned int n)
{
    uint8_t types[MAX_BATCH_SIZE];
    xen_pfn_t mfns[MAX_BATCH_SIZE];
    void *ptrs[MAX_BATCH_SIZE];
    int errs[MAX_BATCH_SIZE];
    unsigned int i, nr_data = 0, page = 0;
    int rc;

    for ( i = 0; i < n; i++ )
    {
        ctx->batch_pfns[i] = first + i;
        ctx->batch_types[i] = ctx->p2m[first + i];
    }
    if ( xc_get_pfn_type_batch(ctx->xch, ctx->domid, n, ctx->batch_types) )
        return save_fail(ctx, -errno, "Failed to get types for pfn batch "
                         "%#" PRIx64 "+%u: %s", first, n, strerror(errno));

    for ( i = 0; i < n; i++ )
    {
        types[i] = ctx->batch_types[i] >> XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        if ( !sr_pfinfo_valid(types[i]) )
            return save_fail(ctx, -EINVAL, "Unknown type %#" PRIx64
                             " for pfn %#" PRIx64,
                             (uint64_t)ctx->batch_types[i], first + i);
        if ( sr_pfinfo_has_data(types[i]) )
            mfns[nr_data++] = ctx->p2m[first + i];
    }

    if ( nr_data &&
         xc_map_foreign_frames(ctx->xch, ctx->domid, XC_MAP_READ, mfns,
                               nr_data, ptrs, errs) < 0 )
        return save_fail(ctx, -errno, "Failed to map guest pages: %s",
                         strerror(errno));

    for ( i = 0; i < n; i++ )
    {
        uint8_t *dst = ctx->batch_pages + (size_t)page * SR_PAGE_SIZE;

        if ( !sr_pfinfo_has_data(types[i]) )
            continue;
        if ( !ptrs[page] )
            return save_fail(ctx, errs[page] ? errs[page] : -EFAULT,
                             "Failed to map guest pfn %#" PRIx64 " (mfn %#"
                             PRIx64 "): %s", first + i, mfns[page],
                             strerror(errs[page] ? -errs[page] : EFAULT));
        rc = sr__normalise_pagetable(&ctx->pt,
                                     (uint32_t)ctx->batch_types[i],
                                     ptrs[page], (uint64_t *)dst);
        if ( rc )
            return save_fail(ctx, rc, "Failed to normalise pfn %#" PRIx64
                             ": %s", first + i, ctx->ptmsg);
        page++;
    }

    rc = sr_write_page_data(ctx->io, n, ctx->batch_pfns, types,
                            ctx->batch_pages);
    return rc ? io_fail(ctx, rc) : 0;
}

/* Every PFN once, in order (Xen's send_domain_memory_nonlive). */
static int send_memory(struct save_ctx *ctx)
{
    uint64_t pfn;
    unsigned int n;
    int rc;

    ctx->batch_pfns = malloc(MAX_BATCH_SIZE * sizeof(*ctx->batch_pfns));
    ctx->batch_types = malloc(MAX_BATCH_SIZE * sizeof(*ctx->batch_types));
    ctx->batch_pages = malloc((size_t)MAX_BATCH_SIZE * SR_PAGE_SIZE);
    if ( !ctx->batch_pfns || !ctx->batch_types || !ctx->batch_pages )
        return save_fail(ctx, -ENOMEM, "Unable to allocate batch buffers");

    for ( pfn = 0; pfn <= ctx->max_pfn; pfn += n )
    {
        n = ctx->max_pfn - pfn + 1 < MAX_BATCH_SIZE
            ? (unsigned int)(ctx->max_pfn - pfn + 1) : MAX_BATCH_SIZE;
        if ( (rc = write_batch(ctx, pfn, n)) )
            return rc;
    }
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
    };
    int rc;

    if ( msg && msglen )
        msg[0] = '\0';
    /*
     * Each step stops at the first failure; the buffers go either way.
     * The digest in ferry's trailer covers the file from its first byte.
     */
    if ( (rc = sr_io_hash_start(io)) )
        rc = io_fail(&ctx, rc);
    else if ( a->suspend && (rc = a->suspend(a->suspend_arg)) )
        rc = save_fail(&ctx, rc, "Failed to suspend domain %u: %s",
                       a->domid, strerror(-rc));
    else if ( !(rc = check_suspended(&ctx)) &&
         !(rc = map_domain(&ctx)) &&
         !(rc = write_start(&ctx, a)) &&
         !(rc = send_memory(&ctx)) )
        rc = write_end(&ctx);
    free(ctx.batch_pages);
    free(ctx.batch_types);
    free(ctx.batch_pfns);
    free(ctx.leaf_mfns);
    free(ctx.p2m);
    return rc;
}
