/* SPDX-License-Identifier: MIT */
/*
 * xl-fleet.c: the fleet inventory of `xl evacuate` (reading, validating,
 * checking) and the placement function that decides where each domain of
 * an evacuated host goes.
 *
 * The inventory is read with libxml2 and validated against the RELAX NG
 * schema shipped as share/fleet.rng before anything in it is used, so the
 * code below can trust its shape (required attributes present, enumerated
 * values valid) and only checks what the schema cannot: unique host names,
 * hosts named by rules, readable TLS files.  Every error names the file,
 * the line and the element, from libxml2's own error record for schema
 * and syntax errors and from the node's line otherwise.
 *
 * Placement (fleet_place) is pure: no I/O, same inputs, same plan.  Its
 * invariant: for every target, reserved_kb never exceeds what it
 * reported free (nor its max-memory), and reserved_domains never exceeds
 * its max-domains, counting every domain placed on it in this run and in
 * earlier runs (the caller's reservations for migrations in flight).
 *
 * Nothing here prints; errors come back in the caller's buffer.
 * Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xmlversion.h>
#include <libxml/relaxng.h>
#include <libxml/xmlerror.h>

#include "common/path.h"
#include "common/size.h"
#include "xl-fleet.h"

#ifndef FERRY_DATADIR
#define FERRY_DATADIR "/usr/local/share/ferry"
#endif
#ifndef FERRY_BINDIR
#define FERRY_BINDIR "/usr/local/bin"
#endif

/* $FERRY_DATADIR's, else that of the install xl runs from (see
 * common/path.h), else the configured data dir's. */
const char *fleet_schema_path(char *buf, size_t len)
{
    const char *dir = getenv("FERRY_DATADIR");

    if (!(dir && *dir) &&
        ferry_relocate(FERRY_BINDIR, FERRY_DATADIR "/fleet.rng", buf, len) &&
        access(buf, R_OK) == 0)
        return buf;
    snprintf(buf, len, "%s/fleet.rng", dir && *dir ? dir : FERRY_DATADIR);
    return buf;
}

const char *fleet_transport_name(enum fleet_transport t)
{
    switch (t) {
    case FLEET_LOCAL: return "local";
    case FLEET_SSH: return "ssh";
    case FLEET_TCP: return "tcp";
    case FLEET_TLS: return "tls";
    }
    return "?";
}

/* ---- errors ---------------------------------------------------------- */

struct load_ctx {
    const char *file;
    char *text;         /* the file's bytes, to find where tags start */
    char *err;
    size_t errlen;
    bool have_err;
};

/*
 * libxml2 numbers a node with the line where its start tag ends; a user
 * looks for the line where it starts.  Search back from that line for
 * "<elem" (followed by a blank, '/' or '>') and return its line.
 */
static int start_line(const struct load_ctx *c, int line, const char *elem)
{
    size_t elen = strlen(elem);
    const char *end, *p;
    int l = 1;

    if (!c->text || line <= 0)
        return line;
    for (end = c->text; *end && l <= line; end++)
        l += *end == '\n';
    for (p = end; p >= c->text; p--) {
        if (*p == '<' && !strncmp(p + 1, elem, elen) &&
            strchr(" \t\r\n/>", p[1 + elen])) {
            int n = 1;

            for (const char *q = c->text; q < p; q++)
                n += *q == '\n';
            return n;
        }
    }
    return line;
}

