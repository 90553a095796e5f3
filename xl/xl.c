/* SPDX-License-Identifier: MIT */
/*
 * xl: ferry's command line.  Global options, the dispatch into the command
 * table, and the helpers every command uses (opening the host, resolving a
 * domain argument, option parsing with xl's messages and exit codes).
 *
 * Exit codes as xl: 0 success, 1 failure, 2 usage error.
 *
 * Style: Xen's xl/libxl style (four spaces, K&R braces).
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xl.h"

int minmsglevel = XC_WARN;
bool dryrun_only;
bool force_execution;
bool progress_use_cr;
bool timestamps;
const char *run_dir;

static xc_interface *host_xch;
static enum xc_session host_kind = XC_SESSION_FULL;

void xl_host_session(enum xc_session kind)
{
    host_kind = kind;
}

xc_interface *xl_try_open_host(char *why, size_t len)
{
    if (host_xch)
        return host_xch;
    if (!run_dir)
        run_dir = getenv("FERRY_RUNDIR");
    if (!run_dir || !*run_dir)
        run_dir = "/run/ferry";
    host_xch = xc_interface_open_session(run_dir,
                                         xc_stderr_logger(minmsglevel),
                                         host_kind);
    if (!host_xch)
        snprintf(why, len, "cannot connect to the ferry host at %s: %s",
                 run_dir, strerror(errno));
    return host_xch;
}

xc_interface *xl_open_host(void)
{
    const char *env = getenv("FERRY_RUNDIR");
    bool chosen = (run_dir && *run_dir) || (env && *env);
    char why[PATH_MAX + 128];
    xc_interface *xch = xl_try_open_host(why, sizeof(why));

    if (!xch) {
        /* libxc said why, once; without -H or FERRY_RUNDIR, say how to
         * name another host. */
        if (!chosen)
            fprintf(stderr, "(no host given: set FERRY_RUNDIR or use xl -H DIR)\n");
        exit(EXIT_FAILURE);
    }
    return xch;
}

void xl_close_host(void)
{
    xc_interface_close(host_xch);
    host_xch = NULL;
}

void help(const char *command)
{
    const struct cmd_spec *cmd;

    if (!command || !strcmp(command, "help")) {
        printf("Usage xl [-vfNtT] [-H DIR] <subcommand> [args]\n\n");
        printf("xl full list of subcommands:\n\n");
        for (int i = 0; i < cmd_table_size; i++) {
            printf(" %-19s ", cmd_table[i].name);
            if (strlen(cmd_table[i].name) > 19)
                printf("\n %-19s ", "");
            printf("%s\n", cmd_table[i].help);
        }
        return;
    }
    cmd = cmdtable_lookup(command);
    if (!cmd) {
        printf("command \"%s\" not implemented\n", command);
        return;
    }
    printf("Usage: xl [-vtT%s%s] %s %s\n\n%s.\n\n",
           cmd->modifies ? "f" : "", cmd->can_dryrun ? "N" : "",
           cmd->name, cmd->usage, cmd->help);
    if (cmd->options)
        printf("Options:\n\n%s\n", cmd->options);
}

/* xl help [VERB]: as Xen's, which handles it in main(); here it is a verb
 * of the table, so that the list shows it too.  An unknown VERB fails. */
int main_help(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "help") && !cmdtable_lookup(argv[1])) {
        help(argv[1]);
        return EXIT_FAILURE;
    }
    help(argc > 1 ? argv[1] : NULL);
    return EXIT_SUCCESS;
}

