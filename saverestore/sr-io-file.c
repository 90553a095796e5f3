/* SPDX-License-Identifier: MIT */
/*
 * sr-io-file.c: the backend of atomic save files (sr_io_open_atomic()),
 * which writes at the disk's speed rather than the page cache's.
 *
 * Through the page cache a save pays twice: every page of the file is
 * first touched (allocated and zeroed) in the cache, then written back at
 * fsync.  Here the bytes are gathered in a few aligned staging buffers,
 * allocated once and populated up front (MAP_POPULATE), and a writer
 * thread writes each full buffer with O_DIRECT while the caller fills the
 * next one, so preparing pages and writing them overlap on two cores.
 *
 * Restore reads such a file back the same way (the second half of this
 * file): a reader thread ahead of the caller, O_DIRECT for what is not
 * in the page cache.
 *
 * Records are not block-sized, so the file is written as whole blocks
 * only: a flush (sync or commit) writes the partial last block padded
 * with zeroes, truncates the file to its exact length, and keeps that
 * block's bytes in the buffer so that the next flush rewrites it whole.
 * Where O_DIRECT is refused (a filesystem without it: EINVAL from fcntl
 * or from a write) the same path goes on with buffered writes.
 *
 * Invariants.  Buffers are used as a ring: the writer owns the `queued`
 * buffers from `wr` on, the caller owns the one it fills (`fill`, which
 * is wr + queued modulo SR_DW_BUFS) and nothing else; the lock covers wr,
 * queued, stop and the writer's error.  The file offset of every buffer
 * is block-aligned.  Only the caller's thread touches struct sr_io: the
 * writer records its first error in the dw, and the caller turns it into
 * the io's sticky error on its next call.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sr-private.h"

#define SR_DW_BUFS      4
#define SR_DW_BUF_SIZE  (4U << 20)
#define SR_DW_ALIGN     4096U   /* covers every logical block size */

struct sr_dw
{
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_live;

    int fd;
    bool direct;                /* O_DIRECT is on for fd */
    uint8_t *mem;               /* SR_DW_BUFS buffers, one mapping */
    size_t len[SR_DW_BUFS];     /* bytes in a queued buffer */
    uint64_t off[SR_DW_BUFS];   /* its file offset (block-aligned) */

    /* Under lock. */
    unsigned int wr;            /* oldest queued buffer */
    unsigned int queued;        /* buffers handed to the writer */
    bool stop;
    int err;                    /* writer's first error, 0 or -errno */
    uint64_t err_off;           /* file offset it failed at */

    /* The caller's. */
    unsigned int fill;
    size_t fill_len;
    uint64_t fill_off;
};

static uint8_t *dw_buf(struct sr_dw *dw, unsigned int i)
{
    return dw->mem + (size_t)i * SR_DW_BUF_SIZE;
}

/* O_DIRECT on or off for the fd: 0, or -errno from fcntl. */
static int dw_set_direct(struct sr_dw *dw, bool on)
{
    int fl = fcntl(dw->fd, F_GETFL);

    if ( fl < 0 )
        return -errno;
    fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
    if ( fcntl(dw->fd, F_SETFL, fl) )
        return -errno;
    dw->direct = on;
    return 0;
}

/*
 * Write len bytes at off, all of them or -errno (*done says how far it
 * got).  A filesystem may refuse O_DIRECT only at the first write
 * (EINVAL): then the same bytes go again buffered.  A write of 0 bytes
 * for a non-empty buffer is a full device (-ENOSPC), not a reason to
 * spin.
 */
static int dw_pwrite(struct sr_dw *dw, const uint8_t *buf, size_t len,
                     uint64_t off, uint64_t *done)
{
    size_t pos = 0;

    while ( pos < len )
    {
        ssize_t n = pwrite(dw->fd, buf + pos, len - pos, off + pos);

        if ( n > 0 )
        {
            pos += n;
            continue;
        }
        if ( n == 0 )
            errno = ENOSPC;
        else if ( errno == EINTR )
            continue;
        else if ( errno == EINVAL && dw->direct && !dw_set_direct(dw, false) )
            continue;
        *done = off + pos;
        return -errno;
    }
    *done = off + pos;
    return 0;
}

