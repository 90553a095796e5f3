/* SPDX-License-Identifier: MIT */
/*
 * xl evacuate: empty a host by live-migrating every domain on it to other
 * hosts of a fleet (ferry's own verb; see EVACUATION in xl(1) and the
 * inventory format in ferry-fleet(5)).
 *
 * How it runs, in order: read the inventory (xl-fleet.c); list the
 * source's domains and decide which cannot move (state, rule); ask every
 * target for its free memory; place the domains with fleet_place()
 * (largest first, never more than a target can hold); print the plan
 * (and stop there for --dry-run, so the dry run shows exactly what the
 * real run executes); then run up to N `xl -H <source> migrate --json
 * <domid> <target>` children at a time, reading their JSON lines; at the
 * end list the source again and report every domain.
 *
 * Invariants:
 * - A domain is only ever moved by an xl migrate child, so xl migrate's
 *   guarantee holds for every domain: it runs on exactly one host.  This
 *   file never destroys, pauses or renames a domain.
 * - A target's reservation (fleet_place's reserved_kb) covers every
 *   domain planned on it, in flight or landed; a failed migration gives
 *   its share back.  So the memory promised on a target never exceeds
 *   what it reported free at the start.
 * - A failed migration is not retried.  When its target no longer
 *   answers, the target is marked lost and the domains not yet started
 *   are placed again without it; the ones in flight to it stay on the
 *   source (their xl migrate resumed them there).
 * - Exit status: 0 the source is empty; 1 nothing was tried (bad
 *   inventory, source unreachable); 2 usage; 4 domains stayed on the
 *   source; 5 a migration's outcome is unresolved (see xl migrate's
 *   status 3).
 *
 * Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "xl.h"
#include "xl-cfg.h"
#include "xl-fleet.h"
#include "xl-transport.h"
#include "../saverestore/sr.h"

#define EVAC_EXIT_STAYED 4
#define EVAC_EXIT_UNRESOLVED 5
#define MAX_DOMAINS 1024
#define MAX_TARGETS 256
#define LINE_MAX_LEN 8192

enum dom_state {
    D_PLANNED,          /* has a target, not started */
    D_STAY,             /* will not be tried */
    D_RUNNING,          /* an xl migrate child is moving it */
    D_DONE,             /* on its target */
    D_FAILED,           /* tried, still on the source */
    D_UNRESOLVED,       /* tried, outcome unknown (xl migrate status 3) */
};

struct evac_target {
    char *name;             /* fleet host name, or the --to argument */
    char *migrate_arg;      /* xl migrate's <host> */
    const struct fleet_host *fh;    /* NULL: --to without --fleet */
    enum fleet_transport transport;
    const char *run_dir;    /* to ask its daemon directly, if known */
    bool reachable;
    bool lost;
    char why[256];          /* unreachable, or how it was lost */
    unsigned int started;   /* migrations started to it */
};

struct evac_dom {
    struct place_domain *pd;    /* e->pd[i]: fleet_place's array */
    char name[XC_DOMAIN_NAME_MAX];
    char stay_buf[PLACE_REASON_LEN];
    struct place_filter rule_filter;
    enum dom_state state;
    bool paused;
    int planned;            /* target of the first plan (-1: none) */
    int target;             /* target tried (-1: none) */
    pid_t pid;
    int out_fd, err_fd;
    char obuf[LINE_MAX_LEN], ebuf[LINE_MAX_LEN];
    size_t olen, elen;
    char last_err[256];
    bool have_summary;
    char sum_status[16], sum_where[16], sum_error[256];
    long long downtime_ms, total_ms;
    char phase[24];
    unsigned long long transferred;
};

struct evac {
    struct fleet fleet;
    bool have_fleet;
    const char *source_name;
    const char *source_dir;
    struct evac_target t[MAX_TARGETS];
    struct place_target pt[MAX_TARGETS];
    unsigned int nt;
    struct evac_dom *d;
    struct place_domain *pd;
    unsigned int nd;
    unsigned int *order;
    struct place_filter cli_filter;
    const char *req_tags[64], *excl_tags[64];
    unsigned int parallel;
    bool dry_run, json, tty;
    bool status_shown;
    uint64_t t0_ns;
    xc_interface *xch;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- JSON out and in (json-c) ----------------------------------------- */

#define JSTR(s) json_object_new_string(s)
#define JINT(v) json_object_new_int64(v)
#define JU64(v) json_object_new_uint64(v)
#define JBOOL(v) json_object_new_boolean(v)

/* Member key: the string s, or null. */
static bool add_str_or_null(struct json_object *o, const char *key,
                            const char *s)
{
    if (s)
        return !xlcfg_json_add(o, key, JSTR(s));
    return !json_object_object_add(o, key, NULL);
}

/* Print o as one line of stdout, then release it; ok false (a failed
 * json-c allocation) prints nothing but a complaint. */
static void emit(struct json_object *o, bool ok)
{
    const char *s = ok && o ? xlcfg_json_line(o) : NULL;

    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "evacuate: out of memory for a --json event\n");
    fflush(stdout);
    json_object_put(o);
}

/* String member key of o into out (cut to len), if it is one. */
static bool get_str(struct json_object *o, const char *key, char *out,
                    size_t len)
{
    const char *v;

    if (xlcfg_json_get_string(o, key, &v))
        return false;
    snprintf(out, len, "%s", v);
    return true;
}

/* ---- terminal output ------------------------------------------------- */

static void clear_status(struct evac *e)
{
    if (e->status_shown) {
        fputs("\r\033[K", stderr);
        e->status_shown = false;
    }
}

