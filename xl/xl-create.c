/* SPDX-License-Identifier: MIT */
/*
 * xl create, and the per-domain monitor that applies on_poweroff,
 * on_reboot and on_crash (Xen: the "xl-<name>" process xl leaves behind
 * unless -e is given).
 *
 * create: parse the config (file, then key=value overrides), resolve the
 * kernel (a path, or the name of a shipped guest), create the domain,
 * store its name and config (JSON, as libxl keeps it) in the host, build
 * it, unpause it unless -p.  Any failure destroys the half-built domain:
 * nothing is left behind.
 *
 * Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "common/path.h"
#include "xl.h"
#include "xl-cfg.h"

#ifndef FERRY_GUESTDIR
#define FERRY_GUESTDIR "/usr/local/share/ferry/guests"
#endif
#ifndef FERRY_BINDIR
#define FERRY_BINDIR "/usr/local/bin"
#endif

/* ------------------------------------------------------------------------
 * Finding the guest image
 * ------------------------------------------------------------------------ */

static bool readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/*
 * A kernel with a '/' is a path.  Otherwise it names a shipped guest,
 * looked for as NAME.img in $FERRY_GUEST_PATH (colon-separated), next to
 * this xl in the build tree (../guests), then in the guest dir of the
 * install this xl runs from (common/path.h: staged or moved installs
 * too), then in the configured guest dir.
 */
static char *resolve_kernel(const char *kernel)
{
    char self[PATH_MAX], *p, *list, *save = NULL;
    char path[PATH_MAX + 64];
    ssize_t n;

    if (strchr(kernel, '/'))
        return readable(kernel) ? strdup(kernel) : NULL;
    list = getenv("FERRY_GUEST_PATH") ? strdup(getenv("FERRY_GUEST_PATH"))
                                      : NULL;
    for (p = list ? strtok_r(list, ":", &save) : NULL; p;
         p = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof(path), "%s/%s.img", p, kernel);
        if (readable(path)) {
            free(list);
            return strdup(path);
        }
    }
    free(list);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        if ((p = strrchr(self, '/')))
            *p = '\0';
        snprintf(path, sizeof(path), "%s/../guests/%s.img", self, kernel);
        if (readable(path))
            return strdup(path);
    }
    if (ferry_relocate(FERRY_BINDIR, FERRY_GUESTDIR, self, sizeof(self))) {
        snprintf(path, sizeof(path), "%s/%s.img", self, kernel);
        if (readable(path))
            return strdup(path);
    }
    snprintf(path, sizeof(path), "%s/%s.img", FERRY_GUESTDIR, kernel);
    return readable(path) ? strdup(path) : NULL;
}

static void *read_file(const char *path, size_t *len)
{
    struct stat st;
    void *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1 << 30)) {
        buf = malloc((size_t)st.st_size);
        if (buf && read(fd, buf, (size_t)st.st_size) != st.st_size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)st.st_size;
    }
    close(fd);
    return buf;
}

/* ------------------------------------------------------------------------
 * Creating
 * ------------------------------------------------------------------------ */

int xl_create_domain(xc_interface *xch, const struct ferry_domain_config *dc,
                     bool paused, uint32_t *domid_r)
{
    struct xc_dom_args args = { 0 };
    char *kernel = NULL, *json = NULL;
    void *image = NULL;
    uint32_t domid = DOMID_ANY;
    bool created = false;
    int rc = -1;

    kernel = resolve_kernel(dc->kernel);
    if (!kernel) {
        fprintf(stderr, "kernel \"%s\": no such file or shipped guest\n",
                dc->kernel);
        goto out;
    }
    image = read_file(kernel, &args.image_len);
    if (!image) {
        fprintf(stderr, "cannot read kernel %s: %s\n", kernel,
                strerror(errno));
        goto out;
    }
    if (name_in_use(xch, 1, dc->name)) {
        fprintf(stderr, "Domain with name \"%s\" already exists.\n", dc->name);
        goto out;
    }
    json = ferry_domain_config_to_json(dc);
    if (!json)
        goto out;

    if (xc_domain_create(xch, &domid, dc->maxvcpus, dc->uuid))
        goto out;
    created = true;
    if (xc_domain_set_meta(xch, domid, dc->name, json, strlen(json)) ||
        xc_domain_setmaxmem(xch, domid, dc->maxmem_mib * 1024))
        goto out;
    args.image = image;
    args.nr_pages = dc->memory_mib << 8;
    args.cmdline = dc->cmdline;
    if (xc_dom_build_pv(xch, domid, &args, NULL))
        goto out;
    if (!paused && xc_domain_unpause(xch, domid))
        goto out;
    *domid_r = domid;
    rc = 0;
 out:
    if (rc && created)
        xc_domain_destroy(xch, domid);
    free(kernel);
    free(image);
    free(json);
    return rc;
}

