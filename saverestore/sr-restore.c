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
 * Invariants: the local P2M (ctx->p2m) holds the new MFN of every
 * populated PFN and SR__INVALID_FRAME elsewhere; nothing is written into
 * the guest except through frames the host confirmed are the new
 * domain's; every failure destroys the half-built domain, so the host is
 * as before.  Messages name the record type and its offset.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr.h"
#include "sr-pt.h"
#include "../libxc/xc.h"

#define FPP          (SR_PAGE_SIZE / 8)    /* P2M entries per frame */
#define PIN_BATCH    1024                  /* Xen's MAX_PIN_BATCH */
#define PENDING_MFN  (SR__INVALID_FRAME - 1)

/* One entry of the guest's P2M as saved: an old-host MFN and its PFN. */
struct mfn_pfn
{
    uint64_t mfn, pfn;
};

struct restore_ctx
{
    struct sr_io *io;
    xc_interface *xch;
    uint32_t domid;
    bool created;
    char *msg;
    size_t msglen;

    unsigned int max_vcpus;
    uint64_t max_pages;             /* maxmem, in pages */
    bool have_info, have_static_end, have_shinfo;
    uint64_t max_pfn;               /* valid once p2m != NULL */
    uint64_t *p2m;                  /* pfn -> new mfn */
    uint32_t *pfn_types;            /* XEN_DOMCTL_PFINFO_* per pfn */
    uint64_t *p2m_pfns;             /* the guest's P2M frames */
    uint64_t nr_p2m_frames;
    uint8_t shinfo[SR_SHARED_INFO_SIZE];
    struct mfn_pfn *old;            /* the saved guest P2M, inverted */
    uint64_t nr_old;
    struct vcpu_guest_context **vcpus;
    char ptmsg[SR__PT_MSG_SIZE];
    struct sr__pt_ctx pt;
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

    if ( !a->max_vcpus || !a->max_memkb )
        return fail(ctx, -EINVAL, "restore: no vCPUs or memory to create"
                    " the domain with");
    if ( xc_domain_create(ctx->xch, &domid, a->max_vcpus, a->uuid) )
        return fail(ctx, -errno, "restore: cannot create the domain: %s",
                    strerror(errno));
    ctx->domid = domid;
    ctx->created = true;
    ctx->max_vcpus = a->max_vcpus;
    ctx->max_pages = a->max_memkb >> 2;
    if ( xc_domain_setmaxmem(ctx->xch, domid, a->max_memkb) )
        return fail(ctx, -errno, "restore: cannot set max memory of domain"
                    " %u: %s", domid, strerror(errno));
    ctx->vcpus = calloc(ctx->max_vcpus, sizeof(*ctx->vcpus));
    return ctx->vcpus ? 0 : -ENOMEM;
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
    rc = grow_p2m(ctx, h->end_pfn);
    if ( rc )
        return fail_rec(ctx, rec, rc, "out of memory");
    if ( first + count > ctx->nr_p2m_frames )
    {
        frames = realloc(ctx->p2m_pfns, (first + count) * sizeof(*frames));
        if ( !frames )
            return fail_rec(ctx, rec, -ENOMEM, "out of memory");
        for ( uint64_t i = ctx->nr_p2m_frames; i < first + count; i++ )
            frames[i] = SR__INVALID_FRAME;
        ctx->p2m_pfns = frames;
        ctx->nr_p2m_frames = first + count;
    }
    for ( uint64_t i = 0; i < count; i++ )
        ctx->p2m_pfns[first + i] = pfns[i];
    return 0;
}

static bool populatable(unsigned int type)
{
    return sr_pfinfo_has_data(type) || type == SR_PFINFO_XALLOC;
}

/* One populate_physmap_exact for every PFN of the batch not yet seen. */
static int populate_batch(struct restore_ctx *ctx, const struct sr_rec *rec,
                          const struct sr_page_data *pd)
{
    xen_pfn_t *ext = malloc(pd->count * sizeof(*ext));
    uint64_t *pfns = malloc(pd->count * sizeof(*pfns));
    unsigned int n = 0;
    int rc = -ENOMEM;

    if ( !ext || !pfns )
        goto out;
    for ( uint32_t i = 0; i < pd->count; i++ )
    {
        uint64_t pfn = sr_entry_pfn(pd->entries[i]);

        if ( !populatable(sr_entry_type(pd->entries[i])) ||
             ctx->p2m[pfn] != SR__INVALID_FRAME )
            continue;
        ctx->p2m[pfn] = PENDING_MFN;    /* a PFN twice in one batch */
        pfns[n] = pfn;
        ext[n++] = pfn;
    }
    rc = 0;
    if ( !n )
        goto out;
    if ( xc_domain_populate_physmap_exact(ctx->xch, ctx->domid, n, 0, 0,
                                          ext) )
    {
        rc = -errno;
        for ( unsigned int i = 0; i < n; i++ )
            ctx->p2m[pfns[i]] = SR__INVALID_FRAME;
        fail_rec(ctx, rec, rc, "cannot populate the domain's memory");
        goto out;
    }
    for ( unsigned int i = 0; i < n; i++ )
        ctx->p2m[pfns[i]] = ext[i];
 out:
    free(ext);
    free(pfns);
    return rc;
}