static void say(struct evac *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A line for a human (nothing with --json, where stdout is JSON only). */
static void say(struct evac *e, const char *fmt, ...)
{
    va_list ap;

    if (e->json)
        return;
    clear_status(e);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* One line redrawn in place on a terminal: the overall and per-domain
 * progress. */
static void draw_status(struct evac *e)
{
    unsigned int done = 0, running = 0, failed = 0;
    char line[512];
    size_t n;

    if (e->json || !e->tty)
        return;
    for (unsigned int i = 0; i < e->nd; i++) {
        done += e->d[i].state == D_DONE;
        running += e->d[i].state == D_RUNNING;
        failed += e->d[i].state == D_FAILED ||
                  e->d[i].state == D_UNRESOLVED;
    }
    n = (size_t)snprintf(line, sizeof(line),
                         "[%u migrated, %u running, %u failed of %u]",
                         done, running, failed, e->nd);
    for (unsigned int i = 0; i < e->nd && n < 100; i++) {
        const struct evac_dom *d = &e->d[i];

        if (d->state != D_RUNNING)
            continue;
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %s: %s %llu MiB",
                              d->name, d->phase[0] ? d->phase : "setup",
                              d->transferred >> 20);
    }
    fprintf(stderr, "\r\033[K%.*s", 200, line);
    e->status_shown = true;
}

/* ---- targets --------------------------------------------------------- */

struct quiet_logger {
    struct xc_logger base;
    char last[256];
};

static void quiet_log(struct xc_logger *self, enum xc_loglvl lvl,
                      const char *msg)
{
    struct quiet_logger *q = (struct quiet_logger *)self;

    (void)lvl;
    snprintf(q->last, sizeof(q->last), "%s", msg);
}

/* The free memory of a host on this machine, from its daemon. */
static int ask_run_dir(const char *dir, uint64_t *free_kb, char *why,
                       size_t len)
{
    struct quiet_logger q = { { quiet_log, XC_DEBUG }, "" };
    struct xc_host_info hi;
    xc_interface *xch = xc_interface_open(dir, &q.base);
    int rc = -1;

    if (!xch) {
        snprintf(why, len, "no ferry host at %.100s%s%.120s", dir,
                 q.last[0] ? ": " : "", q.last);
        return -1;
    }
    if (xc_host_info(xch, &hi)) {
        snprintf(why, len, "host at %.100s does not answer: %.120s",
                 dir, q.last);
    } else {
        *free_kb = hi.free_pages * 4;
        rc = 0;
    }
    xc_interface_close(xch);
    return rc;
}

/*
 * The free memory of a host reached through a transport, from the
 * migration preamble: open a channel as xl migrate would, read the
 * banner, send a "resolve" preamble for a domain that cannot exist (the
 * nil UUID) and read the "ok {"free_memkb":N,...}" answer.  The receiver
 * finds no such domain and ends with "aborted": nothing changes there.
 */
static int ask_preamble(const struct evac_target *t, uint64_t *free_kb,
                        char *why, size_t len)
{
    static const char probe[] = "ferry-migrate 1 {\"op\":\"resolve\","
        "\"name\":\"ferry-evacuate-probe\","
        "\"uuid\":\"00000000-0000-0000-0000-000000000000\","
        "\"max_memkb\":0,\"max_vcpus\":0,\"paused\":false,"
        "\"monitor\":false,\"debug\":false}\n";
    struct xl_chan_opts o = { .connect_timeout_ms = 5000 };
    struct xl_chan *ch = NULL;
    struct json_object *ans = NULL;
    char line[1024], err[XL_CHAN_ERRLEN];
    int rc;

    if (t->fh && t->fh->transport == FLEET_TLS) {
        o.tls.cert = t->fh->tls_cert;
        o.tls.key = t->fh->tls_key;
        o.tls.ca = t->fh->tls_ca;
    }
    if (t->fh && t->fh->ssh_command)
        o.ssh_command = t->fh->ssh_command;
    rc = xl_chan_connect(&ch, t->migrate_arg, &o, err, sizeof(err));
    if (rc) {
        snprintf(why, len, "%.250s", err);
        return -1;
    }
    xl_chan_set_timeout(ch, 10000);
    rc = xl_chan_read_line(ch, line, sizeof(line));
    if (!rc)
        rc = sr_io_write(xl_chan_io(ch), probe, sizeof(probe) - 1);
    if (!rc)
        rc = xl_chan_read_line(ch, line, sizeof(line));
    if (rc)
        snprintf(why, len, "%s did not answer the migration preamble: %s",
                 t->migrate_arg, strerror(rc < 0 ? -rc : EIO));
    else if (strncmp(line, "ok ", 3) ||
             xlcfg_json_parse("answer", line + 3, strlen(line + 3), &ans,
                              NULL) ||
             xlcfg_json_get_u64(ans, "free_memkb", free_kb))
        snprintf(why, len, "%s answered the preamble with \"%.100s\"",
                 t->migrate_arg, line);
    json_object_put(ans);
    xl_chan_close(ch, NULL);
    return *why ? -1 : 0;
}

static int ask_free(const struct evac_target *t, uint64_t *free_kb,
                    char *why, size_t len)
{
    why[0] = 0;
    if (t->run_dir)
        return ask_run_dir(t->run_dir, free_kb, why, len);
    return ask_preamble(t, free_kb, why, len);
}

static int add_target(struct evac *e, const char *name,
                      const struct fleet_host *fh, const char *spec)
{
    struct evac_target *t;

    if (e->nt >= MAX_TARGETS) {
        fprintf(stderr, "evacuate: too many targets (at most %d)\n",
                MAX_TARGETS);
        return -1;
    }
    t = &e->t[e->nt++];
    t->name = strdup(name);
    if (fh) {
        t->fh = fh;
        t->transport = fh->transport;
        t->run_dir = fh->run_dir;
        t->migrate_arg = fleet_migrate_target(fh);
    } else {
        t->migrate_arg = strdup(spec);
        if (!strncmp(spec, "local:", 6)) {
            t->transport = FLEET_LOCAL;
            t->run_dir = spec + 6;
        } else if (!strncmp(spec, "tcp://", 6)) {
            t->transport = FLEET_TCP;
        } else if (!strncmp(spec, "tls://", 6)) {
            t->transport = FLEET_TLS;
        } else {
            t->transport = FLEET_SSH;
        }
    }
    if (!t->name || !t->migrate_arg) {
        fprintf(stderr, "evacuate: out of memory\n");
        return -1;
    }
    return 0;
}

/* Whether two run directories are the same directory. */
static bool same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];

    if (!realpath(a, ra) || !realpath(b, rb))
        return !strcmp(a, b);
    return !strcmp(ra, rb);
}

