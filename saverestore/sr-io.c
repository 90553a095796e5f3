/* SPDX-License-Identifier: MIT */
/*
 * sr-io.c: the byte channel under the save/restore streams, in the manner
 * of Redis's rio.
 *
 * A struct sr_io is a backend (an ops table: fd or memory) plus what every
 * stream needs whatever it runs over: all-or-nothing reads and writes, a
 * byte offset for messages, a running SHA-256, and a sticky error.  The
 * first failure is recorded with its errno and a message and from then on
 * every call returns it, so a long save can check once at the end and
 * still report the first cause.
 *
 * The fd backend loops over short transfers, retries EINTR and waits in
 * poll() on EAGAIN, so it works on files, pipes and (non-blocking)
 * sockets alike.  The atomic variant writes a temporary file beside the
 * target and renames it into place only on commit, so a half-written save
 * never replaces a good one.
 *
 * Compression (ferry's SR_XL_FLAG_FERRY_ZLIB files) sits between the
 * transfer loops and the backend: from sr_io_deflate_start() or
 * sr_io_inflate_start() on, bytes are compressed on their way out or
 * decompressed on their way in, while the offset and the digest go on
 * counting the uncompressed stream, so messages, the trailer's `covered`
 * and its digest mean the same with and without compression.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "sr-private.h"

/* ---- errors ---------------------------------------------------------- */

static int __attribute__((format(printf, 3, 0)))
io_vfail(struct sr_io *io, int err, const char *fmt, va_list ap)
{
    if ( io->err )
        return io->err;
    io->err = err;
    vsnprintf(io->msg, sizeof(io->msg), fmt, ap);
    return err;
}

int sr_io_fail(struct sr_io *io, int err, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = io_vfail(io, err, fmt, ap);
    va_end(ap);
    return rc;
}

int sr_io_error(const struct sr_io *io)
{
    return io->err;
}

const char *sr_io_errmsg(const struct sr_io *io)
{
    return io->msg;
}

uint64_t sr_io_offset(const struct sr_io *io)
{
    return io->offset;
}

/* ---- fd backend ------------------------------------------------------ */

static int fd_wait(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };

    while ( poll(&p, 1, -1) < 0 )
        if ( errno != EINTR )
            return -errno;
    return 0;
}

static ssize_t fd_read(struct sr_io *io, void *buf, size_t len)
{
    for ( ;; )
    {
        ssize_t n = read(io->fd, buf, len);
        int rc;

        if ( n >= 0 )
            return n;
        if ( errno == EINTR )
            continue;
        if ( errno != EAGAIN && errno != EWOULDBLOCK )
            return -errno;
        if ( (rc = fd_wait(io->fd, POLLIN)) )
            return rc;
    }
}

static ssize_t fd_write(struct sr_io *io, const void *buf, size_t len)
{
    for ( ;; )
    {
        ssize_t n = write(io->fd, buf, len);
        int rc;

        if ( n > 0 )
            return n;
        if ( n == 0 )
            return -EIO;    /* never for len > 0; do not spin */
        if ( errno == EINTR )
            continue;
        if ( errno != EAGAIN && errno != EWOULDBLOCK )
            return -errno;
        if ( (rc = fd_wait(io->fd, POLLOUT)) )
            return rc;
    }
}

static int fd_sync(struct sr_io *io)
{
    /* Pipes and sockets cannot be synced; that is not an error. */
    if ( fsync(io->fd) && errno != EINVAL && errno != EROFS )
        return -errno;
    return 0;
}

static int fd_close(struct sr_io *io)
{
    int rc = 0;

    if ( io->own_fd && io->fd >= 0 && close(io->fd) )
        rc = -errno;
    io->fd = -1;
    return rc;
}

static const struct sr_io_ops fd_ops = {
    .read = fd_read,
    .write = fd_write,
    .sync = fd_sync,
    .close = fd_close,
};

/* ---- memory backends ------------------------------------------------- */

static ssize_t mem_read(struct sr_io *io, void *buf, size_t len)
{
    size_t left = io->mem_len - io->mem_pos;

    if ( len > left )
        len = left;
    memcpy(buf, io->rmem + io->mem_pos, len);
    io->mem_pos += len;
    return len;
}

