/* SPDX-License-Identifier: MIT */
/*
 * xl save: write a PV domain to a file (tools/xl/xl_saverestore.c's
 * main_save and save_domain, with libxl_domain_suspend's suspend step).
 *
 * The file is written atomically: the stream goes to a temporary file
 * beside the target, which replaces it only once the whole stream is on
 * disk, so a failed save leaves an existing file as it was.  The guest
 * is asked to suspend itself and the save engine (saverestore/sr-save.c)
 * reads it while it is shut down for suspend.  Afterwards the domain is
 * destroyed, or with -c resumed in place (its suspend hypercall returning
 * 1, "cancelled"), or with -p resumed but left paused.  On any failure
 * once the guest may have suspended, it is resumed the same way and xl
 * exits 1.
 *
 * -z (ferry's extension) compresses everything after the xl header with
 * zlib level 1 and says so in a mandatory flag of the header, so Xen's
 * xl refuses the file instead of misreading it (ferry-stream(5)).  While
 * the stream is written, xl-progress.c shows how far it got.
 *
 * Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "xl.h"
#include "xl-cfg.h"
#include "xl-progress.h"
#include "../saverestore/sr.h"


/* The config JSON for the file: the [cfg] given, else the domain's own.
 * Returns a malloc'd NUL-terminated string, or NULL with a message. */
static char *save_config(xc_interface *xch, uint32_t domid,
                         const char *override)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char name[XC_DOMAIN_NAME_MAX];
    void *blob = NULL;
    size_t len = 0;
    char *json = NULL;

    if (override) {
        ferry_domain_config_init(&dc);
        if (ferry_domain_config_load(&dc, override, NULL, 0, NULL, &err))
            fprintf(stderr, "%s\nunable to read overridden config file\n",
                    err.msg);
        else if (!(json = ferry_domain_config_to_json(&dc)))
            fprintf(stderr, "unable to convert config file to JSON\n");
        ferry_domain_config_dispose(&dc);
        return json;
    }
    if (xc_domain_get_meta(xch, domid, name, sizeof(name), &blob, &len) ||
        !blob || !len) {
        fprintf(stderr, "unable to retrieve domain configuration\n");
        free(blob);
        return NULL;
    }
    json = malloc(len + 1);
    if (json) {
        memcpy(json, blob, len);
        json[len] = '\0';
    }
    free(blob);
    return json;
}

struct suspend_arg {
    xc_interface *xch;
    uint32_t domid;
};

/* The engine's suspend callback: 0 or -errno. */
static int suspend_cb(void *arg)
{
    struct suspend_arg *s = arg;

    return xl_suspend_domain(s->xch, s->domid, NULL);
}

static int save_domain(xc_interface *xch, uint32_t domid,
                       const char *filename, bool checkpoint,
                       bool leavepaused, bool compress,
                       const char *override)
{
    struct suspend_arg sarg = { .xch = xch, .domid = domid };
    struct xl_progress prog;
    struct sr_save_args args = {
        .xch = xch, .domid = domid, .trailer = true,
        .suspend = suspend_cb, .suspend_arg = &sarg,
        .xl_mandatory_flags = compress ? SR_XL_FLAG_FERRY_ZLIB : 0,
        .progress = xl_progress_cb, .progress_arg = &prog,
    };
    struct sr_io *io = NULL;
    char msg[512] = "";
    char *json;
    int rc;

    json = save_config(xch, domid, override);
    if (!json)
        return EXIT_FAILURE;
    rc = sr_io_open_atomic(&io, filename);
    if (rc) {
        fprintf(stderr, "Failed to open temp file %s for writing\n",
                filename);
        free(json);
        return EXIT_FAILURE;
    }
    /* The flags the engine writes: ferry's digest is announced in an
     * optional flag, which Xen's xl ignores. */
    fprintf(stderr, "Saving to %s new xl format (info 0x%" PRIx32 "/0x%"
            PRIx32 "/%" PRIu32 ")\n", filename,
            SR_XL_FLAG_STREAMV2 | SR_XL_FLAG_JSON | args.xl_mandatory_flags,
            (uint32_t)SR_XL_OPTFLAG_FERRY_POLY1305,
            (uint32_t)(sizeof(uint32_t) + strlen(json) + 1));

    args.config_json = json;
    xl_progress_init(&prog, "Saving", stderr);
    rc = sr_save_domain(io, &args, msg, sizeof(msg));
    xl_progress_done(&prog, rc == 0);
    if (rc)
        fprintf(stderr, "save: %s\n", msg[0] ? msg : strerror(-rc));
    if (rc) {
        sr_io_abort(io);
    } else if ((rc = sr_io_commit(io))) {
        fprintf(stderr, "save: cannot write %s: %s\n", filename,
                strerror(-rc));
    }
    free(json);

    if (rc) {
        fprintf(stderr, "Failed to save domain, resuming domain\n");
        /* Only a guest this save suspended: resuming one that shut
         * down by itself would undo its poweroff or crash. */
        if (xl_is_suspended(xch, domid))
            xc_domain_resume(xch, domid, true);
        return EXIT_FAILURE;
    }
    if (leavepaused || checkpoint) {
        if (leavepaused)
            xc_domain_pause(xch, domid);
        if (xc_domain_resume(xch, domid, true))
            return EXIT_FAILURE;
    } else if (xc_domain_destroy(xch, domid)) {
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

int main_save(int argc, char **argv)
{
    const char *filename, *config_filename = NULL;
    bool checkpoint = false, leavepaused = false, compress = false;
    xc_interface *xch;
    uint32_t domid;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "cpz", NULL, "save", 2, &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'c': checkpoint = true; break;
        case 'p': leavepaused = true; break;
        case 'z': compress = true; break;
        }
    }
    if (argc - optind > 3) {
        help("save");
        return EXIT_FAILURE;
    }
    filename = argv[optind + 1];
    if (argc - optind >= 3)
        config_filename = argv[optind + 2];

    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    return save_domain(xch, domid, filename, checkpoint, leavepaused,
                       compress, config_filename);
}