/* Source and targets from the inventory, SOURCE and --to. */
static int choose_hosts(struct evac *e, const char *source, char *to)
{
    const struct fleet_host *src = NULL;
    char *save = NULL, *item;

    if (e->have_fleet && source) {
        src = fleet_find(&e->fleet, source);
        if (!src) {
            fprintf(stderr, "evacuate: unknown host \"%s\": not in %s\n",
                    source, e->fleet.file);
            return -1;
        }
        if (src->transport != FLEET_LOCAL) {
            fprintf(stderr, "evacuate: the source \"%s\" is a %s host: xl evacuate runs on the source's machine, whose transport is local\n",
                    source, fleet_transport_name(src->transport));
            return -1;
        }
        e->source_dir = src->run_dir;
    } else if (source) {
        e->source_dir = !strncmp(source, "local:", 6) ? source + 6 : source;
    } else {
        e->source_dir = run_dir ? run_dir : getenv("FERRY_RUNDIR");
        if (!e->source_dir || !*e->source_dir)
            e->source_dir = "/run/ferry";
        for (unsigned int i = 0; e->have_fleet && i < e->fleet.nr_hosts;
             i++) {
            const struct fleet_host *h = &e->fleet.hosts[i];

            if (h->transport == FLEET_LOCAL &&
                same_dir(h->run_dir, e->source_dir)) {
                src = h;
                break;
            }
        }
    }
    e->source_name = src ? src->name : e->source_dir;
    run_dir = e->source_dir;

    if (!to) {
        for (unsigned int i = 0; i < e->fleet.nr_hosts; i++) {
            const struct fleet_host *h = &e->fleet.hosts[i];

            if (h != src && !(h->transport == FLEET_LOCAL &&
                              same_dir(h->run_dir, e->source_dir)) &&
                add_target(e, h->name, h, NULL))
                return -1;
        }
        return 0;
    }
    for (item = strtok_r(to, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        const struct fleet_host *h = NULL;

        if (e->have_fleet) {
            h = fleet_find(&e->fleet, item);
            if (!h) {
                fprintf(stderr, "evacuate: unknown host \"%s\" in --to: not in %s\n",
                        item, e->fleet.file);
                return -1;
            }
            if (h == src) {
                fprintf(stderr, "evacuate: \"%s\" is the source; it cannot be a target\n",
                        item);
                return -1;
            }
        }
        if (add_target(e, item, h, item))
            return -1;
    }
    return 0;
}

static void probe_targets(struct evac *e)
{
    for (unsigned int i = 0; i < e->nt; i++) {
        struct evac_target *t = &e->t[i];
        struct place_target *p = &e->pt[i];
        uint64_t free_kb = 0;

        p->name = t->name;
        if (t->fh) {
            p->tags = (const char *const *)t->fh->tags.v;
            p->nr_tags = t->fh->tags.n;
            p->max_memory_kb = t->fh->max_memory_kb;
            p->max_domains = t->fh->max_domains;
        }
        t->reachable = !ask_free(t, &free_kb, t->why, sizeof(t->why));
        p->usable = t->reachable;
        p->free_kb = free_kb;
    }
}

/* ---- the source's domains -------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && !strcmp(s + a - b, suffix);
}

/* Why a domain cannot be migrated now, or NULL. */
static const char *state_reason(const xc_domaininfo_t *i, const char *name,
                                char *buf, size_t len)
{
    /* A PV guest suspends itself for the last pass of a live migration:
     * one that cannot would leave xl migrate waiting for it in vain. */
    const char *why = xl_cannot_suspend(i, buf, len);

    if (why)
        return why;
    if (has_suffix(name, "--incoming") || has_suffix(name, "--migratedaway") ||
        has_suffix(name, "--aborted")) {
        snprintf(buf, len, "a migration of it is in progress (named %s)",
                 name);
        return buf;
    }
    return NULL;
}

static void apply_rule(struct evac *e, struct evac_dom *d)
{
    const struct fleet_rule *r;

    d->pd->filter[1] = &e->cli_filter;
    if (!e->have_fleet)
        return;
    r = fleet_rule_for(&e->fleet, d->name);
    if (!r)
        return;
    if (!r->evacuate && !d->pd->stay_reason) {
        snprintf(d->stay_buf, sizeof(d->stay_buf),
                 "kept on the source by the rule at %s:%d",
                 e->fleet.file, r->line);
        d->pd->stay_reason = d->stay_buf;
    }
    d->rule_filter.hosts = (const char *const *)r->hosts.v;
    d->rule_filter.nr_hosts = r->hosts.n;
    d->rule_filter.require_tags = (const char *const *)r->require_tags.v;
    d->rule_filter.nr_require = r->require_tags.n;
    d->rule_filter.exclude_tags = (const char *const *)r->exclude_tags.v;
    d->rule_filter.nr_exclude = r->exclude_tags.n;
    d->pd->filter[0] = &d->rule_filter;
}

static int list_domains(struct evac *e)
{
    xc_domaininfo_t *info = calloc(MAX_DOMAINS, sizeof(*info));
    int n, rc = -1;

    if (!info)
        goto out;
    n = xc_domain_getinfolist(e->xch, 0, MAX_DOMAINS, info);
    if (n < 0) {
        fprintf(stderr, "evacuate: cannot list the domains of %s\n",
                e->source_dir);
        goto out;
    }
    e->d = calloc((size_t)n + 1, sizeof(*e->d));
    e->pd = calloc((size_t)n + 1, sizeof(*e->pd));
    e->order = calloc((size_t)n + 1, sizeof(*e->order));
    if (!e->d || !e->pd || !e->order)
        goto out;
    for (int k = 0; k < n; k++) {
        struct evac_dom *d;

        if (info[k].domain == 0)
            continue;
        d = &e->d[e->nd];
        d->pd = &e->pd[e->nd++];
        domain_name(e->xch, info[k].domain, d->name, sizeof(d->name));
        d->pd->name = d->name;
        d->pd->domid = info[k].domain;
        d->pd->need_kb = (info[k].max_pages > info[k].tot_pages ?
                         info[k].max_pages : info[k].tot_pages) * 4;
        d->pd->stay_reason = state_reason(&info[k], d->name, d->stay_buf,
                                         sizeof(d->stay_buf));
        d->paused = info[k].flags & XEN_DOMINF_paused;
        d->target = -1;
        d->out_fd = d->err_fd = -1;
        apply_rule(e, d);
    }
    rc = 0;
 out:
    free(info);
    return rc;
}

/* ---- planning -------------------------------------------------------- */

static void emit_target(struct evac *e, unsigned int i)
{
    const struct evac_target *t = &e->t[i];
    const struct place_target *p = &e->pt[i];
    struct json_object *o, *tags;
    bool ok;

    if (!e->json)
        return;
    o = json_object_new_object();
    ok = o && !xlcfg_json_add(o, "event", JSTR("target")) &&
         !xlcfg_json_add(o, "host", JSTR(t->name)) &&
         !xlcfg_json_add(o, "transport",
                         JSTR(fleet_transport_name(t->transport))) &&
         !xlcfg_json_add(o, "migrate_to", JSTR(t->migrate_arg)) &&
         !xlcfg_json_add(o, "reachable", JBOOL(t->reachable));
    if (ok && t->reachable)
        ok = !xlcfg_json_add(o, "free_kb", JU64(p->free_kb));
    else if (ok)
        ok = add_str_or_null(o, "free_kb", NULL) &&
             !xlcfg_json_add(o, "error", JSTR(t->why));
    if (ok && p->max_memory_kb)
        ok = !xlcfg_json_add(o, "max_memory_kb", JU64(p->max_memory_kb));
    if (ok && p->max_domains)
        ok = !xlcfg_json_add(o, "max_domains", JU64(p->max_domains));
    ok = ok && !xlcfg_json_add(o, "tags", tags = json_object_new_array());
    for (unsigned int k = 0; ok && k < p->nr_tags; k++) {
        struct json_object *tag = JSTR(p->tags[k]);

        ok = tag && !json_object_array_add(tags, tag);
        if (!ok)
            json_object_put(tag);
    }
    emit(o, ok);
}

static void emit_plan(struct evac *e, const struct evac_dom *d,
                      unsigned int rank, bool replan)
{
    struct json_object *o;
    bool ok;

    if (!e->json)
        return;
    o = json_object_new_object();
    ok = o && !xlcfg_json_add(o, "event", JSTR("plan"));
    if (ok && replan)
        ok = !xlcfg_json_add(o, "replan", JBOOL(true));
    ok = ok && !xlcfg_json_add(o, "source", JSTR(e->source_name)) &&
         !xlcfg_json_add(o, "order", JU64(rank)) &&
         !xlcfg_json_add(o, "domain", JSTR(d->name)) &&
         !xlcfg_json_add(o, "domid", JU64(d->pd->domid)) &&
         !xlcfg_json_add(o, "memory_kb", JU64(d->pd->need_kb)) &&
         !xlcfg_json_add(o, "paused", JBOOL(d->paused)) &&
         add_str_or_null(o, "target", d->pd->target >= 0 ?
                         e->t[d->pd->target].name : NULL);
    if (ok && d->pd->target < 0)
        ok = !xlcfg_json_add(o, "reason", JSTR(d->pd->reason));
    emit(o, ok);
}

static void print_plan_table(struct evac *e)
{
    unsigned long long planned[MAX_TARGETS] = { 0 };
    unsigned int count[MAX_TARGETS] = { 0 };

    if (e->json)
        return;
    for (unsigned int i = 0; i < e->nd; i++)
        if (e->d[i].pd->target >= 0) {
            planned[e->d[i].pd->target] += e->d[i].pd->need_kb;
            count[e->d[i].pd->target]++;
        }
    printf("Evacuation plan for %s (%s): %u domain%s, %u target%s\n",
           e->source_name, e->source_dir, e->nd, e->nd == 1 ? "" : "s",
           e->nt, e->nt == 1 ? "" : "s");
    printf("%-20s %-9s %10s %10s %10s %7s\n", "Target", "Transport",
           "Free(MiB)", "Limit(MiB)", "Plan(MiB)", "Domains");
    for (unsigned int i = 0; i < e->nt; i++) {
        const struct place_target *p = &e->pt[i];
        char limit[24] = "-";

        if (p->max_memory_kb)
            snprintf(limit, sizeof(limit), "%llu",
                     (unsigned long long)(p->max_memory_kb >> 10));
        if (!e->t[i].reachable) {
            printf("%-20s %-9s unreachable: %s\n", e->t[i].name,
                   fleet_transport_name(e->t[i].transport), e->t[i].why);
            continue;
        }
        printf("%-20s %-9s %10llu %10s %10llu %7u\n", e->t[i].name,
               fleet_transport_name(e->t[i].transport),
               (unsigned long long)(p->free_kb >> 10), limit,
               planned[i] >> 10, count[i]);
    }
    printf("%-32s %5s %8s  %s\n", "Domain", "ID", "Mem(MiB)", "Target");
    for (unsigned int k = 0; k < e->nd; k++) {
        const struct evac_dom *d = &e->d[e->order[k]];

        printf("%-32s %5u %8llu  ", d->name, d->pd->domid,
               (unsigned long long)(d->pd->need_kb >> 10));
        if (d->pd->target >= 0)
            printf("%s%s\n", e->t[d->pd->target].name,
                   d->paused ? " (paused)" : "");
        else
            printf("- (stays: %s)\n", d->pd->reason);
    }
    fflush(stdout);
}

/* The first plan: every domain that can move, over every usable target. */
static int plan(struct evac *e)
{
    for (unsigned int i = 0; i < e->nd; i++)
        e->d[i].pd->target = -1;
    if (fleet_place(e->pt, e->nt, e->pd, e->nd)) {
        fprintf(stderr, "evacuate: out of memory\n");
        return -1;
    }
    fleet_place_order(e->pd, e->nd, e->order);
    for (unsigned int i = 0; i < e->nd; i++) {
        e->d[i].planned = e->pd[i].target;
        e->d[i].state = e->pd[i].target >= 0 ? D_PLANNED : D_STAY;
    }
    return 0;
}

/* ---- running the migrations ------------------------------------------ */

/*
 * Test hook (documented in xl(1) as a testing aid): with
 * FERRY_EVACUATE_FAULT=<target>:<n>:<fault>, the n-th migration to that
 * target runs with FERRY_MIGRATE_FAULT=<fault>, so a test can stop one
 * chosen xl migrate child at a chosen point and kill its target.
 */
static const char *fault_for(const struct evac_target *t)
{
    static char buf[256];
    const char *spec = getenv("FERRY_EVACUATE_FAULT");
    const char *c1, *c2;
    size_t len = strlen(t->name);

    if (!spec || !(c1 = strchr(spec, ':')) || !(c2 = strchr(c1 + 1, ':')))
        return NULL;
    if ((size_t)(c1 - spec) != len || memcmp(spec, t->name, len) ||
        strtoul(c1 + 1, NULL, 10) != t->started)
        return NULL;
    snprintf(buf, sizeof(buf), "%s", c2 + 1);
    return buf;
}

static void emit_dom_event(struct evac *e, const struct evac_dom *d,
                           const char *event)
{
    struct json_object *o;
    bool ok;

    if (!e->json)
        return;
    o = json_object_new_object();
    ok = o && !xlcfg_json_add(o, "event", JSTR(event)) &&
         !xlcfg_json_add(o, "domain", JSTR(d->name)) &&
         !xlcfg_json_add(o, "domid", JU64(d->pd->domid)) &&
         !xlcfg_json_add(o, "target", JSTR(e->t[d->target].name));
    if (ok && !strcmp(event, "start"))
        ok = !xlcfg_json_add(o, "pid", JINT(d->pid)) &&
             !xlcfg_json_add(o, "memory_kb", JU64(d->pd->need_kb));
    else if (ok && !strcmp(event, "done"))
        ok = !xlcfg_json_add(o, "downtime_ms", JINT(d->downtime_ms)) &&
             !xlcfg_json_add(o, "total_time_ms", JINT(d->total_ms));
    else if (ok && !strcmp(event, "failed"))
        ok = !xlcfg_json_add(o, "where", JSTR(d->state == D_UNRESOLVED ?
                                              "unknown" : "source")) &&
             !xlcfg_json_add(o, "error", JSTR(d->sum_error));
    emit(o, ok);
}

static int start_one(struct evac *e, struct evac_dom *d)
{
    struct evac_target *t = &e->t[d->pd->target];
    const struct fleet_host *fh = t->fh;
    const char *argv[24], *fault;
    char domid[16];
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, n = 0;
    pid_t pid;

    snprintf(domid, sizeof(domid), "%u", d->pd->domid);
    argv[n++] = "xl";
    argv[n++] = "-H";
    argv[n++] = e->source_dir;
    argv[n++] = "migrate";
    argv[n++] = "--json";
    if (fh && fh->transport == FLEET_TLS) {
        argv[n++] = "--tls-cert";
        argv[n++] = fh->tls_cert;
        argv[n++] = "--tls-key";
        argv[n++] = fh->tls_key;
        argv[n++] = "--tls-ca";
        argv[n++] = fh->tls_ca;
    }
    if (fh && fh->transport == FLEET_SSH && fh->ssh_command) {
        argv[n++] = "-s";
        argv[n++] = fh->ssh_command;
    }
    argv[n++] = domid;
    argv[n++] = t->migrate_arg;
    argv[n] = NULL;

    t->started++;
    fault = fault_for(t);
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        goto fail;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 ||
            dup2(err[1], 2) < 0)
            _exit(127);
        if (fault)
            setenv("FERRY_MIGRATE_FAULT", fault, 1);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    d->pid = pid;
    d->out_fd = out[0];
    d->err_fd = err[0];
    d->target = d->pd->target;
    d->state = D_RUNNING;
    d->phase[0] = 0;
    emit_dom_event(e, d, "start");
    say(e, "%s (domid %u, %llu MiB) -> %s: started\n", d->name,
        d->pd->domid, (unsigned long long)(d->pd->need_kb >> 10), t->name);
    return 0;
 fail:
    snprintf(d->sum_error, sizeof(d->sum_error),
             "cannot start xl migrate: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    return -1;
}

/* One JSON line from a child's stdout (xl migrate --json). */
static void child_line(struct evac *e, struct evac_dom *d, const char *line)
{
    struct json_object *in = NULL, *o;
    const char *ev;
    uint64_t v, iteration = 0, remaining = 0;
    bool has_iteration, has_remaining, ok;

    if (xlcfg_json_parse("xl migrate", line, strlen(line), &in, NULL) ||
        xlcfg_json_get_string(in, "event", &ev))
        goto out;
    if (!strcmp(ev, "summary")) {
        d->have_summary = true;
        get_str(in, "status", d->sum_status, sizeof(d->sum_status));
        get_str(in, "where", d->sum_where, sizeof(d->sum_where));
        if (!get_str(in, "error", d->sum_error, sizeof(d->sum_error)))
            d->sum_error[0] = 0;
        if (!xlcfg_json_get_u64(in, "downtime", &v) && v <= LLONG_MAX)
            d->downtime_ms = (long long)v;
        if (!xlcfg_json_get_u64(in, "total-time", &v) && v <= LLONG_MAX)
            d->total_ms = (long long)v;
        goto out;
    }
    if (strcmp(ev, "progress"))
        goto out;
    get_str(in, "status", d->phase, sizeof(d->phase));
    if (!xlcfg_json_get_u64(in, "transferred", &v))
        d->transferred = v;
    has_iteration = !xlcfg_json_get_u64(in, "iteration", &iteration);
    /* xl migrate says remaining in bytes, as QEMU does. */
    has_remaining = !xlcfg_json_get_u64(in, "remaining", &remaining);
    remaining /= 4096;
    if (e->json) {
        o = json_object_new_object();
        ok = o && !xlcfg_json_add(o, "event", JSTR("progress")) &&
             !xlcfg_json_add(o, "domain", JSTR(d->name)) &&
             !xlcfg_json_add(o, "target", JSTR(e->t[d->target].name)) &&
             !xlcfg_json_add(o, "status", JSTR(d->phase));
        if (ok && has_iteration)
            ok = !xlcfg_json_add(o, "iteration", JU64(iteration));
        ok = ok && !xlcfg_json_add(o, "transferred_bytes",
                                   JU64(d->transferred));
        if (ok && has_remaining)
            ok = !xlcfg_json_add(o, "remaining_pages", JU64(remaining));
        emit(o, ok);
    }
    draw_status(e);
 out:
    json_object_put(in);
}

/* Read what a child's fd has; split stdout into lines, keep the last
 * stderr line (the reason when there is no summary). */
static void child_read(struct evac *e, struct evac_dom *d, bool is_err)
{
    int *fd = is_err ? &d->err_fd : &d->out_fd;
    char *buf = is_err ? d->ebuf : d->obuf;
    size_t *len = is_err ? &d->elen : &d->olen;
    ssize_t r;
    char *nl;

    r = read(*fd, buf + *len, LINE_MAX_LEN - 1 - *len);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) {
        close(*fd);
        *fd = -1;
        r = 0;
    }
    *len += (size_t)r;
    buf[*len] = 0;
    while ((nl = strchr(buf, '\n')) || *len == LINE_MAX_LEN - 1 ||
           (*fd < 0 && *len)) {
        size_t n = nl ? (size_t)(nl - buf) : *len;

        buf[n] = 0;
        if (is_err && n)
            snprintf(d->last_err, sizeof(d->last_err), "%.255s", buf);
        else if (!is_err)
            child_line(e, d, buf);
        n = nl ? n + 1 : n;
        memmove(buf, buf + n, *len - n);
        *len -= n;
        buf[*len] = 0;
    }
}

