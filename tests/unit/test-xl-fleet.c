/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for xl/xl-fleet.c: the fleet inventory of `xl evacuate`
 * (schema validation with libxml2, the checks beyond the schema, the
 * messages naming file, line and element) and the placement function.
 *
 * Placement must never promise a target more than it reported free (nor
 * more than its max-memory, nor more domains than its max-domains),
 * counting reservations of migrations already in flight; it must place
 * the largest domains first, honour tags and host lists, and say why a
 * domain has nowhere to go.  The inventory must be refused, with the
 * file, line and element in the message, whenever it breaks the schema
 * or names a host twice or a host that does not exist, or when a TLS
 * file cannot be read.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "xl-fleet.h"

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

#define MIB(x) ((uint64_t)(x) << 10)

static char tmpdir[64];

/* Remove the test's directory and what it wrote there. */
static void remove_tmpdir(void)
{
    DIR *dir = opendir(tmpdir);
    struct dirent *de;
    char path[384];

    while ( dir && (de = readdir(dir)) )
    {
        if ( de->d_name[0] == '.' )
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
        unlink(path);
    }
    if ( dir )
        closedir(dir);
    rmdir(tmpdir);
}

/* Write text to DIR/name in a fresh directory; returns the path. */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    FILE *f;

    if ( !tmpdir[0] )
    {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-xl-fleet.XXXXXX");
        ASSERT(mkdtemp(tmpdir));
        atexit(remove_tmpdir);
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    ASSERT(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int load(struct fleet *f, const char *text, char *err)
{
    const char *path = write_file("fleet.xml", text);

    return fleet_load(f, path, FLEET_TEST_SCHEMA, err, FLEET_ERRLEN);
}

/* Load text, expect failure and an error containing "fleet.xml:LINE:
 * element <ELEM>:" and the words what. */
static void expect_error(const char *text, int line, const char *elem,
                         const char *what)
{
    struct fleet f;
    char err[FLEET_ERRLEN], want[128];

    ASSERT_NE(load(&f, text, err), 0);
    DIAG("%s", err);
    snprintf(want, sizeof(want), "fleet.xml:%d: element <%s>: ", line, elem);
    if ( !strstr(err, want) )
        FAIL("error \"%s\" does not contain \"%s\"", err, want);
    if ( !strstr(err, what) )
        FAIL("error \"%s\" does not contain \"%s\"", err, what);
    ASSERT_EQ(f.nr_hosts, 0);
}

static void target(struct place_target *t, const char *name,
                   uint64_t free_mib)
{
    memset(t, 0, sizeof(*t));
    t->name = name;
    t->usable = true;
    t->free_kb = MIB(free_mib);
}

static void domain(struct place_domain *d, const char *name, uint32_t domid,
                   uint64_t mib)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    d->domid = domid;
    d->need_kb = MIB(mib);
    d->target = -2;
}

/* No target holds more than it reported free or its limits allow. */
static void check_capacity(const struct place_target *t, unsigned int nt,
                           const struct place_domain *d, unsigned int nd)
{
    for ( unsigned int i = 0; i < nt; i++ )
    {
        uint64_t sum = 0;
        unsigned int n = 0;

        for ( unsigned int k = 0; k < nd; k++ )
            if ( d[k].target == (int)i )
            {
                sum += d[k].need_kb;
                n++;
            }
        ASSERT(sum <= t[i].reserved_kb);
        ASSERT(t[i].reserved_kb <= t[i].free_kb);
        if ( t[i].max_memory_kb )
            ASSERT(t[i].reserved_kb <= t[i].max_memory_kb);
        if ( t[i].max_domains )
            ASSERT(t[i].reserved_domains <= t[i].max_domains);
    }
}

/* ---------------------------------------------------------------------
 * The inventory
 * --------------------------------------------------------------------- */

static const char good[] =
    "<?xml version=\"1.0\"?>\n"
    "<fleet version=\"1\">\n"
    "  <host name=\"src\" transport=\"local\" address=\"runS\"/>\n"
    "  <host name=\"big\" transport=\"local\" address=\"/run/b\"\n"
    "        max-memory=\"1G\" max-domains=\"4\" tags=\"ssd rack2\"/>\n"
    "  <host name=\"far\" transport=\"tls\" address=\"10.0.0.2:8002\">\n"
    "    <tls cert=\"host.pem\" key=\"host.key\" ca=\"ca.pem\"/>\n"
    "  </host>\n"
    "  <host name=\"ssh1\" transport=\"ssh\" address=\"root@h1\"\n"
    "        ssh-command=\"ssh -p 2222\"/>\n"
    "  <host name=\"t6\" transport=\"tcp\" address=\"[::1]:7000\"\n"
    "        run-dir=\"/run/t6\" max-memory=\"512\"/>\n"
    "  <rule domains=\"db*\" require-tags=\"ssd\"/>\n"
    "  <rule domains=\"pinned-*\" evacuate=\"no\"/>\n"
    "  <rule domains=\"web?\" hosts=\"big far\" exclude-tags=\"rack1\"/>\n"
    "</fleet>\n";

static void write_tls_files(void)
{
    write_file("host.pem", "cert\n");
    write_file("host.key", "key\n");
    write_file("ca.pem", "ca\n");
}

TEST(inventory_good_is_read_with_every_field)
{
    struct fleet f;
    char err[FLEET_ERRLEN], path[160];
    const struct fleet_host *h;
    char *arg;

    write_tls_files();
    ASSERT_EQ(load(&f, good, err), 0);
    ASSERT_EQ(f.nr_hosts, 5);
    ASSERT_EQ(f.nr_rules, 3);

    h = fleet_find(&f, "src");
    ASSERT(h && h->transport == FLEET_LOCAL);
    /* Relative paths are relative to the inventory's directory. */
    snprintf(path, sizeof(path), "%s/runS", tmpdir);
    ASSERT_STR(h->run_dir, path);
    ASSERT_EQ(h->line, 3);

    h = fleet_find(&f, "big");
    ASSERT_EQ(h->max_memory_kb, MIB(1024));
    ASSERT_EQ(h->max_domains, 4);
    ASSERT_EQ(h->tags.n, 2);
    ASSERT(fleet_has_tag(&h->tags, "rack2"));
    arg = fleet_migrate_target(h);
    ASSERT_STR(arg, "local:/run/b");
    free(arg);

    h = fleet_find(&f, "far");
    ASSERT(h->transport == FLEET_TLS);
    snprintf(path, sizeof(path), "%s/host.key", tmpdir);
    ASSERT_STR(h->tls_key, path);
    arg = fleet_migrate_target(h);
    ASSERT_STR(arg, "tls://10.0.0.2:8002");
    free(arg);

    h = fleet_find(&f, "ssh1");
    ASSERT_STR(h->ssh_command, "ssh -p 2222");
    arg = fleet_migrate_target(h);
    ASSERT_STR(arg, "root@h1");
    free(arg);

    h = fleet_find(&f, "t6");
    ASSERT_EQ(h->max_memory_kb, MIB(512));      /* no suffix: MiB */
    ASSERT_STR(h->run_dir, "/run/t6");
    ASSERT(!fleet_find(&f, "nope"));

    ASSERT(fleet_rule_for(&f, "db1") == &f.rules[0]);
    ASSERT(!fleet_rule_for(&f, "pinned-x")->evacuate);
    ASSERT(fleet_rule_for(&f, "web1") == &f.rules[2]);
    ASSERT(fleet_rule_for(&f, "web12") == NULL);
    ASSERT_EQ(f.rules[2].hosts.n, 2);
    fleet_dispose(&f);
}

TEST(inventory_max_memory_is_a_size)
{
    static const char *const sizes[][2] = {
        { "300", "307200" },            /* MiB without a unit */
        { "100MiB", "102400" },
        { "2gb", "2097152" },
        { "1T", "1073741824" },
        { "4096K", "4096" },
        { "2048b", "2" },
    };
    struct fleet f;
    char err[FLEET_ERRLEN], text[256];
    unsigned int i;

    for ( i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++ )
    {
        snprintf(text, sizeof(text),
                 "<fleet>\n  <host name=\"a\" transport=\"local\""
                 " address=\"/a\" max-memory=\"%s\"/>\n</fleet>\n",
                 sizes[i][0]);
        ASSERT_EQ(load(&f, text, err), 0);
        ASSERT_EQ(f.hosts[0].max_memory_kb, strtoull(sizes[i][1], NULL, 10));
        fleet_dispose(&f);
    }
    /* 2^44 MiB is 2^64 bytes: refused, not wrapped to 0 (no limit). */
    expect_error("<fleet>\n  <host name=\"a\" transport=\"local\"\n"
                 "    address=\"/a\" max-memory=\"17592186044416\"/>\n"
                 "</fleet>\n", 2, "host",
                 "max-memory \"17592186044416\" is too large");
    expect_error("<fleet>\n  <host name=\"a\" transport=\"local\"\n"
                 "    address=\"/a\" max-memory=\"1000b\"/>\n"
                 "</fleet>\n", 2, "host",
                 "max-memory \"1000b\" is not a whole number of KiB");
    /* The schema refuses what is not a size at all. */
    expect_error("<fleet>\n  <host name=\"a\" transport=\"local\"\n"
                 "    address=\"/a\" max-memory=\"1.5G\"/>\n"
                 "</fleet>\n", 2, "host", "max-memory");
}

TEST(inventory_schema_violation_names_line_and_element)
{
    write_tls_files();
    /* An unknown transport: the <host> element on line 3. */
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"local\" address=\"/a\"/>\n"
                 "  <host name=\"b\" transport=\"carrier-pigeon\"\n"
                 "        address=\"/b\"/>\n"
                 "</fleet>\n", 3, "host",
                 "(transport \"carrier-pigeon\" is not one of local, ssh, "
                 "tcp, tls)");
    /* A tls host without its <tls> files. */
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"tls\"\n"
                 "        address=\"1.2.3.4:5\"/>\n"
                 "</fleet>\n", 2, "host", "Expecting an element tls");
    /* An element the schema does not know. */
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"local\" address=\"/a\"/>\n"
                 "\n"
                 "  <hots name=\"b\" transport=\"local\" address=\"/b\"/>\n"
                 "</fleet>\n", 4, "hots", "Did not expect element hots");
}