static void set_err(struct load_ctx *c, int line, const char *elem,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The first error wins: later ones are usually its consequences. */
static void set_err(struct load_ctx *c, int line, const char *elem,
                    const char *fmt, ...)
{
    char msg[FLEET_ERRLEN];
    va_list ap;

    if (c->have_err || !c->err)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0 && elem)
        snprintf(c->err, c->errlen, "%s:%d: element <%s>: %s", c->file,
                 start_line(c, line, elem), elem, msg);
    else if (line > 0)
        snprintf(c->err, c->errlen, "%s:%d: %s", c->file, line, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", c->file, msg);
    c->have_err = true;
}

/* libxml2 2.12 made the error record const in its callbacks. */
#if LIBXML_VERSION >= 21200
typedef const xmlError *xml_error_ptr;
#else
typedef xmlError *xml_error_ptr;
#endif

/*
 * libxml2 says only "failed to validate content" when no branch of the
 * transport choice matched a <host>; say which transports exist and what
 * each needs.
 */
static const char *host_hint(const xmlNode *node, const char *msg)
{
    static char hint[200];
    xmlChar *t;

    if (strcmp((const char *)node->name, "host") ||
        !strstr(msg, "failed to validate content"))
        return "";
    t = xmlGetProp(node, (const xmlChar *)"transport");
    if (!t || (strcmp((char *)t, "local") && strcmp((char *)t, "ssh") &&
               strcmp((char *)t, "tcp") && strcmp((char *)t, "tls")))
        snprintf(hint, sizeof(hint),
                 " (transport \"%.40s\" is not one of local, ssh, tcp, tls)",
                 t ? (const char *)t : "");
    else
        snprintf(hint, sizeof(hint),
                 " (check the attributes and children a %s host takes, "
                 "see ferry-fleet(5))", (const char *)t);
    xmlFree(t);
    return hint;
}

/* libxml2's structured errors (syntax and schema) into set_err. */
static void xml_error(void *arg, xml_error_ptr e)
{
    struct load_ctx *c = arg;
    const xmlNode *node = e->node;
    char msg[FLEET_ERRLEN];
    size_t n;
    int line = e->line;

    snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "error");
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = 0;
    if (node && node->type == XML_ELEMENT_NODE) {
        if (line <= 0)
            line = (int)xmlGetLineNo(node);
        set_err(c, line, (const char *)node->name, "%s%s", msg,
                host_hint(node, msg));
    } else if (e->domain == XML_FROM_RELAXNGV) {
        set_err(c, line, NULL, "schema violation: %s", msg);
    } else {
        set_err(c, line, NULL, "%s", msg);
    }
}

/* ---- small helpers --------------------------------------------------- */