/* Whether a target still answers (after a migration to it failed). */
static bool target_alive(struct evac_target *t)
{
    uint64_t free_kb;
    char why[256];

    if (!ask_free(t, &free_kb, why, sizeof(why)))
        return true;
    snprintf(t->why, sizeof(t->why), "%s", why);
    return false;
}

/* Place the domains not yet started again, without lost targets. */
static void replan(struct evac *e, unsigned int lost)
{
    unsigned int moved = 0, staying = 0;

    for (unsigned int i = 0; i < e->nd; i++) {
        struct evac_dom *d = &e->d[i];

        d->pd->skip = d->state != D_PLANNED;
        if (d->state != D_PLANNED)
            continue;
        e->pt[d->pd->target].reserved_kb -= d->pd->need_kb;
        e->pt[d->pd->target].reserved_domains--;
        d->pd->target = -1;
    }
    fleet_place(e->pt, e->nt, e->pd, e->nd);
    for (unsigned int k = 0; k < e->nd; k++) {
        struct evac_dom *d = &e->d[e->order[k]];

        if (d->pd->skip)
            continue;
        if (d->pd->target < 0) {
            d->state = D_STAY;
            staying++;
        } else if (d->pd->target != d->planned) {
            moved++;
        }
        emit_plan(e, d, k, true);
    }
    say(e, "Target %s lost (%s): re-planned the remaining domains, %u moved to other targets, %u cannot go anywhere\n",
        e->t[lost].name, e->t[lost].why, moved, staying);
}