/* A reader refuses writes and a writer reads; both are caller bugs. */
static ssize_t mem_no_write(struct sr_io *io, const void *buf, size_t len)
{
    (void)io; (void)buf; (void)len;
    return -EBADF;
}

static ssize_t mem_write(struct sr_io *io, const void *buf, size_t len)
{
    if ( len > io->mem_cap - io->mem_len )
    {
        size_t cap = io->mem_cap ? io->mem_cap : 4096;
        uint8_t *p;

        while ( cap - io->mem_len < len )
        {
            if ( cap > SIZE_MAX / 2 )
                return -ENOMEM;
            cap *= 2;
        }
        if ( !(p = realloc(io->mem, cap)) )
            return -ENOMEM;
        io->mem = p;
        io->mem_cap = cap;
    }
    memcpy(io->mem + io->mem_len, buf, len);
    io->mem_len += len;
    return len;
}

static ssize_t mem_no_read(struct sr_io *io, void *buf, size_t len)
{
    (void)io; (void)buf; (void)len;
    return -EBADF;
}

static int mem_sync(struct sr_io *io)
{
    (void)io;
    return 0;
}

static int mem_close(struct sr_io *io)
{
    free(io->mem);
    io->mem = NULL;
    return 0;
}

static const struct sr_io_ops mem_writer_ops = {
    .read = mem_no_read,
    .write = mem_write,
    .sync = mem_sync,
    .close = mem_close,
};

static const struct sr_io_ops mem_reader_ops = {
    .read = mem_read,
    .write = mem_no_write,
    .sync = mem_sync,
    .close = mem_close,
};

const uint8_t *sr_io_mem_data(const struct sr_io *io, size_t *len)
{
    *len = io->mem_len;
    return io->ops == &mem_reader_ops ? io->rmem : io->mem;
}

/* ---- user backend ---------------------------------------------------- */

static ssize_t user_read(struct sr_io *io, void *buf, size_t len)
{
    return io->user->read ? io->user->read(io->user_arg, buf, len)
                          : -EBADF;
}

static ssize_t user_write(struct sr_io *io, const void *buf, size_t len)
{
    ssize_t n;

    if ( !io->user->write )
        return -EBADF;
    n = io->user->write(io->user_arg, buf, len);
    return n == 0 ? -EIO : n;  /* never 0 for len > 0: do not spin */
}

static int user_sync(struct sr_io *io)
{
    return io->user->sync ? io->user->sync(io->user_arg) : 0;
}

static int user_close(struct sr_io *io)
{
    return io->user->close ? io->user->close(io->user_arg) : 0;
}

static const struct sr_io_ops user_ops = {
    .read = user_read,
    .write = user_write,
    .sync = user_sync,
    .close = user_close,
};

/* ---- construction ---------------------------------------------------- */

static int io_new(struct sr_io **iop, const struct sr_io_ops *ops)
{
    struct sr_io *io = calloc(1, sizeof(*io));

    *iop = io;
    if ( !io )
        return -ENOMEM;
    io->ops = ops;
    io->fd = -1;
    return 0;
}

int sr_io_open_fd(struct sr_io **iop, int fd, bool own_fd)
{
    int rc = io_new(iop, &fd_ops);

    if ( rc )
        return rc;
    (*iop)->fd = fd;
    (*iop)->own_fd = own_fd;
    /* A save file we own is read ahead (a borrowed fd keeps its offset). */
    if ( own_fd && (rc = sr__io_file_read_start(*iop, fd)) )
    {
        (*iop)->own_fd = false;
        free(*iop);
        *iop = NULL;
    }
    return rc;
}

int sr_io_open_user(struct sr_io **iop, const struct sr_io_user_ops *ops,
                    void *arg)
{
    int rc = io_new(iop, &user_ops);

    if ( rc )
        return rc;
    (*iop)->user = ops;
    (*iop)->user_arg = arg;
    return 0;
}

int sr_io_set_user(struct sr_io *io, const struct sr_io_user_ops *ops,
                   void *arg)
{
    if ( io->ops != &user_ops )
        return -EINVAL;
    io->user = ops;
    io->user_arg = arg;
    return 0;
}

int sr_io_open_mem_writer(struct sr_io **iop)
{
    return io_new(iop, &mem_writer_ops);
}

