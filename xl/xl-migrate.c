/* SPDX-License-Identifier: MIT */
/*
 * xl migrate, xl migrate-receive and xl migrate-resolve: live migration
 * of a PV domain between two ferry hosts (Xen: tools/xl/xl_migrate.c).
 *
 * The sender (S) and the receiver (R) speak Xen's handshake over a
 * channel of xl-transport.h: R's banner; ferry's preamble line and R's
 * answer (so that a domain that cannot fit, or whose name or uuid is
 * taken on R, is refused before any page moves); the save stream, live,
 * ending with ferry's digest trailer; R's "ready"; S's "go"; R's report
 * and status byte, then a ferry-stats line.  R restores into a paused
 * domain named "<name>--incoming" and commits only on "go", by a
 * compare-and-swap rename to "<name>" in its hypervisor
 * (xc_domain_rename); an abort goes through the same rename (to
 * "<name>--aborted"), so exactly one of them wins.
 *
 * The invariant is that the domain runs on exactly one host.  Before S
 * has written "go", every failure resumes the domain on S (exit 1).
 * After it, S does not guess: the report decides, or when the link broke
 * a "resolve" exchange on a new channel asks R's hypervisor which of
 * commit and abort won (forcing the abort if neither has yet).  If R
 * cannot be reached, S leaves the domain suspended as
 * "<name>--migratedaway" and exits 3; xl migrate-resolve finishes it.
 *
 * R keeps the restore engine's builder session open until "go": ferry-hv
 * destroys the incoming domain if that session closes first, so a
 * receiver that dies or is killed before "go" leaves nothing behind.  On
 * "go" R declares the build done before it commits, so that a committed
 * domain never dies with R.
 *
 * R parses the stream in a confined child (xl-sandbox.c): R itself reads
 * the channel, forwards the plain stream to the child, and speaks the
 * handshake and commits once the child has reported the domain it built.
 *
 * FERRY_MIGRATE_FAULT=<side>:<point>[:<action>] injects failures for the
 * tests (see man/xl.1).  Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <json-c/json.h>

#include "common/size.h"
#include "xl.h"
#include "xl-cfg.h"
#include "xl-progress.h"
#include "xl-sandbox.h"
#include "xl-transport.h"
#include "../saverestore/sr.h"

/* Xen's handshake messages (tools/xl/xl.h).  The banner is sent without
 * its NUL, the others with it. */
static const char banner[] =
    "xl migration receiver ready, send binary domain data.\n";
static const char msg_ready[] = "domain received, ready to unpause";
static const char msg_go[] = "domain is yours, you are cleared to unpause";
static const char msg_report[] = "my copy unpause results are as follows";

#define BANNER_LEN (sizeof(banner) - 1)
#define PREAMBLE_TAG "ferry-migrate "
#define PREAMBLE_TAG_LEN (sizeof(PREAMBLE_TAG) - 1)
#define PREAMBLE_MAX 4096
#define RESOLVE_TIMEOUT_S 30
#define RESOLVE_IO_TIMEOUT_MS 10000

#define EXIT_UNRESOLVED 3

/* The token naming one migration: given to the admitted sender, needed by
 * a resolve to act on that migration's incoming domain. */
#define TOKEN_LEN 16
#define TOKEN_HEX (2 * TOKEN_LEN)

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * Test hooks: FERRY_MIGRATE_FAULT=<side>:<point>[:<action>]
 * ------------------------------------------------------------------------ */

static struct {
    bool set;
    char side[8];
    char point[16];
    char action[8];
} fault;

static void fault_parse(void)
{
    const char *v = getenv("FERRY_MIGRATE_FAULT");

    if (!v || !*v)
        return;
    if (sscanf(v, "%7[a-z]:%15[a-z-]:%7[a-z]", fault.side, fault.point,
               fault.action) < 2) {
        fprintf(stderr, "FERRY_MIGRATE_FAULT=%s: expected "
                "<side>:<point>[:<action>]\n", v);
        return;
    }
    if (!fault.action[0])
        strcpy(fault.action, "exit");
    fault.set = true;
}

/*
 * At a fault point: exit or stop there if the hook names it, and return
 * true if it asks for an injected failure ("fail").  The "stop" action
 * names our pid first, so that a test can find and kill us.
 */
static bool fault_hit(const char *side, const char *point)
{
    if (!fault.set || strcmp(fault.side, side) || strcmp(fault.point, point))
        return false;
    fault.set = false;          /* each point fires once */
    if (!strcmp(fault.action, "fail")) {
        fprintf(stderr, "ferry-migrate fault %s:%s: failing\n", side, point);
        return true;
    }
    if (!strcmp(fault.action, "stop")) {
        fprintf(stderr, "ferry-migrate fault %s:%s: stopping (pid %ld)\n",
                side, point, (long)getpid());
        fflush(stderr);
        raise(SIGSTOP);
        return false;
    }
    fprintf(stderr, "ferry-migrate fault %s:%s: exiting\n", side, point);
    fflush(stderr);
    _exit(9);
}

/* ------------------------------------------------------------------------
 * One-line JSON objects (json-c): the protocol's answers and --json
 * ------------------------------------------------------------------------ */

/*
 * "PREFIX <obj>\n" into line, then release obj.  obj may be NULL, and ok
 * false, after a failed allocation: -ENOMEM.  -E2BIG if it does not fit.
 */
static int json_line(char *line, size_t len, const char *prefix,
                     struct json_object *obj, bool ok)
{
    const char *s = ok && obj ? xlcfg_json_line(obj) : NULL;
    int n = s ? snprintf(line, len, "%s%s\n", prefix, s) : -1;

    json_object_put(obj);
    if (!s)
        return -ENOMEM;
    return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}

/* Print obj on one line of stdout (--json), then release it. */
static void json_print(struct json_object *obj, bool ok)
{
    const char *s = ok && obj ? xlcfg_json_line(obj) : NULL;

    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "migrate: out of memory for a --json event\n");
    fflush(stdout);
    json_object_put(obj);
}

#define JSTR(s) json_object_new_string(s)
#define JU64(v) json_object_new_uint64(v)
#define JBOOL(v) json_object_new_boolean(v)

/* ------------------------------------------------------------------------
 * The preamble: `ferry-migrate 1 <json>\n`
 * ------------------------------------------------------------------------ */

struct preamble {
    char op[16];                /* "migrate" or "resolve" */
    char name[XC_DOMAIN_NAME_MAX];
    char uuid[40];              /* canonical text form */
    uint64_t max_memkb;
    uint64_t max_vcpus;
    bool paused, monitor, debug;
    char token[TOKEN_HEX + 1];  /* resolve: the migration's; "" if none */
};

static int preamble_write(struct sr_io *io, const struct preamble *pre)
{
    struct json_object *o = json_object_new_object();
    char line[PREAMBLE_MAX];
    bool ok;
    int rc;

    ok = o && !xlcfg_json_add(o, "op", JSTR(pre->op)) &&
         !xlcfg_json_add(o, "name", JSTR(pre->name)) &&
         !xlcfg_json_add(o, "uuid", JSTR(pre->uuid)) &&
         !xlcfg_json_add(o, "max_memkb", JU64(pre->max_memkb)) &&
         !xlcfg_json_add(o, "max_vcpus", JU64(pre->max_vcpus)) &&
         !xlcfg_json_add(o, "paused", JBOOL(pre->paused)) &&
         !xlcfg_json_add(o, "monitor", JBOOL(pre->monitor)) &&
         !xlcfg_json_add(o, "debug", JBOOL(pre->debug)) &&
         (!pre->token[0] || !xlcfg_json_add(o, "token", JSTR(pre->token)));
    rc = json_line(line, sizeof(line), PREAMBLE_TAG "1 ", o, ok);
    if (rc)
        return rc;
    return sr_io_write(io, line, strlen(line));
}

/*
 * A string member no longer than max - 1 bytes into out.  The receiver
 * reads what a sender sent: lengths are checked before copying.
 */
static int preamble_string(struct json_object *obj, const char *key,
                           char *out, size_t max)
{
    const char *s;

    if (xlcfg_json_get_string(obj, key, &s) || !*s || strlen(s) >= max)
        return -EINVAL;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* The line after PREAMBLE_TAG: "1 <json>".  Returns 0 or a message.
 * Members a later sender may add are ignored. */
static const char *preamble_parse(const char *line, struct preamble *pre)
{
    struct json_object *obj = NULL;
    const char *bad = NULL;
    uuid_t u;

    memset(pre, 0, sizeof(*pre));
    if (strncmp(line, "1 ", 2))
        return "unsupported preamble version";
    if (xlcfg_json_parse("preamble", line + 2, strlen(line + 2), &obj,
                         NULL) ||
        !json_object_is_type(obj, json_type_object))
        bad = "preamble: not a JSON object";
    else if (preamble_string(obj, "op", pre->op, sizeof(pre->op)) ||
             (strcmp(pre->op, "migrate") && strcmp(pre->op, "resolve")))
        bad = "preamble: bad or missing \"op\"";
    else if (preamble_string(obj, "name", pre->name, sizeof(pre->name)))
        bad = "preamble: bad or missing \"name\"";
    else if (preamble_string(obj, "uuid", pre->uuid, sizeof(pre->uuid)) ||
             uuid_parse(pre->uuid, u))
        bad = "preamble: bad or missing \"uuid\"";
    else if (xlcfg_json_get_u64(obj, "max_memkb", &pre->max_memkb) ||
             xlcfg_json_get_u64(obj, "max_vcpus", &pre->max_vcpus))
        bad = "preamble: bad or missing \"max_memkb\" or \"max_vcpus\"";
    else if (xlcfg_json_get_bool(obj, "paused", &pre->paused) ||
             xlcfg_json_get_bool(obj, "monitor", &pre->monitor) ||
             xlcfg_json_get_bool(obj, "debug", &pre->debug))
        bad = "preamble: bad or missing \"paused\", \"monitor\" or"
              " \"debug\"";
    else if (json_object_object_get_ex(obj, "token", NULL) &&
             preamble_string(obj, "token", pre->token, sizeof(pre->token)))
        bad = "preamble: bad \"token\"";
    json_object_put(obj);
    return bad;
}

/* ------------------------------------------------------------------------
 * Migration tokens: <run dir>/{incoming,outgoing}/<uuid>, mode 0600
 * ------------------------------------------------------------------------ */

static char *token_path(const char *dir, const char *uuid, bool mk)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s", run_dir, dir) < 0)
        return NULL;
    if (mk)
        mkdir(p, 0700);
    free(p);
    if (asprintf(&p, "%s/%s/%s", run_dir, dir, uuid) < 0)
        return NULL;
    return p;
}

