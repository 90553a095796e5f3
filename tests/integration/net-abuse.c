/* SPDX-License-Identifier: MIT */
/*
 * net-abuse: what a hostile network peer does to a migration listener,
 * for t0025-network-abuse.sh.
 *
 *   net-abuse anon ADDR:PORT
 *       Connect as the senders of old did (no credentials): print what the
 *       listener says first ("got: ..."), send a migrate preamble, print
 *       what follows ("then: ...") and when the listener closed.
 *   net-abuse idle [--from IP] [--half] N HOLD ADDR:PORT
 *       Open N connections (from local address IP), send nothing (with
 *       --half: the first half of a proof line, never ended), and report
 *       each connection the listener closes, and when, within HOLD s.
 *   net-abuse resolve [--key F] [--token HEX] tcp://ADDR:PORT NAME UUID
 *       An authenticated peer (the fleet key F) sends a resolve request
 *       for NAME/UUID, with the migration token HEX if given, and prints
 *       the listener's answer lines.
 *   net-abuse target [--key F] HOLD
 *       A fake target on 127.0.0.1: print the port, take one sender, and
 *       claim to hold the fleet key, proving it with key F (another
 *       fleet's, so the proof is wrong); without --key, say that it runs
 *       keyless.  Then send the receiver's banner, as a target that the
 *       sender trusted would, and report every byte the sender sends
 *       after that, within HOLD s: a sender that refuses the target sends
 *       none.
 *   net-abuse feed FILE FIFO HLEN AT PAUSE
 *       Feed a save file to xl restore through a FIFO, which xl opens
 *       twice: the first HLEN bytes to the first open (the header and
 *       configuration), then the whole file to the second, stalling PAUSE
 *       s after AT bytes, so that a restore is in progress for that long.
 *       The writer keeps the FIFO open throughout and starts the second
 *       copy only once the first reader has taken the header, so the
 *       second open never meets the end of the first copy.
 *
 * Output is one line per fact, for the test to grep.  Exit status 0 when
 * the exchange ran (whatever the listener answered), 1 if it could not.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "xl.h"
#include "xl-transport.h"
#include "../../saverestore/sr.h"

/* The globals of xl that the transport reads. */
int minmsglevel = XC_WARN;
bool progress_use_cr;
bool timestamps;
const char *run_dir;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A TCP connection to "ADDR:PORT", from local address from if non-NULL. */
static int dial(const char *hostport, const char *from)
{
    char host[256], *colon;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int fd;

    snprintf(host, sizeof(host), "%s", hostport);
    colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &res))
        return -1;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && from) {
        struct sockaddr_in sa = { .sin_family = AF_INET };

        if (inet_pton(AF_INET, from, &sa.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* What arrives within ms (or until end of stream), printable, as a line. */
static int slurp(int fd, int ms, char *out, size_t len, bool *eof)
{
    double end = now_s() + ms / 1000.0;
    size_t n = 0;

    *eof = false;
    while (n + 1 < len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int left = (int)((end - now_s()) * 1000);
        ssize_t r;

        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        r = read(fd, out + n, len - 1 - n);
        if (r <= 0) {
            *eof = true;
            break;
        }
        n += (size_t)r;
    }
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\n')
            out[i] = '|';
        else if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
    out[n] = '\0';
    return (int)n;
}

static int anon(const char *hostport)
{
    static const char pre[] = "ferry-migrate 1 {\"op\":\"migrate\","
        "\"name\":\"intruder\",\"uuid\":\"6b1d0b7e-3d1a-4a54-9c54-"
        "2f1c0c4d2a11\",\"max_memkb\":1024,\"max_vcpus\":1,\"paused\":false,"
        "\"monitor\":false,\"debug\":false}\n";
    char buf[4096];
    double t0;
    bool eof;
    int fd = dial(hostport, NULL);

    if (fd < 0) {
        printf("cannot connect\n");
        return 1;
    }
    slurp(fd, 2000, buf, sizeof(buf), &eof);
    printf("got: %s\n", buf);
    if (write(fd, pre, sizeof(pre) - 1) < 0)
        printf("write failed: %s\n", strerror(errno));
    t0 = now_s();
    slurp(fd, 15000, buf, sizeof(buf), &eof);
    printf("then: %s\n", buf);
    if (eof)
        printf("closed by the listener after %.1f s\n", now_s() - t0);
    else
        printf("still open after 15 s\n");
    close(fd);
    return 0;
}

static int idle(const char *from, bool half, int n, int hold,
                const char *hostport)
{
    /* The nonce and proof of a sender, cut short: the listener has a
     * line to wait for that never ends. */
    static const char part[] = "ferry-auth 00112233445566778899";
    int fds[256], closed = 0, opened = 0;
    double t0 = now_s(), last = 0;
    char c;

    if (n > 256)
        n = 256;
    for (int i = 0; i < n; i++) {
        fds[i] = dial(hostport, from);
        opened += fds[i] >= 0;
        if (fds[i] >= 0 && half &&
            write(fds[i], part, sizeof(part) - 1) < 0)
            printf("write failed: %s\n", strerror(errno));
    }
    printf("opened %d of %d\n", opened, n);
    fflush(stdout);
    while (closed < opened && now_s() - t0 < hold) {
        struct pollfd p[256];

        for (int i = 0; i < n; i++)
            p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
        if (poll(p, (nfds_t)n, 200) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            /* Read and drop what the listener offers; end of stream
             * means it closed us. */
            if (recv(fds[i], &c, 1, 0) > 0)
                continue;
            close(fds[i]);
            fds[i] = -1;
            closed++;
            last = now_s() - t0;
            printf("closed %d after %.1f s\n", closed, last);
        }
    }
    printf("closed by the listener: %d of %d, the last after %.1f s\n",
           closed, opened, last);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return 0;
}

static int resolve(const char *key, const char *token, const char *target,
                   const char *name, const char *uuid)
{
    struct xl_chan_opts o = { .auth = { key, false } };
    struct xl_chan *ch = NULL;
    char err[XL_CHAN_ERRLEN], line[4096];
    int rc = 1;

    if (xl_chan_connect(&ch, target, &o, err, sizeof(err))) {
        printf("connect: %s\n", err);
        return 1;
    }
    xl_chan_set_timeout(ch, 10000);
    snprintf(line, sizeof(line), "ferry-migrate 1 {\"op\":\"resolve\","
             "\"name\":\"%s\",\"uuid\":\"%s\",\"max_memkb\":0,"
             "\"max_vcpus\":0,\"paused\":false,\"monitor\":false,"
             "\"debug\":false%s%s%s}\n", name, uuid,
             token ? ",\"token\":\"" : "", token ? token : "",
             token ? "\"" : "");
    /* The banner first (one line), then our request, then the answers. */
    if (xl_chan_read_line(ch, err, sizeof(err)) ||
        sr_io_write(xl_chan_io(ch), line, strlen(line))) {
        printf("exchange failed: %s\n", sr_io_errmsg(xl_chan_io(ch)));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        if (xl_chan_read_line(ch, line, sizeof(line)))
            break;
        printf("answer: %s\n", line);
        if (!strncmp(line, "error ", 6))
            break;
    }
    rc = 0;
 out:
    xl_chan_close(ch, NULL);
    return rc;
}

/* HMAC-SHA256 under key of label, then the two nonces: the proof of the
 * fleet-key exchange (xl-transport.h). */
static int proof_of(const unsigned char key[32], const char *label,
                    const unsigned char ns[32], const unsigned char nc[32],
                    unsigned char out[32])
{
    unsigned char data[64 + 64];
    unsigned int outl = 0;
    size_t l = strlen(label);

    memcpy(data, label, l);
    memcpy(data + l, ns, 32);
    memcpy(data + l + 32, nc, 32);
    if (!HMAC(EVP_sha256(), key, 32, data, l + 64, out, &outl) || outl != 32)
        return -1;
    return 0;
}

static void hex_of(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* One line from fd (byte by byte: nothing after it is consumed). */
static int line_of(int fd, char *buf, size_t len, int ms)
{
    size_t n = 0;

    while (n + 1 < len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (poll(&p, 1, ms) <= 0 || read(fd, buf + n, 1) != 1)
            break;
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    buf[n] = '\0';
    return -1;
}

static int target(const char *keyfile, int hold)
{
    static const char banner[] =
        "xl migration receiver ready, send binary domain data.\n";
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    unsigned char key[32], ns[32], nc[32], proof[32];
    char line[512], hex[65], err[XL_CHAN_ERRLEN], buf[4096];
    size_t got = 0;
    double t0;
    bool eof;
    int lfd, fd;

    if (keyfile && xl_auth_load_key(keyfile, key, err, sizeof(err))) {
        printf("%s\n", err);
        return 1;
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
        printf("cannot listen: %s\n", strerror(errno));
        return 1;
    }
    printf("port %u\n", ntohs(sa.sin_port));
    fd = accept(lfd, NULL, NULL);
    close(lfd);
    if (fd < 0) {
        printf("accept failed: %s\n", strerror(errno));
        return 1;
    }
    if (!keyfile) {
        snprintf(line, sizeof(line), "ferry-auth 1 none\n%s", banner);
    } else {
        /* Our nonce; the sender's nonce and proof (not checked: an
         * impersonator accepts anyone); our proof under the wrong key. */
        if (RAND_bytes(ns, 32) != 1)
            return 1;
        hex_of(ns, 32, hex);
        snprintf(line, sizeof(line), "ferry-auth 2 hmac-sha256 %s\n", hex);
        if (write(fd, line, strlen(line)) < 0 ||
            line_of(fd, line, sizeof(line), 5000) ||
            strncmp(line, "ferry-auth ", 11) || strlen(line) < 11 + 64) {
            printf("no proof from the sender: \"%.80s\"\n", line);
            close(fd);
            return 1;
        }
        for (int i = 0; i < 32; i++) {
            unsigned int v;

            sscanf(line + 11 + 2 * i, "%2x", &v);
            nc[i] = (unsigned char)v;
        }
        if (proof_of(key, "ferry-migrate server", ns, nc, proof))
            return 1;
        hex_of(proof, 32, hex);
        snprintf(line, sizeof(line), "ferry-auth ok %s\n%s", hex, banner);
    }
    if (write(fd, line, strlen(line)) < 0)
        printf("write failed: %s\n", strerror(errno));
    printf("answered\n");
    /* Everything the sender sends now would be the domain's. */
    t0 = now_s();
    do {
        int n = slurp(fd, (int)((hold - (now_s() - t0)) * 1000), buf,
                      sizeof(buf), &eof);

        if (n > 0 && !got)
            printf("first bytes: %.60s\n", buf);
        got += (size_t)n;
    } while (!eof && now_s() - t0 < hold);
    printf("then %zu bytes from the sender, %s after %.1f s\n", got,
           eof ? "closed" : "still open", now_s() - t0);
    close(fd);
    return 0;
}

/* Write len bytes of buf to the FIFO, waiting (until deadline) while it
 * has no reader: between xl's two opens. */
static int feed_part(int fd, const char *buf, size_t len, double deadline)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);

        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && (errno == EPIPE || errno == EINTR) &&
                   now_s() < deadline) {
            nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
        } else {
            printf("feed: writing the FIFO: %s\n",
                   n < 0 ? strerror(errno) : "nothing written");
            return -1;
        }
    }
    return 0;
}

static int feed(const char *file, const char *fifo, size_t hlen, size_t at,
                int pause_s)
{
    double deadline;
    struct stat st;
    char *buf = NULL;
    int fd = -1, in, queued = 1, rc = 1;

    signal(SIGPIPE, SIG_IGN);
    in = open(file, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) < 0 || (size_t)st.st_size < hlen ||
        (size_t)st.st_size < at || !(buf = malloc((size_t)st.st_size)) ||
        read(in, buf, (size_t)st.st_size) != st.st_size) {
        printf("feed: cannot read %s\n", file);
        goto out;
    }
    fd = open(fifo, O_WRONLY | O_CLOEXEC);
    deadline = now_s() + 60;
    if (fd < 0 || feed_part(fd, buf, hlen, deadline))
        goto out;
    /* Data we write stays in the FIFO for the second open while we hold
     * it, but the first reader must not take any of it. */
    while (queued > 0 && now_s() < deadline) {
        if (ioctl(fd, FIONREAD, &queued) < 0)
            break;
        if (queued > 0)
            nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
    }
    if (queued || feed_part(fd, buf, at, deadline))
        goto out;
    printf("paused after %zu bytes\n", at);
    sleep((unsigned int)pause_s);
    if (feed_part(fd, buf + at, (size_t)st.st_size - at, now_s() + 60))
        goto out;
    printf("fed %lld bytes\n", (long long)st.st_size);
    rc = 0;
 out:
    if (fd >= 0)
        close(fd);
    if (in >= 0)
        close(in);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "anon"))
        return anon(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "idle")) {
        const char *from = NULL;
        bool half = false;
        int i = 2;

        while (i + 3 < argc && argv[i][0] == '-') {
            if (!strcmp(argv[i], "--half")) {
                half = true;
                i++;
            } else if (!strcmp(argv[i], "--from")) {
                from = argv[i + 1];
                i += 2;
            } else {
                break;
            }
        }
        if (argc - i == 3)
            return idle(from, half, atoi(argv[i]), atoi(argv[i + 1]),
                        argv[i + 2]);
    }
    if (argc >= 5 && !strcmp(argv[1], "resolve")) {
        const char *key = NULL, *token = NULL;
        int i = 2;

        while (i + 1 < argc && argv[i][0] == '-') {
            if (!strcmp(argv[i], "--key"))
                key = argv[i + 1];
            else if (!strcmp(argv[i], "--token"))
                token = argv[i + 1];
            else
                break;
            i += 2;
        }
        if (argc - i == 3)
            return resolve(key, token, argv[i], argv[i + 1], argv[i + 2]);
    }
    if (argc >= 3 && !strcmp(argv[1], "target")) {
        if (argc == 5 && !strcmp(argv[2], "--key"))
            return target(argv[3], atoi(argv[4]));
        if (argc == 3)
            return target(NULL, atoi(argv[2]));
    }
    if (argc == 7 && !strcmp(argv[1], "feed"))
        return feed(argv[2], argv[3], strtoul(argv[4], NULL, 0),
                    strtoul(argv[5], NULL, 0), atoi(argv[6]));
    fprintf(stderr, "usage: net-abuse anon ADDR:PORT | idle [--from IP] "
            "[--half] N HOLD ADDR:PORT | resolve [--key F] [--token HEX] "
            "TARGET NAME UUID | target [--key F] HOLD | feed FILE FIFO HLEN AT "
            "PAUSE\n");
    return 2;
}