int sr_io_open_mem_reader(struct sr_io **iop, const void *buf, size_t len)
{
    int rc = io_new(iop, &mem_reader_ops);

    if ( rc )
        return rc;
    (*iop)->rmem = buf;
    (*iop)->mem_len = len;
    return 0;
}

int sr_io_open_atomic(struct sr_io **iop, const char *path)
{
    struct sr_io *io = NULL;
    int rc, fd;

    *iop = NULL;
    if ( (rc = io_new(&io, &fd_ops)) )
        goto out;
    rc = -ENOMEM;
    if ( !(io->path = strdup(path)) ||
         asprintf(&io->tmp_path, "%s.tmp-XXXXXX", path) < 0 )
    {
        io->tmp_path = NULL;
        goto out;
    }
    if ( (fd = mkostemp(io->tmp_path, O_CLOEXEC)) < 0 )
    {
        rc = -errno;
        goto out;
    }
    if ( (rc = sr__io_file_start(io, fd)) )
    {
        close(fd);
        unlink(io->tmp_path);
        goto out;
    }
    *iop = io;
    io = NULL;
    rc = 0;

 out:
    if ( io )
    {
        free(io->tmp_path);
        free(io->path);
        free(io);
    }
    return rc;
}

/* ---- compression ----------------------------------------------------- */

/*
 * zlib between the stream and the backend (ferry's SR_XL_FLAG_FERRY_ZLIB).
 * io_xread()/io_xwrite() are what the transfer loops below call instead of
 * the backend: they pass bytes through, or compress/decompress them.  The
 * transfer loops keep the offset and the digest on their side, so both
 * count the uncompressed bytes whatever happens here; only raw_offset
 * counts what the backend moved.
 *
 * Writing, deflate's output collects in zbuf and goes to the backend a
 * full buffer at a time; sr_io_deflate_end() finishes the zlib stream.
 * Reading, zbuf holds input read ahead from the backend; what is left of
 * it when the zlib stream ends (a stream going on uncompressed) is kept
 * in pend and handed out before the backend is read again.
 */
#define SR_Z_NONE       0
#define SR_Z_DEFLATE    1
#define SR_Z_INFLATE    2
#define SR_ZBUF_SIZE    (256U << 10)
#define SR_Z_CHUNK      (1U << 30)      /* bytes per call: avail_in is uInt */

/* One backend read: the read-ahead left by a finished zlib stream first. */
static ssize_t raw_read(struct sr_io *io, void *buf, size_t len)
{
    ssize_t n;

    if ( io->pend_len )
    {
        n = len < io->pend_len ? len : io->pend_len;
        memcpy(buf, io->pend, n);
        io->pend += n;
        io->pend_len -= n;
        return n;
    }
    n = io->ops->read(io, buf, len);
    if ( n > 0 )
        io->raw_offset += n;
    return n;
}

/* Every byte of buf to the backend, or -errno. */
static int raw_write_all(struct sr_io *io, const uint8_t *buf, size_t len)
{
    while ( len )
    {
        ssize_t n = io->ops->write(io, buf, len);

        if ( n < 0 )
            return n;
        io->raw_offset += n;
        buf += n;
        len -= n;
    }
    return 0;
}

static int z_fail(struct sr_io *io, int err, const char *what, int zrc)
{
    const char *zmsg = io->z->msg ? io->z->msg : zError(zrc);

    if ( io->zmode == SR_Z_INFLATE )
        return sr_io_fail(io, err, "compressed stream corrupt at offset %llu"
                          " (compressed byte %llu): %s: %s",
                          (unsigned long long)(io->z_base + io->z->total_out),
                          (unsigned long long)sr_io_raw_offset(io), what,
                          zmsg);
    return sr_io_fail(io, err, "compression failed at offset %llu: %s: %s",
                      (unsigned long long)io->offset, what, zmsg);
}

/* Drop z's zlib state (not the struct nor the buffer). */
static void z_end(struct sr_io *io)
{
    if ( !io->z_live )
        return;
    if ( io->z_dir == SR_Z_DEFLATE )
        deflateEnd(io->z);
    else
        inflateEnd(io->z);
    io->z_live = false;
}