/* ------------------------------------------------------------------------
 * The monitor: applies on_poweroff/on_reboot/on_crash
 * ------------------------------------------------------------------------ */

static enum ferry_action action_for(const struct ferry_domain_config *dc,
                                    unsigned int reason)
{
    switch (reason) {
    case SHUTDOWN_poweroff: return dc->on_poweroff;
    case SHUTDOWN_reboot: return dc->on_reboot;
    case SHUTDOWN_crash: return dc->on_crash;
    case SHUTDOWN_watchdog: return FERRY_ACTION_DESTROY;
    default: return FERRY_ACTION_PRESERVE;  /* suspend: the saver's */
    }
}

/*
 * Watch domid until it is gone or left for good.  Runs in a detached
 * child, blocked in the hypervisor until the guest shuts down (ferry's
 * stand-in for xl's xenstore watch); a domain suspended for a save or a
 * migration is looked at again every 100 ms until it runs on or goes.
 */
static void monitor(const char *rundir, uint32_t domid,
                    struct ferry_domain_config *dc)
{
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    xc_interface *xch = xc_interface_open(rundir, NULL);

    while (xch) {
        char name[XC_DOMAIN_NAME_MAX];
        xc_domaininfo_t info;
        unsigned int reason;

        if (xc_domain_wait_shutdown(xch, domid, 1000,
                                    &info) ||
            (info.flags & XEN_DOMINF_dying))
            break;                          /* gone, or being destroyed */
        if (!(info.flags & XEN_DOMINF_shutdown))
            continue;
        reason = (info.flags >> XEN_DOMINF_shutdownshift) &
                 XEN_DOMINF_shutdownmask;
        if (reason == SHUTDOWN_suspend) {
            nanosleep(&tick, NULL);         /* a save or migration's */
            continue;
        }
        switch (action_for(dc, reason)) {
        case FERRY_ACTION_DESTROY:
        case FERRY_ACTION_COREDUMP_DESTROY:
            xc_domain_destroy(xch, domid);
            goto out;
        case FERRY_ACTION_RESTART:
        case FERRY_ACTION_RESTART_RENAME:
        case FERRY_ACTION_COREDUMP_RESTART:
            /* The new domain keeps the name the old one has now (xl
             * rename), as xl restarts from the retrieved configuration. */
            if (!xc_domain_get_meta(xch, domid, name, sizeof(name), NULL,
                                    NULL) && name[0] &&
                strcmp(name, dc->name)) {
                char *copy = strdup(name);

                if (copy) {
                    free(dc->name);
                    dc->name = copy;
                }
            }
            xc_domain_destroy(xch, domid);
            if (xl_create_domain(xch, dc, false, &domid))
                goto out;
            continue;
        default:
            goto out;                       /* preserve */
        }
    }
 out:
    xc_interface_close(xch);
}

void xl_spawn_monitor(uint32_t domid, struct ferry_domain_config *dc)
{
    pid_t pid = fork();

    if (pid != 0)
        return;
    setsid();
    if (fork() != 0)
        _exit(0);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    monitor(run_dir, domid, dc);
    _exit(0);
}

/* ------------------------------------------------------------------------
 * xl create
 * ------------------------------------------------------------------------ */