static void strv_free(struct fleet_strv *s)
{
    for (unsigned int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* Split a whitespace-separated list (as the schema's <list>). */
static int strv_split(struct fleet_strv *s, const char *text)
{
    const char *p = text;

    while (p && *p) {
        size_t len;
        char **nv;

        p += strspn(p, " \t\r\n");
        len = strcspn(p, " \t\r\n");
        if (!len)
            break;
        nv = realloc(s->v, (s->n + 2) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->v[s->n] = strndup(p, len);
        if (!s->v[s->n])
            return -ENOMEM;
        s->v[++s->n] = NULL;
        p += len;
    }
    return 0;
}

bool fleet_has_tag(const struct fleet_strv *tags, const char *tag)
{
    for (unsigned int i = 0; i < tags->n; i++)
        if (!strcmp(tags->v[i], tag))
            return true;
    return false;
}

/* An attribute as a malloc'd C string (NULL if absent). */
static char *prop(xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    char *s;

    if (!v)
        return NULL;
    s = strdup((const char *)v);
    xmlFree(v);
    return s;
}

/* A path relative to the inventory's directory, made absolute. */
static char *resolve_path(const char *file, const char *path)
{
    const char *slash;
    char *out = NULL;

    if (!path)
        return NULL;
    if (path[0] == '/')
        return strdup(path);
    slash = strrchr(file, '/');
    if (!slash)
        return strdup(path);
    if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, path) < 0)
        return NULL;
    return out;
}

/* Whether a file can be opened and read (a directory cannot). */
static int readable(const char *path)
{
    char c;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (read(fd, &c, 1) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* ---- reading the validated document ---------------------------------- */

static int read_host(struct load_ctx *c, struct fleet *f, xmlNode *n)
{
    struct fleet_host *h = &f->hosts[f->nr_hosts];
    char *transport = prop(n, "transport");
    char *v = NULL;
    int rc = -ENOMEM;

    memset(h, 0, sizeof(*h));
    f->nr_hosts++;
    h->line = start_line(c, (int)xmlGetLineNo(n), "host");
    h->name = prop(n, "name");
    h->address = prop(n, "address");
    if (!h->name || !h->address || !transport)
        goto out;
    if (!strcmp(transport, "local"))
        h->transport = FLEET_LOCAL;
    else if (!strcmp(transport, "ssh"))
        h->transport = FLEET_SSH;
    else if (!strcmp(transport, "tcp"))
        h->transport = FLEET_TCP;
    else
        h->transport = FLEET_TLS;
    if (h->transport == FLEET_LOCAL) {
        char *abs = resolve_path(f->file, h->address);

        if (!abs)
            goto out;
        free(h->address);
        h->address = abs;
        h->run_dir = strdup(abs);
        if (!h->run_dir)
            goto out;
    } else {
        v = prop(n, "run-dir");
        h->run_dir = resolve_path(f->file, v);
        if (v && !h->run_dir)
            goto out;
        free(v);
        v = NULL;
    }
    h->ssh_command = prop(n, "ssh-command");
    v = prop(n, "max-memory");
    if (v) {
        /* The schema checks the syntax; the size's value is checked
         * here, by the parser of every size ferry reads. */
        uint64_t bytes;
        int r = ferry_parse_size(v, SIZE_DEFAULT_MIB, &bytes);

        if (!r && bytes % 1024)
            r = -EINVAL;
        if (r) {
            set_err(c, h->line, "host", "max-memory \"%.64s\" %s", v,
                    r == -ERANGE ? ferry_size_error(r) :
                    "is not a whole number of KiB");
            rc = r;
            goto out;           /* the first error wins, so this one */
        }
        h->max_memory_kb = bytes >> 10;
    }
    free(v);
    v = prop(n, "max-domains");
    if (v)
        h->max_domains = (unsigned int)strtoul(v, NULL, 10);
    free(v);
    v = prop(n, "tags");
    if (v && strv_split(&h->tags, v))
        goto out;
    rc = 0;
 out:
    if (rc)
        set_err(c, h->line, "host", "out of memory");
    free(v);
    free(transport);
    return rc;
}

/* The <tls> child of a tls host: three files, each readable. */
static int read_tls(struct load_ctx *c, struct fleet *f,
                    struct fleet_host *h, xmlNode *n)
{
    static const char *const names[] = { "cert", "key", "ca" };
    char **dst[] = { &h->tls_cert, &h->tls_key, &h->tls_ca };
    int line = (int)xmlGetLineNo(n);

    for (int i = 0; i < 3; i++) {
        char *v = prop(n, names[i]);
        int rc;

        *dst[i] = resolve_path(f->file, v);
        free(v);
        if (!*dst[i]) {
            set_err(c, line, "tls", "out of memory");
            return -ENOMEM;
        }
        rc = readable(*dst[i]);
        if (rc) {
            set_err(c, line, "tls", "host \"%s\": cannot read %s file %s: %s",
                    h->name, names[i], *dst[i], strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int read_rule(struct load_ctx *c, struct fleet *f, xmlNode *n)
{
    struct fleet_rule *r = &f->rules[f->nr_rules];
    char *v = NULL;
    int rc = -ENOMEM;

    memset(r, 0, sizeof(*r));
    f->nr_rules++;
    r->line = start_line(c, (int)xmlGetLineNo(n), "rule");
    r->pattern = prop(n, "domains");
    if (!r->pattern)
        goto out;
    v = prop(n, "evacuate");
    r->evacuate = !v || strcmp(v, "no");
    free(v);
    v = prop(n, "hosts");
    if (v && strv_split(&r->hosts, v))
        goto out;
    free(v);
    v = prop(n, "require-tags");
    if (v && strv_split(&r->require_tags, v))
        goto out;
    free(v);
    v = prop(n, "exclude-tags");
    if (v && strv_split(&r->exclude_tags, v))
        goto out;
    rc = 0;
 out:
    if (rc)
        set_err(c, r->line, "rule", "out of memory");
    free(v);
    return rc;
}

/* What the schema cannot say: unique names, rules name real hosts. */
static int check_names(struct load_ctx *c, const struct fleet *f)
{
    for (unsigned int i = 0; i < f->nr_hosts; i++)
        for (unsigned int j = 0; j < i; j++)
            if (!strcmp(f->hosts[i].name, f->hosts[j].name)) {
                set_err(c, f->hosts[i].line, "host",
                        "duplicate host \"%s\" (first defined at line %d)",
                        f->hosts[i].name, f->hosts[j].line);
                return -EINVAL;
            }
    for (unsigned int i = 0; i < f->nr_rules; i++) {
        const struct fleet_rule *r = &f->rules[i];

        for (unsigned int k = 0; k < r->hosts.n; k++)
            if (!fleet_find(f, r->hosts.v[k])) {
                set_err(c, r->line, "rule",
                        "unknown host \"%s\" in hosts (no <host> has that name)",
                        r->hosts.v[k]);
                return -EINVAL;
            }
    }
    return 0;
}

static int read_fleet(struct load_ctx *c, struct fleet *f, xmlNode *root)
{
    unsigned int nh = 0, nr = 0;
    int rc;

    for (xmlNode *n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)n->name, "host"))
            nh++;
        else
            nr++;
    }
    f->hosts = calloc(nh ? nh : 1, sizeof(*f->hosts));
    f->rules = calloc(nr ? nr : 1, sizeof(*f->rules));
    if (!f->hosts || !f->rules) {
        set_err(c, 0, NULL, "out of memory");
        return -ENOMEM;
    }
    for (xmlNode *n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)n->name, "host")) {
            rc = read_host(c, f, n);
            if (rc)
                return rc;
            for (xmlNode *k = n->children; k; k = k->next)
                if (k->type == XML_ELEMENT_NODE) {
                    rc = read_tls(c, f, &f->hosts[f->nr_hosts - 1], k);
                    if (rc)
                        return rc;
                }
        } else {
            rc = read_rule(c, f, n);
            if (rc)
                return rc;
        }
    }
    return check_names(c, f);
}

static int validate(struct load_ctx *c, xmlDoc *doc, const char *schema)
{
    xmlRelaxNGParserCtxtPtr pctx = NULL;
    xmlRelaxNGPtr rng = NULL;
    xmlRelaxNGValidCtxtPtr vctx = NULL;
    int rc = -EINVAL;

    if (access(schema, R_OK)) {
        rc = -errno;
        snprintf(c->err, c->errlen,
                 "cannot read the fleet schema %s: %s (set FERRY_DATADIR)",
                 schema, strerror(errno));
        c->have_err = true;
        goto out;
    }
    pctx = xmlRelaxNGNewParserCtxt(schema);
    if (pctx)
        rng = xmlRelaxNGParse(pctx);
    if (!rng) {
        snprintf(c->err, c->errlen, "the fleet schema %s is not valid",
                 schema);
        c->have_err = true;
        goto out;
    }
    vctx = xmlRelaxNGNewValidCtxt(rng);
    if (!vctx) {
        rc = -ENOMEM;
        goto out;
    }
    xmlRelaxNGSetValidStructuredErrors(vctx, xml_error, c);
    if (xmlRelaxNGValidateDoc(vctx, doc) == 0)
        rc = 0;
    else
        set_err(c, 0, NULL, "does not follow the fleet schema %s", schema);
 out:
    xmlRelaxNGFreeValidCtxt(vctx);
    xmlRelaxNGFree(rng);
    xmlRelaxNGFreeParserCtxt(pctx);
    return rc;
}

/* The whole file, NUL-terminated (NULL on failure). */
static char *read_text(const char *file)
{
    FILE *fp = fopen(file, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, r;

    if (!fp)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = len + 65536);

            if (!nb) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + len, 1, 4096, fp);
        len += r;
    } while (r > 0);
    fclose(fp);
    buf[len] = 0;
    return buf;
}