static int z_alloc(struct sr_io *io)
{
    if ( io->err )
        return io->err;
    if ( io->zmode != SR_Z_NONE )
        return sr_io_fail(io, -EINVAL, "compression started twice at "
                          "offset %llu", (unsigned long long)io->offset);
    if ( !io->z && !(io->z = calloc(1, sizeof(*io->z))) )
        return sr_io_fail(io, -ENOMEM, "cannot allocate a zlib stream");
    if ( !io->zbuf && !(io->zbuf = malloc(SR_ZBUF_SIZE)) )
        return sr_io_fail(io, -ENOMEM, "cannot allocate a zlib buffer");
    return 0;
}

int sr_io_deflate_start(struct sr_io *io, int level)
{
    int rc = z_alloc(io), zrc = Z_OK;

    if ( rc )
        return rc;
    if ( level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION )
        return sr_io_fail(io, -EINVAL, "zlib level %d out of range", level);
    /* Reuse zlib's state when it is already one of the same kind. */
    if ( io->z_live && io->z_dir == SR_Z_DEFLATE && io->z_level == level )
        zrc = deflateReset(io->z);
    else
    {
        z_end(io);
        zrc = deflateInit(io->z, level);
        io->z_live = zrc == Z_OK;
    }
    io->z_dir = SR_Z_DEFLATE;
    io->z_level = level;
    if ( zrc != Z_OK )
        return sr_io_fail(io, -ENOMEM, "cannot start zlib compression: %s",
                          zError(zrc));
    io->z->next_out = io->zbuf;
    io->z->avail_out = SR_ZBUF_SIZE;
    io->zmode = SR_Z_DEFLATE;
    return 0;
}

/* Write out what deflate has put in zbuf. */
static int z_drain(struct sr_io *io)
{
    size_t len = SR_ZBUF_SIZE - io->z->avail_out;
    int rc = raw_write_all(io, io->zbuf, len);

    io->z->next_out = io->zbuf;
    io->z->avail_out = SR_ZBUF_SIZE;
    if ( rc )
        return sr_io_fail(io, rc, "write failed at offset %llu: %s",
                          (unsigned long long)io->offset, strerror(-rc));
    return 0;
}

/* Run deflate with flush (Z_SYNC_FLUSH, Z_FINISH) until all is out. */
static int z_flush(struct sr_io *io, int flush)
{
    int zrc, rc;

    io->z->next_in = NULL;
    io->z->avail_in = 0;
    for ( ;; )
    {
        zrc = deflate(io->z, flush);
        if ( zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR )
            return z_fail(io, -EIO, "deflate", zrc);
        /* A full buffer may hide more output: drain and go again. */
        if ( io->z->avail_out == 0 )
        {
            if ( (rc = z_drain(io)) )
                return rc;
            continue;
        }
        if ( flush != Z_FINISH || zrc == Z_STREAM_END )
            break;
    }
    return z_drain(io);
}

int sr_io_deflate_end(struct sr_io *io)
{
    int rc;

    if ( io->err )
        return io->err;
    if ( io->zmode != SR_Z_DEFLATE )
        return 0;
    rc = z_flush(io, Z_FINISH);
    io->zmode = SR_Z_NONE;
    return rc;
}

int sr_io_inflate_start(struct sr_io *io)
{
    int rc = z_alloc(io), zrc;

    if ( rc )
        return rc;
    /* Input read ahead past an earlier zlib stream is this one's. */
    io->z->next_in = (uint8_t *)io->pend;
    io->z->avail_in = io->pend_len;
    io->pend_len = 0;
    if ( io->z_live && io->z_dir == SR_Z_INFLATE )
        zrc = inflateReset(io->z);
    else
    {
        z_end(io);
        zrc = inflateInit(io->z);
        io->z_live = zrc == Z_OK;
    }
    io->z_dir = SR_Z_INFLATE;
    if ( zrc != Z_OK )
        return sr_io_fail(io, -ENOMEM, "cannot start zlib decompression: %s",
                          zError(zrc));
    io->z_base = io->offset;
    io->zmode = SR_Z_INFLATE;
    return 0;
}

bool sr_io_compressing(const struct sr_io *io)
{
    return io->zmode != SR_Z_NONE;
}

