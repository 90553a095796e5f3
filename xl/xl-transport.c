/* SPDX-License-Identifier: MIT */
/*
 * xl-transport.c: the channels that carry a migration between `xl
 * migrate` and `xl migrate-receive` (see xl-transport.h for the target
 * forms and the contract).
 *
 * A channel is a pair of fds (the same socket twice for TCP), optionally a
 * TLS session on the socket, optionally the child process at the other end
 * of the pipes, and an sr_io whose read/write callbacks are ours.  Reads
 * go through a 64 KiB buffer (large reads bypass it), so line-oriented
 * handshake reads cost a memcpy per byte, not a syscall.
 *
 * Blocking model: fds we created (our pipe ends, sockets) are
 * non-blocking and every operation that would block waits in poll(), which
 * is where timeouts and cancellation are applied.  The receiver's inherited
 * stdin/stdout may be shared with other processes (a terminal, sshd's
 * pipes), so their flags are left alone: we poll first and then do a
 * blocking read/write.
 *
 * Invariants: every fd we open is close-on-exec (the receivers we start
 * must not hold the ends of other channels, or a dead peer would never
 * show as end-of-stream); SIGPIPE is ignored; the io's first error is the
 * one reported, and TLS failures store a message naming the failure before
 * they return, so sr_io_errmsg() says "TLS ..." rather than "Protocol
 * error".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "xl.h"
#include "xl-transport.h"
#include "xl-rec.h"
#include "../saverestore/sr.h"

#define RBUF_SIZE           (64U << 10)
#define AUTH_TIMEOUT_MS     10000
#define KEY_LEN             32
#define NONCE_LEN           32
#define TAG_LEN             32
#define AUTH_LINE_MAX       256
/* A whole MAC record fits (its data starts after the header). */
#define RBUF_ALLOC          (XL_REC_HDR_LEN + XL_REC_MAX + XL_REC_TAG_LEN)
#define CONNECT_TIMEOUT_MS  15000
#define CLOSE_WAIT_MS       10000
#define LINK_DEAD_MS        10000
#define WATCH_SLICE_MS      1000
#define PIPE_WIDE           (1U << 20)
/* The sender's writer thread: buffers of one record's data each. */
#define WQ_BUFS             16
#define WQ_DATA             XL_REC_MAX
#define WRITER_SLICE_MS     100

struct xl_chan {
    enum xl_chan_kind kind;
    int rfd, wfd;               /* equal for sockets; -1 once closed */
    bool tcp;                   /* a TCP socket: watch the link */
    SSL_CTX *ctx;
    SSL *ssl;
    bool tls_shut;              /* close_notify sent */
    struct sr_io *io;

    pid_t pid;                  /* child at the far end of the pipes */
    bool reaped;
    int status;

    const _Atomic bool *cancel;
    int timeout_ms;

    uint8_t *rbuf;
    size_t rpos, rlen;

    /* The sender's writer thread, while xl_chan_async() has it on. */
    struct chan_wq *wq;

    /* Authenticated tcp://: every byte travels in MAC'd records. */
    bool mac;
    EVP_CIPHER_CTX *mac_tx, *mac_rx;
    uint64_t seq_tx, seq_rx;

    /* For xl_chan_reopen and messages. */
    char *target;
    char *rune;                 /* HOST: the shell command */
    char *ssh_command;
    char **recv_args;
    char *tls_cert, *tls_key, *tls_ca, *tls_crl, *tls_allow, *tls_name;
    char *key_file;
    bool insecure;
    int connect_timeout_ms;
    char peer[INET6_ADDRSTRLEN + 16];
    char tls_expect[256];       /* the name the target must carry */
};

/* ---- small helpers --------------------------------------------------- */

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static bool cancelled(const struct xl_chan *ch)
{
    return ch->cancel && atomic_load(ch->cancel);
}

/*
 * The writer thread's failure message (see xl_chan_async): the io belongs
 * to the engine's thread, so the writer keeps its first message here and
 * the engine's thread hands it to the io when it meets the error.
 */
static _Thread_local char *writer_msg;

#define WRITER_MSG_LEN      256

/* Record a transfer failure: in the io, or for the writer thread in its
 * own message.  Returns err. */
static int chan_fail(struct xl_chan *ch, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int chan_fail(struct xl_chan *ch, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (writer_msg) {
        if (!writer_msg[0])
            vsnprintf(writer_msg, WRITER_MSG_LEN, fmt, ap);
    } else if (ch->io && !sr_io_error(ch->io)) {
        char msg[WRITER_MSG_LEN];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        sr_io_fail(ch->io, err, "%s", msg);
    }
    va_end(ap);
    return err;
}

/* The most useful text of OpenSSL's error queue, which it then clears. */
static const char *ssl_errstr(char *buf, size_t len)
{
    unsigned long e, last = 0;

    while ((e = ERR_get_error()))
        last = e;
    if (!last) {
        snprintf(buf, len, "%s", errno ? strerror(errno) : "unknown error");
        return buf;
    }
    ERR_error_string_n(last, buf, len);
    /* "error:0A000086:SSL routines::certificate verify failed": keep the
     * reason, which is what a person can act on. */
    {
        const char *r = ERR_reason_error_string(last);

        if (r)
            snprintf(buf, len, "%s", r);
    }
    return buf;
}

/* A file of the host's run directory (xl -H, FERRY_RUNDIR, or the
 * default), where a host keeps its credentials. */
static char *run_dir_file(const char *sub, const char *name)
{
    const char *dir = run_dir;
    char *p;

    if (!dir)
        dir = getenv("FERRY_RUNDIR");
    if (!dir)
        dir = "/run/ferry";
    if (asprintf(&p, "%s/%s%s", dir, sub, name) < 0)
        return NULL;
    return p;
}

char *xl_tls_default_path(const char *name)
{
    return run_dir_file("tls/", name);
}

static bool wq_stopping(const struct xl_chan *ch);

/* ---- waiting --------------------------------------------------------- */

/*
 * Whether a TCP link is down: nothing has come back from the peer for
 * LINK_DEAD_MS although it owes us something: an acknowledgement of bytes
 * in flight, or answers to window probes (the kernel counts the probes
 * still unanswered; a live peer answers each, so the count stays at 0 or
 * 1 however far apart the backed-off probes are).
 *
 * Why not TCP_USER_TIMEOUT: Linux applies it to a closed window too, so a
 * receiver that is alive but does not read for that long (a slow restore,
 * a sanitizer build) had its connection killed.  An idle link (nothing
 * owed) is watched by keepalive instead.
 */
static bool link_dead(struct xl_chan *ch, int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return false;
    if (ti.tcpi_unacked == 0 && ti.tcpi_probes < 2)
        return false;
    if (ti.tcpi_last_ack_recv < LINK_DEAD_MS)
        return false;
    chan_fail(ch, -ETIMEDOUT, "no acknowledgement from %s for %u s: the "
              "link is down", ch->peer[0] ? ch->peer : "peer",
              LINK_DEAD_MS / 1000);
    return true;
}

/*
 * How long the next poll of a wait begun at start may sleep: a TCP link
 * is checked every WATCH_SLICE_MS, the writer thread (which has signals
 * blocked and looks at the flags that stop it instead) every
 * WRITER_SLICE_MS, and no wait outlasts the channel's timeout.  False once
 * that timeout is spent; -1 in *slice: no limit.
 */
static bool wait_slice(const struct xl_chan *ch, int64_t start, bool writer,
                       int *slice)
{
    *slice = ch->tcp ? WATCH_SLICE_MS : -1;
    if (writer && (*slice < 0 || *slice > WRITER_SLICE_MS))
        *slice = WRITER_SLICE_MS;
    if (ch->timeout_ms > 0) {
        int64_t left = start + ch->timeout_ms - now_ms();

        if (left <= 0)
            return false;
        if (*slice < 0 || left < *slice)
            *slice = (int)left;
    }
    return true;
}

/*
 * Wait until fd is ready for events.  POLLERR/POLLHUP count as ready: the
 * operation that follows reports what happened.  TCP links are checked
 * every WATCH_SLICE_MS while we wait.
 */
static int wait_fd(struct xl_chan *ch, int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    int64_t start = now_ms();
    int n, slice;

    for (;;) {
        if (!wait_slice(ch, start, writer_msg != NULL, &slice))
            return -ETIMEDOUT;
        n = poll(&p, 1, slice);
        if (n > 0)
            return 0;
        if (n < 0) {
            if (errno != EINTR)
                return -errno;
            if (cancelled(ch))
                return -ECANCELED;
            continue;
        }
        if (ch->tcp && link_dead(ch, fd))
            return -ETIMEDOUT;
        if (writer_msg && (cancelled(ch) || wq_stopping(ch)))
            return -ECANCELED;
    }
}

/* ---- raw fd and TLS transfer ----------------------------------------- */

static bool is_socket_kind(enum xl_chan_kind k)
{
    return k == XL_CHAN_TCP || k == XL_CHAN_TLS || k == XL_CHAN_FD;
}

/*
 * After a read or write on fd failed: 0 to try it again (once fd is ready
 * for events, if it would have blocked), or the -errno that ends it.
 */
static int io_failed(struct xl_chan *ch, int fd, short events)
{
    int e = errno;

    if (e == EAGAIN)
        return wait_fd(ch, fd, events);
    if (e == EINTR)
        return cancelled(ch) ? -ECANCELED : 0;
    return -e;
}

static ssize_t fd_read(struct xl_chan *ch, void *buf, size_t len)
{
    bool blocking = ch->kind == XL_CHAN_STDIO;
    ssize_t n;
    int rc;

    for (;;) {
        if (blocking && (rc = wait_fd(ch, ch->rfd, POLLIN)))
            return rc;
        n = read(ch->rfd, buf, len);
        if (n >= 0)
            return n;
        if ((rc = io_failed(ch, ch->rfd, POLLIN)))
            return rc;
    }
}

static ssize_t fd_write(struct xl_chan *ch, const void *buf, size_t len)
{
    bool blocking = ch->kind == XL_CHAN_STDIO;
    ssize_t n;
    int rc;

    if (ch->wfd < 0)
        return -EPIPE;
    for (;;) {
        if (blocking && (rc = wait_fd(ch, ch->wfd, POLLOUT)))
            return rc;
        if (is_socket_kind(ch->kind))
            n = send(ch->wfd, buf, len, MSG_NOSIGNAL);
        else
            n = write(ch->wfd, buf, len);
        if (n >= 0)
            return n;
        if ((rc = io_failed(ch, ch->wfd, POLLOUT)))
            return rc;
    }
}

/*
 * After an SSL call returned r <= 0: wait and retry (1), end of stream
 * (0), or fail (-errno, message stored on the io).
 */
static int tls_want(struct xl_chan *ch, int r, const char *what)
{
    char msg[256];
    int e = SSL_get_error(ch->ssl, r), rc;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        rc = wait_fd(ch, ch->rfd, POLLIN);
        return rc ? rc : 1;
    case SSL_ERROR_WANT_WRITE:
        rc = wait_fd(ch, ch->rfd, POLLOUT);
        return rc ? rc : 1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            /* The peer vanished without close_notify: for reads that is
             * end-of-stream (the stream has its own end markers). */
            if (errno == 0 || errno == EAGAIN)
                return 0;
            if (errno == EINTR)
                return cancelled(ch) ? -ECANCELED : 1;
            return -errno;
        }
        /* fall through */
    default:
        ssl_errstr(msg, sizeof(msg));
        return chan_fail(ch, -EPROTO, "TLS %s with %s failed: %s", what,
                         ch->peer[0] ? ch->peer : "peer", msg);
    }
}

