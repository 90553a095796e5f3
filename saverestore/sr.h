/* SPDX-License-Identifier: MIT */
/*
 * sr.h: the save/restore stream library, its one public header.
 *
 * A saved domain on disk or on the wire is the xl save-file header, then a
 * libxl stream v2 whose LIBXC_CONTEXT record is followed by a whole libxc
 * stream v3 (docs/specs/lib{xl,xc}-migration-stream.pandoc in Xen).  This
 * library is the bottom of save/restore: a byte channel (struct sr_io), the
 * wire layouts, and a record reader/writer that checks every structural
 * rule of the format.  It knows nothing about domains; the save and restore
 * engines above it do.
 *
 * Invariants and ownership:
 * - sr_io_read()/sr_io_write() move every byte asked for or fail.  Errors
 *   are sticky: after the first one every call on that io returns the same
 *   negative errno, and sr_io_error()/sr_io_errmsg() report it.  Format
 *   errors found by the record layer are stored the same way, so the first
 *   thing that went wrong is what the caller sees.
 * - Nothing prints or exits; every function returns 0 or a negative errno.
 * - Error classes: -ENODATA the stream ended early (truncated); -EINVAL a
 *   malformed header or record; -E2BIG a record longer than
 *   SR_REC_LENGTH_MAX; -EOPNOTSUPP well formed but not supported here
 *   (other version, big-endian, unknown mandatory record or flag, HVM);
 *   other errnos come from the system (read, write, malloc, fsync).
 * - Messages name the layer, the record type (number and name) and the
 *   byte offset of the record in the stream where one is involved.
 * - Structs read by sr_read_*() are returned in host byte order; on the
 *   wire the libxc image header and the libxl header are big-endian, all
 *   the rest little-endian (the xl header is in native order).
 * - A struct sr_rec owns its buffer and reuses it from record to record;
 *   pointers into it (sr_page_data) are valid until the next read.
 */
#ifndef FERRY_SAVERESTORE_SR_H
#define FERRY_SAVERESTORE_SR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* ---------------------------------------------------------------------
 * Wire format.  Sizes are asserted; all padding is explicit and zero.
 * --------------------------------------------------------------------- */

#define SR_REC_ALIGN        8
#define SR_REC_LENGTH_MAX   (128U << 20)    /* Xen's REC_LENGTH_MAX */
#define SR_REC_TYPE_OPTIONAL 0x80000000U
#define SR_PAGE_SIZE        4096U
#define SR_PAGE_SHIFT       12

/* xl save-file header (tools/xl/xl.h), native byte order. */
#define SR_XL_MAGIC         "Xen saved domain, xl format\n \0 \r"
#define SR_XL_MAGIC_LEN     32
#define SR_XL_BYTEORDER     0x01020304U
#define SR_XL_FLAG_JSON     (1U << 0)   /* config data is JSON */
#define SR_XL_FLAG_STREAMV2 (1U << 1)   /* a libxl stream v2 follows */
/*
 * ferry's extension, not Xen's: every byte after the xl header and its
 * config is one zlib stream (xl save -z).  Xen's xl refuses such a file
 * ("Savefile has mandatory flag(s) 0x80000000 which are not supported;
 * need newer xl"), which is right: it could not read it.  Offsets and the
 * digest trailer count the uncompressed bytes (ferry-stream(5)).
 */
#define SR_XL_FLAG_FERRY_ZLIB (1U << 31)
#define SR_XL_FLAG_ALL      (SR_XL_FLAG_JSON | SR_XL_FLAG_STREAMV2 | \
                             SR_XL_FLAG_FERRY_ZLIB)
/*
 * ferry's optional flag (Xen's xl ignores optional flags): the digest in
 * ferry's trailer is Poly1305 (SR_FERRY_TRAILER_POLY1305), not SHA-256.
 * The reader must know the algorithm from the first byte, so the header
 * says it; sr_write_xl_hdr() sets it and switches the running digest when
 * it is the first thing hashed, and sr_read_xl_hdr() follows it.
 */
#define SR_XL_OPTFLAG_FERRY_POLY1305 (1U << 31)

struct sr_xl_hdr
{
    char magic[SR_XL_MAGIC_LEN];
    uint32_t byteorder;
    uint32_t mandatory_flags;   /* unknown bits: refuse to restore */
    uint32_t optional_flags;    /* not checked on restore */
    uint32_t optional_data_len; /* u32 config length + config bytes */
};
_Static_assert(sizeof(struct sr_xl_hdr) == 48, "xl header is 48 bytes");

/* libxl stream v2 (libxl_sr_stream_format.h). */
#define SR_LIBXL_IDENT      0x4c6962786c466d74ULL   /* "LibxlFmt" */
#define SR_LIBXL_VERSION    2U
#define SR_LIBXL_OPT_BIG_ENDIAN (1U << 0)
#define SR_LIBXL_OPT_LEGACY     (1U << 1)

