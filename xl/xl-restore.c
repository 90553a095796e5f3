/* SPDX-License-Identifier: MIT */
/*
 * xl restore: a save file (xl header, libxl v2, libxc v3 stream) into a
 * new domain on this host (Xen: tools/xl/xl_saverestore.c).
 *
 * The restore engine (saverestore/sr-restore.c) creates the domain from
 * the config saved in the file and leaves it paused; here it gets its
 * name and config (from the file, or from the config file given, which
 * overrides the saved one as in Xen), then runs unless -p.  A failed
 * restore leaves no domain behind: the engine destroys what it built, and
 * a failure here destroys the restored domain.  Nor does a killed one:
 * the engine hands back its builder session still open, and ferry-hv
 * destroys the domain if that session closes before the domain is named
 * and started here and the build declared done (ferry-hv(8)).
 *
 * A file whose header has a mandatory flag this xl does not know is
 * refused with Xen's message; ferry's compressed files (xl save -z) are
 * recognised by their flag and decompressed by the engine.  Progress of
 * a long restore is shown by xl-progress.c.
 *
 * The page stream is parsed by a confined child (xl-sandbox.c): this
 * process reads only the xl header and the config, and names, unpauses
 * and monitors the domain the child built.
 *
 * Not done: ferry's monitor (xl create's "xl-<name>" process) is private
 * to xl-create.c, so a restored domain is not monitored; -e is accepted.
 *
 * Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xl.h"
#include "xl-cfg.h"
#include "xl-progress.h"
#include "xl-sandbox.h"
#include "../saverestore/sr.h"

/*
 * Read the file's header and print what Xen's xl prints about it;
 * *config gets the saved config (malloc'd, NULL if none).
 */
static int show_header(const char *file, char **config_r)
{
    struct sr_xl_hdr hdr = { .mandatory_flags = 0 };
    struct sr_io *io = NULL;
    bool bad_flags;
    void *config = NULL;
    uint32_t config_len = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        fprintf(stderr, "cannot open restore file %s: %s\n", file,
                strerror(errno));
        return -1;
    }
    rc = sr_io_open_fd(&io, fd, true);
    if (rc) {
        close(fd);
        fprintf(stderr, "%s: %s\n", file, strerror(-rc));
        return -1;
    }
    rc = sr_read_xl_hdr(io, &hdr, &config, &config_len);
    /* A header read whole but with a flag unknown here. */
    bad_flags = rc == -EOPNOTSUPP &&
                !memcmp(hdr.magic, SR_XL_MAGIC, SR_XL_MAGIC_LEN) &&
                (hdr.mandatory_flags & ~SR_XL_FLAG_ALL);
    if (rc && !bad_flags) {
        fprintf(stderr, "%s: %s\n", file, sr_io_errmsg(io));
    } else if (bad_flags) {
        /* Xen's lines and words, so scripts written for Xen still match. */
        fprintf(stderr, "Loading new save file %s (new xl fmt info"
                " 0x%" PRIx32 "/0x%" PRIx32 "/%" PRIu32 ")\n", file,
                hdr.mandatory_flags, hdr.optional_flags,
                hdr.optional_data_len);
        fprintf(stderr, "Savefile has mandatory flag(s) 0x%" PRIx32
                " which are not supported; need newer xl\n",
                hdr.mandatory_flags & ~SR_XL_FLAG_ALL);
    } else {
        fprintf(stderr, "Loading new save file %s (new xl fmt info"
                " 0x%" PRIx32 "/0x%" PRIx32 "/%" PRIu32 ")\n", file,
                hdr.mandatory_flags, hdr.optional_flags,
                hdr.optional_data_len);
        if (hdr.mandatory_flags & SR_XL_FLAG_JSON)
            fprintf(stderr, " Savefile contains xl domain config in JSON"
                    " format\n");
        if (hdr.mandatory_flags & SR_XL_FLAG_FERRY_ZLIB)
            fprintf(stderr, " Savefile is compressed with zlib (ferry)\n");
    }
    /* The saved length may or may not count a NUL: add one. */
    *config_r = NULL;
    if (!rc && config && config_len && (*config_r = malloc(config_len + 1))) {
        memcpy(*config_r, config, config_len);
        (*config_r)[config_len] = '\0';
    }
    free(config);
    sr_io_close(io);
    return rc ? -1 : 0;
}