static ssize_t tls_read(struct xl_chan *ch, void *buf, size_t len)
{
    int r, rc;

    if (len > INT_MAX)
        len = INT_MAX;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        r = SSL_read(ch->ssl, buf, (int)len);
        if (r > 0)
            return r;
        rc = tls_want(ch, r, "read");
        if (rc <= 0)
            return rc;
    }
}

static ssize_t tls_write(struct xl_chan *ch, const void *buf, size_t len)
{
    int r, rc;

    if (ch->tls_shut)
        return -EPIPE;
    if (len > INT_MAX)
        len = INT_MAX;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        r = SSL_write(ch->ssl, buf, (int)len);
        if (r > 0)
            return r;
        rc = tls_want(ch, r, "write");
        if (rc == 0)
            return -EPIPE;
        if (rc < 0)
            return rc;
    }
}

static ssize_t raw_read(struct xl_chan *ch, void *buf, size_t len)
{
    return ch->ssl ? tls_read(ch, buf, len) : fd_read(ch, buf, len);
}

/* ---- MAC records (authenticated tcp://, format in xl-rec.h) --------- */

/* Exactly len bytes from the socket: 0, -ENODATA at end of stream before
 * the first byte, -EPROTO at end of stream after it, or -errno. */
static int read_full(struct xl_chan *ch, void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = fd_read(ch, (uint8_t *)buf + done, len - done);

        if (n < 0)
            return (int)n;
        if (n == 0)
            return done ? -EPROTO : -ENODATA;
        done += (size_t)n;
    }
    return 0;
}

/*
 * The next record: its data into dst when it fits in cap bytes (a large
 * read of the restore goes straight to its buffer, without a copy), else
 * into rbuf + XL_REC_HDR_LEN.  Returns its length, 0 at end of stream,
 * or -errno (the io says why).  On an error dst may hold bytes that
 * failed the check; the io's error is sticky, so nothing reads them.
 */
static ssize_t rec_read(struct xl_chan *ch, void *dst, size_t cap,
                        bool *direct)
{
    const char *peer = ch->peer[0] ? ch->peer : "peer";
    uint8_t *data, *tag;
    uint32_t n;
    int rc;

    *direct = false;
    rc = read_full(ch, ch->rbuf, XL_REC_HDR_LEN);
    if (rc == -ENODATA)
        return 0;
    if (!rc) {
        if (xl_rec_len(ch->rbuf, &n))
            return sr_io_fail(ch->io, -EBADMSG, "record %" PRIu64 " from %s"
                              " claims %u bytes (at most %u): the stream "
                              "was changed on the path", ch->seq_rx, peer,
                              n, XL_REC_MAX);
        *direct = n <= cap;
        data = *direct ? dst : ch->rbuf + XL_REC_HDR_LEN;
        tag = *direct ? ch->rbuf + XL_REC_HDR_LEN : data + n;
        rc = read_full(ch, data, n);
        if (!rc)
            rc = read_full(ch, tag, XL_REC_TAG_LEN);
        /* End of stream after the header is inside the record. */
        if (rc == -ENODATA)
            rc = -EPROTO;
    }
    if (rc == -EPROTO)
        return sr_io_fail(ch->io, -EPROTO, "%s closed the connection in "
                          "the middle of record %" PRIu64, peer, ch->seq_rx);
    if (rc)
        return rc;
    if (*direct)
        rc = xl_rec_check(ch->mac_rx, ch->seq_rx, ch->rbuf, data, n, tag);
    else
        rc = xl_rec_open(ch->mac_rx, ch->seq_rx, ch->rbuf, XL_REC_HDR_LEN +
                         (size_t)n + XL_REC_TAG_LEN, &n);
    if (rc == -EBADMSG)
        return sr_io_fail(ch->io, -EBADMSG, "record %" PRIu64 " from %s "
                          "failed its MAC: the stream was changed on the "
                          "path", ch->seq_rx, peer);
    if (rc)
        return sr_io_fail(ch->io, -EIO, "cannot compute a record's MAC");
    ch->seq_rx++;
    return n;
}

