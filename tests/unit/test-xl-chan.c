/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the sender's writer thread of xl's migration channels
 * (xl_chan_async in xl/xl-transport.c), over a real authenticated tcp://
 * connection on loopback.
 *
 * What must hold: with the writer on, every byte arrives in order and a
 * read waits until what was written has gone (the peer's answer comes);
 * the records it builds in place still carry their MAC, so a byte
 * changed on the path and a stream cut inside a record are refused by
 * the receiver with their reasons; and a send that fails on the writer
 * thread reaches the caller as an error with a message, never a hang.
 *
 * The sender connects through a relay thread that copies both directions
 * between it and the receiver's socket, and can change one byte or cut
 * the stream at a given offset of the sender's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "harness.h"
#include "xl.h"
#include "xl-transport.h"
#include "../saverestore/sr.h"

/* The globals of xl that the transport reads. */
int minmsglevel = XC_WARN;
bool progress_use_cr;
bool timestamps;
const char *run_dir;

#define MiB (1U << 20)

struct rig {
    char dir[64], key[96];
    int lfd;                    /* the listener the sender dials */
    int port;
    int xfd;                    /* the relay's end of its socketpair */
    int rfd;                    /* the receiver's end (its channel's) */
    pthread_t relay, recv;
    /* Relay: change the byte at flip_at, or cut at cut_at (-1: never). */
    long long flip_at, cut_at;
    /* Receiver: read want bytes (stop after stop_after, closing), then
     * answer "ok HASH". */
    size_t want, stop_after;
    int recv_rc;
    char recv_msg[512];
    uint64_t recv_hash;
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void pattern(uint8_t *buf, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)((off + i) * 131 + ((off + i) >> 12));
}

static void *relay_main(void *arg)
{
    struct rig *r = arg;
    static uint8_t buf[64 * 1024];
    long long from_sender = 0;
    int s = accept(r->lfd, NULL, NULL);
    struct pollfd p[2];

    if (s < 0)
        return NULL;
    p[0] = (struct pollfd){ .fd = s, .events = POLLIN };
    p[1] = (struct pollfd){ .fd = r->xfd, .events = POLLIN };
    for (;;) {
        if (poll(p, 2, -1) < 0)
            break;
        for (int k = 0; k < 2; k++) {
            ssize_t n;
            int to = k ? s : r->xfd;

            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(p[k].fd, buf, sizeof(buf));
            if (n <= 0)
                goto out;
            if (k == 0) {
                if (r->cut_at >= 0 && from_sender + n > r->cut_at) {
                    n = (ssize_t)(r->cut_at - from_sender);
                    if (n > 0 && write(to, buf, (size_t)n) != n)
                        goto out;
                    goto out;
                }
                if (r->flip_at >= from_sender &&
                    r->flip_at < from_sender + n)
                    buf[r->flip_at - from_sender] ^= 0x20;
                from_sender += n;
            }
            for (ssize_t done = 0; done < n;) {
                ssize_t w = write(to, buf + done, (size_t)(n - done));

                if (w <= 0)
                    goto out;
                done += w;
            }
        }
    }
 out:
    /* Both directions end: the sender's writes fail, the receiver reads
     * end-of-stream. */
    shutdown(s, SHUT_RDWR);
    shutdown(r->xfd, SHUT_RDWR);
    close(s);
    close(r->xfd);
    return NULL;
}

static void *recv_main(void *arg)
{
    struct rig *r = arg;
    struct xl_auth auth = { r->key, false };
    struct xl_chan *ch = NULL;
    char err[XL_CHAN_ERRLEN], line[64];
    static uint8_t buf[300 * 1024];
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t got = 0;
    int rc;

    rc = xl_chan_accept(&ch, r->rfd, NULL, &auth, err, sizeof(err));
    if (rc) {
        r->recv_rc = rc;
        snprintf(r->recv_msg, sizeof(r->recv_msg), "%s", err);
        return NULL;
    }
    /* xl_chan_connect returns once the receiver has said something. */
    sr_io_write(xl_chan_io(ch), "banner\n", 7);
    while (got < r->want) {
        size_t n = r->want - got < sizeof(buf) ? r->want - got : sizeof(buf);

        if (r->stop_after && got >= r->stop_after)
            break;
        /* Odd sizes: reads straddle records. */
        n = n > 7777 && (got & 1) ? n - 7777 : n;
        if ((rc = sr_io_read(xl_chan_io(ch), buf, n))) {
            r->recv_rc = rc;
            snprintf(r->recv_msg, sizeof(r->recv_msg), "%s",
                     sr_io_errmsg(xl_chan_io(ch)));
            break;
        }
        h = fnv(h, buf, n);
        got += n;
    }
    r->recv_hash = h;
    if (!r->recv_rc && !r->stop_after) {
        snprintf(line, sizeof(line), "ok %016llx\n", (unsigned long long)h);
        sr_io_write(xl_chan_io(ch), line, strlen(line));
    }
    xl_chan_close(ch, NULL);
    return NULL;
}

static void rig_start(struct rig *r)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int sp[2], fd;

    snprintf(r->dir, sizeof(r->dir), "/tmp/test-xl-chan-XXXXXX");
    ASSERT(mkdtemp(r->dir));
    snprintf(r->key, sizeof(r->key), "%s/migrate.key", r->dir);
    fd = open(r->key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, "0123456789abcdef0123456789abcdef"
                        "0123456789abcdef0123456789abcdef\n", 65), 65);
    close(fd);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(r->lfd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(listen(r->lfd, 1), 0);
    ASSERT_EQ(getsockname(r->lfd, (struct sockaddr *)&sa, &sl), 0);
    r->port = ntohs(sa.sin_port);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    r->xfd = sp[0];
    r->rfd = sp[1];             /* the receiver's channel owns it */
    ASSERT_EQ(pthread_create(&r->relay, NULL, relay_main, r), 0);
    ASSERT_EQ(pthread_create(&r->recv, NULL, recv_main, r), 0);
}

