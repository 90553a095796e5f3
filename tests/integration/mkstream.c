/* SPDX-License-Identifier: MIT */
/*
 * mkstream: rewrite a good save file into a minimal or a hostile one, for
 * the hostile-stream tests (t0015), the stale page tables of t0017 and the
 * fuzz corpus.  No host needed.
 *
 *   mkstream dump IN
 *   mkstream l1-entry IN
 *   mkstream rewrite IN OUT [--digest=recompute|keep|none]
 *                    [--preamble[=KIB]] OP [ARG]
 *
 * The input is parsed record by record with libsr's reader (sr.h) into a
 * list of items (raw headers and records of both layers); one operation
 * changes the list, the list is written back with libsr's writers, then a
 * byte-level operation may patch the bytes, and ferry's digest trailer is
 * recomputed over the result (default), copied from the input ("keep",
 * which makes any change a digest mismatch) or left out ("none", Xen's
 * form).  A hostile stream with a correct digest must be refused by the
 * restore checks themselves, which is what "recompute" is for.
 *
 * --preamble puts a migration preamble line before the stream, as xl
 * migrate sends it to xl migrate-receive: name, uuid and vCPUs from the
 * (rewritten) config, and its max_memkb, or KIB (a preamble that claims
 * another size than the stream's config).  The offsets printed do not
 * count it.
 *
 * On success, rewrite prints one line "OFFSET NAME": the byte offset in
 * OUT of the record (or header) it changed, and its name, which is what the
 * restorer's message must name.  dump prints every item as
 * "LAYER NAME OFFSET LENGTH"; l1-entry prints the first present entry of
 * the first L1 table, as its last copy has it (PFN, slot and value):
 * what resend-l1-avail changes in a last pass of its own.
 *
 * Invariant: apart from the one operation, OUT is byte for byte what the
 * saver wrote (libsr's writers produce the same padding and layout).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../saverestore/sr.h"
#include "include/public/abi.h"

/* One item of the stream: a raw header or a record of either layer. */
struct item
{
    bool is_rec;
    enum sr_layer layer;
    uint32_t type;
    const char *what;           /* raw items: "libxc image header", ... */
    uint8_t *data;              /* raw bytes or record body (owned) */
    size_t len;
    bool mark;                  /* the item the operation changed */
    uint64_t offset;            /* in the output, set when written */
};

struct stream
{
    struct item *it;
    size_t n, cap;
    uint8_t *trailer;           /* the input's trailer bytes, if any */
    size_t trailer_len;
    char *config;               /* the xl header's JSON config, NUL ended */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                     noreturn));
static uint64_t arg_u64(const char *a);

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mkstream: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if ( !p )
        die("out of memory");
    return p;
}

