/* SPDX-License-Identifier: MIT */
/*
 * chan-test: drives xl's migration transport (xl/xl-transport.c) from both
 * ends without the migration protocol, for t0023-migrate-transport.sh.
 *
 *   chan-test send [-s SSHCMD] [--tls-cert F] [--tls-key F] [--tls-ca F]
 *             [--tls-name N] [--key F] [--insecure] [--bulk MIB] [--reopen]
 *             TARGET WORD
 *   chan-test [-H DIR] [-t] [-T] [-v...] migrate-receive [--fd N]
 *             [--tls-cert F --tls-key F --tls-ca F] [ARGS...]
 *
 * The second form has xl's command line, so the transport can start this
 * program wherever it would start xl (local:, a fake ssh, ferry-hv --xl).
 *
 * Exchange: the receiver sends "receiver H=<dir> args=<a,b,..>\n"; the
 * sender sends "WORD LEN\n" and LEN bytes of pseudo-random data; the
 * receiver reads them (the first ones a byte at a time, to exercise the
 * channel's read buffer, the rest in odd-sized runs), answers "echo WORD
 * bytes=LEN hash=H\n", and then expects end-of-stream.  The sender prints
 * the banner and the answer, checks the hash, half-closes, and prints the
 * receiver's exit status ("child: exit N") when it has one.  --reopen runs
 * the whole exchange a second time on xl_chan_reopen's new channel.
 * Exit status: 0 success, 1 failure (with the transport's message).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "xl.h"
#include "xl-transport.h"
#include "../../saverestore/sr.h"

/* The globals of xl that the transport reads. */
int minmsglevel = XC_WARN;
bool progress_use_cr;
bool timestamps;
const char *run_dir;

/* The global options the receiver was started with, for its banner. */
static char gflags[64];

#define CHUNK (1U << 20)
#define FNV_SEED 0xcbf29ce484222325ULL

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void fill(uint8_t *buf, size_t n, uint64_t *x)
{
    for (size_t i = 0; i < n; i++) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        buf[i] = (uint8_t)*x;
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- receiver -------------------------------------------------------- */

static int recv_data(struct sr_io *io, uint64_t len, uint8_t *buf,
                     uint64_t *hash)
{
    uint64_t h = FNV_SEED, done = 0;
    size_t run = 7;
    int rc;

    while (done < len) {
        size_t n = done < 1000 ? 1 : run;

        if (n > len - done)
            n = (size_t)(len - done);
        if ((rc = sr_io_read(io, buf, n)))
            return rc;
        h = fnv(h, buf, n);
        done += n;
        if (done >= 1000)
            run = run * 3 + 1 > CHUNK ? 4093 : run * 3 + 1;
    }
    *hash = h;
    return 0;
}

static int receive(int argc, char **argv)
{
    struct xl_tls_files tls = { NULL };
    struct xl_auth auth = { NULL, false };
    int idle_ms = 0;
    struct xl_chan *ch = NULL;
    char err[XL_CHAN_ERRLEN], line[4096], out[8192], word[4096];
    uint8_t *buf = malloc(CHUNK), c;
    unsigned long long len;
    uint64_t h;
    size_t off;
    int fd = -1, i, rc = 1;

    off = (size_t)snprintf(out, sizeof(out), "receiver H=%s g=%s args=",
                           run_dir ? run_dir : "-", gflags);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fd") && i + 1 < argc)
            fd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc)
            tls.cert = argv[++i];
        else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc)
            tls.key = argv[++i];
        else if (!strcmp(argv[i], "--tls-ca") && i + 1 < argc)
            tls.ca = argv[++i];
        else if (!strcmp(argv[i], "--tls-allow") && i + 1 < argc)
            tls.allow = argv[++i];
        else if (!strcmp(argv[i], "--tls-crl") && i + 1 < argc)
            tls.crl = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            auth.key_file = argv[++i];
        else if (!strcmp(argv[i], "--insecure"))
            auth.insecure = true;
        else if (!strcmp(argv[i], "--idle-timeout") && i + 1 < argc)
            idle_ms = atoi(argv[++i]) * 1000;
        else if (off < sizeof(out) - 1)
            off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%s",
                                    off && out[off - 1] != '=' ? "," : "",
                                    argv[i]);
    }
    if (!buf || off >= sizeof(out) - 1)
        goto out;
    if (xl_chan_accept(&ch, fd, tls.cert || tls.key || tls.ca ? &tls : NULL,
                       &auth, err, sizeof(err))) {
        fprintf(stderr, "migrate-receive: %s\n", err);
        goto out;
    }
    xl_chan_set_timeout(ch, idle_ms);
    out[off++] = '\n';
    if (sr_io_write(xl_chan_io(ch), out, off) ||
        xl_chan_read_line(ch, line, sizeof(line)))
        goto io_err;
    if (sscanf(line, "%4095s %llu", word, &len) != 2) {
        fprintf(stderr, "migrate-receive: bad request '%s'\n", line);
        goto out;
    }
    if (recv_data(xl_chan_io(ch), len, buf, &h))
        goto io_err;
    off = (size_t)snprintf(out, sizeof(out), "echo %s bytes=%llu "
                           "hash=%016" PRIx64 "\n", word, len, h);
    if (sr_io_write(xl_chan_io(ch), out, off))
        goto io_err;
    if (sr_io_read(xl_chan_io(ch), &c, 1) != -ENODATA) {
        fprintf(stderr, "migrate-receive: expected end-of-stream\n");
        goto out;
    }
    rc = 0;
    goto out;

 io_err:
    fprintf(stderr, "migrate-receive: %s\n", sr_io_errmsg(xl_chan_io(ch)));
 out:
    xl_chan_close(ch, NULL);
    free(buf);
    return rc;
}

