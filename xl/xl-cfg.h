/* SPDX-License-Identifier: MIT */
/*
 * xl.cfg parsing for ferry's xl: a generic reader for xl's configuration
 * syntax (the equivalent of Xen's libxlutil config reader) and, on top of
 * it, the PV domain configuration that `xl create`, `xl save` and
 * `xl migrate` carry around, with its xl.cfg and libxl-JSON renderings.
 *
 * This is an xl/ file, so it follows Xen's xl/libxl style (four-space
 * indent, K&R braces), not the hypervisor style.
 *
 * Library rules: nothing here prints or exits.  Every fallible function
 * returns 0 or a negative errno value and, on failure, fills the caller's
 * struct xlcfg_error (which may be NULL) with one line that names the
 * source, the line and, where known, the key:
 *
 *     vm1.cfg:7: syntax error near "memory"
 *     vm1.cfg:3: key "memory": expected a number, got string "lots"
 *
 * A getter returns -ENOENT when the key is absent and -EINVAL when it is
 * present with the wrong type, so callers can tell "use the default" from
 * "the user made a mistake".
 */
#ifndef FERRY_XL_CFG_H
#define FERRY_XL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uuid.h>

/* ----------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

#define XLCFG_ERROR_MAX 512

struct xlcfg_error {
    char msg[XLCFG_ERROR_MAX];  /* one line, no trailing newline */
};

/* ----------------------------------------------------------------------
 * The generic reader
 *
 * Syntax (as Xen's libxlu_cfg_l.l / libxlu_cfg_y.y):
 *   file   := { [ KEY ( "=" | "+=" ) VALUE ] ( NEWLINE | ";" ) }
 *             [ KEY ( "=" | "+=" ) VALUE ]
 *   KEY    := [a-z][._0-9a-z]*
 *   VALUE  := STRING | NUMBER
 *           | "[" [ VALUE { "," VALUE } [ "," ] ] "]"  (newlines allowed)
 *   STRING := '...' or "..." on one line, escapes \" \' \\ \a \b \f \n \r
 *             \t \v \xHH \OOO
 *   NUMBER := [0-9][0-9a-fx]*  (read with strtol base 0 when asked for)
 *   "#" comments to end of line; newlines are allowed anywhere in a list.
 * A later assignment to a key replaces an earlier one; "+=" appends to the
 * earlier string or list of the same key.
 * ---------------------------------------------------------------------- */

enum xlcfg_type {
    XLCFG_STRING,       /* a quoted string */
    XLCFG_NUMBER,       /* an unquoted number token, kept as its text */
    XLCFG_LIST,
};

enum xlcfg_op {
    XLCFG_OP_ASSIGN,    /* key = value */
    XLCFG_OP_ADD,       /* key += value */
};

/* A value; opaque, read it with the xlcfg_value_* accessors. */
struct xlcfg_value;

/* One `key = value` statement, in source order. */
struct xlcfg_setting {
    char *key;
    struct xlcfg_value *value;
    enum xlcfg_op op;
    const char *source;         /* the name given to the parse call */
    int line;                   /* line of the first token of the value */
};

/*
 * A parsed configuration: every statement of every parse call, in order,
 * so that overrides parsed after the file replace or extend its settings.
 * Fields are read-only for callers.
 */
struct xlcfg {
    struct xlcfg_setting *settings;
    unsigned int nr_settings;
    unsigned int max_settings;
    char **sources;             /* interned source names, first = file */
    unsigned int nr_sources;
    bool likely_python;         /* a lexical error on one of + - . ( ) : */
};

/* What xl prints after a failed parse when likely_python is set. */
#define XLCFG_PYTHON_WARNING                                              \
    "warning: Config file looks like it contains Python code.\n"          \
    "warning:  Arbitrary Python is no longer supported.\n"                \
    "warning:  See https://wiki.xen.org/wiki/PythonInXlConfig\n"

void xlcfg_init(struct xlcfg *cfg);
void xlcfg_dispose(struct xlcfg *cfg);

/*
 * Parse a file or a string, appending its statements to @cfg.  On error
 * nothing of this call is kept (earlier calls' settings stay), the first
 * error is reported, and the return value is -EINVAL (syntax), -ENOMEM, or
 * the errno of a failed open/read.  @name labels a string's messages.
 */
int xlcfg_parse_file(struct xlcfg *cfg, const char *path,
                     struct xlcfg_error *err);
int xlcfg_parse_string(struct xlcfg *cfg, const char *name,
                       const char *text, struct xlcfg_error *err);