uint64_t sr_io_raw_offset(const struct sr_io *io)
{
    uint64_t ahead = io->pend_len;

    if ( io->zmode == SR_Z_INFLATE )
        ahead += io->z->avail_in;
    return io->raw_offset - ahead;
}

/*
 * Decompress up to len bytes into buf: > 0 bytes produced, 0 at the end
 * of the backend's data, or -errno (recorded here, with the uncompressed
 * offset, so the message says what was wrong).  At the zlib stream's end
 * the io goes back to plain reads.
 */
static ssize_t z_read(struct sr_io *io, void *buf, size_t len)
{
    z_stream *z = io->z;
    size_t produced;
    int zrc;

    if ( len > SR_Z_CHUNK )
        len = SR_Z_CHUNK;
    z->next_out = buf;
    z->avail_out = len;
    while ( z->avail_out )
    {
        if ( !z->avail_in )
        {
            ssize_t n;

            /* Return what we have rather than wait on a pipe for more. */
            if ( z->avail_out != len )
                break;
            if ( (n = raw_read(io, io->zbuf, SR_ZBUF_SIZE)) <= 0 )
                return n;
            z->next_in = io->zbuf;
            z->avail_in = n;
        }
        zrc = inflate(z, Z_NO_FLUSH);
        if ( zrc == Z_STREAM_END )
        {
            io->pend = z->next_in;
            io->pend_len = z->avail_in;
            z->avail_in = 0;
            io->zmode = SR_Z_NONE;
            break;
        }
        if ( zrc != Z_OK && zrc != Z_BUF_ERROR )
            return z_fail(io, zrc == Z_MEM_ERROR ? -ENOMEM : -EINVAL,
                          "inflate", zrc);
    }
    produced = len - z->avail_out;
    /* The zlib stream ended exactly here: go on with plain reads. */
    if ( !produced )
        return raw_read(io, buf, len);
    return produced;
}

/* Compress all of buf into the stream: len, or -errno (recorded). */
static ssize_t z_write(struct sr_io *io, const void *buf, size_t len)
{
    z_stream *z = io->z;
    int zrc, rc;

    if ( len > SR_Z_CHUNK )
        len = SR_Z_CHUNK;
    z->next_in = (uint8_t *)buf;
    z->avail_in = len;
    while ( z->avail_in )
    {
        zrc = deflate(z, Z_NO_FLUSH);
        if ( zrc != Z_OK && zrc != Z_BUF_ERROR )
            return z_fail(io, -EIO, "deflate", zrc);
        if ( !z->avail_out && (rc = z_drain(io)) )
            return rc;
    }
    return len;
}

/* What the transfer loops call: the backend, through zlib when on. */
static ssize_t io_xread(struct sr_io *io, void *buf, size_t len)
{
    if ( io->zmode == SR_Z_INFLATE )
        return z_read(io, buf, len);
    return raw_read(io, buf, len);
}

static ssize_t io_xwrite(struct sr_io *io, const void *buf, size_t len)
{
    ssize_t n;

    if ( io->zmode == SR_Z_DEFLATE )
        return z_write(io, buf, len);
    n = io->ops->write(io, buf, len);
    if ( n > 0 )
        io->raw_offset += n;
    return n;
}

static void z_free(struct sr_io *io)
{
    z_end(io);
    free(io->z);
    free(io->zbuf);
}

/* ---- transfers ------------------------------------------------------- */

static int io_hash(struct sr_io *io, const void *buf, size_t len)
{
    bool ok;

    if ( !io->hashing || io->hash_paused || !len )
        return 0;
    io->hashed += len;
    ok = io->hash_alg == SR_FERRY_TRAILER_POLY1305
         ? EVP_MAC_update(io->mac, buf, len)
         : EVP_DigestUpdate(io->md, buf, len);
    if ( !ok )
        return sr_io_fail(io, -EIO, "digest update failed at offset %llu",
                          (unsigned long long)io->offset);
    return 0;
}

/*
 * Read exactly len bytes.  The offset counts the bytes moved even when the
 * read fails part way, so messages point at where the stream stopped.  At
 * end of stream the record layer wants to name the record it was reading,
 * so sr__io_read_eof() returns -ENODATA without recording it.
 */