static struct xl_chan *sender(struct rig *r)
{
    struct xl_chan_opts o = { .auth = { r->key, false } };
    char target[64], err[XL_CHAN_ERRLEN], line[16];
    struct xl_chan *ch = NULL;
    int rc;

    snprintf(target, sizeof(target), "tcp://127.0.0.1:%d", r->port);
    rc = xl_chan_connect(&ch, target, &o, err, sizeof(err));
    if (rc)
        FAIL("connect: %s", err);
    ASSERT_EQ(xl_chan_read_line(ch, line, sizeof(line)), 0);
    ASSERT(!strcmp(line, "banner"));
    return ch;
}

static void rig_end(struct rig *r, struct xl_chan *ch)
{
    xl_chan_close(ch, NULL);
    pthread_join(r->recv, NULL);
    pthread_join(r->relay, NULL);
    close(r->lfd);
    unlink(r->key);
    rmdir(r->dir);
}

/* Write len bytes of the pattern in uneven pieces; the first error. */
static int send_pattern(struct xl_chan *ch, size_t len, uint64_t *hash)
{
    static uint8_t buf[1200 * 1024];
    static const size_t piece[] = { 1, 7, 4096, 300 * 1024, 1200 * 1024,
                                    12 };
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t off = 0;
    int rc = 0;

    for (unsigned int i = 0; off < len && !rc; i++) {
        size_t n = piece[i % 6] < len - off ? piece[i % 6] : len - off;

        pattern(buf, n, off);
        h = fnv(h, buf, n);
        rc = sr_io_write(xl_chan_io(ch), buf, n);
        off += n;
    }
    if (hash)
        *hash = h;
    return rc;
}

TEST_TIMEOUT(async_every_byte_arrives_and_reads_wait_for_it, 60)
{
    struct rig r = { .flip_at = -1, .cut_at = -1, .want = 9 * MiB + 333 };
    struct xl_chan *ch;
    char line[64], want[64];
    uint64_t h;

    rig_start(&r);
    ch = sender(&r);
    ASSERT_EQ(xl_chan_async(ch, true), 0);
    ASSERT_EQ(send_pattern(ch, r.want, &h), 0);
    /* Still on: the read must first send what the ring holds, or the
     * receiver never answers. */
    ASSERT_EQ(xl_chan_read_line(ch, line, sizeof(line)), 0);
    snprintf(want, sizeof(want), "ok %016llx", (unsigned long long)h);
    if (strcmp(line, want))
        FAIL("receiver answered \"%s\", expected \"%s\" (%s)", line, want,
             r.recv_msg);
    ASSERT_EQ(xl_chan_async(ch, false), 0);
    rig_end(&r, ch);
    ASSERT_EQ(r.recv_rc, 0);
}

TEST_TIMEOUT(async_flipped_byte_fails_the_record_mac, 60)
{
    struct rig r = { .flip_at = 2 * MiB + 17, .cut_at = -1,
                     .want = 6 * MiB };
    struct xl_chan *ch;

    rig_start(&r);
    ch = sender(&r);
    ASSERT_EQ(xl_chan_async(ch, true), 0);
    /* The receiver stops at the bad record; the send may fail or not. */
    send_pattern(ch, r.want, NULL);
    xl_chan_async(ch, false);
    rig_end(&r, ch);
    ASSERT_EQ(r.recv_rc, -EBADMSG);
    if (!strstr(r.recv_msg, "failed its MAC"))
        FAIL("receiver said \"%s\"", r.recv_msg);
}

TEST_TIMEOUT(async_truncated_stream_is_refused, 60)
{
    struct rig r = { .flip_at = -1, .cut_at = 2 * MiB + 100,
                     .want = 6 * MiB };
    struct xl_chan *ch;

    rig_start(&r);
    ch = sender(&r);
    ASSERT_EQ(xl_chan_async(ch, true), 0);
    send_pattern(ch, r.want, NULL);
    xl_chan_async(ch, false);
    rig_end(&r, ch);
    ASSERT_EQ(r.recv_rc, -EPROTO);
    if (!strstr(r.recv_msg, "in the middle of record"))
        FAIL("receiver said \"%s\"", r.recv_msg);
}

TEST_TIMEOUT(async_writer_error_reaches_the_caller, 60)
{
    struct rig r = { .flip_at = -1, .cut_at = -1, .want = 256 * MiB,
                     .stop_after = MiB };
    struct xl_chan *ch;
    int rc, off;

    rig_start(&r);
    ch = sender(&r);
    ASSERT_EQ(xl_chan_async(ch, true), 0);
    /* The receiver hangs up after 1 MiB: a later write, or the end of
     * the writer, reports the failed send. */
    rc = send_pattern(ch, r.want, NULL);
    off = xl_chan_async(ch, false);
    if (!rc)
        rc = off;
    ASSERT(rc == -EPIPE || rc == -ECONNRESET);
    ASSERT_EQ(sr_io_error(xl_chan_io(ch)), rc);
    if (!sr_io_errmsg(xl_chan_io(ch))[0])
        FAIL("no message for %s", strerror(-rc));
    DIAG("sender: %s", sr_io_errmsg(xl_chan_io(ch)));
    rig_end(&r, ch);
}
