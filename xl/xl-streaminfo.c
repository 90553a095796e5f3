/* SPDX-License-Identifier: MIT */
/*
 * xl stream-info: read a save file without any host and say what is in
 * it, and whether it is a well-formed stream (ferry's verb; Xen has
 * tools/python/scripts/verify-stream-v2 for the second part).
 *
 * The file is read once, front to back, through the same record layer
 * the restore engine uses (sr_read_record(), sr_parse_page_data()), so
 * every structural rule it checks is checked here too.  On top of that
 * come the rules that need the stream's own context, which the restore
 * engine checks against a domain: the record order of the libxc spec
 * for x86 PV (X86_PV_INFO first; v3 static data and STATIC_DATA_END
 * before memory; X86_PV_P2M_FRAMES before PAGE_DATA; PAGE_DATA before
 * the vCPU records; END last, with vCPU 0's basic state sent), PFNs
 * within the P2M that X86_PV_P2M_FRAMES describes, vCPU ids within the
 * saved config's maximum, then ferry's digest trailer.
 *
 * A structural error stops the walk (nothing after it can be trusted);
 * an order or range violation is recorded and the walk goes on, so one
 * run shows as much as possible.  Every error names the record type and
 * its offset in the (uncompressed) stream.
 *
 * Output (ferry-stream(5) documents it; scripts parse it, so it only
 * grows): `key: value` lines in a fixed order, `error: ...` lines, a
 * `result: ok|bad` line, a blank line, then the record table.  Exit
 * status 0 for a good file, 1 for a bad or unreadable one.
 *
 * Style: Xen's xl/libxl style.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xl.h"
#include "xl-cfg.h"
#include "../saverestore/sr.h"

#define SI_XC_TYPES     (SR_LIBXC_X86_MSR_POLICY + 1)
#define SI_XL_TYPES     (SR_LIBXL_CHECKPOINT_STATE + 1)
#define SI_MAX_ERRORS   20
#define SI_NO_PFN       UINT64_MAX

enum si_digest {
    SI_DIGEST_NOT_REACHED,
    SI_DIGEST_ABSENT,
    SI_DIGEST_OK,
    SI_DIGEST_BAD,
};

struct streaminfo {
    const char *file;
    struct sr_io *io;
    uint64_t file_bytes;

    /* Errors, in the order found; the walk stops at a fatal one. */
    char *errors[SI_MAX_ERRORS];
    unsigned int nr_errors;

    /* Headers as read. */
    struct sr_xl_hdr xh;
    bool have_xh;
    char *config;
    uint32_t config_len;
    struct ferry_domain_config dc;
    bool have_dc;
    struct sr_libxl_hdr lh;
    bool have_lh;
    struct sr_libxc_ihdr ih;
    bool have_ih;
    struct sr_libxc_dhdr dh;
    bool have_dh;
    struct sr_x86_pv_info pvi;
    bool have_pvi;

    /* Where the walk is in the spec's order. */
    uint64_t libxc_records;
    bool seen_libxc_ctx, seen_static_end, seen_p2m, seen_page_data;
    bool seen_vcpu, seen_verify, seen_libxc_end, seen_libxl_end;

    /* Per-record-type counts and stream bytes (header+body+padding). */
    uint64_t xc_count[SI_XC_TYPES], xc_bytes[SI_XC_TYPES];
    uint64_t xl_count[SI_XL_TYPES], xl_bytes[SI_XL_TYPES];

    /* PAGE_DATA: entries by type nibble, and the PFNs seen. */
    uint64_t types[16];
    uint64_t data_pages;
    uint64_t verify_pages;      /* data pages after VERIFY */
    uint64_t max_pfn;           /* X86_PV_P2M_FRAMES' largest end_pfn */
    uint64_t p2m_offset;        /* the record that claimed it */
    uint64_t p2m_frames;
    uint64_t *seen, *repeat;    /* bitmaps over 0..max_pfn */
    uint64_t pfn_lo, pfn_hi, distinct, repeated;

    /* vCPU ids with a non-empty X86_PV_VCPU_BASIC, sorted, unique. */
    uint32_t *vcpus;
    unsigned int nr_vcpus, cap_vcpus;

    enum si_digest digest;
    uint32_t hash_alg;          /* the running digest's, at the end */
};