static void child_done(struct evac *e, struct evac_dom *d)
{
    struct evac_target *t = &e->t[d->target];
    int st = 0, code;

    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
        ;
    code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 0 && d->have_summary && !strcmp(d->sum_status, "ok")) {
        d->state = D_DONE;
        emit_dom_event(e, d, "done");
        say(e, "%s -> %s: migrated (downtime %lld ms, total %lld ms)\n",
            d->name, t->name, d->downtime_ms, d->total_ms);
        draw_status(e);
        return;
    }
    if (!d->sum_error[0]) {
        if (d->last_err[0])
            snprintf(d->sum_error, sizeof(d->sum_error), "%s", d->last_err);
        else if (code >= 0)
            snprintf(d->sum_error, sizeof(d->sum_error),
                     "xl migrate exited with status %d", code);
        else
            snprintf(d->sum_error, sizeof(d->sum_error),
                     "xl migrate was killed by signal %d",
                     WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    if (code == 3 || !strcmp(d->sum_status, "unresolved")) {
        /* Its memory may be in use on the target: keep the share. */
        d->state = D_UNRESOLVED;
    } else {
        d->state = D_FAILED;
        e->pt[d->target].reserved_kb -= d->pd->need_kb;
        e->pt[d->target].reserved_domains--;
    }
    emit_dom_event(e, d, "failed");
    say(e, "%s -> %s: FAILED: %s; %s\n", d->name, t->name, d->sum_error,
        d->state == D_UNRESOLVED ? "its outcome is unresolved" :
        "it stays on the source");
    if (!t->lost && !target_alive(t)) {
        t->lost = true;
        e->pt[d->target].usable = false;
        if (e->json) {
            struct json_object *o = json_object_new_object();

            emit(o, o && !xlcfg_json_add(o, "event", JSTR("target-lost")) &&
                 !xlcfg_json_add(o, "host", JSTR(t->name)) &&
                 !xlcfg_json_add(o, "error", JSTR(t->why)));
        }
        replan(e, (unsigned int)d->target);
    }
    draw_status(e);
}

static unsigned int nr_running(const struct evac *e)
{
    unsigned int n = 0;

    for (unsigned int i = 0; i < e->nd; i++)
        n += e->d[i].state == D_RUNNING;
    return n;
}

/* Start what may start, largest first, up to --parallel at a time. */
static void start_more(struct evac *e)
{
    unsigned int running = nr_running(e);

    for (unsigned int k = 0; k < e->nd && running < e->parallel; k++) {
        struct evac_dom *d = &e->d[e->order[k]];

        if (d->state != D_PLANNED)
            continue;
        if (interrupted) {
            d->state = D_STAY;
            snprintf(d->pd->reason, sizeof(d->pd->reason),
                     "the evacuation was interrupted");
            e->pt[d->pd->target].reserved_kb -= d->pd->need_kb;
            e->pt[d->pd->target].reserved_domains--;
            continue;
        }
        if (start_one(e, d)) {
            d->target = d->pd->target;
            d->state = D_FAILED;
            e->pt[d->target].reserved_kb -= d->pd->need_kb;
            e->pt[d->target].reserved_domains--;
            emit_dom_event(e, d, "failed");
            continue;
        }
        running++;
    }
}

static void run(struct evac *e)
{
    struct pollfd pfd[2 * MAX_DOMAINS];
    struct evac_dom *who[2 * MAX_DOMAINS];

    for (;;) {
        unsigned int n = 0;

        start_more(e);
        for (unsigned int i = 0; i < e->nd; i++) {
            struct evac_dom *d = &e->d[i];

            if (d->state != D_RUNNING)
                continue;
            if (d->out_fd < 0 && d->err_fd < 0) {
                child_done(e, d);
                continue;
            }
            if (d->out_fd >= 0) {
                pfd[n] = (struct pollfd){ .fd = d->out_fd, .events = POLLIN };
                who[n++] = d;
            }
            if (d->err_fd >= 0) {
                pfd[n] = (struct pollfd){ .fd = d->err_fd, .events = POLLIN };
                who[n++] = d;
            }
        }
        if (!n) {
            start_more(e);
            if (!nr_running(e))
                break;
            continue;
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("evacuate: poll");
            break;
        }
        for (unsigned int k = 0; k < n; k++)
            if (pfd[k].revents)
                child_read(e, who[k], pfd[k].fd == who[k]->err_fd);
    }
    clear_status(e);
}

/* ---- the report ------------------------------------------------------ */

static const char *outcome(const struct evac_dom *d)
{
    switch (d->state) {
    case D_DONE: return "migrated";
    case D_UNRESOLVED: return "unresolved";
    default: return "stayed";
    }
}

static const char *reason_of(const struct evac_dom *d)
{
    if (d->state == D_FAILED || d->state == D_UNRESOLVED)
        return d->sum_error;
    if (d->state == D_STAY)
        return d->pd->reason;
    return NULL;
}

/* Domains still on the source (Domain-0 aside), or -1. */
static int left_on_source(struct evac *e)
{
    xc_domaininfo_t *info = calloc(MAX_DOMAINS, sizeof(*info));
    int n, left = 0;

    if (!info)
        return -1;
    n = xc_domain_getinfolist(e->xch, 0, MAX_DOMAINS, info);
    for (int k = 0; k < n; k++)
        left += info[k].domain != 0;
    free(info);
    return n < 0 ? -1 : left;
}

/* The --json report: the counts, then one object per domain. */
static void emit_report(struct evac *e, bool dry, int rc,
                        unsigned int migrated, unsigned int stayed,
                        unsigned int unresolved, int left)
{
    struct json_object *o = json_object_new_object(), *lost, *doms;
    bool ok;

    ok = o && !xlcfg_json_add(o, "event", JSTR("report")) &&
         !xlcfg_json_add(o, "source", JSTR(e->source_name)) &&
         !xlcfg_json_add(o, "dry_run", JBOOL(dry)) &&
         !xlcfg_json_add(o, "status", JSTR(rc == EXIT_SUCCESS ?
                         (dry ? "would-empty" : "empty") : "not-empty")) &&
         !xlcfg_json_add(o, "exit_status", JINT(rc)) &&
         !xlcfg_json_add(o, dry ? "would_migrate" : "migrated",
                         JU64(migrated)) &&
         !xlcfg_json_add(o, "stayed", JU64(stayed)) &&
         !xlcfg_json_add(o, "unresolved", JU64(unresolved)) &&
         !xlcfg_json_add(o, "left_on_source", JINT(left)) &&
         !xlcfg_json_add(o, "total_time_ms",
                         JU64((now_ns() - e->t0_ns) / 1000000)) &&
         !xlcfg_json_add(o, "lost_targets", lost = json_object_new_array());
    for (unsigned int i = 0; ok && i < e->nt; i++) {
        struct json_object *name;

        if (!e->t[i].lost)
            continue;
        name = JSTR(e->t[i].name);
        ok = name && !json_object_array_add(lost, name);
        if (!ok)
            json_object_put(name);
    }
    ok = ok && !xlcfg_json_add(o, "domains", doms = json_object_new_array());
    for (unsigned int k = 0; ok && k < e->nd; k++) {
        const struct evac_dom *d = &e->d[e->order[k]];
        bool done = d->state == D_DONE;
        int tgt = d->target >= 0 ? d->target : d->pd->target;
        struct json_object *j = json_object_new_object();

        ok = j && !xlcfg_json_add(j, "domain", JSTR(d->name)) &&
             !xlcfg_json_add(j, "domid", JU64(d->pd->domid)) &&
             !xlcfg_json_add(j, "memory_kb", JU64(d->pd->need_kb)) &&
             !xlcfg_json_add(j, "outcome", JSTR(dry ?
                 (d->state == D_PLANNED ? "would-migrate" : "would-stay") :
                 outcome(d))) &&
             !xlcfg_json_add(j, "where", JSTR(done ? e->t[d->target].name :
                 d->state == D_UNRESOLVED ? "unknown" : "source")) &&
             add_str_or_null(j, "target", tgt >= 0 ? e->t[tgt].name : NULL);
        if (ok && done)
            ok = !xlcfg_json_add(j, "downtime_ms", JINT(d->downtime_ms)) &&
                 !xlcfg_json_add(j, "total_time_ms", JINT(d->total_ms));
        if (ok && reason_of(d))
            ok = !xlcfg_json_add(j, "reason", JSTR(reason_of(d)));
        if (ok)
            ok = !json_object_array_add(doms, j);
        if (!ok)
            json_object_put(j);
    }
    emit(o, ok);
}

static int report(struct evac *e, bool dry)
{
    unsigned int migrated = 0, stayed = 0, unresolved = 0;
    int left = dry ? 0 : left_on_source(e), rc;

    for (unsigned int i = 0; i < e->nd; i++) {
        const struct evac_dom *d = &e->d[i];

        migrated += d->state == D_DONE || (dry && d->state == D_PLANNED);
        unresolved += d->state == D_UNRESOLVED;
        stayed += d->state == D_STAY || d->state == D_FAILED;
    }
    if (dry)
        rc = stayed ? EVAC_EXIT_STAYED : EXIT_SUCCESS;
    else if (unresolved)
        rc = EVAC_EXIT_UNRESOLVED;
    else if (left != 0)
        rc = EVAC_EXIT_STAYED;
    else
        rc = EXIT_SUCCESS;

    if (e->json) {
        emit_report(e, dry, rc, migrated, stayed, unresolved, left);
        return rc;
    }
    if (dry) {
        printf("Dry run: nothing was changed.  %u domain%s would move, %u would stay on %s.\n",
               migrated, migrated == 1 ? "" : "s", stayed, e->source_name);
        return rc;
    }
    printf("%-32s %-10s %-20s %9s %9s  %s\n", "Domain", "Outcome", "Where",
           "Down(ms)", "Time(ms)", "Reason");
    for (unsigned int k = 0; k < e->nd; k++) {
        const struct evac_dom *d = &e->d[e->order[k]];

        if (d->state == D_DONE)
            printf("%-32s %-10s %-20s %9lld %9lld\n", d->name, outcome(d),
                   e->t[d->target].name, d->downtime_ms, d->total_ms);
        else
            printf("%-32s %-10s %-20s %9s %9s  %s\n", d->name, outcome(d),
                   d->state == D_UNRESOLVED ? "unknown" : e->source_name,
                   "-", "-", reason_of(d) ? reason_of(d) : "");
    }
    printf("Evacuation of %s: %u migrated, %u stayed, %u unresolved; %d domain%s left on the source (exit status %d).\n",
           e->source_name, migrated, stayed, unresolved, left,
           left == 1 ? "" : "s", rc);
    return rc;
}

/* ---- the command ----------------------------------------------------- */

static int add_tag(const char **v, unsigned int *n, const char *tag)
{
    if (*n >= 64) {
        fprintf(stderr, "evacuate: too many tags (at most 64)\n");
        return -1;
    }
    v[(*n)++] = tag;
    return 0;
}

static void evac_dispose(struct evac *e)
{
    for (unsigned int i = 0; i < e->nt; i++) {
        free(e->t[i].name);
        free(e->t[i].migrate_arg);
    }
    free(e->d);
    free(e->pd);
    free(e->order);
    if (e->have_fleet)
        fleet_dispose(&e->fleet);
}

int main_evacuate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "fleet", required_argument, NULL, 'F' },
        { "to", required_argument, NULL, 'o' },
        { "parallel", required_argument, NULL, 'j' },
        { "dry-run", no_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'J' },
        { "require-tag", required_argument, NULL, 'R' },
        { "exclude-tag", required_argument, NULL, 'X' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static struct evac e;
    const char *fleet_file = NULL;
    char *to = NULL, err[FLEET_ERRLEN], schema[PATH_MAX], *end;
    int opt, rc = EXIT_SUCCESS;

    memset(&e, 0, sizeof(e));
    e.parallel = 2;
    e.t0_ns = now_ns();
    while ((opt = xl_getopt(argc, argv, "F:o:j:nJR:X:h", opts, "evacuate",
                            0, &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'F': fleet_file = optarg; break;
        case 'o': to = optarg; break;
        case 'n': e.dry_run = true; break;
        case 'J': e.json = true; break;
        case 'j':
            e.parallel = (unsigned int)strtoul(optarg, &end, 10);
            if (*end || !e.parallel || e.parallel > 64) {
                fprintf(stderr, "evacuate: --parallel wants 1..64, not \"%s\"\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'R':
            if (add_tag(e.req_tags, &e.cli_filter.nr_require, optarg))
                return EXIT_USAGE;
            break;
        case 'X':
            if (add_tag(e.excl_tags, &e.cli_filter.nr_exclude, optarg))
                return EXIT_USAGE;
            break;
        }
    }
    e.cli_filter.require_tags = e.req_tags;
    e.cli_filter.exclude_tags = e.excl_tags;
    if (argc - optind > 1) {
        help("evacuate");
        return EXIT_USAGE;
    }
    if (!fleet_file && !to) {
        fprintf(stderr, "evacuate: say where the domains go: --fleet FILE or --to HOST,...\n");
        return EXIT_USAGE;
    }
    if (dryrun_only)
        e.dry_run = true;
    e.tty = isatty(2);
    if (fleet_file) {
        if (fleet_load(&e.fleet, fleet_file,
                       fleet_schema_path(schema, sizeof(schema)), err,
                       sizeof(err))) {
            fprintf(stderr, "evacuate: %s\n", err);
            return EXIT_FAILURE;
        }
        e.have_fleet = true;
    }
    rc = EXIT_FAILURE;
    if (choose_hosts(&e, optind < argc ? argv[optind] : NULL, to))
        goto out;
    e.xch = xl_open_host();
    if (list_domains(&e))
        goto out;
    probe_targets(&e);
    if (plan(&e))
        goto out;
    for (unsigned int i = 0; i < e.nt; i++)
        emit_target(&e, i);
    for (unsigned int k = 0; k < e.nd; k++)
        emit_plan(&e, &e.d[e.order[k]], k, false);
    print_plan_table(&e);
    if (e.dry_run) {
        rc = report(&e, true);
        goto out;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    run(&e);
    rc = report(&e, false);
 out:
    evac_dispose(&e);
    return rc;
}
