/* SPDX-License-Identifier: MIT */
/*
 * xl dmesg: print (and with -c clear) the hypervisor's log ring; xl
 * rename; xl audit (ferry's own): run the hypervisor's auditor.  Messages
 * as tools/xl/xl_misc.c.  Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xl.h"

int main_dmesg(int argc, char **argv)
{
    static const struct option opts[] = {
        { "clear", no_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    xc_interface *xch;
    uint64_t cursor = 0;
    char buf[65536];
    bool clear = false;
    int64_t n;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "ch", opts, "dmesg", 0, &rc)) != -1) {
        if (opt == -2)
            return rc;
        if (opt == 'c')
            clear = true;
    }
    xch = xl_open_host();
    while ((n = xc_dmesg_read(xch, buf, sizeof(buf), &cursor, clear)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return n < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main_rename(int argc, char **argv)
{
    char name[XC_DOMAIN_NAME_MAX];
    xc_interface *xch;
    uint32_t domid;
    const char *dom, *new_name;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "rename", 2, &rc)) != -1)
        if (opt == -2)
            return rc;
    dom = argv[optind];
    new_name = argv[optind + 1];
    xch = xl_open_host();
    if (find_domain(xch, dom, &domid))
        return EXIT_FAILURE;
    /* As libxl_domain_rename with the name xl resolved: only if nobody
     * renamed it since, and never to another domain's name. */
    domain_name(xch, domid, name, sizeof(name));
    if (domid == 0 || !*new_name ||
        xc_domain_rename(xch, domid, name, new_name)) {
        if (errno == EEXIST)
            fprintf(stderr, "Domain with name \"%s\" already exists.\n",
                    new_name);
        fprintf(stderr, "Can't rename domain '%s'.\n", dom);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

int main_audit(int argc, char **argv)
{
    xc_interface *xch;
    char msg[1024];
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "audit", 0, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    switch (xc_audit(xch, msg, sizeof(msg))) {
    case 0:
        printf("audit: clean\n");
        return EXIT_SUCCESS;
    case 1:
        printf("audit: %s\n", msg);
        return EXIT_FAILURE;
    default:
        fprintf(stderr, "audit failed: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
}