int sr__io_read_eof(struct sr_io *io, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t done = 0;

    if ( io->err )
        return io->err;
    while ( done < len )
    {
        ssize_t n = io_xread(io, p + done, len - done);

        if ( n <= 0 )
        {
            io->offset += done;
            if ( n == 0 )
                return -ENODATA;
            return sr_io_fail(io, n, "read failed at offset %llu: %s",
                              (unsigned long long)io->offset,
                              strerror(-n));
        }
        done += n;
    }
    io->offset += len;
    return io_hash(io, buf, len);
}

int sr_io_read(struct sr_io *io, void *buf, size_t len)
{
    int rc = sr__io_read_eof(io, buf, len);

    if ( rc == -ENODATA && !io->err )
        return sr_io_fail(io, rc, "stream truncated at offset %llu",
                          (unsigned long long)io->offset);
    return rc;
}

int sr_io_write(struct sr_io *io, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t done = 0;

    if ( io->err )
        return io->err;
    while ( done < len )
    {
        ssize_t n = io_xwrite(io, p + done, len - done);

        if ( n < 0 )
        {
            io->offset += done;
            return sr_io_fail(io, n, "write failed at offset %llu: %s",
                              (unsigned long long)io->offset, strerror(-n));
        }
        done += n;
    }
    io->offset += len;
    return io_hash(io, buf, len);
}

int sr_io_writev(struct sr_io *io, const struct iovec *iov, int iovcnt)
{
    int i, rc = io->err;

    for ( i = 0; !rc && i < iovcnt; i++ )
        rc = sr_io_write(io, iov[i].iov_base, iov[i].iov_len);
    return rc;
}

int sr_io_skip(struct sr_io *io, uint64_t len)
{
    uint8_t buf[4096];
    int rc = io->err;

    while ( !rc && len )
    {
        size_t n = len < sizeof(buf) ? len : sizeof(buf);

        rc = sr_io_read(io, buf, n);
        len -= n;
    }
    return rc;
}

int sr_io_sync(struct sr_io *io)
{
    int rc;

    if ( io->err )
        return io->err;
    /* Compressed bytes still in zlib are not on the backend yet. */
    if ( io->zmode == SR_Z_DEFLATE && (rc = z_flush(io, Z_SYNC_FLUSH)) )
        return rc;
    if ( (rc = io->ops->sync(io)) )
        return sr_io_fail(io, rc, "sync failed at offset %llu: %s",
                          (unsigned long long)io->offset, strerror(-rc));
    return 0;
}

/* ---- hashing --------------------------------------------------------- */

/*
 * The digest is SHA-256 from start, as in the first ferry files, until an
 * xl header names Poly1305 (sr.h): the switch happens while only the
 * header has been hashed, and the header is hashed again with Poly1305,
 * so the trailer's digest always covers the stream from its first byte.
 * Poly1305's key is public and fixed: it is a checksum here, not a MAC.
 */
static int hash_init(struct sr_io *io, uint32_t alg)
{
    static const char key[] = SR_FERRY_POLY1305_KEY;
    EVP_MAC *mac;

    _Static_assert(sizeof(key) == 33, "Poly1305 key is 32 bytes");
    if ( alg == SR_FERRY_TRAILER_POLY1305 )
    {
        if ( !io->mac )
        {
            if ( !(mac = EVP_MAC_fetch(NULL, "POLY1305", NULL)) )
                return sr_io_fail(io, -EOPNOTSUPP,
                                  "this OpenSSL has no Poly1305");
            io->mac = EVP_MAC_CTX_new(mac);
            EVP_MAC_free(mac);
            if ( !io->mac )
                return sr_io_fail(io, -ENOMEM,
                                  "cannot allocate a Poly1305 context");
        }
        if ( !EVP_MAC_init(io->mac, (const unsigned char *)key, 32, NULL) )
            return sr_io_fail(io, -EIO, "cannot start Poly1305");
    }
    else
    {
        if ( !io->md && !(io->md = EVP_MD_CTX_new()) )
            return sr_io_fail(io, -ENOMEM,
                              "cannot allocate a SHA-256 context");
        if ( !EVP_DigestInit_ex(io->md, EVP_sha256(), NULL) )
            return sr_io_fail(io, -EIO, "cannot start SHA-256");
    }
    io->hash_alg = alg;
    io->hashed = 0;
    return 0;
}

