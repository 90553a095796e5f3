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
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    return 0;
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
    io->fd = fd;
    io->own_fd = true;
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

/* ---- transfers ------------------------------------------------------- */

static int io_hash(struct sr_io *io, const void *buf, size_t len)
{
    if ( !io->hashing || io->hash_paused || !len )
        return 0;
    if ( !EVP_DigestUpdate(io->md, buf, len) )
        return sr_io_fail(io, -EIO, "SHA-256 update failed at offset %llu",
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
        ssize_t n = io->ops->read(io, p + done, len - done);

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
        ssize_t n = io->ops->write(io, p + done, len - done);

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
    if ( (rc = io->ops->sync(io)) )
        return sr_io_fail(io, rc, "sync failed at offset %llu: %s",
                          (unsigned long long)io->offset, strerror(-rc));
    return 0;
}

/* ---- hashing --------------------------------------------------------- */

int sr_io_hash_start(struct sr_io *io)
{
    if ( io->err )
        return io->err;
    if ( !io->md && !(io->md = EVP_MD_CTX_new()) )
        return sr_io_fail(io, -ENOMEM, "cannot allocate a SHA-256 context");
    if ( !EVP_DigestInit_ex(io->md, EVP_sha256(), NULL) )
        return sr_io_fail(io, -EIO, "cannot start SHA-256");
    io->hashing = true;
    io->hash_paused = false;
    return 0;
}

void sr_io_hash_pause(struct sr_io *io, bool paused)
{
    io->hash_paused = paused;
}

int sr_io_hash_final(struct sr_io *io, uint8_t out[SR_SHA256_LEN])
{
    unsigned int len = 0;

    if ( io->err )
        return io->err;
    if ( !io->hashing )
        return sr_io_fail(io, -EINVAL, "SHA-256 finalised but not started");
    io->hashing = false;
    if ( !EVP_DigestFinal_ex(io->md, out, &len) || len != SR_SHA256_LEN )
        return sr_io_fail(io, -EIO, "cannot finalise SHA-256");
    return 0;
}

/* ---- ending ---------------------------------------------------------- */

static void io_free(struct sr_io *io)
{
    EVP_MD_CTX_free(io->md);
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
    else if ( !(rc = sr_io_sync(io)) && (rc = io->ops->close(io)) )
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
    rc = io->err;
    crc = io->ops->close(io);
    io_free(io);
    return rc ? rc : crc;
}
