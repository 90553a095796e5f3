/* SPDX-License-Identifier: MIT */
/*
 * net-abuse: what a hostile network peer does to a migration listener,
 * for t0025-network-abuse.sh.
 *
 *   net-abuse anon ADDR:PORT
 *       Connect as the senders of old did (no credentials): print what the
 *       listener says first ("got: ..."), send a migrate preamble, print
 *       what follows ("then: ...") and when the listener closed.
 *   net-abuse idle [--from IP] N HOLD ADDR:PORT
 *       Open N connections (from local address IP), send nothing, and
 *       report how many the listener closed, and when, within HOLD s.
 *   net-abuse resolve [--key F] [--token HEX] tcp://ADDR:PORT NAME UUID
 *       An authenticated peer (the fleet key F) sends a resolve request
 *       for NAME/UUID, with the migration token HEX if given, and prints
 *       the listener's answer lines.
 *
 * Output is one line per fact, for the test to grep.  Exit status 0 when
 * the exchange ran (whatever the listener answered), 1 if it could not.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

static int idle(const char *from, int n, int hold, const char *hostport)
{
    int fds[256], closed = 0, opened = 0;
    double t0 = now_s(), last = 0;
    char c;

    if (n > 256)
        n = 256;
    for (int i = 0; i < n; i++) {
        fds[i] = dial(hostport, from);
        opened += fds[i] >= 0;
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

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "anon"))
        return anon(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "idle")) {
        const char *from = NULL;
        int i = 2;

        if (!strcmp(argv[i], "--from") && argc == 7) {
            from = argv[i + 1];
            i += 2;
        }
        if (argc - i == 3)
            return idle(from, atoi(argv[i]), atoi(argv[i + 1]), argv[i + 2]);
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
    fprintf(stderr, "usage: net-abuse anon ADDR:PORT | idle [--from IP] N "
            "HOLD ADDR:PORT | resolve [--key F] [--token HEX] TARGET NAME "
            "UUID\n");
    return 2;
}
