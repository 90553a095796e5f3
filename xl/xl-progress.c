/* SPDX-License-Identifier: MIT */
/*
 * xl-progress.c: the progress display of xl save, restore and migrate
 * (see xl-progress.h for the contract).
 *
 * The engines report per batch, which can be thousands of times a second;
 * this file turns that into something a person can read.  Every report is
 * stored, and a line is drawn only when enough time has passed: 100 ms
 * between redraws of a terminal line, a few seconds between plain lines,
 * and nothing at all in the first half second, so quick operations (a
 * small guest's save) stay as quiet as they were.  A phase change is drawn
 * at once (once the half second is over) because it is what a watcher
 * most wants to see.
 *
 * Throughput: the engines measure it per pass, and a non-live save has a
 * single pass, so until they have a figure the average since the start
 * of the display is shown instead.
 *
 * Percent is of the whole operation, not of the pass: what was sent
 * against what was sent plus what is known to remain (the current
 * pass's rest), which with the rate gives an ETA.
 *
 * Invariants: nothing is printed to out before the first draw; a CR line
 * is always closed with a newline by xl_progress_done(); lines stay under
 * 80 columns.  Style: Xen's xl/libxl style.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xl.h"
#include "xl-progress.h"

#define NS_PER_MS           1000000ULL
#define START_DELAY_NS      (500 * NS_PER_MS)
#define CR_INTERVAL_NS      (100 * NS_PER_MS)
#define PLAIN_INTERVAL_NS   (5000 * NS_PER_MS)
#define BAR_WIDTH           20
#define MIN_BAR             5
#define LINE_MAX_COLS       79

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void xl_progress_init(struct xl_progress *p, const char *what, FILE *out)
{
    memset(p, 0, sizeof(*p));
    p->what = what;
    p->out = out;
    p->cr = progress_use_cr || isatty(fileno(out));
    p->t_start_ns = now_ns();
}

/* "12.3 MiB" style, into buf. */
const char *xl_progress_bytes(char *buf, size_t len, uint64_t bytes)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = bytes;
    unsigned int u = 0;

    while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", bytes);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

/* Bytes per second: the engine's per-pass figure while there is one,
 * else (and at the end) the average since the start. */
static uint64_t rate(const struct xl_progress *p, uint64_t now)
{
    uint64_t dt = now - p->t_start_ns;

    if (p->last.throughput && p->last.phase != SR_PHASE_DONE)
        return p->last.throughput;
    if (dt < NS_PER_MS)
        return 0;
    return (uint64_t)((double)p->last.bytes * 1e9 / dt);
}

/* Pages the current pass still has to send: what is known to remain. */
static uint64_t remaining_pages(const struct sr_progress *r)
{
    if (r->phase == SR_PHASE_DONE || r->pass_done >= r->pass_total)
        return 0;
    return r->pass_total - r->pass_done;
}

/*
 * Percent of the whole operation, or -1 when it cannot be told.  A save
 * has sent pages_sent pages and knows of remaining_pages() more (a live
 * pass adds what the guest dirtied during the last one, so the figure
 * steps back a little when a pass begins, as QEMU's does); it stays
 * below 100 until the end.  The restore engine knows no pass, only the
 * P2M's size and the pages it has received: their ratio, kept below 100
 * too (a live stream repeats pages).
 */
static int percent(const struct sr_progress *r)
{
    uint64_t left = remaining_pages(r), all;

    if (r->phase == SR_PHASE_DONE)
        return 100;
    if (r->pass_total) {
        all = r->pages_sent + left;
        if (!all)
            return 0;
        return r->pages_sent >= all ? 99 :
               (int)(r->pages_sent * 100 / all);
    }
    if (r->phase == SR_PHASE_MEMORY && r->p2m_size)
        return r->pages_sent >= r->p2m_size ? 99 :
               (int)(r->pages_sent * 100 / r->p2m_size);
    return -1;
}

/* "ETA 12 s", "ETA 3 min": the remaining pages at the rate. */
static const char *eta(char *buf, size_t len, uint64_t bytes, uint64_t rate)
{
    uint64_t s = (bytes + rate - 1) / rate;

    if (s < 120)
        snprintf(buf, len, "%" PRIu64 " s", s);
    else if (s < 7200)
        snprintf(buf, len, "%" PRIu64 " min", (s + 59) / 60);
    else
        snprintf(buf, len, "%" PRIu64 " h", (s + 3599) / 3600);
    return buf;
}

static bool is_live(const struct sr_progress *r)
{
    return r->phase == SR_PHASE_LIVE || r->phase == SR_PHASE_STOP_COPY;
}

/*
 * The figures after the bar: phase (with the live iteration, counted
 * from 0 as Xen's stats.iteration), bytes, throughput, what is known to
 * remain and when it will have gone at that rate, and the dirty rate
 * while live.  tail, when not NULL, ends the text ("done", "failed").
 */
