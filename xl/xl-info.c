/* SPDX-License-Identifier: MIT */
/*
 * xl list and xl info, in xl's output formats (tools/xl/xl_info.c): the
 * same columns, widths and state letters, so scripts written for Xen's xl
 * read ferry's output unchanged.  Style: Xen's xl/libxl style.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <uuid/uuid.h>

#include "xl.h"

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

/* xl list -l: a JSON array of {"domid": N, "config": <stored config>}. */
static void list_domains_details(xc_interface *xch,
                                 const xc_domaininfo_t *info, int n)
{
    printf("[\n");
    for (int k = 0; k < n; k++) {
        char name[XC_DOMAIN_NAME_MAX];
        void *blob = NULL;
        size_t len = 0;

        if (xc_domain_get_meta(xch, info[k].domain, name, sizeof(name),
                               &blob, &len))
            blob = NULL;
        printf("    {\n        \"domid\": %u,\n        \"config\": %s\n    }%s\n",
               info[k].domain, blob ? (char *)blob : "{}",
               k + 1 < n ? "," : "");
        free(blob);
    }
    printf("]\n");
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
        list_domains_details(xch, info, n);
    else
        list_domains(xch, verbose, info, n);
    free(info);
    return EXIT_SUCCESS;
}

static void info_line(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void info_line(const char *key, const char *fmt, ...)
{
    va_list ap;

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
    return EXIT_SUCCESS;
}