int main_create(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dryrun", no_argument, NULL, 'n' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    bool paused = false, console = false, dryrun = dryrun_only, quiet = false;
    bool monitor_it = true, python = false;
    const char *file;
    xc_interface *xch;
    uint32_t domid;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "pcnqeFdh", opts, "create", 1,
                            &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'p': paused = true; break;
        case 'c': console = true; break;
        case 'n': dryrun = true; break;
        case 'q': quiet = true; break;
        case 'e': monitor_it = false; break;
        case 'F': break;                    /* ferry's monitor is detached */
        case 'd': break;
        }
    }
    file = argv[optind++];
    if (!quiet)
        fprintf(stderr, "Parsing config from %s\n", file);
    ferry_domain_config_init(&dc);
    if (ferry_domain_config_load(&dc, file,
                                 (const char *const *)argv + optind,
                                 (unsigned int)(argc - optind), &python,
                                 &err)) {
        fprintf(stderr, "%s\n", err.msg);
        if (python)
            fprintf(stderr, "warning: Config file looks like it contains Python code.\nwarning:  Arbitrary Python is no longer supported.\nwarning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n");
        ferry_domain_config_dispose(&dc);
        return EXIT_FAILURE;
    }
    for (unsigned int i = 0; i < dc.nr_warnings; i++)
        fprintf(stderr, "%s\n", dc.warnings[i]);
    if (dryrun) {
        char *json = ferry_domain_config_to_json(&dc);

        printf("%s\n", json ? json : "");
        free(json);
        /* The keys ferry ignores, as xl.cfg(5) promises, on stderr so
         * that stdout stays the JSON alone. */
        for (unsigned int i = 0; i < dc.nr_unknown; i++)
            fprintf(stderr, "%s:%d: ignored (not supported by ferry): %s = %s\n",
                    dc.unknown[i].source, dc.unknown[i].line,
                    dc.unknown[i].key, dc.unknown[i].value);
        ferry_domain_config_dispose(&dc);
        return EXIT_SUCCESS;
    }

    xch = xl_open_host();
    /* With -c the console attaches before the guest runs, so that it gets
     * every byte the guest writes, even from a guest that is done before
     * a reader started after it could look. */
    if (xl_create_domain(xch, &dc, paused || console, &domid)) {
        ferry_domain_config_dispose(&dc);
        return EXIT_FAILURE;
    }
    if (monitor_it) {
        fflush(NULL);
        xl_spawn_monitor(domid, &dc);
    }
    ferry_domain_config_dispose(&dc);
    if (console)
        return xl_console_follow(xch, domid, false, !paused);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------------
 * xl shutdown and xl console
 * ------------------------------------------------------------------------ */

static bool wait_shutdown(xc_interface *xch, uint32_t domid, int timeout_s)
{
    for (int i = 0; timeout_s <= 0 || i < timeout_s * 10; i++) {
        xc_domaininfo_t info;

        if (xc_domain_wait_shutdown(xch, domid, 100, &info) ||
            (info.flags & (XEN_DOMINF_shutdown | XEN_DOMINF_dying)))
            return true;
    }
    return false;
}

/*
 * xl shutdown and xl reboot (Xen's main_shutdown_or_reboot): ask the guest
 * to power off or to reboot; it acts when it can, and the domain's monitor
 * applies on_poweroff or on_reboot once it has.
 */