int fleet_load(struct fleet *f, const char *file, const char *schema,
               char *err, size_t errlen)
{
    struct load_ctx c = { .file = file, .err = err, .errlen = errlen };
    xmlParserCtxtPtr pctx = NULL;
    xmlDoc *doc = NULL;
    int rc = -EINVAL;

    memset(f, 0, sizeof(*f));
    if (err && errlen)
        err[0] = 0;
    f->file = strdup(file);
    if (!f->file)
        return -ENOMEM;
    if (access(file, R_OK)) {
        rc = -errno;
        set_err(&c, 0, NULL, "cannot read the fleet inventory: %s",
                strerror(errno));
        goto out;
    }
    c.text = read_text(file);
    pctx = xmlNewParserCtxt();
    if (!pctx || !c.text) {
        rc = -ENOMEM;
        goto out;
    }
    /* Thread-local in libxml2; xl reads one inventory at a time. */
    xmlSetStructuredErrorFunc(&c, xml_error);
    doc = xmlCtxtReadFile(pctx, file, NULL, XML_PARSE_NONET);
    xmlSetStructuredErrorFunc(NULL, NULL);
    if (!doc) {
        set_err(&c, 0, NULL, "not a well-formed XML document");
        goto out;
    }
    rc = validate(&c, doc, schema);
    if (rc)
        goto out;
    rc = read_fleet(&c, f, xmlDocGetRootElement(doc));
 out:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(pctx);
    free(c.text);
    if (rc)
        fleet_dispose(f);
    return rc;
}

