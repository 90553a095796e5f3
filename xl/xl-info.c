/* SPDX-License-Identifier: MIT */
/*
 * xl list, xl info, xl domid, xl domname and xl uptime, in xl's output
 * formats (tools/xl/xl_info.c): the same columns, widths and state
 * letters, so scripts written for Xen's xl read ferry's output unchanged.
 * Style: Xen's xl/libxl style.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <uuid/uuid.h>

#include <json-c/json.h>

#include "xl.h"
#include "xl-cfg.h"

#define MAX_DOMAINS 1024

static void print_state(const xc_domaininfo_t *i)
{
    static const char reason_letters[] = "-rscwS";
    bool shutdown = i->flags & XEN_DOMINF_shutdown;
    unsigned int reason = shutdown ? (i->flags >> XEN_DOMINF_shutdownshift) &
                                     XEN_DOMINF_shutdownmask : 0;

    printf("%c%c%c%c%c%c",
           (i->flags & XEN_DOMINF_running) ? 'r' : '-',
           (i->flags & XEN_DOMINF_blocked) ? 'b' : '-',
           (i->flags & XEN_DOMINF_paused) ? 'p' : '-',
           shutdown ? 's' : '-',
           reason < sizeof(reason_letters) - 1 ? reason_letters[reason] : '?',
           (i->flags & XEN_DOMINF_dying) ? 'd' : '-');
}

static void list_domains(xc_interface *xch, bool verbose,
                         const xc_domaininfo_t *info, int n)
{
    printf("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    if (verbose)
        printf("   UUID                            Reason-Code\tSecurity Label");
    printf("\n");
    for (int k = 0; k < n; k++) {
        const xc_domaininfo_t *i = &info[k];
        char name[XC_DOMAIN_NAME_MAX], uuid[37];

        printf("%-40s %5u %5lu %5u     ",
               domain_name(xch, i->domain, name, sizeof(name)), i->domain,
               (unsigned long)(i->tot_pages * 4 / 1024), i->nr_online_vcpus);
        print_state(i);
        printf("  %8.1f", (double)i->cpu_time / 1e9);
        if (verbose) {
            uuid_unparse_lower(i->handle, uuid);
            printf(" %s", uuid);
            if (i->flags & XEN_DOMINF_shutdown)
                printf(" %8x", (i->flags >> XEN_DOMINF_shutdownshift) &
                       XEN_DOMINF_shutdownmask);
            else
                printf(" %8s", "-");
            printf(" %16s", "-");
        }
        putchar('\n');
    }
}

/*
 * xl list -l: a JSON array of {"domid": N, "config": <stored config>},
 * printed as libxl prints JSON.  A stored config that is not JSON (it
 * always is, as xl stores it) is shown as {}.
 */
static int list_domains_details(xc_interface *xch,
                                const xc_domaininfo_t *info, int n)
{
    struct json_object *arr = json_object_new_array();
    char *text;
    bool ok = arr;

    for (int k = 0; ok && k < n; k++) {
        struct json_object *one = json_object_new_object(), *cfg = NULL;
        char name[XC_DOMAIN_NAME_MAX];
        void *blob = NULL;
        size_t len = 0;

        if (!xc_domain_get_meta(xch, info[k].domain, name, sizeof(name),
                                &blob, &len) && blob)
            xlcfg_json_parse("config", blob, len, &cfg, NULL);
        free(blob);
        if (!cfg)
            cfg = json_object_new_object();
        ok = one && !xlcfg_json_add(one, "domid",
                                    json_object_new_uint64(info[k].domain));
        if (ok)
            ok = !xlcfg_json_add(one, "config", cfg);   /* takes cfg */
        else
            json_object_put(cfg);
        if (ok)
            ok = !json_object_array_add(arr, one);
        if (!ok)
            json_object_put(one);
    }
    text = ok ? xlcfg_json_format(arr) : NULL;
    json_object_put(arr);
    if (!text) {
        fprintf(stderr, "xl list: out of memory\n");
        return EXIT_FAILURE;
    }
    fputs(text, stdout);
    free(text);
    return EXIT_SUCCESS;
}

