/* SPDX-License-Identifier: MIT */
/*
 * cutproxy: a TCP proxy that cuts the link on demand, for testing how a
 * migration survives a network failure.
 *
 *   cutproxy [--port P] [--cut-after N] [--mode rst|close|hang]
 *            [--refuse-after-cut] [--flip-at N] TARGET_ADDR:TARGET_PORT
 *
 * It listens on 127.0.0.1:P (P = 0, the default: any free port), prints
 * the port and a newline on stdout once listening, and forwards each
 * accepted connection to the target.  The first connection is cut once N
 * bytes have gone from client to server (exactly N are forwarded), or,
 * for every open connection, when the proxy receives SIGUSR1.  Later
 * connections are forwarded intact (a sender's "resolve" reconnects),
 * unless --refuse-after-cut, which then closes them at once.
 *
 * Cut modes: rst (default) resets both TCP connections (SO_LINGER 0), so
 * both ends see ECONNRESET at once; close closes both normally (each end
 * reads end-of-stream); hang stops forwarding but keeps both sockets
 * open, like a link that went dark, so only keepalives or
 * TCP_USER_TIMEOUT can notice.
 *
 * --flip-at N changes, instead, byte N (from 0) of what goes from client
 * to server on the first connection (it is XORed with 0x01) and forwards
 * everything else intact: a stream changed on the path.
 *
 * Single-threaded: one poll() loop over the listener, a signalfd and the
 * connection pairs; each direction has one buffer, filled only when empty,
 * so a slow end applies back-pressure to the other.  Runs until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS   16
#define BUF_SIZE    (64U << 10)

enum cut_mode { CUT_RST, CUT_CLOSE, CUT_HANG };

struct dir
{
    uint8_t buf[BUF_SIZE];
    size_t len, off;
    bool eof;                   /* source closed: shut the sink down */
};

struct pair
{
    bool used, hung;
    int c, s;                   /* client and server sockets */
    struct dir up, down;        /* client->server, server->client */
    uint64_t up_bytes;
    uint64_t cut_after;         /* 0: never */
    bool first;                 /* the first connection (--flip-at) */
};

static struct pair pairs[MAX_PAIRS];
static enum cut_mode mode = CUT_RST;
static uint64_t flip_at = UINT64_MAX;
static struct addrinfo *target;