/* ---- errors ---------------------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
si_error(struct streaminfo *si, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (si->nr_errors < SI_MAX_ERRORS) {
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
            s = NULL;
        va_end(ap);
        si->errors[si->nr_errors] = s;
    }
    si->nr_errors++;
}

/* The record layer's own words for the first structural error. */
static void si_io_error(struct streaminfo *si, int rc)
{
    const char *m = sr_io_errmsg(si->io);

    si_error(si, "%s", m && m[0] ? m : strerror(-rc));
}

/* "libxc record 0x00000001 (PAGE_DATA) at offset N: why", as
 * sr-stream.c words it. */
static void __attribute__((format(printf, 4, 5)))
si_rec_error(struct streaminfo *si, enum sr_layer layer,
             const struct sr_rec *rec, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    si_error(si, "%s record 0x%08" PRIx32 " (%s) at offset %" PRIu64 ": %s",
             layer == SR_LIBXC ? "libxc" : "libxl", rec->type,
             sr_rec_name(layer, rec->type), rec->offset, why);
}

/* ---- PFNs and vCPUs -------------------------------------------------- */

static bool bit_test_set(uint64_t *map, uint64_t bit)
{
    uint64_t m = 1ULL << (bit % 64);
    bool was = map[bit / 64] & m;

    map[bit / 64] |= m;
    return was;
}

/* A bigger copy of a bitmap.  calloc, not realloc + memset: a large
 * zeroed block costs no memory until touched, so a hostile end_pfn of
 * 2^32 costs what the PFNs actually sent touch, not a gigabyte. */
static uint64_t *grow_map(uint64_t *old, size_t old_words, size_t words)
{
    uint64_t *p = calloc(words, sizeof(*p));

    if (p && old_words)
        memcpy(p, old, old_words * sizeof(*p));
    return p;
}

/* Make the bitmaps cover 0..max_pfn (they only ever grow). */
static int grow_pfn_maps(struct streaminfo *si, uint64_t max_pfn)
{
    size_t old = si->seen ? si->max_pfn / 64 + 1 : 0;
    size_t words = max_pfn / 64 + 1;
    uint64_t *seen, *repeat;

    if (words <= old)
        return 0;
    seen = grow_map(si->seen, old, words);
    repeat = grow_map(si->repeat, old, words);
    if (!seen || !repeat) {
        free(seen);
        free(repeat);
        return -ENOMEM;
    }
    free(si->seen);
    free(si->repeat);
    si->seen = seen;
    si->repeat = repeat;
    return 0;
}

static void note_pfn(struct streaminfo *si, uint64_t pfn)
{
    if (si->pfn_lo == SI_NO_PFN || pfn < si->pfn_lo)
        si->pfn_lo = pfn;
    if (si->pfn_hi == SI_NO_PFN || pfn > si->pfn_hi)
        si->pfn_hi = pfn;
    if (!bit_test_set(si->seen, pfn))
        si->distinct++;
    else if (!bit_test_set(si->repeat, pfn))
        si->repeated++;
}