/* Write all of iov (changed in place) to the socket. */
static int send_all(struct xl_chan *ch, struct iovec *iov, int cnt)
{
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
    ssize_t n;
    int rc;

    while (mh.msg_iovlen) {
        n = sendmsg(ch->wfd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if ((rc = io_failed(ch, ch->wfd, POLLOUT)))
                return rc;
            continue;
        }
        while (mh.msg_iovlen && (size_t)n >= mh.msg_iov->iov_len) {
            n -= (ssize_t)mh.msg_iov->iov_len;
            mh.msg_iov++;
            mh.msg_iovlen--;
        }
        if (mh.msg_iovlen) {
            mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + n;
            mh.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static ssize_t rec_write(struct xl_chan *ch, const void *buf, size_t len)
{
    uint8_t hdr[XL_REC_HDR_LEN], tag[XL_REC_TAG_LEN];
    size_t n = len < XL_REC_MAX ? len : XL_REC_MAX;
    struct iovec iov[3];
    int rc;

    if (ch->wfd < 0)
        return -EPIPE;
    xl_rec_hdr((uint32_t)n, hdr);
    if (xl_rec_tag(ch->mac_tx, ch->seq_tx, hdr, buf, n, tag))
        return sr_io_fail(ch->io, -EIO, "cannot compute a record's MAC");
    iov[0] = (struct iovec){ hdr, XL_REC_HDR_LEN };
    iov[1] = (struct iovec){ (void *)buf, n };
    iov[2] = (struct iovec){ tag, XL_REC_TAG_LEN };
    if ((rc = send_all(ch, iov, 3)))
        return rc;
    ch->seq_tx++;
    return (ssize_t)n;
}

/* ---- the sender's writer thread (xl_chan_async) ---------------------- */

/*
 * While the sender streams a domain, the engine's thread only copies what
 * it writes into a ring of record-sized buffers.  A second thread takes
 * each full buffer, puts the record's header and tag around its data in
 * place (MAC'd tcp://) and sends it in one call, or hands the data to
 * SSL_write or the pipe.  So reading pages and hashing the stream overlap
 * with the MAC, the encryption and the socket's copy, and small writes
 * (record headers, PFN lists) share records instead of costing a record
 * and a syscall each.
 *
 * Only the writer touches the fds, the TLS session and seq_tx while it
 * runs: the engine's thread empties the ring (wq_drain) before it reads,
 * and stops the writer before anything else uses them.  The writer's
 * first error stops it; the engine's thread reports it, with the writer's
 * message, on its next write or when it turns the writer off.
 */
struct wq_buf {
    uint8_t *mem;               /* header, up to WQ_DATA bytes, tag */
    size_t len;                 /* data bytes, once queued */
};

struct chan_wq {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a buffer was queued, or stop */
    pthread_cond_t room;        /* a buffer was sent, or the writer ended */
    struct wq_buf buf[WQ_BUFS];
    unsigned int head;          /* the oldest queued buffer */
    unsigned int queued;        /* queued buffers, the one in flight too */
    size_t fill;                /* data in buf[head + queued], the one the
                                 * engine fills (engine's thread only) */
    bool ended;                 /* the writer returned */
    _Atomic bool stop;          /* the writer must return */
    int err;                    /* the writer's first error */
    char msg[WRITER_MSG_LEN];   /* and what it said about it, if anything */
};

static bool wq_stopping(const struct xl_chan *ch)
{
    return ch->wq && atomic_load(&ch->wq->stop);
}

/* Writer thread: send one buffer, as a record (in place) or plainly. */
static int wq_send(struct xl_chan *ch, struct wq_buf *b)
{
    uint8_t *data = b->mem + XL_REC_HDR_LEN;
    struct iovec iov;
    int rc;

    if (ch->mac) {
        xl_rec_hdr((uint32_t)b->len, b->mem);
        if (xl_rec_tag(ch->mac_tx, ch->seq_tx, b->mem, data, b->len,
                       data + b->len))
            return chan_fail(ch, -EIO, "cannot compute a record's MAC");
        iov = (struct iovec){ b->mem, XL_REC_HDR_LEN + b->len +
                                      XL_REC_TAG_LEN };
        if ((rc = send_all(ch, &iov, 1)))
            return rc;
        ch->seq_tx++;
        return 0;
    }
    for (size_t done = 0; done < b->len;) {
        ssize_t n = ch->ssl ? tls_write(ch, data + done, b->len - done)
                            : fd_write(ch, data + done, b->len - done);

        if (n <= 0)
            return n ? (int)n : -EIO;
        done += (size_t)n;
    }
    return 0;
}

static void *wq_main(void *arg)
{
    struct xl_chan *ch = arg;
    struct chan_wq *wq = ch->wq;
    int rc = 0;

    writer_msg = wq->msg;
    pthread_mutex_lock(&wq->mu);
    for (;;) {
        while (!wq->queued && !atomic_load(&wq->stop))
            pthread_cond_wait(&wq->work, &wq->mu);
        if (atomic_load(&wq->stop))
            break;
        pthread_mutex_unlock(&wq->mu);
        rc = wq_send(ch, &wq->buf[wq->head]);
        pthread_mutex_lock(&wq->mu);
        if (rc) {
            wq->err = rc;
            break;
        }
        wq->head = (wq->head + 1) % WQ_BUFS;
        wq->queued--;
        pthread_cond_broadcast(&wq->room);
    }
    wq->ended = true;
    pthread_cond_broadcast(&wq->room);
    pthread_mutex_unlock(&wq->mu);
    return NULL;
}

/*
 * Engine's thread, mu held: wait until at most limit buffers are queued.
 * 0, the writer's error, or -ECANCELED (the cancel flag, looked at every
 * WRITER_SLICE_MS: a signal need not end a condition wait).
 */
static int wq_wait(struct xl_chan *ch, unsigned int limit)
{
    struct chan_wq *wq = ch->wq;
    struct timespec ts;

    while (wq->queued > limit) {
        if (wq->err)
            return wq->err;
        if (wq->ended)
            return -EPIPE;
        if (cancelled(ch))
            return -ECANCELED;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WRITER_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wq->room, &wq->mu, &ts);
    }
    return wq->err;
}

/* Engine's thread, mu held: queue the buffer being filled. */
static void wq_submit(struct chan_wq *wq)
{
    wq->buf[(wq->head + wq->queued) % WQ_BUFS].len = wq->fill;
    wq->queued++;
    wq->fill = 0;
    pthread_cond_signal(&wq->work);
}

/*
 * The writer's error as the io's, with its message when it left one (it
 * writes the message before it sets err, under mu).
 */
static int wq_report(struct xl_chan *ch, int rc)
{
    struct chan_wq *wq = ch->wq;

    pthread_mutex_lock(&wq->mu);
    if (wq->err == rc && wq->msg[0] && !sr_io_error(ch->io))
        sr_io_fail(ch->io, rc, "%s", wq->msg);
    pthread_mutex_unlock(&wq->mu);
    return rc;
}

static ssize_t wq_write(struct xl_chan *ch, const void *buf, size_t len)
{
    struct chan_wq *wq = ch->wq;
    size_t done = 0, n;
    uint8_t *dst;
    int rc = 0;

    pthread_mutex_lock(&wq->mu);
    while (done < len) {
        /* A buffer to fill: the writer never holds all of them. */
        if ((rc = wq_wait(ch, WQ_BUFS - 1)))
            break;
        dst = wq->buf[(wq->head + wq->queued) % WQ_BUFS].mem +
              XL_REC_HDR_LEN + wq->fill;
        n = len - done < WQ_DATA - wq->fill ? len - done
                                            : WQ_DATA - wq->fill;
        /* head + queued stays the same while the writer works. */
        pthread_mutex_unlock(&wq->mu);
        memcpy(dst, (const uint8_t *)buf + done, n);
        pthread_mutex_lock(&wq->mu);
        wq->fill += n;
        done += n;
        if (wq->fill == WQ_DATA)
            wq_submit(wq);
    }
    pthread_mutex_unlock(&wq->mu);
    return rc ? wq_report(ch, rc) : (ssize_t)len;
}

/* Engine's thread: everything written so far is sent (or failed). */
static int wq_drain(struct xl_chan *ch)
{
    struct chan_wq *wq = ch->wq;
    int rc;

    pthread_mutex_lock(&wq->mu);
    if (wq->fill && !wq->err)
        wq_submit(wq);
    rc = wq_wait(ch, 0);
    pthread_mutex_unlock(&wq->mu);
    return rc;
}

/* Engine's thread: end the writer, after sending what is queued when
 * drain; 0 or the writer's error (reported in the io). */
static int wq_stop(struct xl_chan *ch, bool drain)
{
    struct chan_wq *wq = ch->wq;
    int rc = 0;

    if (!wq)
        return 0;
    if (drain)
        rc = wq_drain(ch);
    pthread_mutex_lock(&wq->mu);
    atomic_store(&wq->stop, true);
    pthread_cond_signal(&wq->work);
    pthread_mutex_unlock(&wq->mu);
    pthread_join(wq->thr, NULL);
    if (rc)
        wq_report(ch, rc);
    pthread_cond_destroy(&wq->work);
    pthread_cond_destroy(&wq->room);
    pthread_mutex_destroy(&wq->mu);
    for (unsigned int i = 0; i < WQ_BUFS; i++)
        free(wq->buf[i].mem);
    free(wq);
    ch->wq = NULL;
    return rc;
}

static int wq_start(struct xl_chan *ch)
{
    struct chan_wq *wq = calloc(1, sizeof(*wq));
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc = -ENOMEM;

    if (!wq)
        return -ENOMEM;
    for (unsigned int i = 0; i < WQ_BUFS; i++)
        if (!(wq->buf[i].mem = malloc(XL_REC_HDR_LEN + WQ_DATA +
                                      XL_REC_TAG_LEN)))
            goto fail;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&wq->mu, NULL);
    pthread_cond_init(&wq->work, NULL);
    pthread_cond_init(&wq->room, &ca);
    pthread_condattr_destroy(&ca);
    ch->wq = wq;
    /* Signals go to the engine's thread, which decides about them. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = -pthread_create(&wq->thr, NULL, wq_main, ch);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!rc)
        return 0;
    ch->wq = NULL;
    pthread_cond_destroy(&wq->work);
    pthread_cond_destroy(&wq->room);
    pthread_mutex_destroy(&wq->mu);
 fail:
    for (unsigned int i = 0; i < WQ_BUFS; i++)
        free(wq->buf[i].mem);
    free(wq);
    return rc;
}

int xl_chan_async(struct xl_chan *ch, bool on)
{
    if (on == (ch->wq != NULL))
        return 0;
    if (!on)
        return wq_stop(ch, true);
    if (ch->wfd < 0 || ch->tls_shut)
        return -EPIPE;
    return wq_start(ch);
}

/* ---- the sr_io backend ----------------------------------------------- */

static ssize_t chan_io_read(void *arg, void *buf, size_t len)
{
    struct xl_chan *ch = arg;
    ssize_t n;

    /* The peer answers what we sent: all of it goes first.  A failed
     * send is reported on the next write; the answer may say why. */
    if (ch->wq)
        wq_drain(ch);
    if (ch->mac && ch->rpos == ch->rlen) {
        bool direct;

        n = rec_read(ch, buf, len, &direct);
        if (n <= 0 || direct)
            return n;
        ch->rpos = XL_REC_HDR_LEN;
        ch->rlen = XL_REC_HDR_LEN + (size_t)n;
    } else if (ch->rpos == ch->rlen) {
        if (len >= RBUF_SIZE)
            return raw_read(ch, buf, len);
        n = raw_read(ch, ch->rbuf, RBUF_SIZE);
        if (n <= 0)
            return n;
        ch->rpos = 0;
        ch->rlen = (size_t)n;
    }
    n = (ssize_t)(ch->rlen - ch->rpos < len ? ch->rlen - ch->rpos : len);
    memcpy(buf, ch->rbuf + ch->rpos, (size_t)n);
    ch->rpos += (size_t)n;
    return n;
}

static ssize_t chan_io_write(void *arg, const void *buf, size_t len)
{
    struct xl_chan *ch = arg;

    if (ch->wq)
        return wq_write(ch, buf, len);
    if (ch->mac)
        return rec_write(ch, buf, len);
    return ch->ssl ? tls_write(ch, buf, len) : fd_write(ch, buf, len);
}

/* The channel, not the io, owns the fds: xl_chan_close releases them. */
static const struct sr_io_user_ops chan_io_ops = {
    .read = chan_io_read,
    .write = chan_io_write,
};

/* ---- construction ---------------------------------------------------- */

/*
 * Pipes carry local: and ssh streams.  At the default 64 KiB the two xl
 * processes take turns every 16 pages, a context switch each (local: ran
 * at ~0.4x tcp://); at 1 MiB (the usual pipe-max-size) each side moves
 * whole batches per wakeup.  Not a pipe, or a lower limit: left as is.
 */
static void widen_pipe(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
        fcntl(fd, F_GETPIPE_SZ) < (int)PIPE_WIDE)
        fcntl(fd, F_SETPIPE_SZ, (int)PIPE_WIDE);
}

static int chan_new(struct xl_chan **chp, enum xl_chan_kind kind)
{
    struct xl_chan *ch = calloc(1, sizeof(*ch));
    int rc;

    *chp = NULL;
    if (!ch)
        return -ENOMEM;
    ch->kind = kind;
    ch->rfd = ch->wfd = -1;
    ch->pid = -1;
    ch->rbuf = malloc(RBUF_ALLOC);
    rc = ch->rbuf ? sr_io_open_user(&ch->io, &chan_io_ops, ch) : -ENOMEM;
    if (rc) {
        free(ch->rbuf);
        free(ch);
        return rc;
    }
    /* A dead peer must be EPIPE, not a fatal signal. */
    signal(SIGPIPE, SIG_IGN);
    *chp = ch;
    return 0;
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static int save_opts(struct xl_chan *ch, const char *target,
                     const struct xl_chan_opts *o)
{
    size_t n = 0;

    ch->target = strdup(target);
    if (!ch->target)
        return -ENOMEM;
    if (!o)
        return 0;
    ch->connect_timeout_ms = o->connect_timeout_ms;
    if (o->ssh_command && !(ch->ssh_command = strdup(o->ssh_command)))
        return -ENOMEM;
    if ((o->tls.cert && !(ch->tls_cert = strdup(o->tls.cert))) ||
        (o->tls.key && !(ch->tls_key = strdup(o->tls.key))) ||
        (o->tls.ca && !(ch->tls_ca = strdup(o->tls.ca))) ||
        (o->tls.crl && !(ch->tls_crl = strdup(o->tls.crl))) ||
        (o->tls.name && !(ch->tls_name = strdup(o->tls.name))) ||
        (o->auth.key_file && !(ch->key_file = strdup(o->auth.key_file))))
        return -ENOMEM;
    ch->insecure = o->auth.insecure;
    if (!o->recv_args)
        return 0;
    while (o->recv_args[n])
        n++;
    ch->recv_args = calloc(n + 1, sizeof(char *));
    if (!ch->recv_args)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(ch->recv_args[i] = strdup(o->recv_args[i])))
            return -ENOMEM;
    return 0;
}

/* ---- HOST and local: a child on pipes -------------------------------- */

/* xl's global options to pass on: [-t] [-T] [-v...], into argv. */
static int global_flags(const char **argv)
{
    static const char *const vs[] = { "-v", "-vv", "-vvv" };
    int n = 0, v = XC_WARN - minmsglevel;

    if (progress_use_cr || isatty(2) > 0)
        argv[n++] = "-t";
    if (timestamps)
        argv[n++] = "-T";
    if (v > 0)
        argv[n++] = vs[v > 3 ? 2 : v - 1];
    return n;
}

/* Shell-quote s onto the end of *buf (for the ssh command line). */
static int append_quoted(char **buf, const char *s)
{
    char *old = *buf, *out;
    size_t len = strlen(old), extra = 3;
    bool plain = *s != '\0';

    for (const char *p = s; *p; p++) {
        extra += *p == '\'' ? 4 : 1;
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-_./=:,@+%", *p))
            plain = false;
    }
    out = realloc(old, len + extra + 1);
    if (!out)
        return -ENOMEM;
    *buf = out;
    out += len;
    *out++ = ' ';
    if (plain) {
        strcpy(out, s);
        return 0;
    }
    *out++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(out, "'\\''", 4);
            out += 4;
        } else {
            *out++ = *p;
        }
    }
    *out++ = '\'';
    *out = '\0';
    return 0;
}