static uint8_t *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, r;

    if ( !f )
        die("%s: %s", path, strerror(errno));
    do {
        if ( n == cap )
        {
            cap = cap ? cap * 2 : 1 << 20;
            buf = realloc(buf, cap);
            if ( !buf )
                die("out of memory");
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while ( r );
    if ( ferror(f) )
        die("%s: read error", path);
    fclose(f);
    *len = n;
    return buf;
}

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

static struct item *add(struct stream *s, size_t at)
{
    if ( s->n == s->cap )
    {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->it = realloc(s->it, s->cap * sizeof(*s->it));
        if ( !s->it )
            die("out of memory");
    }
    memmove(&s->it[at + 1], &s->it[at], (s->n - at) * sizeof(*s->it));
    s->n++;
    memset(&s->it[at], 0, sizeof(s->it[at]));
    return &s->it[at];
}

static void add_raw(struct stream *s, const char *what, const uint8_t *buf,
                    uint64_t from, uint64_t to)
{
    struct item *i = add(s, s->n);

    i->what = what;
    i->len = to - from;
    i->data = xmalloc(i->len);
    memcpy(i->data, buf + from, i->len);
}

static void add_rec(struct stream *s, enum sr_layer layer,
                    const struct sr_rec *rec)
{
    struct item *i = add(s, s->n);

    i->is_rec = true;
    i->layer = layer;
    i->type = rec->type;
    i->len = rec->length;
    i->data = xmalloc(rec->length);
    memcpy(i->data, rec->body, rec->length);
}

static void parse(struct stream *s, const uint8_t *buf, size_t len)
{
    struct sr_io *io;
    struct sr_xl_hdr xh;
    struct sr_libxl_hdr lh;
    struct sr_libxc_ihdr ih;
    struct sr_libxc_dhdr dh;
    struct sr_rec rec;
    void *config;
    uint32_t config_len;
    uint64_t off;

    if ( sr_io_open_mem_reader(&io, buf, len) )
        die("cannot open a memory reader");
    sr_rec_init(&rec);
    if ( sr_read_xl_hdr(io, &xh, &config, &config_len) )
        goto bad;
    s->config = xmalloc(config_len + 1);
    memcpy(s->config, config, config_len);
    s->config[config_len] = '\0';
    free(config);
    add_raw(s, "xl header", buf, 0, sr_io_offset(io));
    off = sr_io_offset(io);
    if ( sr_read_libxl_hdr(io, &lh) )
        goto bad;
    add_raw(s, "libxl header", buf, off, sr_io_offset(io));
    for ( ;; )
    {
        if ( sr_read_record(io, SR_LIBXL, &rec) )
            goto bad;
        add_rec(s, SR_LIBXL, &rec);
        if ( rec.type == SR_LIBXL_END )
            break;
        if ( rec.type != SR_LIBXL_LIBXC_CONTEXT )
            continue;
        off = sr_io_offset(io);
        if ( sr_read_libxc_ihdr(io, &ih) )
            goto bad;
        add_raw(s, "libxc image header", buf, off, sr_io_offset(io));
        off = sr_io_offset(io);
        if ( sr_read_libxc_dhdr(io, &dh) )
            goto bad;
        add_raw(s, "libxc domain header", buf, off, sr_io_offset(io));
        do {
            if ( sr_read_record(io, SR_LIBXC, &rec) )
                goto bad;
            add_rec(s, SR_LIBXC, &rec);
        } while ( rec.type != SR_LIBXC_END );
    }
    off = sr_io_offset(io);
    s->trailer_len = len - off;
    s->trailer = xmalloc(s->trailer_len);
    memcpy(s->trailer, buf + off, s->trailer_len);
    sr_rec_free(&rec);
    sr_io_close(io);
    return;
 bad:
    die("input: %s", sr_io_errmsg(io));
}

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

static const char *item_name(const struct item *i)
{
    return i->is_rec ? sr_rec_name(i->layer, i->type) : i->what;
}

/* The stream without a trailer, into a malloc'd buffer. */
static uint8_t *serialise(struct stream *s, size_t *len)
{
    struct sr_io *io;
    const uint8_t *data;
    uint8_t *out;
    int rc = 0;

    if ( sr_io_open_mem_writer(&io) )
        die("cannot open a memory writer");
    for ( size_t k = 0; k < s->n && !rc; k++ )
    {
        struct item *i = &s->it[k];

        i->offset = sr_io_offset(io);
        rc = i->is_rec ? sr_write_record(io, i->layer, i->type, i->data,
                                         i->len)
                       : sr_io_write(io, i->data, i->len);
    }
    if ( rc )
        die("writing: %s", sr_io_errmsg(io));
    data = sr_io_mem_data(io, len);
    out = xmalloc(*len);
    memcpy(out, data, *len);
    sr_io_close(io);
    return out;
}

/*
 * ferry's trailer over @buf, as a reader computes it: the xl header may
 * choose the digest (SR_XL_OPTFLAG_FERRY_POLY1305), so the bytes are read
 * back through sr_read_xl_hdr, which follows it, and the rest skipped
 * under the running digest.  A header that does not parse leaves it at
 * SHA-256, as a reader would fail on it before the trailer anyway.
 */
static void make_trailer(const uint8_t *buf, size_t len,
                         struct sr_ferry_trailer *t)
{
    struct sr_xl_hdr xh;
    struct sr_io *io;
    void *config = NULL;
    uint32_t config_len;

    if ( sr_io_open_mem_reader(&io, buf, len) || sr_io_hash_start(io) )
        die("cannot open a memory reader");
    if ( sr_read_xl_hdr(io, &xh, &config, &config_len) )
    {
        sr_io_close(io);
        if ( sr_io_open_mem_reader(&io, buf, len) || sr_io_hash_start(io) )
            die("cannot open a memory reader");
    }
    free(config);
    if ( sr_io_skip(io, len - sr_io_offset(io)) )
        die("digest: %s", sr_io_errmsg(io));
    memset(t, 0, sizeof(*t));
    memcpy(t->magic, SR_FERRY_TRAILER_MAGIC, sizeof(t->magic));
    t->version = htole32(SR_FERRY_TRAILER_VERSION);
    t->algorithm = htole32(sr_io_hash_alg(io));
    t->covered = htole64(len);
    if ( sr_io_hash_final(io, t->digest) )
        die("digest: %s", sr_io_errmsg(io));
    sr_io_close(io);
}

static void write_preamble(FILE *f, const struct stream *s,
                           const char *kib);

static void save(const char *path, const uint8_t *buf, size_t len,
                 const char *digest, const struct stream *s,
                 bool preamble, const char *preamble_kib)
{
    struct sr_ferry_trailer t;
    FILE *f = fopen(path, "wb");

    if ( f && preamble )
        write_preamble(f, s, preamble_kib);
    if ( !f || fwrite(buf, 1, len, f) != len )
        die("%s: %s", path, strerror(errno));
    if ( !strcmp(digest, "recompute") )
    {
        make_trailer(buf, len, &t);
        if ( fwrite(&t, sizeof(t), 1, f) != 1 )
            die("%s: %s", path, strerror(errno));
    }
    else if ( !strcmp(digest, "keep") )
    {
        if ( s->trailer_len &&
             fwrite(s->trailer, 1, s->trailer_len, f) != s->trailer_len )
            die("%s: %s", path, strerror(errno));
    }
    else if ( strcmp(digest, "none") )
        die("--digest must be recompute, keep or none");
    if ( fclose(f) )
        die("%s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------------
 * What is in the stream
 * ------------------------------------------------------------------------ */

static struct item *first(struct stream *s, enum sr_layer layer,
                          uint32_t type)
{
    for ( size_t k = 0; k < s->n; k++ )
        if ( s->it[k].is_rec && s->it[k].layer == layer &&
             s->it[k].type == type )
            return &s->it[k];
    die("no %s record in the input", sr_rec_name(layer, type));
}

static struct item *raw(struct stream *s, const char *what)
{
    for ( size_t k = 0; k < s->n; k++ )
        if ( !s->it[k].is_rec && !strcmp(s->it[k].what, what) )
            return &s->it[k];
    die("no %s in the input", what);
}

static uint64_t max_pfn(struct stream *s)
{
    const struct item *i = first(s, SR_LIBXC, SR_LIBXC_X86_PV_P2M_FRAMES);
    struct sr_x86_pv_p2m_frames h;

    memcpy(&h, i->data, sizeof(h));
    return le32toh(h.end_pfn);
}

static struct vcpu_guest_context *vcpu0(struct stream *s, struct item **ip)
{
    struct item *i = first(s, SR_LIBXC, SR_LIBXC_X86_PV_VCPU_BASIC);

    if ( i->len != 8 + sizeof(struct vcpu_guest_context) )
        die("vCPU 0's context is not a 64-bit one");
    *ip = i;
    return (struct vcpu_guest_context *)(i->data + 8);
}

static bool is_page_data(const struct item *i)
{
    return i->is_rec && i->layer == SR_LIBXC &&
           i->type == SR_LIBXC_PAGE_DATA;
}

/*
 * The next PAGE_DATA record of s at index *k or after, *k then past it;
 * NULL at the end.  Walk them all with
 * for ( size_t k = 0; (i = next_page_data(s, &k)); ).
 */
static struct item *next_page_data(struct stream *s, size_t *k)
{
    while ( *k < s->n )
    {
        struct item *i = &s->it[(*k)++];

        if ( is_page_data(i) )
            return i;
    }
    return NULL;
}

/* A PAGE_DATA body: count, entries, then the data pages. */
static uint32_t pd_count(const struct item *i)
{
    uint32_t c;

    memcpy(&c, i->data, 4);
    return le32toh(c);
}

static uint64_t pd_entry(const struct item *i, uint32_t e)
{
    uint64_t v;

    memcpy(&v, i->data + 8 + 8ULL * e, 8);
    return le64toh(v);
}

/* The data page of entry e, or NULL for a type without data. */
static uint64_t *pd_page(const struct item *i, uint32_t e)
{
    uint32_t p = 0;

    if ( !sr_pfinfo_has_data(sr_entry_type(pd_entry(i, e))) )
        return NULL;
    for ( uint32_t k = 0; k < e; k++ )
        p += sr_pfinfo_has_data(sr_entry_type(pd_entry(i, k)));
    return (uint64_t *)(i->data + 8 + 8ULL * pd_count(i) +
                        (size_t)SR_PAGE_SIZE * p);
}

/* Remove entry e of a PAGE_DATA record (and its page). */
static void pd_remove(struct item *i, uint32_t e)
{
    uint32_t count = pd_count(i) - 1;
    uint8_t *page = (uint8_t *)pd_page(i, e);
    uint8_t *ent = i->data + 8 + 8ULL * e;
    size_t tail;

    if ( page )
    {
        tail = i->len - (page + SR_PAGE_SIZE - i->data);
        memmove(page, page + SR_PAGE_SIZE, tail);
        i->len -= SR_PAGE_SIZE;
    }
    memmove(ent, ent + 8, i->len - (ent + 8 - i->data));
    i->len -= 8;
    count = htole32(count);
    memcpy(i->data, &count, 4);
}

/* Find the entry of a PFN: its record and index; false if not sent. */
static bool find_pfn(struct stream *s, uint64_t pfn, struct item **ip,
                     uint32_t *ep)
{
    struct item *i;

    for ( size_t k = 0; (i = next_page_data(s, &k)); )
    {
        for ( uint32_t e = 0; e < pd_count(i); e++ )
            if ( sr_entry_pfn(pd_entry(i, e)) == pfn )
            {
                *ip = i;
                *ep = e;
                return true;
            }
    }
    return false;
}

/* Whether a PFN is one the vCPU context or the P2M frame list names. */
static bool special_pfn(struct stream *s, uint64_t pfn)
{
    const struct item *f = first(s, SR_LIBXC, SR_LIBXC_X86_PV_P2M_FRAMES);
    struct vcpu_guest_context *c;
    struct item *vi;

    c = vcpu0(s, &vi);
    if ( pfn == c->user_regs.rdx || pfn == xen_cr3_to_pfn(c->ctrlreg[3]) )
        return true;
    for ( unsigned int g = 0; g < 16; g++ )
        if ( pfn == c->gdt_frames[g] )
            return true;
    for ( size_t o = 8; o + 8 <= f->len; o += 8 )
    {
        uint64_t p;

        memcpy(&p, f->data + o, 8);
        if ( le64toh(p) == pfn )
            return true;
    }
    return false;
}

/* The first page table of a level, in stream order, with a present
 * entry; its record, entry and the slot of that entry. */
static uint64_t *find_table(struct stream *s, unsigned int level,
                            struct item **ip, unsigned int *slot)
{
    struct item *i;

    for ( size_t k = 0; (i = next_page_data(s, &k)); )
    {
        for ( uint32_t e = 0; e < pd_count(i); e++ )
        {
            uint64_t *page = pd_page(i, e);

            if ( !page || (sr_entry_type(pd_entry(i, e)) & 7) != level )
                continue;
            for ( unsigned int n = 0; n < 512; n++ )
                if ( page[n] & _PAGE_PRESENT )
                {
                    *ip = i;
                    *slot = n;
                    return page;
                }
        }
    }
    die("no L%u table with a present entry in the input", level);
}

/* ------------------------------------------------------------------------
 * Operations on the list of records
 * ------------------------------------------------------------------------ */

static uint32_t libxc_type(const char *name)
{
    char *end;
    unsigned long v = strtoul(name, &end, 0);

    if ( !*end && end != name )
        return v;
    for ( uint32_t t = 0; t < 0x20; t++ )
        if ( !strcmp(sr_libxc_rec_name(t), name) )
            return t;
    die("unknown libxc record type %s", name);
}

static void drop_type(struct stream *s, uint32_t type)
{
    size_t k = 0;

    while ( k < s->n )
    {
        struct item *i = &s->it[k];

        if ( i->is_rec && i->layer == SR_LIBXC && i->type == type )
        {
            free(i->data);
            memmove(i, i + 1, (s->n - k - 1) * sizeof(*i));
            s->n--;
        }
        else
            k++;
    }
}

/* What Xen's minimal PV stream does not need (reference 1.8). */
static void op_minimal(struct stream *s)
{
    static const uint32_t drop[] = {
        SR_LIBXC_X86_TSC_INFO, SR_LIBXC_SHARED_INFO,
        SR_LIBXC_X86_PV_VCPU_EXTENDED, SR_LIBXC_X86_PV_VCPU_XSAVE,
        SR_LIBXC_X86_PV_VCPU_MSRS, SR_LIBXC_X86_CPUID_POLICY,
        SR_LIBXC_X86_MSR_POLICY,
    };

    for ( size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++ )
        drop_type(s, drop[k]);
    first(s, SR_LIBXC, SR_LIBXC_END)->mark = true;
}

/*
 * A small stream for a fuzz corpus: of the memory only the page tables
 * and the first data page stay (the guest will not run, but every record
 * type and layer of the original is there, with real tables in them).
 */
static void op_shrink(struct stream *s)
{
    bool first_data = true;
    size_t k = 0;

    while ( k < s->n )
    {
        struct item *i = &s->it[k];
        uint32_t e = 0;

        if ( !is_page_data(i) )
        {
            k++;
            continue;
        }
        while ( e < pd_count(i) )
        {
            unsigned int t = sr_entry_type(pd_entry(i, e));

            if ( (t & 7) >= 1 && (t & 7) <= 4 )
                e++;
            else if ( first_data && t == SR_PFINFO_NOTAB )
            {
                first_data = false;
                e++;
            }
            else if ( pd_count(i) > 1 )
                pd_remove(i, e);
            else
                break;
        }
        if ( e == 0 )
        {
            free(i->data);
            memmove(i, i + 1, (s->n - k - 1) * sizeof(*i));
            s->n--;
        }
        else
            k++;
    }
    first(s, SR_LIBXC, SR_LIBXC_END)->mark = true;
}

/* A record of an unknown type, just before the first PAGE_DATA (libxc)
 * or the libxl END (libxl). */
static void op_inject(struct stream *s, enum sr_layer layer, uint32_t type)
{
    uint32_t before = layer == SR_LIBXC ? SR_LIBXC_PAGE_DATA : SR_LIBXL_END;
    struct item *i = first(s, layer, before);

    i = add(s, i - s->it);
    i->is_rec = true;
    i->layer = layer;
    i->type = type;
    i->len = 12;
    i->data = xmalloc(i->len);
    memset(i->data, 0x5a, i->len);
    i->mark = true;
}

/* The last entry of the last PAGE_DATA names the PFN past the P2M. */
static void op_pfn_beyond(struct stream *s)
{
    struct item *i = NULL;
    uint32_t last;
    uint64_t e;

    for ( size_t k = 0; k < s->n; k++ )
        if ( is_page_data(&s->it[k]) )
            i = &s->it[k];
    if ( !i )
        die("no PAGE_DATA record in the input");
    last = pd_count(i) - 1;
    e = htole64(sr_pfn_entry(max_pfn(s) + 1,
                             sr_entry_type(pd_entry(i, last))));
    memcpy(i->data + 8 + 8ULL * last, &e, 8);
    i->mark = true;
}

/* An L1 entry names a data page that the stream then never sends. */
static void op_unsent(struct stream *s)
{
    struct item *i;

    for ( size_t k = 0; (i = next_page_data(s, &k)); )
    {
        struct item *di;
        uint32_t de;

        for ( uint32_t e = 0; e < pd_count(i); e++ )
        {
            uint64_t *page = pd_page(i, e);

            if ( !page || (sr_entry_type(pd_entry(i, e)) & 7) != 1 )
                continue;
            for ( unsigned int n = 0; n < 512; n++ )
            {
                uint64_t pfn = (page[n] & 0x000ffffffffff000ULL) >> 12;

                if ( !(page[n] & _PAGE_PRESENT) || special_pfn(s, pfn) ||
                     !find_pfn(s, pfn, &di, &de) ||
                     sr_entry_type(pd_entry(di, de)) != SR_PFINFO_NOTAB )
                    continue;
                i->mark = true;
                fprintf(stderr, "mkstream: L1 pfn %#" PRIx64 "[%u] names "
                        "pfn %#" PRIx64 ", removed from the stream\n",
                        sr_entry_pfn(pd_entry(i, e)), n, pfn);
                pd_remove(di, de);
                return;
            }
        }
    }
    die("no L1 entry naming a plain data page");
}

/* The first L1 entry that maps a plain data page: that page's PFN. */
static uint64_t mapped_data_pfn(struct stream *s)
{
    struct item *i, *di;
    unsigned int slot;
    uint32_t de;
    uint64_t *page = find_table(s, 1, &i, &slot);

    for ( unsigned int n = slot; n < 512; n++ )
    {
        uint64_t pfn = (page[n] & 0x000ffffffffff000ULL) >> 12;

        if ( (page[n] & _PAGE_PRESENT) && !special_pfn(s, pfn) &&
             find_pfn(s, pfn, &di, &de) &&
             sr_entry_type(pd_entry(di, de)) == SR_PFINFO_NOTAB )
            return pfn;
    }
    die("no L1 entry naming a plain data page");
}

/* An L4 entry names a data page the guest maps writable: the frame can
 * never be typed L3, so the hypervisor's validation must fail. */
static void op_l4_to_data(struct stream *s)
{
    uint64_t pfn = mapped_data_pfn(s);
    struct item *i;
    unsigned int slot;
    uint64_t *page = find_table(s, 4, &i, &slot);

    page[slot] = (page[slot] & ~0x000ffffffffff000ULL) | (pfn << 12);
    i->mark = true;
}

/* The first P2M frame is said to be the L4 table (cr3's page). */
static void op_p2m_frame_table(struct stream *s)
{
    struct item *f = first(s, SR_LIBXC, SR_LIBXC_X86_PV_P2M_FRAMES), *vi;
    uint64_t pfn = htole64(xen_cr3_to_pfn(vcpu0(s, &vi)->ctrlreg[3]));

    memcpy(f->data + 8, &pfn, 8);
    f->mark = true;
}

static void op_pte(struct stream *s, unsigned int level, uint64_t bits)
{
    struct item *i;
    unsigned int slot;
    uint64_t *page = find_table(s, level, &i, &slot);

    page[slot] |= bits;
    i->mark = true;
}

/*
 * The first L1 table in stream order with a present entry: its record,
 * entry index and the slot of that entry.
 */
static uint64_t *first_l1(struct stream *s, struct item **ip, uint32_t *ep,
                          unsigned int *slot)
{
    for ( size_t k = 0; k < s->n; k++ )
    {
        struct item *i = &s->it[k];

        if ( !i->is_rec || i->layer != SR_LIBXC ||
             i->type != SR_LIBXC_PAGE_DATA )
            continue;
        for ( uint32_t e = 0; e < pd_count(i); e++ )
        {
            uint64_t *page = pd_page(i, e);

            if ( !page || (sr_entry_type(pd_entry(i, e)) & 7) != 1 )
                continue;
            for ( unsigned int n = 0; n < 512; n++ )
                if ( page[n] & _PAGE_PRESENT )
                {
                    *ip = i;
                    *ep = e;
                    *slot = n;
                    return page;
                }
        }
    }
    die("no L1 table with a present entry in the input");
}

/*
 * A last pass that sends the first L1 table again, as a live stream does
 * for a table the guest changed while it was being sent: one PAGE_DATA
 * record after the last one, its entry ORed with bits (a software bit the
 * guest may set, or a flag Xen refuses).
 */
static void op_resend_l1(struct stream *s, uint64_t bits)
{
    struct item *i, *r;
    uint32_t e, one = htole32(1), zero = 0;
    unsigned int slot;
    uint64_t *page = first_l1(s, &i, &e, &slot), ent = htole64(pd_entry(i, e));
    size_t at = 0;

    for ( size_t k = 0; k < s->n; k++ )
        if ( s->it[k].is_rec && s->it[k].layer == SR_LIBXC &&
             s->it[k].type == SR_LIBXC_PAGE_DATA )
            at = k + 1;
    r = add(s, at);
    r->is_rec = true;
    r->layer = SR_LIBXC;
    r->type = SR_LIBXC_PAGE_DATA;
    r->len = 16 + SR_PAGE_SIZE;
    r->data = xmalloc(r->len);
    memcpy(r->data, &one, 4);
    memcpy(r->data + 4, &zero, 4);
    memcpy(r->data + 8, &ent, 8);
    /* i may have moved with the insertion: the page was copied first. */
    memcpy(r->data + 16, page, SR_PAGE_SIZE);
    ((uint64_t *)(r->data + 16))[slot] |= bits;
    r->mark = true;
}

static void op_vcpu(struct stream *s, bool gdt)
{
    struct item *i;
    struct vcpu_guest_context *c = vcpu0(s, &i);
    uint64_t outside = max_pfn(s) + 0x100;

    if ( gdt )
    {
        if ( !c->gdt_ents )
            c->gdt_ents = 16;
        c->gdt_frames[0] = outside;
    }
    else
        c->ctrlreg[3] = xen_pfn_to_cr3(outside);
    i->mark = true;
}

/*
 * The P2M claims @pfns PFNs (end_pfn = pfns - 1, so at most 2^32): its
 * frame list grows by copies of its last frame, so that only the size is
 * wrong.  For 2^32 the record is 64 MiB, for 2^27 2 MiB.  With @tail the
 * record describes only the last frame's range (start_pfn near end_pfn):
 * a short record that still claims the whole size.
 */
static void op_p2m_claim(struct stream *s, uint64_t pfns, bool tail)
{
    struct item *f = first(s, SR_LIBXC, SR_LIBXC_X86_PV_P2M_FRAMES);
    struct sr_x86_pv_p2m_frames h;
    uint64_t old, count, last;
    uint8_t *body;

    if ( !pfns || pfns > (1ULL << 32) )
        die("p2m-claim: 1 to 2^32 PFNs");
    memcpy(&h, f->data, sizeof(h));
    old = (f->len - sizeof(h)) / 8;
    if ( !old )
        die("p2m-claim: the P2M names no frame");
    h.end_pfn = htole32((uint32_t)(pfns - 1));
    if ( tail )
    {
        h.start_pfn = htole32((uint32_t)((pfns - 1) / 512 * 512));
        old = 1;
    }
    count = (pfns - 1) / 512 - le32toh(h.start_pfn) / 512 + 1;
    if ( count < old )
        die("p2m-claim: %" PRIu64 " PFNs is less than the P2M has", pfns);
    body = xmalloc(sizeof(h) + count * 8);
    memcpy(body, &h, sizeof(h));
    memcpy(body + sizeof(h), f->data + sizeof(h), old * 8);
    memcpy(&last, f->data + sizeof(h) + (old - 1) * 8, 8);
    for ( uint64_t i = old; i < count; i++ )
        memcpy(body + sizeof(h) + i * 8, &last, 8);
    free(f->data);
    f->data = body;
    f->len = sizeof(h) + count * 8;
    f->mark = true;
}

/* Where the value of "key" starts in the config, or NULL. */
static const char *config_value(const char *config, const char *key)
{
    char want[64];
    const char *p;

    snprintf(want, sizeof(want), "\"%s\"", key);
    if ( !(p = strstr(config, want)) )
        return NULL;
    p += strlen(want);
    p += strspn(p, " \t\n");
    if ( *p++ != ':' )
        return NULL;
    return p + strspn(p, " \t\n");
}

static uint64_t config_u64(const char *config, const char *key)
{
    const char *p = config_value(config, key);
    char *end;
    uint64_t v;

    if ( !p )
        die("the config has no \"%s\"", key);
    v = strtoull(p, &end, 10);
    if ( end == p )
        die("the config's \"%s\" is not a number", key);
    return v;
}

/* A string value without escapes (the tests' names and uuids). */
static void config_str(const char *config, const char *key, char *out,
                       size_t len)
{
    const char *p = config_value(config, key);
    size_t n;

    if ( !p || *p != '"' )
        die("the config has no string \"%s\"", key);
    n = strcspn(++p, "\"\\");
    if ( p[n] != '"' || n >= len )
        die("the config's \"%s\" is too long or has escapes", key);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The config's max_memkb becomes @kib; the xl header is written anew. */
static void op_maxmem(struct stream *s, uint64_t kib)
{
    struct item *x = raw(s, "xl header");
    const char *v = config_value(s->config, "max_memkb");
    struct sr_xl_hdr h;
    char *config, *end;
    uint32_t len;
    int n;

    if ( !v )
        die("the config has no \"max_memkb\"");
    strtoull(v, &end, 10);
    n = snprintf(NULL, 0, "%.*s%" PRIu64 "%s", (int)(v - s->config),
                 s->config, kib, end);
    config = xmalloc(n + 1);
    snprintf(config, n + 1, "%.*s%" PRIu64 "%s", (int)(v - s->config),
             s->config, kib, end);
    free(s->config);
    s->config = config;

    /* The header as it was (flags, digest choice), the new config. */
    memcpy(&h, x->data, sizeof(h));
    len = (uint32_t)n;
    h.optional_data_len = sizeof(len) + len;
    free(x->data);
    x->len = sizeof(h) + sizeof(len) + len;
    x->data = xmalloc(x->len);
    memcpy(x->data, &h, sizeof(h));
    memcpy(x->data + sizeof(h), &len, sizeof(len));
    memcpy(x->data + sizeof(h) + sizeof(len), config, len);
    x->mark = true;
}

/* The preamble xl migrate sends (xl/xl-migrate.c, preamble_write). */
static void write_preamble(FILE *f, const struct stream *s,
                           const char *kib)
{
    char name[128], uuid[64];
    uint64_t memkb;

    config_str(s->config, "name", name, sizeof(name));
    config_str(s->config, "uuid", uuid, sizeof(uuid));
    memkb = kib ? arg_u64(kib) : config_u64(s->config, "max_memkb");
    if ( fprintf(f, "ferry-migrate 1 {\"op\":\"migrate\",\"name\":\"%s\","
                 "\"uuid\":\"%s\",\"max_memkb\":%" PRIu64 ","
                 "\"max_vcpus\":%" PRIu64 ",\"paused\":false,"
                 "\"monitor\":false,\"debug\":false}\n", name, uuid, memkb,
                 config_u64(s->config, "max_vcpus")) < 0 )
        die("writing the preamble: %s", strerror(errno));
}

static void free_stream(struct stream *s);

/* The last copy in @s of PFN @pfn's page, and its type; NULL if unsent. */
static const uint64_t *last_page(struct stream *s, uint64_t pfn,
                                 unsigned int *type)
{
    const uint64_t *page = NULL;
    struct item *i;

    for ( size_t k = 0; (i = next_page_data(s, &k)); )
    {
        for ( uint32_t e = 0; e < pd_count(i); e++ )
            if ( sr_entry_pfn(pd_entry(i, e)) == pfn && pd_page(i, e) )
            {
                page = pd_page(i, e);
                *type = sr_entry_type(pd_entry(i, e));
            }
    }
    return page;
}

/*
 * Every L2, L3 and L4 table gets the contents its PFN had in @other, an
 * earlier save of the same guest: the upper levels of an earlier moment,
 * as a restorer that localised them from stale data would leave them.
 * The frames must be tables of the same level in both, so the hypervisor
 * still accepts every entry; only where they lead changes.  Fails if no
 * table differs (a guest whose upper levels never change).
 */
static void op_upper_from(struct stream *s, const char *other)
{
    struct stream o = { 0 };
    struct item *i;
    size_t len;
    uint8_t *buf;
    unsigned int changed = 0, level, otype;

    if ( !other )
        die("upper-from needs the earlier save file");
    buf = load(other, &len);
    parse(&o, buf, len);
    for ( size_t k = 0; (i = next_page_data(s, &k)); )
    {
        for ( uint32_t e = 0; e < pd_count(i); e++ )
        {
            uint64_t pfn = sr_entry_pfn(pd_entry(i, e)), *page;
            const uint64_t *old;

            level = sr_entry_type(pd_entry(i, e)) & 7;
            page = pd_page(i, e);
            if ( !page || level < 2 || level > 4 )
                continue;
            old = last_page(&o, pfn, &otype);
            if ( !old || (otype & 7) != level )
                die("pfn %#" PRIx64 " is an L%u table here but not in %s",
                    pfn, level, other);
            if ( !memcmp(page, old, SR_PAGE_SIZE) )
                continue;
            memcpy(page, old, SR_PAGE_SIZE);
            i->mark = true;
            changed++;
        }
    }
    if ( !changed )
        die("no L2, L3 or L4 table differs from %s", other);
    fprintf(stderr, "mkstream: %u upper-level tables taken from %s\n",
            changed, other);
    free_stream(&o);
    free(buf);
}

/* ------------------------------------------------------------------------
 * Operations on the bytes
 * ------------------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}

/* The item holding byte off of the output. */
static struct item *item_at(struct stream *s, uint64_t off)
{
    size_t k;

    for ( k = 0; k + 1 < s->n && s->it[k + 1].offset <= off; k++ )
        ;
    return &s->it[k];
}

static uint64_t arg_u64(const char *a)
{
    char *end;
    unsigned long long v;

    if ( !a )
        die("the operation needs an argument");
    v = strtoull(a, &end, 0);
    if ( *end || end == a )
        die("not a number: %s", a);
    return v;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
"usage: mkstream dump IN\n"
"       mkstream l1-entry IN\n"
"       mkstream rewrite IN OUT [--digest=recompute|keep|none]\n"
"                        [--preamble[=KIB]] OP [ARG]\n"
"OP: none minimal shrink drop TYPE inject-mandatory inject-optional\n"
"    inject-libxl-mandatory pfn-beyond unsent l2-pse l2-reserved\n"
"    l1-reserved l4-to-data p2m-frame-table cr3-outside gdt-outside\n"
"    length-cap TYPE p2m-claim PFNS p2m-claim-tail PFNS maxmem KIB\n"
"    upper-from EARLIER.save resend-l1-avail resend-l1-bad\n"
"    libxc-version N libxl-version N libxc-big-endian libxl-big-endian\n"
"    hvm truncate-in TYPE truncate OFF flip OFF flip-in TYPE\n");
    exit(2);
}

static void free_stream(struct stream *s)
{
    for ( size_t k = 0; k < s->n; k++ )
        free(s->it[k].data);
    free(s->it);
    free(s->trailer);
    free(s->config);
}

static void dump(struct stream *s)
{
    free(serialise(s, &(size_t){ 0 }));
    for ( size_t k = 0; k < s->n; k++ )
    {
        const struct item *i = &s->it[k];

        printf("%s %s %" PRIu64 " %zu\n",
               !i->is_rec ? "hdr" : i->layer == SR_LIBXC ? "libxc" : "libxl",
               item_name(i), i->offset, i->len);
    }
    printf("trailer %zu\n", s->trailer_len);
}

int main(int argc, char **argv)
{
    struct stream s = { 0 };
    const char *digest = "recompute", *op, *arg, *preamble_kib = NULL;
    bool preamble = false;
    uint8_t *in, *out;
    size_t in_len, out_len;
    struct item *mark = NULL;
    uint64_t mark_off = 0;
    int a = 4;

    if ( argc == 3 && !strcmp(argv[1], "dump") )
    {
        in = load(argv[2], &in_len);
        parse(&s, in, in_len);
        dump(&s);
        free_stream(&s);
        free(in);
        return 0;
    }
    if ( argc == 3 && !strcmp(argv[1], "l1-entry") )
    {
        uint32_t e;
        unsigned int slot;
        uint64_t *page;

        in = load(argv[2], &in_len);
        parse(&s, in, in_len);
        page = first_l1(&s, &mark, &e, &slot);
        mark_off = sr_entry_pfn(pd_entry(mark, e));
        /* Its last copy: a live stream's later passes win. */
        for ( size_t k = 0; k < s.n; k++ )
            for ( uint32_t f = 0; s.it[k].is_rec &&
                  s.it[k].layer == SR_LIBXC &&
                  s.it[k].type == SR_LIBXC_PAGE_DATA &&
                  f < pd_count(&s.it[k]); f++ )
                if ( sr_entry_pfn(pd_entry(&s.it[k], f)) == mark_off &&
                     pd_page(&s.it[k], f) )
                    page = pd_page(&s.it[k], f);
        printf("pfn %#" PRIx64 " slot %u entry %#" PRIx64 "\n", mark_off,
               slot, page[slot]);
        free_stream(&s);
        free(in);
        return 0;
    }
    if ( argc < 5 || strcmp(argv[1], "rewrite") )
        usage();
    if ( !strncmp(argv[a], "--digest=", 9) )
        digest = argv[a++] + 9;
    if ( a < argc && !strncmp(argv[a], "--preamble", 10) )
    {
        preamble = true;
        if ( argv[a][10] == '=' )
            preamble_kib = argv[a] + 11;
        else if ( argv[a][10] )
            usage();
        a++;
    }
    if ( a >= argc )
        usage();
    op = argv[a];
    arg = a + 1 < argc ? argv[a + 1] : NULL;
    in = load(argv[2], &in_len);
    parse(&s, in, in_len);

    /* Operations on records. */
    if ( !strcmp(op, "none") )
        first(&s, SR_LIBXL, SR_LIBXL_END)->mark = true;
    else if ( !strcmp(op, "minimal") )
        op_minimal(&s);
    else if ( !strcmp(op, "shrink") )
        op_shrink(&s);
    else if ( !strcmp(op, "drop") )
    {
        uint32_t t = libxc_type(arg ? arg : "");

        first(&s, SR_LIBXC, SR_LIBXC_END)->mark = true;
        drop_type(&s, t);
    }
    else if ( !strcmp(op, "inject-mandatory") )
        op_inject(&s, SR_LIBXC, 0x7fff0123U);
    else if ( !strcmp(op, "inject-optional") )
        op_inject(&s, SR_LIBXC, 0x80000123U);
    else if ( !strcmp(op, "inject-libxl-mandatory") )
        op_inject(&s, SR_LIBXL, 0x00000123U);
    else if ( !strcmp(op, "pfn-beyond") )
        op_pfn_beyond(&s);
    else if ( !strcmp(op, "unsent") )
        op_unsent(&s);
    else if ( !strcmp(op, "l2-pse") )
        op_pte(&s, 2, _PAGE_PSE);
    else if ( !strcmp(op, "l2-reserved") )
        op_pte(&s, 2, _PAGE_PCD);
    else if ( !strcmp(op, "p2m-frame-table") )
        op_p2m_frame_table(&s);
    else if ( !strcmp(op, "l4-to-data") )
        op_l4_to_data(&s);
    else if ( !strcmp(op, "l1-reserved") )
        op_pte(&s, 1, _PAGE_PCD);
    else if ( !strcmp(op, "p2m-claim") || !strcmp(op, "p2m-claim-tail") )
        op_p2m_claim(&s, arg_u64(arg), !strcmp(op, "p2m-claim-tail"));
    else if ( !strcmp(op, "maxmem") )
        op_maxmem(&s, arg_u64(arg));
    else if ( !strcmp(op, "cr3-outside") )
        op_vcpu(&s, false);
    else if ( !strcmp(op, "gdt-outside") )
        op_vcpu(&s, true);
    else if ( !strcmp(op, "upper-from") )
        op_upper_from(&s, arg);
    else if ( !strcmp(op, "resend-l1-avail") )
        op_resend_l1(&s, 0x200);
    else if ( !strcmp(op, "resend-l1-bad") )
        op_resend_l1(&s, _PAGE_PCD);
    else if ( !strcmp(op, "length-cap") || !strcmp(op, "truncate-in") ||
              !strcmp(op, "flip-in") )
        first(&s, SR_LIBXC, libxc_type(arg ? arg : ""))->mark = true;
    else if ( !strcmp(op, "libxc-version") || !strcmp(op, "hvm") ||
              !strcmp(op, "libxc-big-endian") )
        raw(&s, !strcmp(op, "hvm") ? "libxc domain header"
                                   : "libxc image header")->mark = true;
    else if ( !strcmp(op, "libxl-version") ||
              !strcmp(op, "libxl-big-endian") )
        raw(&s, "libxl header")->mark = true;
    else if ( strcmp(op, "truncate") && strcmp(op, "flip") )
        usage();

    out = serialise(&s, &out_len);
    for ( size_t k = 0; k < s.n; k++ )
        if ( s.it[k].mark )
            mark = &s.it[k];
    if ( mark )
        mark_off = mark->offset;

    /* Operations on bytes. */
    if ( !strcmp(op, "length-cap") )
        put_le32(out + mark_off + 4, SR_REC_LENGTH_MAX + 1);
    else if ( !strcmp(op, "libxc-version") )
        put_be32(out + mark_off + 12, arg_u64(arg));
    else if ( !strcmp(op, "libxc-big-endian") )
        out[mark_off + 17] |= SR_IHDR_OPT_BIG_ENDIAN;
    else if ( !strcmp(op, "libxl-version") )
        put_be32(out + mark_off + 8, arg_u64(arg));
    else if ( !strcmp(op, "libxl-big-endian") )
        out[mark_off + 15] |= SR_LIBXL_OPT_BIG_ENDIAN;
    else if ( !strcmp(op, "hvm") )
        put_le32(out + mark_off, SR_DHDR_TYPE_X86_HVM);
    else if ( !strcmp(op, "truncate-in") )
        out_len = mark_off + 8 + mark->len / 2;
    else if ( !strcmp(op, "flip-in") )
        out[mark_off + 8 + mark->len / 2] ^= 0xff;
    else if ( !strcmp(op, "truncate") || !strcmp(op, "flip") )
    {
        uint64_t off = arg_u64(arg);

        if ( off >= out_len )
            die("offset %" PRIu64 " is past the end (%zu)", off, out_len);
        mark = item_at(&s, off);
        mark_off = mark->offset;
        if ( !strcmp(op, "flip") )
            out[off] ^= 0xff;
        else
            out_len = off;
    }
    save(argv[3], out, out_len, digest, &s, preamble, preamble_kib);
    printf("%" PRIu64 " %s\n", mark_off, item_name(mark));

    free_stream(&s);
    free(in);
    free(out);
    return 0;
}