/*
 * Apply `xl create cfg key=value ...` overrides: each argument is parsed as
 * further configuration text after the file (source "command line"), so it
 * may hold several statements and may use "+=".
 */
int xlcfg_apply_overrides(struct xlcfg *cfg, const char *const *args,
                          unsigned int nr_args, struct xlcfg_error *err);

/* The setting that is in force for @key (the last one), or NULL. */
const struct xlcfg_setting *xlcfg_lookup(const struct xlcfg *cfg,
                                         const char *key);

/*
 * Typed getters.  0 on success; -ENOENT if @key is absent; -EINVAL if it
 * has the wrong type (get_string on a list, get_long on a list, a string
 * that is not a number or a "+=" setting, get_list on a single value);
 * -ERANGE if a number does not fit.  A NUMBER token is also a string and a
 * quoted string holding a number is also a number, as in xl.
 */
int xlcfg_get_string(const struct xlcfg *cfg, const char *key,
                     const char **value_r, struct xlcfg_error *err);
int xlcfg_get_long(const struct xlcfg *cfg, const char *key,
                   long *value_r, struct xlcfg_error *err);
int xlcfg_get_bounded_long(const struct xlcfg *cfg, const char *key,
                           long min, long max, long *value_r,
                           struct xlcfg_error *err);
int xlcfg_get_list(const struct xlcfg *cfg, const char *key,
                   const struct xlcfg_value **list_r,
                   struct xlcfg_error *err);

/* Value and list accessors. */
enum xlcfg_type xlcfg_value_type(const struct xlcfg_value *value);
int xlcfg_value_line(const struct xlcfg_value *value);
/* The text of a string or number; NULL for a list. */
const char *xlcfg_value_string(const struct xlcfg_value *value);
/* Number of items of a list; 0 for an atom. */
unsigned int xlcfg_list_count(const struct xlcfg_value *list);
/* Item @i of a list, or NULL if out of range or not a list. */
const struct xlcfg_value *xlcfg_list_item(const struct xlcfg_value *list,
                                          unsigned int i);
/* The text of item @i if it is a string or number, else NULL. */
const char *xlcfg_list_get_string(const struct xlcfg_value *list,
                                  unsigned int i);

/*
 * Render a value as xl.cfg text (what would parse back to it): strings in
 * double quotes with xl's escapes, numbers bare, lists as [ a, b ].
 * Returns a malloc'd string, or NULL when out of memory.
 */
char *xlcfg_value_format(const struct xlcfg_value *value);

/* ----------------------------------------------------------------------
 * The PV domain configuration
 * ---------------------------------------------------------------------- */

/* Values are libxl_action_on_shutdown's, so JSON and xl agree. */
enum ferry_action {
    FERRY_ACTION_DESTROY = 1,
    FERRY_ACTION_RESTART = 2,
    FERRY_ACTION_RESTART_RENAME = 3,    /* xl.cfg: rename-restart */
    FERRY_ACTION_PRESERVE = 4,
    FERRY_ACTION_COREDUMP_DESTROY = 5,
    FERRY_ACTION_COREDUMP_RESTART = 6,
    FERRY_ACTION_SOFT_RESET = 7,        /* refused: not for PV domains */
};

/* Values are libxl_domain_type's; ferry builds PV domains only. */
enum ferry_domain_type {
    FERRY_DOMAIN_TYPE_PV = 2,
};

/* The largest vcpus/maxvcpus ferry accepts (a sanity bound). */
#define FERRY_MAX_VCPUS 8192

/* A key the configuration had that ferry does not use (xl ignores them). */
struct ferry_unknown_key {
    char *key;
    char *value;                /* the value rendered as xl.cfg text */
    char *source;
    int line;
};

struct ferry_domain_config {
    char *name;                 /* mandatory */
    uuid_t uuid;                /* from "uuid", else freshly generated */
    enum ferry_domain_type type;
    uint64_t memory_mib;        /* target; default maxmem, else 32 */
    uint64_t maxmem_mib;        /* default memory; >= memory */
    unsigned int vcpus;         /* online at start; default 1 */
    unsigned int maxvcpus;      /* default vcpus; >= vcpus */
    char *kernel;               /* a path or a shipped guest's name */
    char *cmdline;              /* NULL when none (see root/extra) */
    enum ferry_action on_poweroff;  /* default destroy */
    enum ferry_action on_reboot;    /* default restart */
    enum ferry_action on_crash;     /* default destroy */

    /* Only from xl.cfg parsing; not part of the saved JSON. */
    struct ferry_unknown_key *unknown;
    unsigned int nr_unknown;
    char **warnings;            /* non-fatal messages for xl to print */
    unsigned int nr_warnings;
};