static void format_figures(const struct xl_progress *p, uint64_t now,
                           const char *tail, char *buf, size_t len)
{
    const struct sr_progress *r = &p->last;
    uint64_t left = remaining_pages(r) * SR_PAGE_SIZE, bps = rate(p, now);
    char b1[32], b2[32], b3[32], b4[32];
    int n;

    n = snprintf(buf, len, "%s", sr_phase_name(r->phase));
    if (n >= 0 && (size_t)n < len && is_live(r))
        n += snprintf(buf + n, len - n, " iter %u", r->iteration);
    if (n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - n, "  %s  %s/s",
                      xl_progress_bytes(b1, sizeof(b1), r->bytes),
                      xl_progress_bytes(b2, sizeof(b2), bps));
    if (n >= 0 && (size_t)n < len && left && r->pass_total)
        n += snprintf(buf + n, len - n, "  left %s",
                      xl_progress_bytes(b3, sizeof(b3), left));
    if (n >= 0 && (size_t)n < len && left && r->pass_total && bps)
        n += snprintf(buf + n, len - n, "  ETA %s",
                      eta(b4, sizeof(b4), left, bps));
    if (n >= 0 && (size_t)n < len && is_live(r) && r->dirty_rate)
        n += snprintf(buf + n, len - n, "  dirty %s/s",
                      xl_progress_bytes(b3, sizeof(b3), r->dirty_rate));
    if (n >= 0 && (size_t)n < len && r->phase == SR_PHASE_DONE)
        n += snprintf(buf + n, len - n, "  in %.1f s",
                      (now - p->t_start_ns) / 1e9);
    if (n >= 0 && (size_t)n < len && tail)
        snprintf(buf + n, len - n, "  %s", tail);
}

/*
 * One terminal line: "What: [#####.....]  42% figures".  The line must
 * not wrap (a carriage return only goes back to the start of the last
 * screen line), so the bar gives way to the figures: it shrinks to what
 * is left of LINE_MAX_COLS and goes when less than MIN_BAR is.
 */
static void draw_cr(struct xl_progress *p, uint64_t now, const char *tail)
{
    char bar[BAR_WIDTH + 3], figures[128], pcs[16], line[256];
    int pc = percent(&p->last);
    size_t width, i, room, fixed;

    format_figures(p, now, tail, figures, sizeof(figures));
    if (pc >= 0)
        snprintf(pcs, sizeof(pcs), "%3d%%", pc);
    else
        snprintf(pcs, sizeof(pcs), "    ");
    /* "What: " + "[bar] " + "100% " + figures */
    fixed = strlen(p->what) + 2 + 3 + strlen(pcs) + 1 + strlen(figures);
    room = fixed < LINE_MAX_COLS ? LINE_MAX_COLS - fixed : 0;
    if (room > BAR_WIDTH)
        room = BAR_WIDTH;
    bar[0] = '\0';
    if (room >= MIN_BAR) {
        size_t full = pc > 0 ? (size_t)pc * room / 100 : 0;

        bar[0] = '[';
        for (i = 0; i < room; i++)
            bar[i + 1] = pc < 0 ? ' ' : i < full ? '#' : '.';
        bar[room + 1] = ']';
        bar[room + 2] = '\0';
    }
    snprintf(line, sizeof(line), "%s: %s%s%s %s", p->what, bar,
             bar[0] ? " " : "", pcs, figures);
    if (strlen(line) > LINE_MAX_COLS)
        line[LINE_MAX_COLS] = '\0';
    /* Blank what is left of a longer previous line. */
    width = strlen(line);
    fprintf(p->out, "\r%s", line);
    for (i = width; i < p->last_width; i++)
        fputc(' ', p->out);
    p->last_width = width;
    p->line_open = true;
    fflush(p->out);
}

static void draw_plain(struct xl_progress *p, uint64_t now, const char *tail)
{
    char figures[128];
    int pc = percent(&p->last);

    format_figures(p, now, tail, figures, sizeof(figures));
    if (pc >= 0)
        fprintf(p->out, "%s: %d%% %s\n", p->what, pc, figures);
    else
        fprintf(p->out, "%s: %s\n", p->what, figures);
    fflush(p->out);
}

static void draw(struct xl_progress *p, uint64_t now, const char *tail)
{
    if (p->cr)
        draw_cr(p, now, tail);
    else
        draw_plain(p, now, tail);
    p->drawn = true;
    p->t_last_ns = now;
    p->last_phase_drawn = p->last.phase;
    p->last_iter_drawn = p->last.iteration;
}

void xl_progress_update(struct xl_progress *p, const struct sr_progress *r)
{
    uint64_t now, interval;
    bool changed;

    p->last = *r;
    p->have = true;
    now = now_ns();
    /* The end is drawn once, by xl_progress_done(). */
    if (now - p->t_start_ns < START_DELAY_NS || r->phase == SR_PHASE_DONE)
        return;
    changed = !p->drawn || r->phase != p->last_phase_drawn ||
              r->iteration != p->last_iter_drawn;
    interval = p->cr ? CR_INTERVAL_NS : PLAIN_INTERVAL_NS;
    if (!changed && now - p->t_last_ns < interval)
        return;
    draw(p, now, NULL);
}

void xl_progress_cb(void *arg, const struct sr_progress *r)
{
    xl_progress_update(arg, r);
}

void xl_progress_done(struct xl_progress *p, bool ok)
{
    uint64_t now = now_ns();

    /* Quiet operations stay quiet, successful or not: the caller prints
     * the error itself. */
    if (!p->drawn)
        return;
    if (ok && p->last.phase != SR_PHASE_DONE) {
        p->last.phase = SR_PHASE_DONE;
        p->last.pass_done = p->last.pass_total;
    }
    draw(p, now, ok ? NULL : "failed");
    if (p->cr && p->line_open)
        fputc('\n', p->out);
    p->line_open = false;
    fflush(p->out);
}
