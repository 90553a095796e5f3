/* SPDX-License-Identifier: MIT */
/*
 * sr-stream.c: headers and records of the xl / libxl v2 / libxc v3
 * save streams, on top of sr-io.c.
 *
 * Writers produce exactly what Xen's writers produce (zero reserved
 * fields, zero padding to 8 bytes); readers check every structural rule
 * that Xen's restore code or its stream verifier (verify-stream-v2)
 * checks, so a stream we accept is one Xen would accept and a stream we
 * write passes the verifier.  What needs knowledge of the domain (record
 * order, PFN ranges, vcpu ids) belongs to the restore engine above.
 *
 * Every failure is recorded on the io (sticky) with a message naming the
 * layer, the record type as number and name, and the byte offset of the
 * header or record in the stream.  The length cap is enforced before any
 * allocation, so a hostile length cannot make us allocate 4 GiB.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr-private.h"

/* ---- names ----------------------------------------------------------- */

static const char *const libxc_names[] = {
    [SR_LIBXC_END] = "END",
    [SR_LIBXC_PAGE_DATA] = "PAGE_DATA",
    [SR_LIBXC_X86_PV_INFO] = "X86_PV_INFO",
    [SR_LIBXC_X86_PV_P2M_FRAMES] = "X86_PV_P2M_FRAMES",
    [SR_LIBXC_X86_PV_VCPU_BASIC] = "X86_PV_VCPU_BASIC",
    [SR_LIBXC_X86_PV_VCPU_EXTENDED] = "X86_PV_VCPU_EXTENDED",
    [SR_LIBXC_X86_PV_VCPU_XSAVE] = "X86_PV_VCPU_XSAVE",
    [SR_LIBXC_SHARED_INFO] = "SHARED_INFO",
    [SR_LIBXC_X86_TSC_INFO] = "X86_TSC_INFO",
    [SR_LIBXC_HVM_CONTEXT] = "HVM_CONTEXT",
    [SR_LIBXC_HVM_PARAMS] = "HVM_PARAMS",
    [SR_LIBXC_TOOLSTACK] = "TOOLSTACK",
    [SR_LIBXC_X86_PV_VCPU_MSRS] = "X86_PV_VCPU_MSRS",
    [SR_LIBXC_VERIFY] = "VERIFY",
    [SR_LIBXC_CHECKPOINT] = "CHECKPOINT",
    [SR_LIBXC_CHECKPOINT_DIRTY_PFN_LIST] = "CHECKPOINT_DIRTY_PFN_LIST",
    [SR_LIBXC_STATIC_DATA_END] = "STATIC_DATA_END",
    [SR_LIBXC_X86_CPUID_POLICY] = "X86_CPUID_POLICY",
    [SR_LIBXC_X86_MSR_POLICY] = "X86_MSR_POLICY",
};