static int handle_page_data(struct restore_ctx *ctx, const struct sr_rec *rec)
{
    struct sr_page_data pd;
    xen_pfn_t *mfns = NULL;
    void **ptrs = NULL;
    int *errs = NULL;
    uint64_t page[SR__PT_ENTRIES];
    uint32_t p = 0;
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
    rc = populate_batch(ctx, rec, &pd);
    if ( rc )
        return rc;

    rc = -ENOMEM;
    mfns = malloc((pd.nr_pages + 1) * sizeof(*mfns));
    ptrs = malloc((pd.nr_pages + 1) * sizeof(*ptrs));
    errs = malloc((pd.nr_pages + 1) * sizeof(*errs));
    if ( !mfns || !ptrs || !errs )
        goto out;
    for ( uint32_t i = 0; i < pd.count; i++ )
    {
        unsigned int type = sr_entry_type(pd.entries[i]);

        ctx->pfn_types[sr_entry_pfn(pd.entries[i])] =
            (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;
        if ( sr_pfinfo_has_data(type) )
            mfns[p++] = ctx->p2m[sr_entry_pfn(pd.entries[i])];
    }
    rc = 0;
    if ( !pd.nr_pages )
        goto out;
    if ( xc_map_foreign_frames(ctx->xch, ctx->domid, XC_MAP_WRITE, mfns,
                               pd.nr_pages, ptrs, errs) )
    {
        rc = fail_rec(ctx, rec, -EFAULT, "cannot map the domain's frames");
        goto out;
    }
    p = 0;
    for ( uint32_t i = 0; i < pd.count; i++ )
    {
        unsigned int type = sr_entry_type(pd.entries[i]);
        uint32_t dtype = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;

        if ( !sr_pfinfo_has_data(type) )
            continue;
        memcpy(page, pd.pages + (size_t)p * SR_PAGE_SIZE, SR_PAGE_SIZE);
        if ( sr__is_pagetable_type(dtype) )
        {
            ctx->ptmsg[0] = '\0';
            rc = sr__localise_pagetable(&ctx->pt, dtype, page);
            if ( rc )
            {
                snprintf(what, sizeof(what), "pfn %#" PRIx64 ": %s",
                         sr_entry_pfn(pd.entries[i]), ctx->ptmsg);
                rc = fail_rec(ctx, rec, rc, what);
                goto out;
            }
        }
        memcpy(ptrs[p++], page, SR_PAGE_SIZE);
    }
 out:
    if ( rc == -ENOMEM )
        fail_rec(ctx, rec, rc, "out of memory");
    free(mfns);
    free(ptrs);
    free(errs);
    return rc;
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
    return 0;
}

static int process_record(struct restore_ctx *ctx, const struct sr_rec *rec)
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

/* ------------------------------------------------------------------------
 * End of stream (Xen's x86_pv_stream_complete)
 * ------------------------------------------------------------------------ */

static void *map_pfn(struct restore_ctx *ctx, uint64_t pfn)
{
    if ( pfn > ctx->max_pfn || ctx->p2m[pfn] == SR__INVALID_FRAME )
        return NULL;
    return xc_map_foreign_frame(ctx->xch, ctx->domid, XC_MAP_WRITE,
                                ctx->p2m[pfn]);
}

/* The start_info page named by vCPU 0's rdx (an MFN again by now). */
static int process_start_info(struct restore_ctx *ctx, uint64_t mfn,
                              uint64_t shinfo_mfn)
{
    struct start_info *si;

    si = xc_map_foreign_frame(ctx->xch, ctx->domid, XC_MAP_WRITE, mfn);
    if ( !si )
        return fail(ctx, -errno, "restore: cannot map start_info (mfn %#"
                    PRIx64 ")", mfn);
    si->nr_pages = ctx->max_pfn + 1;
    si->shared_info = shinfo_mfn << SR_PAGE_SHIFT;
    si->flags = 0;
    si->store_mfn = 0;          /* ferry guests have no xenstore ring */
    si->store_evtchn = 0;
    si->console.mfn = 0;        /* nor a console ring: console_io */
    si->console.evtchn = 0;
    return 0;
}

static int update_vcpu_context(struct restore_ctx *ctx, uint64_t shinfo_mfn)
{
    int rc;

    if ( !ctx->vcpus[0] )
        return fail(ctx, -EINVAL, "restore: no X86_PV_VCPU_BASIC record"
                    " for vCPU 0");
    for ( unsigned int v = 0; v < ctx->max_vcpus; v++ )
    {
        struct vcpu_guest_context *c = ctx->vcpus[v];

        if ( !c )
            continue;
        ctx->ptmsg[0] = '\0';
        rc = sr__localise_vcpu(&ctx->pt, v, c);
        if ( rc )
            return fail(ctx, rc, "restore: X86_PV_VCPU_BASIC of vCPU %u:"
                        " %s", v, ctx->ptmsg);
        if ( v == 0 )
        {
            rc = process_start_info(ctx, c->user_regs.rdx, shinfo_mfn);
            if ( rc )
                return rc;
        }
        if ( xc_vcpu_setcontext(ctx->xch, ctx->domid, v, c) )
            return fail(ctx, -errno, "restore: cannot set the context of"
                        " vCPU %u: %s", v, strerror(errno));
    }
    return 0;
}

static int pin_pagetables(struct restore_ctx *ctx)
{
    struct mmuext_op ops[PIN_BATCH];
    unsigned int n = 0;

    for ( uint64_t pfn = 0; pfn <= ctx->max_pfn; pfn++ )
    {
        uint32_t type = ctx->pfn_types[pfn];

        if ( !(type & XEN_DOMCTL_PFINFO_LPINTAB) ||
             type == XEN_DOMCTL_PFINFO_XTAB ||
             type == XEN_DOMCTL_PFINFO_XALLOC ||
             type == XEN_DOMCTL_PFINFO_BROKEN )
            continue;
        memset(&ops[n], 0, sizeof(ops[n]));
        switch ( type & XEN_DOMCTL_PFINFO_LTABTYPE_MASK )
        {
        case XEN_DOMCTL_PFINFO_L1TAB: ops[n].cmd = MMUEXT_PIN_L1_TABLE; break;
        case XEN_DOMCTL_PFINFO_L2TAB: ops[n].cmd = MMUEXT_PIN_L2_TABLE; break;
        case XEN_DOMCTL_PFINFO_L3TAB: ops[n].cmd = MMUEXT_PIN_L3_TABLE; break;
        case XEN_DOMCTL_PFINFO_L4TAB: ops[n].cmd = MMUEXT_PIN_L4_TABLE; break;
        default: continue;
        }
        ops[n++].arg1.mfn = ctx->p2m[pfn];
        if ( n == PIN_BATCH || pfn == ctx->max_pfn )
        {
            if ( xc_mmuext_op(ctx->xch, ops, n, ctx->domid) )
                return fail(ctx, -errno, "restore: failed to pin batch of"
                            " %u page tables: %s", n, strerror(errno));
            n = 0;
        }
    }
    if ( n && xc_mmuext_op(ctx->xch, ops, n, ctx->domid) )
        return fail(ctx, -errno, "restore: failed to pin batch of %u page"
                    " tables: %s", n, strerror(errno));
    return 0;
}

static int cmp_mfn(const void *a, const void *b)
{
    const struct mfn_pfn *x = a, *y = b;

    return x->mfn < y->mfn ? -1 : x->mfn > y->mfn;
}

/* The new MFN of the frame the guest knew as @old_mfn, or @dflt. */
static uint64_t new_mfn_of(const struct restore_ctx *ctx, uint64_t old_mfn,
                           uint64_t dflt)
{
    struct mfn_pfn key = { .mfn = old_mfn }, *e;

    e = bsearch(&key, ctx->old, ctx->nr_old, sizeof(*e), cmp_mfn);
    if ( !e || ctx->p2m[e->pfn] == SR__INVALID_FRAME )
        return dflt;
    return ctx->p2m[e->pfn];
}

/*
 * Remember the guest's P2M as it was saved (old MFNs), inverted, so that
 * the frame-list tree the saver walks (shared_info's root, then the mid
 * pages, all old MFNs) can be relinked to the new frames.
 */
static int read_old_p2m(struct restore_ctx *ctx)
{
    uint64_t n = 0;

    ctx->old = malloc((ctx->max_pfn + 1) * sizeof(*ctx->old));
    if ( !ctx->old )
        return fail(ctx, -ENOMEM, "restore: out of memory");
    for ( uint64_t i = 0; i < ctx->nr_p2m_frames; i++ )
    {
        uint64_t pfn = ctx->p2m_pfns[i], *frame;

        if ( pfn > ctx->max_pfn ||
             ctx->pfn_types[pfn] != XEN_DOMCTL_PFINFO_NOTAB ||
             !(frame = map_pfn(ctx, pfn)) )
            return fail(ctx, -EINVAL, "restore: P2M frame %" PRIu64
                        " (pfn %#" PRIx64 ") is not a populated data page",
                        i, pfn);
        for ( uint64_t j = 0; j < FPP && i * FPP + j <= ctx->max_pfn; j++ )
        {
            if ( frame[j] == SR__INVALID_FRAME )
                continue;
            ctx->old[n].mfn = frame[j];
            ctx->old[n++].pfn = i * FPP + j;
        }
    }
    qsort(ctx->old, n, sizeof(*ctx->old), cmp_mfn);
    ctx->nr_old = n;
    return 0;
}

/* Copy the local P2M over the guest's P2M frames (Xen's update_guest_p2m). */
static int update_guest_p2m(struct restore_ctx *ctx)
{
    for ( uint64_t i = 0; i < ctx->nr_p2m_frames; i++ )
    {
        uint64_t *frame = map_pfn(ctx, ctx->p2m_pfns[i]);

        if ( !frame )
            return fail(ctx, -EINVAL, "restore: cannot map P2M frame %"
                        PRIu64, i);
        for ( uint64_t j = 0; j < FPP; j++ )
        {
            uint64_t p = i * FPP + j;

            frame[j] = p <= ctx->max_pfn ? ctx->p2m[p] : SR__INVALID_FRAME;
        }
    }
    return 0;
}

/* Map one frame of the new domain that is a data page of the guest. */
static uint64_t *map_data_mfn(struct restore_ctx *ctx, uint64_t mfn)
{
    const uint64_t *m2p = ctx->pt.m2p;

    if ( mfn > ctx->pt.max_mfn || m2p[mfn] > ctx->max_pfn ||
         ctx->p2m[m2p[mfn]] != mfn ||
         ctx->pfn_types[m2p[mfn]] != XEN_DOMCTL_PFINFO_NOTAB )
        return NULL;
    return xc_map_foreign_frame(ctx->xch, ctx->domid, XC_MAP_WRITE, mfn);
}

/*
 * The frame-list tree under shared_info (root page, then mid pages, then
 * the P2M frames) holds the old host's MFNs: make it name the new ones,
 * so that the guest can be saved again.  Entries that name no frame of
 * the saved guest are left alone.
 */
static int relink_frame_list(struct restore_ctx *ctx, uint64_t top_mfn)
{
    uint64_t *top = map_data_mfn(ctx, top_mfn), *mid;

    if ( !top )
        return fail(ctx, -EINVAL, "restore: the P2M frame-list root is"
                    " not a data page of the guest");
    for ( unsigned int i = 0; i < FPP; i++ )
    {
        uint64_t m = new_mfn_of(ctx, top[i], SR__INVALID_FRAME);

        if ( m == SR__INVALID_FRAME )
            continue;
        top[i] = m;
        if ( !(mid = map_data_mfn(ctx, m)) )
            return fail(ctx, -EINVAL, "restore: P2M frame-list page %u is"
                        " not a data page of the guest", i);
        for ( unsigned int j = 0; j < FPP; j++ )
            mid[j] = new_mfn_of(ctx, mid[j], mid[j]);
    }
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
    uint8_t *si;
    uint64_t fll;

    if ( !ctx->have_shinfo )
        return 0;
    si = xc_map_foreign_frame(ctx->xch, ctx->domid, XC_MAP_WRITE,
                              shinfo_mfn);
    if ( !si )
        return fail(ctx, -errno, "restore: cannot map shared_info");
    memcpy(si, ctx->shinfo, SHINFO_WC_VERSION);     /* vcpu_info, evtchn */
    memcpy(si + SHINFO_MAX_PFN, ctx->shinfo + SHINFO_MAX_PFN,
           SHINFO_P2M_GENERATION + 8 - SHINFO_MAX_PFN);
    memcpy(&fll, ctx->shinfo + SHINFO_PFN_TO_MFN_FLL, sizeof(fll));
    fll = new_mfn_of(ctx, fll, 0);
    memcpy(si + SHINFO_PFN_TO_MFN_FLL, &fll, sizeof(fll));
    memset(si + SHINFO_FERRY_CONTROL, 0, 8);
    return fll ? relink_frame_list(ctx, fll) : 0;
}

static int stream_complete(struct restore_ctx *ctx)
{
    xc_domaininfo_t info;
    int rc;

    if ( !ctx->p2m )
        return fail(ctx, -EINVAL, "restore: no X86_PV_P2M_FRAMES record");
    if ( xc_domain_getinfo_single(ctx->xch, ctx->domid, &info) )
        return fail(ctx, -errno, "restore: domain %u vanished",
                    ctx->domid);
    rc = update_vcpu_context(ctx, info.shared_info_frame);
    if ( !rc )
        rc = pin_pagetables(ctx);
    if ( !rc )
        rc = read_old_p2m(ctx);
    if ( !rc )
        rc = update_guest_p2m(ctx);
    if ( !rc )
        rc = handle_shared_info(ctx, info.shared_info_frame);
    return rc;
}

/* ------------------------------------------------------------------------
 * The streams
 * ------------------------------------------------------------------------ */

static int restore_libxc(struct restore_ctx *ctx)
{
    struct sr_libxc_ihdr ih;
    struct sr_libxc_dhdr dh;
    struct sr_rec rec;
    int rc;

    sr_rec_init(&rec);
    rc = sr_read_libxc_ihdr(ctx->io, &ih);
    if ( !rc )
        rc = sr_read_libxc_dhdr(ctx->io, &dh);
    if ( rc )
    {
        fail_io(ctx, rc);
        goto out;
    }
    for ( ;; )
    {
        rc = sr_read_record(ctx->io, SR_LIBXC, &rec);
        if ( rc )
        {
            fail_io(ctx, rc);
            goto out;
        }
        if ( rec.type == SR_LIBXC_END )
            break;
        rc = process_record(ctx, &rec);
        if ( rc )
            goto out;
    }
    rc = stream_complete(ctx);
 out:
    sr_rec_free(&rec);
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

int sr_restore_domain(struct sr_io *io, const struct sr_restore_args *a,
                      struct sr_restore_result *r, char *msg, size_t msglen)
{
    struct restore_ctx ctx = {
        .io = io, .xch = a->xch, .msg = msg, .msglen = msglen,
    };
    struct sr_xl_hdr xh;
    struct sr_libxl_hdr lh;
    struct sr_rec rec;
    void *config = NULL;
    uint32_t config_len = 0;
    int rc;

    sr_rec_init(&rec);
    if ( msg && msglen )
        msg[0] = '\0';
    r->config_json = NULL;
    r->digest_checked = false;
    ctx.pt.m2p = xc_m2p(a->xch);
    ctx.pt.msg = ctx.ptmsg;
    ctx.pt.msg_size = sizeof(ctx.ptmsg);
    ctx.pt.populate = populate_one;
    ctx.pt.populate_arg = &ctx;
    /* The host's highest machine frame, as the saver takes it. */
    ctx.pt.max_mfn = xc_max_page(a->xch) - 1;

    /* The digest in ferry's trailer covers the file from its first byte. */
    rc = sr_io_hash_start(io);
    if ( !rc )
        rc = sr_read_xl_hdr(io, &xh, &config, &config_len);
    if ( rc )
    {
        fail_io(&ctx, rc);
        goto out;
    }
    if ( !(xh.mandatory_flags & SR_XL_FLAG_JSON) || !config ||
         !config_len || !(xh.mandatory_flags & SR_XL_FLAG_STREAMV2) )
    {
        rc = fail(&ctx, -EOPNOTSUPP, "restore: the save file has no JSON"
                  " domain config or is not a v2 stream");
        goto out;
    }
    rc = create_domain(&ctx, a);
    if ( rc )
        goto out;
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
    rc = sr_read_ferry_trailer(io, &r->digest_checked);
    if ( rc )
    {
        fail_io(&ctx, rc);
        goto out;
    }
    if ( !r->digest_checked && msg && msglen )
        snprintf(msg, msglen, "no ferry digest: not checked");
    r->domid = ctx.domid;
    r->config_json = config;
    config = NULL;
 out:
    if ( rc && ctx.created )
        xc_domain_destroy(a->xch, ctx.domid);
    if ( ctx.vcpus )
        for ( unsigned int v = 0; v < ctx.max_vcpus; v++ )
            free(ctx.vcpus[v]);
    free(ctx.vcpus);
    free(ctx.p2m);
    free(ctx.pfn_types);
    free(ctx.p2m_pfns);
    free(ctx.old);
    free(config);
    sr_rec_free(&rec);
    return rc;
}