int xl_getopt(int argc, char **argv, const char *opts,
              const struct option *longopts, const char *cmd,
              int num_required, int *exit_code)
{
    static const struct option help_only[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    opterr = 0;
    opt = getopt_long(argc, argv, opts, longopts ? longopts : help_only,
                      NULL);
    if (opt == '?') {
        if (optopt == 'h') {
            help(cmd);
            *exit_code = EXIT_SUCCESS;
            return -2;
        }
        if (optopt)
            fprintf(stderr, "option `%c' not supported.\n", optopt);
        else
            fprintf(stderr, "option `%s' not supported.\n", argv[optind - 1]);
        *exit_code = EXIT_USAGE;
        return -2;
    }
    if (opt == 'h') {
        help(cmd);
        *exit_code = EXIT_SUCCESS;
        return -2;
    }
    if (opt != -1)
        return opt;
    if (argc - optind < num_required) {
        fprintf(stderr, "'xl %s' requires at least %d argument%s.\n\n", cmd,
                num_required, num_required > 1 ? "s" : "");
        help(cmd);
        *exit_code = EXIT_USAGE;
        return -2;
    }
    return -1;
}

const char *domain_name(xc_interface *xch, uint32_t domid, char *buf,
                        size_t len)
{
    if (xc_domain_get_meta(xch, domid, buf, len, NULL, NULL) || !buf[0])
        snprintf(buf, len, domid ? "(null)" : "Domain-0");
    return buf;
}

/*
 * Looks at up to 1024 domains, as find_domain does.  Create and restore
 * start at 1, the first domain a guest can be; migration's checks start
 * at 0.
 */
bool name_in_use(xc_interface *xch, uint32_t first, const char *name)
{
    xc_domaininfo_t info[1024];
    int n = xc_domain_getinfolist(xch, first, 1024, info);

    for (int i = 0; i < n; i++) {
        char other[XC_DOMAIN_NAME_MAX];

        if (!strcmp(domain_name(xch, info[i].domain, other, sizeof(other)),
                    name))
            return true;
    }
    return false;
}

const char *xl_shutdown_reason_name(unsigned int reason)
{
    static const char *const names[] = {
        "poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset",
    };

    return reason < sizeof(names) / sizeof(names[0]) ? names[reason]
                                                      : "unknown reason";
}

static unsigned int shutdown_reason(const xc_domaininfo_t *info)
{
    return (info->flags >> XEN_DOMINF_shutdownshift) &
           XEN_DOMINF_shutdownmask;
}

bool xl_is_suspended(xc_interface *xch, uint32_t domid)
{
    xc_domaininfo_t info;

    return !xc_domain_getinfo_single(xch, domid, &info) &&
           (info.flags & XEN_DOMINF_shutdown) &&
           shutdown_reason(&info) == SHUTDOWN_suspend;
}

/*
 * Why the guest cannot act on a suspend request, or NULL.  A PV guest
 * suspends itself: one that has shut down, is dying or is paused would
 * leave the caller waiting out the whole timeout.
 */
const char *xl_cannot_suspend(const xc_domaininfo_t *info, char *buf,
                              size_t len)
{
    if (info->flags & XEN_DOMINF_dying)
        return "it is dying";
    if (info->flags & XEN_DOMINF_shutdown) {
        snprintf(buf, len, "it has shut down (%s)",
                 xl_shutdown_reason_name(shutdown_reason(info)));
        return buf;
    }
    if (info->flags & XEN_DOMINF_paused)
        return "it is paused, and a PV guest must run to suspend itself "
               "(xl unpause it first)";
    return NULL;
}

int xl_suspend_domain(xc_interface *xch, uint32_t domid,
                      const _Atomic bool *cancel)
{
    xc_domaininfo_t info;
    bool asked = false;
    const char *why;
    char buf[64];

    /* Look first, then ask; after that the hypervisor answers the moment
     * the guest shuts down: the guest is down from then on, and a poll
     * would add its period to that. */
    for (int i = 0; i <= XL_SUSPEND_TIMEOUT_S * 10; i++) {
        if (cancel && atomic_load(cancel))
            return -ECANCELED;
        if (asked ? xc_domain_wait_shutdown(xch, domid, 100, &info)
                  : xc_domain_getinfo_single(xch, domid, &info))
            return -errno;
        if ((info.flags & XEN_DOMINF_shutdown) &&
            shutdown_reason(&info) == SHUTDOWN_suspend)
            return 0;
        /* Shut down for another reason, dying or paused (maybe since). */
        if ((why = xl_cannot_suspend(&info, buf, sizeof(buf)))) {
            fprintf(stderr, "domain %u %s: %s\n", domid,
                    asked ? "did not suspend" : "cannot suspend", why);
            return -EINVAL;
        }
        if (!asked) {
            if (xc_domain_shutdown_request(xch, domid, SHUTDOWN_suspend))
                return -errno;
            asked = true;
        }
    }
    fprintf(stderr, "domain %u did not suspend within %d seconds\n", domid,
            XL_SUSPEND_TIMEOUT_S);
    return -ETIMEDOUT;
}

int find_domain(xc_interface *xch, const char *p, uint32_t *domid)
{
    xc_domaininfo_t info[1024];
    char *end;
    unsigned long v;
    int n;

    errno = 0;
    v = strtoul(p, &end, 10);
    if (!errno && end != p && !*end && v < DOMID_FIRST_RESERVED) {
        *domid = (uint32_t)v;
        return 0;
    }
    n = xc_domain_getinfolist(xch, 0, 1024, info);
    for (int i = 0; i < n; i++) {
        char name[XC_DOMAIN_NAME_MAX];

        domain_name(xch, info[i].domain, name, sizeof(name));
        if (!strcmp(name, p)) {
            *domid = info[i].domain;
            return 0;
        }
    }
    /* libxl's ERROR_INVAL, as xl prints it. */
    fprintf(stderr, "%s is an invalid domain identifier (rc=%d)\n", p, -6);
    return -1;
}

static void usage_global(void)
{
    help(NULL);
}

int main(int argc, char **argv)
{
    const struct cmd_spec *cmd;
    int opt, rc;

    /* Global options stop at the first non-option: the subcommand. */
    while ((opt = getopt(argc, argv, "+vfNtTH:h")) >= 0) {
        switch (opt) {
        case 'v':
            if (minmsglevel > XC_DEBUG)
                minmsglevel--;
            break;
        case 'N': dryrun_only = true; break;
        case 'f': force_execution = true; break;
        case 't': progress_use_cr = true; break;
        case 'T': timestamps = true; break;
        case 'H': run_dir = optarg; break;
        case 'h': usage_global(); exit(EXIT_SUCCESS);
        default:
            fprintf(stderr, "unknown global option\n");
            exit(EXIT_USAGE);
        }
    }
    if (optind >= argc) {
        usage_global();
        exit(EXIT_USAGE);
    }
    cmd = cmdtable_lookup(argv[optind]);
    if (!cmd) {
        fprintf(stderr, "command not implemented\n");
        exit(EXIT_USAGE);
    }
    if (dryrun_only && !cmd->can_dryrun) {
        fprintf(stderr, "command does not implement -N (dryrun) option\n");
        exit(EXIT_USAGE);
    }
    /* Each handler parses its own options from argv[0] = the verb. */
    argc -= optind;
    argv += optind;
    optind = 1;
    rc = cmd->fn(argc, argv);
    xl_close_host();
    return rc;
}