static void *dw_writer(void *arg)
{
    struct sr_dw *dw = arg;

    pthread_mutex_lock(&dw->lock);
    for ( ;; )
    {
        unsigned int i;
        uint64_t done;
        int rc = 0;

        while ( !dw->queued && !dw->stop )
            pthread_cond_wait(&dw->cond, &dw->lock);
        if ( !dw->queued )
            break;
        i = dw->wr;
        /* After an error, buffers are dropped: the file is lost anyway. */
        if ( !dw->err )
        {
            pthread_mutex_unlock(&dw->lock);
            rc = dw_pwrite(dw, dw_buf(dw, i), dw->len[i], dw->off[i], &done);
            pthread_mutex_lock(&dw->lock);
            if ( rc && !dw->err )
            {
                dw->err = rc;
                dw->err_off = done;
            }
        }
        dw->wr = (dw->wr + 1) % SR_DW_BUFS;
        dw->queued--;
        pthread_cond_broadcast(&dw->cond);
    }
    pthread_mutex_unlock(&dw->lock);
    return NULL;
}

/* The writer's error as the io's sticky error, with where it happened. */
static int dw_check(struct sr_io *io)
{
    struct sr_dw *dw = io->dw;
    uint64_t off;
    int err;

    pthread_mutex_lock(&dw->lock);
    err = dw->err;
    off = dw->err_off;
    pthread_mutex_unlock(&dw->lock);
    if ( !err )
        return 0;
    return sr_io_fail(io, err, "write of %s failed at file offset %llu: %s",
                      io->tmp_path ? io->tmp_path : "the save file",
                      (unsigned long long)off, strerror(-err));
}

/* Hand the full fill buffer to the writer and wait for a free one. */
static int dw_queue_fill(struct sr_io *io)
{
    struct sr_dw *dw = io->dw;

    pthread_mutex_lock(&dw->lock);
    dw->len[dw->fill] = dw->fill_len;
    dw->off[dw->fill] = dw->fill_off;
    dw->queued++;
    pthread_cond_broadcast(&dw->cond);
    while ( dw->queued == SR_DW_BUFS && !dw->err )
        pthread_cond_wait(&dw->cond, &dw->lock);
    pthread_mutex_unlock(&dw->lock);
    dw->fill = (dw->fill + 1) % SR_DW_BUFS;
    dw->fill_off += dw->fill_len;
    dw->fill_len = 0;
    return dw_check(io);
}

static ssize_t dw_write(struct sr_io *io, const void *buf, size_t len)
{
    struct sr_dw *dw = io->dw;
    size_t n = SR_DW_BUF_SIZE - dw->fill_len;
    int rc;

    if ( (rc = dw_check(io)) )
        return rc;
    if ( n > len )
        n = len;
    memcpy(dw_buf(dw, dw->fill) + dw->fill_len, buf, n);
    dw->fill_len += n;
    if ( dw->fill_len == SR_DW_BUF_SIZE && (rc = dw_queue_fill(io)) )
        return rc;
    return n;
}

/*
 * Everything written so far into the file, and the file cut to its exact
 * length: the writer drained, the fill buffer written padded to a block,
 * the partial block kept at the start of the fill buffer.
 */
static int dw_flush(struct sr_io *io)
{
    struct sr_dw *dw = io->dw;
    uint8_t *b = dw_buf(dw, dw->fill);
    size_t whole = dw->fill_len & ~(size_t)(SR_DW_ALIGN - 1);
    size_t part = dw->fill_len - whole;
    size_t padded = part ? whole + SR_DW_ALIGN : whole;
    uint64_t end = dw->fill_off + dw->fill_len, done;
    int rc;

    pthread_mutex_lock(&dw->lock);
    while ( dw->queued )
        pthread_cond_wait(&dw->cond, &dw->lock);
    pthread_mutex_unlock(&dw->lock);
    if ( (rc = dw_check(io)) )
        return rc;
    memset(b + dw->fill_len, 0, padded - dw->fill_len);
    rc = dw_pwrite(dw, b, padded, dw->fill_off, &done);
    if ( !rc && ftruncate(dw->fd, end) )
    {
        rc = -errno;
        done = end;
    }
    if ( rc )
        return sr_io_fail(io, rc, "write of %s failed at file offset %llu: "
                          "%s", io->tmp_path, (unsigned long long)done,
                          strerror(-rc));
    memmove(b, b + whole, part);
    dw->fill_off += whole;
    dw->fill_len = part;
    return 0;
}

static ssize_t dw_no_read(struct sr_io *io, void *buf, size_t len)
{
    (void)io; (void)buf; (void)len;
    return -EBADF;
}