/* Xen's rune: "exec <ssh> HOST xl [-t] [-T] [-v..] migrate-receive ...". */
static int build_rune(struct xl_chan *ch)
{
    const char *flags[4];
    const char *ssh = ch->ssh_command ? ch->ssh_command : "ssh";
    int nflags, rc = 0;

    if (!*ssh) {
        ch->rune = strdup(ch->target);
        return ch->rune ? 0 : -ENOMEM;
    }
    if (asprintf(&ch->rune, "exec %s %s xl", ssh, ch->target) < 0) {
        ch->rune = NULL;
        return -ENOMEM;
    }
    nflags = global_flags(flags);
    for (int i = 0; !rc && i < nflags; i++)
        rc = append_quoted(&ch->rune, flags[i]);
    if (!rc)
        rc = append_quoted(&ch->rune, "migrate-receive");
    for (char **a = ch->recv_args; !rc && a && *a; a++)
        rc = append_quoted(&ch->rune, *a);
    return rc;
}

/*
 * Start argv[0] (a path, not searched) with the child's stdin reading
 * what we write and its stdout coming back to us.  The child gets its own
 * process group when own_pgrp, so a Ctrl-C at the terminal reaches only
 * xl migrate, which decides what to do about it.
 */
static int spawn_child(struct xl_chan *ch, char *const argv[], bool own_pgrp,
                       char *err, size_t errlen)
{
    int to_child[2] = { -1, -1 }, from_child[2] = { -1, -1 }, rc;
    pid_t pid;

    if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0) {
        rc = -errno;
        set_err(err, errlen, rc, "cannot create pipes for the migration "
                "receiver: %s", strerror(-rc));
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        set_err(err, errlen, rc, "cannot fork the migration receiver: %s",
                strerror(-rc));
        goto fail;
    }
    if (pid == 0) {
        /* dup2 clears close-on-exec on the new fds 0 and 1 only. */
        signal(SIGPIPE, SIG_DFL);
        if (own_pgrp)
            setpgid(0, 0);
        if (dup2(to_child[0], 0) < 0 || dup2(from_child[1], 1) < 0)
            _exit(127);
        execv(argv[0], argv);
        dprintf(2, "failed to exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    widen_pipe(to_child[1]);
    widen_pipe(from_child[0]);
    ch->pid = pid;
    ch->wfd = to_child[1];
    ch->rfd = from_child[0];
    if ((rc = set_nonblock(ch->wfd)) || (rc = set_nonblock(ch->rfd)))
        return set_err(err, errlen, rc, "fcntl: %s", strerror(-rc));
    return 0;

 fail:
    for (int i = 0; i < 2; i++) {
        if (to_child[i] >= 0)
            close(to_child[i]);
        if (from_child[i] >= 0)
            close(from_child[i]);
    }
    return rc;
}

static int connect_ssh(struct xl_chan *ch, char *err, size_t errlen)
{
    const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
    int rc = build_rune(ch);

    if (rc)
        return set_err(err, errlen, rc, "out of memory");
    argv[2] = ch->rune;
    return spawn_child(ch, (char *const *)argv, false, err, errlen);
}

static int connect_local(struct xl_chan *ch, const char *dir, char *err,
                         size_t errlen)
{
    const char *argv[64];
    char exe[PATH_MAX];
    ssize_t n;
    int argc = 0, nargs = 0;

    if (!*dir)
        return set_err(err, errlen, -EINVAL,
                       "local: target needs a run directory: local:RUNDIR");
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return set_err(err, errlen, -errno, "cannot find this xl binary "
                       "(/proc/self/exe): %s", strerror(errno));
    exe[n] = '\0';
    for (char **a = ch->recv_args; a && *a; a++)
        nargs++;
    if (nargs > 50)
        return set_err(err, errlen, -E2BIG, "too many receiver arguments");
    argv[argc++] = exe;
    argv[argc++] = "-H";
    argv[argc++] = dir;
    argc += global_flags(argv + argc);
    argv[argc++] = "migrate-receive";
    for (char **a = ch->recv_args; a && *a; a++)
        argv[argc++] = *a;
    argv[argc] = NULL;
    return spawn_child(ch, (char *const *)argv, true, err, errlen);
}

/* ---- tcp:// and tls:// ----------------------------------------------- */

static int auth_client(struct xl_chan *ch, int64_t deadline, char *err,
                       size_t errlen);

/*
 * No delay for the handshake's small messages; keepalive after 5 s idle,
 * every 2 s, 3 probes, so an idle link that died fails within ~11 s.  A
 * link with unacknowledged data is watched by link_dead().  Returns
 * whether fd is TCP (a test's socketpair is not, and works without).
 */
static bool tune_tcp(int fd)
{
    int one = 1, idle = 5, intvl = 2, cnt = 3;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    return true;
}

static void format_peer(struct xl_chan *ch, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(ch->peer, sizeof(ch->peer), "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(ch->peer, sizeof(ch->peer), "[%s]:%u", host, port);
    }
}

/* Split "HOST:PORT" or "[V6]:PORT" into host and port (in place). */
static int split_hostport(char *s, char **host, char **port)
{
    char *colon;

    if (*s == '[') {
        char *close = strchr(s, ']');

        if (!close || close[1] != ':')
            return -EINVAL;
        *close = '\0';
        *host = s + 1;
        *port = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -EINVAL;
        *colon = '\0';
        *host = s;
        *port = colon + 1;
    }
    if (!**host || !**port || strspn(*port, "0123456789") != strlen(*port))
        return -EINVAL;
    return 0;
}

/* One non-blocking connect attempt, bounded by deadline. */
static int try_connect(struct xl_chan *ch, const struct addrinfo *ai,
                       int64_t deadline)
{
    int fd, rc, soerr = 0;
    socklen_t sl = sizeof(soerr);
    struct pollfd p;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
                SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        goto connected;
    if (errno != EINPROGRESS) {
        rc = -errno;
        goto fail;
    }
    for (;;) {
        int64_t left = deadline - now_ms();

        if (left <= 0) {
            rc = -ETIMEDOUT;
            goto fail;
        }
        p = (struct pollfd){ .fd = fd, .events = POLLOUT };
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            break;
        if (rc < 0 && errno != EINTR) {
            rc = -errno;
            goto fail;
        }
        if (cancelled(ch)) {
            rc = -ECANCELED;
            goto fail;
        }
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        rc = -soerr;
        goto fail;
    }
 connected:
    ch->tcp = tune_tcp(fd);
    format_peer(ch, ai->ai_addr);
    ch->rfd = ch->wfd = fd;
    return 0;
 fail:
    close(fd);
    return rc;
}

static int tcp_connect(struct xl_chan *ch, const char *hostport,
                       int64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
    };
    struct addrinfo *res = NULL;
    char *copy = strdup(hostport), *host, *port;
    int rc, gai;

    if (!copy)
        return set_err(err, errlen, -ENOMEM, "out of memory");
    if (split_hostport(copy, &host, &port)) {
        rc = set_err(err, errlen, -EINVAL, "invalid target %s: expected "
                     "%s://ADDR:PORT (IPv6: [ADDR]:PORT)", ch->target,
                     ch->kind == XL_CHAN_TLS ? "tls" : "tcp");
        goto out;
    }
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        rc = set_err(err, errlen, -EHOSTUNREACH, "cannot resolve %s: %s",
                     host, gai_strerror(gai));
        goto out;
    }
    rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = try_connect(ch, ai, deadline);
        if (!rc || rc == -ECANCELED)
            break;
    }
    if (rc)
        set_err(err, errlen, rc, "cannot connect to %s: %s", ch->target,
                strerror(-rc));
 out:
    if (res)
        freeaddrinfo(res);
    free(copy);
    return rc;
}

/* Every CRL in the PEM file crl, checked for every certificate of the
 * peer's chain. */
static int tls_load_crl(struct xl_chan *ch, const char *crl, char *err,
                        size_t errlen)
{
    X509_STORE *st = SSL_CTX_get_cert_store(ch->ctx);
    BIO *b = BIO_new_file(crl, "r");
    X509_CRL *c;
    int n = 0, rc = 0;

    if (!b)
        return set_err(err, errlen, errno ? -errno : -EIO, "TLS CRL file "
                       "%s: %s", crl, strerror(errno ? errno : EIO));
    while ((c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
        if (X509_STORE_add_crl(st, c) == 1)
            n++;
        X509_CRL_free(c);
    }
    ERR_clear_error();
    BIO_free(b);
    if (!n)
        rc = set_err(err, errlen, -EINVAL, "TLS CRL file %s holds no PEM "
                     "CRL", crl);
    else
        X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK |
                             X509_V_FLAG_CRL_CHECK_ALL);
    return rc;
}