static int token_save(const char *dir, const char *uuid, const char *token)
{
    char *p = token_path(dir, uuid, true);
    int fd, rc = -1;

    if (!p)
        return -1;
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (dprintf(fd, "%s\n", token) == TOKEN_HEX + 1)
            rc = 0;
        if (close(fd))
            rc = -1;
    }
    if (rc)
        fprintf(stderr, "cannot write the migration token %s: %s\n", p,
                strerror(errno));
    free(p);
    return rc;
}

/* The token saved for uuid: 0, or -1 (none) with token "". */
static int token_load(const char *dir, const char *uuid,
                      char token[TOKEN_HEX + 1])
{
    char *p = token_path(dir, uuid, false), buf[TOKEN_HEX + 2] = "";
    FILE *f = p ? fopen(p, "re") : NULL;
    int rc = -1;

    token[0] = '\0';
    if (f && fgets(buf, sizeof(buf), f) &&
        strspn(buf, "0123456789abcdef") == TOKEN_HEX) {
        memcpy(token, buf, TOKEN_HEX);
        token[TOKEN_HEX] = '\0';
        rc = 0;
    }
    if (f)
        fclose(f);
    free(p);
    return rc;
}

static void token_drop(const char *dir, const char *uuid)
{
    char *p = token_path(dir, uuid, false);

    if (p)
        unlink(p);
    free(p);
}

/* ------------------------------------------------------------------------
 * Helpers for both sides
 * ------------------------------------------------------------------------ */

/* Read exactly msg (len bytes); on a mismatch or error say which. */
static int read_fixed(struct xl_chan *ch, const void *msg, size_t len,
                      const char *what, bool sender)
{
    const char *stream = sender ? "migration receiver stream"
                                : "migration stream";
    char buf[64];
    int rc = sr_io_read(xl_chan_io(ch), buf, len);

    if (rc) {
        fprintf(stderr, "%s: reading %s: %s\n", stream, what,
                sr_io_errmsg(xl_chan_io(ch))[0] ?
                sr_io_errmsg(xl_chan_io(ch)) : strerror(-rc));
        return rc;
    }
    if (memcmp(buf, msg, len)) {
        fprintf(stderr, "%s contained unexpected data instead of %s\n",
                stream, what);
        if (sender && xl_chan_rune(ch))
            fprintf(stderr, "(command run was: %s )\n", xl_chan_rune(ch));
        return -EPROTO;
    }
    return 0;
}

