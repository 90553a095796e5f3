/* SPDX-License-Identifier: MIT */
/*
 * ferry-as: assemble a guest program into a guest image.
 *
 *   ferry-as [-o OUT.img] IN.s
 *
 * The work is done by the assembler library (guests/as.c); this file reads
 * the source, writes the image, and turns failures into messages and the
 * exit status.  The image is written to a temporary file beside the
 * output and renamed over it only when complete, so a failed run never
 * leaves a half-written image where a good one was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-as [-o OUT.img] IN.s\n");
}

/* IN.s -> IN.img */
static char *default_output(const char *in)
{
    const char *dot = strrchr(in, '.'), *slash = strrchr(in, '/');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - in)
                                                   : strlen(in);
    char *out = malloc(stem + 5);

    if ( out )
    {
        memcpy(out, in, stem);
        strcpy(out + stem, ".img");
    }
    return out;
}

static int write_atomically(const char *path, const uint8_t *buf, size_t len)
{
    size_t tlen = strlen(path) + 16;
    char *tmp = malloc(tlen);
    FILE *f = NULL;
    int rc = -1;

    if ( !tmp )
        goto out;
    snprintf(tmp, tlen, "%s.tmp%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if ( !f )
        goto out;
    if ( fwrite(buf, 1, len, f) != len || fflush(f) || fsync(fileno(f)) )
        goto out;
    if ( fclose(f) )
    {
        f = NULL;
        goto out;
    }
    f = NULL;
    if ( rename(tmp, path) )
        goto out;
    rc = 0;

 out:
    if ( rc )
    {
        int saved = errno;

        if ( f )
            fclose(f);
        if ( tmp )
            unlink(tmp);
        errno = saved;
    }
    free(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    struct ferry_image img = FERRY_IMAGE_INIT;
    const char *in = NULL, *outarg = NULL;
    char *out = NULL, *src = NULL, err[512];
    uint8_t *bytes = NULL;
    size_t len;
    int opt, rc = EXIT_FAILURE;

    while ( (opt = getopt(argc, argv, "ho:")) != -1 )
    {
        switch ( opt )
        {
        case 'o':
            outarg = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_SUCCESS;
        default:
            usage(stderr);
            return EXIT_FAILURE;
        }
    }
    if ( optind != argc - 1 )
    {
        usage(stderr);
        return EXIT_FAILURE;
    }
    in = argv[optind];
    out = outarg ? strdup(outarg) : default_output(in);
    if ( !out )
    {
        fprintf(stderr, "ferry-as: out of memory\n");
        goto out;
    }

    src = ferry_as_read_file(in);
    if ( !src )
    {
        fprintf(stderr, "ferry-as: cannot read %s: %s\n", in,
                strerror(errno));
        goto out;
    }
    if ( ferry_as_assemble(src, in, &img, err, sizeof(err)) )
    {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if ( ferry_image_write(&img, &bytes, &len) )
    {
        fprintf(stderr, "ferry-as: out of memory\n");
        goto out;
    }
    if ( write_atomically(out, bytes, len) )
    {
        fprintf(stderr, "ferry-as: cannot write %s: %s\n", out,
                strerror(errno));
        goto out;
    }
    rc = EXIT_SUCCESS;

 out:
    free(bytes);
    ferry_image_dispose(&img);
    free(src);
    free(out);
    return rc;
}