/* Check a TLS file before OpenSSL gives a vaguer error about it. */
static int check_file(const char *what, const char *path, char *err,
                      size_t errlen)
{
    if (access(path, R_OK) == 0)
        return 0;
    return set_err(err, errlen, -errno, "TLS %s %s: %s", what, path,
                   strerror(errno));
}

/*
 * A context with our certificate and key and the CA the peer must chain
 * to: TLS 1.2+, peer verification mandatory (also for the server, which
 * refuses a client without a certificate).
 */
static int tls_make_ctx(struct xl_chan *ch, bool server, const char *cert,
                        const char *key, const char *ca, const char *crl,
                        const char *host, char *err, size_t errlen)
{
    char msg[256];
    int rc;

    if ((rc = check_file("certificate", cert, err, errlen)) ||
        (rc = check_file("key", key, err, errlen)) ||
        (rc = check_file("CA file", ca, err, errlen)))
        return rc;
    ERR_clear_error();
    ch->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ch->ctx)
        return set_err(err, errlen, -ENOMEM, "TLS: cannot create a "
                       "context: %s", ssl_errstr(msg, sizeof(msg)));
    SSL_CTX_set_min_proto_version(ch->ctx, TLS1_2_VERSION);
    /*
     * TLS 1.3's suites with ChaCha20-Poly1305 first (the client's order
     * decides): on this AVX2 machine it runs at ~1.5x AES-256-GCM,
     * OpenSSL's first choice (openssl speed, 16 KiB records), and a
     * migration's cost is its bulk cipher.  All three stay allowed.
     */
    if (SSL_CTX_set_ciphersuites(ch->ctx, "TLS_CHACHA20_POLY1305_SHA256:"
                                 "TLS_AES_128_GCM_SHA256:"
                                 "TLS_AES_256_GCM_SHA384") != 1)
        return set_err(err, errlen, -EINVAL, "TLS: cannot set the cipher "
                       "suites: %s", ssl_errstr(msg, sizeof(msg)));
    SSL_CTX_set_mode(ch->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ch->ctx, cert) != 1)
        return set_err(err, errlen, -EINVAL, "TLS certificate %s: %s", cert,
                       ssl_errstr(msg, sizeof(msg)));
    if (SSL_CTX_use_PrivateKey_file(ch->ctx, key, SSL_FILETYPE_PEM) != 1)
        return set_err(err, errlen, -EINVAL, "TLS key %s: %s", key,
                       ssl_errstr(msg, sizeof(msg)));
    if (SSL_CTX_check_private_key(ch->ctx) != 1)
        return set_err(err, errlen, -EINVAL, "TLS key %s does not match "
                       "certificate %s", key, cert);
    if (SSL_CTX_load_verify_locations(ch->ctx, ca, NULL) != 1)
        return set_err(err, errlen, -EINVAL, "TLS CA file %s: %s", ca,
                       ssl_errstr(msg, sizeof(msg)));
    if (crl && *crl && (rc = tls_load_crl(ch, crl, err, errlen)))
        return rc;
    if (server) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);

        if (names)
            SSL_CTX_set_client_CA_list(ch->ctx, names);
        SSL_CTX_set_verify(ch->ctx, SSL_VERIFY_PEER |
                           SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(ch->ctx, SSL_VERIFY_PEER, NULL);
    }
    ch->ssl = SSL_new(ch->ctx);
    if (!ch->ssl || SSL_set_fd(ch->ssl, ch->rfd) != 1)
        return set_err(err, errlen, -ENOMEM, "TLS: cannot create a "
                       "session: %s", ssl_errstr(msg, sizeof(msg)));
    if (!server && host) {
        /* The target must be the host we dialled (or the one pinned):
         * a certificate from the fleet CA alone proves fleet membership,
         * not identity. */
        unsigned char a[16];
        bool ip = inet_pton(AF_INET, host, a) == 1 ||
                  inet_pton(AF_INET6, host, a) == 1;
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ch->ssl),
                                                    host)
                    : SSL_set1_host(ch->ssl, host);

        if (ok != 1)
            return set_err(err, errlen, -EINVAL, "TLS: cannot check the "
                           "target's certificate against \"%s\"", host);
        if (!ip)
            SSL_set_tlsext_host_name(ch->ssl, host);
        snprintf(ch->tls_expect, sizeof(ch->tls_expect), "%s", host);
    }
    return 0;
}

/* Why a handshake failed, in words a person can act on. */
static void tls_explain(struct xl_chan *ch, bool server, char *buf,
                        size_t len)
{
    unsigned long e = 0, x;
    long vr = SSL_get_verify_result(ch->ssl);
    int reason;
    char msg[200];

    while ((x = ERR_get_error()))
        e = x;
    reason = e ? ERR_GET_REASON(e) : 0;
    if (e)
        ERR_error_string_n(e, msg, sizeof(msg));
    if (e && ERR_reason_error_string(e))
        snprintf(msg, sizeof(msg), "%s", ERR_reason_error_string(e));
    if (!e)
        snprintf(msg, sizeof(msg), "%s", errno ? strerror(errno)
                 : "connection closed during the handshake");

    if (!server && (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
                    vr == X509_V_ERR_IP_ADDRESS_MISMATCH))
        snprintf(buf, len, "certificate verify failed: the target's "
                 "certificate does not name %s (%s); if it is the host you"
                 " meant, pin the name it carries with --tls-name",
                 ch->tls_expect, X509_verify_cert_error_string(vr));
    else if (vr == X509_V_ERR_CERT_REVOKED ||
             vr == X509_V_ERR_UNABLE_TO_GET_CRL ||
             vr == X509_V_ERR_CRL_HAS_EXPIRED)
        snprintf(buf, len, "certificate verify failed: the %s's "
                 "certificate: %s", server ? "client" : "target",
                 X509_verify_cert_error_string(vr));
    else if (vr != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
        snprintf(buf, len, "certificate verify failed: the %s's "
                 "certificate is not signed by our CA (%s)",
                 server ? "client" : "target",
                 X509_verify_cert_error_string(vr));
    else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        snprintf(buf, len, "the client presented no certificate (%s)", msg);
    else if (!server && (reason == SSL_R_WRONG_VERSION_NUMBER ||
                         reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
                         reason == SSL_R_UNEXPECTED_RECORD))
        snprintf(buf, len, "the target did not answer in TLS (%s); is it "
                 "a plain tcp:// listener?", msg);
    else if (!server && (strstr(msg, "unknown ca") ||
                         strstr(msg, "bad certificate") ||
                         strstr(msg, "certificate required") ||
                         strstr(msg, "handshake failure")))
        snprintf(buf, len, "the target refused our certificate (%s)", msg);
    else
        snprintf(buf, len, "%s", msg);
}

/* Drive a handshake on the non-blocking socket until done or deadline. */
static int tls_handshake(struct xl_chan *ch, bool server, int64_t deadline,
                         char *err, size_t errlen)
{
    char why[400];
    int r, e, saved = ch->timeout_ms;

    for (;;) {
        int64_t left = deadline - now_ms();
        short ev;

        if (left <= 0) {
            ch->timeout_ms = saved;
            return set_err(err, errlen, -ETIMEDOUT, "TLS handshake with %s "
                           "timed out%s", ch->peer, server ? " (a plain "
                           "tcp:// client on a TLS listener?)" : "");
        }
        ERR_clear_error();
        errno = 0;
        r = server ? SSL_accept(ch->ssl) : SSL_connect(ch->ssl);
        if (r == 1)
            break;
        e = SSL_get_error(ch->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ch->timeout_ms = saved;
            tls_explain(ch, server, why, sizeof(why));
            return set_err(err, errlen, -EPROTO, "TLS handshake with %s "
                           "failed: %s", ch->peer, why);
        }
        ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        ch->timeout_ms = (int)left;
        r = wait_fd(ch, ch->rfd, ev);
        if (r == -ECANCELED) {
            ch->timeout_ms = saved;
            return set_err(err, errlen, r, "TLS handshake cancelled");
        }
    }
    ch->timeout_ms = saved;
    return 0;
}

/*
 * Wait for the receiver's first byte without consuming it.  Its banner is
 * the first thing a receiver sends, so this proves it is alive and, over
 * TLS 1.3 where the server checks our certificate only after our side of
 * the handshake is done, makes a refusal of our certificate show here, as
 * a connect error, rather than as a garbled banner.
 */
static int await_first_byte(struct xl_chan *ch, int64_t deadline,
                            char *err, size_t errlen)
{
    char c, why[400];
    int r, e;

    for (;;) {
        int64_t left = deadline - now_ms();

        if (left <= 0)
            return set_err(err, errlen, -ETIMEDOUT, "%s did not send its "
                           "banner within %d ms", ch->target,
                           ch->connect_timeout_ms > 0 ?
                           ch->connect_timeout_ms : CONNECT_TIMEOUT_MS);
        ERR_clear_error();
        errno = 0;
        if (ch->ssl) {
            char line[160];

            r = SSL_peek(ch->ssl, line, sizeof(line) - 1);
            if (r > 0 && !strncmp(line, "ferry-refused ", r < 14 ? r : 14)) {
                /* Perhaps a refusal: wait for its whole line. */
                line[r] = '\0';
                if (r < 14 || !strchr(line, '\n'))
                    goto wait;
                line[strcspn(line, "\n")] = '\0';
                return set_err(err, errlen, -EACCES, "%s refused us: %s",
                               ch->target, line + 14);
            }
            if (r > 0)
                return 0;
            e = SSL_get_error(ch->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN ||
                (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
                 errno == 0))
                goto eof;
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                tls_explain(ch, false, why, sizeof(why));
                return set_err(err, errlen, -EPROTO, "TLS session with %s "
                               "failed: %s", ch->peer, why);
            }
        } else {
            r = (int)recv(ch->rfd, &c, 1, MSG_PEEK);
            if (r > 0)
                return 0;
            if (r == 0)
                goto eof;
            if (errno != EAGAIN && errno != EINTR)
                return set_err(err, errlen, -errno, "connection to %s "
                               "failed: %s", ch->target, strerror(errno));
        }
 wait:
        {
            struct pollfd p = { .fd = ch->rfd, .events = POLLIN };

            if (poll(&p, 1, (int)(left < 50 ? left : 50)) < 0 &&
                errno == EINTR && cancelled(ch))
                return set_err(err, errlen, -ECANCELED, "cancelled");
        }
    }
 eof:
    return set_err(err, errlen, -ECONNRESET, "%s closed the connection "
                   "before sending its banner%s", ch->target,
                   ch->kind == XL_CHAN_TCP ? " (is it a tls:// listener, "
                   "or at its limit of concurrent migrations?)"
                   : " (see the target's ferry-hv.log)");
}