static int note_vcpu(struct streaminfo *si, uint32_t id)
{
    unsigned int i;

    for (i = 0; i < si->nr_vcpus && si->vcpus[i] < id; i++)
        ;
    if (i < si->nr_vcpus && si->vcpus[i] == id)
        return 0;
    if (si->nr_vcpus == si->cap_vcpus) {
        unsigned int cap = si->cap_vcpus ? si->cap_vcpus * 2 : 16;
        uint32_t *p = realloc(si->vcpus, cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        si->vcpus = p;
        si->cap_vcpus = cap;
    }
    memmove(si->vcpus + i + 1, si->vcpus + i,
            (si->nr_vcpus - i) * sizeof(*si->vcpus));
    si->vcpus[i] = id;
    si->nr_vcpus++;
    return 0;
}

/* ---- libxc records --------------------------------------------------- */

/* v3 wants STATIC_DATA_END before memory and registers; a v2 stream's
 * is inferred at its first X86_PV_P2M_FRAMES, as the spec says. */
static void need_static_end(struct streaminfo *si, const struct sr_rec *rec)
{
    if (si->seen_static_end)
        return;
    if (si->ih.version < 3 && rec->type == SR_LIBXC_X86_PV_P2M_FRAMES) {
        si->seen_static_end = true;
        return;
    }
    si_rec_error(si, SR_LIBXC, rec, "no STATIC_DATA_END before it");
    si->seen_static_end = true;     /* say it once */
}

static void need_pv_info(struct streaminfo *si, const struct sr_rec *rec)
{
    if (!si->have_pvi)
        si_rec_error(si, SR_LIBXC, rec, "X86_PV_INFO not yet seen");
}

static void do_p2m_frames(struct streaminfo *si, const struct sr_rec *rec)
{
    const struct sr_x86_pv_p2m_frames *h = (const void *)rec->body;
    const uint64_t *pfns = (const uint64_t *)(rec->body + sizeof(*h));
    uint32_t start = le32toh(h->start_pfn), end = le32toh(h->end_pfn);
    uint64_t fpp = SR_PAGE_SIZE / (si->have_pvi ? si->pvi.guest_width : 8);
    uint64_t first, count, i;

    need_pv_info(si, rec);
    need_static_end(si, rec);
    if (start > end) {
        si_rec_error(si, SR_LIBXC, rec, "end_pfn %#" PRIx32 " below "
                     "start_pfn %#" PRIx32, end, start);
        return;
    }
    first = start / fpp;
    count = end / fpp - first + 1;
    if (rec->length != sizeof(*h) + count * 8) {
        si_rec_error(si, SR_LIBXC, rec, "length %" PRIu32 " does not match"
                     " PFNs %#" PRIx32 "-%#" PRIx32 " (expected %" PRIu64
                     ")", rec->length, start, end, sizeof(*h) + count * 8);
        return;
    }
    if (si->have_dc && end >= si->dc.maxmem_mib * 256) {
        si_rec_error(si, SR_LIBXC, rec, "end_pfn %#" PRIx32 " beyond the "
                     "config's maximum memory of %" PRIu64 " MiB", end,
                     si->dc.maxmem_mib);
        return;
    }
    if (grow_pfn_maps(si, end)) {
        si_rec_error(si, SR_LIBXC, rec, "out of memory");
        return;
    }
    if (!si->seen_p2m || end > si->max_pfn) {
        si->max_pfn = end;
        si->p2m_offset = rec->offset;
    }
    si->seen_p2m = true;
    si->p2m_frames += count;
    for (i = 0; i < count; i++) {
        uint64_t pfn = le64toh(pfns[i]);

        if (pfn > si->max_pfn) {
            si_rec_error(si, SR_LIBXC, rec, "P2M frame %" PRIu64 " at pfn %#"
                         PRIx64 " beyond end_pfn %#" PRIx64, first + i, pfn,
                         si->max_pfn);
            return;
        }
    }
}

static void do_page_data(struct streaminfo *si, const struct sr_rec *rec)
{
    struct sr_page_data pd;
    bool reported = false;
    uint32_t i;

    /* sr_read_record() checked the body already: this cannot fail. */
    if (sr_parse_page_data(si->io, rec, &pd)) {
        si_io_error(si, sr_io_error(si->io));
        return;
    }
    need_static_end(si, rec);
    if (!si->seen_p2m)
        si_rec_error(si, SR_LIBXC, rec, "X86_PV_P2M_FRAMES not yet seen");
    if (si->seen_vcpu && !si->seen_page_data)
        si_rec_error(si, SR_LIBXC, rec, "PAGE_DATA after the vCPU records");
    si->seen_page_data = true;
    /* The VERIFY pass repeats every page: it is counted apart. */
    if (si->seen_verify)
        si->verify_pages += pd.nr_pages;
    else
        si->data_pages += pd.nr_pages;
    for (i = 0; i < pd.count; i++) {
        uint64_t e = le64toh(pd.entries[i]), pfn = sr_entry_pfn(e);

        if (!si->seen_verify)
            si->types[sr_entry_type(e)]++;
        if (!si->seen_p2m || pfn > si->max_pfn) {
            if (si->seen_p2m && !reported)
                si_rec_error(si, SR_LIBXC, rec, "entry %" PRIu32 ": pfn %#"
                             PRIx64 " beyond the P2M (end_pfn %#" PRIx64 ")",
                             i, pfn, si->max_pfn);
            reported = true;
            continue;
        }
        if (!si->seen_verify)
            note_pfn(si, pfn);
    }
}

static void do_vcpu(struct streaminfo *si, const struct sr_rec *rec)
{
    const struct sr_x86_pv_vcpu_hdr *h = (const void *)rec->body;
    uint32_t id = le32toh(h->vcpu_id);
    uint32_t blob = rec->length - sizeof(*h);

    need_pv_info(si, rec);
    need_static_end(si, rec);
    si->seen_vcpu = true;
    /* Empty blobs are tolerated, as by Xen (old senders wrote them). */
    if (!blob)
        return;
    if (si->have_dc && id >= si->dc.maxvcpus) {
        si_rec_error(si, SR_LIBXC, rec, "vcpu_id %" PRIu32 " exceeds the "
                     "config's maximum (%u)", id, si->dc.maxvcpus - 1);
        return;
    }
    if (rec->type != SR_LIBXC_X86_PV_VCPU_BASIC)
        return;
    if (si->have_pvi && si->pvi.guest_width == 8 &&
        blob != sizeof(struct vcpu_guest_context)) {
        si_rec_error(si, SR_LIBXC, rec, "vCPU context of %" PRIu32 " bytes,"
                     " expected %zu", blob,
                     sizeof(struct vcpu_guest_context));
        return;
    }
    if (note_vcpu(si, id))
        si_rec_error(si, SR_LIBXC, rec, "out of memory");
}

static void do_end(struct streaminfo *si, const struct sr_rec *rec)
{
    if (!si->seen_p2m)
        si_rec_error(si, SR_LIBXC, rec, "no X86_PV_P2M_FRAMES record");
    if (!si->nr_vcpus || si->vcpus[0] != 0)
        si_rec_error(si, SR_LIBXC, rec, "no X86_PV_VCPU_BASIC record for "
                     "vCPU 0");
    /*
     * A saver sends every PFN of its P2M (the invalid ones as XTAB,
     * without data), so a P2M larger than what the stream sent is a
     * claim for memory the domain never had: a restore would size its
     * P2M and bookkeeping by it.
     */
    if (si->seen_p2m && si->distinct < si->max_pfn + 1) {
        struct sr_rec p2m = {
            .type = SR_LIBXC_X86_PV_P2M_FRAMES, .offset = si->p2m_offset,
        };

        si_rec_error(si, SR_LIBXC, &p2m, "the P2M claims %" PRIu64 " PFNs"
                     " (%" PRIu64 " MiB), the stream sends %" PRIu64 " of"
                     " them", si->max_pfn + 1, (si->max_pfn + 1) >> 8,
                     si->distinct);
    }
    si->seen_libxc_end = true;
}

/* The order rules and contents of one libxc record. */
static void do_libxc_record(struct streaminfo *si, const struct sr_rec *rec)
{
    if (si->libxc_records++ == 0 && rec->type != SR_LIBXC_X86_PV_INFO)
        si_rec_error(si, SR_LIBXC, rec, "the first record must be "
                     "X86_PV_INFO");
    switch (rec->type) {
    case SR_LIBXC_X86_PV_INFO:
        if (si->have_pvi)
            si_rec_error(si, SR_LIBXC, rec, "duplicate record");
        else if (si->seen_static_end)
            si_rec_error(si, SR_LIBXC, rec, "static data after "
                         "STATIC_DATA_END");
        memcpy(&si->pvi, rec->body, sizeof(si->pvi));
        si->have_pvi = true;
        break;
    case SR_LIBXC_X86_CPUID_POLICY:
    case SR_LIBXC_X86_MSR_POLICY:
        if (si->seen_static_end)
            si_rec_error(si, SR_LIBXC, rec, "static data after "
                         "STATIC_DATA_END");
        break;
    case SR_LIBXC_STATIC_DATA_END:
        if (si->seen_static_end)
            si_rec_error(si, SR_LIBXC, rec, "duplicate record");
        need_pv_info(si, rec);
        si->seen_static_end = true;
        break;
    case SR_LIBXC_X86_PV_P2M_FRAMES:
        do_p2m_frames(si, rec);
        break;
    case SR_LIBXC_PAGE_DATA:
        do_page_data(si, rec);
        break;
    case SR_LIBXC_VERIFY:
        if (si->seen_verify)
            si_rec_error(si, SR_LIBXC, rec, "duplicate record");
        if (!si->seen_p2m)
            si_rec_error(si, SR_LIBXC, rec,
                         "X86_PV_P2M_FRAMES not yet seen");
        si->seen_verify = true;
        break;
    case SR_LIBXC_X86_PV_VCPU_BASIC:
    case SR_LIBXC_X86_PV_VCPU_EXTENDED:
    case SR_LIBXC_X86_PV_VCPU_XSAVE:
    case SR_LIBXC_X86_PV_VCPU_MSRS:
        do_vcpu(si, rec);
        break;
    case SR_LIBXC_SHARED_INFO:
        need_pv_info(si, rec);
        break;
    case SR_LIBXC_X86_TSC_INFO:
        break;
    case SR_LIBXC_CHECKPOINT:
    case SR_LIBXC_CHECKPOINT_DIRTY_PFN_LIST:
        si_rec_error(si, SR_LIBXC, rec, "checkpoint record in a "
                     "non-checkpointed stream");
        break;
    case SR_LIBXC_END:
        do_end(si, rec);
        break;
    default:
        /* HVM_CONTEXT, HVM_PARAMS, TOOLSTACK: no x86 PV handler. */
        si_rec_error(si, SR_LIBXC, rec, "not valid in an x86 PV stream");
        break;
    }
}

static void count_record(uint64_t *count, uint64_t *bytes, size_t n,
                         const struct sr_rec *rec)
{
    if (rec->type >= n)
        return;
    count[rec->type]++;
    bytes[rec->type] += sizeof(struct sr_rhdr) +
        ((rec->length + SR_REC_ALIGN - 1) & ~(uint64_t)(SR_REC_ALIGN - 1));
}

/* The libxc stream inside LIBXC_CONTEXT: false on a fatal error. */
static bool walk_libxc(struct streaminfo *si, struct sr_rec *rec)
{
    int rc;

    if ((rc = sr_read_libxc_ihdr(si->io, &si->ih))) {
        si_io_error(si, rc);
        return false;
    }
    si->have_ih = true;
    if ((rc = sr_read_libxc_dhdr(si->io, &si->dh))) {
        si_io_error(si, rc);
        return false;
    }
    si->have_dh = true;
    while (!si->seen_libxc_end) {
        if ((rc = sr_read_record(si->io, SR_LIBXC, rec))) {
            si_io_error(si, rc);
            return false;
        }
        count_record(si->xc_count, si->xc_bytes, SI_XC_TYPES, rec);
        do_libxc_record(si, rec);
    }
    return true;
}

/* ---- the file -------------------------------------------------------- */

static void parse_config(struct streaminfo *si)
{
    struct xlcfg_error err;
    size_t len = si->config_len;

    if (!si->config || !(si->xh.mandatory_flags & SR_XL_FLAG_JSON))
        return;
    /* The saved length may count a NUL. */
    while (len && !si->config[len - 1])
        len--;
    ferry_domain_config_init(&si->dc);
    if (ferry_domain_config_from_json(&si->dc, "config", si->config, len,
                                      &err)) {
        si_error(si, "xl header at offset 0: config: %s", err.msg);
        ferry_domain_config_dispose(&si->dc);
        return;
    }
    si->have_dc = true;
}

static bool walk_xl_header(struct streaminfo *si)
{
    void *config = NULL;
    int rc;

    if ((rc = sr_io_hash_start(si->io))) {
        si_io_error(si, rc);
        return false;
    }
    rc = sr_read_xl_hdr(si->io, &si->xh, &config, &si->config_len);
    /* The fixed part was read even if a check then failed. */
    si->have_xh = sr_io_offset(si->io) >= sizeof(si->xh) &&
                  !memcmp(si->xh.magic, SR_XL_MAGIC, SR_XL_MAGIC_LEN);
    if (rc) {
        si_io_error(si, rc);
        free(config);
        return false;
    }
    si->config = config;
    parse_config(si);
    if (!(si->xh.mandatory_flags & SR_XL_FLAG_STREAMV2)) {
        si_error(si, "xl header at offset 0: not a libxl v2 stream "
                 "(legacy streams are not supported)");
        return false;
    }
    if ((si->xh.mandatory_flags & SR_XL_FLAG_FERRY_ZLIB) &&
        (rc = sr_io_inflate_start(si->io))) {
        si_io_error(si, rc);
        return false;
    }
    return true;
}

/* The libxl stream, then ferry's trailer. */
static void walk(struct streaminfo *si)
{
    struct sr_rec rec;
    bool present;
    int rc;

    sr_rec_init(&rec);
    if (!walk_xl_header(si))
        goto out;
    if ((rc = sr_read_libxl_hdr(si->io, &si->lh))) {
        si_io_error(si, rc);
        goto out;
    }
    si->have_lh = true;
    while (!si->seen_libxl_end) {
        if ((rc = sr_read_record(si->io, SR_LIBXL, &rec))) {
            si_io_error(si, rc);
            goto out;
        }
        count_record(si->xl_count, si->xl_bytes, SI_XL_TYPES, &rec);
        switch (rec.type) {
        case SR_LIBXL_LIBXC_CONTEXT:
            if (si->seen_libxc_ctx)
                si_rec_error(si, SR_LIBXL, &rec, "duplicate record");
            si->seen_libxc_ctx = true;
            if (!walk_libxc(si, &rec))
                goto out;
            break;
        case SR_LIBXL_END:
            if (!si->seen_libxc_ctx)
                si_rec_error(si, SR_LIBXL, &rec, "no LIBXC_CONTEXT record");
            si->seen_libxl_end = true;
            break;
        case SR_LIBXL_CHECKPOINT_END:
        case SR_LIBXL_CHECKPOINT_STATE:
            si_rec_error(si, SR_LIBXL, &rec, "checkpoint record in a "
                         "non-checkpointed stream");
            break;
        default:
            break;      /* emulator records: counted only */
        }
    }
    si->hash_alg = sr_io_hash_alg(si->io);
    rc = sr_read_ferry_trailer(si->io, &present);
    if (rc) {
        si_io_error(si, rc);
        si->digest = SI_DIGEST_BAD;
    } else {
        si->digest = present ? SI_DIGEST_OK : SI_DIGEST_ABSENT;
    }
 out:
    sr_rec_free(&rec);
}

static int open_stream(struct streaminfo *si)
{
    struct stat st;
    int fd = open(si->file, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0 || fstat(fd, &st)) {
        si_error(si, "cannot open %s: %s", si->file, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    si->file_bytes = st.st_size;
    if ((rc = sr_io_open_fd(&si->io, fd, true))) {
        close(fd);
        si_error(si, "%s: %s", si->file, strerror(-rc));
        return -1;
    }
    return 0;
}

/* ---- output ---------------------------------------------------------- */

struct flag_name {
    uint32_t bit;
    const char *name;
};

static const struct flag_name mandatory_names[] = {
    { SR_XL_FLAG_JSON, "json" },
    { SR_XL_FLAG_STREAMV2, "streamv2" },
    { SR_XL_FLAG_FERRY_ZLIB, "ferry-zlib" },
    { 0, NULL },
};

static const struct flag_name optional_names[] = {
    { SR_XL_OPTFLAG_FERRY_POLY1305, "ferry-poly1305" },
    { 0, NULL },
};

/* "key: 0x80000003 json,streamv2,ferry-zlib" */
static void print_flags(const char *key, uint32_t flags,
                        const struct flag_name *known)
{
    uint32_t rest = flags;
    const char *sep = " ";

    printf("%s: 0x%08" PRIx32, key, flags);
    for (size_t i = 0; known[i].name; i++) {
        if (!(flags & known[i].bit))
            continue;
        printf("%s%s", sep, known[i].name);
        sep = ",";
        rest &= ~known[i].bit;
    }
    if (rest)
        printf("%sunknown(0x%08" PRIx32 ")", sep, rest);
    printf("\n");
}

static void print_xl(const struct streaminfo *si)
{
    if (!si->have_xh)
        return;
    print_flags("xl_mandatory_flags", si->xh.mandatory_flags,
                mandatory_names);
    print_flags("xl_optional_flags", si->xh.optional_flags, optional_names);
    printf("xl_optional_data_bytes: %" PRIu32 "\n",
           si->xh.optional_data_len);
    printf("xl_config_bytes: %" PRIu32 "\n", si->config_len);
    if (si->have_dc) {
        printf("config_name: %s\n", si->dc.name);
        printf("config_memory_mib: %" PRIu64 "\n", si->dc.memory_mib);
        printf("config_maxmem_mib: %" PRIu64 "\n", si->dc.maxmem_mib);
        printf("config_vcpus: %u\n", si->dc.vcpus);
        printf("config_maxvcpus: %u\n", si->dc.maxvcpus);
    }
    printf("compression: %s\n",
           si->xh.mandatory_flags & SR_XL_FLAG_FERRY_ZLIB ? "zlib" : "none");
}

static void print_headers(const struct streaminfo *si)
{
    if (si->have_lh) {
        printf("libxl_version: %" PRIu32 "\n", si->lh.version);
        printf("libxl_options: 0x%08" PRIx32 "\n", si->lh.options);
    }
    if (si->have_ih) {
        printf("libxc_version: %" PRIu32 "\n", si->ih.version);
        printf("libxc_options: 0x%04" PRIx16 "\n", si->ih.options);
    }
    if (si->have_dh) {
        printf("libxc_domain_type: x86_pv\n");
        printf("libxc_page_shift: %u\n", (unsigned int)si->dh.page_shift);
        printf("libxc_xen_version: %" PRIu32 ".%" PRIu32 "\n",
               si->dh.xen_major, si->dh.xen_minor);
    }
    if (si->have_pvi) {
        printf("pv_guest_width: %u\n", (unsigned int)si->pvi.guest_width);
        printf("pv_pt_levels: %u\n", (unsigned int)si->pvi.pt_levels);
    }
}

static void print_memory(const struct streaminfo *si)
{
    static const struct { unsigned int type; const char *key; } ty[] = {
        { SR_PFINFO_NOTAB, "pages_notab" },
        { SR_PFINFO_L1TAB, "pages_l1" },
        { SR_PFINFO_L2TAB, "pages_l2" },
        { SR_PFINFO_L3TAB, "pages_l3" },
        { SR_PFINFO_L4TAB, "pages_l4" },
        { SR_PFINFO_LPINTAB | SR_PFINFO_L1TAB, "pages_l1_pinned" },
        { SR_PFINFO_LPINTAB | SR_PFINFO_L2TAB, "pages_l2_pinned" },
        { SR_PFINFO_LPINTAB | SR_PFINFO_L3TAB, "pages_l3_pinned" },
        { SR_PFINFO_LPINTAB | SR_PFINFO_L4TAB, "pages_l4_pinned" },
        { SR_PFINFO_XTAB, "pages_xtab" },
        { SR_PFINFO_BROKEN, "pages_broken" },
        { SR_PFINFO_XALLOC, "pages_xalloc" },
    };

    if (si->seen_p2m) {
        printf("p2m_end_pfn: 0x%" PRIx64 "\n", si->max_pfn);
        printf("p2m_frames: %" PRIu64 "\n", si->p2m_frames);
    }
    printf("page_data_records: %" PRIu64 "\n",
           si->xc_count[SR_LIBXC_PAGE_DATA]);
    printf("pages_data: %" PRIu64 "\n", si->data_pages);
    for (size_t i = 0; i < sizeof(ty) / sizeof(ty[0]); i++)
        printf("%s: %" PRIu64 "\n", ty[i].key, si->types[ty[i].type]);
    if (si->pfn_lo != SI_NO_PFN) {
        printf("pfn_first: 0x%" PRIx64 "\n", si->pfn_lo);
        printf("pfn_last: 0x%" PRIx64 "\n", si->pfn_hi);
    }
    printf("pfns_distinct: %" PRIu64 "\n", si->distinct);
    printf("pfns_repeated: %" PRIu64 "\n", si->repeated);
    printf("verify_pass: %s\n", si->seen_verify ? "yes" : "no");
    printf("verify_pages: %" PRIu64 "\n", si->verify_pages);
}

static void print_tail(const struct streaminfo *si)
{
    static const char *const digest[] = {
        [SI_DIGEST_NOT_REACHED] = "not-reached",
        [SI_DIGEST_ABSENT] = "absent",
        [SI_DIGEST_OK] = "ok",
        [SI_DIGEST_BAD] = "bad",
    };

    printf("vcpus:");
    for (unsigned int i = 0; i < si->nr_vcpus; i++)
        printf(" %" PRIu32, si->vcpus[i]);
    printf("\n");
    printf("vcpu_count: %u\n", si->nr_vcpus);
    printf("digest: %s\n", digest[si->digest]);
    if (si->digest == SI_DIGEST_OK || si->digest == SI_DIGEST_BAD)
        printf("digest_algorithm: %s\n",
               si->hash_alg == SR_FERRY_TRAILER_POLY1305 ? "poly1305" :
               si->hash_alg == SR_FERRY_TRAILER_SHA256 ? "sha256" : "?");
    if (si->io)
        printf("stream_bytes: %" PRIu64 "\n", sr_io_offset(si->io));
    for (unsigned int i = 0; i < si->nr_errors && i < SI_MAX_ERRORS; i++)
        printf("error: %s\n", si->errors[i] ? si->errors[i] : "?");
    if (si->nr_errors > SI_MAX_ERRORS)
        printf("error: %u more errors not shown\n",
               si->nr_errors - SI_MAX_ERRORS);
    printf("errors: %u\n", si->nr_errors);
    printf("result: %s\n", si->nr_errors ? "bad" : "ok");
}

static void print_table(const struct streaminfo *si)
{
    printf("\n%-6s %-26s %10s %14s\n", "layer", "record", "count", "bytes");
    for (uint32_t t = 0; t < SI_XL_TYPES; t++)
        if (si->xl_count[t])
            printf("%-6s %-26s %10" PRIu64 " %14" PRIu64 "\n", "libxl",
                   sr_libxl_rec_name(t), si->xl_count[t], si->xl_bytes[t]);
    for (uint32_t t = 0; t < SI_XC_TYPES; t++)
        if (si->xc_count[t])
            printf("%-6s %-26s %10" PRIu64 " %14" PRIu64 "\n", "libxc",
                   sr_libxc_rec_name(t), si->xc_count[t], si->xc_bytes[t]);
}

static void print_report(const struct streaminfo *si)
{
    printf("file: %s\n", si->file);
    printf("file_bytes: %" PRIu64 "\n", si->file_bytes);
    print_xl(si);
    print_headers(si);
    print_memory(si);
    print_tail(si);
    print_table(si);
}

int main_stream_info(int argc, char **argv)
{
    struct streaminfo si = {
        .pfn_lo = SI_NO_PFN, .pfn_hi = SI_NO_PFN,
    };
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "", NULL, "stream-info", 1,
                            &rc)) != -1) {
        if (opt == -2)
            return rc;
    }
    if (argc - optind != 1) {
        help("stream-info");
        return EXIT_USAGE;
    }
    si.file = argv[optind];
    if (!open_stream(&si))
        walk(&si);
    print_report(&si);
    fflush(stdout);
    if (si.nr_errors)
        fprintf(stderr, "xl stream-info: %s: bad stream (%u error%s)\n",
                si.file, si.nr_errors, si.nr_errors > 1 ? "s" : "");
    rc = si.nr_errors ? EXIT_FAILURE : EXIT_SUCCESS;

    for (unsigned int i = 0; i < si.nr_errors && i < SI_MAX_ERRORS; i++)
        free(si.errors[i]);
    if (si.have_dc)
        ferry_domain_config_dispose(&si.dc);
    if (si.io)
        sr_io_close(si.io);
    free(si.config);
    free(si.seen);
    free(si.repeat);
    free(si.vcpus);
    return rc;
}
