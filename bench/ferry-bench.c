/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench: the save/restore and live-migration benchmark (issue 4
 * item 8, issue 5 item 8, issue 11).  `make bench` builds and runs it; it
 * is not a test and asserts nothing: it prints a table of figures, each
 * as a ratio to a yardstick measured in the same run, against the aims of
 * issue 11, and says which are met.
 *
 * What it does, all on this machine and in one run:
 * - measures the yardsticks the aims are ratios of: single-thread memcpy;
 *   O_DIRECT write (fdatasync included) and O_DIRECT read of a file in
 *   the directory the save files go to; buffered write with fsync there;
 *   a plain loopback TCP copy from a hot buffer.  It also times the
 *   digests OpenSSL offers, for the record;
 * - for each domain size (1, 2 and 4 GiB; --quick: 16 and 64 MiB) starts
 *   two ferry-hv daemons of its own (run directories under a temporary
 *   directory, credentials made by ferry-creds, stopped by pid at the
 *   end, whatever happens), builds an `idle` domain with libxc, fills
 *   every free data page of it (PFNs from the builder's first_free_pfn:
 *   never page tables, start_info or the P2M) with incompressible bytes
 *   while it is paused, lets it run, asks it to suspend, and runs the real
 *   engines on it (sr_save_domain to /dev/null, to an atomic file
 *   committed with fsync, sr_restore_domain from that file while it is in
 *   the page cache and again after it was dropped from it).  Each
 *   operation opens the host afresh, as an xl process does, so first-touch
 *   costs of its mappings are counted;
 * - live migration with the real `xl migrate --json` (its figures are the
 *   bench's, so the two always agree): a filled idle domain over tcp://,
 *   local: and tls://, and memdirty domains at 100 MB/s and 1 GB/s;
 * - aim 2: a 2 GiB domain that was never written, migrated and saved;
 * - aim 6: how long a 4 GiB host takes to answer;
 * - aim 7: the largest size's times against the smallest's.
 *
 * Invariants: nothing is left behind: domains are destroyed, daemons
 * stopped by the pids they wrote, files and directories removed.  The
 * program only ever signals processes it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "common/size.h"
#include "../libxc/xc.h"
#include "../saverestore/sr.h"
#include "../xl/xl-cfg.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define NS_PER_S 1000000000ULL
#define MAP_BATCH 1024
#define MAX_ROWS 128

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* This process's CPU time: what the engines cost, whatever else runs. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static double secs(uint64_t ns)
{
    return (double)ns / NS_PER_S;
}

static double gbps(uint64_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / (double)ns : 0.0;   /* bytes/ns = GB/s */
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Fault a range in with one call instead of one fault per page. */
static void populate(void *p, size_t len, bool write)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;

    if ( !madvise((void *)a, len + ((uintptr_t)p - a),
                  write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) )
        return;
#endif
    if ( write )
        memset(p, 0, len);
}

/* splitmix64: fast, and its output does not compress. */
static void fill_random(void *buf, size_t len, uint64_t *state)
{
    uint64_t *q = buf, s = *state;

    for ( size_t i = 0; i < len / 8; i++ )
    {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        q[i] = z ^ (z >> 31);
    }
    *state = s;
}

/* ------------------------------------------------------------------------
 * The results table
 * ------------------------------------------------------------------------ */

struct row
{
    char figure[96];
    char value[24];     /* e.g. "2.31 GB/s" */
    char ratio[40];     /* e.g. "0.15x memcpy" */
    char aim[24];
    const char *result; /* "met", "NOT MET", "n/a", "info" */
};

static struct row rows[MAX_ROWS];
static unsigned int nr_rows;

static struct row *row_new(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static struct row *row_new(const char *fmt, ...)
{
    static struct row spare;
    struct row *r = nr_rows < MAX_ROWS ? &rows[nr_rows++] : &spare;
    va_list ap;

    memset(r, 0, sizeof(*r));
    va_start(ap, fmt);
    vsnprintf(r->figure, sizeof(r->figure), fmt, ap);
    va_end(ap);
    r->result = "info";
    return r;
}

/* A throughput figure as a ratio of a yardstick, aim ratio >= min. */
static void row_rate(const char *figure, uint64_t bytes, uint64_t ns,
                     double base_gbps, const char *base, double min)
{
    struct row *r = row_new("%s", figure);
    double v = gbps(bytes, ns), q = base_gbps > 0 ? v / base_gbps : 0;

    snprintf(r->value, sizeof(r->value), "%.2f GB/s", v);
    snprintf(r->ratio, sizeof(r->ratio), "%.3fx %s", q, base);
    if ( min > 0 )
    {
        snprintf(r->aim, sizeof(r->aim), ">= %.2fx", min);
        r->result = q >= min ? "met" : "NOT MET";
    }
}

/* A figure that could not be measured: the line is still printed. */
static void row_na(const char *figure, const char *aim, const char *why)
{
    struct row *r = row_new("%s", figure);

    snprintf(r->value, sizeof(r->value), "-");
    snprintf(r->ratio, sizeof(r->ratio), "%.39s", why);
    snprintf(r->aim, sizeof(r->aim), "%s", aim);
    /* Only an aim can be "not measured"; a figure for the record cannot. */
    r->result = strcmp(aim, "-") ? "n/a" : "info";
}

/*
 * A figure with an upper bound (max > 0) or for the record (max <= 0):
 * value v in unit ("ms", "s", "MiB"), printed with prec decimals.
 */
static struct row *row_max(const char *figure, double v, const char *unit,
                           int prec, double max)
{
    struct row *r = row_new("%s", figure);

    snprintf(r->value, sizeof(r->value), "%.*f %s", prec, v, unit);
    if ( max > 0 )
    {
        snprintf(r->aim, sizeof(r->aim), "<= %g %s", max, unit);
        r->result = v <= max ? "met" : "NOT MET";
    }
    return r;
}

static void print_table(void)
{
    unsigned int met = 0, missed = 0, na = 0;

    printf("\n%-60s %12s  %-32s %-12s %s\n", "figure", "value", "ratio",
           "aim", "result");
    for ( unsigned int i = 0; i < nr_rows; i++ )
    {
        const struct row *r = &rows[i];

        printf("%-60s %12s  %-32s %-12s %s\n", r->figure, r->value,
               r->ratio, r->aim, r->result);
        met += !strcmp(r->result, "met");
        missed += !strcmp(r->result, "NOT MET");
        na += !strcmp(r->result, "n/a");
    }
    printf("\nbench: %u aims met, %u not met, %u not measured (figures of "
           "one run: compare them only with each other)\n", met, missed, na);
}

/* ------------------------------------------------------------------------
 * Yardsticks: memcpy, durable file writes, digests, loopback TCP
 * ------------------------------------------------------------------------ */

/* Best of several copies of a resident buffer (the first touch is not
 * what memcpy costs). */
static double measure_memcpy(size_t len)
{
    uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t best = UINT64_MAX, seed = 1;

    if ( a == MAP_FAILED || b == MAP_FAILED )
        return 0;
    populate(a, len, true);
    populate(b, len, true);
    fill_random(a, len, &seed);
    memset(b, 1, len);
    for ( int i = 0; i < 6; i++ )
    {
        uint64_t t = now_ns();

        memcpy(i & 1 ? a : b, i & 1 ? b : a, len);
        __asm__ volatile("" : : "r"(a), "r"(b) : "memory");
        t = now_ns() - t;
        if ( t < best )
            best = t;
    }
    munmap(a, len);
    munmap(b, len);
    return gbps(len, best);
}

/* Buffered write() in 4 MiB blocks then fsync, as a save to a file did
 * (for the record: it swings too much to be aim 5's reference). */
static double measure_disk(const char *dir, size_t len)
{
    const size_t blk = 4 * MiB;
    char path[PATH_MAX];
    uint8_t *buf = malloc(blk);
    uint64_t seed = 7, t;
    double r = 0;
    int fd;

    snprintf(path, sizeof(path), "%.*s/disk-bench", PATH_MAX / 2, dir);
    if ( !buf )
        return 0;
    fill_random(buf, blk, &seed);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if ( fd < 0 )
        goto out;
    t = now_ns();
    for ( size_t done = 0; done < len; done += blk )
        if ( write(fd, buf, blk) != (ssize_t)blk )
            goto out_close;
    if ( fsync(fd) )
        goto out_close;
    r = gbps(len, now_ns() - t);
 out_close:
    close(fd);
    unlink(path);
 out:
    free(buf);
    return r;
}

/*
 * O_DIRECT write of len bytes in 4 MiB blocks, fdatasync included, then
 * an O_DIRECT read of the same file: the disk's own rates in the save
 * directory, past the page cache (aim 5's yardsticks).  0: the file
 * system refuses O_DIRECT (tmpfs does) or an I/O failed.
 */
static void measure_direct(const char *dir, size_t len, double *wr,
                           double *rd)
{
    const size_t blk = 4 * MiB;
    char path[PATH_MAX];
    void *buf = NULL;
    uint64_t seed = 9, t;
    size_t done;
    int fd;

    *wr = *rd = 0;
    snprintf(path, sizeof(path), "%.*s/direct-bench", PATH_MAX / 2, dir);
    if ( posix_memalign(&buf, 4096, blk) )
        return;
    fill_random(buf, blk, &seed);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT,
              0600);
    if ( fd < 0 )
        goto out;
    t = now_ns();
    for ( done = 0; done < len; done += blk )
        if ( write(fd, buf, blk) != (ssize_t)blk )
            break;
    if ( done >= len && !fdatasync(fd) )
        *wr = gbps(len, now_ns() - t);
    close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if ( fd < 0 || !*wr )
        goto out_unlink;
    t = now_ns();
    for ( done = 0; done < len; done += blk )
        if ( read(fd, buf, blk) != (ssize_t)blk )
            break;
    if ( done >= len )
        *rd = gbps(len, now_ns() - t);
 out_unlink:
    if ( fd >= 0 )
        close(fd);
    unlink(path);
 out:
    free(buf);
}

/* One digest or MAC over a resident buffer, fed as the engines do. */
static double measure_digest(const char *name, const uint8_t *buf,
                             size_t len)
{
    const size_t chunk = 4 * MiB;
    unsigned char out[64], key[32] = { 1 }, iv[12] = { 0 };
    double r = 0;
    uint64_t t;

    if ( !strcmp(name, "GMAC") || !strcmp(name, "POLY1305") )
    {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, name, NULL);
        EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM p[3] = { OSSL_PARAM_END, OSSL_PARAM_END, OSSL_PARAM_END };
        char gcm[] = "AES-128-GCM";
        size_t ol;

        if ( !strcmp(name, "GMAC") )
        {
            p[0] = OSSL_PARAM_construct_utf8_string("cipher", gcm, 0);
            p[1] = OSSL_PARAM_construct_octet_string("iv", iv, sizeof(iv));
        }
        t = now_ns();
        if ( c && EVP_MAC_init(c, key, !strcmp(name, "GMAC") ? 16 : 32, p) )
        {
            for ( size_t o = 0; o < len; o += chunk )
                EVP_MAC_update(c, buf + o, chunk);
            EVP_MAC_final(c, out, &ol, sizeof(out));
            r = gbps(len, now_ns() - t);
        }
        EVP_MAC_CTX_free(c);
        EVP_MAC_free(mac);
    }
    else
    {
        EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned int ol;

        t = now_ns();
        if ( md && c && EVP_DigestInit_ex(c, md, NULL) )
        {
            for ( size_t o = 0; o < len; o += chunk )
                EVP_DigestUpdate(c, buf + o, chunk);
            EVP_DigestFinal_ex(c, out, &ol);
            r = gbps(len, now_ns() - t);
        }
        EVP_MD_CTX_free(c);
        EVP_MD_free(md);
    }
    return r;
}