static int dw_sync(struct sr_io *io)
{
    int rc = dw_flush(io);

    if ( rc )
        return rc;
    if ( fdatasync(io->fd) )
        return -errno;
    return 0;
}

/* Stop the writer (dropping what is queued unwritten) and free it all. */
static int dw_close(struct sr_io *io)
{
    struct sr_dw *dw = io->dw;
    int rc = 0;

    if ( !dw )
        return 0;
    if ( dw->thread_live )
    {
        pthread_mutex_lock(&dw->lock);
        dw->stop = true;
        if ( !dw->err )
            dw->err = -ECANCELED;   /* unwritten buffers are dropped */
        pthread_cond_broadcast(&dw->cond);
        pthread_mutex_unlock(&dw->lock);
        pthread_join(dw->thread, NULL);
    }
    pthread_cond_destroy(&dw->cond);
    pthread_mutex_destroy(&dw->lock);
    if ( dw->mem )
        munmap(dw->mem, (size_t)SR_DW_BUFS * SR_DW_BUF_SIZE);
    free(dw);
    io->dw = NULL;
    if ( io->fd >= 0 && close(io->fd) )
        rc = -errno;
    io->fd = -1;
    return rc;
}

static const struct sr_io_ops dw_ops = {
    .read = dw_no_read,
    .write = dw_write,
    .sync = dw_sync,
    .close = dw_close,
};

int sr__io_file_start(struct sr_io *io, int fd)
{
    struct sr_dw *dw = calloc(1, sizeof(*dw));
    int rc = -ENOMEM, r;

    if ( !dw )
        goto out;
    dw->fd = fd;
    pthread_mutex_init(&dw->lock, NULL);
    pthread_cond_init(&dw->cond, NULL);
    dw->mem = mmap(NULL, (size_t)SR_DW_BUFS * SR_DW_BUF_SIZE,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if ( dw->mem == MAP_FAILED )
    {
        dw->mem = NULL;
        rc = -errno;
        goto out;
    }
    /* EINVAL: this filesystem has no O_DIRECT; buffered writes it is. */
    if ( (rc = dw_set_direct(dw, true)) && rc != -EINVAL )
        goto out;
    if ( (r = pthread_create(&dw->thread, NULL, dw_writer, dw)) )
    {
        rc = -r;
        goto out;
    }
    dw->thread_live = true;
    io->fd = fd;
    io->own_fd = true;
    io->ops = &dw_ops;
    io->dw = dw;
    dw = NULL;
    rc = 0;

 out:
    if ( dw )
    {
        if ( dw->mem )
            munmap(dw->mem, (size_t)SR_DW_BUFS * SR_DW_BUF_SIZE);
        pthread_cond_destroy(&dw->cond);
        pthread_mutex_destroy(&dw->lock);
        free(dw);
    }
    return rc;
}

bool sr__io_file_direct(const struct sr_io *io)
{
    return io->dw && io->dw->direct;
}

/* ---- reading a save file ---------------------------------------------- */

/*
 * Restore reads a file front to back.  A file wholly in the page cache is
 * left to plain reads, which copy it once into the caller's buffers.  Any
 * other is read ahead by a thread in large chunks into a ring of aligned
 * buffers while the caller parses and places pages, so disk time and
 * restore work overlap.  A chunk already in the page cache is copied from
 * there (mincore() says whether it is); a chunk that is not is read with
 * O_DIRECT, which moves it at the device's speed instead of the page
 * cache's readahead window at a time.  Where O_DIRECT is refused the
 * reads are plain, with sequential readahead advised.
 *
 * Invariants, as for the writer: the reader owns the SR_DR_BUFS - ready
 * buffers after the `ready` ones from `head`; the caller owns `head`
 * while ready > 0; the lock covers head, ready and stop.  The reader
 * stops after queueing a buffer of length 0 (end of file) or one with an
 * error, so that buffer stays at the head and every later read returns
 * the same.
 */
#define SR_DR_BUFS      4
#define SR_DR_BUF_SIZE  (4U << 20)

struct sr_dr
{
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_live;

    int fd;
    uint8_t *mem;
    size_t len[SR_DR_BUFS];
    int err[SR_DR_BUFS];        /* 0 or -errno for that chunk */
    uint64_t off;               /* the reader's next file offset */
    uint64_t size;              /* the file's, when opened */
    bool direct_ok;             /* O_DIRECT may be tried */
    bool direct;                /* O_DIRECT is on for fd */

    /* Under lock. */
    unsigned int direct_chunks; /* for tests: chunks read with O_DIRECT */
    unsigned int head;
    unsigned int ready;
    bool stop;

    /* The caller's. */
    size_t pos;                 /* in the head buffer */
};

static uint8_t *dr_buf(struct sr_dr *dr, unsigned int i)
{
    return dr->mem + (size_t)i * SR_DR_BUF_SIZE;
}

static int dr_set_direct(struct sr_dr *dr, bool on)
{
    int fl = fcntl(dr->fd, F_GETFL);

    if ( on == dr->direct )
        return 0;
    if ( fl < 0 )
        return -errno;
    fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
    if ( fcntl(dr->fd, F_SETFL, fl) )
        return -errno;
    dr->direct = on;
    return 0;
}

/*
 * Is all of [off, end) in the page cache?  mincore() on a mapping of it
 * asks without reading anything (a probing read would start readahead of
 * what is not there, and the disk would move those bytes twice).  Unsure
 * (mapping refused): no.
 */
static bool file_cached(int fd, uint64_t off, uint64_t end)
{
    unsigned char vec[SR_DR_BUF_SIZE / 4096];
    uint64_t start = off & ~(uint64_t)4095;
    bool all = true;

    while ( all && start < end )
    {
        size_t len = end - start < SR_DR_BUF_SIZE ? end - start
                                                   : SR_DR_BUF_SIZE;
        void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, start);

        if ( map == MAP_FAILED )
            return false;
        all = !mincore(map, len, vec);
        for ( size_t i = 0; all && i < (len + 4095) / 4096; i++ )
            all = vec[i] & 1;
        munmap(map, len);
        start += len;
    }
    return all;
}

