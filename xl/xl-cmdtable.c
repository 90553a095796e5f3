/* SPDX-License-Identifier: MIT */
/*
 * The command table: one entry per xl verb, with the usage text of
 * man/xl.1; `xl help` lists it.  Style: Xen's xl/libxl style.
 */
#include <string.h>

#include "xl.h"

const struct cmd_spec cmd_table[] = {
    { "create", &main_create, true, true,
      "Create a domain from config file <filename>",
      "<ConfigFile> [options] [vars]",
      "-h                      Print this help.\n"
      "-p                      Leave the domain paused after it is created.\n"
      "-c                      Connect to the console after the domain is created.\n"
      "-e                      Do not wait in the background for the death of the domain.\n"
      "-n, --dryrun            Dry run - prints the resulting configuration\n"
      "                         (deprecated in favour of global -N option).\n"
      "-q, --quiet             Quiet." },
    { "list", &main_list, false, false,
      "List information about all/some domains",
      "[options] [Domain]\n",
      "-l, --long              Output all VM details\n"
      "-v, --verbose           Prints out UUIDs and security context" },
    { "destroy", &main_destroy, false, true,
      "Terminate a domain immediately",
      "[options] <Domain>\n",
      "-f                      Permit destroying domain 0" },
    { "shutdown", &main_shutdown, false, true,
      "Issue a shutdown signal to a domain",
      "[options] <-a|Domain>",
      "-a, --all               Shutdown all guest domains.\n"
      "-h                      Print this help.\n"
      "-F                      Accepted for xl compatibility.\n"
      "-w, --wait              Wait for guest(s) to shutdown." },
    { "reboot", &main_reboot, false, true,
      "Issue a reboot signal to a domain",
      "[options] <-a|Domain>",
      "-a, --all               Reboot all guest domains.\n"
      "-h                      Print this help.\n"
      "-F                      Accepted for xl compatibility.\n"
      "-w, --wait              Wait for guest(s) to shut down for the reboot." },
    { "console", &main_console, false, false,
      "Attach to domain's console",
      "[options] <Domain>\n"
      "-t <type>       console type, pv only for ferry's PV guests\n"
      "--dump          print what the guest wrote so far and exit (ferry)",
      NULL },
    { "pause", &main_pause, false, true,
      "Pause execution of a domain",
      "<Domain>", NULL },
    { "unpause", &main_unpause, false, true,
      "Unpause a paused domain",
      "<Domain>", NULL },
    { "suspend", &main_suspend, false, true,
      "Suspend a domain (the guest suspends itself, as for a save)",
      "<Domain>", NULL },
    { "resume", &main_resume, false, true,
      "Resume a suspended domain in place",
      "<Domain>", NULL },
    { "save", &main_save, false, true,
      "Save a domain state to restore later",
      "[options] <Domain> <CheckpointFile> [<ConfigFile>]",
      "-h  Print this help.\n"
      "-c  Leave domain running after creating the snapshot.\n"
      "-p  Leave domain paused after creating the snapshot.\n"
      "-z  Compress the stream with zlib (ferry; Xen's xl cannot read it)." },
    { "restore", &main_restore, false, true,
      "Restore a domain from a saved state",
      "[options] [<ConfigFile>] <CheckpointFile>",
      "-h                       Print this help.\n"
      "-p                       Do not unpause domain after restoring it.\n"
      "-e                       Do not wait in the background for the death of the domain.\n"
      "-d                       Enable debug messages." },
    { "stream-info", &main_stream_info, false, false,
      "Describe and check a save file, without a host (ferry)",
      "<CheckpointFile>", NULL },
    { "migrate", &main_migrate, false, true,
      "Migrate a domain to another host",
      "[options] <Domain> <host>",
      "-h              Print this help.\n"
      "-C <config>     Send <config> instead of config file from creation.\n"
      "-s <sshcommand> Use <sshcommand> instead of ssh.  String will be passed\n"
      "                to sh. If empty, run <host> instead of ssh <host> xl\n"
      "                migrate-receive [-d -e]\n"
      "-e              Do not wait in the background (on <host>) for the death\n"
      "                of the domain.\n"
      "--debug         Print huge (!) amount of debug during the migration process.\n"
      "-p              Do not unpause domain after migrating it.\n"
      "-D              Preserve the domain id (accepted, not honoured)\n"
      "--live          Accepted for xm compatibility (always live).\n"
      "--json          One JSON object per line on stdout (ferry).\n"
      "--max-iters N   Live passes after the first one (default 5).\n"
      "--dirty-target PAGES  Stop and copy at this many dirty pages (50).\n"
      "--max-downtime MS     Stop and copy once the rest fits in MS.\n"
      "--bandwidth RATE      Limit live passes to RATE bytes/s (100MiB, 1G).\n"
      "--timeout SECS  Bound the live phase; then --on-timeout abort|force.\n"
      "--throttle-initial PCT  Throttle the vCPUs PCT% when pre-copy does not\n"
      "                converge (default 20).\n"
      "--throttle-increment PCT  Then PCT% more each pass (10).\n"
      "--throttle-max PCT  Throttle at most PCT% (99).\n"
      "--no-throttle   Never throttle the domain.\n"
      "--resolve-timeout SECS  How long to retry reaching <host> (30).\n"
      "--tls-cert FILE, --tls-key FILE, --tls-ca FILE  For tls:// targets.\n"
      "--tls-name NAME The name tls:// target's certificate must carry.\n"
      "--tls-crl FILE  CRLs of the CA (default RUNDIR/tls/crl.pem if any).\n"
      "--insecure      Allow a tcp:// target without a fleet key.\n"
      "<host>          HOST (ssh), local:RUNDIR, tcp://ADDR:PORT or\n"
      "                tls://ADDR:PORT." },
    { "migrate-receive", &main_migrate_receive, false, true,
      "Restore a domain from a saved state",
      "- for internal use only",
      NULL },
    { "migrate-resolve", &main_migrate_resolve, false, true,
      "Finish a migration that xl migrate left unresolved (ferry)",
      "[options] <Domain> <host>",
      "-p              The migration asked for -p: leave the domain paused.\n"
      "-s <sshcommand> As for xl migrate.\n"
      "--resolve-timeout SECS  How long to retry reaching <host> (30).\n"
      "--tls-cert FILE, --tls-key FILE, --tls-ca FILE  For tls:// targets.\n"
      "--tls-name NAME, --tls-crl FILE, --insecure  As for xl migrate." },
    { "evacuate", &main_evacuate, true, true,
      "Empty a host by live-migrating its domains to other hosts (ferry)",
      "[options] [SOURCE]",
      "-h                    Print this help.\n"
      "--fleet FILE          The fleet inventory (ferry-fleet(5)).\n"
      "--to HOST,...         Targets: fleet host names, or without --fleet\n"
      "                      xl migrate hosts (local:DIR, tcp://, tls://, ssh).\n"
      "--parallel N          Migrations at a time (default 2).\n"
      "--dry-run             Print the plan and change nothing.\n"
      "--json                One JSON object per event on stdout.\n"
      "--require-tag TAG     Only targets with this tag (repeatable).\n"
      "--exclude-tag TAG     No targets with this tag (repeatable).\n"
      "SOURCE                The host to empty (fleet host name or run dir;\n"
      "                      default: the host of -H)." },
    { "mem-max", &main_memmax, false, true,
      "Set the maximum amount reservation for a domain",
      "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>",
      NULL },
    { "vcpu-list", &main_vcpulist, false, false,
      "List the VCPUs for all/some domains",
      "[Domain, ...]", NULL },
    { "info", &main_info, false, false,
      "Get information about Xen host",
      "[KEY]",
      "KEY                Print only the value of KEY (ferry)." },
    { "domid", &main_domid, false, false,
      "Convert a domain name to domain id",
      "<DomainName>", NULL },
    { "domname", &main_domname, false, false,
      "Convert a domain id to domain name",
      "<DomainId>", NULL },
    { "rename", &main_rename, false, true,
      "Rename a domain",
      "<Domain> <NewDomainName>", NULL },
    { "uptime", &main_uptime, false, false,
      "Print uptime for all/some domains",
      "[-s] [Domain]",
      "-s                 Short format, as uptime(1)." },
    { "dmesg", &main_dmesg, false, false,
      "Read and/or clear dmesg buffer",
      "[-c]",
      "  -c                        Clear dmesg buffer as well as printing it" },
    { "audit", &main_audit, false, false,
      "Check the hypervisor's reference counts and invariants (ferry)",
      "", NULL },
    { "help", &main_help, false, false,
      "Print the list of subcommands, or the usage of one",
      "[<subcommand>]", NULL },
};

const int cmd_table_size = sizeof(cmd_table) / sizeof(cmd_table[0]);

const struct cmd_spec *cmdtable_lookup(const char *name)
{
    for (int i = 0; i < cmd_table_size; i++)
        if (!strcmp(name, cmd_table[i].name))
            return &cmd_table[i];
    return NULL;
}
