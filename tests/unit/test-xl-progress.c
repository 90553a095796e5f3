/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for xl/xl-progress.c, the progress display of xl save,
 * restore and migrate.
 *
 * What must hold: an operation that ends within half a second prints
 * nothing; off a terminal, plain lines come at phase changes and then
 * seldom, with no carriage returns; on a terminal (here forced with xl's
 * -t flag, progress_use_cr) one line is redrawn in place, never wider than
 * 79 columns whatever the figures, at most ~10 times a second however
 * often the engine reports, and is closed with a newline at the end.
 * Tests move the display's start time back instead of sleeping.
 */
#include <time.h>

#include "harness.h"
#include "xl.h"
#include "xl-progress.h"

/* xl.c's global options, which xl-progress.c reads. */
bool progress_use_cr;

static FILE *out_file(void)
{
    FILE *f = tmpfile();

    ASSERT(f);
    return f;
}

/* Everything written to f so far, NUL-terminated (caller frees). */
static char *contents(FILE *f)
{
    long len;
    char *s;

    fflush(f);
    len = ftell(f);
    ASSERT(len >= 0);
    s = malloc(len + 1);
    ASSERT(s);
    rewind(f);
    ASSERT_EQ(fread(s, 1, len, f), (size_t)len);
    s[len] = '\0';
    return s;
}

static unsigned int count_char(const char *s, char c)
{
    unsigned int n = 0;

    for ( ; *s; s++ )
        n += *s == c;
    return n;
}

static struct sr_progress report(enum sr_phase phase, uint64_t done,
                                 uint64_t total)
{
    struct sr_progress r = {
        .phase = phase, .pass_done = done, .pass_total = total,
        .p2m_size = total, .bytes = done * 4096, .pages_sent = done,
    };

    return r;
}

/* Pretend the display started a second ago. */
static void age(struct xl_progress *p)
{
    p->t_start_ns -= 1000000000ULL;
}

TEST(quick_operations_print_nothing)
{
    FILE *f = out_file();
    struct xl_progress p;
    struct sr_progress r = report(SR_PHASE_MEMORY, 10, 100);
    char *s;

    progress_use_cr = true;
    xl_progress_init(&p, "Saving", f);
    xl_progress_update(&p, &r);
    r.phase = SR_PHASE_STATE;
    xl_progress_update(&p, &r);
    xl_progress_done(&p, true);
    s = contents(f);
    ASSERT_STR(s, "");
    free(s);
    fclose(f);
}

TEST(plain_lines_off_a_terminal)
{
    FILE *f = out_file();
    struct xl_progress p;
    struct sr_progress r = report(SR_PHASE_MEMORY, 50, 100);
    char *s;

    progress_use_cr = false;
    xl_progress_init(&p, "Saving", f);
    ASSERT(!p.cr);
    age(&p);
    xl_progress_update(&p, &r);
    /* The same phase again and again: no more lines for seconds. */
    for ( int i = 51; i < 100; i++ )
    {
        r.pass_done = i;
        xl_progress_update(&p, &r);
    }
    r = report(SR_PHASE_STATE, 0, 0);
    xl_progress_update(&p, &r);
    xl_progress_done(&p, true);
    s = contents(f);
    DIAG("%s", s);
    ASSERT_EQ(count_char(s, '\n'), 3);
    ASSERT_EQ(count_char(s, '\r'), 0);
    ASSERT(!strncmp(s, "Saving: 50% memory  200.0 KiB  ", 31));
    ASSERT_CONTAINS(s, "\nSaving: state  ");
    ASSERT_CONTAINS(s, "\nSaving: 100% done  ");
    free(s);
    fclose(f);
}