void fleet_dispose(struct fleet *f)
{
    for (unsigned int i = 0; i < f->nr_hosts; i++) {
        struct fleet_host *h = &f->hosts[i];

        free(h->name);
        free(h->address);
        free(h->run_dir);
        free(h->ssh_command);
        free(h->tls_cert);
        free(h->tls_key);
        free(h->tls_ca);
        strv_free(&h->tags);
    }
    for (unsigned int i = 0; i < f->nr_rules; i++) {
        struct fleet_rule *r = &f->rules[i];

        free(r->pattern);
        strv_free(&r->hosts);
        strv_free(&r->require_tags);
        strv_free(&r->exclude_tags);
    }
    free(f->hosts);
    free(f->rules);
    free(f->file);
    memset(f, 0, sizeof(*f));
}

const struct fleet_host *fleet_find(const struct fleet *f, const char *name)
{
    for (unsigned int i = 0; i < f->nr_hosts; i++)
        if (!strcmp(f->hosts[i].name, name))
            return &f->hosts[i];
    return NULL;
}

const struct fleet_rule *fleet_rule_for(const struct fleet *f,
                                        const char *domain)
{
    for (unsigned int i = 0; i < f->nr_rules; i++)
        if (!fnmatch(f->rules[i].pattern, domain, 0))
            return &f->rules[i];
    return NULL;
}

char *fleet_migrate_target(const struct fleet_host *h)
{
    char *s = NULL;
    int r = -1;

    switch (h->transport) {
    case FLEET_LOCAL: r = asprintf(&s, "local:%s", h->address); break;
    case FLEET_TCP: r = asprintf(&s, "tcp://%s", h->address); break;
    case FLEET_TLS: r = asprintf(&s, "tls://%s", h->address); break;
    case FLEET_SSH: r = asprintf(&s, "%s", h->address); break;
    }
    return r < 0 ? NULL : s;
}

/* ---- placement ------------------------------------------------------- */