TEST(inventory_bad_xml_names_line)
{
    struct fleet f;
    char err[FLEET_ERRLEN];

    ASSERT_NE(load(&f, "<fleet>\n<host name=\"a\"\n</fleet>\n", err), 0);
    DIAG("%s", err);
    ASSERT(strstr(err, "fleet.xml:"));
}

TEST(inventory_duplicate_host_names_both_lines)
{
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"local\" address=\"/a\"/>\n"
                 "  <host name=\"b\" transport=\"local\" address=\"/b\"/>\n"
                 "  <host name=\"a\" transport=\"ssh\" address=\"h\"/>\n"
                 "</fleet>\n", 4, "host",
                 "duplicate host \"a\" (first defined at line 2)");
}

TEST(inventory_rule_naming_an_unknown_host)
{
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"local\" address=\"/a\"/>\n"
                 "  <rule domains=\"*\" hosts=\"a zz\"/>\n"
                 "</fleet>\n", 3, "rule", "unknown host \"zz\"");
}

TEST(inventory_unreadable_credential)
{
    write_tls_files();
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"tls\" address=\"h:1\">\n"
                 "    <tls cert=\"host.pem\" key=\"missing.key\"\n"
                 "         ca=\"ca.pem\"/>\n"
                 "  </host>\n"
                 "</fleet>\n", 3, "tls",
                 "cannot read key file");
    /* A directory is not a readable file either. */
    expect_error("<fleet>\n"
                 "  <host name=\"a\" transport=\"tls\" address=\"h:1\">\n"
                 "    <tls cert=\"/\" key=\"host.key\" ca=\"ca.pem\"/>\n"
                 "  </host>\n"
                 "</fleet>\n", 3, "tls",
                 "cannot read cert file /: Is a directory");
}