static int shutdown_or_reboot(bool reboot, int argc, char **argv)
{
    static const struct option opts[] = {
        { "all", no_argument, NULL, 'a' },
        { "wait", no_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *what = reboot ? "reboot" : "shutdown";
    bool all = false, wait_it = false;
    xc_interface *xch;
    uint32_t ids[1024];
    int n = 0, opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "awFh", opts, what, 0,
                            &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'a': all = true; break;
        case 'w': wait_it = true; break;
        case 'F': break;
        }
    }
    if (!all && optind >= argc) {
        fprintf(stderr, "'xl %s' requires at least 1 argument.\n\n", what);
        help(what);
        return EXIT_USAGE;
    }
    xch = xl_open_host();
    if (all) {
        xc_domaininfo_t info[1024];
        int m = xc_domain_getinfolist(xch, 1, 1024, info);

        for (int i = 0; i < m; i++)
            ids[n++] = info[i].domain;
    } else if (find_domain(xch, argv[optind], &ids[n++])) {
        return EXIT_FAILURE;
    }
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "%s domain %u\n",
                reboot ? "Rebooting" : "Shutting down", ids[i]);
        if (xc_domain_shutdown_request(xch, ids[i], reboot ? SHUTDOWN_reboot
                                                           : SHUTDOWN_poweroff)) {
            fprintf(stderr, "%s failed (rc=%d)\n", what, -errno);
            rc = EXIT_FAILURE;
        }
    }
    if (wait_it) {
        for (int i = 0; i < n; i++) {
            if (!wait_shutdown(xch, ids[i], 0))
                rc = EXIT_FAILURE;
            else
                fprintf(stderr, "Domain %u has been shut down, reason code %d\n",
                        ids[i], reboot ? SHUTDOWN_reboot : SHUTDOWN_poweroff);
        }
        if (n)
            fprintf(stderr, "All domains have been shut down\n");
    }
    return rc;
}

int main_shutdown(int argc, char **argv)
{
    return shutdown_or_reboot(false, argc, argv);
}

int main_reboot(int argc, char **argv)
{
    return shutdown_or_reboot(true, argc, argv);
}

int main_console(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dump", no_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    xc_interface *xch;
    uint32_t domid;
    bool dump = false;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "t:n:e:h", opts, "console", 1,
                            &rc)) != -1) {
        if (opt == -2)
            return rc;
        if (opt == 'D')
            dump = true;
        if (opt == 't' && strcmp(optarg, "pv")) {
            fprintf(stderr, "console type %s is not available for a PV domain\n",
                    optarg);
            return EXIT_FAILURE;
        }
    }
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    return xl_console_follow(xch, domid, dump, false);
}

/*
 * Print what the guest wrote so far, then (unless dump, ferry's --dump for
 * scripts) follow it until the domain is gone or, unless on a terminal,
 * shut down for good (SIGINT and SIGTERM keep their default action, as
 * there is nothing to clean up).  The host keeps the ring of a domain this
 * reader attached to until the reader has drained it, so the end of the
 * domain never cuts its last output: reads go on until the host answers
 * that the domain is gone.  With unpause, the domain is unpaused once the
 * reader has attached (xl create -c); if that fails, it is destroyed.
 */
int xl_console_follow(xc_interface *xch, uint32_t domid, bool dump,
                      bool unpause)
{
    struct timespec tick = { 0, 50 * 1000 * 1000 };
    uint64_t cursor = 0, lost;
    char buf[16384];
    bool ending = false;

    for (;;) {
        int64_t got = xc_console_read(xch, domid, buf, sizeof(buf), &cursor,
                                      &lost);
        xc_domaininfo_t info;

        if (got < 0) {
            if (unpause) {
                /* Could not attach: the guest must not wait for a
                 * reader that will not come. */
                xc_domain_unpause(xch, domid);
                return EXIT_FAILURE;
            }
            break;                          /* gone, and drained */
        }
        if (lost)
            fprintf(stderr, "[xl console: %llu bytes of output were lost]\n",
                    (unsigned long long)lost);
        if (got) {
            fwrite(buf, 1, (size_t)got, stdout);
            fflush(stdout);
            continue;
        }
        if (unpause) {
            unpause = false;
            if (xc_domain_unpause(xch, domid)) {
                xc_domain_destroy(xch, domid);
                return EXIT_FAILURE;
            }
            continue;
        }
        if (dump || ending)
            break;
        /* Stopped for good: one more read takes what it wrote last. */
        if (xc_domain_getinfo_single(xch, domid, &info) ||
            (info.flags & XEN_DOMINF_dying) ||
            ((info.flags & XEN_DOMINF_shutdown) &&
             ((info.flags >> XEN_DOMINF_shutdownshift) &
              XEN_DOMINF_shutdownmask) != SHUTDOWN_suspend &&
             !isatty(STDOUT_FILENO))) {
            ending = true;
            continue;
        }
        nanosleep(&tick, NULL);
    }
    return EXIT_SUCCESS;
}