void ferry_domain_config_init(struct ferry_domain_config *dc);
void ferry_domain_config_dispose(struct ferry_domain_config *dc);

/*
 * Fill @dc (which must be freshly initialised) from a parsed
 * configuration, applying xl's defaults and checks.  -EINVAL with a message
 * naming the key on a bad or missing setting, -ENOMEM.
 */
int ferry_domain_config_from_xlcfg(struct ferry_domain_config *dc,
                                   const struct xlcfg *cfg,
                                   struct xlcfg_error *err);

/*
 * `xl create FILE key=value...`: parse @path, then the overrides, then
 * build @dc.  @likely_python_r (may be NULL) is set when the file failed
 * on characters that suggest old Python syntax.
 */
int ferry_domain_config_load(struct ferry_domain_config *dc,
                             const char *path,
                             const char *const *overrides,
                             unsigned int nr_overrides,
                             bool *likely_python_r,
                             struct xlcfg_error *err);

/*
 * Render @dc as xl.cfg text (for `xl create -n`); unknown keys follow as
 * comments.  The text parses back to an equal configuration.  Returns a
 * malloc'd string, or NULL when out of memory.
 */
char *ferry_domain_config_to_xlcfg(const struct ferry_domain_config *dc);

/*
 * Render @dc as libxl_domain_config JSON (the shape of xl save files and
 * `xl list -l`), pretty-printed as libxl does.  malloc'd, NULL on ENOMEM.
 */
char *ferry_domain_config_to_json(const struct ferry_domain_config *dc);

/*
 * Read such JSON back into @dc (freshly initialised).  Syntax is json-c's
 * strict mode; members ferry does not have are ignored, as libxl ignores
 * unknown ones, and every member ferry reads is checked for type and
 * range.  Errors name @name (NULL: "JSON") and, for syntax, the byte
 * offset, else the member:
 *     save.img: offset 42: object property name separator ':' expected
 *     save.img: b_info.max_vcpus: expected a number, got a string
 */
int ferry_domain_config_from_json(struct ferry_domain_config *dc,
                                  const char *name, const char *json,
                                  size_t len, struct xlcfg_error *err);

/* ----------------------------------------------------------------------
 * JSON helpers shared by xl (json-c objects)
 * ---------------------------------------------------------------------- */

struct json_object;

/*
 * Parse @len bytes of @text (no terminating NUL needed) with json-c in
 * strict mode into *@obj_r (release with json_object_put).  NUL bytes and
 * texts of INT_MAX bytes or more are refused.  -EINVAL with
 * "NAME: offset N: what json-c found", or -ENOMEM.
 */
int xlcfg_json_parse(const char *name, const char *text, size_t len,
                     struct json_object **obj_r, struct xlcfg_error *err);

/*
 * @obj as libxl prints JSON (yajl's beautifier: four-space indent), with a
 * final newline.  malloc'd, NULL when out of memory.
 */
char *xlcfg_json_format(struct json_object *obj);

/* @obj on one line, no spaces (the migration protocol's lines, --json
 * events).  Owned by @obj; NULL when out of memory. */
const char *xlcfg_json_line(struct json_object *obj);

/* Add @v as member @key of @obj; @v may be NULL (a failed json-c
 * allocation), which gives -ENOMEM, as does a failed add (@v is then
 * released). */
int xlcfg_json_add(struct json_object *obj, const char *key,
                   struct json_object *v);

/*
 * Member @key of the object @obj: 0; -ENOENT when @obj is not an object
 * or has no such member; -EINVAL when the member has the wrong type: a
 * string with a NUL in it (\u0000), a number that is not an integer in
 * [0, 2^64 - 2], anything but true or false.  A string stays @obj's.
 */
int xlcfg_json_get_string(struct json_object *obj, const char *key,
                          const char **s_r);
int xlcfg_json_get_u64(struct json_object *obj, const char *key,
                       uint64_t *v_r);
int xlcfg_json_get_bool(struct json_object *obj, const char *key,
                        bool *v_r);

/* Field-by-field equality of the configuration proper (not unknown keys
 * or warnings). */
bool ferry_domain_config_equal(const struct ferry_domain_config *a,
                               const struct ferry_domain_config *b);

/* xl.cfg name of an action ("rename-restart"), or NULL if invalid. */
const char *ferry_action_name(enum ferry_action action);
/* libxl JSON name of an action ("restart_rename"), or NULL if invalid. */
const char *ferry_action_json_name(enum ferry_action action);

#endif /* FERRY_XL_CFG_H */
