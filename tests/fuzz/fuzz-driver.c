/* SPDX-License-Identifier: MIT */
/*
 * fuzz-driver: runs the fuzz target (fuzz-stream.c) without libFuzzer,
 * so that every build - gcc, ASan/UBSan, TSan - fuzzes the stream reader
 * a little in `make check`.
 *
 *   fuzz-driver [-t SECONDS] [-n MAX_RUNS] [-s SEED] [-m BYTES] [-r RUN]
 *               CORPUS...
 *
 * CORPUS are files or directories of them (real save files).  Each file
 * is run as it is, then mutations of those of at most BYTES (1 MiB by
 * default: big ones take too long per run) until SECONDS have passed or
 * MAX_RUNS were made: bit flips, bytes set to edge values, truncations,
 * record length and type fields changed to edge values, a record copied
 * over or into another place (splicing), within one seed or across two.
 * Record boundaries come from reading each seed once with libsr, so the
 * field mutations hit real headers.  The PRNG (xorshift64*) is seeded
 * from -s, so a run is reproducible: each mutated input is a function of
 * the seed and its run number only.  A fatal signal prints both, and
 * -r RUN replays that one input (-r RUN -w FILE writes it to FILE).
 *
 * Output is TAP: one line for the corpus, one for the mutations.  A
 * crash or a sanitizer report kills the process, which the harness sees
 * as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../saverestore/sr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS     64
#define MAX_SEED_SIZE (64U << 20)
#define MAX_OFFSETS   4096

struct seed
{
    char *name;
    uint8_t *data;
    size_t len;
    uint64_t rec[MAX_OFFSETS];  /* offsets of record headers */
    unsigned int nr_rec;
};

static struct seed seeds[MAX_SEEDS];
static unsigned int nr_seeds;
static unsigned int small[MAX_SEEDS], nr_small;   /* to mutate */
static uint64_t rng;
static volatile sig_atomic_t cur_run = -1;
static uint64_t cur_seed;

static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The record headers of a seed, as the reader finds them (plain only). */
static void find_records(struct seed *s)
{
    struct sr_io *io;
    struct sr_xl_hdr xh;
    struct sr_libxl_hdr lh;
    struct sr_libxc_ihdr ih;
    struct sr_libxc_dhdr dh;
    struct sr_rec rec;
    void *config = NULL;
    uint32_t config_len;
    enum sr_layer layer = SR_LIBXL;

    if ( sr_io_open_mem_reader(&io, s->data, s->len) )
        return;
    sr_rec_init(&rec);
    if ( sr_read_xl_hdr(io, &xh, &config, &config_len) ||
         (xh.mandatory_flags & SR_XL_FLAG_FERRY_ZLIB) ||
         sr_read_libxl_hdr(io, &lh) )
        goto out;
    while ( s->nr_rec < MAX_OFFSETS && !sr_read_record(io, layer, &rec) )
    {
        s->rec[s->nr_rec++] = rec.offset;
        if ( layer == SR_LIBXL && rec.type == SR_LIBXL_END )
            break;
        if ( layer == SR_LIBXL && rec.type == SR_LIBXL_LIBXC_CONTEXT )
        {
            if ( sr_read_libxc_ihdr(io, &ih) || sr_read_libxc_dhdr(io, &dh) )
                break;
            layer = SR_LIBXC;
        }
        else if ( layer == SR_LIBXC && rec.type == SR_LIBXC_END )
            layer = SR_LIBXL;
    }
 out:
    free(config);
    sr_rec_free(&rec);
    sr_io_close(io);
}