/* ---- sender ---------------------------------------------------------- */

static int exchange(struct xl_chan *ch, const char *word, uint64_t len,
                    uint8_t *buf)
{
    struct sr_io *io = xl_chan_io(ch);
    char line[8192], expect[256];
    uint64_t h = FNV_SEED, x = 88172645463325252ULL, done = 0;
    double t0;
    int rc, st;

    if (xl_chan_read_line(ch, line, sizeof(line)))
        goto io_err;
    printf("banner: %s\n", line);
    if (xl_chan_tls_cipher(ch))
        printf("tls: %s\n", xl_chan_tls_cipher(ch));
    snprintf(line, sizeof(line), "%s %" PRIu64 "\n", word, len);
    if (sr_io_write(io, line, strlen(line)))
        goto io_err;
    t0 = now_s();
    while (done < len) {
        size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;

        fill(buf, n, &x);
        h = fnv(h, buf, n);
        if (sr_io_write(io, buf, n))
            goto io_err;
        done += n;
    }
    if (xl_chan_read_line(ch, line, sizeof(line)))
        goto io_err;
    if (len >= CHUNK)
        fprintf(stderr, "chan-test: %" PRIu64 " MiB in %.3f s\n", len >> 20,
                now_s() - t0);
    printf("reply: %s\n", line);
    snprintf(expect, sizeof(expect), "echo %s bytes=%" PRIu64
             " hash=%016" PRIx64, word, len, h);
    if (strcmp(line, expect)) {
        fprintf(stderr, "chan-test: expected '%s'\n", expect);
        return 1;
    }
    if ((rc = xl_chan_shutdown_write(ch))) {
        fprintf(stderr, "chan-test: shutdown: %s\n", strerror(-rc));
        return 1;
    }
    if (xl_chan_pid(ch) > 0) {
        if (xl_chan_wait(ch, 10000, &st)) {
            fprintf(stderr, "chan-test: receiver did not exit\n");
            return 1;
        }
        printf("child: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
    }
    return 0;

 io_err:
    fprintf(stderr, "chan-test: %s\n", sr_io_errmsg(io));
    return 1;
}

static int send_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "tls-cert", required_argument, NULL, 'C' },
        { "tls-key", required_argument, NULL, 'K' },
        { "tls-ca", required_argument, NULL, 'A' },
        { "bulk", required_argument, NULL, 'b' },
        { "reopen", no_argument, NULL, 'r' },
        { "tls-name", required_argument, NULL, 'N' },
        { "key", required_argument, NULL, 'k' },
        { "insecure", no_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    const char *recv_args[] = { "-e", "arg with 'quotes'", NULL };
    struct xl_chan_opts o = { .recv_args = recv_args };
    struct xl_chan *ch = NULL, *ch2 = NULL;
    char err[XL_CHAN_ERRLEN];
    uint64_t len = 4096;
    bool reopen = false;
    uint8_t *buf = malloc(CHUNK);
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "s:", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.ssh_command = optarg; break;
        case 'C': o.tls.cert = optarg; break;
        case 'K': o.tls.key = optarg; break;
        case 'A': o.tls.ca = optarg; break;
        case 'b': len = strtoull(optarg, NULL, 10) << 20; break;
        case 'r': reopen = true; break;
        case 'N': o.tls.name = optarg; break;
        case 'k': o.auth.key_file = optarg; break;
        case 'i': o.auth.insecure = true; break;
        default: return 2;
        }
    }
    if (optind + 2 != argc || !buf)
        return 2;
    if (xl_chan_connect(&ch, argv[optind], &o, err, sizeof(err))) {
        fprintf(stderr, "chan-test: %s\n", err);
        goto out;
    }
    if (xl_chan_rune(ch))
        printf("rune: %s\n", xl_chan_rune(ch));
    if (exchange(ch, argv[optind + 1], len, buf))
        goto out;
    if (reopen) {
        if (xl_chan_reopen(ch, &ch2, err, sizeof(err))) {
            fprintf(stderr, "chan-test: reopen: %s\n", err);
            goto out;
        }
        if (exchange(ch2, "again", 4096, buf))
            goto out;
    }
    rc = 0;
 out:
    xl_chan_close(ch2, NULL);
    xl_chan_close(ch, NULL);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    int i;

    /* Tests watch the output of a sender still running. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "send"))
        return send_main(argc - 1, argv + 1);
    /* xl's global options, then the verb. */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-H") && i + 1 < argc)
            run_dir = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] != 'H' &&
                 strlen(gflags) + strlen(argv[i]) < sizeof(gflags) - 1)
            strcat(gflags, argv[i]);
        else if (!strcmp(argv[i], "migrate-receive"))
            return receive(argc - i, argv + i);
        else if (argv[i][0] != '-')
            break;
    }
    fprintf(stderr, "usage: chan-test send ... | chan-test [-H DIR] "
            "migrate-receive ...\n");
    return 2;
}