int main_list(int argc, char **argv)
{
    static const struct option opts[] = {
        { "long", no_argument, NULL, 'l' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool details = false, verbose = false;
    xc_domaininfo_t *info;
    xc_interface *xch;
    int opt, n, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "lvh", opts, "list", 0, &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'l': details = true; break;
        case 'v': verbose = true; break;
        }
    }
    xch = xl_open_host();
    info = calloc(MAX_DOMAINS, sizeof(*info));
    if (!info)
        return EXIT_FAILURE;

    if (optind < argc) {
        uint32_t domid;

        if (find_domain(xch, argv[optind], &domid)) {
            free(info);
            return EXIT_FAILURE;
        }
        if (xc_domain_getinfo_single(xch, domid, &info[0])) {
            fprintf(stderr, "Error: Domain '%s' does not exist.\n",
                    argv[optind]);
            free(info);
            return EXIT_FAILURE;
        }
        n = 1;
    } else {
        n = xc_domain_getinfolist(xch, 0, MAX_DOMAINS, info);
        if (n < 0) {
            fprintf(stderr, "libxl_list_domain failed.\n");
            free(info);
            return EXIT_FAILURE;
        }
    }
    if (details)
        rc = list_domains_details(xch, info, n);
    else
        list_domains(xch, verbose, info, n);
    free(info);
    return rc;
}

static void info_line(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* xl info KEY (ferry): print only that key's value; found once printed. */
static const char *info_key;
static bool info_key_found;

static void info_line(const char *key, const char *fmt, ...)
{
    va_list ap;

    if (info_key && strcmp(info_key, key))
        return;
    if (info_key)
        info_key_found = true;
    else
        printf("%-23s: ", key);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* The host CPU's clock in MHz, as /proc/cpuinfo reports it (0 if not). */
static unsigned int cpu_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    double mhz = 0;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
            break;
    if (f)
        fclose(f);
    return (unsigned int)mhz;
}

int main_info(int argc, char **argv)
{
    struct xc_host_info hi;
    struct utsname u;
    xc_interface *xch;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "info", 0, &rc)) != -1)
        if (opt == -2)
            return rc;
    if (argc - optind > 1) {
        fprintf(stderr, "'xl info' takes at most one key.\n\n");
        help("info");
        return EXIT_USAGE;
    }
    info_key = optind < argc ? argv[optind] : NULL;
    xch = xl_open_host();
    if (xc_host_info(xch, &hi))
        return EXIT_FAILURE;
    uname(&u);
    info_line("host", "%s", u.nodename);
    info_line("release", "%s", u.release);
    info_line("version", "%s", u.version);
    info_line("machine", "%s", u.machine);
    info_line("nr_cpus", "%u", hi.nr_cpus);
    info_line("max_cpu_id", "%u", hi.nr_cpus ? hi.nr_cpus - 1 : 0);
    info_line("nr_nodes", "%u", 1);
    info_line("cores_per_socket", "%u", hi.nr_cpus);
    info_line("threads_per_core", "%u", 1);
    info_line("cpu_mhz", "%u", cpu_mhz());
    info_line("hw_caps", "%s", "0");
    info_line("virt_caps", "%s", "pv");
    info_line("total_memory", "%llu",
              (unsigned long long)(hi.total_pages >> 8));
    info_line("free_memory", "%llu",
              (unsigned long long)(hi.free_pages >> 8));
    info_line("sharing_freed_memory", "%u", 0);
    info_line("sharing_used_memory", "%u", 0);
    info_line("outstanding_claims", "%u", 0);
    info_line("free_cpus", "%u", 0);
    info_line("xen_major", "%u", hi.xen_major);
    info_line("xen_minor", "%u", hi.xen_minor);
    info_line("xen_extra", "%s", hi.xen_extra);
    info_line("xen_version", "%u.%u%s", hi.xen_major, hi.xen_minor,
              hi.xen_extra);
    info_line("xen_caps", "%s", "xen-3.0-x86_64");
    info_line("xen_scheduler", "%s", "ferry");
    info_line("xen_pagesize", "%u", 4096);
    info_line("platform_params", "%s", "virt_start=0xffff800000000000");
    info_line("xen_changeset", "%s", "ferry");
    info_line("xen_commandline", "%s", run_dir);
    info_line("cc_compiler", "%s", __VERSION__);
    info_line("cc_compile_by", "%s", "ferry");
    info_line("cc_compile_domain", "%s", "");
    info_line("cc_compile_date", "%s", __DATE__);
    info_line("build_id", "%s", "");
    info_line("xenstore_features", "%s", "0x00000000");
    info_line("ferry_version", "%s", hi.version);
    info_line("ferry_run_dir", "%s", run_dir);
    info_line("ferry_domains", "%u", hi.nr_domains);
    info_line("xend_config_format", "%u", 4);
    if (info_key && !info_key_found) {
        fprintf(stderr, "xl info: no key \"%s\" (xl info lists them)\n",
                info_key);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

int main_domid(int argc, char **argv)
{
    xc_domaininfo_t info[MAX_DOMAINS];
    xc_interface *xch;
    const char *domname;
    int n, opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "domid", 1, &rc)) != -1)
        if (opt == -2)
            return rc;
    domname = argv[optind];
    xch = xl_open_host();
    n = xc_domain_getinfolist(xch, 0, MAX_DOMAINS, info);
    for (int i = 0; i < n; i++) {
        char name[XC_DOMAIN_NAME_MAX];

        if (!strcmp(domain_name(xch, info[i].domain, name, sizeof(name)),
                    domname)) {
            printf("%u\n", info[i].domain);
            return EXIT_SUCCESS;
        }
    }
    fprintf(stderr, "Can't get domid of domain name '%s', maybe this domain does not exist.\n",
            domname);
    return EXIT_FAILURE;
}