static bool in_list(const char *const *v, unsigned int n, const char *s)
{
    for (unsigned int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

static bool filter_allows(const struct place_filter *pf,
                          const struct place_target *t)
{
    if (!pf)
        return true;
    if (pf->nr_hosts && !in_list(pf->hosts, pf->nr_hosts, t->name))
        return false;
    for (unsigned int i = 0; i < pf->nr_require; i++)
        if (!in_list(t->tags, t->nr_tags, pf->require_tags[i]))
            return false;
    for (unsigned int i = 0; i < pf->nr_exclude; i++)
        if (in_list(t->tags, t->nr_tags, pf->exclude_tags[i]))
            return false;
    return true;
}

/* What the target can still take, in KiB. */
static uint64_t room_kb(const struct place_target *t)
{
    uint64_t room = t->free_kb > t->reserved_kb ?
                    t->free_kb - t->reserved_kb : 0;

    if (t->max_memory_kb) {
        uint64_t cap = t->max_memory_kb > t->reserved_kb ?
                       t->max_memory_kb - t->reserved_kb : 0;

        if (cap < room)
            room = cap;
    }
    return room;
}

void fleet_place_order(const struct place_domain *d, unsigned int nd,
                       unsigned int *order)
{
    /* Insertion sort: stable, and nd is at most a host's domains. */
    for (unsigned int i = 0; i < nd; i++) {
        unsigned int j = i;

        while (j > 0) {
            const struct place_domain *a = &d[order[j - 1]], *b = &d[i];

            if (a->need_kb > b->need_kb ||
                (a->need_kb == b->need_kb && a->domid <= b->domid))
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

/* Choose d's target, or say why there is none. */
static void place_one(struct place_target *t, unsigned int nt,
                      struct place_domain *d)
{
    unsigned int usable = 0, allowed = 0, counted = 0;
    uint64_t best_room = 0, most_room = 0;
    int best = -1;

    for (unsigned int i = 0; i < nt; i++) {
        uint64_t room;

        if (!t[i].usable)
            continue;
        usable++;
        if (!filter_allows(d->filter[0], &t[i]) ||
            !filter_allows(d->filter[1], &t[i]))
            continue;
        allowed++;
        if (t[i].max_domains && t[i].reserved_domains >= t[i].max_domains)
            continue;
        counted++;
        room = room_kb(&t[i]);
        if (room > most_room)
            most_room = room;
        if (room < d->need_kb)
            continue;
        if (best < 0 || room - d->need_kb > best_room) {
            best = (int)i;
            best_room = room - d->need_kb;
        }
    }
    d->target = best;
    if (best >= 0) {
        t[best].reserved_kb += d->need_kb;
        t[best].reserved_domains++;
        d->reason[0] = 0;
    } else if (!usable) {
        snprintf(d->reason, sizeof(d->reason), "no reachable target");
    } else if (!allowed) {
        snprintf(d->reason, sizeof(d->reason),
                 "no reachable target matches its placement rule");
    } else if (!counted) {
        snprintf(d->reason, sizeof(d->reason),
                 "every allowed target has reached its max-domains");
    } else {
        snprintf(d->reason, sizeof(d->reason),
                 "not enough memory on any target: needs %llu MiB, "
                 "the most room left is %llu MiB",
                 (unsigned long long)((d->need_kb + 1023) >> 10),
                 (unsigned long long)(most_room >> 10));
    }
}

int fleet_place(struct place_target *t, unsigned int nt,
                struct place_domain *d, unsigned int nd)
{
    unsigned int *order = calloc(nd ? nd : 1, sizeof(*order));

    if (!order)
        return -ENOMEM;
    fleet_place_order(d, nd, order);
    for (unsigned int k = 0; k < nd; k++) {
        struct place_domain *x = &d[order[k]];

        if (x->skip)
            continue;
        if (x->stay_reason) {
            x->target = -1;
            snprintf(x->reason, sizeof(x->reason), "%s", x->stay_reason);
            continue;
        }
        place_one(t, nt, x);
    }
    free(order);
    return 0;
}