static int connect_net(struct xl_chan *ch, const char *hostport,
                       char *err, size_t errlen)
{
    int tmo = ch->connect_timeout_ms > 0 ? ch->connect_timeout_ms
                                         : CONNECT_TIMEOUT_MS;
    int64_t deadline = now_ms() + tmo;
    char *cert = NULL, *key = NULL, *ca = NULL, *crl = NULL, *copy = NULL;
    char *host, *port;
    int rc;

    rc = tcp_connect(ch, hostport, deadline, err, errlen);
    if (!rc && ch->kind == XL_CHAN_TCP)
        rc = auth_client(ch, deadline, err, errlen);
    if (rc || ch->kind != XL_CHAN_TLS)
        goto banner;
    cert = ch->tls_cert ? strdup(ch->tls_cert)
                        : xl_tls_default_path("host.pem");
    key = ch->tls_key ? strdup(ch->tls_key) : xl_tls_default_path("host.key");
    ca = ch->tls_ca ? strdup(ch->tls_ca) : xl_tls_default_path("ca.pem");
    crl = ch->tls_crl ? strdup(ch->tls_crl) : xl_tls_default_path("crl.pem");
    copy = strdup(hostport);
    if (!cert || !key || !ca || !crl || !copy ||
        split_hostport(copy, &host, &port)) {
        rc = set_err(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    /* The default CRL applies when it exists; a given one must. */
    if (!ch->tls_crl && access(crl, F_OK) < 0)
        crl[0] = '\0';
    rc = tls_make_ctx(ch, false, cert, key, ca, crl,
                      ch->tls_name ? ch->tls_name : host, err, errlen);
    if (!rc)
        rc = tls_handshake(ch, false, deadline, err, errlen);
 banner:
    if (!rc)
        rc = await_first_byte(ch, deadline, err, errlen);
 out:
    free(cert);
    free(key);
    free(ca);
    free(crl);
    free(copy);
    return rc;
}

/* ---- the fleet key (tcp://) ----------------------------------------- */

char *xl_auth_default_path(void)
{
    return run_dir_file("", "migrate.key");
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned int v;

        if (!isxdigit((unsigned char)s[2 * i]) ||
            !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void tohex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

int xl_auth_load_key(const char *path, unsigned char key[KEY_LEN],
                     char *err, size_t errlen)
{
    char buf[2 * KEY_LEN + 4];
    struct stat st;
    ssize_t n;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_err(err, errlen, -errno, "fleet key %s: %s (create the "
                       "host's credentials with ferry-creds(8))", path,
                       strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = set_err(err, errlen, -errno, "fleet key %s: %s", path,
                     strerror(errno));
    } else if (st.st_mode & 077) {
        rc = set_err(err, errlen, -EACCES, "fleet key %s is readable by "
                     "others (mode %03o): make it mode 600", path,
                     (unsigned int)(st.st_mode & 0777));
    } else {
        n = read(fd, buf, sizeof(buf) - 1);
        if (n >= 2 * KEY_LEN)
            buf[n] = '\0';
        if (n < 2 * KEY_LEN || (n > 2 * KEY_LEN &&
                                strcmp(buf + 2 * KEY_LEN, "\n")) ||
            unhex(buf, key, KEY_LEN))
            rc = set_err(err, errlen, -EINVAL, "fleet key %s: expected %d "
                         "hex digits", path, 2 * KEY_LEN);
    }
    close(fd);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* HMAC-SHA256 under key of label, then the two nonces. */
static int auth_hmac(const uint8_t *key, const char *label,
                     const uint8_t ns[NONCE_LEN], const uint8_t nc[NONCE_LEN],
                     uint8_t out[TAG_LEN])
{
    uint8_t data[64 + 2 * NONCE_LEN];
    size_t l = strlen(label), outl = 0;

    memcpy(data, label, l);
    memcpy(data + l, ns, NONCE_LEN);
    memcpy(data + l + NONCE_LEN, nc, NONCE_LEN);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, KEY_LEN, data,
                   l + 2 * NONCE_LEN, out, TAG_LEN, &outl) ||
        outl != TAG_LEN)
        return -EIO;
    return 0;
}

/* A direction's record key: HMAC-SHA256 under the fleet key of its
 * label and both nonces. */
static EVP_CIPHER_CTX *session_key(const uint8_t *key, const char *label,
                                   const uint8_t *ns, const uint8_t *nc)
{
    uint8_t k[TAG_LEN];
    EVP_CIPHER_CTX *ctx = NULL;

    _Static_assert(TAG_LEN == XL_REC_KEY_LEN, "an HMAC is a record key");
    if (!auth_hmac(key, label, ns, nc, k))
        ctx = xl_rec_key(k);
    OPENSSL_cleanse(k, sizeof(k));
    return ctx;
}

/* From here on, every byte in MAC'd records under the session keys. */
static int auth_start_records(struct xl_chan *ch, const uint8_t *key,
                              const uint8_t *ns, const uint8_t *nc,
                              bool server)
{
    EVP_CIPHER_CTX *c2s = session_key(key, "ferry-migrate c2s", ns, nc);
    EVP_CIPHER_CTX *s2c = session_key(key, "ferry-migrate s2c", ns, nc);

    if (!c2s || !s2c) {
        EVP_CIPHER_CTX_free(c2s);
        EVP_CIPHER_CTX_free(s2c);
        return -EIO;
    }
    ch->mac_tx = server ? s2c : c2s;
    ch->mac_rx = server ? c2s : s2c;
    ch->mac = true;
    return 0;
}

static int auth_send(struct xl_chan *ch, const char *line)
{
    size_t len = strlen(line), done = 0;

    while (done < len) {
        ssize_t n = fd_write(ch, line + done, len - done);

        if (n < 0)
            return (int)n;
        done += (size_t)n;
    }
    return 0;
}

/*
 * One line of the exchange, read a byte at a time straight from the
 * socket (nothing after it may be buffered: records follow), by deadline.
 * -ENODATA at end of stream, -ETIMEDOUT, -E2BIG, or -errno.
 */
static int auth_line(struct xl_chan *ch, char *buf, size_t len,
                     int64_t deadline)
{
    size_t n = 0;
    int rc = -E2BIG, saved = ch->timeout_ms;

    while (n + 1 < len) {
        int64_t left = deadline - now_ms();
        ssize_t r;

        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        ch->timeout_ms = (int)left;
        r = fd_read(ch, buf + n, 1);
        if (r <= 0) {
            rc = r ? (int)r : -ENODATA;
            break;
        }
        if (buf[n] == '\n') {
            rc = 0;
            break;
        }
        n++;
    }
    buf[n] = '\0';
    ch->timeout_ms = saved;
    return rc;
}

/* A peer's line, printable, for a message. */
static const char *printable(char *s)
{
    for (char *p = s; *p; p++)
        if (!isprint((unsigned char)*p))
            *p = '?';
    if (strlen(s) > 60)
        strcpy(s + 57, "...");
    return s;
}

/*
 * The receiver's side: offer a nonce, check the sender's proof, give
 * ours.  An unauthenticated peer is told nothing but the nonce (and, if
 * its proof is wrong, that it was refused).
 */
static int auth_server(struct xl_chan *ch, const struct xl_auth *auth,
                       char *err, size_t errlen)
{
    int64_t deadline = now_ms() + AUTH_TIMEOUT_MS;
    uint8_t key[KEY_LEN], ns[NONCE_LEN], nc[NONCE_LEN], want[TAG_LEN];
    uint8_t proof[TAG_LEN];
    char line[AUTH_LINE_MAX], *path, hex[2 * TAG_LEN + 1];
    char pc[2 * NONCE_LEN + 1], pp[2 * TAG_LEN + 1];
    int rc;

    path = auth && auth->key_file ? strdup(auth->key_file)
                                  : xl_auth_default_path();
    if (!path)
        return set_err(err, errlen, -ENOMEM, "out of memory");
    rc = xl_auth_load_key(path, key, err, errlen);
    free(path);
    if (rc == -ENOENT && auth && auth->insecure)
        return auth_send(ch, "ferry-auth 1 none\n");
    if (rc)
        return rc;
    if (RAND_bytes(ns, NONCE_LEN) != 1) {
        rc = set_err(err, errlen, -EIO, "no random bytes for a nonce");
        goto out;
    }
    tohex(ns, NONCE_LEN, hex);
    /* 2: records tagged with ChaCha20-Poly1305 (1 had HMAC-SHA256). */
    snprintf(line, sizeof(line), "ferry-auth 2 hmac-sha256 %s\n", hex);
    rc = auth_send(ch, line);
    if (!rc)
        rc = auth_line(ch, line, sizeof(line), deadline);
    if (rc == -ETIMEDOUT) {
        rc = set_err(err, errlen, rc, "%s did not authenticate within "
                     "%d s; closed", ch->peer, AUTH_TIMEOUT_MS / 1000);
        goto out;
    }
    if (rc == -ENODATA) {
        rc = set_err(err, errlen, -ECONNRESET, "%s closed the connection "
                     "without authenticating", ch->peer);
        goto out;
    }
    if (rc && rc != -E2BIG) {
        rc = set_err(err, errlen, rc, "authenticating %s: %s", ch->peer,
                     strerror(-rc));
        goto out;
    }
    if (rc || sscanf(line, "ferry-auth %64s %64s", pc, pp) != 2 ||
        strlen(pc) != 2 * NONCE_LEN || strlen(pp) != 2 * TAG_LEN ||
        unhex(pc, nc, NONCE_LEN) || unhex(pp, proof, TAG_LEN)) {
        rc = set_err(err, errlen, -EACCES, "%s did not authenticate (it "
                     "sent \"%s\"): a sender without the fleet key, or not "
                     "a ferry sender; closed", ch->peer, printable(line));
        goto out;
    }
    rc = auth_hmac(key, "ferry-migrate client", ns, nc, want);
    if (!rc && CRYPTO_memcmp(want, proof, TAG_LEN)) {
        auth_send(ch, "ferry-auth refused\n");
        rc = set_err(err, errlen, -EACCES, "%s failed authentication: it "
                     "does not hold this host's fleet key; closed",
                     ch->peer);
        goto out;
    }
    if (!rc)
        rc = auth_hmac(key, "ferry-migrate server", ns, nc, proof);
    if (rc) {
        rc = set_err(err, errlen, rc, "cannot compute HMAC-SHA256");
        goto out;
    }
    tohex(proof, TAG_LEN, hex);
    snprintf(line, sizeof(line), "ferry-auth ok %s\n", hex);
    rc = auth_send(ch, line);
    if (!rc)
        rc = auth_start_records(ch, key, ns, nc, true);
    if (rc)
        rc = set_err(err, errlen, rc, "authenticating %s: %s", ch->peer,
                     strerror(-rc));
 out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* The sender's side: prove we hold the key and check that it does too. */
static int auth_client(struct xl_chan *ch, int64_t deadline, char *err,
                       size_t errlen)
{
    uint8_t key[KEY_LEN], ns[NONCE_LEN], nc[NONCE_LEN], want[TAG_LEN];
    uint8_t proof[TAG_LEN];
    char line[AUTH_LINE_MAX], *path = NULL, hex[2 * TAG_LEN + 1];
    char hc[2 * NONCE_LEN + 1];
    int rc;

    rc = auth_line(ch, line, sizeof(line), deadline);
    if (rc == -ENODATA)
        return set_err(err, errlen, -ECONNRESET, "%s closed the connection "
                       "before sending its banner (is it a tls:// listener,"
                       " or at its limit of concurrent migrations?)",
                       ch->target);
    if (rc == -ETIMEDOUT)
        return set_err(err, errlen, rc, "%s did not offer authentication "
                       "within %d ms (is it a tls:// listener?)", ch->target,
                       ch->connect_timeout_ms > 0 ? ch->connect_timeout_ms
                                                  : CONNECT_TIMEOUT_MS);
    if (rc && rc != -E2BIG)
        return set_err(err, errlen, rc, "connection to %s failed: %s",
                       ch->target, strerror(-rc));
    if (!strcmp(line, "ferry-auth 1 none")) {
        if (ch->insecure)
            return 0;
        return set_err(err, errlen, -EACCES, "%s runs without a fleet key "
                       "(ferry-hv --migrate-insecure), so it cannot prove "
                       "it is the host you meant: refusing to migrate to "
                       "it (xl migrate --insecure allows it)", ch->target);
    }
    if (rc || strncmp(line, "ferry-auth 2 hmac-sha256 ", 25) ||
        strlen(line + 25) != 2 * NONCE_LEN ||
        unhex(line + 25, ns, NONCE_LEN))
        return set_err(err, errlen, -EPROTO, "%s did not offer "
                       "authentication (it sent \"%s\"): not a ferry "
                       "tcp:// listener of this version", ch->target,
                       printable(line));
    path = ch->key_file ? strdup(ch->key_file) : xl_auth_default_path();
    if (!path)
        return set_err(err, errlen, -ENOMEM, "out of memory");
    rc = xl_auth_load_key(path, key, err, errlen);
    free(path);
    if (rc)
        return rc;
    if (RAND_bytes(nc, NONCE_LEN) != 1 ||
        auth_hmac(key, "ferry-migrate client", ns, nc, proof) ||
        auth_hmac(key, "ferry-migrate server", ns, nc, want)) {
        rc = set_err(err, errlen, -EIO, "cannot compute HMAC-SHA256");
        goto out;
    }
    tohex(nc, NONCE_LEN, hc);
    tohex(proof, TAG_LEN, hex);
    snprintf(line, sizeof(line), "ferry-auth %s %s\n", hc, hex);
    rc = auth_send(ch, line);
    if (!rc)
        rc = auth_line(ch, line, sizeof(line), deadline);
    if (rc == -ENODATA || !strcmp(line, "ferry-auth refused")) {
        rc = set_err(err, errlen, -EACCES, "%s refused us: this host does "
                     "not hold the target's fleet key", ch->target);
        goto out;
    }
    if (rc) {
        rc = set_err(err, errlen, rc, "authenticating to %s: %s", ch->target,
                     strerror(-rc));
        goto out;
    }
    if (strncmp(line, "ferry-auth ok ", 14) ||
        strlen(line + 14) != 2 * TAG_LEN ||
        unhex(line + 14, proof, TAG_LEN) ||
        CRYPTO_memcmp(proof, want, TAG_LEN)) {
        rc = set_err(err, errlen, -EACCES, "%s could not prove that it "
                     "holds our fleet key: refusing to migrate to it",
                     ch->target);
        goto out;
    }
    rc = auth_start_records(ch, key, ns, nc, false);
    if (rc)
        rc = set_err(err, errlen, rc, "cannot set up the session keys");
 out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* ---- public: sender -------------------------------------------------- */

static int chan_connect(struct xl_chan *ch, char *err, size_t errlen)
{
    const char *t = ch->target;

    if (!strncmp(t, "local:", 6)) {
        ch->kind = XL_CHAN_LOCAL;
        return connect_local(ch, t + 6, err, errlen);
    }
    if (!strncmp(t, "tcp://", 6)) {
        ch->kind = XL_CHAN_TCP;
        return connect_net(ch, t + 6, err, errlen);
    }
    if (!strncmp(t, "tls://", 6)) {
        ch->kind = XL_CHAN_TLS;
        return connect_net(ch, t + 6, err, errlen);
    }
    if (!*t || strstr(t, "://"))
        return set_err(err, errlen, -EINVAL, "invalid migration target "
                       "'%s': expected HOST, local:RUNDIR, tcp://ADDR:PORT "
                       "or tls://ADDR:PORT", t);
    ch->kind = XL_CHAN_SSH;
    return connect_ssh(ch, err, errlen);
}

int xl_chan_connect(struct xl_chan **chp, const char *target,
                    const struct xl_chan_opts *opts,
                    char *err, size_t errlen)
{
    struct xl_chan *ch;
    int rc;

    *chp = NULL;
    rc = chan_new(&ch, XL_CHAN_SSH);
    if (rc)
        return set_err(err, errlen, rc, "out of memory");
    rc = save_opts(ch, target, opts);
    if (rc) {
        set_err(err, errlen, rc, "out of memory");
        goto fail;
    }
    rc = chan_connect(ch, err, errlen);
    if (rc)
        goto fail;
    *chp = ch;
    return 0;

 fail:
    xl_chan_close(ch, NULL);
    return rc;
}

int xl_chan_reopen(const struct xl_chan *old, struct xl_chan **newp,
                   char *err, size_t errlen)
{
    struct xl_chan_opts o = {
        .ssh_command = old->ssh_command,
        .recv_args = (const char *const *)old->recv_args,
        .tls = { old->tls_cert, old->tls_key, old->tls_ca, old->tls_crl,
                 NULL, old->tls_name },
        .auth = { old->key_file, old->insecure },
        .connect_timeout_ms = old->connect_timeout_ms,
    };

    if (!old->target)
        return set_err(err, errlen, -EINVAL, "a receiver's channel cannot "
                       "be reopened");
    return xl_chan_connect(newp, old->target, &o, err, errlen);
}

const char *xl_chan_rune(const struct xl_chan *ch)
{
    return ch->kind == XL_CHAN_SSH ? ch->rune : NULL;
}

/* ---- public: receiver ------------------------------------------------ */

/* Take stdin/stdout for the stream and point fds 0 and 1 at /dev/null, so
 * a stray printf cannot corrupt the stream. */
static int take_stdio(struct xl_chan *ch, char *err, size_t errlen)
{
    int null;

    ch->rfd = fcntl(0, F_DUPFD_CLOEXEC, 3);
    ch->wfd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (ch->rfd < 0 || ch->wfd < 0)
        return set_err(err, errlen, -errno, "cannot take stdin/stdout for "
                       "the migration stream: %s", strerror(errno));
    /* sshd's pipes too: the sender can only widen its own. */
    widen_pipe(ch->rfd);
    widen_pipe(ch->wfd);
    fflush(stdout);
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        close(null);
    }
    return 0;
}

static int take_socket(struct xl_chan *ch, int fd, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int type = 0, rc;
    socklen_t tl = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
        type != SOCK_STREAM)
        return set_err(err, errlen, -ENOTSOCK, "--fd %d is not a connected "
                       "stream socket", fd);
    ch->rfd = ch->wfd = fd;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    if ((rc = set_nonblock(fd)))
        return set_err(err, errlen, rc, "fcntl: %s", strerror(-rc));
    ch->tcp = tune_tcp(fd);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        format_peer(ch, (struct sockaddr *)&ss);
    if (!ch->peer[0])
        snprintf(ch->peer, sizeof(ch->peer), "fd %d", fd);
    return 0;
}

int xl_dn_allowed(const char *file, const char *dn)
{
    FILE *f = fopen(file, "re");
    char line[1024];
    int found = 0;

    if (!f)
        return -errno;
    while (!found && fgets(line, sizeof(line), f)) {
        char *p = line, *e;

        while (*p == ' ' || *p == '\t')
            p++;
        e = p + strlen(p);
        while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' ||
                         e[-1] == '\t'))
            *--e = '\0';
        if (*p && *p != '#' && fnmatch(p, dn, 0) == 0)
            found = 1;
    }
    fclose(f);
    return found;
}

/* The sender's certificate subject must be on the allow-list. */
static int tls_check_allowed(struct xl_chan *ch, const char *allow,
                             char *err, size_t errlen)
{
    X509 *pc = SSL_get1_peer_certificate(ch->ssl);
    BIO *b = BIO_new(BIO_s_mem());
    char dn[1024] = "", *mem;
    long n = 0;
    int rc = -ENOMEM;

    if (pc && b && X509_NAME_print_ex(b, X509_get_subject_name(pc), 0,
                                      XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(b, &mem);
        snprintf(dn, sizeof(dn), "%.*s", (int)(n < 1023 ? n : 1023), mem);
        rc = xl_dn_allowed(allow, dn);
        if (rc < 0)
            set_err(err, errlen, rc, "cannot read the allow-list of sender "
                    "certificates %s: %s", allow, strerror(-rc));
        else if (rc == 0)
            rc = set_err(err, errlen, -EACCES, "TLS sender %s: its "
                         "certificate's subject \"%s\" is not on the "
                         "allow-list %s; closed", ch->peer, dn, allow);
        else
            rc = 0;
    } else {
        set_err(err, errlen, rc, "TLS sender %s: cannot read its "
                "certificate's subject", ch->peer);
    }
    if (rc == -EACCES) {
        /* Say why, in the session (the sender prints it). */
        static const char msg[] = "ferry-refused this host does not accept "
                                  "your certificate's subject (not on its "
                                  "allow-list)\n";

        SSL_write(ch->ssl, msg, sizeof(msg) - 1);
    }
    BIO_free(b);
    X509_free(pc);
    return rc;
}

int xl_chan_accept(struct xl_chan **chp, int fd,
                   const struct xl_tls_files *tls,
                   const struct xl_auth *auth,
                   char *err, size_t errlen)
{
    struct xl_chan *ch;
    char *allow = NULL, *crl = NULL;
    int rc;

    *chp = NULL;
    if (tls && fd < 0)
        return set_err(err, errlen, -EINVAL, "TLS needs a socket (--fd N)");
    if (tls && (!tls->cert || !tls->key || !tls->ca))
        return set_err(err, errlen, -EINVAL, "TLS needs --tls-cert, "
                       "--tls-key and --tls-ca");
    rc = chan_new(&ch, fd < 0 ? XL_CHAN_STDIO : XL_CHAN_FD);
    if (rc)
        return set_err(err, errlen, rc, "out of memory");
    rc = fd < 0 ? take_stdio(ch, err, errlen)
                : take_socket(ch, fd, err, errlen);
    if (!rc && tls) {
        allow = tls->allow ? strdup(tls->allow)
                           : xl_tls_default_path("allowed-dn");
        crl = tls->crl ? strdup(tls->crl) : xl_tls_default_path("crl.pem");
        if (!allow || !crl)
            rc = set_err(err, errlen, -ENOMEM, "out of memory");
        else if (!tls->crl && access(crl, F_OK) < 0)
            crl[0] = '\0';
    }
    if (!rc && tls) {
        rc = tls_make_ctx(ch, true, tls->cert, tls->key, tls->ca, crl, NULL,
                          err, errlen);
        if (!rc)
            rc = tls_handshake(ch, true, now_ms() + AUTH_TIMEOUT_MS, err,
                               errlen);
        if (!rc)
            rc = tls_check_allowed(ch, allow, err, errlen);
    } else if (!rc && fd >= 0) {
        rc = auth_server(ch, auth, err, errlen);
    }
    free(allow);
    free(crl);
    if (rc) {
        xl_chan_close(ch, NULL);
        return rc;
    }
    *chp = ch;
    return 0;
}

const char *xl_chan_peer(const struct xl_chan *ch)
{
    return ch->peer;
}

/* ---- public: both sides ---------------------------------------------- */

const char *xl_chan_tls_cipher(const struct xl_chan *ch)
{
    return ch->ssl ? SSL_get_cipher_name(ch->ssl) : NULL;
}

enum xl_chan_kind xl_chan_kind(const struct xl_chan *ch)
{
    return ch->kind;
}

struct sr_io *xl_chan_io(struct xl_chan *ch)
{
    return ch->io;
}

bool xl_chan_pending(const struct xl_chan *ch)
{
    return ch->rpos < ch->rlen || (ch->ssl && SSL_pending(ch->ssl) > 0);
}

int xl_chan_wait_read(struct xl_chan *ch, int fd)
{
    struct pollfd p[2] = {
        { .fd = ch->rfd, .events = POLLIN },
        { .fd = fd, .events = POLLIN },
    };
    int64_t start = now_ms();
    int n, slice;

    if (xl_chan_pending(ch))
        return 1;
    /* As wait_fd: the channel's timeout, and a TCP link watched. */
    for (;;) {
        if (!wait_slice(ch, start, false, &slice))
            return -ETIMEDOUT;
        n = poll(p, 2, slice);
        if (n > 0)
            return p[1].revents ? 2 : 1;
        if (n < 0) {
            if (errno != EINTR)
                return -errno;
            if (cancelled(ch))
                return -ECANCELED;
            continue;
        }
        if (ch->tcp && link_dead(ch, ch->rfd))
            return -ETIMEDOUT;
    }
}

ssize_t xl_chan_read_some(struct xl_chan *ch, void *buf, size_t len)
{
    ssize_t n = sr_io_error(ch->io);

    if (n)
        return n;
    return chan_io_read(ch, buf, len);
}

/* One line, a byte at a time: through the io, or (direct) through the
 * channel itself past the io's sticky error. */
static int line_read(struct xl_chan *ch, char *buf, size_t len, bool direct)
{
    size_t n = 0;
    int rc;

    if (!len)
        return -EINVAL;
    while (n + 1 < len) {
        if (direct) {
            ssize_t r = chan_io_read(ch, buf + n, 1);

            rc = r < 0 ? (int)r : r == 0 ? -ENODATA : 0;
        } else {
            rc = sr_io_read(ch->io, buf + n, 1);
        }
        if (rc) {
            buf[n] = '\0';
            return rc;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    buf[n] = '\0';
    return -E2BIG;
}

int xl_chan_read_line(struct xl_chan *ch, char *buf, size_t len)
{
    return line_read(ch, buf, len, false);
}

int xl_chan_write_reason(struct xl_chan *ch, const char *line)
{
    size_t len = strlen(line), done = 0;

    /* After a failure the reason goes straight out, after what is
     * queued if the writer can still send it. */
    wq_stop(ch, true);
    if (!sr_io_error(ch->io))
        return sr_io_write(ch->io, line, len);
    while (done < len) {
        ssize_t n = chan_io_write(ch, line + done, len - done);

        if (n <= 0)
            return n ? (int)n : -EIO;
        done += (size_t)n;
    }
    return 0;
}

int xl_chan_read_reason(struct xl_chan *ch, char *buf, size_t len)
{
    return line_read(ch, buf, len, sr_io_error(ch->io) != 0);
}

void xl_chan_set_cancel(struct xl_chan *ch, const _Atomic bool *cancel)
{
    wq_stop(ch, true);
    ch->cancel = cancel;
}

void xl_chan_set_timeout(struct xl_chan *ch, int ms)
{
    wq_stop(ch, true);
    ch->timeout_ms = ms > 0 ? ms : 0;
}

int xl_chan_shutdown_write(struct xl_chan *ch)
{
    int rc = 0;

    wq_stop(ch, true);
    if (ch->ssl && !ch->tls_shut) {
        /* One close_notify; we do not wait for the peer's. */
        ERR_clear_error();
        SSL_shutdown(ch->ssl);
        ch->tls_shut = true;
    }
    if (ch->wfd < 0)
        return 0;
    if (ch->rfd == ch->wfd) {
        if (shutdown(ch->wfd, SHUT_WR) < 0 && errno != ENOTCONN)
            rc = -errno;
    } else {
        close(ch->wfd);
        ch->wfd = -1;
    }
    return rc;
}

pid_t xl_chan_pid(const struct xl_chan *ch)
{
    return ch->pid;
}

int xl_chan_wait(struct xl_chan *ch, int timeout_ms, int *status)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int delay = 1;
    pid_t r;

    if (ch->pid < 0)
        return -ECHILD;
    while (!ch->reaped) {
        r = waitpid(ch->pid, &ch->status, WNOHANG);
        if (r == ch->pid) {
            ch->reaped = true;
            break;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        if (timeout_ms >= 0 && now_ms() >= deadline)
            return -EAGAIN;
        sleep_ms(delay);
        if (delay < 20)
            delay *= 2;
    }
    if (status)
        *status = ch->status;
    return 0;
}

int xl_chan_close(struct xl_chan *ch, int *status)
{
    int rc, st = -1;

    if (!ch) {
        if (status)
            *status = -1;
        return 0;
    }
    /* What the writer still holds is dropped: xl_chan_async(ch, false)
     * is where a stream's end is sent and its errors reported. */
    wq_stop(ch, false);
    rc = sr_io_error(ch->io);
    if (ch->ssl) {
        /* Best effort: the socket is non-blocking, so this never
         * waits for a peer that is gone. */
        if (!ch->tls_shut) {
            ERR_clear_error();
            SSL_shutdown(ch->ssl);
        }
        SSL_free(ch->ssl);
    }
    SSL_CTX_free(ch->ctx);
    if (ch->wfd >= 0 && ch->wfd != ch->rfd)
        close(ch->wfd);
    if (ch->rfd >= 0)
        close(ch->rfd);
    ch->rfd = ch->wfd = -1;
    if (ch->pid > 0) {
        if (xl_chan_wait(ch, CLOSE_WAIT_MS, &st) == -EAGAIN) {
            st = -1;
            if (ch->kind == XL_CHAN_SSH) {
                kill(ch->pid, SIGTERM);
                xl_chan_wait(ch, -1, &st);
            }
        }
    }
    if (status)
        *status = st;
    sr_io_close(ch->io);
    free(ch->rbuf);
    free(ch->target);
    free(ch->rune);
    free(ch->ssh_command);
    free_strv(ch->recv_args);
    free(ch->tls_cert);
    free(ch->tls_key);
    free(ch->tls_ca);
    free(ch->tls_crl);
    free(ch->tls_allow);
    free(ch->tls_name);
    free(ch->key_file);
    EVP_CIPHER_CTX_free(ch->mac_tx);
    EVP_CIPHER_CTX_free(ch->mac_rx);
    free(ch);
    return rc;
}