/* The stream library's own digest path: sr_io writes to /dev/null. */
static double measure_sr_io_digest(const uint8_t *buf, size_t len)
{
    const size_t chunk = 4 * MiB;
    uint8_t out[SR_SHA256_LEN];
    struct sr_io *io = NULL;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    uint64_t t;
    double r = 0;

    if ( fd < 0 || sr_io_open_fd(&io, fd, true) )
    {
        if ( fd >= 0 )
            close(fd);
        return 0;
    }
    t = now_ns();
    /* A digest that starts at an xl header, as the engines' do. */
    if ( !sr_io_hash_start(io) &&
         !sr_write_xl_hdr(io, SR_XL_FLAG_STREAMV2, NULL, 0) )
    {
        for ( size_t o = 0; o < len; o += chunk )
            sr_io_write(io, buf + o, chunk);
        if ( !sr_io_hash_final(io, out) )
            r = gbps(len, now_ns() - t);
    }
    sr_io_close(io);
    return r;
}

struct tcp_sink
{
    int fd;
    uint64_t bytes;
};

static void *tcp_sink_main(void *arg)
{
    struct tcp_sink *s = arg;
    const size_t len = 4 * MiB;
    uint8_t *buf = malloc(len);
    ssize_t n;

    if ( buf )
    {
        populate(buf, len, true);
        while ( (n = read(s->fd, buf, len)) > 0 )
            s->bytes += n;
    }
    free(buf);
    return NULL;
}

/* A plain copy over loopback TCP: one thread writes, one reads. */
static double measure_loopback(size_t total)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    const size_t len = 4 * MiB;
    struct tcp_sink sink = { .fd = -1 };
    int lfd, cfd = -1;
    pthread_t th;
    uint8_t *buf = NULL;
    uint64_t t, seed = 3;
    double r = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
         listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&sa, &sl) )
        goto out;
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) )
        goto out;
    if ( (sink.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
         !(buf = malloc(len)) )
        goto out;
    fill_random(buf, len, &seed);
    if ( pthread_create(&th, NULL, tcp_sink_main, &sink) )
        goto out;
    t = now_ns();
    for ( size_t done = 0; done < total; )
    {
        ssize_t n = write(cfd, buf, len);

        if ( n <= 0 )
            break;
        done += n;
    }
    shutdown(cfd, SHUT_WR);
    pthread_join(th, NULL);
    r = gbps(sink.bytes, now_ns() - t);
 out:
    free(buf);
    if ( sink.fd >= 0 )
        close(sink.fd);
    if ( cfd >= 0 )
        close(cfd);
    if ( lfd >= 0 )
        close(lfd);
    return r;
}

/* ------------------------------------------------------------------------
 * Hosts: ferry-hv daemons of our own
 * ------------------------------------------------------------------------ */

struct host
{
    char dir[PATH_MAX];
    pid_t pid;          /* from its pid file; 0: not running */
    uint64_t start_ns;  /* how long ferry-hv took to answer */
    char tcp[64];       /* its listeners (DIR/migrate.addr); "" if none */
    char tls[64];
};

static char top_builddir[PATH_MAX];
static char top_srcdir[PATH_MAX];
static char tmp_dir[PATH_MAX / 2];
static struct host *all_hosts[8];
static unsigned int nr_hosts;
static bool have_tls;   /* ferry-creds made TLS credentials */