TEST(inventory_missing_file_and_schema)
{
    struct fleet f;
    char err[FLEET_ERRLEN];

    ASSERT_EQ(fleet_load(&f, "/nonexistent/fleet.xml", FLEET_TEST_SCHEMA,
                         err, sizeof(err)), -ENOENT);
    ASSERT_STR(err, "/nonexistent/fleet.xml: cannot read the fleet "
               "inventory: No such file or directory");
    ASSERT_NE(fleet_load(&f, write_file("f.xml", good), "/nonexistent.rng",
                         err, sizeof(err)), 0);
    ASSERT(strstr(err, "/nonexistent.rng"));
}

/* ---------------------------------------------------------------------
 * Placement
 * --------------------------------------------------------------------- */

TEST(place_largest_first_to_the_target_with_most_room)
{
    struct place_target t[2];
    struct place_domain d[3];
    unsigned int order[3];

    target(&t[0], "a", 100);
    target(&t[1], "b", 80);
    domain(&d[0], "small", 1, 10);
    domain(&d[1], "big", 2, 60);
    domain(&d[2], "mid", 3, 30);
    fleet_place_order(d, 3, order);
    ASSERT_EQ(order[0], 1);
    ASSERT_EQ(order[1], 2);
    ASSERT_EQ(order[2], 0);
    ASSERT_EQ(fleet_place(t, 2, d, 3), 0);
    /* big -> a (100 > 80); mid -> b (80 > 40); small -> b (50 > 40). */
    ASSERT_EQ(d[1].target, 0);
    ASSERT_EQ(d[2].target, 1);
    ASSERT_EQ(d[0].target, 1);
    ASSERT_EQ(t[0].reserved_kb, MIB(60));
    ASSERT_EQ(t[1].reserved_kb, MIB(40));
    check_capacity(t, 2, d, 3);
}

