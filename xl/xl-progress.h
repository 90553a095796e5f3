/* SPDX-License-Identifier: MIT */
/*
 * xl-progress.h: the progress display of xl's long operations (save,
 * restore, migrate), fed with the save/restore engines' struct
 * sr_progress reports.
 *
 * Usage: xl_progress_init() before the operation; pass xl_progress_cb
 * and the struct as the engine's progress callback and argument (or call
 * xl_progress_update() yourself); xl_progress_done() once at the end,
 * whatever happened.
 *
 * What is shown: nothing for the first ~0.5 s (an operation that ends
 * sooner prints nothing at all); then, on a terminal (out is a tty, or
 * xl's global -t option, progress_use_cr, asks for it as in Xen's xl), one
 * line redrawn in place with a carriage return: a bar of the whole
 * operation, its percent, phase, bytes, throughput, what is known to
 * remain and an ETA, and for live passes the iteration and dirty rate.  On anything else (a log file, a pipe) plain
 * lines, at most one every few seconds and at every phase change.
 * Redraws are rate-limited to ~10 per second; updates in between only
 * record the figures, so calling update per batch is cheap.
 *
 * The struct is the caller's (no allocation); one display per operation,
 * used from one thread.  Style: Xen's xl/libxl style.
 */
#ifndef FERRY_XL_PROGRESS_H
#define FERRY_XL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../saverestore/sr.h"

struct xl_progress {
    const char *what;           /* "Saving", "Restoring", "Migrating" */
    FILE *out;
    bool cr;                    /* redraw one line in place */
    bool drawn;                 /* something was printed */
    bool line_open;             /* a CR line waits for its newline */
    bool have;                  /* last holds a report */
    uint64_t t_start_ns;        /* CLOCK_MONOTONIC at init */
    uint64_t t_last_ns;         /* last time something was printed */
    enum sr_phase last_phase_drawn;
    unsigned int last_iter_drawn;
    size_t last_width;          /* chars of the last CR line */
    struct sr_progress last;    /* the latest report */
};

/* Start a display; what names the operation, out is usually stderr. */
void xl_progress_init(struct xl_progress *p, const char *what, FILE *out);
/* A new report from an engine (or the caller's own figures). */
void xl_progress_update(struct xl_progress *p, const struct sr_progress *r);
/* The engine-callback form of xl_progress_update (arg: the display). */
void xl_progress_cb(void *arg, const struct sr_progress *r);
/* End the display: the final state with "done" or "failed" if anything
 * was shown, and the terminal line closed with a newline. */
void xl_progress_done(struct xl_progress *p, bool ok);
/* bytes as "512 B", "12.3 MiB" (binary units), into buf. */
const char *xl_progress_bytes(char *buf, size_t len, uint64_t bytes);

#endif /* FERRY_XL_PROGRESS_H */