int main_restore(int argc, char **argv)
{
    struct ferry_domain_config dc;
    struct sr_restore_args args = { 0 };
    struct sr_restore_result res = { 0 };
    struct xlcfg_error err;
    struct xl_progress prog;
    struct xc_host_info hi;
    struct xl_parser parser;
    const char *cfg = NULL, *file;
    bool paused = false, debug = false, python = false, dc_init = false;
    bool monitor_it = true, restored;
    char *json = NULL, *saved = NULL, msg[512] = "";
    xc_interface *xch;
    int opt, fd, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "pedcFVA", NULL, "restore", 1,
                            &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'p': paused = true; break;
        case 'd': debug = true; break;
        case 'e': monitor_it = false; break;
        default: break;     /* -c -F -V -A: accepted for xl compatibility */
        }
    }
    if (argc - optind >= 2)
        cfg = argv[optind++];
    file = argv[optind];

    if (show_header(file, &saved))
        return EXIT_FAILURE;
    rc = EXIT_FAILURE;
    ferry_domain_config_init(&dc);
    dc_init = true;
    /* The config the domain runs with: the file given, else the saved. */
    if (cfg) {
        fprintf(stderr, "Parsing config from %s\n", cfg);
        if (ferry_domain_config_load(&dc, cfg, NULL, 0, &python, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            goto out;
        }
    } else {
        fprintf(stderr, "Parsing config from <saved>\n");
        if (!saved) {
            fprintf(stderr, "Savefile contains no domain config\n");
            goto out;
        }
        if (ferry_domain_config_from_json(&dc, "<saved>", saved,
                                          strlen(saved), &err)) {
            fprintf(stderr, "%s\n", err.msg);
            goto out;
        }
    }
    json = ferry_domain_config_to_json(&dc);
    if (!json)
        goto out;
    if (debug)
        printf("%s\n", json);
    /* The file is untrusted: no machine memory in this process. */
    xl_host_session(XC_SESSION_CONTROL);
    xch = xl_open_host();
    if (name_in_use(xch, 1, dc.name)) {
        fprintf(stderr, "Domain with name \"%s\" already exists.\n",
                dc.name);
        goto out;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "cannot open restore file %s: %s\n", file,
                strerror(errno));
        goto out;
    }
    /* A local restore is admitted with what the host has free: no
     * stream field makes us allocate for more than that. */
    if (xc_host_info(xch, &hi)) {
        fprintf(stderr, "cannot read the host's free memory: %s\n",
                strerror(errno));
        close(fd);
        goto out;
    }
    args.xch = xch;
    args.paused = true;
    args.max_vcpus = dc.maxvcpus;
    args.max_memkb = dc.maxmem_mib * 1024;
    args.admitted_memkb = hi.free_pages * 4;
    memcpy(args.uuid, dc.uuid, sizeof(args.uuid));
    args.progress = xl_progress_cb;
    args.progress_arg = &prog;
    args.keep_builder = true;
    xl_progress_init(&prog, "Restoring", stderr);
    /* The file is parsed by a confined child (xl-sandbox.c), which reads
     * it itself: this process never reads past the header. */
    restored = !xl_parser_start(&parser, xch, fd, NULL, &args, msg,
                                sizeof(msg)) &&
               !xl_parser_finish(&parser, NULL, &args, &res, msg,
                                 sizeof(msg));
    close(fd);
    xl_progress_done(&prog, restored);
    if (!restored) {
        fprintf(stderr, "%s\n", msg);
        fprintf(stderr, "Failed to restore domain from %s\n", file);
        goto out;
    }
    if (msg[0])
        fprintf(stderr, "%s\n", msg);  /* e.g. "no ferry digest: ..." */

    /* The domain exists (paused) from here: failures destroy it. */
    if (xc_domain_set_meta(xch, res.domid, dc.name, json, strlen(json))) {
        fprintf(stderr, "cannot name domain %u \"%s\"\n", res.domid, dc.name);
        goto fail;
    }
    if (!paused && xc_domain_unpause(xch, res.domid)) {
        fprintf(stderr, "cannot unpause domain %u\n", res.domid);
        goto fail;
    }
    /* From here the domain outlives us; the monitor must not inherit
     * the builder session either. */
    if (xc_domain_build_done(res.builder, res.domid)) {
        fprintf(stderr, "cannot keep domain %u: %s\n", res.domid,
                strerror(errno));
        goto fail;
    }
    xc_interface_close(res.builder);
    res.builder = NULL;
    if (monitor_it) {
        fflush(NULL);
        xl_spawn_monitor(res.domid, &dc);
    }
    rc = EXIT_SUCCESS;
    goto out;
 fail:
    xc_domain_destroy(xch, res.domid);
 out:
    xc_interface_close(res.builder);
    if (dc_init)
        ferry_domain_config_dispose(&dc);
    free(res.config_json);
    free(saved);
    free(json);
    return rc;
}