struct sr_libxl_hdr             /* big-endian on the wire */
{
    uint64_t ident;
    uint32_t version;
    uint32_t options;
};
_Static_assert(sizeof(struct sr_libxl_hdr) == 16, "libxl header size");

#define SR_LIBXL_END                    0x00U
#define SR_LIBXL_LIBXC_CONTEXT          0x01U
#define SR_LIBXL_EMULATOR_XENSTORE_DATA 0x02U
#define SR_LIBXL_EMULATOR_CONTEXT       0x03U
#define SR_LIBXL_CHECKPOINT_END         0x04U
#define SR_LIBXL_CHECKPOINT_STATE       0x05U

struct sr_libxl_emulator_hdr
{
    uint32_t id;                /* 0 unknown, 1 qemu-trad, 2 qemu-upstream */
    uint32_t index;
};
_Static_assert(sizeof(struct sr_libxl_emulator_hdr) == 8, "emulator hdr");

/* libxc stream v3 (xg_sr_stream_format.h). */
#define SR_IHDR_MARKER      0xffffffffffffffffULL
#define SR_IHDR_ID          0x58454e46U             /* "XENF" */
#define SR_IHDR_VERSION     3U
#define SR_IHDR_VERSION_MIN 2U
#define SR_IHDR_OPT_BIG_ENDIAN (1U << 0)

struct sr_libxc_ihdr            /* big-endian on the wire */
{
    uint64_t marker;
    uint32_t id;
    uint32_t version;
    uint16_t options;
    uint16_t _res1;
    uint32_t _res2;
};
_Static_assert(sizeof(struct sr_libxc_ihdr) == 24, "image header size");

#define SR_DHDR_TYPE_X86_PV  1U
#define SR_DHDR_TYPE_X86_HVM 2U

struct sr_libxc_dhdr
{
    uint32_t type;
    uint16_t page_shift;
    uint16_t _res1;
    uint32_t xen_major;         /* 0: converted from a legacy stream */
    uint32_t xen_minor;
};
_Static_assert(sizeof(struct sr_libxc_dhdr) == 16, "domain header size");

/* Record header, shared by both layers. */
struct sr_rhdr
{
    uint32_t type;
    uint32_t length;            /* body bytes, padding excluded */
};
_Static_assert(sizeof(struct sr_rhdr) == 8, "record header size");

#define SR_LIBXC_END                        0x00U
#define SR_LIBXC_PAGE_DATA                  0x01U
#define SR_LIBXC_X86_PV_INFO                0x02U
#define SR_LIBXC_X86_PV_P2M_FRAMES          0x03U
#define SR_LIBXC_X86_PV_VCPU_BASIC          0x04U
#define SR_LIBXC_X86_PV_VCPU_EXTENDED       0x05U
#define SR_LIBXC_X86_PV_VCPU_XSAVE          0x06U
#define SR_LIBXC_SHARED_INFO                0x07U
#define SR_LIBXC_X86_TSC_INFO               0x08U
#define SR_LIBXC_HVM_CONTEXT                0x09U
#define SR_LIBXC_HVM_PARAMS                 0x0aU
#define SR_LIBXC_TOOLSTACK                  0x0bU
#define SR_LIBXC_X86_PV_VCPU_MSRS           0x0cU
#define SR_LIBXC_VERIFY                     0x0dU
#define SR_LIBXC_CHECKPOINT                 0x0eU
#define SR_LIBXC_CHECKPOINT_DIRTY_PFN_LIST  0x0fU
#define SR_LIBXC_STATIC_DATA_END            0x10U
#define SR_LIBXC_X86_CPUID_POLICY           0x11U
#define SR_LIBXC_X86_MSR_POLICY             0x12U

/* PAGE_DATA: this header, count u64 entries, then the data pages. */
struct sr_page_data_hdr
{
    uint32_t count;             /* > 0 */
    uint32_t _res1;
};
_Static_assert(sizeof(struct sr_page_data_hdr) == 8, "page data hdr");

#define SR_PFN_MASK         0x000fffffffffffffULL   /* bits 0-51 */
#define SR_PFN_RESERVED     0x0ff0000000000000ULL   /* bits 52-59 MBZ */
#define SR_PFN_TYPE_SHIFT   60                      /* bits 60-63 */

/* XEN_DOMCTL_PFINFO type nibbles (the domctl value >> 28). */
#define SR_PFINFO_NOTAB     0x0U
#define SR_PFINFO_L1TAB     0x1U
#define SR_PFINFO_L2TAB     0x2U
#define SR_PFINFO_L3TAB     0x3U
#define SR_PFINFO_L4TAB     0x4U
#define SR_PFINFO_LPINTAB   0x8U    /* "pinned" bit, OR'd into L1-L4 */
#define SR_PFINFO_BROKEN    0xdU
#define SR_PFINFO_XALLOC    0xeU
#define SR_PFINFO_XTAB      0xfU