TEST(place_ties_go_to_the_earlier_target_and_lower_domid)
{
    struct place_target t[2];
    struct place_domain d[2];
    unsigned int order[2];

    target(&t[0], "a", 64);
    target(&t[1], "b", 64);
    domain(&d[0], "y", 9, 32);
    domain(&d[1], "x", 4, 32);
    fleet_place_order(d, 2, order);
    ASSERT_EQ(order[0], 1);     /* same size: lower domid first */
    ASSERT_EQ(fleet_place(t, 2, d, 2), 0);
    ASSERT_EQ(d[1].target, 0);
    ASSERT_EQ(d[0].target, 1);
}

TEST(place_never_overcommits_with_in_flight_reservations)
{
    struct place_target t[2];
    struct place_domain d[3];

    /* a reported 100 MiB free but 70 are promised to migrations in
     * flight: only 30 left. */
    target(&t[0], "a", 100);
    t[0].reserved_kb = MIB(70);
    t[0].reserved_domains = 2;
    target(&t[1], "b", 50);
    domain(&d[0], "d40", 1, 40);
    domain(&d[1], "d30", 2, 30);
    domain(&d[2], "d25", 3, 25);
    ASSERT_EQ(fleet_place(t, 2, d, 3), 0);
    ASSERT_EQ(d[0].target, 1);          /* only b has 40 */
    ASSERT_EQ(d[1].target, 0);          /* a: 30 left, b: 10 */
    ASSERT_EQ(d[2].target, -1);
    ASSERT(strstr(d[2].reason, "not enough memory on any target"));
    ASSERT(strstr(d[2].reason, "needs 25 MiB, the most room left is 10 MiB"));
    check_capacity(t, 2, d, 3);
}

TEST(place_exact_fit_is_allowed)
{
    struct place_target t[1];
    struct place_domain d[2];

    target(&t[0], "a", 48);
    domain(&d[0], "x", 1, 32);
    domain(&d[1], "y", 2, 16);
    ASSERT_EQ(fleet_place(t, 1, d, 2), 0);
    ASSERT_EQ(d[0].target, 0);
    ASSERT_EQ(d[1].target, 0);
    ASSERT_EQ(t[0].reserved_kb, t[0].free_kb);
}

TEST(place_honours_max_memory_and_max_domains)
{
    struct place_target t[2];
    struct place_domain d[4];

    target(&t[0], "roomy", 1000);
    t[0].max_memory_kb = MIB(50);
    target(&t[1], "few", 1000);
    t[1].max_domains = 1;
    domain(&d[0], "a", 1, 40);
    domain(&d[1], "b", 2, 30);
    domain(&d[2], "c", 3, 20);
    domain(&d[3], "e", 4, 10);
    ASSERT_EQ(fleet_place(t, 2, d, 4), 0);
    /* a -> few (room 1000 > 50); few is then full by count.  b -> roomy
     * (30 of 50); c -> roomy would need 50 of 50 - it fits exactly... */
    ASSERT_EQ(d[0].target, 1);
    ASSERT_EQ(d[1].target, 0);
    ASSERT_EQ(d[2].target, 0);
    ASSERT_EQ(d[3].target, -1);
    ASSERT(strstr(d[3].reason, "needs 10 MiB, the most room left is 0 MiB"));
    check_capacity(t, 2, d, 4);

    /* Only targets at their max-domains: a distinct reason. */
    target(&t[0], "one", 1000);
    t[0].max_domains = 1;
    domain(&d[0], "a", 1, 10);
    domain(&d[1], "b", 2, 10);
    ASSERT_EQ(fleet_place(t, 1, d, 2), 0);
    ASSERT_EQ(d[0].target, 0);
    ASSERT_EQ(d[1].target, -1);
    ASSERT_STR(d[1].reason,
               "every allowed target has reached its max-domains");
}

