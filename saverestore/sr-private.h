/* SPDX-License-Identifier: MIT */
/*
 * sr-private.h: the insides of struct sr_io, shared by sr-io.c and
 * sr-stream.c and by nothing outside saverestore/.
 *
 * A backend supplies an ops table whose read/write may move fewer bytes
 * than asked (a pipe, a socket); sr-io.c loops until all bytes moved, keeps
 * the offset and the digest, and turns the first failure into the sticky
 * error.  Backends retry EINTR themselves and return -errno on failure,
 * 0 from read at end of stream.
 */
#ifndef FERRY_SAVERESTORE_SR_PRIVATE_H
#define FERRY_SAVERESTORE_SR_PRIVATE_H

#include <sys/types.h>

#include <openssl/evp.h>

#include "sr.h"

struct sr_io_ops
{
    ssize_t (*read)(struct sr_io *io, void *buf, size_t len);
    ssize_t (*write)(struct sr_io *io, const void *buf, size_t len);
    int (*sync)(struct sr_io *io);
    int (*close)(struct sr_io *io);
};

#define SR_ERRMSG_LEN 256

struct sr_io
{
    const struct sr_io_ops *ops;
    uint64_t offset;
    int err;                    /* sticky: 0 or -errno */
    char msg[SR_ERRMSG_LEN];

    EVP_MD_CTX *md;             /* allocated on the first hash_start */
    EVP_MAC_CTX *mac;           /* Poly1305, allocated on first use */
    uint32_t hash_alg;          /* SR_FERRY_TRAILER_SHA256 or _POLY1305 */
    uint64_t hashed;            /* bytes hashed since hash_start */
    bool hashing;
    bool hash_paused;

    /* fd backend */
    int fd;
    bool own_fd;
    char *path;                 /* atomic: the final path ... */
    char *tmp_path;             /* ... and the temporary one */
    struct sr_dw *dw;           /* atomic: sr-io-file.c's writer */
    struct sr_dr *dr;           /* a file read: sr-io-file.c's reader */

    /* memory backends */
    uint8_t *mem;
    const uint8_t *rmem;
    size_t mem_len;             /* bytes held (writer) or total (reader) */
    size_t mem_cap;
    size_t mem_pos;             /* reader position */

    /* user backend */
    const struct sr_io_user_ops *user;
    void *user_arg;

    /* zlib (sr-io.c's compression section): one z_stream and one buffer
     * per io, kept from one start to the next. */
    struct z_stream_s *z;
    uint8_t *zbuf;
    int zmode;                  /* SR_Z_NONE, SR_Z_DEFLATE, SR_Z_INFLATE */
    bool z_live;                /* z initialised for zmode's direction */
    int z_dir;                  /* direction z was initialised for */
    int z_level;                /* deflate level z was initialised at */
    uint64_t z_base;            /* offset where inflating started */
    uint64_t raw_offset;        /* bytes moved on the backend */
    const uint8_t *pend;        /* read ahead past a zlib stream's end */
    size_t pend_len;
};

/*
 * Make io (an atomic file's, fd its temporary file) write through
 * sr-io-file.c's aligned staging buffers and writer thread, with O_DIRECT
 * where the filesystem allows it.  On success io owns fd.
 */
int sr__io_file_start(struct sr_io *io, int fd);
/* Is io's file written with O_DIRECT (for tests)? */
bool sr__io_file_direct(const struct sr_io *io);
/*
 * If fd (which io owns) is a regular file open read-only, read it through
 * sr-io-file.c's read-ahead thread, with O_DIRECT for what is not cached;
 * anything else is left to the plain fd backend.  0 or -errno.
 */
int sr__io_file_read_start(struct sr_io *io, int fd);
/* How many chunks io's reader read with O_DIRECT (for tests). */
unsigned int sr__io_file_direct_reads(const struct sr_io *io);

/* sr_io_read() that leaves end of stream (-ENODATA) unrecorded. */
int sr__io_read_eof(struct sr_io *io, void *buf, size_t len);

/*
 * Switch the running digest to another algorithm (SR_FERRY_TRAILER_*)
 * while only the @len bytes @seen have been hashed: they are hashed again
 * with the new one.  sr-stream.c switches when the xl header names the
 * algorithm (SR_XL_OPTFLAG_FERRY_POLY1305).
 */
int sr__io_hash_switch(struct sr_io *io, uint32_t alg, const void *seen,
                       size_t len);

#endif /* FERRY_SAVERESTORE_SR_PRIVATE_H */
