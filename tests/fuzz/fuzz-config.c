/* SPDX-License-Identifier: MIT */
/*
 * fuzz-config: the fuzz target for the JSON readers that take what
 * crosses a boundary as JSON: the libxl_domain_config JSON of save files
 * and incoming migration streams (ferry_domain_config_from_json), and the
 * one-line objects of the migration protocol (the preamble, the
 * receiver's "ok" answer, ferry-stats), which xl reads with
 * xlcfg_json_parse and the typed getters.
 *
 * LLVMFuzzerTestOneInput() takes any bytes.  A config that is accepted
 * must render back to JSON that is accepted again and gives an equal
 * config, byte-identical when rendered once more: a difference aborts,
 * as a crash does.  Built as fuzz-stream is: with clang's libFuzzer
 * (`make fuzz-config`), and with fuzz-driver.c replaying
 * tests/fuzz/corpus-config and mutations of it for a few seconds in
 * `make check` (run-fuzz-config.sh).
 *
 * Invariant: whatever the input, the target returns 0 having freed all
 * it allocated; a crash, a sanitizer report or a leak is a bug.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "xl-cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Accepted JSON must survive a round trip unchanged. */
static void round_trip(const struct ferry_domain_config *dc)
{
    struct ferry_domain_config back;
    struct xlcfg_error err;
    char *json = ferry_domain_config_to_json(dc), *again = NULL;

    if ( !json )
        return;                         /* out of memory */
    ferry_domain_config_init(&back);
    if ( ferry_domain_config_from_json(&back, "round trip", json,
                                       strlen(json), &err) )
    {
        fprintf(stderr, "fuzz-config: own JSON refused: %s\n%s", err.msg,
                json);
        abort();
    }
    again = ferry_domain_config_to_json(&back);
    if ( !ferry_domain_config_equal(dc, &back) ||
         (again && strcmp(again, json)) )
    {
        fprintf(stderr, "fuzz-config: round trip differs:\n%s---\n%s",
                json, again ? again : "(none)\n");
        abort();
    }
    free(again);
    free(json);
    ferry_domain_config_dispose(&back);
}

/* What the migration protocol's readers do with a line's object. */
static void protocol_line(const char *text, size_t len)
{
    static const char *const strings[] = { "op", "name", "uuid", "host",
                                           "event", "status", "error" };
    static const char *const numbers[] = { "max_memkb", "max_vcpus",
                                           "free_memkb", "finish_ms",
                                           "domid", "transferred_bytes" };
    static const char *const bools[] = { "paused", "monitor", "debug" };
    struct json_object *obj = NULL;
    const char *s;
    uint64_t v;
    bool b;
    unsigned int i;

    if ( xlcfg_json_parse("line", text, len, &obj, NULL) )
        return;
    for ( i = 0; i < sizeof(strings) / sizeof(strings[0]); i++ )
        if ( !xlcfg_json_get_string(obj, strings[i], &s) &&
             strlen(s) > len )
            abort();                    /* longer than its input */
    for ( i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++ )
        if ( !xlcfg_json_get_u64(obj, numbers[i], &v) && v == UINT64_MAX )
            abort();                    /* the saturated value leaks */
    for ( i = 0; i < sizeof(bools) / sizeof(bools[0]); i++ )
        (void)xlcfg_json_get_bool(obj, bools[i], &b);
    json_object_put(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ferry_domain_config_init(&dc);
    if ( !ferry_domain_config_from_json(&dc, "fuzz", (const char *)data,
                                        size, &err) )
        round_trip(&dc);
    ferry_domain_config_dispose(&dc);
    protocol_line((const char *)data, size);
    return 0;
}
