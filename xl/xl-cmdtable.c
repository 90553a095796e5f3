/* SPDX-License-Identifier: MIT */
/*
 * The command table: one entry per xl verb, with the usage text of
 * man/xl.1.  Style: Xen's xl/libxl style.
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
    { "console", &main_console, false, false,
      "Attach to domain's console",
      "[options] <Domain>\n"
      "-t <type>       console type, pv only for ferry's PV guests",
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
      "-p  Leave domain paused after creating the snapshot." },
    { "restore", &main_restore, false, true,
      "Restore a domain from a saved state",
      "[options] [<ConfigFile>] <CheckpointFile>",
      "-h                       Print this help.\n"
      "-p                       Do not unpause domain after restoring it.\n"
      "-e                       Do not wait in the background for the death of the domain.\n"
      "-d                       Enable debug messages." },
    { "info", &main_info, false, false,
      "Get information about Xen host",
      "", NULL },
    { "dmesg", &main_dmesg, false, false,
      "Read the hypervisor's log",
      "", NULL },
    { "audit", &main_audit, false, false,
      "Check the hypervisor's reference counts and invariants (ferry)",
      "", NULL },
};

const int cmd_table_size = sizeof(cmd_table) / sizeof(cmd_table[0]);

const struct cmd_spec *cmdtable_lookup(const char *name)
{
    for (int i = 0; i < cmd_table_size; i++)
        if (!strcmp(name, cmd_table[i].name))
            return &cmd_table[i];
    return NULL;
}
