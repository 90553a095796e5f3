/* SPDX-License-Identifier: MIT */
/*
 * xl dmesg: print the hypervisor's log ring; xl audit (ferry's own): run
 * the hypervisor's auditor.  Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xl.h"

int main_dmesg(int argc, char **argv)
{
    xc_interface *xch;
    uint64_t cursor = 0;
    char buf[65536];
    int64_t n;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "dmesg", 0, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    while ((n = xc_dmesg_read(xch, buf, sizeof(buf), &cursor)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return n < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
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