TEST(place_tags_pin_and_exclude)
{
    static const char *const ssd[] = { "ssd" };
    static const char *const rack1_ssd[] = { "rack1", "ssd" };
    static const char *const want_ssd[] = { "ssd" };
    static const char *const no_rack1[] = { "rack1" };
    static const char *const only_c[] = { "c" };
    struct place_filter pin = { .require_tags = want_ssd, .nr_require = 1 };
    struct place_filter avoid = { .exclude_tags = no_rack1, .nr_exclude = 1 };
    struct place_filter host = { .hosts = only_c, .nr_hosts = 1 };
    struct place_target t[3];
    struct place_domain d[4];

    target(&t[0], "a", 500);            /* no tags, most room */
    target(&t[1], "b", 100);
    t[1].tags = ssd;
    t[1].nr_tags = 1;
    target(&t[2], "c", 200);
    t[2].tags = rack1_ssd;
    t[2].nr_tags = 2;
    domain(&d[0], "db", 1, 40);
    d[0].filter[0] = &pin;              /* ssd: b or c; c has more room */
    domain(&d[1], "db-not-rack1", 2, 30);
    d[1].filter[0] = &pin;
    d[1].filter[1] = &avoid;            /* ssd and not rack1: only b */
    domain(&d[2], "anything", 3, 20);
    domain(&d[3], "on-c", 4, 10);
    d[3].filter[1] = &host;
    ASSERT_EQ(fleet_place(t, 3, d, 4), 0);
    ASSERT_EQ(d[0].target, 2);
    ASSERT_EQ(d[1].target, 1);
    ASSERT_EQ(d[2].target, 0);
    ASSERT_EQ(d[3].target, 2);

    /* Nothing matches: said so, not "not enough memory". */
    domain(&d[0], "db", 1, 10);
    d[0].filter[0] = &pin;
    d[0].filter[1] = &avoid;
    t[1].usable = false;
    ASSERT_EQ(fleet_place(t, 3, d, 1), 0);
    ASSERT_EQ(d[0].target, -1);
    ASSERT_STR(d[0].reason,
               "no reachable target matches its placement rule");
}

TEST(place_no_target_at_all)
{
    struct place_target t[2];
    struct place_domain d[1];

    target(&t[0], "a", 500);
    target(&t[1], "b", 500);
    t[0].usable = t[1].usable = false;
    domain(&d[0], "x", 1, 10);
    ASSERT_EQ(fleet_place(t, 2, d, 1), 0);
    ASSERT_EQ(d[0].target, -1);
    ASSERT_STR(d[0].reason, "no reachable target");
    ASSERT_EQ(fleet_place(t, 0, d, 1), 0);
    ASSERT_STR(d[0].reason, "no reachable target");
}

TEST(place_stay_reason_and_skip)
{
    struct place_target t[1];
    struct place_domain d[3];

    target(&t[0], "a", 500);
    domain(&d[0], "dying", 1, 10);
    d[0].stay_reason = "it is dying";
    domain(&d[1], "running", 2, 10);
    d[1].skip = true;                   /* in flight: untouched */
    domain(&d[2], "x", 3, 10);
    ASSERT_EQ(fleet_place(t, 1, d, 3), 0);
    ASSERT_EQ(d[0].target, -1);
    ASSERT_STR(d[0].reason, "it is dying");
    ASSERT_EQ(d[1].target, -2);
    ASSERT_EQ(d[2].target, 0);
    ASSERT_EQ(t[0].reserved_kb, MIB(10));
}

TEST(place_replan_without_a_lost_target)
{
    struct place_target t[3];
    struct place_domain d[4];

    target(&t[0], "a", 100);
    target(&t[1], "b", 90);
    target(&t[2], "c", 40);
    domain(&d[0], "w", 1, 50);
    domain(&d[1], "x", 2, 40);
    domain(&d[2], "y", 3, 30);
    domain(&d[3], "z", 4, 20);
    ASSERT_EQ(fleet_place(t, 3, d, 4), 0);
    check_capacity(t, 3, d, 4);
    ASSERT_EQ(d[0].target, 0);          /* w -> a (100) */
    ASSERT_EQ(d[1].target, 1);          /* x -> b (90 vs 50) */
    ASSERT_EQ(d[2].target, 0);          /* y -> a (50 vs 50 vs 40) */
    ASSERT_EQ(d[3].target, 1);          /* z -> b (50 vs 20 vs 40) */

    /* w landed on a, x is in flight to b; b dies: x's share stays with
     * the dead b (it is not counted anywhere else); y and z go again. */
    t[1].usable = false;
    d[0].skip = d[1].skip = true;
    t[0].reserved_kb -= d[2].need_kb;
    t[0].reserved_domains--;
    t[1].reserved_kb -= d[3].need_kb;
    t[1].reserved_domains--;
    ASSERT_EQ(fleet_place(t, 3, d, 4), 0);
    ASSERT_EQ(d[2].target, 0);          /* a: 50 left vs c: 40 */
    ASSERT_EQ(d[3].target, 2);          /* a: 20 vs c: 40 */
    check_capacity(t, 3, d, 4);
}