static void hard_close(int fd, bool rst)
{
    if ( fd < 0 )
        return;
    if ( rst )
    {
        struct linger l = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(fd);
}

static void drop(struct pair *p, bool rst)
{
    hard_close(p->c, rst);
    hard_close(p->s, rst);
    memset(p, 0, sizeof(*p));
}

static void cut(struct pair *p)
{
    fprintf(stderr, "cutproxy: cutting a connection after %llu bytes "
            "from the client\n", (unsigned long long)p->up_bytes);
    if ( mode == CUT_HANG )
    {
        p->hung = true;
        return;
    }
    drop(p, mode == CUT_RST);
}

static int connect_target(void)
{
    int fd = socket(target->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if ( fd < 0 )
        return -1;
    if ( connect(fd, target->ai_addr, target->ai_addrlen) < 0 )
    {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void accept_one(int lfd, uint64_t cut_after, bool refuse,
                       unsigned int *nconn)
{
    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), s, i;

    if ( c < 0 )
        return;
    (*nconn)++;
    if ( refuse || (s = connect_target()) < 0 )
    {
        hard_close(c, true);
        return;
    }
    for ( i = 0; i < MAX_PAIRS && pairs[i].used; i++ )
        ;
    if ( i == MAX_PAIRS )
    {
        hard_close(c, true);
        hard_close(s, true);
        return;
    }
    pairs[i] = (struct pair){ .used = true, .c = c, .s = s,
                              .cut_after = *nconn == 1 ? cut_after : 0,
                              .first = *nconn == 1 };
}

/* Move bytes src -> sink through d.  Returns false if the pair is done. */
static bool pump(struct pair *p, struct dir *d, int src, int sink, bool up)
{
    ssize_t n;

    if ( d->len == 0 && !d->eof )
    {
        size_t want = BUF_SIZE;

        if ( up && p->cut_after )
            want = p->cut_after - p->up_bytes < want
                   ? (size_t)(p->cut_after - p->up_bytes) : want;
        if ( want == 0 )
            return true;        /* cut pending: read nothing more */
        n = read(src, d->buf, want);
        if ( n == 0 )
        {
            d->eof = true;
            shutdown(sink, SHUT_WR);
        }
        else if ( n < 0 && errno != EAGAIN && errno != EINTR )
            return false;
        else if ( n > 0 )
        {
            d->len = (size_t)n;
            d->off = 0;
            if ( up && p->first && flip_at >= p->up_bytes &&
                 flip_at < p->up_bytes + (uint64_t)n )
            {
                d->buf[flip_at - p->up_bytes] ^= 0x01;
                fprintf(stderr, "cutproxy: flipped byte %llu\n",
                        (unsigned long long)flip_at);
            }
            if ( up )
                p->up_bytes += (uint64_t)n;
        }
    }
    while ( d->len )
    {
        n = send(sink, d->buf + d->off, d->len, MSG_NOSIGNAL);
        if ( n < 0 )
            return errno == EAGAIN || errno == EINTR;
        d->off += (size_t)n;
        d->len -= (size_t)n;
    }
    return true;
}

static int listen_on(unsigned int port)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    socklen_t sl = sizeof(sa);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if ( fd < 0 ||
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
         bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
         listen(fd, 16) < 0 ||
         getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 )
    {
        perror("cutproxy: listen");
        exit(1);
    }
    printf("%u\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

static void resolve_target(char *spec)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    char *colon = strrchr(spec, ':');
    int rc;

    if ( !colon )
    {
        fprintf(stderr, "cutproxy: target must be ADDR:PORT\n");
        exit(2);
    }
    *colon = '\0';
    rc = getaddrinfo(spec, colon + 1, &hints, &target);
    if ( rc )
    {
        fprintf(stderr, "cutproxy: %s: %s\n", spec, gai_strerror(rc));
        exit(2);
    }
}

static int signal_fd(void)
{
    sigset_t set;

    /* An ignored signal is discarded even while blocked: make sure it is
     * not inherited as ignored. */
    signal(SIGUSR1, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

static void loop(int lfd, int sfd, uint64_t cut_after, bool refuse_after)
{
    struct pollfd pfd[2 + 2 * MAX_PAIRS];
    unsigned int nconn = 0;
    bool was_cut = false, up_ok, down_ok;

    for ( ;; )
    {
        int n = 2, i;

        pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        for ( i = 0; i < MAX_PAIRS; i++ )
        {
            struct pair *p = &pairs[i];

            if ( !p->used || p->hung )
                continue;
            pfd[n++] = (struct pollfd){ .fd = p->c, .events =
                (p->up.len || p->up.eof ? 0 : POLLIN) |
                (p->down.len ? POLLOUT : 0) };
            pfd[n++] = (struct pollfd){ .fd = p->s, .events =
                (p->down.len || p->down.eof ? 0 : POLLIN) |
                (p->up.len ? POLLOUT : 0) };
        }
        if ( poll(pfd, (nfds_t)n, -1) < 0 && errno != EINTR )
            exit(1);
        if ( pfd[1].revents & POLLIN )
        {
            struct signalfd_siginfo si;

            if ( read(sfd, &si, sizeof(si)) == sizeof(si) )
            {
                for ( i = 0; i < MAX_PAIRS; i++ )
                    if ( pairs[i].used )
                        cut(&pairs[i]);
                was_cut = true;
            }
        }
        if ( pfd[0].revents & POLLIN )
            accept_one(lfd, cut_after, refuse_after && was_cut, &nconn);
        for ( i = 0; i < MAX_PAIRS; i++ )
        {
            struct pair *p = &pairs[i];

            if ( !p->used || p->hung )
                continue;
            /* Both directions, even when one has failed: what one end
             * sent before it reset the connection (a receiver's reason)
             * still reaches the other, as it would over a wire. */
            up_ok = pump(p, &p->up, p->c, p->s, true);
            down_ok = pump(p, &p->down, p->s, p->c, false);
            if ( !up_ok || !down_ok )
            {
                drop(p, true);
                continue;
            }
            if ( p->cut_after && p->up_bytes >= p->cut_after &&
                 !p->up.len )
            {
                cut(p);
                was_cut = true;
                continue;
            }
            if ( p->up.eof && p->down.eof && !p->up.len && !p->down.len )
                drop(p, false);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "port", required_argument, NULL, 'p' },
        { "cut-after", required_argument, NULL, 'n' },
        { "mode", required_argument, NULL, 'm' },
        { "refuse-after-cut", no_argument, NULL, 'r' },
        { "flip-at", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    unsigned int port = 0;
    uint64_t cut_after = 0;
    bool refuse = false;
    int c, lfd, sfd;

    while ( (c = getopt_long(argc, argv, "", longopts, NULL)) != -1 )
    {
        switch ( c )
        {
        case 'p': port = (unsigned int)strtoul(optarg, NULL, 10); break;
        case 'n': cut_after = strtoull(optarg, NULL, 10); break;
        case 'm':
            if ( !strcmp(optarg, "rst") )
                mode = CUT_RST;
            else if ( !strcmp(optarg, "close") )
                mode = CUT_CLOSE;
            else if ( !strcmp(optarg, "hang") )
                mode = CUT_HANG;
            else
            {
                fprintf(stderr, "cutproxy: --mode rst|close|hang\n");
                return 2;
            }
            break;
        case 'r': refuse = true; break;
        case 'f': flip_at = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: cutproxy [--port P] [--cut-after N] "
                    "[--mode rst|close|hang] [--refuse-after-cut] "
                    "ADDR:PORT\n");
            return 2;
        }
    }
    if ( optind + 1 != argc )
    {
        fprintf(stderr, "cutproxy: one target ADDR:PORT expected\n");
        return 2;
    }
    resolve_target(argv[optind]);
    sfd = signal_fd();
    lfd = listen_on(port);
    loop(lfd, sfd, cut_after, refuse);
    return 0;
}