static const char *const libxl_names[] = {
    [SR_LIBXL_END] = "END",
    [SR_LIBXL_LIBXC_CONTEXT] = "LIBXC_CONTEXT",
    [SR_LIBXL_EMULATOR_XENSTORE_DATA] = "EMULATOR_XENSTORE_DATA",
    [SR_LIBXL_EMULATOR_CONTEXT] = "EMULATOR_CONTEXT",
    [SR_LIBXL_CHECKPOINT_END] = "CHECKPOINT_END",
    [SR_LIBXL_CHECKPOINT_STATE] = "CHECKPOINT_STATE",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *sr_libxc_rec_name(uint32_t type)
{
    return type < ARRAY_SIZE(libxc_names) ? libxc_names[type] : "unknown";
}

const char *sr_libxl_rec_name(uint32_t type)
{
    return type < ARRAY_SIZE(libxl_names) ? libxl_names[type] : "unknown";
}

const char *sr_rec_name(enum sr_layer layer, uint32_t type)
{
    return layer == SR_LIBXC ? sr_libxc_rec_name(type)
                             : sr_libxl_rec_name(type);
}

static bool rec_known(enum sr_layer layer, uint32_t type)
{
    return layer == SR_LIBXC ? type < ARRAY_SIZE(libxc_names)
                             : type < ARRAY_SIZE(libxl_names);
}

/* ---- error helpers --------------------------------------------------- */

/* "libxc record 0x00000001 (PAGE_DATA) at offset 4096: <why>" */
static int __attribute__((format(printf, 6, 7)))
rec_fail(struct sr_io *io, enum sr_layer layer, uint32_t type,
         uint64_t off, int err, const char *fmt, ...)
{
    char why[SR_ERRMSG_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return sr_io_fail(io, err, "%s record 0x%08" PRIx32 " (%s%s) at offset "
                      "%" PRIu64 ": %s",
                      layer == SR_LIBXC ? "libxc" : "libxl", type,
                      sr_rec_name(layer, type),
                      rec_known(layer, type) ? "" :
                      (type & SR_REC_TYPE_OPTIONAL) ? " optional"
                                                    : " mandatory",
                      off, why);
}

#define HDR_FAIL(io, what, off, err, fmt, ...)                            \
    sr_io_fail(io, err, "%s at offset %" PRIu64 ": " fmt, what, off,      \
               ##__VA_ARGS__)

/* Read a header part; end of stream is reported against the header. */
static int hdr_read(struct sr_io *io, const char *what, uint64_t off,
                    void *buf, size_t len)
{
    int rc = sr__io_read_eof(io, buf, len);

    if ( rc == -ENODATA && !io->err )
        return HDR_FAIL(io, what, off, rc, "truncated at offset %" PRIu64,
                        io->offset);
    return rc;
}

/* Read part of a record; end of stream is reported against the record. */
static int rec_read(struct sr_io *io, enum sr_layer layer,
                    const struct sr_rec *rec, void *buf, size_t len)
{
    int rc = sr__io_read_eof(io, buf, len);

    if ( rc == -ENODATA && !io->err )
        return rec_fail(io, layer, rec->type, rec->offset, rc,
                        "truncated at offset %" PRIu64, io->offset);
    return rc;
}

static const uint8_t zeroes[SR_REC_ALIGN];

static uint32_t pad_of(uint64_t len)
{
    return -len & (SR_REC_ALIGN - 1);
}

/* ---- xl save-file header --------------------------------------------- */

int sr_write_xl_hdr(struct sr_io *io, uint32_t mandatory_flags,
                    const void *config, uint32_t config_len)
{
    struct sr_xl_hdr hdr = {
        .byteorder = SR_XL_BYTEORDER,
        .mandatory_flags = mandatory_flags,
    };
    uint32_t len = config_len;
    int rc;

    if ( config_len > SR_REC_LENGTH_MAX )
        return HDR_FAIL(io, "xl header", io->offset, -E2BIG,
                        "config of %" PRIu32 " bytes is too long",
                        config_len);
    memcpy(hdr.magic, SR_XL_MAGIC, SR_XL_MAGIC_LEN);
    if ( config_len )
        hdr.optional_data_len = sizeof(len) + config_len;
    /* A digest that starts here is Poly1305, and the header says so. */
    if ( io->hashing && !io->hash_paused && !io->hashed )
    {
        if ( (rc = sr__io_hash_switch(io, SR_FERRY_TRAILER_POLY1305,
                                      NULL, 0)) )
            return rc;
        hdr.optional_flags |= SR_XL_OPTFLAG_FERRY_POLY1305;
    }
    if ( (rc = sr_io_write(io, &hdr, sizeof(hdr))) || !config_len )
        return rc;
    if ( (rc = sr_io_write(io, &len, sizeof(len))) )
        return rc;
    return sr_io_write(io, config, config_len);
}

int sr_read_xl_hdr(struct sr_io *io, struct sr_xl_hdr *hdr,
                   void **config, uint32_t *config_len)
{
    uint64_t off = io->offset;
    uint32_t len, bad;
    void *buf = NULL;
    int rc;

    *config = NULL;
    *config_len = 0;
    if ( (rc = hdr_read(io, "xl header", off, hdr, sizeof(*hdr))) )
        goto out;
    rc = -EINVAL;
    if ( memcmp(hdr->magic, SR_XL_MAGIC, SR_XL_MAGIC_LEN) )
    {
        HDR_FAIL(io, "xl header", off, rc, "wrong magic number - "
                 "corrupt or for a different tool?");
        goto out;
    }
    if ( hdr->byteorder != SR_XL_BYTEORDER )
    {
        HDR_FAIL(io, "xl header", off, rc, "wrong byte order %#" PRIx32,
                 hdr->byteorder);
        goto out;
    }
    if ( (bad = hdr->mandatory_flags & ~SR_XL_FLAG_ALL) )
    {
        rc = HDR_FAIL(io, "xl header", off, -EOPNOTSUPP,
                      "mandatory flag(s) %#" PRIx32 " not supported; "
                      "need newer xl", bad);
        goto out;
    }
    /* The writer's digest algorithm, if the digest started at the header
     * (else the trailer's algorithm will not match, and say so). */
    if ( (hdr->optional_flags & SR_XL_OPTFLAG_FERRY_POLY1305) &&
         io->hashing && !io->hash_paused && io->hashed == sizeof(*hdr) &&
         (rc = sr__io_hash_switch(io, SR_FERRY_TRAILER_POLY1305, hdr,
                                  sizeof(*hdr))) )
        goto out;
    if ( hdr->optional_data_len > SR_REC_LENGTH_MAX )
    {
        rc = HDR_FAIL(io, "xl header", off, -E2BIG,
                      "optional data length %#" PRIx32 " exceeds max %#x",
                      hdr->optional_data_len, SR_REC_LENGTH_MAX);
        goto out;
    }
    rc = 0;
    if ( !hdr->optional_data_len )
        goto out;
    if ( hdr->optional_data_len < sizeof(len) )
    {
        rc = HDR_FAIL(io, "xl header", off, -EINVAL,
                      "optional data truncated");
        goto out;
    }
    if ( (rc = hdr_read(io, "xl header", off, &len, sizeof(len))) )
        goto out;
    if ( len > hdr->optional_data_len - sizeof(len) )
    {
        rc = HDR_FAIL(io, "xl header", off, -EINVAL,
                      "config length %" PRIu32 " overruns optional data "
                      "of %" PRIu32 " bytes", len, hdr->optional_data_len);
        goto out;
    }
    if ( len > SR_XL_CONFIG_MAX )
    {
        rc = HDR_FAIL(io, "xl header", off, -E2BIG,
                      "config length %" PRIu32 " exceeds max %#x", len,
                      SR_XL_CONFIG_MAX);
        goto out;
    }
    if ( len && !(buf = malloc(len)) )
    {
        rc = HDR_FAIL(io, "xl header", off, -ENOMEM, "out of memory");
        goto out;
    }
    if ( (rc = hdr_read(io, "xl header", off, buf, len)) )
        goto out;
    /* Optional data we do not understand is skipped, as xl does. */
    if ( (rc = sr_io_skip(io, hdr->optional_data_len - sizeof(len) - len)) )
        goto out;
    *config = buf;
    *config_len = len;
    buf = NULL;

 out:
    free(buf);
    return rc;
}

/* ---- libxl header ---------------------------------------------------- */

int sr_write_libxl_hdr(struct sr_io *io)
{
    struct sr_libxl_hdr hdr = {
        .ident = htobe64(SR_LIBXL_IDENT),
        .version = htobe32(SR_LIBXL_VERSION),
        .options = 0,
    };

    return sr_io_write(io, &hdr, sizeof(hdr));
}

int sr_read_libxl_hdr(struct sr_io *io, struct sr_libxl_hdr *hdr)
{
    uint64_t off = io->offset;
    int rc;

    if ( (rc = hdr_read(io, "libxl header", off, hdr, sizeof(*hdr))) )
        return rc;
    hdr->ident = be64toh(hdr->ident);
    hdr->version = be32toh(hdr->version);
    hdr->options = be32toh(hdr->options);
    if ( hdr->ident != SR_LIBXL_IDENT )
        return HDR_FAIL(io, "libxl header", off, -EINVAL,
                        "invalid ident %#" PRIx64, hdr->ident);
    if ( hdr->version != SR_LIBXL_VERSION )
        return HDR_FAIL(io, "libxl header", off, -EOPNOTSUPP,
                        "version %" PRIu32 " not supported (expected %u)",
                        hdr->version, SR_LIBXL_VERSION);
    if ( hdr->options & SR_LIBXL_OPT_BIG_ENDIAN )
        return HDR_FAIL(io, "libxl header", off, -EOPNOTSUPP,
                        "big-endian streams not supported");
    if ( hdr->options & ~(SR_LIBXL_OPT_BIG_ENDIAN | SR_LIBXL_OPT_LEGACY) )
        return HDR_FAIL(io, "libxl header", off, -EINVAL,
                        "reserved option bits %#" PRIx32 " set",
                        hdr->options);
    return 0;
}

/* ---- libxc image and domain headers ---------------------------------- */

int sr_write_libxc_ihdr(struct sr_io *io)
{
    struct sr_libxc_ihdr hdr = {
        .marker = htobe64(SR_IHDR_MARKER),
        .id = htobe32(SR_IHDR_ID),
        .version = htobe32(SR_IHDR_VERSION),
        .options = 0,       /* little-endian */
    };

    return sr_io_write(io, &hdr, sizeof(hdr));
}

int sr_read_libxc_ihdr(struct sr_io *io, struct sr_libxc_ihdr *hdr)
{
    uint64_t off = io->offset;
    int rc;

    if ( (rc = hdr_read(io, "libxc image header", off, hdr, sizeof(*hdr))) )
        return rc;
    hdr->marker = be64toh(hdr->marker);
    hdr->id = be32toh(hdr->id);
    hdr->version = be32toh(hdr->version);
    hdr->options = be16toh(hdr->options);
    hdr->_res1 = be16toh(hdr->_res1);
    hdr->_res2 = be32toh(hdr->_res2);
    if ( hdr->marker != SR_IHDR_MARKER )
        return HDR_FAIL(io, "libxc image header", off, -EINVAL,
                        "invalid marker %#" PRIx64 " (legacy stream?)",
                        hdr->marker);
    if ( hdr->id != SR_IHDR_ID )
        return HDR_FAIL(io, "libxc image header", off, -EINVAL,
                        "invalid id %#" PRIx32, hdr->id);
    if ( hdr->version < SR_IHDR_VERSION_MIN ||
         hdr->version > SR_IHDR_VERSION )
        return HDR_FAIL(io, "libxc image header", off, -EOPNOTSUPP,
                        "version %" PRIu32 " not supported (%u..%u)",
                        hdr->version, SR_IHDR_VERSION_MIN,
                        SR_IHDR_VERSION);
    if ( hdr->options & SR_IHDR_OPT_BIG_ENDIAN )
        return HDR_FAIL(io, "libxc image header", off, -EOPNOTSUPP,
                        "unable to handle big endian streams");
    if ( hdr->options || hdr->_res1 || hdr->_res2 )
        return HDR_FAIL(io, "libxc image header", off, -EINVAL,
                        "reserved bits set");
    return 0;
}

int sr_write_libxc_dhdr(struct sr_io *io, uint32_t xen_major,
                        uint32_t xen_minor)
{
    struct sr_libxc_dhdr hdr = {
        .type = htole32(SR_DHDR_TYPE_X86_PV),
        .page_shift = htole16(SR_PAGE_SHIFT),
        .xen_major = htole32(xen_major),
        .xen_minor = htole32(xen_minor),
    };

    return sr_io_write(io, &hdr, sizeof(hdr));
}

int sr_read_libxc_dhdr(struct sr_io *io, struct sr_libxc_dhdr *hdr)
{
    uint64_t off = io->offset;
    int rc;

    if ( (rc = hdr_read(io, "libxc domain header", off, hdr, sizeof(*hdr))) )
        return rc;
    hdr->type = le32toh(hdr->type);
    hdr->page_shift = le16toh(hdr->page_shift);
    hdr->_res1 = le16toh(hdr->_res1);
    hdr->xen_major = le32toh(hdr->xen_major);
    hdr->xen_minor = le32toh(hdr->xen_minor);
    if ( hdr->type == SR_DHDR_TYPE_X86_HVM )
        return HDR_FAIL(io, "libxc domain header", off, -EOPNOTSUPP,
                        "x86 HVM streams not supported");
    if ( hdr->type != SR_DHDR_TYPE_X86_PV )
        return HDR_FAIL(io, "libxc domain header", off, -EINVAL,
                        "invalid domain type %#" PRIx32, hdr->type);
    if ( hdr->page_shift != SR_PAGE_SHIFT )
        return HDR_FAIL(io, "libxc domain header", off, -EINVAL,
                        "invalid page shift %u (expected %u)",
                        hdr->page_shift, SR_PAGE_SHIFT);
    if ( hdr->_res1 )
        return HDR_FAIL(io, "libxc domain header", off, -EINVAL,
                        "reserved field set");
    return 0;
}

/* ---- writing records ------------------------------------------------- */

int sr_write_recordv(struct sr_io *io, enum sr_layer layer, uint32_t type,
                     const struct iovec *iov, int iovcnt)
{
    struct sr_rhdr rhdr;
    uint64_t len = 0;
    int i, rc;

    if ( io->err )
        return io->err;
    for ( i = 0; i < iovcnt; i++ )
        len += iov[i].iov_len;
    if ( len > SR_REC_LENGTH_MAX )
        return rec_fail(io, layer, type, io->offset, -E2BIG,
                        "length %#" PRIx64 " exceeds max %#x",
                        len, SR_REC_LENGTH_MAX);
    rhdr.type = htole32(type);
    rhdr.length = htole32(len);
    if ( (rc = sr_io_write(io, &rhdr, sizeof(rhdr))) ||
         (rc = sr_io_writev(io, iov, iovcnt)) )
        return rc;
    return sr_io_write(io, zeroes, pad_of(len));
}

int sr_write_record(struct sr_io *io, enum sr_layer layer, uint32_t type,
                    const void *body, uint32_t length)
{
    struct iovec iov = { .iov_base = (void *)body, .iov_len = length };

    return sr_write_recordv(io, layer, type, &iov, 1);
}

/* ---- PAGE_DATA ------------------------------------------------------- */

bool sr_pfinfo_valid(unsigned int type)
{
    return type <= 0xf && (type < 5 || type > 8);
}

bool sr_pfinfo_has_data(unsigned int type)
{
    /* The low three bits are the level; bit 3 is "pinned". */
    return sr_pfinfo_valid(type) && (type & 7) <= 4;
}

int sr_write_page_data(struct sr_io *io, uint32_t count,
                       const uint64_t *pfns, const uint8_t *types,
                       const void *pages)
{
    struct sr_page_data_hdr hdr = { .count = htole32(count) };
    uint64_t *ents = NULL, len;
    uint32_t i, nr_pages = 0;
    struct iovec iov[3];
    int rc;

    if ( io->err )
        return io->err;
    if ( !count )
    {
        rc = rec_fail(io, SR_LIBXC, SR_LIBXC_PAGE_DATA, io->offset,
                      -EINVAL, "no entries");
        goto out;
    }
    if ( count > SR_REC_LENGTH_MAX / 8 )
    {
        rc = rec_fail(io, SR_LIBXC, SR_LIBXC_PAGE_DATA, io->offset,
                      -E2BIG, "%" PRIu32 " entries exceed the length cap",
                      count);
        goto out;
    }
    if ( !(ents = malloc(sizeof(*ents) * count)) )
    {
        rc = rec_fail(io, SR_LIBXC, SR_LIBXC_PAGE_DATA, io->offset,
                      -ENOMEM, "cannot allocate %" PRIu32 " entries", count);
        goto out;
    }
    for ( i = 0; i < count; i++ )
    {
        if ( pfns[i] > SR_PFN_MASK || !sr_pfinfo_valid(types[i]) )
        {
            rc = rec_fail(io, SR_LIBXC, SR_LIBXC_PAGE_DATA, io->offset,
                          -EINVAL, "entry %" PRIu32 ": pfn %#" PRIx64
                          " type %#x not representable", i, pfns[i],
                          types[i]);
            goto out;
        }
        ents[i] = htole64(sr_pfn_entry(pfns[i], types[i]));
        nr_pages += sr_pfinfo_has_data(types[i]);
    }
    len = sizeof(hdr) + 8ULL * count + (uint64_t)SR_PAGE_SIZE * nr_pages;
    iov[0] = (struct iovec){ .iov_base = &hdr, .iov_len = sizeof(hdr) };
    iov[1] = (struct iovec){ .iov_base = ents, .iov_len = 8ULL * count };
    iov[2] = (struct iovec){ .iov_base = (void *)pages,
                             .iov_len = len - iov[0].iov_len
                                        - iov[1].iov_len };
    rc = sr_write_recordv(io, SR_LIBXC, SR_LIBXC_PAGE_DATA, iov, 3);

 out:
    free(ents);
    return rc;
}

int sr_parse_page_data(struct sr_io *io, const struct sr_rec *rec,
                       struct sr_page_data *pd)
{
    const struct sr_page_data_hdr *hdr = (const void *)rec->body;
    uint64_t want;
    uint32_t i, count;

#define PD_FAIL(fmt, ...)                                                 \
    rec_fail(io, SR_LIBXC, rec->type, rec->offset, -EINVAL, fmt,          \
             ##__VA_ARGS__)

    if ( rec->length < sizeof(*hdr) )
        return PD_FAIL("body of %" PRIu32 " bytes too short", rec->length);
    count = le32toh(hdr->count);
    if ( !count )
        return PD_FAIL("no entries");
    if ( hdr->_res1 )
        return PD_FAIL("reserved field set");
    if ( sizeof(*hdr) + 8ULL * count > rec->length )
        return PD_FAIL("%" PRIu32 " entries do not fit in a body of %"
                       PRIu32 " bytes", count, rec->length);
    pd->count = count;
    pd->entries = (const uint64_t *)(rec->body + sizeof(*hdr));
    pd->nr_pages = 0;
    for ( i = 0; i < count; i++ )
    {
        uint64_t e = le64toh(pd->entries[i]);

        if ( e & SR_PFN_RESERVED )
            return PD_FAIL("entry %" PRIu32 " (%#" PRIx64 "): reserved "
                           "bits 52-59 set (pfn beyond 2^52?)", i, e);
        if ( !sr_pfinfo_valid(sr_entry_type(e)) )
            return PD_FAIL("entry %" PRIu32 " (%#" PRIx64 "): invalid "
                           "type %#x", i, e, sr_entry_type(e));
        pd->nr_pages += sr_pfinfo_has_data(sr_entry_type(e));
    }
    want = sizeof(*hdr) + 8ULL * count + (uint64_t)SR_PAGE_SIZE * pd->nr_pages;
    if ( want != rec->length )
        return PD_FAIL("body length %" PRIu32 ", expected %" PRIu64
                       " for %" PRIu32 " entries with %" PRIu32 " pages",
                       rec->length, want, count, pd->nr_pages);
    pd->pages = rec->body_len < rec->length
                ? NULL : rec->body + sizeof(*hdr) + 8ULL * count;
    return 0;
#undef PD_FAIL
}

/* ---- reading records ------------------------------------------------- */

void sr_rec_init(struct sr_rec *rec)
{
    memset(rec, 0, sizeof(*rec));
}

void sr_rec_free(struct sr_rec *rec)
{
    free(rec->body);
    sr_rec_init(rec);
}

/* Is reserved u32 at byte off of the body zero?  (length checked.) */
static bool res32_zero(const struct sr_rec *rec, size_t off)
{
    uint32_t v;

    memcpy(&v, rec->body + off, sizeof(v));
    return !v;
}

/* Fixed lengths and reserved fields of the known libxc records. */
static int check_libxc_body(struct sr_io *io, const struct sr_rec *rec)
{
    const struct sr_x86_pv_info *info = (const void *)rec->body;
    struct sr_page_data pd;
    uint32_t len = rec->length;
    const char *why = NULL;

    switch ( rec->type )
    {
    case SR_LIBXC_END:
    case SR_LIBXC_VERIFY:
    case SR_LIBXC_CHECKPOINT:
    case SR_LIBXC_STATIC_DATA_END:
        if ( len )
            why = "body must be empty";
        break;
    case SR_LIBXC_PAGE_DATA:
        return sr_parse_page_data(io, rec, &pd);
    case SR_LIBXC_X86_PV_INFO:
        if ( len != sizeof(*info) )
            why = "body must be 8 bytes";
        else if ( !((info->guest_width == 8 && info->pt_levels == 4) ||
                    (info->guest_width == 4 && info->pt_levels == 3)) )
            why = "guest width / page-table levels not 8/4 or 4/3";
        else if ( memcmp(info->_res, zeroes, sizeof(info->_res)) )
            why = "reserved bytes set";
        break;
    case SR_LIBXC_X86_PV_P2M_FRAMES:
        if ( len < sizeof(struct sr_x86_pv_p2m_frames) || len % 8 )
            why = "body length not 8 + a multiple of 8";
        break;
    case SR_LIBXC_X86_PV_VCPU_BASIC:
    case SR_LIBXC_X86_PV_VCPU_EXTENDED:
    case SR_LIBXC_X86_PV_VCPU_XSAVE:
    case SR_LIBXC_X86_PV_VCPU_MSRS:
        if ( len < sizeof(struct sr_x86_pv_vcpu_hdr) )
            why = "body shorter than the vcpu header";
        else if ( !res32_zero(rec, 4) )
            why = "reserved field set";
        break;
    case SR_LIBXC_SHARED_INFO:
        if ( len != SR_SHARED_INFO_SIZE )
            why = "body must be one 4096-byte page";
        break;
    case SR_LIBXC_X86_TSC_INFO:
        if ( len != sizeof(struct sr_x86_tsc_info) )
            why = "body must be 24 bytes";
        else if ( !res32_zero(rec, 20) )
            why = "reserved field set";
        break;
    case SR_LIBXC_X86_CPUID_POLICY:
        if ( !len || len % 24 )
            why = "body not a non-zero multiple of 24";
        break;
    case SR_LIBXC_X86_MSR_POLICY:
        if ( !len || len % 16 )
            why = "body not a non-zero multiple of 16";
        break;
    case SR_LIBXC_CHECKPOINT_DIRTY_PFN_LIST:
        if ( len % 8 )
            why = "body not a multiple of 8";
        break;
    case SR_LIBXC_HVM_CONTEXT:
        if ( !len )
            why = "body must not be empty";
        break;
    case SR_LIBXC_HVM_PARAMS:
        if ( len < 8 || len != 8 + 16ULL * le32toh(*(uint32_t *)rec->body) )
            why = "body length does not match its count";
        break;
    }
    return why ? rec_fail(io, SR_LIBXC, rec->type, rec->offset, -EINVAL,
                          "%s (length %" PRIu32 ")", why, len)
               : 0;
}

static int check_libxl_body(struct sr_io *io, const struct sr_rec *rec)
{
    uint32_t len = rec->length;
    const char *why = NULL;

    switch ( rec->type )
    {
    case SR_LIBXL_END:
    case SR_LIBXL_LIBXC_CONTEXT:
    case SR_LIBXL_CHECKPOINT_END:
        if ( len )
            why = "body must be empty";
        break;
    case SR_LIBXL_EMULATOR_XENSTORE_DATA:
    case SR_LIBXL_EMULATOR_CONTEXT:
        if ( len < sizeof(struct sr_libxl_emulator_hdr) )
            why = "body shorter than the emulator header";
        else if ( le32toh(*(uint32_t *)rec->body) > 2 )
            why = "unknown emulator id";
        break;
    case SR_LIBXL_CHECKPOINT_STATE:
        if ( len < sizeof(uint32_t) )
            why = "body shorter than the control id";
        break;
    }
    return why ? rec_fail(io, SR_LIBXL, rec->type, rec->offset, -EINVAL,
                          "%s (length %" PRIu32 ")", why, len)
               : 0;
}

static int rec_reserve(struct sr_rec *rec, size_t need)
{
    uint8_t *p;

    if ( need <= rec->cap )
        return 0;
    /* Fresh memory each growth: the old contents are not needed. */
    if ( !(p = malloc(need)) )
        return -ENOMEM;
    free(rec->body);
    rec->body = p;
    rec->cap = need;
    return 0;
}

/* Step over the next left bytes of rec's body. */
static int rec_skip(struct sr_io *io, enum sr_layer layer,
                    const struct sr_rec *rec, uint32_t left)
{
    uint8_t buf[4096];
    int rc = 0;

    while ( !rc && left )
    {
        uint32_t n = left < sizeof(buf) ? left : sizeof(buf);

        rc = rec_read(io, layer, rec, buf, n);
        left -= n;
    }
    return rc;
}

static int read_padding(struct sr_io *io, enum sr_layer layer,
                        const struct sr_rec *rec)
{
    uint8_t pad[SR_REC_ALIGN];
    uint32_t n = pad_of(rec->length);
    int rc;

    if ( (rc = rec_read(io, layer, rec, pad, n)) )
        return rc;
    if ( memcmp(pad, zeroes, n) )
        return rec_fail(io, layer, rec->type, rec->offset, -EINVAL,
                        "non-zero padding");
    return 0;
}

uint32_t sr_rec_length_bound(enum sr_layer layer, uint32_t type,
                             uint64_t max_pages)
{
    uint64_t bound;

    if ( !max_pages )
        return SR_REC_LENGTH_MAX;
    if ( layer == SR_LIBXC && type == SR_LIBXC_PAGE_DATA )
        bound = sizeof(struct sr_page_data_hdr) +
                max_pages * (8 + SR_PAGE_SIZE);
    else if ( layer == SR_LIBXC && type == SR_LIBXC_X86_PV_P2M_FRAMES )
        bound = sizeof(struct sr_x86_pv_p2m_frames) +
                8 * ((max_pages - 1) / (SR_PAGE_SIZE / 8) + 1);
    else
        bound = SR_REC_SMALL_MAX;
    return bound < SR_REC_LENGTH_MAX ? bound : SR_REC_LENGTH_MAX;
}

/*
 * A PAGE_DATA record whose pages the caller reads (rec->defer_pages):
 * its header and PFN array into body, checked by sr_parse_page_data(),
 * the pages left in the stream.  A body too short for its entries is
 * read no further than its header, which the check then refuses.
 */
static int read_page_data_head(struct sr_io *io, struct sr_rec *rec)
{
    struct sr_page_data_hdr hdr;
    struct sr_page_data pd;
    uint32_t head = rec->length;
    int rc;

    if ( rec->length >= sizeof(hdr) )
    {
        if ( (rc = rec_read(io, SR_LIBXC, rec, &hdr, sizeof(hdr))) )
            return rc;
        head = sizeof(hdr);
        if ( sizeof(hdr) + 8ULL * le32toh(hdr.count) <= rec->length )
            head += 8 * le32toh(hdr.count);
        if ( rec_reserve(rec, head) )
            return rec_fail(io, SR_LIBXC, rec->type, rec->offset, -ENOMEM,
                            "cannot allocate %" PRIu32 " bytes", head);
        memcpy(rec->body, &hdr, sizeof(hdr));
        if ( (rc = rec_read(io, SR_LIBXC, rec, rec->body + sizeof(hdr),
                            head - sizeof(hdr))) )
            return rc;
    }
    else if ( (rc = rec_read(io, SR_LIBXC, rec, rec->body, head)) )
        return rc;
    rec->body_len = head;
    rec->deferred = rec->length - head;
    return sr_parse_page_data(io, rec, &pd);
}

int sr_read_page_data_pages(struct sr_io *io, struct sr_rec *rec,
                            void *dst)
{
    uint32_t n = rec->deferred;
    int rc;

    rec->deferred = 0;
    if ( (rc = rec_read(io, SR_LIBXC, rec, dst, n)) )
        return rc;
    return read_padding(io, SR_LIBXC, rec);
}

int sr_read_record(struct sr_io *io, enum sr_layer layer,
                   struct sr_rec *rec)
{
    uint32_t bound;

    struct sr_rhdr rhdr;
    int rc;

    /* Pages of the last record the caller left unread. */
    if ( rec->deferred )
    {
        uint32_t n = rec->deferred;

        rec->deferred = 0;
        if ( (rc = rec_skip(io, SR_LIBXC, rec, n)) ||
             (rc = read_padding(io, SR_LIBXC, rec)) )
            return rc;
    }
    for ( ;; )
    {
        rec->offset = io->offset;
        rc = sr__io_read_eof(io, &rhdr, sizeof(rhdr));
        if ( rc == -ENODATA && !io->err )
            return sr_io_fail(io, rc, "%s record header at offset %" PRIu64
                              ": truncated at offset %" PRIu64,
                              layer == SR_LIBXC ? "libxc" : "libxl",
                              rec->offset, io->offset);
        if ( rc )
            return rc;
        rec->type = le32toh(rhdr.type);
        rec->length = le32toh(rhdr.length);
        if ( rec->length > SR_REC_LENGTH_MAX )
            return rec_fail(io, layer, rec->type, rec->offset, -E2BIG,
                            "length %#" PRIx32 " exceeds max %#x",
                            rec->length, SR_REC_LENGTH_MAX);
        if ( rec_known(layer, rec->type) )
        {
            /* Before the body is allocated: what the domain admits. */
            bound = sr_rec_length_bound(layer, rec->type, rec->max_pages);
            if ( rec->length > bound )
                return rec_fail(io, layer, rec->type, rec->offset, -E2BIG,
                                "length %#" PRIx32 " exceeds %#" PRIx32
                                ", the most a domain of %" PRIu64
                                " MiB admitted here can need", rec->length,
                                bound, rec->max_pages >> 8);
            break;
        }
        if ( !(rec->type & SR_REC_TYPE_OPTIONAL) )
            return rec_fail(io, layer, rec->type, rec->offset, -EOPNOTSUPP,
                            "not supported");
        /* Unknown but optional: step over it, padding still checked. */
        if ( (rc = rec_skip(io, layer, rec, rec->length)) ||
             (rc = read_padding(io, layer, rec)) )
            return rc;
    }
    /* At least 8 bytes so that empty records still have a body. */
    if ( rec_reserve(rec, 8) )
        return rec_fail(io, layer, rec->type, rec->offset, -ENOMEM,
                        "cannot allocate 8 bytes");
    if ( layer == SR_LIBXC && rec->type == SR_LIBXC_PAGE_DATA &&
         rec->defer_pages )
        return read_page_data_head(io, rec);
    rec->body_len = rec->length;
    if ( rec_reserve(rec, rec->length < 8 ? 8 : rec->length) )
        return rec_fail(io, layer, rec->type, rec->offset, -ENOMEM,
                        "cannot allocate %" PRIu32 " bytes", rec->length);
    if ( (rc = rec_read(io, layer, rec, rec->body, rec->length)) ||
         (rc = read_padding(io, layer, rec)) )
        return rc;
    return layer == SR_LIBXC ? check_libxc_body(io, rec)
                             : check_libxl_body(io, rec);
}

/* ---- ferry's trailer ------------------------------------------------ */

/*
 * The running hash covers everything moved since sr_io_hash_start(), which
 * the engines call before the first byte, so the offset is `covered`.
 */
int sr_write_ferry_trailer(struct sr_io *io)
{
    struct sr_ferry_trailer t = {
        .version = htole32(SR_FERRY_TRAILER_VERSION),
        .algorithm = htole32(sr_io_hash_alg(io)),
        .covered = htole64(sr_io_offset(io)),
    };
    int rc;

    memcpy(t.magic, SR_FERRY_TRAILER_MAGIC, sizeof(t.magic));
    rc = sr_io_hash_final(io, t.digest);
    if ( rc )
        return rc;
    return sr_io_write(io, &t, sizeof(t));
}

/*
 * End of stream right here is Xen's file: *present = false.  A trailer is
 * checked field by field, then the digest; nothing may follow it.
 */
int sr_read_ferry_trailer(struct sr_io *io, bool *present)
{
    struct sr_ferry_trailer t;
    uint8_t digest[SR_SHA256_LEN];
    uint64_t covered = sr_io_offset(io);
    uint8_t extra;
    int rc;

    *present = false;
    rc = sr_io_hash_final(io, digest);
    if ( rc )
        return rc;
    rc = sr__io_read_eof(io, &t, sizeof(t));
    if ( rc == -ENODATA && !sr_io_error(io) )
    {
        if ( sr_io_offset(io) == covered )
            return 0;
        return sr_io_fail(io, -EINVAL, "ferry digest trailer truncated at"
                          " offset %" PRIu64, sr_io_offset(io));
    }
    if ( rc )
        return rc;
    *present = true;
    if ( memcmp(t.magic, SR_FERRY_TRAILER_MAGIC, sizeof(t.magic)) )
        return sr_io_fail(io, -EINVAL, "bytes after the libxl END record at"
                          " offset %" PRIu64 " are not a ferry digest"
                          " trailer", covered);
    if ( le32toh(t.version) != SR_FERRY_TRAILER_VERSION ||
         (le32toh(t.algorithm) != SR_FERRY_TRAILER_SHA256 &&
          le32toh(t.algorithm) != SR_FERRY_TRAILER_POLY1305) )
        return sr_io_fail(io, -EOPNOTSUPP, "ferry digest trailer version %u"
                          " algorithm %u not supported",
                          le32toh(t.version), le32toh(t.algorithm));
    /* The header named the algorithm the stream was hashed with. */
    if ( le32toh(t.algorithm) != sr_io_hash_alg(io) )
        return sr_io_fail(io, -EINVAL, "ferry digest trailer algorithm %u"
                          " but the xl header announced %u: the file is"
                          " corrupted", le32toh(t.algorithm),
                          sr_io_hash_alg(io));
    if ( le64toh(t.covered) != covered )
        return sr_io_fail(io, -EINVAL, "ferry digest trailer covers %"
                          PRIu64 " bytes but the stream is %" PRIu64
                          ": the file is corrupted",
                          (uint64_t)le64toh(t.covered), covered);
    if ( memcmp(t.digest, digest, sizeof(digest)) )
        return sr_io_fail(io, -EILSEQ,
                          "digest mismatch: the file is corrupted");
    rc = sr__io_read_eof(io, &extra, 1);
    if ( rc == -ENODATA && !sr_io_error(io) )
        return 0;
    if ( rc )
        return rc;
    return sr_io_fail(io, -EINVAL, "unexpected bytes after the ferry digest"
                      " trailer at offset %" PRIu64, covered + sizeof(t));
}
