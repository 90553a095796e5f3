/* SPDX-License-Identifier: MIT */
/*
 * xl.h: internals of ferry's xl, shared by its files.
 *
 * xl is a table of commands (xl-cmdtable.c); each command's handler is a
 * main_<verb>(argc, argv) that returns EXIT_SUCCESS or EXIT_FAILURE as if
 * it were main().  Only xl prints and exits; libxc reports through the
 * logger xl gives it, which prints to stderr.
 *
 * Style: Xen's xl/libxl style (four spaces, K&R braces).
 */
#ifndef FERRY_XL_H
#define FERRY_XL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "xc.h"

struct cmd_spec {
    const char *name;
    int (*fn)(int argc, char **argv);
    bool can_dryrun;
    bool modifies;
    const char *help;
    const char *usage;
    const char *options;
};

extern const struct cmd_spec cmd_table[];
extern const int cmd_table_size;
const struct cmd_spec *cmdtable_lookup(const char *name);

/* Global options (xl [-v] [-N] [-f] [-t] [-T] [-H DIR] <subcommand>). */
extern int minmsglevel;
extern bool dryrun_only;
extern bool force_execution;
extern bool progress_use_cr;
extern bool timestamps;
extern const char *run_dir;

#define EXIT_USAGE 2

/* The host xl talks to: -H DIR, else $FERRY_RUNDIR, else /run/ferry. */
xc_interface *xl_open_host(void);
/*
 * The kind of session xl_open_host() opens (a full one unless told):
 * commands that parse untrusted streams ask for a control session, so
 * that the process never holds machine memory (ferry-hv(8), THREAT
 * MODEL); the restore engine builds through a builder session of its
 * own.
 */
void xl_host_session(enum xc_session kind);
/* The same without exiting: NULL, and why in why, if it cannot. */
xc_interface *xl_try_open_host(char *why, size_t len);
void xl_close_host(void);

/*
 * Parse the subcommand's options like xl's SWITCH_FOREACH_OPT: getopt_long
 * with -h/--help added; prints usage and returns -1 (caller exits with
 * *exit_code) on -h, an unknown option, or fewer than num_required
 * positional arguments.
 */
int xl_getopt(int argc, char **argv, const char *opts,
              const struct option *longopts, const char *cmd,
              int num_required, int *exit_code);
void help(const char *command);

/* Resolve a name or numeric ID; prints xl's error and returns -1. */
int find_domain(xc_interface *xch, const char *p, uint32_t *domid);
/* The name of a domain ("Domain-0" for 0); buf gets it. */
const char *domain_name(xc_interface *xch, uint32_t domid, char *buf,
                        size_t len);
/* Whether a domain with ID first or above is called name. */
bool name_in_use(xc_interface *xch, uint32_t first, const char *name);

/*
 * Suspend: ask the guest to suspend itself and wait until it has, at most
 * XL_SUSPEND_TIMEOUT_S seconds or until *cancel (if given) is set.  0 once
 * the domain is shut down for suspend; -EINVAL at once (with a message)
 * if it cannot act on the request: shut down for another reason, dying,
 * or paused; -ETIMEDOUT (with a message), -ECANCELED, or another -errno.
 */
#define XL_SUSPEND_TIMEOUT_S 30
int xl_suspend_domain(xc_interface *xch, uint32_t domid,
                      const _Atomic bool *cancel);
/* Why the guest cannot act on a suspend request (shut down, dying,
 * paused), in buf or a constant, or NULL if it can. */
const char *xl_cannot_suspend(const xc_domaininfo_t *info, char *buf,
                              size_t len);
/* Whether the domain is shut down for suspend. */
bool xl_is_suspended(xc_interface *xch, uint32_t domid);
/* "poweroff", "reboot", ... for a SHUTDOWN_* reason. */
const char *xl_shutdown_reason_name(unsigned int reason);

struct ferry_domain_config;
/* Create, name, build and (unless paused) start a domain from dc. */
int xl_create_domain(xc_interface *xch, const struct ferry_domain_config *dc,
                     bool paused, uint32_t *domid_r);

/* Print a domain's console and follow it (xl console); see xl-create.c. */
int xl_console_follow(xc_interface *xch, uint32_t domid, bool dump,
                      bool unpause);

/* Leave a detached monitor applying dc's on_poweroff/reboot/crash. */
void xl_spawn_monitor(uint32_t domid, struct ferry_domain_config *dc);

int main_create(int argc, char **argv);
int main_shutdown(int argc, char **argv);
int main_console(int argc, char **argv);
int main_list(int argc, char **argv);
int main_info(int argc, char **argv);
int main_destroy(int argc, char **argv);
int main_pause(int argc, char **argv);
int main_unpause(int argc, char **argv);
int main_suspend(int argc, char **argv);
int main_resume(int argc, char **argv);
int main_save(int argc, char **argv);
int main_restore(int argc, char **argv);
int main_stream_info(int argc, char **argv);
int main_dmesg(int argc, char **argv);
int main_audit(int argc, char **argv);
int main_reboot(int argc, char **argv);
int main_rename(int argc, char **argv);
int main_domid(int argc, char **argv);
int main_domname(int argc, char **argv);
int main_uptime(int argc, char **argv);
int main_vcpulist(int argc, char **argv);
int main_memmax(int argc, char **argv);
int main_help(int argc, char **argv);
int main_evacuate(int argc, char **argv);
int main_migrate(int argc, char **argv);
int main_migrate_receive(int argc, char **argv);
int main_migrate_resolve(int argc, char **argv);

#endif /* FERRY_XL_H */