static void load_file(const char *path)
{
    struct seed *s;
    struct stat st;
    FILE *f;

    if ( stat(path, &st) || !S_ISREG(st.st_mode) || !st.st_size ||
         st.st_size > MAX_SEED_SIZE || nr_seeds == MAX_SEEDS )
        return;
    s = &seeds[nr_seeds];
    s->len = st.st_size;
    s->data = malloc(s->len);
    s->name = strdup(path);
    f = fopen(path, "rb");
    if ( !s->data || !s->name || !f || fread(s->data, 1, s->len, f) != s->len )
    {
        fprintf(stderr, "fuzz-driver: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    find_records(s);
    nr_seeds++;
}

static void load(const char *path)
{
    struct dirent *de;
    char sub[4096];
    DIR *d = opendir(path);

    if ( !d )
    {
        load_file(path);
        return;
    }
    while ( (de = readdir(d)) )
    {
        if ( de->d_name[0] == '.' )
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        load_file(sub);
    }
    closedir(d);
}

/* ------------------------------------------------------------------------
 * Mutations of buf[0..*len) (capacity cap)
 * ------------------------------------------------------------------------ */

static const uint32_t edge32[] = {
    0, 1, 7, 8, 9, 0x7f, 0x80, 0xff, 0x1000, 0xffff, 0x10000,
    SR_REC_LENGTH_MAX - 1, SR_REC_LENGTH_MAX, SR_REC_LENGTH_MAX + 1,
    0x7fffffffU, 0x80000000U, 0x80000001U, 0xfffffff8U, 0xffffffffU,
};

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

/* A record header of the seed within the buffer, or a random place. */
static uint64_t some_record(const struct seed *s, size_t len)
{
    uint64_t off;

    if ( s->nr_rec && below(4) )
    {
        off = s->rec[below(s->nr_rec)];
        if ( off + 16 <= len )
            return off;
    }
    return len > 16 ? below(len - 16) : 0;
}

static void mutate_one(const struct seed *s, uint8_t *buf, size_t *len,
                       size_t cap)
{
    const struct seed *o = &seeds[below(nr_seeds)];
    uint64_t off, src, n;

    if ( *len < 16 || o->len < 32 )
        return;
    switch ( below(8) )
    {
    case 0:                                 /* one bit */
        buf[below(*len)] ^= 1U << below(8);
        break;
    case 1:                                 /* an edge byte */
        buf[below(*len)] = (uint8_t[]){ 0, 0xff, 0x80, 0x7f, 1 }[below(5)];
        break;
    case 2:                                 /* truncation */
        *len = below(*len);
        break;
    case 3:                                 /* a record's length */
        off = some_record(s, *len) + 4;
        if ( below(3) )
            put32(buf + off, edge32[below(sizeof(edge32) / 4)]);
        else
            put32(buf + off, get32(buf + off) + (uint32_t)below(17) - 8);
        break;
    case 4:                                 /* a record's type */
        off = some_record(s, *len);
        put32(buf + off, below(2) ? edge32[below(sizeof(edge32) / 4)]
                                  : (uint32_t)below(0x14));
        break;
    case 5:                                 /* a count or field in a body */
        off = some_record(s, *len) + 8 + 4 * below(4);
        if ( off + 4 <= *len )
            put32(buf + off, edge32[below(sizeof(edge32) / 4)]);
        break;
    case 6:                                 /* splice: overwrite */
    case 7:                                 /* splice: insert */
        src = some_record(o, o->len);
        n = 8 + below(o->len - src < 8200 ? o->len - src - 8 : 8192);
        if ( src + n > o->len )
            n = o->len - src;
        off = some_record(s, *len);
        if ( n > cap - *len )
            n = cap - *len;
        if ( below(2) )
        {
            memmove(buf + off + n, buf + off, *len - off);
            *len += n;
        }
        else if ( off + n > *len )
            n = *len - off;
        memmove(buf + off, o->data + src, n);
        break;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: fuzz-driver [-t SECONDS] [-n MAX_RUNS] "
            "[-s SEED] [-m BYTES] [-r RUN [-w FILE]] CORPUS...\n");
    exit(2);
}

/* Say which input killed us (plain builds; sanitizers print their own
 * report, and the TAP plan is left short either way). */
static void on_fatal(int sig)
{
    char line[160];
    int n = snprintf(line, sizeof(line), "\nfuzz-driver: signal %d in run "
                     "%ld of seed %" PRIu64 ": replay with -s %" PRIu64
                     " -r %ld\n", sig, (long)cur_run, cur_seed, cur_seed,
                     (long)cur_run);

    if ( n > 0 && write(2, line, n) < 0 )
        _exit(3);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Run number @run of seed @seed: pick a corpus file and mutate it. */
static size_t make_input(uint64_t seed, uint64_t run, uint8_t *buf,
                         size_t cap)
{
    const struct seed *s;
    size_t len;

    rng = (seed * 0x9e3779b97f4a7c15ULL) ^ (run + 1);
    for ( unsigned int i = 0; i < 4; i++ )
        next();
    s = &seeds[small[below(nr_small)]];
    len = s->len;
    memcpy(buf, s->data, len);
    for ( uint64_t m = 1 + below(4); m; m-- )
        mutate_one(s, buf, &len, cap);
    return len;
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    if ( !f || fwrite(buf, 1, len, f) != len || fclose(f) )
    {
        fprintf(stderr, "fuzz-driver: cannot write %s\n", path);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 3;
    uint64_t max_mut = 1U << 20;
    uint64_t max_runs = UINT64_MAX, runs = 0, seed = 1, t0;
    long replay = -1;
    const char *out = NULL;
    size_t biggest = 0, cap, len;
    uint8_t *buf;
    int opt, rc = 0;

    while ( (opt = getopt(argc, argv, "t:n:s:m:r:w:")) != -1 )
    {
        switch ( opt )
        {
        case 't': seconds = strtod(optarg, NULL); break;
        case 'n': max_runs = strtoull(optarg, NULL, 0); break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'm': max_mut = strtoull(optarg, NULL, 0); break;
        case 'r': replay = strtol(optarg, NULL, 0); break;
        case 'w': out = optarg; break;
        default: usage();
        }
    }
    for ( int i = optind; i < argc; i++ )
        load(argv[i]);
    if ( !nr_seeds )
    {
        fprintf(stderr, "fuzz-driver: no corpus files\n");
        return 2;
    }
    for ( unsigned int i = 0; i < nr_seeds; i++ )
    {
        if ( seeds[i].len > biggest )
            biggest = seeds[i].len;
        if ( seeds[i].len <= max_mut )
            small[nr_small++] = i;
    }
    /* Only big files: mutate them all the same. */
    if ( !nr_small )
        for ( unsigned int i = 0; i < nr_seeds; i++ )
            small[nr_small++] = i;
    cap = biggest + 4 * 8200;
    buf = malloc(cap);
    if ( !buf )
        return 2;
    cur_seed = seed;
    signal(SIGSEGV, on_fatal);
    signal(SIGBUS, on_fatal);
    signal(SIGFPE, on_fatal);
    signal(SIGABRT, on_fatal);

    if ( replay >= 0 )
    {
        len = make_input(seed, replay, buf, cap);
        cur_run = replay;
        if ( out )
            rc = write_file(out, buf, len);
        else
            LLVMFuzzerTestOneInput(buf, len);
        goto out;
    }
    printf("1..2\n");
    for ( unsigned int i = 0; i < nr_seeds; i++ )
        LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].len);
    printf("ok 1 - %u corpus files read\n", nr_seeds);
    fflush(stdout);

    t0 = now_ms();
    while ( runs < max_runs && now_ms() - t0 < seconds * 1000 )
    {
        len = make_input(seed, runs, buf, cap);
        cur_run = runs;
        LLVMFuzzerTestOneInput(buf, len);
        runs++;
    }
    printf("ok 2 - %" PRIu64 " mutated inputs in %.1f s (seed %" PRIu64
           ")\n", runs, (now_ms() - t0) / 1000.0, seed);
 out:
    free(buf);
    for ( unsigned int i = 0; i < nr_seeds; i++ )
    {
        free(seeds[i].data);
        free(seeds[i].name);
    }
    return rc;
}
