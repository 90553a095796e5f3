/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor's console: a ring of log lines that `xl dmesg` reads, and
 * an optional sink (the daemon's log file, or stderr in the foreground).
 *
 * Lines are kept whole: a line that does not fit in the space left at the
 * end of the ring wraps to the start, overwriting the oldest lines, and a
 * reader resumes from a cursor that counts bytes ever written, so it can
 * tell when it fell behind.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv.h"

#define CONRING_SIZE (1U << 20)
#define LINE_MAX_LEN 1024

static struct
{
    pthread_mutex_t lock;
    char buf[CONRING_SIZE];
    uint64_t produced;          /* bytes ever written */
    uint64_t cleared;           /* readers start here at the earliest */
    FILE *sink;
    enum hv_loglvl sink_max;
} conring = { .lock = PTHREAD_MUTEX_INITIALIZER, .sink_max = HVLOG_INFO };

static const char *const lvl_name[] = {
    [HVLOG_ERR] = "(XEN) [ERR] ",
    [HVLOG_WARNING] = "(XEN) [WARN] ",
    [HVLOG_INFO] = "(XEN) ",
    [HVLOG_DEBUG] = "(XEN) ",
};

static void conring_put(const char *s, size_t n)
{
    for ( size_t i = 0; i < n; i++ )
        conring.buf[(conring.produced + i) % CONRING_SIZE] = s[i];
    conring.produced += n;
}

static void emit(enum hv_loglvl lvl, const char *prefix, const char *fmt,
                 va_list ap)
{
    char line[LINE_MAX_LEN];
    int n = snprintf(line, sizeof(line), "%s%s", lvl_name[lvl], prefix);

    if ( n < 0 || (size_t)n >= sizeof(line) )
        n = 0;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    n = (int)strlen(line);
    if ( n == 0 || line[n - 1] != '\n' )
    {
        if ( n == LINE_MAX_LEN - 1 )
            n--;
        line[n++] = '\n';
        line[n] = '\0';
    }

    pthread_mutex_lock(&conring.lock);
    conring_put(line, (size_t)n);
    if ( conring.sink && lvl <= conring.sink_max )
    {
        fputs(line, conring.sink);
        fflush(conring.sink);
    }
    pthread_mutex_unlock(&conring.lock);
}

void hv_printk(enum hv_loglvl lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(lvl, "", fmt, ap);
    va_end(ap);
}

void hv_gdprintk(const char *fmt, ...)
{
    char prefix[32] = "";
    va_list ap;

    if ( current )
        snprintf(prefix, sizeof(prefix), "d%uv%u ",
                 current->domain->domain_id, current->vcpu_id);
    va_start(ap, fmt);
    emit(HVLOG_DEBUG, prefix, fmt, ap);
    va_end(ap);
}

size_t hv_console_read(char *buf, size_t len, uint64_t *cursor)
{
    size_t n = 0;
    uint64_t from;

    pthread_mutex_lock(&conring.lock);
    from = cursor ? *cursor : 0;
    if ( conring.produced > CONRING_SIZE &&
         from < conring.produced - CONRING_SIZE )
        from = conring.produced - CONRING_SIZE;
    if ( from < conring.cleared )
        from = conring.cleared;
    while ( from < conring.produced && n < len )
        buf[n++] = conring.buf[from++ % CONRING_SIZE];
    if ( cursor )
        *cursor = from;
    pthread_mutex_unlock(&conring.lock);
    return n;
}

void hv_console_clear(uint64_t upto)
{
    pthread_mutex_lock(&conring.lock);
    if ( upto > conring.cleared && upto <= conring.produced )
        conring.cleared = upto;
    pthread_mutex_unlock(&conring.lock);
}

bool hv_log_contains(const char *needle)
{
    char *copy = malloc(CONRING_SIZE + 1);
    size_t n;
    bool found;

    if ( !copy )
        return false;
    n = hv_console_read(copy, CONRING_SIZE, NULL);
    copy[n] = '\0';
    found = strstr(copy, needle) != NULL;
    free(copy);
    return found;
}

void hv_log_clear(void)
{
    pthread_mutex_lock(&conring.lock);
    conring.produced = 0;
    conring.cleared = 0;
    pthread_mutex_unlock(&conring.lock);
}

void hv_log_set_sink(FILE *f, enum hv_loglvl max_lvl)
{
    pthread_mutex_lock(&conring.lock);
    conring.sink = f;
    conring.sink_max = max_lvl;
    pthread_mutex_unlock(&conring.lock);
}

void hv_bug(const char *file, int line, const char *cond)
{
    hv_printk(HVLOG_ERR, "Xen BUG at %s:%d%s%s", file, line,
              cond ? ": " : "", cond ? cond : "");
    if ( !conring.sink )
        fprintf(stderr, "ferry-hv: BUG at %s:%d%s%s\n", file, line,
                cond ? ": " : "", cond ? cond : "");
    abort();
}