int main_domname(int argc, char **argv)
{
    char name[XC_DOMAIN_NAME_MAX];
    xc_domaininfo_t info;
    xc_interface *xch;
    unsigned long domid;
    char *end;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "domname", 1,
                            &rc)) != -1)
        if (opt == -2)
            return rc;
    domid = strtoul(argv[optind], &end, 10);
    if (end == argv[optind] || *end) {
        fprintf(stderr, "Invalid domain id.\n\n");
        return EXIT_FAILURE;
    }
    xch = xl_open_host();
    if (domid >= DOMID_FIRST_RESERVED ||
        xc_domain_getinfo_single(xch, (uint32_t)domid, &info)) {
        fprintf(stderr, "Can't get domain name of domain id '%lu', maybe this domain does not exist.\n",
                domid);
        return EXIT_FAILURE;
    }
    printf("%s\n", domain_name(xch, (uint32_t)domid, name, sizeof(name)));
    return EXIT_SUCCESS;
}

/* "[D day[s], ]HH:MM[:SS]", as Xen's uptime_to_string. */
static void print_uptime_string(unsigned long up, bool short_mode)
{
    unsigned long day = up / 86400, hour = up / 3600 % 24,
                  min = up / 60 % 60, sec = up % 60;

    if (day)
        printf("%lu day%s, ", day, day > 1 ? "s" : "");
    if (short_mode)
        printf("%2lu:%02lu", hour, min);
    else
        printf("%2lu:%02lu:%02lu", hour, min, sec);
}

/*
 * One line of xl uptime.  Domain 0's uptime is the host's (the daemon's:
 * ferry's domain 0 starts with it); a guest's runs from when the toolstack
 * first named it, i.e. its create, restore or incoming migration, as
 * libxl's start_time does.
 */
static void print_domain_uptime(xc_interface *xch, uint32_t domid,
                                bool short_mode, time_t now,
                                uint64_t host_up_s)
{
    char name[XC_DOMAIN_NAME_MAX];
    uint64_t start;
    unsigned long up;

    if (domid == 0) {
        up = (unsigned long)host_up_s;
    } else {
        if (xc_domain_start_time(xch, domid, &start) || !start)
            return;
        up = (uint64_t)now > start ? (unsigned long)((uint64_t)now - start)
                                   : 0;
    }
    domain_name(xch, domid, name, sizeof(name));
    if (short_mode) {
        char clock[16];
        struct tm tm;

        strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&now, &tm));
        printf(" %s up ", clock);
        print_uptime_string(up, true);
        printf(", %s (%u)\n", name, domid);
    } else {
        printf("%-33s %4u ", name, domid);
        print_uptime_string(up, false);
        putchar('\n');
    }
}

int main_uptime(int argc, char **argv)
{
    struct xc_host_info hi;
    xc_interface *xch;
    bool short_mode = false;
    time_t now;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "sh", NULL, "uptime", 0,
                            &rc)) != -1) {
        if (opt == -2)
            return rc;
        if (opt == 's')
            short_mode = true;
    }
    xch = xl_open_host();
    if (xc_host_info(xch, &hi))
        return EXIT_FAILURE;
    now = time(NULL);
    if (!short_mode)
        printf("%-33s %4s %s\n", "Name", "ID", "Uptime");
    if (optind >= argc) {
        xc_domaininfo_t info[MAX_DOMAINS];
        int n = xc_domain_getinfolist(xch, 0, MAX_DOMAINS, info);

        for (int i = 0; i < n; i++)
            print_domain_uptime(xch, info[i].domain, short_mode, now,
                                hi.uptime_ms / 1000);
        return EXIT_SUCCESS;
    }
    for (; optind < argc; optind++) {
        uint32_t domid;

        if (find_domain(xch, argv[optind], &domid))
            return EXIT_FAILURE;
        print_domain_uptime(xch, domid, short_mode, now, hi.uptime_ms / 1000);
    }
    return EXIT_SUCCESS;
}