static bool dr_cached(struct sr_dr *dr, uint64_t off)
{
    uint64_t end = off + SR_DR_BUF_SIZE;

    return file_cached(dr->fd, off, end < dr->size ? end : dr->size);
}

/*
 * Fill buf from off: the bytes read (short only at end of file) or
 * -errno.  From the page cache when all of it is there, else O_DIRECT.
 */
static ssize_t dr_read_chunk(struct sr_dr *dr, uint8_t *buf, uint64_t off)
{
    size_t done = 0;
    ssize_t n;

    if ( dr->direct_ok && dr_set_direct(dr, !dr_cached(dr, off)) )
        dr->direct_ok = false;
    while ( done < SR_DR_BUF_SIZE )
    {
        n = pread(dr->fd, buf + done, SR_DR_BUF_SIZE - done, off + done);
        if ( n > 0 )
        {
            done += n;
            /* O_DIRECT reads whole blocks; a short one is the end. */
            if ( dr->direct && done % SR_DW_ALIGN )
                break;
            continue;
        }
        if ( n == 0 )
            break;
        if ( errno == EINTR )
            continue;
        /* An odd start offset or a filesystem refusing: go buffered. */
        if ( errno == EINVAL && dr->direct )
        {
            dr->direct_ok = false;
            if ( !dr_set_direct(dr, false) )
                continue;
        }
        return -errno;
    }
    return done;
}

static void *dr_reader(void *arg)
{
    struct sr_dr *dr = arg;
    bool last = false;

    pthread_mutex_lock(&dr->lock);
    while ( !last )
    {
        unsigned int i;
        ssize_t n;

        while ( dr->ready == SR_DR_BUFS && !dr->stop )
            pthread_cond_wait(&dr->cond, &dr->lock);
        if ( dr->stop )
            break;
        i = (dr->head + dr->ready) % SR_DR_BUFS;
        pthread_mutex_unlock(&dr->lock);
        n = dr_read_chunk(dr, dr_buf(dr, i), dr->off);
        dr->len[i] = n > 0 ? n : 0;
        dr->err[i] = n < 0 ? n : 0;
        dr->off += dr->len[i];
        last = n <= 0;
        pthread_mutex_lock(&dr->lock);
        dr->direct_chunks += dr->direct && n > 0;
        dr->ready++;
        pthread_cond_broadcast(&dr->cond);
    }
    pthread_mutex_unlock(&dr->lock);
    return NULL;
}