/* The domain with this uuid on the host (any name), or -1. */
static int find_by_uuid(xc_interface *xch, const uint8_t uuid[16],
                        uint32_t *domid, char *name, size_t name_len)
{
    xc_domaininfo_t info[1024];
    int n = xc_domain_getinfolist(xch, 1, 1024, info);

    for (int i = 0; i < n; i++) {
        if (memcmp(info[i].handle, uuid, 16))
            continue;
        *domid = info[i].domain;
        name[0] = '\0';
        xc_domain_get_meta(xch, info[i].domain, name, name_len, NULL, NULL);
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * The receiver: xl migrate-receive
 * ------------------------------------------------------------------------ */

struct recv_opts {
    bool debug, monitor, paused;
    int fd;
    struct xl_tls_files tls;
    bool tls_given;
    struct xl_auth auth;
    int idle_ms;
};

/*
 * A resolve may act only on its own migration: when this host holds a
 * token for the uuid, the resolve must carry it.  NULL, or why not.
 */
static const char *resolve_check(const struct preamble *pre, bool *act)
{
    char ours[TOKEN_HEX + 1];

    *act = false;
    if (token_load("incoming", pre->uuid, ours))
        return NULL;
    if (strlen(pre->token) != TOKEN_HEX ||
        CRYPTO_memcmp(ours, pre->token, TOKEN_HEX))
        return "resolve refused: the request does not carry the token of"
               " this domain's migration";
    *act = true;
    return NULL;
}

/*
 * Answer a resolve: which of commit and abort won for this uuid.  With
 * act (the resolve carries the migration's token) force the abort if
 * neither has won yet; without, answer from what is here, touching
 * nothing: a paused domain stays paused, an unnamed one (a restore in
 * progress) stays.
 */
static int recv_resolve(xc_interface *xch, struct xl_chan *ch,
                        const struct preamble *pre, bool act)
{
    char incoming[XC_DOMAIN_NAME_MAX + 16], aborted[XC_DOMAIN_NAME_MAX + 16];
    char name[XC_DOMAIN_NAME_MAX];
    const char *answer = "aborted\n";
    uint8_t uuid[16];
    uint32_t domid;

    uuid_parse(pre->uuid, uuid);
    snprintf(incoming, sizeof(incoming), "%s--incoming", pre->name);
    snprintf(aborted, sizeof(aborted), "%s--aborted", pre->name);
    /* The nil uuid is a probe (xl evacuate asks for the free memory):
     * it names no migration, and must touch nothing. */
    if (uuid_is_null(uuid) ||
        find_by_uuid(xch, uuid, &domid, name, sizeof(name))) {
        fprintf(stderr, "migration target: resolve %s: no such domain here:"
                " aborted\n", pre->name);
    } else if (!act) {
        if (!strcmp(name, pre->name))
            answer = "committed\n";
        fprintf(stderr, "migration target: resolve %s without a migration"
                " token: answered %.*s, changed nothing\n", pre->name,
                (int)strlen(answer) - 1, answer);
    } else if (!strcmp(name, incoming)) {
        /* Not committed yet: abort it, unless the commit wins the race. */
        if (!xc_domain_rename(xch, domid, incoming, aborted)) {
            xc_domain_destroy(xch, domid);
            fprintf(stderr, "migration target: resolve %s: aborted the"
                    " incoming copy\n", pre->name);
        } else if (errno == EBUSY && !find_by_uuid(xch, uuid, &domid, name,
                                                   sizeof(name)) &&
                   !strcmp(name, pre->name)) {
            answer = "committed\n";
        }
    } else if (!strcmp(name, pre->name)) {
        /* Committed: the receiver may have died before unpausing it. */
        xc_domaininfo_t info;

        if (!pre->paused && !xc_domain_getinfo_single(xch, domid, &info) &&
            (info.flags & XEN_DOMINF_paused))
            xc_domain_unpause(xch, domid);
        answer = "committed\n";
        fprintf(stderr, "migration target: resolve %s: committed\n",
                pre->name);
    } else if (!name[0]) {
        /* A restore whose receiver was killed before it named the
         * domain (at its creation): it cannot have been committed. */
        xc_domain_destroy(xch, domid);
        fprintf(stderr, "migration target: resolve %s: destroyed an"
                " unfinished copy\n", pre->name);
    }
    return sr_io_write(xl_chan_io(ch), answer, strlen(answer));
}

/* Check the migrate preamble against this host; NULL or a message. */
static const char *recv_admit(xc_interface *xch, const struct preamble *pre,
                              char *msg, size_t len)
{
    char incoming[XC_DOMAIN_NAME_MAX + 16], name[XC_DOMAIN_NAME_MAX];
    struct xc_host_info hi;
    uint8_t uuid[16];
    uint32_t domid;

    snprintf(incoming, sizeof(incoming), "%s--incoming", pre->name);
    uuid_parse(pre->uuid, uuid);
    if (xc_host_info(xch, &hi)) {
        snprintf(msg, len, "cannot read the target's free memory");
        return msg;
    }
    if (hi.free_pages * 4 < pre->max_memkb) {
        snprintf(msg, len, "target has %" PRIu64 " MiB free, domain needs %"
                 PRIu64 " MiB", hi.free_pages / 256,
                 (pre->max_memkb + 1023) / 1024);
        return msg;
    }
    if (name_in_use(xch, 0, pre->name) || name_in_use(xch, 0, incoming)) {
        snprintf(msg, len, "a domain named \"%s\" already exists on the"
                 " target", pre->name);
        return msg;
    }
    if (!find_by_uuid(xch, uuid, &domid, name, sizeof(name))) {
        snprintf(msg, len, "a domain with uuid %s already exists on the"
                 " target (domain %u)", pre->uuid, domid);
        return msg;
    }
    return NULL;
}

/* The receiver's progress hook: the fault points within the stream. */
struct recv_progress {
    bool live_done, suspended_done;
};

static void recv_progress_cb(void *arg, const struct sr_progress *p)
{
    struct recv_progress *rp = arg;

    if (!rp->live_done && (p->phase >= SR_PHASE_STOP_COPY ||
                           (p->phase == SR_PHASE_LIVE && p->iteration >= 1))) {
        rp->live_done = true;
        fault_hit("recv", "live");
    }
    if (!rp->suspended_done && p->phase >= SR_PHASE_STOP_COPY) {
        rp->suspended_done = true;
        fault_hit("recv", "suspended");
    }
}

/* What the engine's created hook needs to name the new domain. */
struct recv_naming {
    xc_interface *xch;
    const char *name;
    const char *json;
};

/*
 * Name the domain "<name>--incoming" as soon as it exists, not once the
 * stream is complete: the call is then not part of the downtime.  An
 * incoming copy is under that name from its first page to the commit, so
 * that a resolve aborts it like any other.
 */
static int recv_created(void *arg, uint32_t domid, char *msg, size_t len)
{
    const struct recv_naming *rn = arg;
    char incoming[XC_DOMAIN_NAME_MAX + 16];

    snprintf(incoming, sizeof(incoming), "%s--incoming", rn->name);
    if (xc_domain_set_meta(rn->xch, domid, incoming, rn->json,
                           strlen(rn->json))) {
        snprintf(msg, len, "cannot name domain %u \"%s\"", domid, incoming);
        return -1;
    }
    return 0;
}

/* Restore the stream into a new paused domain; 0 or -1 with msg. */
static int recv_restore(xc_interface *xch, struct xl_chan *ch,
                        const struct preamble *pre,
                        struct ferry_domain_config *dc, char **json_r,
                        struct sr_restore_result *res, char *msg, size_t len)
{
    struct sr_io *io = xl_chan_io(ch);
    struct recv_progress rp = { false, false };
    struct sr_restore_args args = { .xch = xch };
    struct recv_naming rn = { .xch = xch };
    struct xl_parser parser;
    struct xlcfg_error err;
    struct sr_xl_hdr hdr;
    void *config = NULL;
    uint32_t config_len = 0;
    int rc;

    *json_r = NULL;
    rc = sr_io_hash_start(io);
    if (!rc)
        rc = sr_read_xl_hdr(io, &hdr, &config, &config_len);
    if (rc) {
        snprintf(msg, len, "reading the xl header: %s", sr_io_errmsg(io));
        goto out;
    }
    if (!config || !config_len) {
        snprintf(msg, len, "the stream contains no domain config");
        rc = -EINVAL;
        goto out;
    }
    if (ferry_domain_config_from_json(dc, "<incoming>", config,
                                      strnlen(config, config_len), &err)) {
        snprintf(msg, len, "%s", err.msg);
        rc = -EINVAL;
        goto out;
    }
    if (strcmp(dc->name, pre->name)) {
        snprintf(msg, len, "the stream's config names domain \"%s\", the"
                 " preamble \"%s\"", dc->name, pre->name);
        rc = -EINVAL;
        goto out;
    }
    /* Admission checked the preamble's figures: the domain is built
     * from the config's, so they must be the same. */
    if (dc->maxmem_mib * 1024 != pre->max_memkb) {
        snprintf(msg, len, "the stream's config has maxmem %" PRIu64
                 " KiB, the preamble admitted %" PRIu64 " KiB",
                 dc->maxmem_mib * 1024, pre->max_memkb);
        rc = -EINVAL;
        goto out;
    }
    if (dc->maxvcpus != pre->max_vcpus) {
        snprintf(msg, len, "the stream's config has %u vCPUs, the preamble"
                 " admitted %" PRIu64, dc->maxvcpus, pre->max_vcpus);
        rc = -EINVAL;
        goto out;
    }
    *json_r = ferry_domain_config_to_json(dc);
    if (!*json_r) {
        snprintf(msg, len, "cannot convert the config to JSON");
        rc = -ENOMEM;
        goto out;
    }
    if (pre->debug)
        fprintf(stderr, "%s\n", *json_r);

    args.paused = true;
    args.max_vcpus = dc->maxvcpus;
    args.max_memkb = dc->maxmem_mib * 1024;
    args.admitted_memkb = pre->max_memkb;
    memcpy(args.uuid, dc->uuid, sizeof(args.uuid));
    args.xl_hdr_read = true;
    args.xl_mandatory_flags = hdr.mandatory_flags;
    args.stream_continues = true;
    args.progress = recv_progress_cb;
    args.progress_arg = &rp;
    args.keep_builder = true;
    rn.name = dc->name;
    rn.json = *json_r;
    args.created = recv_created;
    args.created_arg = &rn;
    args.defer_release = true;
    /*
     * The stream is parsed by a confined child (xl-sandbox.c); this
     * process keeps the channel, checks its transport and forwards the
     * plain stream, names the domain when the child reports it created,
     * and goes on with the handshake afterwards.
     */
    rc = xl_parser_start(&parser, xch, -1, io, &args, msg, len);
    if (!rc)
        rc = xl_parser_finish(&parser, ch, &args, res, msg, len);
    if (rc) {
        rc = -EIO;
        goto out;
    }
    if (pre->debug)
        fprintf(stderr, "migration target: verify pass: %" PRIu64 " of the"
                " pages differed from the last copy sent\n",
                res->verify_mismatches);
    /* Points the engine's reports did not reach still fire, in order. */
    if (!rp.live_done)
        fault_hit("recv", "live");
    if (!rp.suspended_done)
        fault_hit("recv", "suspended");
    if (fault_hit("recv", "stream-end")) {
        snprintf(msg, len, "injected failure at stream-end");
        xc_domain_destroy(xch, res->domid);
        rc = -EIO;
    }
 out:
    free(config);
    return rc;
}

/*
 * The incoming domain is to outlive us from now on: tell the host the
 * build is done (until now the builder session's end would have made the
 * host destroy the domain).  0, or -1 with a message.  The session is
 * closed once the report is sent: its unmapping is no part of the
 * downtime.
 */
static int recv_release(struct sr_restore_result *res)
{
    int rc = xc_domain_build_done(res->builder, res->domid);

    if (rc)
        fprintf(stderr, "migration target: cannot keep domain %u: %s\n",
                res->domid, strerror(errno));
    return rc;
}

/* Abort our copy: through the same compare-and-swap as the commit. */
static void recv_abort(xc_interface *xch, uint32_t domid, const char *name)
{
    char incoming[XC_DOMAIN_NAME_MAX + 16], aborted[XC_DOMAIN_NAME_MAX + 16];

    snprintf(incoming, sizeof(incoming), "%s--incoming", name);
    snprintf(aborted, sizeof(aborted), "%s--aborted", name);
    if (!xc_domain_rename(xch, domid, incoming, aborted)) {
        xc_domain_destroy(xch, domid);
        fprintf(stderr, "migration target: Failure, destroyed our copy.\n");
    } else {
        fprintf(stderr, "migration target: our copy was already resolved"
                " elsewhere; leaving it.\n");
    }
}

/* Commit (rename, unpause): 0, or -1 if the commit lost or failed. */
static int recv_commit(xc_interface *xch, uint32_t domid, const char *name,
                       bool paused)
{
    char incoming[XC_DOMAIN_NAME_MAX + 16];

    snprintf(incoming, sizeof(incoming), "%s--incoming", name);
    if (xc_domain_rename(xch, domid, incoming, name)) {
        fprintf(stderr, "migration target: cannot commit: %s\n",
                errno == EBUSY ? "the migration was resolved as aborted"
                               : strerror(errno));
        return -1;
    }
    fault_hit("recv", "committed");
    if (!paused && xc_domain_unpause(xch, domid)) {
        fprintf(stderr, "migration target: cannot unpause domain %u\n",
                domid);
        /* Undo the commit, so that the abort that follows can win. */
        xc_domain_rename(xch, domid, name, incoming);
        return -1;
    }
    return 0;
}

static int migrate_receive(const struct recv_opts *o)
{
    struct ferry_domain_config dc;
    struct sr_restore_result res = { 0 };
    struct preamble pre;
    struct xl_chan *ch = NULL;
    struct sr_io *io;
    char line[PREAMBLE_MAX], msg[512] = "", *json = NULL;
    char token[TOKEN_HEX + 1] = "";
    const char *bad;
    bool dc_init = false, committed = false, act = false;
    bool token_saved = false;
    xc_interface *xch;
    uint64_t t_reply;
    int rc, status, ret = EXIT_FAILURE;

    signal(SIGPIPE, SIG_IGN);
    /* The stream is untrusted: no machine memory in this process. */
    xl_host_session(XC_SESSION_CONTROL);
    xch = xl_try_open_host(line, sizeof(line));
    rc = xl_chan_accept(&ch, o->fd, o->tls_given ? &o->tls : NULL, &o->auth,
                        msg, sizeof(msg));
    if (rc) {
        fprintf(stderr, "migration target: %s\n", msg);
        return EXIT_FAILURE;
    }
    /* A sender that goes quiet loses its incoming domain (the reads
     * below fail and the domain is aborted). */
    xl_chan_set_timeout(ch, o->idle_ms);
    io = xl_chan_io(ch);
    /* No host: the sender is told why instead of the banner, so that it
     * can say what went wrong rather than that the banner did not come. */
    if (!xch) {
        /* libxc has said it on stderr already. */
        snprintf(msg, sizeof(msg), "ferry-error %s\n", line);
        sr_io_write(io, msg, strlen(msg));
        goto out;
    }
    fprintf(stderr, "migration target: Ready to receive domain.\n");
    if (sr_io_write(io, banner, BANNER_LEN))
        goto out;

    /* A ferry sender's preamble, or (Xen's xl) the xl header. */
    rc = sr_io_read(io, line, PREAMBLE_TAG_LEN);
    if (rc) {
        fprintf(stderr, "migration target: reading the preamble: %s\n",
                sr_io_errmsg(io));
        goto out;
    }
    if (memcmp(line, PREAMBLE_TAG, PREAMBLE_TAG_LEN)) {
        fprintf(stderr, "migration target: the sender did not send ferry's"
                " preamble (a sender without it, such as Xen's xl, is not"
                " supported)\n");
        goto out;
    }
    rc = xl_chan_read_line(ch, line, sizeof(line));
    if (rc) {
        fprintf(stderr, "migration target: reading the preamble: %s\n",
                rc == -E2BIG ? "line too long" : strerror(-rc));
        goto out;
    }
    bad = preamble_parse(line, &pre);
    if (!bad && !strcmp(pre.op, "migrate")) {
        bad = recv_admit(xch, &pre, msg, sizeof(msg));
        if (!bad && fault_hit("recv", "preamble"))
            bad = "injected failure at preamble";
    } else if (!bad) {
        bad = resolve_check(&pre, &act);
    }
    if (!bad && !strcmp(pre.op, "migrate")) {
        uint8_t t[TOKEN_LEN];

        if (RAND_bytes(t, TOKEN_LEN) != 1) {
            bad = "no random bytes for a migration token";
        } else {
            for (int i = 0; i < TOKEN_LEN; i++)
                snprintf(token + 2 * i, 3, "%02x", t[i]);
            if (token_save("incoming", pre.uuid, token))
                bad = "cannot record the migration token";
            else
                token_saved = true;
        }
    }
    if (bad) {
        fprintf(stderr, "migration target: %s\n", bad);
        snprintf(line, sizeof(line), "error %s\n", bad);
        sr_io_write(io, line, strlen(line));
        goto out;
    }
    {
        struct xc_host_info hi = { 0 };
        struct json_object *ans = json_object_new_object();
        bool ok;

        xc_host_info(xch, &hi);
        ok = ans && !xlcfg_json_add(ans, "free_memkb",
                                    JU64(hi.free_pages * 4)) &&
             !xlcfg_json_add(ans, "host", JSTR(run_dir)) &&
             (!token_saved || !xlcfg_json_add(ans, "token", JSTR(token)));
        if (json_line(line, sizeof(line), "ok ", ans, ok) ||
            sr_io_write(io, line, strlen(line)))
            goto out;
    }
    if (!strcmp(pre.op, "resolve")) {
        ret = recv_resolve(xch, ch, &pre, act) ? EXIT_FAILURE
                                               : EXIT_SUCCESS;
        goto out;
    }

    ferry_domain_config_init(&dc);
    dc_init = true;
    if (recv_restore(xch, ch, &pre, &dc, &json, &res, msg, sizeof(msg))) {
        fprintf(stderr, "migration target: Domain creation failed: %s\n",
                msg);
        /* Also when the stream itself failed (a record's MAC, a cut):
         * the sender can then say why, not only that its writes failed. */
        snprintf(line, sizeof(line), "ferry-error %s\n", msg);
        xl_chan_write_reason(ch, line);
        goto out;
    }

    if (fault_hit("recv", "early-commit")) {
        /* A target that commits without the sender's permission and
         * vanishes: the sender must then not resume its copy. */
        recv_release(&res);
        recv_commit(xch, res.domid, dc.name, o->paused || pre.paused);
        fprintf(stderr, "ferry-migrate fault recv:early-commit: exiting\n");
        _exit(9);
    }
    fprintf(stderr, "migration target: Transfer complete,"
            " requesting permission to start domain.\n");
    if (sr_io_write(io, msg_ready, sizeof(msg_ready))) {
        recv_abort(xch, res.domid, dc.name);
        goto out;
    }
    fault_hit("recv", "ready");
    if (read_fixed(ch, msg_go, sizeof(msg_go), "GO message", false)) {
        recv_abort(xch, res.domid, dc.name);
        goto out;
    }
    fault_hit("recv", "go");
    fprintf(stderr, "migration target: Got permission, starting domain.\n");
    /* Released before the commit: a committed domain must never die
     * with us.  Dying in between leaves an incoming domain that the
     * sender's resolve aborts. */
    committed = !recv_release(&res) &&
                !recv_commit(xch, res.domid, dc.name,
                             o->paused || pre.paused);
    if (committed)
        fprintf(stderr, "migration target: Domain started successsfully.\n");
    t_reply = now_ns();

    status = committed ? 0 : 1;
    if (sr_io_write(io, msg_report, sizeof(msg_report)) ||
        sr_io_write(io, &(char){ (char)status }, 1)) {
        /* The sender will resolve: a commit stands, a failure is ours. */
        if (!committed)
            recv_abort(xch, res.domid, dc.name);
        ret = committed ? EXIT_SUCCESS : EXIT_FAILURE;
        goto monitor;
    }
    fault_hit("recv", "report");
    if (!committed) {
        recv_abort(xch, res.domid, dc.name);
        fprintf(stderr, "migration target: Cleanup OK, granting sender"
                " permission to resume.\n");
        sr_io_write(io, msg_go, sizeof(msg_go));
        goto out;
    }
    {
        struct json_object *st = json_object_new_object();
        bool ok;

        ok = st && !xlcfg_json_add(st, "finish_ms", JU64(
                 (res.t_done_ns - res.t_last_page_ns) / 1000000)) &&
             !xlcfg_json_add(st, "pages_received",
                             JU64(res.pages_received)) &&
             !xlcfg_json_add(st, "domid", JU64(res.domid)) &&
             !xlcfg_json_add(st, "reply_ms", JU64(
                 (t_reply - res.t_last_page_ns) / 1000000));
        /* Figures only: the sender does without them. */
        if (!json_line(line, sizeof(line), "ferry-stats ", st, ok))
            sr_io_write(io, line, strlen(line));
    }
    ret = EXIT_SUCCESS;
 monitor:
    /* The engine's buffers go once the domain runs (or not) here. */
    xc_interface_close(res.builder);
    res.builder = NULL;
    sr_restore_release(&res);
    xl_chan_close(ch, NULL);
    ch = NULL;
    /* The outcome is settled: a resolve now answers from what is here. */
    token_drop("incoming", pre.uuid);
    token_saved = false;
    if (committed && o->monitor && pre.monitor) {
        fflush(NULL);
        xl_spawn_monitor(res.domid, &dc);
    }
 out:
    /* Not released: the host destroys the incoming domain, if it has
     * not been already. */
    xc_interface_close(res.builder);
    sr_restore_release(&res);
    xl_chan_close(ch, NULL);
    if (token_saved)
        token_drop("incoming", pre.uuid);
    if (dc_init)
        ferry_domain_config_dispose(&dc);
    free(res.config_json);
    free(json);
    return ret;
}

int main_migrate_receive(int argc, char **argv)
{
    static const struct option opts[] = {
        { "fd", required_argument, NULL, 0x100 },
        { "tls-cert", required_argument, NULL, 0x101 },
        { "tls-key", required_argument, NULL, 0x102 },
        { "tls-ca", required_argument, NULL, 0x103 },
        { "tls-allow", required_argument, NULL, 0x104 },
        { "tls-crl", required_argument, NULL, 0x105 },
        { "key", required_argument, NULL, 0x106 },
        { "insecure", no_argument, NULL, 0x107 },
        { "idle-timeout", required_argument, NULL, 0x108 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct recv_opts o = { .monitor = true, .fd = -1 };
    unsigned long v;
    char *end;
    int opt, rc = EXIT_SUCCESS;

    fault_parse();
    while ((opt = xl_getopt(argc, argv, "Fedrp", opts, "migrate-receive", 0,
                            &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'F': break;
        case 'e': o.monitor = false; break;
        case 'd': o.debug = true; break;
        case 'p': o.paused = true; break;
        case 'r':
            fprintf(stderr, "migrate-receive: Remus is not supported\n");
            return EXIT_FAILURE;
        case 0x100:
            errno = 0;
            o.fd = (int)strtol(optarg, &end, 10);
            if (errno || *end || o.fd < 0) {
                fprintf(stderr, "migrate-receive: bad --fd %s\n", optarg);
                return EXIT_FAILURE;
            }
            break;
        case 0x101: o.tls.cert = optarg; o.tls_given = true; break;
        case 0x102: o.tls.key = optarg; o.tls_given = true; break;
        case 0x103: o.tls.ca = optarg; o.tls_given = true; break;
        case 0x104: o.tls.allow = optarg; break;
        case 0x105: o.tls.crl = optarg; break;
        case 0x106: o.auth.key_file = optarg; break;
        case 0x107: o.auth.insecure = true; break;
        case 0x108:
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || v > 86400) {
                fprintf(stderr, "migrate-receive: bad --idle-timeout %s\n",
                        optarg);
                return EXIT_FAILURE;
            }
            o.idle_ms = (int)v * 1000;
            break;
        }
    }
    if (argc - optind != 0) {
        help("migrate-receive");
        return EXIT_FAILURE;
    }
    if (o.tls_given && (!o.tls.cert || !o.tls.key || !o.tls.ca || o.fd < 0)) {
        fprintf(stderr, "migrate-receive: TLS needs --fd and all of"
                " --tls-cert, --tls-key and --tls-ca\n");
        return EXIT_FAILURE;
    }
    return migrate_receive(&o);
}

/* ------------------------------------------------------------------------
 * Resolve, sender side (xl migrate and xl migrate-resolve)
 * ------------------------------------------------------------------------ */

enum outcome { OUT_ABORTED, OUT_COMMITTED, OUT_UNREACHABLE };

/* One resolve exchange on ch: the target's answer, or -1 on failure. */
static int resolve_exchange(struct xl_chan *ch, const struct preamble *base,
                            char *why, size_t len)
{
    struct preamble pre = *base;
    char line[PREAMBLE_MAX];
    struct sr_io *io = xl_chan_io(ch);
    char buf[BANNER_LEN];
    int rc;

    snprintf(pre.op, sizeof(pre.op), "resolve");
    xl_chan_set_timeout(ch, RESOLVE_IO_TIMEOUT_MS);
    rc = sr_io_read(io, buf, BANNER_LEN);
    if (!rc && memcmp(buf, banner, BANNER_LEN))
        rc = -EPROTO;
    if (!rc)
        rc = preamble_write(io, &pre);
    if (!rc)
        rc = xl_chan_read_line(ch, line, sizeof(line));
    if (!rc && !strncmp(line, "error ", 6)) {
        snprintf(why, len, "the target refused: %.400s", line + 6);
        return -1;
    }
    if (!rc && strncmp(line, "ok ", 3))
        rc = -EPROTO;
    if (!rc)
        rc = xl_chan_read_line(ch, line, sizeof(line));
    if (rc) {
        snprintf(why, len, "%s", sr_io_errmsg(io)[0] ? sr_io_errmsg(io)
                                                     : strerror(-rc));
        return -1;
    }
    if (!strcmp(line, "committed"))
        return OUT_COMMITTED;
    if (!strcmp(line, "aborted"))
        return OUT_ABORTED;
    snprintf(why, len, "unexpected answer \"%.200s\"", line);
    return -1;
}

/*
 * Ask the target, through new channels (from ch, or from target when ch
 * is NULL), until it answers or timeout_s passes.
 */
static enum outcome resolve(const struct xl_chan *ch, const char *target,
                            const struct xl_chan_opts *copts,
                            const struct preamble *pre, int timeout_s,
                            bool quiet)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000ULL;
    char err[XL_CHAN_ERRLEN] = "";

    for (;;) {
        struct xl_chan *rch = NULL;
        int rc = ch ? xl_chan_reopen(ch, &rch, err, sizeof(err))
                    : xl_chan_connect(&rch, target, copts, err, sizeof(err));

        if (!rc) {
            rc = resolve_exchange(rch, pre, err, sizeof(err));
            xl_chan_close(rch, NULL);
            if (rc >= 0)
                return (enum outcome)rc;
        }
        if (!quiet)
            fprintf(stderr, "migration sender: resolve with the target"
                    " failed: %s\n", err);
        if (now_ns() >= deadline)
            return OUT_UNREACHABLE;
        sleep(1);
    }
}

/* Give the domain back to the source: old name, running (cancelled). */
static int source_resume(xc_interface *xch, uint32_t domid, const char *name,
                         const char *away, bool renamed)
{
    int rc = 0;

    if (renamed && xc_domain_rename(xch, domid, away, name)) {
        fprintf(stderr, "migration sender: cannot rename domain %u back to"
                " %s\n", domid, name);
        rc = -1;
    }
    /* A sender killed in the live phase leaves log-dirty on: end it. */
    xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0, 0,
                      NULL);
    if (xl_is_suspended(xch, domid) && xc_domain_resume(xch, domid, true)) {
        fprintf(stderr, "migration sender: cannot resume domain %u\n",
                domid);
        rc = -1;
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * The sender: xl migrate
 * ------------------------------------------------------------------------ */

static _Atomic bool cancel_requested;

static void on_cancel_signal(int sig)
{
    (void)sig;
    atomic_store(&cancel_requested, true);
}

static void set_signals(void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

struct mig {
    /* Options. */
    const char *target;
    const char *override;
    bool json, debug, paused, monitor;
    struct sr_precopy_policy policy;
    int resolve_timeout_s;
    struct xl_chan_opts copts;
    const char *recv_args[4];

    /* The domain. */
    xc_interface *xch;
    uint32_t domid;
    char name[XC_DOMAIN_NAME_MAX];
    char away[XC_DOMAIN_NAME_MAX + 16];
    char *config_json;
    struct preamble pre;

    /* Progress of the migration. */
    struct xl_chan *ch;
    bool have_domid, admitted, suspended, renamed, live_fired, cancelled;
    struct sr_save_stats stats;
    uint64_t t_start_ns, t_report_ns;
    uint64_t t_setup_ns;        /* the first page went: setup is over */
    uint64_t transferred;       /* the most bytes any report said */
    uint64_t pages_sent;
    long long target_domid;     /* -1: unknown */
    uint64_t recv_finish_ms;
    struct xl_progress prog;
    bool prog_on;
    uint64_t t_json_ns;
    int json_phase;
    char error[512];
};

static void mig_error(struct mig *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Say why the migration fails; the first reason is the summary's. */
static void mig_error(struct mig *m, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "migration sender: %s\n", buf);
    if (!m->error[0])
        snprintf(m->error, sizeof(m->error), "%s", buf);
}

static const char *phase_status(enum sr_phase phase)
{
    switch (phase) {
    case SR_PHASE_SETUP: return "setup";
    case SR_PHASE_LIVE: return "live";
    case SR_PHASE_MEMORY:
    case SR_PHASE_STOP_COPY: return "stop-copy";
    case SR_PHASE_VERIFY: return "verify";
    case SR_PHASE_STATE: return "state";
    default: return "handshake";
    }
}

static uint64_t ms_since(uint64_t t0, uint64_t t)
{
    return t > t0 ? (t - t0) / 1000000 : 0;
}

/* Downtime: from the suspension to the report that the domain runs on
 * the target (or, on failure, to now). */
static uint64_t mig_downtime_ms(const struct mig *m, int rc, uint64_t now)
{
    if (rc == EXIT_SUCCESS && m->stats.t_suspended_ns && m->t_report_ns)
        return ms_since(m->stats.t_suspended_ns, m->t_report_ns);
    if (m->stats.t_suspended_ns)
        return ms_since(m->stats.t_suspended_ns, now);
    return 0;
}

/* Bytes per second over the stream, from its first byte to its last. */
static uint64_t mig_throughput(const struct mig *m)
{
    uint64_t ns = m->stats.t_end_ns > m->stats.t_start_ns ?
                  m->stats.t_end_ns - m->stats.t_start_ns : 0;

    return ns ? (uint64_t)((double)m->stats.bytes * 1e9 / ns) : 0;
}

/*
 * The sender's part of the downtime: from the domain's stop to the
 * stream's last byte (the rest is the receiver's finish and the
 * handshake's round trips).  0 if the save never stopped the domain.
 */
static uint64_t mig_stop_to_end_ms(const struct mig *m)
{
    if (!m->stats.t_suspended_ns ||
        m->stats.t_end_ns < m->stats.t_suspended_ns)
        return 0;
    return ms_since(m->stats.t_suspended_ns, m->stats.t_end_ns);
}

/*
 * One --json line (man/xl.1 documents the shape): a progress event when p
 * is given, else the summary of a migration that ended with rc.  Names are
 * QEMU's (query-migrate, MigrationStats) where the meaning is the same:
 * times in ms, "transferred", "remaining" and "total" in bytes,
 * "normal" pages sent whole, "dirty-pages-rate" in pages per second;
 * ferry's own figures keep their names.  "transferred" never goes down:
 * the engine's stream offset and the final count differ by the
 * handshake's bytes.
 */
static void json_event(struct mig *m, const struct sr_progress *p,
                       const char *status, int rc)
{
    static const char *const summary_status[] = {
        "ok", "failed", "", "unresolved",
    };
    static const char *const where[] = { "target", "source", "", "unknown" };
    struct json_object *o = json_object_new_object();
    uint64_t now = now_ns();
    bool ok;

    if (p && p->bytes > m->transferred)
        m->transferred = p->bytes;
    if (m->stats.bytes > m->transferred)
        m->transferred = m->stats.bytes;
    ok = o && !xlcfg_json_add(o, "event", JSTR(p ? "progress" : "summary")) &&
         !xlcfg_json_add(o, "domain", JSTR(m->name));
    if (p) {
        uint64_t left = p->phase != SR_PHASE_DONE &&
                        p->pass_total > p->pass_done ?
                        p->pass_total - p->pass_done : 0;

        if (p->pages_sent > m->pages_sent)
            m->pages_sent = p->pages_sent;
        ok = ok && !xlcfg_json_add(o, "status", JSTR(status)) &&
             !xlcfg_json_add(o, "iteration", JU64(p->iteration)) &&
             !xlcfg_json_add(o, "total-time",
                             JU64(ms_since(m->t_start_ns, now)));
        if (ok && m->t_setup_ns)
            ok = !xlcfg_json_add(o, "setup-time",
                                 JU64(ms_since(m->t_start_ns, m->t_setup_ns)));
        ok = ok && !xlcfg_json_add(o, "transferred", JU64(m->transferred)) &&
             !xlcfg_json_add(o, "remaining", JU64(left * SR_PAGE_SIZE)) &&
             !xlcfg_json_add(o, "total", JU64(p->p2m_size * SR_PAGE_SIZE)) &&
             !xlcfg_json_add(o, "normal", JU64(m->pages_sent)) &&
             !xlcfg_json_add(o, "pages_resent", JU64(p->pages_resent)) &&
             !xlcfg_json_add(o, "dirty-pages-rate",
                             JU64(p->dirty_rate / SR_PAGE_SIZE)) &&
             !xlcfg_json_add(o, "throughput_bytes_per_s",
                             JU64(p->throughput)) &&
             !xlcfg_json_add(o, "expected-downtime",
                             JU64(p->expected_downtime_ms)) &&
             !xlcfg_json_add(o, "cpu-throttle-percentage",
                             JU64(p->throttle_pct));
        json_print(o, ok);
        return;
    }
    status = m->cancelled && rc == EXIT_FAILURE ? "cancelled"
                                                : summary_status[rc];
    ok = ok && !xlcfg_json_add(o, "status", JSTR(status)) &&
         !xlcfg_json_add(o, "where", JSTR(where[rc])) &&
         !xlcfg_json_add(o, "target", JSTR(m->target));
    /* null: no such domain here; not (or not yet) running there. */
    if (ok && m->have_domid)
        ok = !xlcfg_json_add(o, "source_domid", JU64(m->domid));
    else if (ok)
        ok = !json_object_object_add(o, "source_domid", NULL);
    if (ok && m->target_domid >= 0 && rc == EXIT_SUCCESS)
        ok = !xlcfg_json_add(o, "target_domid",
                             JU64((uint64_t)m->target_domid));
    else if (ok)
        ok = !json_object_object_add(o, "target_domid", NULL);
    ok = ok && !xlcfg_json_add(o, "total-time",
                               JU64(ms_since(m->t_start_ns, now)));
    if (ok && m->t_setup_ns)
        ok = !xlcfg_json_add(o, "setup-time",
                             JU64(ms_since(m->t_start_ns, m->t_setup_ns)));
    ok = ok && !xlcfg_json_add(o, "downtime",
                               JU64(mig_downtime_ms(m, rc, now))) &&
         !xlcfg_json_add(o, "iterations", JU64(m->stats.iterations)) &&
         !xlcfg_json_add(o, "transferred", JU64(m->transferred)) &&
         !xlcfg_json_add(o, "normal", JU64(m->stats.pages_sent)) &&
         !xlcfg_json_add(o, "pages_resent", JU64(m->stats.pages_resent)) &&
         !xlcfg_json_add(o, "throughput_bytes_per_s",
                         JU64(mig_throughput(m)));
    if (ok && rc != EXIT_SUCCESS)
        ok = !xlcfg_json_add(o, "error", JSTR(m->error[0] ? m->error :
                                              "migration failed"));
    ok = ok && !xlcfg_json_add(o, "sender_stop_to_end_ms",
                               JU64(mig_stop_to_end_ms(m))) &&
         !xlcfg_json_add(o, "receiver_finish_ms",
                         JU64(m->recv_finish_ms)) &&
         !xlcfg_json_add(o, "max-cpu-throttle-percentage",
                         JU64(m->stats.throttle_max_pct));
    json_print(o, ok);
}

static void send_progress_cb(void *arg, const struct sr_progress *p)
{
    struct mig *m = arg;

    if (!m->live_fired && p->phase == SR_PHASE_LIVE && p->iteration >= 1) {
        m->live_fired = true;
        fault_hit("send", "live");
    }
    if (!m->t_setup_ns && p->phase > SR_PHASE_SETUP)
        m->t_setup_ns = now_ns();
    if (m->json) {
        uint64_t t = now_ns();

        if ((int)p->phase != m->json_phase ||
            t - m->t_json_ns >= 100000000ULL) {
            m->json_phase = (int)p->phase;
            m->t_json_ns = t;
            json_event(m, p, phase_status(p->phase), 0);
        }
    } else if (m->prog_on) {
        xl_progress_update(&m->prog, p);
    }
}

/* The engine's suspend callback: ask the guest, wait until it has. */
static int send_suspend_cb(void *arg)
{
    struct mig *m = arg;
    int rc;

    if (!m->live_fired) {       /* a non-live save has no live pass */
        m->live_fired = true;
        fault_hit("send", "live");
    }
    rc = xl_suspend_domain(m->xch, m->domid, &cancel_requested);
    if (rc == 0) {
        m->suspended = true;
        fault_hit("send", "suspended");
    }
    return rc;
}

/* The config to send: -C's file, else the domain's own. */
static int mig_config(struct mig *m)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    void *blob = NULL;
    size_t len = 0;
    int rc = -1;

    ferry_domain_config_init(&dc);
    if (m->override) {
        if (ferry_domain_config_load(&dc, m->override, NULL, 0, NULL,
                                     &err)) {
            fprintf(stderr, "%s\nunable to read overridden config file\n",
                    err.msg);
            goto out;
        }
        m->config_json = ferry_domain_config_to_json(&dc);
    } else {
        char name[XC_DOMAIN_NAME_MAX];

        if (xc_domain_get_meta(m->xch, m->domid, name, sizeof(name), &blob,
                               &len) || !blob || !len) {
            fprintf(stderr, "No config file stored for running domain and "
                    "none supplied - cannot migrate.\n");
            goto out;
        }
        if (ferry_domain_config_from_json(&dc, "<domain>", blob, len,
                                          &err)) {
            fprintf(stderr, "%s\n", err.msg);
            goto out;
        }
        m->config_json = malloc(len + 1);
        if (m->config_json) {
            memcpy(m->config_json, blob, len);
            m->config_json[len] = '\0';
        }
    }
    if (!m->config_json) {
        fprintf(stderr, "unable to convert config file to JSON\n");
        goto out;
    }
    snprintf(m->pre.op, sizeof(m->pre.op), "migrate");
    snprintf(m->pre.name, sizeof(m->pre.name), "%s", dc.name);
    uuid_unparse_lower(dc.uuid, m->pre.uuid);
    m->pre.max_memkb = dc.maxmem_mib * 1024;
    m->pre.max_vcpus = dc.maxvcpus;
    m->pre.paused = m->paused;
    m->pre.monitor = m->monitor;
    m->pre.debug = m->debug;
    rc = 0;
 out:
    ferry_domain_config_dispose(&dc);
    free(blob);
    return rc;
}

/* Banner, preamble, answer: 0 once the target has admitted us. */
static int mig_handshake(struct mig *m)
{
    struct sr_io *io = xl_chan_io(m->ch);
    char line[PREAMBLE_MAX];
    int rc;

    /* A receiver that cannot start says why instead of the banner. */
    rc = sr_io_read(io, line, 1);
    if (!rc && line[0] == 'f') {
        rc = xl_chan_read_line(m->ch, line + 1, sizeof(line) - 1);
        if (!rc && !strncmp(line, "ferry-error ", 12)) {
            /* Its stderr (ours, or ferry-hv's log) has said it already:
             * the reason goes to the summary, not once more to stderr. */
            if (!m->error[0])
                snprintf(m->error, sizeof(m->error),
                         "the target failed: %.400s", line + 12);
            mig_error(m, "the target could not start its receiver");
            return -1;
        }
        rc = -EPROTO;
    }
    if (rc && rc != -EPROTO)
        fprintf(stderr, "migration receiver stream: reading banner: %s\n",
                sr_io_errmsg(io)[0] ? sr_io_errmsg(io) : strerror(-rc));
    if (rc || read_fixed(m->ch, banner + 1, BANNER_LEN - 1, "banner",
                         true)) {
        mig_error(m, "the target did not send its banner");
        return -1;
    }
    fault_hit("send", "preamble");
    rc = preamble_write(io, &m->pre);
    if (!rc)
        rc = xl_chan_read_line(m->ch, line, sizeof(line));
    if (rc) {
        mig_error(m, "no answer to the preamble: %s",
                  sr_io_errmsg(io)[0] ? sr_io_errmsg(io) : strerror(-rc));
        return -1;
    }
    if (!strncmp(line, "error ", 6)) {
        mig_error(m, "the target refused the domain: %s", line + 6);
        return -1;
    }
    if (strncmp(line, "ok ", 3)) {
        mig_error(m, "unexpected answer to the preamble: \"%.100s\"", line);
        return -1;
    }
    m->admitted = true;
    /* The token names our migration in a later resolve, also one by xl
     * migrate-resolve: keep it until the outcome is known. */
    {
        struct json_object *ans = NULL;

        if (xlcfg_json_parse("answer", line + 3, strlen(line + 3), &ans,
                             NULL) ||
            !json_object_is_type(ans, json_type_object) ||
            preamble_string(ans, "token", m->pre.token,
                            sizeof(m->pre.token)))
            m->pre.token[0] = '\0';
        json_object_put(ans);
    }
    if (strlen(m->pre.token) != TOKEN_HEX ||
        strspn(m->pre.token, "0123456789abcdef") != TOKEN_HEX) {
        m->pre.token[0] = '\0';
        mig_error(m, "the target gave no migration token");
        return -1;
    }
    if (token_save("outgoing", m->pre.uuid, m->pre.token)) {
        mig_error(m, "cannot record the migration token");
        return -1;
    }
    return 0;
}

/* The live save to the target; 0, or -1 having said why. */
static int mig_send(struct mig *m)
{
    struct sr_save_args args = {
        .xch = m->xch, .domid = m->domid, .config_json = m->config_json,
        .suspend = send_suspend_cb, .suspend_arg = m,
        .live = true, .debug = m->debug, .trailer = true,
        .policy = &m->policy,
        .progress = send_progress_cb, .progress_arg = m,
        .cancel = &cancel_requested, .stats = &m->stats,
    };
    char msg[512] = "";
    int rc, wrc;

    if (!m->json) {
        xl_progress_init(&m->prog, "Migrating", stderr);
        m->prog_on = true;
    }
    /* Pages are read and hashed here while a second thread MACs (or
     * encrypts) and sends the last ones; its errors meet us on our next
     * write, or when it stops. */
    rc = xl_chan_async(m->ch, true);
    if (rc)
        snprintf(msg, sizeof(msg), "cannot start the writer thread: %s",
                 strerror(-rc));
    else
        rc = sr_save_domain(xl_chan_io(m->ch), &args, msg, sizeof(msg));
    wrc = xl_chan_async(m->ch, false);
    if (!rc && wrc) {
        rc = wrc;
        snprintf(msg, sizeof(msg), "%s", sr_io_errmsg(xl_chan_io(m->ch)));
    }
    /* The stream's last byte left when the writer sent it. */
    if (!rc && m->stats.t_end_ns)
        m->stats.t_end_ns = now_ns();
    if (m->prog_on) {
        xl_progress_done(&m->prog, !rc);
        m->prog_on = false;
    }
    if (rc == -ECANCELED || (rc && atomic_load(&cancel_requested))) {
        m->cancelled = true;
        mig_error(m, "interrupted by a signal, cancelling");
        return -1;
    }
    if (rc) {
        mig_error(m, "sending the domain failed: %s",
                  msg[0] ? msg : strerror(-rc));
        return -1;
    }
    fault_hit("send", "stream-end");
    if (m->json) {
        struct sr_progress p = { .phase = SR_PHASE_DONE,
                                 .iteration = m->stats.iterations,
                                 .bytes = m->stats.bytes,
                                 .pages_sent = m->stats.pages_sent,
                                 .pages_resent = m->stats.pages_resent };

        json_event(m, &p, "handshake", 0);
    }
    return 0;
}

/* Read "ready" (or a ferry-error line instead); 0 or -1. */
static int mig_read_ready(struct mig *m)
{
    struct sr_io *io = xl_chan_io(m->ch);
    char line[PREAMBLE_MAX];
    int rc = sr_io_read(io, line, 1);

    if (!rc && line[0] == 'f') {
        rc = xl_chan_read_line(m->ch, line + 1, sizeof(line) - 1);
        if (!rc && !strncmp(line, "ferry-error ", 12)) {
            mig_error(m, "the target failed: %s", line + 12);
            return -1;
        }
        rc = -EPROTO;
    }
    if (!rc) {
        rc = sr_io_read(io, line + 1, sizeof(msg_ready) - 1);
        if (!rc && memcmp(line, msg_ready, sizeof(msg_ready)))
            rc = -EPROTO;
    }
    if (rc == -EPROTO) {
        fprintf(stderr, "migration receiver stream contained unexpected"
                " data instead of ready message\n");
        if (xl_chan_rune(m->ch))
            fprintf(stderr, "(command run was: %s )\n",
                    xl_chan_rune(m->ch));
    }
    if (rc) {
        mig_error(m, "no ready message from the target: %s",
                  sr_io_errmsg(io)[0] ? sr_io_errmsg(io) : strerror(-rc));
        return -1;
    }
    if (atomic_load(&cancel_requested)) {
        m->cancelled = true;
        mig_error(m, "interrupted by a signal, cancelling");
        return -1;
    }
    return 0;
}

/* After a failure with the stream cut short: the target's reason, if it
 * sent one (its ferry-error line), within a short wait. */
static void mig_collect_error(struct mig *m)
{
    char line[PREAMBLE_MAX];

    xl_chan_shutdown_write(m->ch);
    xl_chan_set_timeout(m->ch, 2000);
    xl_chan_set_cancel(m->ch, NULL);
    /* Skip what is not a line of ours (e.g. a "ready" never read). */
    for (int i = 0; i < 4; i++) {
        char *p;

        if (xl_chan_read_reason(m->ch, line, sizeof(line)))
            return;
        p = strstr(line, "ferry-error ");
        if (p) {
            fprintf(stderr, "migration sender: the target says: %s\n",
                    p + 12);
            /* The target's reason is the cause; our failed write or read
             * was only how we met it. */
            snprintf(m->error, sizeof(m->error), "the target failed: %.400s",
                     p + 12);
            return;
        }
    }
}

/*
 * Every failure before "go": the target never had permission, so the
 * domain is the source's.  Leave nothing on the target either.
 */
static int mig_fail_before_go(struct mig *m)
{
    if (m->ch) {
        mig_collect_error(m);
        xl_chan_close(m->ch, NULL);
        m->ch = NULL;
    }
    if (m->admitted &&
        resolve(NULL, m->target, &m->copts, &m->pre, 0, true) ==
        OUT_COMMITTED) {
        /* It never had our permission, yet it runs a copy: resuming ours
         * could run the domain twice.  Leave ours as it is. */
        mig_error(m, "the target reports a committed copy it cannot have");
        fprintf(stderr, "Domain %s is left here as it is (%s), not resumed."
                "  Check the target; finish with:\n  xl migrate-resolve %s"
                " %s\n", m->name, m->suspended ? "suspended" : "running",
                m->name, m->target);
        return EXIT_UNRESOLVED;
    }
    fprintf(stderr, "Migration failed, resuming at sender.\n");
    if (source_resume(m->xch, m->domid, m->name, m->away, m->renamed))
        return EXIT_FAILURE;
    if (m->suspended)
        fprintf(stderr, "migration sender: Resumed OK.\n");
    return EXIT_FAILURE;
}

/* The target has the domain: ours goes. */
static int mig_done_committed(struct mig *m)
{
    fprintf(stderr, "migration sender: Target reports successful startup.\n");
    xc_domain_destroy(m->xch, m->domid); /* bang! */
    fprintf(stderr, "Migration successful.\n");
    return EXIT_SUCCESS;
}

static int mig_done_aborted(struct mig *m)
{
    fprintf(stderr, "migration sender: Trying to resume at our end.\n");
    if (!source_resume(m->xch, m->domid, m->name, m->away, m->renamed))
        fprintf(stderr, "migration sender: Resumed OK.\n");
    fprintf(stderr, "Migration failed due to problems at target.\n");
    return EXIT_FAILURE;
}

/* The link broke after "go": ask the target which way it went. */
static int mig_resolve_after_go(struct mig *m)
{
    enum outcome o;

    fprintf(stderr, "migration sender: lost the target after giving it"
            " permission; asking it how the migration ended.\n");
    o = resolve(m->ch, m->target, &m->copts, &m->pre, m->resolve_timeout_s,
                false);
    if (o == OUT_COMMITTED)
        return mig_done_committed(m);
    if (o == OUT_ABORTED) {
        mig_error(m, "the target aborted the migration");
        return mig_done_aborted(m);
    }
    mig_error(m, "cannot reach the target to resolve the migration");
    fprintf(stderr, "Domain %s is left suspended here as %s.  Finish the"
            " migration with:\n  xl migrate-resolve %s %s\n", m->name,
            m->away, m->name, m->target);
    return EXIT_UNRESOLVED;
}

/* Report, status byte, ferry-stats: the outcome after "go". */
static int mig_after_go(struct mig *m)
{
    struct sr_io *io = xl_chan_io(m->ch);
    char line[PREAMBLE_MAX];
    uint64_t v;
    uint8_t status;

    if (read_fixed(m->ch, msg_report, sizeof(msg_report),
                   "success/failure report message", true) ||
        sr_io_read(io, &status, 1))
        return mig_resolve_after_go(m);
    m->t_report_ns = now_ns();
    if (status) {
        fprintf(stderr, "migration sender: Target reports startup failure"
                " (status code %d).\n", status);
        mig_error(m, "the target failed to start the domain");
        if (read_fixed(m->ch, msg_go, sizeof(msg_go),
                       "permission for sender to resume", true))
            return mig_resolve_after_go(m);
        return mig_done_aborted(m);
    }
    /* Figures only: a missing stats line changes nothing. */
    xl_chan_set_timeout(m->ch, 5000);
    if (!xl_chan_read_line(m->ch, line, sizeof(line)) &&
        !strncmp(line, "ferry-stats ", 12)) {
        struct json_object *o = NULL;

        if (!xlcfg_json_parse("ferry-stats", line + 12, strlen(line + 12),
                              &o, NULL)) {
            if (!xlcfg_json_get_u64(o, "finish_ms", &v))
                m->recv_finish_ms = v;
            if (!xlcfg_json_get_u64(o, "domid", &v) &&
                v < DOMID_FIRST_RESERVED)
                m->target_domid = (long long)v;
        }
        json_object_put(o);
    }
    return mig_done_committed(m);
}

/*
 * The end of a plain xl migrate that succeeded: the figures virsh
 * domjobinfo --completed gives, on one line.
 */
static void mig_report(const struct mig *m)
{
    char sent[32], rate[32];
    uint64_t now = now_ns();

    fprintf(stderr,
            "Migration summary: total time %.2f s, downtime %" PRIu64 " ms, %s sent at %s/s, %u live passes, %" PRIu64 " pages resent\n",
            ms_since(m->t_start_ns, now) / 1000.0,
            mig_downtime_ms(m, EXIT_SUCCESS, now),
            xl_progress_bytes(sent, sizeof(sent), m->stats.bytes),
            xl_progress_bytes(rate, sizeof(rate), mig_throughput(m)),
            m->stats.iterations, m->stats.pages_resent);
}

static int migrate_domain(struct mig *m)
{
    char err[XL_CHAN_ERRLEN] = "";

    if (mig_config(m)) {
        snprintf(m->error, sizeof(m->error), "no usable configuration");
        return EXIT_FAILURE;
    }
    snprintf(m->away, sizeof(m->away), "%s--migratedaway", m->name);

    if (xl_chan_connect(&m->ch, m->target, &m->copts, err, sizeof(err))) {
        mig_error(m, "%s", err);
        return mig_fail_before_go(m);
    }
    if (mig_handshake(m))
        return mig_fail_before_go(m);

    /* Ctrl-C cancels until "go"; the engine and channel poll the flag. */
    set_signals(on_cancel_signal);
    xl_chan_set_cancel(m->ch, &cancel_requested);
    if (mig_send(m))
        return mig_fail_before_go(m);
    /*
     * Before "go" ours must be renamed away.  Do it now, while the target
     * finishes the restore, so that the hypervisor's round trip is not
     * part of the downtime; until "go" every failure renames it back as
     * it resumes it, and migrate-resolve finds it under either name.
     */
    if (xc_domain_rename(m->xch, m->domid, m->name, m->away)) {
        mig_error(m, "cannot rename domain %u to %s", m->domid, m->away);
        return mig_fail_before_go(m);
    }
    m->renamed = true;
    if (mig_read_ready(m))
        return mig_fail_before_go(m);
    fault_hit("send", "ready");
    fprintf(stderr, "migration sender: Target has acknowledged transfer.\n");

    /* The point of no return: from the first byte of "go" we do not
     * guess; a signal can no longer stop us half way. */
    set_signals(SIG_IGN);
    xl_chan_set_cancel(m->ch, NULL);
    fprintf(stderr, "migration sender: Giving target permission to start.\n");
    if (sr_io_write(xl_chan_io(m->ch), msg_go, sizeof(msg_go)))
        return mig_resolve_after_go(m);
    fault_hit("send", "go");
    return mig_after_go(m);
}

/* "100M" etc.: bytes per second. */
static int parse_u64(const char *opt, const char *s, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "migrate: %s needs a number, not \"%s\"\n", opt, s);
        return -1;
    }
    return 0;
}

/* A throttle percentage: lo..99 (the hypervisor's maximum). */
static int parse_pct(const char *opt, const char *s, unsigned int lo,
                     unsigned int *pct)
{
    uint64_t v;

    if (parse_u64(opt, s, &v))
        return -1;
    if (v < lo || v > SR_DEFAULT_THROTTLE_MAX) {
        fprintf(stderr, "migrate: %s is a percentage from %u to %u, not"
                " %s\n", opt, lo, SR_DEFAULT_THROTTLE_MAX, s);
        return -1;
    }
    *pct = (unsigned int)v;
    return 0;
}

int main_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "debug", no_argument, NULL, 0x100 },
        { "live", no_argument, NULL, 0x101 },
        { "json", no_argument, NULL, 0x102 },
        { "max-iters", required_argument, NULL, 0x103 },
        { "dirty-target", required_argument, NULL, 0x104 },
        { "max-downtime", required_argument, NULL, 0x105 },
        { "bandwidth", required_argument, NULL, 0x106 },
        { "timeout", required_argument, NULL, 0x107 },
        { "on-timeout", required_argument, NULL, 0x108 },
        { "tls-cert", required_argument, NULL, 0x109 },
        { "tls-key", required_argument, NULL, 0x10a },
        { "tls-ca", required_argument, NULL, 0x10b },
        { "resolve-timeout", required_argument, NULL, 0x10c },
        { "tls-name", required_argument, NULL, 0x10d },
        { "tls-crl", required_argument, NULL, 0x10e },
        { "insecure", no_argument, NULL, 0x10f },
        { "throttle-initial", required_argument, NULL, 0x110 },
        { "throttle-increment", required_argument, NULL, 0x111 },
        { "throttle-max", required_argument, NULL, 0x112 },
        { "no-throttle", no_argument, NULL, 0x113 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mig m = {
        .monitor = true, .resolve_timeout_s = RESOLVE_TIMEOUT_S,
        .target_domid = -1, .json_phase = -1,
    };
    int opt, nargs = 0, rc = EXIT_SUCCESS;
    bool no_throttle = false, throttle_inc_set = false;
    uint64_t v;

    fault_parse();
    while ((opt = xl_getopt(argc, argv, "FC:s:epD", opts, "migrate", 2,
                            &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'C': m.override = optarg; break;
        case 's': m.copts.ssh_command = optarg; break;
        case 'F': break;
        case 'D': break;
        case 'e': m.monitor = false; break;
        case 'p': m.paused = true; break;
        case 0x100: m.debug = true; break;
        case 0x101: break;      /* always live; accepted as in Xen */
        case 0x102: m.json = true; break;
        case 0x103:
            if (parse_u64("--max-iters", optarg, &v) || v > UINT32_MAX)
                return EXIT_FAILURE;
            m.policy.max_iterations = (unsigned int)v;
            break;
        case 0x104:
            if (parse_u64("--dirty-target", optarg, &v))
                return EXIT_FAILURE;
            m.policy.target_dirty_pages = v;
            break;
        case 0x105:
            if (parse_u64("--max-downtime", optarg, &v))
                return EXIT_FAILURE;
            m.policy.max_downtime_ms = v;
            break;
        case 0x106:
        {
            /* Bytes per second, written as a size (xl.cfg(5), SIZES). */
            int r = ferry_parse_size(optarg, SIZE_DEFAULT_BYTES,
                                     &m.policy.bandwidth_limit);

            if (r) {
                fprintf(stderr, "migrate: --bandwidth \"%s\" %s; it is a"
                        " rate in bytes per second\n", optarg,
                        ferry_size_error(r));
                return EXIT_FAILURE;
            }
            break;
        }
        case 0x107:
            if (parse_u64("--timeout", optarg, &v) || v > UINT32_MAX)
                return EXIT_FAILURE;
            m.policy.timeout_ms = v * 1000;
            break;
        case 0x108:
            if (!strcmp(optarg, "abort")) {
                m.policy.timeout_action = SR_TIMEOUT_ABORT;
            } else if (!strcmp(optarg, "force")) {
                m.policy.timeout_action = SR_TIMEOUT_FORCE;
            } else {
                fprintf(stderr, "migrate: --on-timeout is abort or force,"
                        " not \"%s\"\n", optarg);
                return EXIT_FAILURE;
            }
            break;
        case 0x109: m.copts.tls.cert = optarg; break;
        case 0x10a: m.copts.tls.key = optarg; break;
        case 0x10b: m.copts.tls.ca = optarg; break;
        case 0x10c:
            if (parse_u64("--resolve-timeout", optarg, &v) || v > 86400)
                return EXIT_FAILURE;
            m.resolve_timeout_s = (int)v;
            break;
        case 0x10d: m.copts.tls.name = optarg; break;
        case 0x10e: m.copts.tls.crl = optarg; break;
        case 0x10f: m.copts.auth.insecure = true; break;
        case 0x110:
            if (parse_pct("--throttle-initial", optarg, 1,
                          &m.policy.throttle_initial))
                return EXIT_FAILURE;
            break;
        case 0x111:
            if (parse_pct("--throttle-increment", optarg, 0,
                          &m.policy.throttle_increment))
                return EXIT_FAILURE;
            throttle_inc_set = true;
            break;
        case 0x112:
            if (parse_pct("--throttle-max", optarg, 1,
                          &m.policy.throttle_max))
                return EXIT_FAILURE;
            break;
        case 0x113: no_throttle = true; break;
        }
    }
    /* The throttle is on unless asked off (man/xl.1, THROTTLE). */
    if (no_throttle) {
        m.policy.throttle_initial = 0;
    } else {
        if (!m.policy.throttle_initial)
            m.policy.throttle_initial = SR_DEFAULT_THROTTLE_INITIAL;
        if (!throttle_inc_set)
            m.policy.throttle_increment = SR_DEFAULT_THROTTLE_INCREMENT;
        if (!m.policy.throttle_max)
            m.policy.throttle_max = SR_DEFAULT_THROTTLE_MAX;
        if (m.policy.throttle_initial > m.policy.throttle_max) {
            fprintf(stderr, "migrate: --throttle-initial %u is above"
                    " --throttle-max %u\n", m.policy.throttle_initial,
                    m.policy.throttle_max);
            return EXIT_FAILURE;
        }
    }
    if (argc - optind != 2) {
        help("migrate");
        return EXIT_FAILURE;
    }
    m.target = argv[optind + 1];
    if (!m.monitor)
        m.recv_args[nargs++] = "-e";
    if (m.debug)
        m.recv_args[nargs++] = "-d";
    if (m.paused)
        m.recv_args[nargs++] = "-p";
    m.recv_args[nargs] = NULL;
    m.copts.recv_args = m.recv_args;

    m.xch = xl_open_host();
    m.t_start_ns = now_ns();
    if (find_domain(m.xch, argv[optind], &m.domid)) {
        if (m.json) {
            snprintf(m.name, sizeof(m.name), "%s", argv[optind]);
            snprintf(m.error, sizeof(m.error), "no such domain");
            json_event(&m, NULL, NULL, EXIT_FAILURE);
        }
        return EXIT_FAILURE;
    }
    m.have_domid = true;
    domain_name(m.xch, m.domid, m.name, sizeof(m.name));
    snprintf(m.pre.name, sizeof(m.pre.name), "%s", m.name);

    rc = migrate_domain(&m);
    if (rc != EXIT_UNRESOLVED && m.pre.token[0])
        token_drop("outgoing", m.pre.uuid);
    if (m.ch) {
        xl_chan_close(m.ch, NULL);
        m.ch = NULL;
    }
    set_signals(SIG_DFL);
    if (m.json)
        json_event(&m, NULL, NULL, rc);
    else if (rc == EXIT_SUCCESS)
        mig_report(&m);
    free(m.config_json);
    return rc;
}

/* ------------------------------------------------------------------------
 * xl migrate-resolve: finish a migration xl migrate left unresolved
 * ------------------------------------------------------------------------ */

int main_migrate_resolve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "tls-cert", required_argument, NULL, 0x109 },
        { "tls-key", required_argument, NULL, 0x10a },
        { "tls-ca", required_argument, NULL, 0x10b },
        { "resolve-timeout", required_argument, NULL, 0x10c },
        { "tls-name", required_argument, NULL, 0x10d },
        { "tls-crl", required_argument, NULL, 0x10e },
        { "insecure", no_argument, NULL, 0x10f },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct xl_chan_opts copts = { 0 };
    struct preamble pre = { .monitor = true };
    char name[XC_DOMAIN_NAME_MAX], base[XC_DOMAIN_NAME_MAX];
    char away[XC_DOMAIN_NAME_MAX + 16];
    const char *arg, *target;
    xc_domaininfo_t info;
    int opt, timeout_s = RESOLVE_TIMEOUT_S, rc = EXIT_SUCCESS;
    enum outcome o;
    xc_interface *xch;
    uint32_t domid;
    uint64_t v;
    size_t n;

    while ((opt = xl_getopt(argc, argv, "s:p", opts, "migrate-resolve", 2,
                            &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 's': copts.ssh_command = optarg; break;
        case 'p': pre.paused = true; break;
        case 0x109: copts.tls.cert = optarg; break;
        case 0x10a: copts.tls.key = optarg; break;
        case 0x10b: copts.tls.ca = optarg; break;
        case 0x10c:
            if (parse_u64("--resolve-timeout", optarg, &v) || v > 86400)
                return EXIT_FAILURE;
            timeout_s = (int)v;
            break;
        case 0x10d: copts.tls.name = optarg; break;
        case 0x10e: copts.tls.crl = optarg; break;
        case 0x10f: copts.auth.insecure = true; break;
        }
    }
    if (argc - optind != 2) {
        help("migrate-resolve");
        return EXIT_FAILURE;
    }
    arg = argv[optind];
    target = argv[optind + 1];
    xch = xl_open_host();

    /* The domain as the sender left it: "<name>--migratedaway", or still
     * "<name>" if it stopped before renaming it. */
    snprintf(away, sizeof(away), "%s--migratedaway", arg);
    if (!name_in_use(xch, 0, arg) && name_in_use(xch, 0, away))
        arg = away;
    if (find_domain(xch, arg, &domid) ||
        xc_domain_getinfo_single(xch, domid, &info))
        return EXIT_FAILURE;
    domain_name(xch, domid, name, sizeof(name));
    snprintf(base, sizeof(base), "%s", name);
    n = strlen(base);
    if (n > 14 && !strcmp(base + n - 14, "--migratedaway"))
        base[n - 14] = '\0';
    snprintf(away, sizeof(away), "%s--migratedaway", base);
    snprintf(pre.op, sizeof(pre.op), "resolve");
    snprintf(pre.name, sizeof(pre.name), "%s", base);
    uuid_unparse_lower(info.handle, pre.uuid);
    /* The token xl migrate was given: it lets the target act on its
     * incoming copy (without it, the target only answers). */
    token_load("outgoing", pre.uuid, pre.token);

    o = resolve(NULL, target, &copts, &pre, timeout_s, false);
    if (o != OUT_UNREACHABLE)
        token_drop("outgoing", pre.uuid);
    if (o == OUT_COMMITTED) {
        xc_domain_destroy(xch, domid);
        printf("Domain %s runs on the target; the copy here (%s) was"
               " destroyed.\n", base, name);
        return EXIT_SUCCESS;
    }
    if (o == OUT_ABORTED) {
        if (source_resume(xch, domid, base, away, strcmp(name, base) != 0))
            return EXIT_FAILURE;
        printf("Domain %s runs here: the target has no copy of it.\n",
               base);
        return EXIT_FAILURE;
    }
    fprintf(stderr, "Cannot reach %s: domain %s stays here as %s,"
            " suspended.\n", target, base, name);
    return EXIT_UNRESOLVED;
}