struct sr_x86_pv_info
{
    uint8_t guest_width;        /* 4 or 8 */
    uint8_t pt_levels;          /* 3 or 4, paired (4,3) or (8,4) */
    uint8_t _res[6];
};
_Static_assert(sizeof(struct sr_x86_pv_info) == 8, "pv info size");

struct sr_x86_pv_p2m_frames
{
    uint32_t start_pfn;
    uint32_t end_pfn;           /* inclusive */
    /* then u64 p2m_pfns[] */
};
_Static_assert(sizeof(struct sr_x86_pv_p2m_frames) == 8, "p2m frames hdr");

/* X86_PV_VCPU_{BASIC,EXTENDED,XSAVE,MSRS}: this, then an opaque blob. */
struct sr_x86_pv_vcpu_hdr
{
    uint32_t vcpu_id;
    uint32_t _res1;
};
_Static_assert(sizeof(struct sr_x86_pv_vcpu_hdr) == 8, "vcpu hdr size");

struct sr_x86_tsc_info
{
    uint32_t mode;
    uint32_t khz;
    uint64_t nsec;
    uint32_t incarnation;
    uint32_t _res1;
};
_Static_assert(sizeof(struct sr_x86_tsc_info) == 24, "tsc info size");

/* SHARED_INFO is exactly one raw page. */
#define SR_SHARED_INFO_SIZE SR_PAGE_SIZE

enum sr_layer
{
    SR_LIBXC,
    SR_LIBXL,
};

/* Type names, e.g. "PAGE_DATA"; "unknown" for types not defined. */
const char *sr_libxc_rec_name(uint32_t type);
const char *sr_libxl_rec_name(uint32_t type);
const char *sr_rec_name(enum sr_layer layer, uint32_t type);

/* ---------------------------------------------------------------------
 * I/O channel (sr-io.c).
 * --------------------------------------------------------------------- */

struct sr_io;

/* fd backend: file, pipe or socket.  own_fd: sr_io_close() closes it.
 * A regular file opened read-only, owned and not wholly in the page cache
 * is read ahead in large chunks by a thread of the io's, with O_DIRECT
 * for what is not cached (sr-io-file.c); its file offset is the io's. */
int sr_io_open_fd(struct sr_io **iop, int fd, bool own_fd);
/* Memory backends: growable for writing; fixed and borrowed (the caller
 * keeps buf alive until close) for reading. */
int sr_io_open_mem_writer(struct sr_io **iop);
int sr_io_open_mem_reader(struct sr_io **iop, const void *buf, size_t len);
/* The bytes written so far to a memory writer (owned by the io). */
const uint8_t *sr_io_mem_data(const struct sr_io *io, size_t *len);

/*
 * A backend of the caller's (a TLS session, a test's fault injector):
 * read returns bytes read (> 0), 0 at end of stream or -errno; write
 * returns bytes written (> 0) or -errno; both may be short.  sync and
 * close may be NULL.  close is called once, by sr_io_close().
 */
struct sr_io_user_ops
{
    ssize_t (*read)(void *arg, void *buf, size_t len);
    ssize_t (*write)(void *arg, const void *buf, size_t len);
    int (*sync)(void *arg);
    int (*close)(void *arg);
};
int sr_io_open_user(struct sr_io **iop, const struct sr_io_user_ops *ops,
                    void *arg);
/*
 * Give a user-backend io another backend, keeping its state (offset,
 * digest, error): a confined parser reads the rest of a channel's stream
 * from a pipe its parent forwards it through.  -EINVAL if io is not a
 * user backend.  The old backend's close is not called.
 */
int sr_io_set_user(struct sr_io *io, const struct sr_io_user_ops *ops,
                   void *arg);

/* Atomic file write: the bytes go to "path.tmp-XXXXXX" beside path,
 * written with O_DIRECT (buffered where the filesystem refuses it)
 * through aligned buffers by a thread of the io's (sr-io-file.c).
 * sr_io_commit() fsyncs it, renames it over path and fsyncs the directory;
 * sr_io_abort() unlinks it.  Both end the io (free it) whatever they
 * return; closing an uncommitted atomic io aborts it.  A failed commit
 * leaves the old file in place. */
int sr_io_open_atomic(struct sr_io **iop, const char *path);
int sr_io_commit(struct sr_io *io);
int sr_io_abort(struct sr_io *io);