static ssize_t dr_read(struct sr_io *io, void *buf, size_t len)
{
    struct sr_dr *dr = io->dr;
    unsigned int i;
    size_t n;

    pthread_mutex_lock(&dr->lock);
    while ( !dr->ready )
        pthread_cond_wait(&dr->cond, &dr->lock);
    i = dr->head;
    pthread_mutex_unlock(&dr->lock);
    if ( dr->err[i] )
        return dr->err[i];
    n = dr->len[i] - dr->pos;
    if ( n > len )
        n = len;
    memcpy(buf, dr_buf(dr, i) + dr->pos, n);
    dr->pos += n;
    if ( dr->len[i] && dr->pos == dr->len[i] )
    {
        dr->pos = 0;
        pthread_mutex_lock(&dr->lock);
        dr->head = (dr->head + 1) % SR_DR_BUFS;
        dr->ready--;
        pthread_cond_broadcast(&dr->cond);
        pthread_mutex_unlock(&dr->lock);
    }
    return n;
}

static ssize_t dr_no_write(struct sr_io *io, const void *buf, size_t len)
{
    (void)io; (void)buf; (void)len;
    return -EBADF;
}

static int dr_sync(struct sr_io *io)
{
    (void)io;
    return 0;
}

static int dr_close(struct sr_io *io)
{
    struct sr_dr *dr = io->dr;
    int rc = 0;

    if ( !dr )
        return 0;
    if ( dr->thread_live )
    {
        pthread_mutex_lock(&dr->lock);
        dr->stop = true;
        pthread_cond_broadcast(&dr->cond);
        pthread_mutex_unlock(&dr->lock);
        pthread_join(dr->thread, NULL);
    }
    pthread_cond_destroy(&dr->cond);
    pthread_mutex_destroy(&dr->lock);
    if ( dr->mem )
        munmap(dr->mem, (size_t)SR_DR_BUFS * SR_DR_BUF_SIZE);
    free(dr);
    io->dr = NULL;
    if ( io->fd >= 0 && close(io->fd) )
        rc = -errno;
    io->fd = -1;
    return rc;
}

static const struct sr_io_ops dr_ops = {
    .read = dr_read,
    .write = dr_no_write,
    .sync = dr_sync,
    .close = dr_close,
};

int sr__io_file_read_start(struct sr_io *io, int fd)
{
    struct sr_dr *dr = NULL;
    struct stat st;
    off_t pos;
    int rc = 0, r, fl = fcntl(fd, F_GETFL);

    /*
     * Only a file read front to back from where it stands, and not one
     * wholly in the page cache: plain reads copy that once, straight into
     * the caller's buffers, and a thread could only add a copy.
     */
    if ( fl < 0 || (fl & O_ACCMODE) != O_RDONLY || fstat(fd, &st) ||
         !S_ISREG(st.st_mode) || (pos = lseek(fd, 0, SEEK_CUR)) < 0 ||
         file_cached(fd, pos, st.st_size) )
        goto out;
    rc = -ENOMEM;
    if ( !(dr = calloc(1, sizeof(*dr))) )
        goto out;
    dr->fd = fd;
    dr->off = pos;
    dr->size = st.st_size;
    dr->direct = fl & O_DIRECT;
    dr->direct_ok = true;
    pthread_mutex_init(&dr->lock, NULL);
    pthread_cond_init(&dr->cond, NULL);
    dr->mem = mmap(NULL, (size_t)SR_DR_BUFS * SR_DR_BUF_SIZE,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if ( dr->mem == MAP_FAILED )
    {
        dr->mem = NULL;
        rc = -errno;
        goto out;
    }
    /* Page-cache readahead is for the plain reads only. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if ( (r = pthread_create(&dr->thread, NULL, dr_reader, dr)) )
    {
        rc = -r;
        goto out;
    }
    dr->thread_live = true;
    io->ops = &dr_ops;
    io->dr = dr;
    dr = NULL;
    rc = 0;

 out:
    if ( dr )
    {
        if ( dr->mem )
            munmap(dr->mem, (size_t)SR_DR_BUFS * SR_DR_BUF_SIZE);
        pthread_cond_destroy(&dr->cond);
        pthread_mutex_destroy(&dr->lock);
        free(dr);
    }
    return rc;
}

unsigned int sr__io_file_direct_reads(const struct sr_io *io)
{
    unsigned int n = 0;

    if ( io->dr )
    {
        pthread_mutex_lock(&io->dr->lock);
        n = io->dr->direct_chunks;
        pthread_mutex_unlock(&io->dr->lock);
    }
    return n;
}