TEST(terminal_line_fits_and_is_closed)
{
    FILE *f = out_file();
    struct xl_progress p;
    struct sr_progress r = report(SR_PHASE_STOP_COPY, 12345, 99999);
    char *s, *line, *save = NULL;

    progress_use_cr = true;
    xl_progress_init(&p, "Migrating", f);
    ASSERT(p.cr);
    age(&p);
    /* The widest figures there can be. */
    r.iteration = 4000000000U;
    r.bytes = 1000ULL << 40;
    r.throughput = 1000ULL << 40;
    r.dirty_rate = 1000ULL << 40;
    xl_progress_update(&p, &r);
    r = report(SR_PHASE_LIVE, 1, 3);
    xl_progress_update(&p, &r);
    xl_progress_done(&p, false);
    s = contents(f);
    DIAG("%s", s);
    ASSERT_EQ(count_char(s, '\n'), 1);
    ASSERT_EQ(s[strlen(s) - 1], '\n');
    ASSERT_CONTAINS(s, "failed");
    ASSERT_CONTAINS(s, "Migrating: [");
    for ( line = strtok_r(s, "\r\n", &save); line;
          line = strtok_r(NULL, "\r\n", &save) )
        ASSERT(strlen(line) <= 79);
    free(s);
    fclose(f);
}

TEST(redraws_are_rate_limited)
{
    FILE *f = out_file();
    struct xl_progress p;
    struct sr_progress r = report(SR_PHASE_MEMORY, 0, 1000000);
    struct timespec t0, t1;
    double secs;
    char *s;

    progress_use_cr = true;
    xl_progress_init(&p, "Saving", f);
    age(&p);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for ( uint64_t i = 0; i < 1000000; i++ )
    {
        r.pass_done = i;
        xl_progress_update(&p, &r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    xl_progress_done(&p, true);
    s = contents(f);
    DIAG("%u redraws in %.2f s", count_char(s, '\r'), secs);
    ASSERT(count_char(s, '\r') <= (unsigned int)(secs * 10) + 3);
    ASSERT_CONTAINS(s, "100% done");
    free(s);
    fclose(f);
}

TEST(restore_percent_from_pages_received)
{
    FILE *f = out_file();
    struct xl_progress p;
    struct sr_progress r = { .phase = SR_PHASE_MEMORY, .p2m_size = 4096,
                             .pages_sent = 1024, .bytes = 4 << 20 };
    char *s;

    progress_use_cr = false;
    xl_progress_init(&p, "Restoring", f);
    age(&p);
    xl_progress_update(&p, &r);
    s = contents(f);
    ASSERT(!strncmp(s, "Restoring: 25% memory  4.0 MiB  ", 32));
    free(s);
    fclose(f);
}

/*
 * A second live pass does not start again from 0%: the percent is of the
 * whole migration (pages sent against those plus the pass's rest), and
 * what remains comes with an ETA at the throughput.
 */
TEST(percent_is_of_the_whole_with_remaining_and_eta)
{
    FILE *f = out_file();
    struct xl_progress p;
    struct sr_progress r = report(SR_PHASE_LIVE, 500, 1000);
    char *s;

    progress_use_cr = false;
    xl_progress_init(&p, "Migrating", f);
    age(&p);
    r.throughput = 1 << 20;
    xl_progress_update(&p, &r);
    /* Pass 1 sent all 1000; pass 2 has sent 50 of its 100. */
    r.iteration = 1;
    r.pass_total = 100;
    r.pass_done = 50;
    r.pages_sent = 1050;
    xl_progress_update(&p, &r);
    xl_progress_done(&p, true);
    s = contents(f);
    DIAG("%s", s);
    ASSERT(!strncmp(s, "Migrating: 50% live iter 0  ", 28));
    ASSERT_CONTAINS(s, "  left 2.0 MiB  ETA 2 s");
    ASSERT_CONTAINS(s, "\nMigrating: 95% live iter 1  ");
    ASSERT_CONTAINS(s, "  left 200.0 KiB  ETA 1 s");
    ASSERT_CONTAINS(s, "\nMigrating: 100% done  ");
    free(s);
    fclose(f);
}
