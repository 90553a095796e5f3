/* SPDX-License-Identifier: MIT */
/*
 * xl-fleet.h: the fleet inventory of `xl evacuate` and its placement
 * function.
 *
 * An inventory is an XML file (format: ferry-fleet(5), schema:
 * share/fleet.rng, installed as $(pkgdatadir)/fleet.rng) listing hosts -
 * name, transport and address, TLS files, capacity limits, tags - and
 * rules that pin domains to hosts or tags.  fleet_load() validates it
 * against the schema with libxml2 and then checks what a schema cannot:
 * host names are unique, hosts named by rules exist, TLS files can be
 * read.  Every error names the file, the line and the element.
 *
 * fleet_place() is a pure function: given targets (their free memory,
 * limits, tags and what is already reserved on them) and domains (their
 * memory and constraints) it chooses a target for each domain, largest
 * first, never putting more on a target than it can hold counting the
 * reservations of migrations already in flight.  The dry run and the real
 * run call it with the same inputs, so they make the same plan.
 *
 * Nothing here prints or exits; errors come back in a caller's buffer.
 * Style: Xen's xl/libxl style.
 */
#ifndef FERRY_XL_FLEET_H
#define FERRY_XL_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_ERRLEN 512

enum fleet_transport {
    FLEET_LOCAL,        /* address: the host's run directory */
    FLEET_SSH,          /* address: [user@]host for ssh */
    FLEET_TCP,          /* address: ADDR:PORT of ferry-hv --migrate-listen */
    FLEET_TLS,          /* the same, with TLS */
};

/* A NULL-terminated vector of strings, owned by its struct. */
struct fleet_strv {
    char **v;
    unsigned int n;
};

struct fleet_host {
    char *name;
    enum fleet_transport transport;
    char *address;
    char *run_dir;          /* local: the address; tcp/tls: optional */
    char *ssh_command;      /* ssh: NULL means "ssh" */
    char *tls_cert, *tls_key, *tls_ca;  /* tls: absolute paths */
    uint64_t max_memory_kb; /* 0: no limit */
    unsigned int max_domains;   /* 0: no limit */
    struct fleet_strv tags;
    int line;
};

struct fleet_rule {
    char *pattern;          /* fnmatch(3) glob on domain names */
    bool evacuate;          /* false: the domains stay on the source */
    struct fleet_strv hosts;        /* only these hosts, if any */
    struct fleet_strv require_tags; /* targets must have all of these */
    struct fleet_strv exclude_tags; /* targets must have none of these */
    int line;
};

struct fleet {
    char *file;
    struct fleet_host *hosts;
    unsigned int nr_hosts;
    struct fleet_rule *rules;
    unsigned int nr_rules;
};

/* The schema: $FERRY_DATADIR/fleet.rng if set, else the installed one. */
const char *fleet_schema_path(char *buf, size_t len);

/*
 * Read, validate and check file.  Returns 0, or -errno with err holding
 * "FILE:LINE: element <NAME>: what is wrong" (or "FILE: ..." when no
 * line is known).  f is empty (fleet_dispose-able) on failure.
 */
int fleet_load(struct fleet *f, const char *file, const char *schema,
               char *err, size_t errlen);
void fleet_dispose(struct fleet *f);

const struct fleet_host *fleet_find(const struct fleet *f, const char *name);
/* The first rule whose glob matches the domain name, or NULL. */
const struct fleet_rule *fleet_rule_for(const struct fleet *f,
                                        const char *domain);
/* The <host> argument of xl migrate for h (malloc'd; NULL on ENOMEM):
 * local:RUNDIR, tcp://ADDR, tls://ADDR or the ssh address. */
char *fleet_migrate_target(const struct fleet_host *h);
const char *fleet_transport_name(enum fleet_transport t);
bool fleet_has_tag(const struct fleet_strv *tags, const char *tag);

/* ---- placement ------------------------------------------------------- */

/* Constraints on a domain's targets; every non-empty set must hold. */
struct place_filter {
    const char *const *hosts;           /* allowed target names */
    unsigned int nr_hosts;
    const char *const *require_tags;    /* the target has all of them */
    unsigned int nr_require;
    const char *const *exclude_tags;    /* the target has none of them */
    unsigned int nr_exclude;
};

struct place_target {
    const char *name;
    const char *const *tags;
    unsigned int nr_tags;
    bool usable;                /* reachable, not lost */
    uint64_t free_kb;           /* what the host reported at the start */
    uint64_t max_memory_kb;     /* 0: no limit on what we put there */
    unsigned int max_domains;   /* 0: no limit on how many we put there */
    /* Landed and in-flight domains of this evacuation (caller and
     * fleet_place both add to these). */
    uint64_t reserved_kb;
    unsigned int reserved_domains;
};

#define PLACE_REASON_LEN 160

struct place_domain {
    const char *name;
    uint32_t domid;
    uint64_t need_kb;
    /* Why it cannot move at all (a state, a rule), or NULL. */
    const char *stay_reason;
    const struct place_filter *filter[2];   /* NULL entries: none */
    bool skip;          /* leave alone (already running, done, failed) */
    /* Results: target index or -1 with the reason. */
    int target;
    char reason[PLACE_REASON_LEN];
};

/*
 * Place the domains d[0..nd) in fleet_place_order's order (largest
 * first); domains with skip set are left alone, a domain with a
 * stay_reason gets no target and that reason.  Each chosen target's
 * reserved_kb and reserved_domains grow by the domain.  Among the
 * targets that are usable, allowed by the domain's filters, under their
 * max-domains and with room (min(free - reserved, max_memory - reserved)
 * >= need), the one with the most room left wins; ties go to the earlier
 * target.  Returns 0 or -ENOMEM.
 */
int fleet_place(struct place_target *t, unsigned int nt,
                struct place_domain *d, unsigned int nd);
/* order[0..nd): indexes of d by need, largest first, then by domid. */
void fleet_place_order(const struct place_domain *d, unsigned int nd,
                       unsigned int *order);

#endif /* FERRY_XL_FLEET_H */