static int run_wait(char *const argv[], bool quiet)
{
    pid_t pid = fork();
    int st;

    if ( pid < 0 )
        return -1;
    if ( pid == 0 )
    {
        if ( quiet )
        {
            int fd = open("/dev/null", O_WRONLY);

            if ( fd >= 0 )
            {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    while ( waitpid(pid, &st, 0) < 0 )
        if ( errno != EINTR )
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The credentials of a host of this run's fleet, made by ferry-creds(8)
 * as an operator would: the fleet key (tcp://) and, when openssl can make
 * them, certificates for 127.0.0.1 (tls://), so that both transports
 * authenticate as in production.  Without openssl: the fleet key only,
 * and the tls:// lines say why they were not measured.
 */
static int make_creds(const char *dir, const char *name)
{
    char sh[] = "/bin/sh", o_f[] = "--fleet", o_n[] = "--name";
    char o_a[] = "--addr", lo[] = "127.0.0.1", o_no[] = "--no-tls";
    char creds[PATH_MAX + 32], fleet[PATH_MAX], nm[32], d[PATH_MAX];
    char *argv[] = { sh, creds, o_f, fleet, o_n, nm, o_a, lo, d, NULL };
    static bool tried_tls;

    snprintf(creds, sizeof(creds), "%s/tools/ferry-creds", top_srcdir);
    snprintf(fleet, sizeof(fleet), "%s/fleet", tmp_dir);
    snprintf(nm, sizeof(nm), "%.31s", name);
    snprintf(d, sizeof(d), "%s", dir);
    if ( !tried_tls )
    {
        tried_tls = true;
        have_tls = run_wait(argv, true) == 0;
        if ( have_tls )
            return 0;
        note("ferry-creds could not make TLS credentials: tls:// is not "
             "measured");
    }
    else if ( have_tls )
        return run_wait(argv, true) == 0 ? 0 : -1;
    argv[6] = o_no;
    argv[7] = d;
    argv[8] = NULL;
    return run_wait(argv, true) == 0 ? 0 : -1;
}

/* The host's listener of a scheme, from DIR/migrate.addr. */
static void read_listeners(struct host *h)
{
    char path[PATH_MAX + 16], line[128];
    FILE *f;

    h->tcp[0] = h->tls[0] = '\0';
    snprintf(path, sizeof(path), "%s/migrate.addr", h->dir);
    if ( !(f = fopen(path, "r")) )
        return;
    while ( fgets(line, sizeof(line), f) )
    {
        line[strcspn(line, "\n")] = '\0';
        if ( !strncmp(line, "tcp://", 6) )
            snprintf(h->tcp, sizeof(h->tcp), "%.63s", line);
        else if ( !strncmp(line, "tls://", 6) )
            snprintf(h->tls, sizeof(h->tls), "%.63s", line);
    }
    fclose(f);
}

/*
 * ferry-hv returns once the daemon serves its socket (see ferry-hv(8)):
 * that is when a host is "up" (aim 6).  listen: it also listens for
 * migrations on loopback tcp:// and tls:// (ports it picks), running our
 * xl for each.
 */
static int host_start(struct host *h, const char *name, uint64_t mem_mib,
                      bool listen)
{
    char hv[PATH_MAX + 32], mem[32], pidf[PATH_MAX + 16];
    char o_dir[] = "--run-dir", o_mem[] = "--memory", o_xl[] = "--xl";
    char o_l[] = "--migrate-listen", xl[PATH_MAX + 16];
    char l_tcp[] = "127.0.0.1:0", l_tls[] = "tls://127.0.0.1:0";
    char *argv[] = { hv, o_dir, h->dir, o_mem, mem, o_xl, xl, o_l, l_tcp,
                     o_l, l_tls, NULL };
    FILE *f;
    long pid = 0;
    uint64_t t;

    snprintf(hv, sizeof(hv), "%s/hypervisor/ferry-hv", top_builddir);
    snprintf(h->dir, sizeof(h->dir), "%s/%.32s", tmp_dir, name);
    snprintf(mem, sizeof(mem), "%" PRIu64 "M", mem_mib);
    snprintf(xl, sizeof(xl), "%s/xl/xl", top_builddir);
    if ( !listen )
        argv[5] = NULL;
    if ( mkdir(h->dir, 0700) < 0 && errno != EEXIST )
        return -1;
    if ( listen && make_creds(h->dir, name) )
        return -1;
    if ( listen && !have_tls )
        argv[9] = NULL;
    t = now_ns();
    if ( run_wait(argv, false) != 0 )
        return -1;
    h->start_ns = now_ns() - t;
    snprintf(pidf, sizeof(pidf), "%s/ferry-hv.pid", h->dir);
    if ( !(f = fopen(pidf, "r")) )
        return -1;
    if ( fscanf(f, "%ld", &pid) != 1 )
        pid = 0;
    fclose(f);
    if ( pid <= 0 )
        return -1;
    h->pid = (pid_t)pid;
    if ( nr_hosts < sizeof(all_hosts) / sizeof(all_hosts[0]) )
        all_hosts[nr_hosts++] = h;
    if ( listen )
        read_listeners(h);
    return 0;
}

/* Stop two daemons at once (they are not our children: poll until they
 * are gone; SIGKILL after 10 s). */
static void hosts_stop(struct host *a, struct host *b)
{
    struct host *h[2] = { a, b };

    for ( int k = 0; k < 2; k++ )
        if ( h[k] && h[k]->pid > 0 )
            kill(h[k]->pid, SIGTERM);
    for ( int k = 0; k < 2; k++ )
    {
        if ( !h[k] || h[k]->pid <= 0 )
            continue;
        for ( int i = 0; i < 1000 && !kill(h[k]->pid, 0); i++ )
            usleep(10000);
        if ( !kill(h[k]->pid, 0) )
            kill(h[k]->pid, SIGKILL);
        h[k]->pid = 0;
    }
}

static void host_stop(struct host *h)
{
    hosts_stop(h, NULL);
}

static void stop_all_hosts(void)
{
    for ( unsigned int i = 0; i < nr_hosts; i++ )
        host_stop(all_hosts[i]);
    nr_hosts = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove the run directories, config files and save files we made. */
static void remove_tmp_dir(void)
{
    nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
    stop_all_hosts();
    remove_tmp_dir();
    signal(sig, SIG_DFL);
    raise(sig);
}

static xc_interface *host_open(const struct host *h)
{
    return xc_interface_open(h->dir, xc_stderr_logger(XC_ERROR));
}

/* ------------------------------------------------------------------------
 * The domain under test
 * ------------------------------------------------------------------------ */

struct dom
{
    uint32_t domid;
    uint64_t mib;
    uint8_t uuid[16];
    char *json;
    uint64_t first_free_pfn;
    uint64_t filled_pages;
};

static void *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;

    if ( !f )
        return NULL;
    if ( !fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 &&
         !fseek(f, 0, SEEK_SET) && (buf = malloc(n)) &&
         fread(buf, 1, n, f) != (size_t)n )
    {
        free(buf);
        buf = NULL;
    }
    else if ( buf )
        *len = n;
    fclose(f);
    return buf;
}

/* The domain's JSON config, as xl would have stored it. */
static char *config_json(const char *name, const char *kernel, uint64_t mib,
                         const char *cmdline, uint8_t uuid[16])
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char path[PATH_MAX + 16];
    char *json = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.cfg", tmp_dir, name);
    if ( !(f = fopen(path, "w")) )
        return NULL;
    fprintf(f, "name = \"%s\"\nmemory = %" PRIu64 "\nvcpus = 1\n"
            "kernel = \"%s\"\n", name, mib, kernel);
    if ( cmdline )
        fprintf(f, "cmdline = \"%s\"\n", cmdline);
    fprintf(f, "on_crash = \"preserve\"\n");
    fclose(f);
    ferry_domain_config_init(&dc);
    if ( !ferry_domain_config_load(&dc, path, NULL, 0, NULL, &err) )
    {
        json = ferry_domain_config_to_json(&dc);
        memcpy(uuid, dc.uuid, 16);
    }
    else
        note("config: %s", err.msg);
    ferry_domain_config_dispose(&dc);
    return json;
}

/* Build a domain of mib MiB running a shipped guest, paused. */
static int dom_build(xc_interface *xch, struct dom *d, const char *name,
                     uint64_t mib, const char *guest, const char *cmdline)
{
    char img[PATH_MAX + 32];
    struct xc_dom_args args = { .cmdline = cmdline };
    struct xc_dom_result res;
    void *image;
    int rc = -1;

    snprintf(img, sizeof(img), "%s/guests/%s.img", top_builddir, guest);
    d->mib = mib;
    d->domid = DOMID_ANY;
    if ( !(image = read_whole(img, &args.image_len)) )
    {
        note("cannot read %s", img);
        return -1;
    }
    if ( !(d->json = config_json(name, img, mib, cmdline, d->uuid)) )
        goto out;
    if ( xc_domain_create(xch, &d->domid, 1, d->uuid) )
    {
        d->domid = DOMID_ANY;
        goto out;
    }
    args.image = image;
    args.nr_pages = mib << 8;
    if ( xc_domain_set_meta(xch, d->domid, name, d->json,
                            strlen(d->json)) ||
         xc_domain_setmaxmem(xch, d->domid, mib * 1024) ||
         xc_dom_build_pv(xch, d->domid, &args, &res) )
        goto out;
    d->first_free_pfn = res.first_free_pfn;
    rc = 0;
 out:
    free(image);
    return rc;
}

/*
 * Fill the free PFNs with random bytes: find the domain's frames through
 * the M2P (the frames it owns map; the others fail with -EPERM), and
 * write those whose PFN is at or past first_free_pfn.
 */
static int dom_fill(xc_interface *xch, struct dom *d)
{
    const uint64_t *m2p = xc_m2p(xch);
    uint64_t max = xc_max_page(xch), seed = 0x5eed ^ d->mib;
    xen_pfn_t mfns[MAP_BATCH];
    void *ptrs[MAP_BATCH];
    int errs[MAP_BATCH];

    d->filled_pages = 0;
    for ( uint64_t base = 0; base < max; base += MAP_BATCH )
    {
        unsigned int n = max - base < MAP_BATCH ? max - base : MAP_BATCH;

        for ( unsigned int i = 0; i < n; i++ )
            mfns[i] = base + i;
        if ( xc_map_foreign_frames(xch, d->domid, XC_MAP_WRITE, mfns, n,
                                   ptrs, errs) < 0 )
            return -1;
        for ( unsigned int i = 0; i < n; i++ )
        {
            uint64_t pfn = m2p[base + i];
            unsigned int run = 1;

            if ( !ptrs[i] || pfn < d->first_free_pfn || pfn >= d->mib << 8 )
                continue;
            /* One populate call for a run of adjacent frames. */
            while ( i + run < n && ptrs[i + run] &&
                    m2p[base + i + run] >= d->first_free_pfn &&
                    m2p[base + i + run] < d->mib << 8 )
                run++;
            populate(ptrs[i], (size_t)run * 4096, true);
            fill_random(ptrs[i], (size_t)run * 4096, &seed);
            d->filled_pages += run;
            i += run - 1;
        }
    }
    return 0;
}

static bool dom_is_suspended(xc_interface *xch, uint32_t domid)
{
    xc_domaininfo_t info;

    return !xc_domain_getinfo_single(xch, domid, &info) &&
           (info.flags & XEN_DOMINF_shutdown) &&
           ((info.flags >> XEN_DOMINF_shutdownshift) &
            XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend;
}

/* Ask the guest to suspend itself (it acts within 100 ms) and wait. */
static int dom_suspend(xc_interface *xch, uint32_t domid)
{
    if ( xc_domain_shutdown_request(xch, domid, SHUTDOWN_suspend) )
        return -1;
    for ( int i = 0; i < 600; i++ )
    {
        if ( dom_is_suspended(xch, domid) )
            return 0;
        usleep(50000);
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * Save and restore through the real engines
 * ------------------------------------------------------------------------ */

struct op_result
{
    bool ok;
    uint64_t ns;
    uint64_t cpu;               /* this process's CPU time */
    uint64_t bytes;
    char msg[512];
};

/* Begin an operation: o cleared and a fresh connection to the host (as an
 * xl process has one), or NULL with o->msg saying why. */
static xc_interface *op_start(const struct host *h, struct op_result *o)
{
    xc_interface *xch;

    memset(o, 0, sizeof(*o));
    xch = host_open(h);
    if ( !xch )
        snprintf(o->msg, sizeof(o->msg), "cannot open host %.200s", h->dir);
    return xch;
}

/* One save of the suspended domain to /dev/null or to an atomic file,
 * from a fresh connection to the host (as an xl process). */
static void op_save(const struct host *h, const struct dom *d,
                    const char *path, struct op_result *o)
{
    struct sr_save_args a = {
        .domid = d->domid, .config_json = d->json, .trailer = true,
    };
    struct sr_io *io = NULL;
    xc_interface *xch;
    uint64_t t, c;
    int rc, fd = -1;

    if ( !(xch = op_start(h, o)) )
        return;
    a.xch = xch;
    t = now_ns();
    c = cpu_ns();
    if ( path )
        rc = sr_io_open_atomic(&io, path);
    else if ( (fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0 )
        rc = -errno;
    else
        rc = sr_io_open_fd(&io, fd, true);
    if ( rc )
    {
        if ( fd >= 0 )
            close(fd);
        snprintf(o->msg, sizeof(o->msg), "open: %s", strerror(-rc));
        goto out;
    }
    rc = sr_save_domain(io, &a, o->msg, sizeof(o->msg));
    o->bytes = sr_io_offset(io);
    if ( rc )
        sr_io_abort(io);
    else if ( path )
        rc = sr_io_commit(io);
    else
        rc = sr_io_close(io);
    o->ns = now_ns() - t;
    o->cpu = cpu_ns() - c;
    if ( rc && !o->msg[0] )
        snprintf(o->msg, sizeof(o->msg), "%s", strerror(-rc));
    o->ok = !rc;
 out:
    xc_interface_close(xch);
}

/* Restore the file into a new paused domain on h, then destroy it. */
static void op_restore(const struct host *h, const struct dom *d,
                       const char *path, struct op_result *o)
{
    struct sr_restore_args a = {
        .paused = true, .max_vcpus = 1, .max_memkb = d->mib * 1024,
        .admitted_memkb = d->mib * 1024,    /* the bench's own file */
    };
    struct sr_restore_result r = { 0 };
    struct sr_io *io = NULL;
    xc_interface *xch;
    uint64_t t, c;
    int rc, fd;

    memcpy(a.uuid, d->uuid, sizeof(a.uuid));
    if ( !(xch = op_start(h, o)) )
        return;
    a.xch = xch;
    t = now_ns();
    c = cpu_ns();
    if ( (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
         (rc = sr_io_open_fd(&io, fd, true)) )
    {
        snprintf(o->msg, sizeof(o->msg), "open %.200s: %s", path,
                 strerror(errno));
        if ( fd >= 0 )
            close(fd);
        goto out;
    }
    rc = sr_restore_domain(io, &a, &r, o->msg, sizeof(o->msg));
    o->bytes = sr_io_offset(io);
    sr_io_close(io);
    o->ns = now_ns() - t;
    o->cpu = cpu_ns() - c;
    o->ok = !rc && r.digest_checked;
    if ( !rc && !r.digest_checked )
        snprintf(o->msg, sizeof(o->msg), "the digest was not checked");
    if ( !rc )
    {
        note("restore: last page %.3f s, finish %.3f s after it",
             secs(r.t_last_page_ns - t), secs(r.t_done_ns - r.t_last_page_ns));
        xc_domain_destroy(xch, r.domid);
    }
    free(r.config_json);
 out:
    xc_interface_close(xch);
}

/*
 * Read the whole file once, so that the next restore finds it in the page
 * cache: a save writes with O_DIRECT, past the cache, so "cached" would
 * otherwise be a second cold read.
 */
static int warm_cache(const char *path)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if ( fd < 0 )
        return -1;
    while ( (n = read(fd, buf, sizeof(buf))) > 0 )
        ;
    close(fd);
    return n < 0 ? -1 : 0;
}

/* Drop the file from the page cache, so that the next read is cold. */
static int drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

    if ( fd < 0 )
        return -1;
    if ( !fdatasync(fd) &&
         !posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) )
        rc = 0;
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------
 * What a run measures
 * ------------------------------------------------------------------------ */

struct yardsticks
{
    double memcpy_gbps;
    double direct_write_gbps, direct_read_gbps;
    double buffered_gbps;
    double tcp_gbps;
};

/* Groups of figures (--only). */
enum
{
    G_FILES = 1,        /* aim 5: save and restore files */
    G_MIGRATE = 2,      /* aims 1, 3, 4: live migration */
    G_ZERO = 4,         /* aim 2: an untouched domain */
    G_START = 8,        /* aim 6: a host's start */
    G_ALL = 15,
};

/* Times of one size, for aim 7 (0: not measured). */
enum
{
    T_SAVE_NULL, T_SAVE_FILE, T_RESTORE_CACHED, T_RESTORE_COLD,
    T_MIG_TCP, T_MIG_LOCAL, T_MIG_TLS, T_MIG_100M, T_MIG_1G, NR_TIMES
};

static const char *const time_name[NR_TIMES] = {
    "save to /dev/null", "save to file", "restore cached", "restore cold",
    "migrate tcp://", "migrate local:", "migrate tls://",
    "migrate 100M/s", "migrate 1G/s",
};

struct size_result
{
    uint64_t mib;
    unsigned int groups;        /* the groups that ran at this size */
    uint64_t ns[NR_TIMES];
};

static const char *size_name(uint64_t mib, char *buf, size_t len)
{
    if ( mib % 1024 == 0 )
        snprintf(buf, len, "%" PRIu64 " GiB", mib / 1024);
    else
        snprintf(buf, len, "%" PRIu64 " MiB", mib);
    return buf;
}

/* The sizes a run's hosts need for a domain of mib MiB. */
static uint64_t host_mib(uint64_t mib)
{
    return mib + mib / 16 + 64;
}

/* ------------------------------------------------------------------------
 * Aim 5: save and restore through the real engines
 * ------------------------------------------------------------------------ */

static void bench_files(const struct host *a, const struct host *b,
                        uint64_t mib, const struct yardsticks *y,
                        const char *file_dir, struct size_result *sr)
{
    struct dom d = { .domid = DOMID_ANY };
    struct op_result o1, o2, of, orr, orc;
    char sz[32], path[PATH_MAX + 32], fig[96], why[64] = "";
    xc_interface *xch = NULL;
    uint64_t t;

    size_name(mib, sz, sizeof(sz));
    snprintf(path, sizeof(path), "%s/bench-%" PRIu64 ".save", file_dir, mib);
    memset(&o1, 0, sizeof(o1));
    o2 = of = orr = orc = o1;
    if ( !(xch = host_open(a)) )
    {
        snprintf(why, sizeof(why), "cannot open host A");
        goto out;
    }
    t = now_ns();
    if ( dom_build(xch, &d, "bench", mib, "idle", NULL) )
    {
        snprintf(why, sizeof(why), "cannot build the domain");
        goto out;
    }
    note("%s: domain %u built in %.2f s", sz, d.domid, secs(now_ns() - t));
    t = now_ns();
    if ( dom_fill(xch, &d) )
    {
        snprintf(why, sizeof(why), "cannot fill the domain");
        goto out;
    }
    note("%s: %" PRIu64 " pages (%.0f MiB) filled with random bytes in "
         "%.2f s", sz, d.filled_pages, d.filled_pages / 256.0,
         secs(now_ns() - t));
    if ( xc_domain_unpause(xch, d.domid) || dom_suspend(xch, d.domid) )
    {
        snprintf(why, sizeof(why), "the domain did not suspend");
        goto out;
    }

    /* Twice to /dev/null: the second shows the cost without the first
     * touches of the kernel's page tables of the shared memory. */
    op_save(a, &d, NULL, &o1);
    op_save(a, &d, NULL, &o2);
    op_save(a, &d, path, &of);
    if ( of.ok && warm_cache(path) )
        snprintf(orr.msg, sizeof(orr.msg), "cannot read the file into the"
                 " page cache");
    else if ( of.ok )
        op_restore(b, &d, path, &orr);
    if ( of.ok && drop_cache(path) )
        snprintf(orc.msg, sizeof(orc.msg), "cannot drop the file's cache");
    else if ( of.ok )
        op_restore(b, &d, path, &orc);
    note("%s: save to /dev/null %.3f s and %.3f s, to file %.3f s, restore "
         "%.3f s cached, %.3f s cold; stream %" PRIu64 " bytes", sz,
         secs(o1.ns), secs(o2.ns), secs(of.ns), secs(orr.ns), secs(orc.ns),
         of.bytes);
    note("%s: CPU time of this process: %.3f s, %.3f s, %.3f s, %.3f s, "
         "%.3f s", sz, secs(o1.cpu), secs(o2.cpu), secs(of.cpu),
         secs(orr.cpu), secs(orc.cpu));
    for ( const struct op_result *o = &o1; o; o = o == &o1 ? &o2 : o == &o2
          ? &of : o == &of ? &orr : o == &orr ? &orc : NULL )
        if ( !o->ok && o->msg[0] )
            note("%s: failed: %s", sz, o->msg);
    sr->ns[T_SAVE_NULL] = o1.ok ? o1.ns : 0;
    sr->ns[T_SAVE_FILE] = of.ok ? of.ns : 0;
    sr->ns[T_RESTORE_CACHED] = orr.ok ? orr.ns : 0;
    sr->ns[T_RESTORE_COLD] = orc.ok ? orc.ns : 0;
 out:
    if ( why[0] )
        note("%s: %s", sz, why);
    snprintf(fig, sizeof(fig), "save %s to /dev/null (digest on)", sz);
    if ( o1.ok )
        row_rate(fig, o1.bytes, o1.ns, y->memcpy_gbps, "memcpy", 0);
    else
        row_na(fig, "-", why[0] ? why : "save failed");
    snprintf(fig, sizeof(fig), "aim 5: save %s to file, durable", sz);
    if ( of.ok && y->direct_write_gbps > 0 )
        row_rate(fig, of.bytes, of.ns, y->direct_write_gbps,
                 "O_DIRECT write", 0.8);
    else
        row_na(fig, ">= 0.80x", why[0] ? why : !of.ok ? "save failed"
               : "no O_DIRECT yardstick");
    snprintf(fig, sizeof(fig), "aim 5: restore %s from cold file", sz);
    if ( orc.ok && y->direct_read_gbps > 0 )
        row_rate(fig, orc.bytes, orc.ns, y->direct_read_gbps,
                 "O_DIRECT read", 0.8);
    else
        row_na(fig, ">= 0.80x", why[0] ? why : !orc.ok ? "restore failed"
               : "no O_DIRECT yardstick");
    snprintf(fig, sizeof(fig), "aim 5: restore %s from cached file", sz);
    if ( orr.ok )
        row_rate(fig, orr.bytes, orr.ns, y->memcpy_gbps, "memcpy", 0.25);
    else
        row_na(fig, ">= 0.25x", why[0] ? why : "restore failed");
    if ( xch )
    {
        if ( d.domid != DOMID_ANY )
            xc_domain_destroy(xch, d.domid);
        xc_interface_close(xch);
    }
    free(d.json);
    unlink(path);
}

/* ------------------------------------------------------------------------
 * Live migration over loopback (xl migrate --json)
 * ------------------------------------------------------------------------ */

static bool xl_has_migrate(void)
{
    char cmd[PATH_MAX + 64];
    char line[256];
    bool found = false;
    FILE *p;

    /* A few tries: another build may be replacing xl right now. */
    snprintf(cmd, sizeof(cmd), "'%s/xl/xl' 2>&1", top_builddir);
    for ( int i = 0; i < 3 && !found; i++ )
    {
        if ( i )
            sleep(1);
        if ( !(p = popen(cmd, "r")) )
            continue;
        while ( fgets(line, sizeof(line), p) )
            if ( !strncmp(line, " migrate ", 9) )
                found = true;
        pclose(p);
    }
    return found;
}

/* Number member key of the object o (integer or not); -1 if absent. */
static double json_num(struct json_object *o, const char *key)
{
    struct json_object *v;

    if ( !json_object_object_get_ex(o, key, &v) )
        return -1;
    if ( json_object_is_type(v, json_type_double) )
        return json_object_get_double(v);
    if ( json_object_is_type(v, json_type_int) )
        return (double)json_object_get_uint64(v);
    return -1;
}

/* The first of several names xl may give a figure; -1: none. */
static double json_num_any(struct json_object *o, const char *const *keys)
{
    double v = -1;

    for ( ; *keys && v < 0; keys++ )
        v = json_num(o, *keys);
    return v;
}

struct mig_result
{
    bool ok;
    double total_ms, downtime_ms, iterations, bytes, resent;
    double finish_ms;           /* the receiver's finish */
    double send_ms;             /* the sender's stop to last byte; -1 */
    char why[96];
};

/*
 * Run xl -H FROM migrate --json NAME TARGET and read its summary: the
 * figures are xl's own, so `xl migrate --json` and the bench agree.
 */
static void run_migrate(const struct host *from, const char *target,
                        const char *name, const char *opts,
                        struct mig_result *m)
{
    static const char *const send_keys[] = {
        "sender_stop_to_end_ms", "sender_stop_to_last_byte_ms", NULL,
    };
    char cmd[3 * PATH_MAX], line[4096];
    bool summary = false;
    FILE *p;
    int st;

    memset(m, 0, sizeof(*m));
    m->send_ms = -1;
    snprintf(cmd, sizeof(cmd), "'%s/xl/xl' -H '%s' migrate --json %s %s "
             "'%s' 2>'%s/migrate.err'", top_builddir, from->dir, opts, name,
             target, tmp_dir);
    if ( !(p = popen(cmd, "r")) )
    {
        snprintf(m->why, sizeof(m->why), "cannot run xl migrate");
        return;
    }
    while ( fgets(line, sizeof(line), p) )
    {
        struct json_object *o = NULL;
        const char *v;

        if ( !xlcfg_json_parse("xl migrate", line, strlen(line), &o,
                               NULL) &&
             !xlcfg_json_get_string(o, "event", &v) &&
             !strcmp(v, "summary") )
        {
            summary = true;
            m->ok = !xlcfg_json_get_string(o, "status", &v) &&
                    !strcmp(v, "ok");
            m->total_ms = json_num(o, "total-time");
            m->downtime_ms = json_num(o, "downtime");
            m->iterations = json_num(o, "iterations");
            m->bytes = json_num(o, "transferred");
            m->resent = json_num(o, "pages_resent");
            m->finish_ms = json_num(o, "receiver_finish_ms");
            m->send_ms = json_num_any(o, send_keys);
        }
        json_object_put(o);
    }
    st = pclose(p);
    if ( !summary )
        snprintf(m->why, sizeof(m->why), "no summary (xl status %d)",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    else if ( !m->ok )
        snprintf(m->why, sizeof(m->why), "migration failed");
    if ( !m->ok )
    {
        char err[512] = "", path[PATH_MAX + 16];
        FILE *f;

        snprintf(path, sizeof(path), "%s/migrate.err", tmp_dir);
        if ( (f = fopen(path, "r")) )
        {
            if ( !fgets(err, sizeof(err), f) )
                err[0] = '\0';
            fclose(f);
        }
        note("xl migrate %s %s: %s: %s", name, target, m->why, err);
    }
}

/* Destroy every domain of the host but domain 0. */
static void host_clear(const struct host *h)
{
    xc_interface *xch = host_open(h);
    xc_domaininfo_t info[16];
    int nr;

    if ( !xch )
        return;
    nr = xc_domain_getinfolist(xch, 1, 16, info);
    for ( int i = 0; i < nr; i++ )
        xc_domain_destroy(xch, info[i].domain);
    xc_interface_close(xch);
}

/* The domid of the host's domain named name, or DOMID_ANY. */
static uint32_t host_find(xc_interface *xch, const char *name)
{
    xc_domaininfo_t info[16];
    int nr = xc_domain_getinfolist(xch, 1, 16, info);

    for ( int i = 0; i < nr; i++ )
    {
        char n[64];

        if ( !xc_domain_get_meta(xch, info[i].domain, n, sizeof(n), NULL,
                                 NULL) && !strcmp(n, name) )
            return info[i].domain;
    }
    return DOMID_ANY;
}

/* Build and fill a domain on h that runs guest (cmdline), and unpause it. */
static int mig_domain(const struct host *h, struct dom *d, uint64_t mib,
                      const char *guest, const char *cmdline, bool fill)
{
    xc_interface *xch = host_open(h);
    int rc = -1;

    d->domid = DOMID_ANY;
    if ( !xch )
        return -1;
    if ( !dom_build(xch, d, "mbench", mib, guest, cmdline) &&
         (!fill || !dom_fill(xch, d)) && !xc_domain_unpause(xch, d->domid) )
        rc = 0;
    else if ( d->domid != DOMID_ANY )
        xc_domain_destroy(xch, d->domid);
    xc_interface_close(xch);
    return rc;
}

/*
 * The rows of one migration: throughput against the loopback yardstick
 * (min > 0: aim 1), downtime (max_down > 0: aim 3 or 4), and the
 * sender's and receiver's parts of it, for the record.
 */
static void mig_rows(const char *what, const struct mig_result *m,
                     double base_gbps, const char *base, double min,
                     double max_down, const char *down_aim)
{
    char fig[96], aim[16];
    struct row *r;

    snprintf(aim, sizeof(aim), ">= %.2fx", min);
    snprintf(fig, sizeof(fig), "%s: throughput", what);
    if ( m->ok && m->total_ms > 0 )
        row_rate(fig, (uint64_t)m->bytes, (uint64_t)(m->total_ms * 1e6),
                 base_gbps, base, min);
    else
        row_na(fig, min > 0 ? aim : "-", m->why[0] ? m->why : "not run");
    snprintf(fig, sizeof(fig), "%s: downtime", what);
    if ( !m->ok )
    {
        row_na(fig, max_down > 0 ? down_aim : "-",
               m->why[0] ? m->why : "not run");
        return;
    }
    r = row_max(fig, m->downtime_ms, "ms", 0, max_down);
    snprintf(r->ratio, sizeof(r->ratio), "%s%s%.0f iterations", down_aim,
             down_aim[0] ? ", " : "", m->iterations);
    snprintf(fig, sizeof(fig), "%s: sender stop to last byte", what);
    if ( m->send_ms >= 0 )
        row_max(fig, m->send_ms, "ms", 1, 0);
    else
        row_na(fig, "-", "xl --json reports no such figure");
    snprintf(fig, sizeof(fig), "%s: receiver finish", what);
    if ( m->finish_ms >= 0 )
        row_max(fig, m->finish_ms, "ms", 0, 0);
    else
        row_na(fig, "-", "xl --json reports no such figure");
}

static void mig_note(const char *what, const struct mig_result *m)
{
    if ( m->ok )
        note("%s: total %.0f ms, downtime %.0f ms, %.0f iterations, %.0f MB "
             "sent, %.0f pages resent, sender stop to last byte %.1f ms, "
             "receiver finish %.0f ms", what, m->total_ms, m->downtime_ms,
             m->iterations, m->bytes / 1e6, m->resent, m->send_ms,
             m->finish_ms);
}

/*
 * Aims 1 and 3: one filled idle domain goes A -> B over tcp://, back
 * B -> A over local: (pipes between two xl processes), and A -> B again
 * over tls://.  Then aims 3 and 4: memdirty domains at 100 MB/s and
 * 1 GB/s over tcp://.  Downtime aims hold for every size at rate 0 and
 * for 4 GiB (and more) when dirtying.
 */
static void bench_migrate(const struct host *a, const struct host *b,
                          uint64_t mib, const struct yardsticks *y,
                          struct size_result *sr)
{
    static const char *const rate_name[] = { "100M", "1G" };
    struct mig_result tcp = { .ok = false }, loc = tcp, tls = tcp, m;
    struct dom d = { .domid = DOMID_ANY };
    char sz[32], what[72], cmdline[64], why[64] = "";
    char local_a[PATH_MAX + 8];
    bool big = mib >= 4096;

    size_name(mib, sz, sizeof(sz));
    snprintf(local_a, sizeof(local_a), "local:%s", a->dir);
    if ( !b->tcp[0] )
        snprintf(why, sizeof(why), "host B has no tcp:// listener");
    else if ( mig_domain(a, &d, mib, "idle", NULL, true) )
        snprintf(why, sizeof(why), "cannot build the domain");
    if ( why[0] )
    {
        snprintf(tcp.why, sizeof(tcp.why), "%s", why);
        snprintf(loc.why, sizeof(loc.why), "%s", why);
        snprintf(tls.why, sizeof(tls.why), "%s", why);
    }
    else
    {
        usleep(300000);
        run_migrate(a, b->tcp, "mbench", "", &tcp);
        snprintf(what, sizeof(what), "migrate %s tcp://", sz);
        mig_note(what, &tcp);
        if ( tcp.ok )
        {
            run_migrate(b, local_a, "mbench", "", &loc);
            snprintf(what, sizeof(what), "migrate %s local:", sz);
            mig_note(what, &loc);
        }
        else
            snprintf(loc.why, sizeof(loc.why), "tcp:// failed first");
        if ( !have_tls || !b->tls[0] )
            snprintf(tls.why, sizeof(tls.why), "no TLS credentials");
        else if ( loc.ok )
        {
            run_migrate(a, b->tls, "mbench", "", &tls);
            snprintf(what, sizeof(what), "migrate %s tls://", sz);
            mig_note(what, &tls);
        }
        else
            snprintf(tls.why, sizeof(tls.why), "local: failed first");
    }
    host_clear(a);
    host_clear(b);
    free(d.json);
    d.json = NULL;
    sr->ns[T_MIG_TCP] = tcp.ok ? (uint64_t)(tcp.total_ms * 1e6) : 0;
    sr->ns[T_MIG_LOCAL] = loc.ok ? (uint64_t)(loc.total_ms * 1e6) : 0;
    sr->ns[T_MIG_TLS] = tls.ok ? (uint64_t)(tls.total_ms * 1e6) : 0;

    snprintf(what, sizeof(what), "aim 1,3: migrate %s tcp://", sz);
    mig_rows(what, &tcp, y->tcp_gbps, "loopback", 0.6, 5, "rate 0");
    snprintf(what, sizeof(what), "aim 1: migrate %s tls://", sz);
    mig_rows(what, &tls, y->tcp_gbps, "loopback", 0.4, 0, "");
    snprintf(what, sizeof(what), "aim 1: migrate %s local:", sz);
    if ( tcp.ok && loc.ok && tcp.total_ms > 0 )
    {
        /* local: at least as fast as tcp://: a ratio to tcp:// itself. */
        mig_rows(what, &loc, (tcp.bytes / 1e6) / tcp.total_ms, "tcp://",
                 1.0, 0, "");
    }
    else
        mig_rows(what, &loc, 0, "tcp://", 1.0, 0, "");

    /* memdirty over a quarter of memory at the rate; the rest random. */
    for ( unsigned int k = 0; k < 2; k++ )
    {
        uint64_t wss = mib / 4;
        double max = big ? (k == 0 ? 20 : 50) : 0;

        snprintf(cmdline, sizeof(cmdline), "wss=%" PRIu64 "M rate=%s",
                 wss ? wss : 1, rate_name[k]);
        memset(&m, 0, sizeof(m));
        if ( why[0] )
            snprintf(m.why, sizeof(m.why), "%s", why);
        else if ( mig_domain(a, &d, mib, "memdirty", cmdline, true) )
            snprintf(m.why, sizeof(m.why), "cannot build the domain");
        else
        {
            usleep(300000);         /* memdirty reaches its rate */
            run_migrate(a, b->tcp, "mbench", "", &m);
            snprintf(what, sizeof(what), "migrate %s dirty %s/s", sz,
                     rate_name[k]);
            mig_note(what, &m);
        }
        host_clear(a);
        host_clear(b);
        free(d.json);
        d.json = NULL;
        sr->ns[T_MIG_100M + k] = m.ok ? (uint64_t)(m.total_ms * 1e6) : 0;
        snprintf(what, sizeof(what), "aim %s: migrate %s dirty %s/s",
                 k == 0 ? "3" : "4", sz, rate_name[k]);
        mig_rows(what, &m, y->tcp_gbps, "loopback", 0, max,
                 k == 0 ? "100 MB/s" : "1 GB/s");
    }
}

/*
 * Aim 2: a domain whose pages were never written (built, not filled:
 * only the builder's page tables, start_info and P2M and the guest's own
 * few pages hold data) migrates in <= 0.2 s and saves to <= 16 MiB.
 * The aim is for 2 GiB; other sizes print the figure for the record.
 */
static void bench_zero(const struct host *a, const struct host *b,
                       uint64_t mib, const char *file_dir)
{
    struct dom d = { .domid = DOMID_ANY };
    struct mig_result m = { .ok = false };
    struct op_result o;
    char sz[32], fig[96], path[PATH_MAX + 32], why[64] = "";
    xc_interface *xch = NULL;
    bool aim = mib == 2048;

    memset(&o, 0, sizeof(o));
    size_name(mib, sz, sizeof(sz));
    snprintf(path, sizeof(path), "%s/zero-%" PRIu64 ".save", file_dir, mib);
    if ( !b->tcp[0] )
        snprintf(why, sizeof(why), "host B has no tcp:// listener");
    else if ( mig_domain(a, &d, mib, "idle", NULL, false) )
        snprintf(why, sizeof(why), "cannot build the domain");
    else
    {
        usleep(300000);
        run_migrate(a, b->tcp, "mbench", "", &m);
        snprintf(fig, sizeof(fig), "migrate %s untouched tcp://", sz);
        mig_note(fig, &m);
        /* Then save it from B, where it now runs, to a file. */
        if ( m.ok && (xch = host_open(b)) &&
             (d.domid = host_find(xch, "mbench")) != DOMID_ANY &&
             !dom_suspend(xch, d.domid) )
        {
            op_save(b, &d, path, &o);
            if ( !o.ok )
                note("save %s untouched: %s", sz, o.msg);
        }
        else if ( m.ok )
            snprintf(o.msg, sizeof(o.msg), "the domain did not suspend");
        if ( xch )
            xc_interface_close(xch);
    }
    snprintf(fig, sizeof(fig), "aim 2: migrate %s untouched: time", sz);
    if ( m.ok )
        row_max(fig, m.total_ms / 1000, "s", 3, aim ? 0.2 : 0);
    else
        row_na(fig, aim ? "<= 0.2 s" : "-", why[0] ? why : m.why);
    snprintf(fig, sizeof(fig), "aim 2: save %s untouched: file size", sz);
    if ( o.ok )
        row_max(fig, o.bytes / (double)MiB, "MiB", 1, aim ? 16 : 0);
    else
        row_na(fig, aim ? "<= 16 MiB" : "-",
               why[0] ? why : o.msg[0] ? o.msg : "save failed");
    unlink(path);
    host_clear(a);
    host_clear(b);
    free(d.json);
}

/*
 * Aim 6: a host of 4 GiB (--quick: the largest size's) answers within
 * 2 s of ferry-hv starting.  Alone, so that nothing else competes.
 */
static void bench_start(uint64_t mib)
{
    struct host h = { .pid = 0 };
    char fig[96], sz[32];
    struct row *r;

    size_name(mib, sz, sizeof(sz));
    snprintf(fig, sizeof(fig), "aim 6: host of %s: up", sz);
    if ( host_start(&h, "S", mib, false) )
    {
        row_na(fig, "<= 2 s", "cannot start ferry-hv");
        return;
    }
    r = row_max(fig, secs(h.start_ns), "s", 2, mib == 4096 ? 2 : 0);
    snprintf(r->ratio, sizeof(r->ratio), "ferry-hv to its socket");
    host_stop(&h);
    nr_hosts = 0;
}

/*
 * Wait (up to 5 minutes) until the host has populated its machine memory
 * in the background (its log says so): every figure but aim 6 is of a
 * host that has been up for a while, and a receiver that populates frames
 * as it allocates them would count the host's start in the migration.
 */
static void host_wait_populated(const struct host *h)
{
    char path[PATH_MAX + 16], line[512];

    snprintf(path, sizeof(path), "%s/ferry-hv.log", h->dir);
    for ( int i = 0; i < 3000; i++ )
    {
        FILE *f = fopen(path, "r");
        bool done = false;

        while ( f && !done && fgets(line, sizeof(line), f) )
            done = strstr(line, "machine memory populated") ||
                   strstr(line, "populating machine memory stopped");
        if ( f )
            fclose(f);
        if ( done )
            return;
        usleep(100000);
    }
}

/* One size: its hosts, then the groups asked for. */
static void bench_size(uint64_t mib, const struct yardsticks *y,
                       const char *file_dir, struct size_result *sr,
                       unsigned int groups, bool zero_here)
{
    struct host a = { .pid = 0 }, b = { .pid = 0 };
    char sz[32], an[16], bn[16], fig[96];
    bool mig = groups & (G_MIGRATE | G_ZERO);

    size_name(mib, sz, sizeof(sz));
    memset(sr, 0, sizeof(*sr));
    sr->mib = mib;
    snprintf(an, sizeof(an), "A%" PRIu64, mib);
    snprintf(bn, sizeof(bn), "B%" PRIu64, mib);
    sr->groups = groups;
    if ( host_start(&a, an, host_mib(mib), mig) ||
         host_start(&b, bn, host_mib(mib), mig) )
    {
        note("%s: cannot start ferry-hv", sz);
        hosts_stop(&a, &b);
        nr_hosts = 0;
        return;
    }
    note("%s: two hosts of %" PRIu64 " MiB up in %.2f s and %.2f s", sz,
         host_mib(mib), secs(a.start_ns), secs(b.start_ns));
    {
        uint64_t t = now_ns();

        host_wait_populated(&a);
        host_wait_populated(&b);
        note("%s: their memory populated %.2f s later", sz,
             secs(now_ns() - t));
    }
    if ( groups & G_FILES )
        bench_files(&a, &b, mib, y, file_dir, sr);
    if ( groups & G_MIGRATE )
    {
        if ( xl_has_migrate() )
            bench_migrate(&a, &b, mib, y, sr);
        else
        {
            snprintf(fig, sizeof(fig), "migrate %s", sz);
            row_na(fig, "-", "xl has no migrate verb");
        }
    }
    if ( zero_here && (groups & G_ZERO) )
        bench_zero(&a, &b, mib, file_dir);
    hosts_stop(&a, &b);
    nr_hosts = 0;
}

/*
 * Aim 7: each time at the largest size over the same time at the
 * smallest, against their size ratio, +-15%.
 */
static void linearity_rows(const struct size_result *s, unsigned int n)
{
    const struct size_result *lo = &s[0], *hi = &s[n - 1];
    char a[32], b[32];

    if ( n < 2 )
        return;
    size_name(hi->mib, a, sizeof(a));
    size_name(lo->mib, b, sizeof(b));
    for ( unsigned int k = 0; k < NR_TIMES; k++ )
    {
        double want = (double)hi->mib / lo->mib, got;
        char fig[96];
        struct row *r;

        unsigned int g = k < T_MIG_TCP ? G_FILES : G_MIGRATE;

        if ( !(lo->groups & hi->groups & g) )
            continue;           /* that group did not run at both */
        snprintf(fig, sizeof(fig), "aim 7: %s time %s / %s", time_name[k],
                 a, b);
        if ( !lo->ns[k] || !hi->ns[k] )
        {
            row_na(fig, "linear", "sizes not both measured");
            continue;
        }
        got = (double)hi->ns[k] / lo->ns[k];
        r = row_new("%s", fig);
        snprintf(r->value, sizeof(r->value), "%.2f", got);
        snprintf(r->ratio, sizeof(r->ratio), "size ratio %.0f", want);
        snprintf(r->aim, sizeof(r->aim), "%.1f..%.1f", want * 0.85,
                 want * 1.15);
        r->result = got >= want * 0.85 && got <= want * 1.15 ? "met"
                                                              : "NOT MET";
    }
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ferry-bench [--quick] [--sizes LIST] [--only GROUPS] "
            "[--dir DIR]\n"
            "  --quick        small domains (16 and 64 MiB; migration at "
            "16 MiB only):\n                 checks that it runs\n"
            "  --sizes LIST   domain sizes, MiB without a unit (default "
            "1G,2G,4G)\n"
            "  --only GROUPS  some of: files (aim 5), migrate (aims 1, 3, "
            "4), zero (aim 2),\n"
            "                 start (aim 6), comma-separated; aim 7 "
            "compares what ran\n"
            "  --dir DIR      where save files go (default $TMPDIR or "
            "/var/tmp)\n"
            "  --no-migrate   skip live migration (the migrate and zero "
            "groups)\n");
}

static int find_builddir(void)
{
    char exe[PATH_MAX], *slash;
    ssize_t n;

    snprintf(top_srcdir, sizeof(top_srcdir), "%s",
             getenv("top_srcdir") ? getenv("top_srcdir") : BENCH_SRCDIR);
    if ( getenv("top_builddir") )
    {
        snprintf(top_builddir, sizeof(top_builddir), "%s",
                 getenv("top_builddir"));
        return 0;
    }
    if ( (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0 )
        return -1;
    exe[n] = '\0';
    /* .../bench/ferry-bench -> ... */
    for ( int i = 0; i < 2; i++ )
    {
        if ( !(slash = strrchr(exe, '/')) )
            return -1;
        *slash = '\0';
    }
    snprintf(top_builddir, sizeof(top_builddir), "%s", exe);
    return 0;
}

static int parse_groups(const char *arg, unsigned int *groups)
{
    static const char *const names[] = { "files", "migrate", "zero",
                                         "start" };
    char list[256], *tok, *save = NULL;

    snprintf(list, sizeof(list), "%s", arg);
    *groups = 0;
    for ( tok = strtok_r(list, ",", &save); tok;
          tok = strtok_r(NULL, ",", &save) )
    {
        unsigned int i;

        for ( i = 0; i < 4 && strcmp(tok, names[i]); i++ )
            ;
        if ( i == 4 )
        {
            fprintf(stderr, "ferry-bench: --only: '%s' is not one of files, "
                    "migrate, zero, start\n", tok);
            return -1;
        }
        *groups |= 1U << i;
    }
    return *groups ? 0 : -1;
}

static void yardstick_rows(const struct yardsticks *y, unsigned int groups)
{
    struct row *r = row_new("yardstick: memcpy, one thread");

    snprintf(r->value, sizeof(r->value), "%.2f GB/s", y->memcpy_gbps);
    if ( groups & G_FILES )
    {
        r = row_new("yardstick: O_DIRECT write + fdatasync");
        snprintf(r->value, sizeof(r->value), "%.2f GB/s",
                 y->direct_write_gbps);
        if ( !y->direct_write_gbps )
            snprintf(r->ratio, sizeof(r->ratio), "no O_DIRECT here");
        r = row_new("yardstick: O_DIRECT read");
        snprintf(r->value, sizeof(r->value), "%.2f GB/s",
                 y->direct_read_gbps);
        r = row_new("yardstick: buffered write + fsync");
        snprintf(r->value, sizeof(r->value), "%.2f GB/s", y->buffered_gbps);
    }
    if ( groups & (G_MIGRATE | G_ZERO) )
    {
        r = row_new("yardstick: loopback TCP, hot buffer");
        snprintf(r->value, sizeof(r->value), "%.2f GB/s", y->tcp_gbps);
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "quick", no_argument, NULL, 'q' },
        { "sizes", required_argument, NULL, 's' },
        { "only", required_argument, NULL, 'o' },
        { "dir", required_argument, NULL, 'd' },
        { "no-migrate", no_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t sizes[8] = { 1024, 2048, 4096 };
    unsigned int nr_sizes = 3, groups = G_ALL, zero_at;
    struct size_result res[8];
    struct yardsticks y = { 0 };
    const char *dir = NULL;
    char file_dir[PATH_MAX];
    bool quick = false, sizes_given = false, migrate = true;
    size_t ylen;
    uint8_t *buf;
    uint64_t seed = 11;
    int c;

    while ( (c = getopt_long(argc, argv, "qs:o:d:Mh", longopts, NULL)) !=
            -1 )
    {
        switch ( c )
        {
        case 'q':
            quick = true;
            break;
        case 's':
        {
            /* Sizes as everywhere (common/size.h), MiB without a unit. */
            char list[256], *tok, *save = NULL;
            uint64_t bytes;

            snprintf(list, sizeof(list), "%s", optarg);
            nr_sizes = 0;
            sizes_given = true;
            for ( tok = strtok_r(list, ",", &save); tok && nr_sizes < 8;
                  tok = strtok_r(NULL, ",", &save) )
            {
                int rc = ferry_parse_size(tok, SIZE_DEFAULT_MIB, &bytes);

                if ( rc || !bytes || bytes % (1 << 20) )
                {
                    fprintf(stderr, "ferry-bench: --sizes: '%s' %s\n", tok,
                            rc ? ferry_size_error(rc)
                               : "is not a whole number of MiB, at least 1");
                    return 2;
                }
                sizes[nr_sizes++] = bytes >> 20;
            }
            if ( !nr_sizes )
            {
                fprintf(stderr, "ferry-bench: --sizes: no size given\n");
                return 2;
            }
            break;
        }
        case 'o':
            if ( parse_groups(optarg, &groups) )
            {
                usage(stderr);
                return 2;
            }
            break;
        case 'd':
            dir = optarg;
            break;
        case 'M':
            migrate = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ( quick && !sizes_given )
    {
        sizes[0] = 16;
        sizes[1] = 64;
        nr_sizes = 2;
    }
    if ( !migrate )
        groups &= ~(unsigned int)(G_MIGRATE | G_ZERO);
    /* Aim 2 is for 2 GiB: there if the run has it, else the smallest. */
    zero_at = 0;
    for ( unsigned int i = 0; i < nr_sizes; i++ )
        if ( sizes[i] == 2048 )
            zero_at = i;
    if ( find_builddir() )
    {
        fprintf(stderr, "ferry-bench: cannot find the build directory\n");
        return 1;
    }
    if ( !dir )
        dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/ferry-bench.XXXXXX", dir);
    if ( !mkdtemp(tmp_dir) )
    {
        fprintf(stderr, "ferry-bench: cannot create a directory in %s: %s\n",
                dir, strerror(errno));
        return 1;
    }
    snprintf(file_dir, sizeof(file_dir), "%s", tmp_dir);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);

    note("ferry-bench: build %s, files in %s", top_builddir, tmp_dir);
    ylen = quick ? 64 * MiB : 256 * MiB;
    y.memcpy_gbps = measure_memcpy(ylen);
    if ( groups & G_FILES )
    {
        measure_direct(file_dir, quick ? 64 * MiB : GiB,
                       &y.direct_write_gbps, &y.direct_read_gbps);
        y.buffered_gbps = measure_disk(file_dir, quick ? 64 * MiB : GiB);
    }
    if ( groups & (G_MIGRATE | G_ZERO) )
        y.tcp_gbps = measure_loopback(quick ? 128 * MiB : 2 * GiB);
    yardstick_rows(&y, groups);
    if ( (groups & G_MIGRATE) && (buf = malloc(ylen)) )
    {
        static const char *const algs[] = { "SHA256", "SHA1", "BLAKE2B-512",
                                            "GMAC", "POLY1305" };

        populate(buf, ylen, true);
        fill_random(buf, ylen, &seed);
        for ( unsigned int i = 0; i < 5; i++ )
        {
            struct row *r = row_new("digest speed: %s", algs[i]);
            double v = measure_digest(algs[i], buf, ylen);

            snprintf(r->value, sizeof(r->value), "%.2f GB/s", v);
            snprintf(r->ratio, sizeof(r->ratio), "%.3fx memcpy",
                     y.memcpy_gbps > 0 ? v / y.memcpy_gbps : 0);
        }
        {
            struct row *r = row_new("digest speed: sr_io, as the engines hash");
            double v = measure_sr_io_digest(buf, ylen);

            snprintf(r->value, sizeof(r->value), "%.2f GB/s", v);
            snprintf(r->ratio, sizeof(r->ratio), "%.3fx memcpy",
                     y.memcpy_gbps > 0 ? v / y.memcpy_gbps : 0);
        }
        free(buf);
    }

    if ( groups & G_START )
        bench_start(quick ? sizes[nr_sizes - 1] : 4096);
    /* --quick: one size is enough to show that migration runs. */
    for ( unsigned int i = 0; i < nr_sizes; i++ )
    {
        unsigned int g = groups;

        if ( quick && i > 0 )
            g &= ~(unsigned int)(G_MIGRATE | G_ZERO);
        bench_size(sizes[i], &y, file_dir, &res[i], g, i == zero_at);
    }
    linearity_rows(res, nr_sizes);

    stop_all_hosts();
    remove_tmp_dir();
    print_table();
    return 0;
}