int sr_io_hash_start(struct sr_io *io)
{
    int rc;

    if ( io->err )
        return io->err;
    if ( (rc = hash_init(io, SR_FERRY_TRAILER_SHA256)) )
        return rc;
    io->hashing = true;
    io->hash_paused = false;
    return 0;
}

uint32_t sr_io_hash_alg(const struct sr_io *io)
{
    return io->hash_alg;
}

int sr__io_hash_switch(struct sr_io *io, uint32_t alg, const void *seen,
                       size_t len)
{
    int rc;

    if ( io->err )
        return io->err;
    if ( !io->hashing || io->hashed != len )
        return sr_io_fail(io, -EINVAL, "digest switched after %llu bytes",
                          (unsigned long long)io->hashed);
    if ( alg == io->hash_alg )
        return 0;
    if ( (rc = hash_init(io, alg)) )
        return rc;
    return io_hash(io, seen, len);
}

void sr_io_hash_pause(struct sr_io *io, bool paused)
{
    io->hash_paused = paused;
}

int sr_io_hash_final(struct sr_io *io, uint8_t out[SR_SHA256_LEN])
{
    unsigned int len = 0;
    size_t tag = 0;

    if ( io->err )
        return io->err;
    if ( !io->hashing )
        return sr_io_fail(io, -EINVAL, "digest finalised but not started");
    io->hashing = false;
    memset(out, 0, SR_SHA256_LEN);
    if ( io->hash_alg == SR_FERRY_TRAILER_POLY1305 )
    {
        if ( !EVP_MAC_final(io->mac, out, &tag, SR_SHA256_LEN) ||
             tag != 16 )
            return sr_io_fail(io, -EIO, "cannot finalise Poly1305");
        return 0;
    }
    if ( !EVP_DigestFinal_ex(io->md, out, &len) || len != SR_SHA256_LEN )
        return sr_io_fail(io, -EIO, "cannot finalise SHA-256");
    return 0;
}

/* ---- ending ---------------------------------------------------------- */

static void io_free(struct sr_io *io)
{
    z_free(io);
    EVP_MD_CTX_free(io->md);
    EVP_MAC_CTX_free(io->mac);
    free(io->tmp_path);
    free(io->path);
    free(io);
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int fd, rc = 0;

    if ( !copy )
        return -ENOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if ( fd < 0 || fsync(fd) )
        rc = -errno;
    if ( fd >= 0 )
        close(fd);
    free(copy);
    return rc;
}

int sr_io_abort(struct sr_io *io)
{
    int rc = io->ops->close(io);

    if ( io->tmp_path && unlink(io->tmp_path) && !rc )
        rc = -errno;
    io_free(io);
    return rc;
}

int sr_io_commit(struct sr_io *io)
{
    int rc;

    if ( !io->tmp_path )
        rc = sr_io_fail(io, -EINVAL, "commit of a non-atomic stream");
    else if ( !(rc = sr_io_deflate_end(io)) && !(rc = sr_io_sync(io)) &&
              (rc = io->ops->close(io)) )
        sr_io_fail(io, rc, "close of %s failed: %s", io->tmp_path,
                   strerror(-rc));
    if ( rc )
        goto out;
    if ( rename(io->tmp_path, io->path) )
    {
        rc = -errno;
        goto out;
    }
    free(io->tmp_path);
    io->tmp_path = NULL;
    /* The rename is durable only once the directory is. */
    rc = fsync_dir_of(io->path);

 out:
    /* Abort keeps the old file (rc says why); close is idempotent. */
    if ( io->tmp_path )
        sr_io_abort(io);
    else
    {
        io->ops->close(io);
        io_free(io);
    }
    return rc;
}

int sr_io_close(struct sr_io *io)
{
    int rc, crc;

    if ( !io )
        return 0;
    if ( io->tmp_path )
    {
        rc = io->err;
        crc = sr_io_abort(io);
        return rc ? rc : crc;
    }
    /* A pipe's reader needs the end of the zlib stream. */
    rc = sr_io_deflate_end(io);
    crc = io->ops->close(io);
    io_free(io);
    return rc ? rc : crc;
}
