/* SPDX-License-Identifier: MIT */
/*
 * as.h: the guest assembler as a library, and the guest image file.
 *
 * ferry_as_assemble() turns the text of a guest program (syntax in
 * man/ferry-isa.7) into a struct ferry_image; the ferry-as command and the
 * unit tests both use it.  ferry_image_write() and ferry_image_parse()
 * convert between that struct and the on-disk format defined in
 * hypervisor/isa.h, so the domain builder reads what ferry-as writes.
 *
 * Memory: a struct ferry_image owns its bytes (malloc'd).  Initialise one
 * with FERRY_IMAGE_INIT or zeroes; ferry_image_dispose() frees the bytes
 * and is idempotent.  Functions that fill an image dispose what it held
 * first, and leave it empty on failure.
 */
#ifndef FERRY_AS_H
#define FERRY_AS_H

#include <stddef.h>
#include <stdint.h>

#include "isa.h"

struct ferry_image
{
    uint64_t base;          /* virtual address of bytes[0] */
    uint64_t entry;         /* first instruction (virtual address) */
    uint64_t bss_size;      /* zero bytes mapped after the image */
    uint32_t isa_version;   /* FERRY_ISA_VERSION it was assembled for */
    uint8_t *bytes;
    size_t size;
};

#define FERRY_IMAGE_INIT { 0, 0, 0, 0, NULL, 0 }

void ferry_image_dispose(struct ferry_image *img);

/*
 * Assemble src (NUL-terminated; filename names it in messages).  Returns 0,
 * or -EINVAL with "file:line: problem" in err (and -ENOMEM on allocation
 * failure).  The first error stops the assembly.
 */
int ferry_as_assemble(const char *src, const char *filename,
                      struct ferry_image *out, char *err, size_t errlen);

/*
 * Read the file at path into a NUL-terminated malloc'd buffer (the source
 * ferry_as_assemble() wants); NULL with errno set on failure.  .include
 * and ferry-as both read their sources through it.
 */
char *ferry_as_read_file(const char *path);

/* Serialise img with its header into a malloc'd buffer. */
int ferry_image_write(const struct ferry_image *img, uint8_t **buf,
                      size_t *len);

/*
 * Parse and check an image file's contents (rules in isa.h).  Returns 0,
 * or -EINVAL with the reason in err, -ENOMEM on allocation failure.
 */
int ferry_image_parse(const void *buf, size_t len, struct ferry_image *out,
                      char *err, size_t errlen);

#endif /* FERRY_AS_H */
