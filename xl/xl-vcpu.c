/* SPDX-License-Identifier: MIT */
/*
 * xl vcpu-list, in the format of tools/xl/xl_vcpu.c.  Each ferry vCPU is
 * a thread of the daemon: CPU is the host CPU that thread last started
 * running on, and it may run on any (affinity "all / all").  Domain 0
 * is not listed: its vCPUs are the daemon's control slots.  Style: Xen's
 * xl/libxl style.
 */
#include <stdlib.h>

#include "xl.h"

static void print_domain_vcpuinfo(xc_interface *xch, uint32_t domid)
{
    xc_domaininfo_t info;
    char name[XC_DOMAIN_NAME_MAX];

    /* Domain 0's vCPUs are the daemon's control slots, not guest vCPUs. */
    if (domid == 0 || xc_domain_getinfo_single(xch, domid, &info))
        return;
    domain_name(xch, domid, name, sizeof(name));
    for (uint32_t v = 0; v <= info.max_vcpu_id; v++) {
        xc_vcpuinfo_t vi;

        if (xc_vcpu_getinfo(xch, domid, v, &vi))
            continue;
        printf("%-32s %5u %5u", name, domid, v);
        if (!vi.online)
            printf("%5c %3c%cp ", '-', '-', '-');
        else
            printf("%5u %3c%c- ", vi.cpu, vi.running ? 'r' : '-',
                   vi.blocked ? 'b' : '-');
        printf("%9.1f  %s / %s\n", (double)vi.cpu_time / 1e9, "all", "all");
    }
}

int main_vcpulist(int argc, char **argv)
{
    xc_interface *xch;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "vcpu-list", 0,
                            &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    printf("%-32s %5s %5s %5s %5s %9s %s\n", "Name", "ID", "VCPU", "CPU",
           "State", "Time(s)", "Affinity (Hard / Soft)");
    if (optind >= argc) {
        xc_domaininfo_t *info = calloc(1024, sizeof(*info));
        int n = info ? xc_domain_getinfolist(xch, 0, 1024, info) : -1;

        if (n < 0) {
            fprintf(stderr, "libxl_list_domain failed.\n");
            free(info);
            return EXIT_FAILURE;
        }
        for (int i = 0; i < n; i++)
            print_domain_vcpuinfo(xch, info[i].domain);
        free(info);
        return EXIT_SUCCESS;
    }
    for (; optind < argc; optind++) {
        uint32_t domid;

        if (find_domain(xch, argv[optind], &domid))
            return EXIT_FAILURE;
        print_domain_vcpuinfo(xch, domid);
    }
    return EXIT_SUCCESS;
}
