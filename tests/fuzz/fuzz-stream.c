/* SPDX-License-Identifier: MIT */
/*
 * fuzz-stream: the fuzz target for the save-stream reader.
 *
 * LLVMFuzzerTestOneInput() takes any bytes as a save file and reads them
 * as the restore engine does, from a memory io, with no host: the xl
 * header (and, for a compressed file, zlib from there on), the libxl
 * header and records, the libxc headers and records of the stream inside
 * LIBXC_CONTEXT, each PAGE_DATA parsed and its pages touched, then
 * ferry's digest trailer.  The pure parts of restore that judge hostile
 * content also run: every page typed as a table is localised against a
 * fake domain (sr-pt.c's checks of entries, flags and PFN ranges), and
 * each vCPU context too.  Built two ways: with clang's libFuzzer
 * (`make fuzz`, long runs), and with fuzz-driver.c, which replays a
 * corpus and deterministic mutations of it for a few seconds in
 * `make check`.
 *
 * Invariant: whatever the input, the target returns 0 having freed all
 * it allocated; a crash, a sanitizer report or a leak is a bug in libsr.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../saverestore/sr.h"
#include "../../saverestore/sr-pt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fake domain: PFN p lives in MFN p + MFN_BASE. */
#define FAKE_MAX_PFN  0xffffU
#define MFN_BASE      0x1000U
#define FAKE_MAX_MFN  (FAKE_MAX_PFN + MFN_BASE)
/* Records read per layer before giving up: bounds a run's time. */
#define MAX_RECORDS   100000

struct fake
{
    struct sr__pt_ctx pt;
    uint64_t p2m[FAKE_MAX_PFN + 1];
    uint64_t m2p[FAKE_MAX_MFN + 1];
    uint32_t types[FAKE_MAX_PFN + 1];
    char msg[SR__PT_MSG_SIZE];
    uint64_t max_pfn;           /* from X86_PV_P2M_FRAMES, capped */
    unsigned int sink;          /* page bytes read, so they are read */
};

static int fake_populate(void *arg, uint64_t pfn, uint64_t *mfn)
{
    struct fake *f = arg;

    *mfn = pfn + MFN_BASE;
    f->p2m[pfn] = *mfn;
    return 0;
}

/* A new fake domain of max_pfn + 1 PFNs, none populated yet. */
static void fake_reset(struct fake *f, uint64_t max_pfn)
{
    if ( max_pfn > FAKE_MAX_PFN )
        max_pfn = FAKE_MAX_PFN;
    f->max_pfn = max_pfn;
    for ( uint64_t p = 0; p <= max_pfn; p++ )
    {
        f->p2m[p] = SR__INVALID_FRAME;
        f->m2p[p + MFN_BASE] = p;
        f->types[p] = XEN_DOMCTL_PFINFO_XTAB;
    }
    f->pt = (struct sr__pt_ctx){
        .max_mfn = FAKE_MAX_MFN, .m2p = f->m2p, .max_pfn = max_pfn,
        .p2m = f->p2m, .pfn_types = f->types, .populate = fake_populate,
        .populate_arg = f, .msg = f->msg, .msg_size = sizeof(f->msg),
    };
}

static void do_page_data(struct sr_io *io, struct fake *f,
                         const struct sr_rec *rec)
{
    struct sr_page_data pd;
    uint64_t page[SR__PT_ENTRIES];
    uint32_t p = 0;

    if ( sr_parse_page_data(io, rec, &pd) )
        return;
    for ( uint32_t i = 0; i < pd.count; i++ )
    {
        uint64_t pfn = sr_entry_pfn(pd.entries[i]);
        unsigned int type = sr_entry_type(pd.entries[i]);
        uint32_t dtype = (uint32_t)type << XEN_DOMCTL_PFINFO_LTAB_SHIFT;

        if ( !sr_pfinfo_has_data(type) )
            continue;
        memcpy(page, pd.pages + (size_t)p++ * SR_PAGE_SIZE, sizeof(page));
        f->sink += page[0] & 0xff;
        if ( pfn > f->max_pfn )
            continue;
        f->types[pfn] = dtype;
        if ( f->p2m[pfn] == SR__INVALID_FRAME )
            fake_populate(f, pfn, &f->p2m[pfn]);
        if ( sr__is_pagetable_type(dtype) )
            sr__localise_pagetable(&f->pt, dtype, page);
    }
}

static void do_libxc_record(struct sr_io *io, struct fake *f,
                            const struct sr_rec *rec)
{
    struct sr_x86_pv_p2m_frames h;
    struct vcpu_guest_context c;

    switch ( rec->type )
    {
    case SR_LIBXC_X86_PV_P2M_FRAMES:
        memcpy(&h, rec->body, sizeof(h));
        if ( h.end_pfn > f->max_pfn )
            fake_reset(f, h.end_pfn);
        break;
    case SR_LIBXC_PAGE_DATA:
        do_page_data(io, f, rec);
        break;
    case SR_LIBXC_X86_PV_VCPU_BASIC:
        if ( rec->length != 8 + sizeof(c) )
            break;
        memcpy(&c, rec->body + 8, sizeof(c));
        sr__localise_vcpu(&f->pt, rec->body[0] & 1, &c);
        break;
    }
}

static int read_libxc(struct sr_io *io, struct fake *f, struct sr_rec *rec)
{
    struct sr_libxc_ihdr ih;
    struct sr_libxc_dhdr dh;
    int rc;

    if ( (rc = sr_read_libxc_ihdr(io, &ih)) ||
         (rc = sr_read_libxc_dhdr(io, &dh)) )
        return rc;
    for ( unsigned int n = 0; n < MAX_RECORDS; n++ )
    {
        if ( (rc = sr_read_record(io, SR_LIBXC, rec)) )
            return rc;
        if ( rec->type == SR_LIBXC_END )
            return 0;
        do_libxc_record(io, f, rec);
    }
    return -E2BIG;
}

static void read_stream(struct sr_io *io, struct fake *f)
{
    struct sr_xl_hdr xh;
    struct sr_libxl_hdr lh;
    struct sr_rec rec;
    void *config = NULL;
    uint32_t config_len;
    bool present;

    sr_rec_init(&rec);
    if ( sr_io_hash_start(io) ||
         sr_read_xl_hdr(io, &xh, &config, &config_len) )
        goto out;
    if ( (xh.mandatory_flags & SR_XL_FLAG_FERRY_ZLIB) &&
         sr_io_inflate_start(io) )
        goto out;
    if ( sr_read_libxl_hdr(io, &lh) )
        goto out;
    for ( unsigned int n = 0; n < MAX_RECORDS; n++ )
    {
        if ( sr_read_record(io, SR_LIBXL, &rec) )
            goto out;
        if ( rec.type == SR_LIBXL_END )
        {
            sr_read_ferry_trailer(io, &present);
            goto out;
        }
        if ( rec.type == SR_LIBXL_LIBXC_CONTEXT && read_libxc(io, f, &rec) )
            goto out;
    }
 out:
    free(config);
    sr_rec_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fake f;
    struct sr_io *io;

    fake_reset(&f, 0);
    if ( sr_io_open_mem_reader(&io, data, size) )
        return 0;
    read_stream(io, &f);
    /* The first error is what a user would see: it must be a string. */
    f.sink += strlen(sr_io_errmsg(io));
    sr_io_close(io);
    return 0;
}