int sr_io_read(struct sr_io *io, void *buf, size_t len);
int sr_io_write(struct sr_io *io, const void *buf, size_t len);
int sr_io_writev(struct sr_io *io, const struct iovec *iov, int iovcnt);
int sr_io_skip(struct sr_io *io, uint64_t len);     /* read and discard */
int sr_io_sync(struct sr_io *io);   /* fsync for fds; no-op for memory */
/* Frees io; returns its sticky error, or the error of closing. */
int sr_io_close(struct sr_io *io);

int sr_io_error(const struct sr_io *io);            /* 0 or -errno */
const char *sr_io_errmsg(const struct sr_io *io);   /* "" if none */
uint64_t sr_io_offset(const struct sr_io *io);      /* bytes moved */
/* Record an error on io (first one wins); returns the stored error. */
int sr_io_fail(struct sr_io *io, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * zlib compression (sr-io.c), for ferry's SR_XL_FLAG_FERRY_ZLIB files.
 * After sr_io_deflate_start() every byte written is compressed (level
 * 1..9) before it reaches the backend; after sr_io_inflate_start() every
 * byte read is decompressed.  The offset, the digest and all messages
 * count the uncompressed stream bytes; a corrupt compressed stream fails
 * with -EINVAL naming that offset.  A writer's zlib stream is finished by
 * sr_io_deflate_end(), which sr_io_commit(), sr_io_close() and
 * sr_io_sync() (a full flush only) take care of for files.  A reader
 * returns to plain reading at the end of the zlib stream, without losing
 * bytes read ahead, so a stream may go on uncompressed after it.
 */
int sr_io_deflate_start(struct sr_io *io, int level);
int sr_io_deflate_end(struct sr_io *io);
int sr_io_inflate_start(struct sr_io *io);
bool sr_io_compressing(const struct sr_io *io);   /* either direction */
/* Bytes moved on the backend (compressed ones when compressing). */
uint64_t sr_io_raw_offset(const struct sr_io *io);

/* A digest over every byte moved while on: start resets it to SHA-256;
 * an xl header may switch it to Poly1305 (SR_XL_OPTFLAG_FERRY_POLY1305).
 * final gives 32 bytes either way (Poly1305: tag, then 16 zero bytes). */
#define SR_SHA256_LEN 32
int sr_io_hash_start(struct sr_io *io);
void sr_io_hash_pause(struct sr_io *io, bool paused);
int sr_io_hash_final(struct sr_io *io, uint8_t out[SR_SHA256_LEN]);
/* The running digest's algorithm: SR_FERRY_TRAILER_SHA256 or _POLY1305. */
uint32_t sr_io_hash_alg(const struct sr_io *io);

/*
 * ferry's integrity trailer (ferry's extension, not Xen's).
 *
 * sr_save_domain() appends it right after the libxl END record.  Xen's
 * xl/libxl stop reading at that END and never look at trailing bytes, so
 * a file with a trailer still restores on Xen.  All fields are
 * little-endian; digest is the digest of the first `covered` bytes of the
 * file, i.e. of everything before the trailer (xl header to libxl END
 * inclusive).  A stream that ends right after the libxl END (Xen's) has no
 * trailer and is restored unchecked; nothing may follow a trailer.
 *
 * Algorithms: 1, SHA-256 (the digest field whole); 2, Poly1305 under the
 * fixed public key SR_FERRY_POLY1305_KEY (the 16-byte tag, then 16 zero
 * bytes), announced by SR_XL_OPTFLAG_FERRY_POLY1305 in the xl header.
 * ferry writes 2 since it runs at ~12 GB/s here against SHA-256's 1.7
 * (ferry-bench measures both), so the digest does not cap a save; it
 * restores both.  Either detects accidental corruption (a flipped bit, a
 * lost or repeated block); neither, stored in the file it checks, stops
 * someone who can rewrite the file, and a known-key Poly1305 is not
 * collision resistant: do not use it to compare files from others.
 */
#define SR_FERRY_TRAILER_MAGIC      "FERRYSUM"
#define SR_FERRY_TRAILER_VERSION    1
#define SR_FERRY_TRAILER_SHA256     1
#define SR_FERRY_TRAILER_POLY1305   2
/* The 32-byte Poly1305 key (r, then s): the ASCII of this string. */
#define SR_FERRY_POLY1305_KEY       "ferry save-stream digest, v1...."
struct sr_ferry_trailer
{
    char magic[8];              /* "FERRYSUM", no NUL */
    uint32_t version;           /* SR_FERRY_TRAILER_VERSION */
    uint32_t algorithm;         /* SR_FERRY_TRAILER_SHA256 or _POLY1305 */
    uint64_t covered;           /* bytes from file start to end of END */
    uint8_t digest[SR_SHA256_LEN];
};
_Static_assert(sizeof(struct sr_ferry_trailer) == 56,
               "sr_ferry_trailer is 56 bytes on disk");

/* Write the trailer: the running hash is finalised into it (sr-stream.c). */
int sr_write_ferry_trailer(struct sr_io *io);
/* Finalise the running hash and check the trailer against it; *present
 * is false (and 0 returned) at a clean end of stream (Xen's file). */
int sr_read_ferry_trailer(struct sr_io *io, bool *present);

/* ---------------------------------------------------------------------
 * Headers and records (sr-stream.c).
 * --------------------------------------------------------------------- */

/* xl header plus its optional data (u32 length + config).  On read the
 * config is malloc'd (caller frees; NULL if none) and capped at
 * SR_XL_CONFIG_MAX, checked before allocating: a domain's JSON config is
 * a few KiB, and a receiver reads it before anything is admitted. */
#define SR_XL_CONFIG_MAX    (1U << 20)
int sr_write_xl_hdr(struct sr_io *io, uint32_t mandatory_flags,
                    const void *config, uint32_t config_len);
int sr_read_xl_hdr(struct sr_io *io, struct sr_xl_hdr *hdr,
                   void **config, uint32_t *config_len);

int sr_write_libxl_hdr(struct sr_io *io);
int sr_read_libxl_hdr(struct sr_io *io, struct sr_libxl_hdr *hdr);

int sr_write_libxc_ihdr(struct sr_io *io);
/* Accepts versions 2..3 and little-endian streams only. */
int sr_read_libxc_ihdr(struct sr_io *io, struct sr_libxc_ihdr *hdr);
int sr_write_libxc_dhdr(struct sr_io *io, uint32_t xen_major,
                        uint32_t xen_minor);
/* Accepts x86 PV with page_shift 12 only. */
int sr_read_libxc_dhdr(struct sr_io *io, struct sr_libxc_dhdr *hdr);

/* A record as read; buf is reused by the next sr_read_record(). */
struct sr_rec
{
    uint32_t type;
    uint32_t length;
    uint64_t offset;            /* stream offset of the record header */
    uint8_t *body;              /* length bytes, 8-aligned */
    size_t cap;                 /* allocated size of body */
    /*
     * Set by a restorer after sr_rec_init(): the most pages the domain
     * was admitted with, 0 for none (a reader with no domain).  With it,
     * sr_read_record() refuses, before allocating, a body longer than a
     * stream of that many pages can need (sr_rec_length_bound()).
     */
    uint64_t max_pages;
    /*
     * Set by a restorer after sr_rec_init(): a libxc PAGE_DATA record's
     * pages stay in the stream, for sr_read_page_data_pages() to read
     * straight to where they go (the staging area the daemon copies
     * from), rather than into body and copied again.  body then holds
     * body_len bytes (the header and the PFN array, checked) of length;
     * deferred says how many are still to read.
     */
    bool defer_pages;
    uint32_t body_len;          /* bytes of the body in body */
    uint32_t deferred;          /* bytes of pages still in the stream */
};

void sr_rec_init(struct sr_rec *rec);
void sr_rec_free(struct sr_rec *rec);

/* Header + body + zero padding to SR_REC_ALIGN. */
int sr_write_record(struct sr_io *io, enum sr_layer layer, uint32_t type,
                    const void *body, uint32_t length);
/* The same with the body gathered from iov (total < the cap). */
int sr_write_recordv(struct sr_io *io, enum sr_layer layer, uint32_t type,
                     const struct iovec *iov, int iovcnt);

/* Read the next record: the length cap is checked before allocating,
 * padding must be zero, the body of each known type is checked (fixed
 * lengths, reserved fields, PAGE_DATA's exact length), unknown optional
 * records (bit 31) are skipped and unknown mandatory ones refused, in
 * both layers as both specs say.  (Xen's libxl reader refuses every
 * unknown type and its verifier every optional one; none is defined, and
 * our writers never emit one.)  What needs the domain - record order,
 * P2M entry counts against guest width, PFN ranges - is the caller's. */
int sr_read_record(struct sr_io *io, enum sr_layer layer,
                   struct sr_rec *rec);

/*
 * The longest body a record of this type can have in the stream of a
 * domain of at most max_pages pages (0: SR_REC_LENGTH_MAX): PAGE_DATA
 * carries at most every page once, X86_PV_P2M_FRAMES names at most one
 * frame per 512 of them, and every other record is a fixed or small
 * state blob (SR_REC_SMALL_MAX).
 */
#define SR_REC_SMALL_MAX    (1U << 20)
uint32_t sr_rec_length_bound(enum sr_layer layer, uint32_t type,
                             uint64_t max_pages);

/* PAGE_DATA.  An entry is pfn | type << 60; types 5-8 are reserved. */
static inline uint64_t sr_pfn_entry(uint64_t pfn, unsigned int type)
{
    return pfn | ((uint64_t)type << SR_PFN_TYPE_SHIFT);
}
static inline uint64_t sr_entry_pfn(uint64_t e) { return e & SR_PFN_MASK; }
static inline unsigned int sr_entry_type(uint64_t e)
{
    return e >> SR_PFN_TYPE_SHIFT;
}
bool sr_pfinfo_valid(unsigned int type);
bool sr_pfinfo_has_data(unsigned int type);     /* NOTAB, L1-L4 (+pin) */

/* Write one PAGE_DATA record: count entries, and one page per
 * data-bearing entry taken in order from pages (contiguous). */
int sr_write_page_data(struct sr_io *io, uint32_t count,
                       const uint64_t *pfns, const uint8_t *types,
                       const void *pages);

struct sr_page_data
{
    uint32_t count;
    const uint64_t *entries;    /* into the record's buffer */
    uint32_t nr_pages;          /* data-bearing entries */
    const uint8_t *pages;       /* nr_pages * 4096 bytes */
};

/* Parse and check a PAGE_DATA body (sr_read_record() already did).
 * pages is NULL when they were left in the stream (rec->defer_pages). */
int sr_parse_page_data(struct sr_io *io, const struct sr_rec *rec,
                       struct sr_page_data *pd);
/*
 * The pages a deferred PAGE_DATA record left in the stream
 * (rec->deferred bytes, pd.nr_pages pages), read into dst.  The next
 * sr_read_record() steps over them if the caller does not read them.
 */
int sr_read_page_data_pages(struct sr_io *io, struct sr_rec *rec,
                            void *dst);

/* ------------------------------------------------------------------------
 * The engines (sr-save.c, sr-restore.c)
 *
 * Both talk to one host through libxc (xc.h) and log through its logger.
 * They return 0 or -errno, with a message in the caller's buffer naming
 * the record type and offset where a stream was at fault.
 * ------------------------------------------------------------------------ */

struct xc_interface;

/*
 * Progress, reported by both engines through a caller's callback at most
 * once per batch (and at every phase change).  Rates are measured over
 * the previous pass; 0 until one has been measured.
 */
enum sr_phase
{
    SR_PHASE_SETUP,             /* headers, P2M */
    SR_PHASE_MEMORY,            /* non-live: every PFN once */
    SR_PHASE_LIVE,              /* live pass; iteration 0 is the full one */
    SR_PHASE_STOP_COPY,         /* domain suspended: final dirty pass */
    SR_PHASE_VERIFY,            /* --debug: every page again */
    SR_PHASE_STATE,             /* TSC, shared_info, vCPUs, ENDs */
    SR_PHASE_DONE,
};
const char *sr_phase_name(enum sr_phase phase);  /* "live", ... */

struct sr_progress
{
    enum sr_phase phase;
    unsigned int iteration;     /* live passes completed before this one */
    uint64_t p2m_size;          /* PFNs in the domain */
    uint64_t pass_total;        /* PFNs to send in this pass */
    uint64_t pass_done;         /* of them sent so far */
    uint64_t bytes;             /* stream bytes so far (sr_io_offset) */
    uint64_t pages_sent;        /* data pages sent in all passes */
    uint64_t pages_resent;      /* of them, pages sent more than once */
    uint64_t dirty_pages;       /* dirty count from the last CLEAN */
    uint64_t dirty_rate;        /* bytes/s dirtied during the last pass */
    /*
     * Bytes/s sent: during a pass, since it began (after its first 20 ms;
     * 0 before); once it ended, over the whole pass.
     */
    uint64_t throughput;
    /*
     * What stopping would cost at the throughput: during a pass, the
     * pages it still has to send (QEMU's expected-downtime, remaining /
     * bandwidth); after a CLEAN, the dirty set.
     */
    uint64_t expected_downtime_ms;
    /* The migration throttle in force (percent; QEMU's
     * cpu-throttle-percentage). */
    unsigned int throttle_pct;
};
/*
 * A pass's remaining pages are pass_total - pass_done; overall, the save
 * has sent pages_sent and has that much left of what it knows is dirty
 * (later passes add what the guest dirties meanwhile).
 */
typedef void sr_progress_fn(void *arg, const struct sr_progress *p);

/*
 * The pre-copy policy of a live save.  Zero fields take the defaults
 * (Xen's: 5 iterations, 50 pages), so a zeroed struct is Xen's policy.
 * Stop-and-copy starts when any of these holds after a pass: the dirty
 * set is at most target_dirty_pages; the downtime it would cost at the
 * measured throughput is at most max_downtime_ms; max_iterations passes
 * were made.  timeout_ms bounds the live phase: at it the save aborts
 * (-ETIMEDOUT) or forces the final pass, as timeout_action says.
 */
enum sr_timeout_action
{
    SR_TIMEOUT_ABORT,
    SR_TIMEOUT_FORCE,
};

struct sr_precopy_policy
{
    /* Live passes, the full one included (Xen's stats.iteration). */
    unsigned int max_iterations;
    uint64_t target_dirty_pages;    /* stop below this many, as Xen */
    uint64_t max_downtime_ms;       /* 0: not a criterion */
    uint64_t bandwidth_limit;       /* bytes/s while live; 0: unlimited */
    uint64_t timeout_ms;            /* 0: none */
    enum sr_timeout_action timeout_action;
    /*
     * The throttle (QEMU's auto-converge), off when throttle_initial is
     * 0.  After each CLEAN of the live phase, a pass that dirtied more
     * than half the bytes it sent (QEMU's throttle-trigger-threshold) is
     * not converging: the domain's vCPUs are throttled to
     * throttle_initial percent, or throttle_increment more than before,
     * at most throttle_max (0: SR_DEFAULT_THROTTLE_MAX).  A pass that
     * raised the throttle does not count towards max_iterations, so the
     * throttle gets its passes to act (at most one per step to the
     * maximum).  The throttle is lifted when the save ends, however it
     * ends.
     */
    unsigned int throttle_initial;
    unsigned int throttle_increment;
    unsigned int throttle_max;
};

#define SR_DEFAULT_MAX_ITERATIONS   5       /* Xen's SPP_MAX_ITERATIONS */
#define SR_DEFAULT_TARGET_DIRTY     50      /* Xen's SPP_TARGET_DIRTY_COUNT */
/* QEMU's cpu-throttle-initial, -increment and max-cpu-throttle. */
#define SR_DEFAULT_THROTTLE_INITIAL 20
#define SR_DEFAULT_THROTTLE_INCREMENT 10
#define SR_DEFAULT_THROTTLE_MAX     99

/*
 * The policy as a pure function (sr-save.c; internal, for unit tests).
 * It is asked after each live pass, first before the CLEAN (dirty set
 * unknown: only the iteration count and the timeout can stop), then
 * with the dirty set.  A timeout gives ABORT, or STOP_AND_COPY with
 * SR_TIMEOUT_FORCE.  Expected downtime: dirty pages * 4096 at the
 * throughput of the last pass (0 while unknown).
 */
enum sr__precopy_decision
{
    SR__PRECOPY_CONTINUE,
    SR__PRECOPY_STOP_AND_COPY,
    SR__PRECOPY_ABORT,
};

struct sr__precopy_state
{
    unsigned int iteration;         /* live passes completed */
    bool dirty_known;
    uint64_t dirty_pages;           /* from the last CLEAN */
    uint64_t throughput;            /* bytes/s of the last pass; 0 unknown */
    uint64_t elapsed_ms;            /* since the live phase began */
};

enum sr__precopy_decision
sr__precopy_decide(const struct sr_precopy_policy *p,
                   const struct sr__precopy_state *s);
bool sr__precopy_timed_out(const struct sr_precopy_policy *p,
                           uint64_t elapsed_ms);
uint64_t sr__expected_downtime_ms(uint64_t dirty_pages, uint64_t throughput);
/*
 * The throttle after a pass that sent sent_bytes while dirty_bytes were
 * dirtied, when it was cur: cur if converging or off, else raised.
 */
unsigned int sr__throttle_next(const struct sr_precopy_policy *p,
                               unsigned int cur, uint64_t dirty_bytes,
                               uint64_t sent_bytes);

/* What a save did, for figures and --json summaries. */
struct sr_save_stats
{
    unsigned int iterations;        /* live passes, the full one included */
    uint64_t bytes;                 /* stream bytes written */
    uint64_t pages_sent, pages_resent;
    uint64_t pages_zero;            /* of pages_sent: as XALLOC, PFN only */
    uint64_t t_start_ns;            /* CLOCK_MONOTONIC */
    uint64_t t_suspended_ns;        /* the domain stopped running */
    uint64_t t_end_ns;              /* the last byte was written */
    unsigned int throttle_max_pct;  /* the highest throttle it set */
};

struct sr_save_args
{
    struct xc_interface *xch;
    uint32_t domid;
    const char *config_json;    /* libxl domain config, into the xl header */
    uint32_t xl_mandatory_flags;/* e.g. compression (ferry's extension) */

    /*
     * Suspend the domain: returns 0 once it is shut down for suspend, or
     * -errno.  Non-live saves call it first (unless the domain already is
     * suspended); live saves after the pre-copy passes.  NULL: the domain
     * must already be suspended, and a live save is refused.
     */
    int (*suspend)(void *arg);
    void *suspend_arg;

    bool live;                  /* log-dirty pre-copy (xl migrate) */
    bool debug;                 /* a VERIFY pass after the final one */
    /* Write ferry's digest trailer after the libxl END (sr.h): files and
     * ferry-to-ferry migrations do; a stream for Xen's tools need not. */
    bool trailer;
    const struct sr_precopy_policy *policy;     /* NULL: Xen's */

    sr_progress_fn *progress;   /* may be NULL */
    void *progress_arg;
    /* Polled once per batch: true aborts the save with -ECANCELED. */
    const _Atomic bool *cancel;
    struct sr_save_stats *stats;    /* filled in, may be NULL */
};

/*
 * Save: xl save-file header + libxl v2 stream + libxc v3 stream of a PV
 * domain to io.  Non-live, the domain is suspended and every PFN sent
 * once; live, log-dirty pre-copy passes run while the domain runs, then
 * it is suspended and the rest sent.  Either way the domain is left
 * suspended (shut down for suspend, not destroyed) whatever happens once
 * suspend was called, and log-dirty is off again on return: the caller
 * resumes or destroys it.
 */
int sr_save_domain(struct sr_io *io, const struct sr_save_args *a,
                   char *msg, size_t msglen);

struct sr_restore_args
{
    struct xc_interface *xch;
    /*
     * A builder session the caller opened (a confined parser, which can
     * open no connection of its own): the engine builds through it, the
     * caller closes it, and xch may then be NULL.  NULL: the engine opens
     * one with xch's host.
     */
    struct xc_interface *builder;
    bool paused;                /* leave the new domain paused */
    /* The new domain's shape, from the config the caller chose. */
    unsigned int max_vcpus;
    uint64_t max_memkb;
    uint8_t uuid[16];
    /*
     * The memory this restore was admitted with, in KiB: what a migration
     * receiver checked against its free memory, or the host's free memory
     * for a local restore.  Every allocation a stream field drives (the
     * P2M and its bookkeeping, record bodies) is checked against it, and
     * against max_memkb, before it happens.  Required.
     */
    uint64_t admitted_memkb;
    /*
     * The caller has already started the hash (sr_io_hash_start) and read
     * the xl header with sr_read_xl_hdr (to choose the config): the
     * engine starts at the libxl header.  Flags and config are given here.
     */
    bool xl_hdr_read;
    uint32_t xl_mandatory_flags;
    /*
     * The stream goes on after the trailer (a migration's handshake):
     * the trailer is then required, read exactly, and nothing past it.
     * Otherwise (a file) a missing trailer is Xen's file, and any byte
     * after a trailer is an error.
     */
    bool stream_continues;
    sr_progress_fn *progress;   /* may be NULL */
    void *progress_arg;
    const _Atomic bool *cancel; /* polled per record: -ECANCELED */
    /*
     * The domain is built through a builder session, and the daemon
     * destroys it if that session closes before it says the build is
     * done (xc_domain_build_done).  By default the engine says so at the
     * end of a successful restore and closes the session.  With
     * keep_builder the session is handed to the caller still open in
     * r->builder, so that the domain dies with the caller until the
     * caller settles it (names it, or is given "go"), then calls
     * xc_domain_build_done and xc_interface_close on it.
     */
    bool keep_builder;
    /*
     * Called once the domain exists, before any page goes into it (a
     * migration receiver names it then, not while the domain is down);
     * non-zero fails the restore with the message it wrote in msg.  May
     * be NULL.
     */
    int (*created)(void *arg, uint32_t domid, char *msg, size_t len);
    void *created_arg;
    /*
     * After a success, keep the engine's buffers in the result until
     * sr_restore_release(): freeing them costs milliseconds that a
     * migration's downtime need not include.
     */
    bool defer_release;
};

struct sr_restore_result
{
    uint32_t domid;
    bool digest_checked;        /* false: no ferry trailer (Xen's file) */
    char *config_json;          /* from the xl header; caller frees */
    uint64_t pages_received;    /* data pages, repeats included */
    uint64_t verify_mismatches; /* pages that differed in a VERIFY pass */
    uint64_t t_last_page_ns;    /* CLOCK_MONOTONIC: libxc END read */
    uint64_t t_done_ns;         /* contexts set, pinned, P2M rewritten */
    struct xc_interface *builder; /* keep_builder: the open session */
    void *scratch;              /* defer_release: sr_restore_release() */
};

/*
 * Restore a stream written by sr_save_domain (or Xen's) into a new domain
 * on the host.  Pages may arrive several times (a live stream): the last
 * copy wins.  On any failure the half-built domain is destroyed and the
 * host is as before; so it is if the process dies before the build is
 * done (see keep_builder).
 */
int sr_restore_domain(struct sr_io *io, const struct sr_restore_args *a,
                      struct sr_restore_result *r, char *msg, size_t msglen);
/* Free what a defer_release restore kept (idempotent; not the config). */
void sr_restore_release(struct sr_restore_result *r);

#endif /* FERRY_SAVERESTORE_SR_H */
