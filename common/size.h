/* SPDX-License-Identifier: MIT */
/*
 * Sizes as people write them, read one way everywhere: ferry-hv --memory,
 * the xl.cfg keys memory and maxmem, the fleet file's max-memory and
 * xl migrate --bandwidth.  The syntax is written down once, in xl.cfg(5)
 * and ferry-hv(8):
 *
 *     DIGITS [ UNIT ]
 *     UNIT := B | K | M | G | T, each of K M G T optionally followed by
 *             B or iB; any case.  K is 1024 (KiB), M 1024^2 and so on.
 *
 * A number without a unit is in the unit the caller names (bytes for
 * ferry-hv and --bandwidth, MiB for xl.cfg and the fleet file).  There is
 * no sign, no space, no fraction and no hexadecimal; a size that does not
 * fit 64 bits is refused, never wrapped.
 *
 * common/ holds what every layer may use (it includes only the C
 * library), in the hypervisor's style.
 */
#ifndef FERRY_COMMON_SIZE_H
#define FERRY_COMMON_SIZE_H

#include <stdint.h>

/* The unit of a number written without one, as a shift of bytes. */
#define SIZE_DEFAULT_BYTES 0
#define SIZE_DEFAULT_KIB   10
#define SIZE_DEFAULT_MIB   20

/*
 * Parse @s into bytes.  0 on success; -EINVAL if @s is not a size (empty,
 * a sign, a space, an unknown unit, anything after it); -ERANGE if it
 * does not fit in 64 bits.  *@bytes_r is written only on success.
 */
int ferry_parse_size(const char *s, unsigned int default_shift,
                     uint64_t *bytes_r);

/* What to say after a failed ferry_parse_size(): "is not a size (...)"
 * or "is too large". */
const char *ferry_size_error(int rc);

#endif /* FERRY_COMMON_SIZE_H */
