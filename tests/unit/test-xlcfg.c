/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for xl/xl-cfg.c: the xl.cfg reader, the PV domain
 * configuration built on it, and its xl.cfg and libxl-JSON renderings.
 *
 * The reader must accept exactly xl's syntax (libxlu_cfg_l.l/_y.y) and
 * report errors as "SOURCE:LINE: ..." naming the key where one is known;
 * these tests pin every message text, since xl prints them verbatim and
 * users grep for them.  The domain layer must apply xl_parse.c's defaults
 * and checks; the JSON must have libxl_domain_config's field names and
 * survive a round trip unchanged.
 */
#include <errno.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"
#include "xl-cfg.h"

/* ---------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* Parse @text as "vm1.cfg"; the caller disposes @cfg. */
static int parse(struct xlcfg *cfg, const char *text, struct xlcfg_error *err)
{
    xlcfg_init(cfg);
    memset(err, 0, sizeof(*err));
    return xlcfg_parse_string(cfg, "vm1.cfg", text, err);
}

/* Parse @text and expect failure with exactly @msg. */
static void expect_parse_error(const char *text, const char *msg)
{
    struct xlcfg cfg;
    struct xlcfg_error err;

    ASSERT_EQ(parse(&cfg, text, &err), -EINVAL);
    ASSERT_STR(err.msg, msg);
    ASSERT_EQ(cfg.nr_settings, 0);
    xlcfg_dispose(&cfg);
}

/* Build a domain config from @text; returns the error code. */
static int domain(struct ferry_domain_config *dc, const char *text,
                  struct xlcfg_error *err)
{
    struct xlcfg cfg;
    int rc;

    ferry_domain_config_init(dc);
    rc = parse(&cfg, text, err);
    if ( !rc )
        rc = ferry_domain_config_from_xlcfg(dc, &cfg, err);
    xlcfg_dispose(&cfg);
    return rc;
}

static void expect_domain_error(const char *text, const char *msg)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&dc, text, &err), -EINVAL);
    ASSERT_STR(err.msg, msg);
    ferry_domain_config_dispose(&dc);
}

#define MINIMAL "name = \"vm1\"\nkernel = \"guests/hello\"\n"

/* Write @text to a fresh temporary file; returns its malloc'd path. */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test-xlcfg-XXXXXX");
    int fd;
    size_t n = strlen(text);

    ASSERT(path);
    fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, n), (long long)n);
    close(fd);
    return path;
}

static void expect_json_error(const char *json, const char *msg)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err = { "" };

    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_from_json(&dc, "save.img", json,
                                            strlen(json), &err), -EINVAL);
    ASSERT_STR(err.msg, msg);
    ferry_domain_config_dispose(&dc);
}

/* ---------------------------------------------------------------------
 * The reader: syntax
 * --------------------------------------------------------------------- */

TEST(syntax_every_value_kind)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    const struct xlcfg_value *l, *inner;
    const char *s;
    long n;

    ASSERT_EQ(parse(&cfg,
                    "# a comment line\n"
                    "name = \"vm1\"   # trailing comment\n"
                    "single='it\\'s'\n"
                    "dec = 512; hex = 0x1f; oct = 010\n"
                    "\n"
                    "disk = [ 'a', \"b\",\n"
                    "         [ 'nested', 7 ],\n"
                    "         [],\n"
                    "]\n"
                    "dotted.key_9 = 1\n"
                    "last = 'no terminator'",
                    &err), 0);

    ASSERT_EQ(xlcfg_get_string(&cfg, "name", &s, &err), 0);
    ASSERT_STR(s, "vm1");
    /* Two adjacent strings are two tokens: a syntax error, so use one. */
    ASSERT_EQ(xlcfg_get_string(&cfg, "last", &s, &err), 0);
    ASSERT_STR(s, "no terminator");
    ASSERT_EQ(xlcfg_get_long(&cfg, "dec", &n, &err), 0);
    ASSERT_EQ(n, 512);
    ASSERT_EQ(xlcfg_get_long(&cfg, "hex", &n, &err), 0);
    ASSERT_EQ(n, 31);
    ASSERT_EQ(xlcfg_get_long(&cfg, "oct", &n, &err), 0);
    ASSERT_EQ(n, 8);
    ASSERT_EQ(xlcfg_get_long(&cfg, "dotted.key_9", &n, &err), 0);
    ASSERT_EQ(n, 1);

    ASSERT_EQ(xlcfg_get_list(&cfg, "disk", &l, &err), 0);
    ASSERT_EQ(xlcfg_list_count(l), 4);
    ASSERT_EQ(xlcfg_value_line(l), 6);
    ASSERT_STR(xlcfg_list_get_string(l, 0), "a");
    ASSERT_STR(xlcfg_list_get_string(l, 1), "b");
    ASSERT(xlcfg_list_get_string(l, 2) == NULL);    /* a list */
    inner = xlcfg_list_item(l, 2);
    ASSERT_EQ(xlcfg_value_type(inner), XLCFG_LIST);
    ASSERT_EQ(xlcfg_value_line(inner), 7);
    ASSERT_EQ(xlcfg_list_count(inner), 2);
    ASSERT_STR(xlcfg_list_get_string(inner, 0), "nested");
    ASSERT_EQ(xlcfg_value_type(xlcfg_list_item(inner, 1)), XLCFG_NUMBER);
    ASSERT_STR(xlcfg_list_get_string(inner, 1), "7");
    ASSERT_EQ(xlcfg_list_count(xlcfg_list_item(l, 3)), 0);
    ASSERT(xlcfg_list_item(l, 4) == NULL);

    /* Each setting keeps its line for messages. */
    ASSERT_EQ(xlcfg_lookup(&cfg, "name")->line, 2);
    ASSERT_EQ(xlcfg_lookup(&cfg, "oct")->line, 4);
    ASSERT_EQ(xlcfg_lookup(&cfg, "last")->line, 11);
    ASSERT_STR(xlcfg_lookup(&cfg, "last")->source, "vm1.cfg");
    xlcfg_dispose(&cfg);
}

TEST(syntax_adjacent_strings_are_an_error)
{
    expect_parse_error("single='it''s'\n",
                       "vm1.cfg:1: syntax error near \"'s'\"");
}

TEST(syntax_string_escapes)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    const char *s;

    ASSERT_EQ(parse(&cfg,
                    "a = \"q\\\"s\\'b\\\\\"\n"
                    "b = 'c\\a\\b\\f\\n\\r\\t\\v'\n"
                    "c = \"\\x41\\x7e\\101\\7\"\n"
                    "d = '# not a comment; not a separator'\n"
                    "e = \"\"\n",
                    &err), 0);
    ASSERT_EQ(xlcfg_get_string(&cfg, "a", &s, &err), 0);
    ASSERT_STR(s, "q\"s'b\\");
    ASSERT_EQ(xlcfg_get_string(&cfg, "b", &s, &err), 0);
    ASSERT_STR(s, "c\a\b\f\n\r\t\v");
    ASSERT_EQ(xlcfg_get_string(&cfg, "c", &s, &err), 0);
    ASSERT_STR(s, "A~A\a");
    ASSERT_EQ(xlcfg_get_string(&cfg, "d", &s, &err), 0);
    ASSERT_STR(s, "# not a comment; not a separator");
    ASSERT_EQ(xlcfg_get_string(&cfg, "e", &s, &err), 0);
    ASSERT_STR(s, "");
    xlcfg_dispose(&cfg);
}

TEST(syntax_separators_and_blank_statements)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    long n;

    ASSERT_EQ(parse(&cfg, ";;\n a=1;b=2 ;\n\n;c=3\r\nd=4 # last, no newline",
                    &err), 0);
    ASSERT_EQ(cfg.nr_settings, 4);
    ASSERT_EQ(xlcfg_get_long(&cfg, "c", &n, &err), 0);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(xlcfg_lookup(&cfg, "d")->line, 5);
    xlcfg_dispose(&cfg);

    ASSERT_EQ(parse(&cfg, "", &err), 0);
    ASSERT_EQ(cfg.nr_settings, 0);
    xlcfg_dispose(&cfg);
}

TEST(syntax_number_token_is_also_a_string)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    const char *s;
    long n;

    /* xl: NUMBER and STRING are both atoms; "512" reads as a number. */
    ASSERT_EQ(parse(&cfg, "kernel = 42\nmemory = \"512\"\nhex = \"0x10\"\n",
                    &err), 0);
    ASSERT_EQ(xlcfg_get_string(&cfg, "kernel", &s, &err), 0);
    ASSERT_STR(s, "42");
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), 0);
    ASSERT_EQ(n, 512);
    ASSERT_EQ(xlcfg_get_long(&cfg, "hex", &n, &err), 0);
    ASSERT_EQ(n, 16);
    xlcfg_dispose(&cfg);
}

TEST(last_assignment_wins)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    long n;

    ASSERT_EQ(parse(&cfg, "memory = 256\nvcpus = 1\nmemory = 1024\n", &err),
              0);
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), 0);
    ASSERT_EQ(n, 1024);
    ASSERT_EQ(xlcfg_lookup(&cfg, "memory")->line, 3);
    ASSERT_EQ(cfg.nr_settings, 3);
    xlcfg_dispose(&cfg);
}

/* ---------------------------------------------------------------------
 * The reader: +=
 * --------------------------------------------------------------------- */

TEST(plus_equals_appends_strings_and_lists)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    const struct xlcfg_value *l;
    const char *s;

    ASSERT_EQ(parse(&cfg,
                    "extra = 'console=hvc0'\n"
                    "extra += ' loglevel=8'\n"
                    "disk = [ 'a' ]\n"
                    "disk += [ 'b', 'c' ]\n"
                    "vif += [ 'x' ]\n"
                    "disk += []\n",
                    &err), 0);
    ASSERT_EQ(xlcfg_get_string(&cfg, "extra", &s, &err), 0);
    ASSERT_STR(s, "console=hvc0 loglevel=8");
    ASSERT_EQ(xlcfg_get_list(&cfg, "disk", &l, &err), 0);
    ASSERT_EQ(xlcfg_list_count(l), 3);
    ASSERT_STR(xlcfg_list_get_string(l, 0), "a");
    ASSERT_STR(xlcfg_list_get_string(l, 2), "c");
    /* += with nothing before it is a plain assignment of the value. */
    ASSERT_EQ(xlcfg_get_list(&cfg, "vif", &l, &err), 0);
    ASSERT_EQ(xlcfg_list_count(l), 1);
    xlcfg_dispose(&cfg);
}

TEST(plus_equals_type_mismatch_refused)
{
    expect_parse_error("disk = [ 'a' ]\n\ndisk += 'b'\n",
                       "vm1.cfg:3: key \"disk\": can't add [list] to \"string\" or vice versa");
    expect_parse_error("extra = 'a'\nextra += [ 'b' ]\n",
                       "vm1.cfg:2: key \"extra\": can't add [list] to \"string\" or vice versa");
}

TEST(plus_equals_with_numbers_refused_by_get_long)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    const char *s;
    long n;

    ASSERT_EQ(parse(&cfg, "memory = 512\nmemory += 1\n", &err), 0);
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:2: key \"memory\": can't use += with numbers");
    /* As libxlu: the text was concatenated. */
    ASSERT_EQ(xlcfg_get_string(&cfg, "memory", &s, &err), 0);
    ASSERT_STR(s, "5121");
    xlcfg_dispose(&cfg);
}

/* ---------------------------------------------------------------------
 * The reader: getters
 * --------------------------------------------------------------------- */

TEST(getters_absent_is_enoent_wrong_type_is_einval)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    const struct xlcfg_value *l;
    const char *s;
    long n;

    ASSERT_EQ(parse(&cfg,
                    "name = 'vm1'\n"
                    "disk = [ 'a' ]\n"
                    "memory = 'lots'\n"
                    "vcpus = 1e5\n"
                    "big = 99999999999999999999\n"
                    "blank = ''\n"
                    "num = 12\n",
                    &err), 0);

    ASSERT_EQ(xlcfg_get_string(&cfg, "kernel", &s, &err), -ENOENT);
    ASSERT_STR(err.msg, "key \"kernel\" is not set");
    ASSERT_EQ(xlcfg_get_long(&cfg, "maxmem", &n, &err), -ENOENT);
    ASSERT_EQ(xlcfg_get_list(&cfg, "vif", &l, &err), -ENOENT);

    ASSERT_EQ(xlcfg_get_string(&cfg, "disk", &s, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:2: key \"disk\": expected a single value, got a list");
    ASSERT_EQ(xlcfg_get_long(&cfg, "disk", &n, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:2: key \"disk\": expected a number, got a list");
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:3: key \"memory\": expected a number, got string \"lots\"");
    ASSERT_EQ(xlcfg_get_long(&cfg, "vcpus", &n, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:4: key \"vcpus\": expected a number, got \"1e5\"");
    ASSERT_EQ(xlcfg_get_long(&cfg, "big", &n, &err), -ERANGE);
    ASSERT_STR(err.msg,
               "vm1.cfg:5: key \"big\": number \"99999999999999999999\" is out of range");
    ASSERT_EQ(xlcfg_get_long(&cfg, "blank", &n, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:6: key \"blank\": expected a number, got string \"\"");
    ASSERT_EQ(xlcfg_get_list(&cfg, "name", &l, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:1: key \"name\": expected a list, got string \"vm1\"");
    ASSERT_EQ(xlcfg_get_list(&cfg, "num", &l, &err), -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:7: key \"num\": expected a list, got number 12");

    ASSERT_EQ(xlcfg_get_bounded_long(&cfg, "num", 13, 20, &n, &err),
              -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:7: key \"num\": value 12 is smaller than minimum bound 13");
    ASSERT_EQ(xlcfg_get_bounded_long(&cfg, "num", 0, 11, &n, &err),
              -EINVAL);
    ASSERT_STR(err.msg,
               "vm1.cfg:7: key \"num\": value 12 is greater than maximum bound 11");
    ASSERT_EQ(xlcfg_get_bounded_long(&cfg, "num", 12, 12, &n, &err), 0);
    ASSERT_EQ(n, 12);
    xlcfg_dispose(&cfg);
}

TEST(octal_and_hex_as_strtol_base_0)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    long n;

    ASSERT_EQ(parse(&cfg, "a = 0777\nb = 08\nc = 0x\nd = 0\n", &err), 0);
    ASSERT_EQ(xlcfg_get_long(&cfg, "a", &n, &err), 0);
    ASSERT_EQ(n, 0777);
    ASSERT_EQ(xlcfg_get_long(&cfg, "b", &n, &err), -EINVAL);
    ASSERT_STR(err.msg, "vm1.cfg:2: key \"b\": expected a number, got \"08\"");
    ASSERT_EQ(xlcfg_get_long(&cfg, "c", &n, &err), -EINVAL);
    ASSERT_EQ(xlcfg_get_long(&cfg, "d", &n, &err), 0);
    ASSERT_EQ(n, 0);
    xlcfg_dispose(&cfg);
}

/* ---------------------------------------------------------------------
 * The reader: error messages
 * --------------------------------------------------------------------- */

TEST(syntax_error_names_file_line_and_token)
{
    expect_parse_error("name = 'vm1'\n\n\n\n\n\nkernel = 'k' memory = 5\n",
                       "vm1.cfg:7: syntax error near \"memory\"");
}

TEST(bare_word_value_is_syntax_error)
{
    expect_parse_error("name = 'x'\ntype = pv\n",
                       "vm1.cfg:2: syntax error near \"pv\"");
}

TEST(missing_value_and_missing_operator)
{
    expect_parse_error("memory =\n",
                       "vm1.cfg:1: syntax error near end of line");
    expect_parse_error("memory = # comment\n",
                       "vm1.cfg:1: syntax error near end of line");
    expect_parse_error("memory =", "vm1.cfg:1: syntax error near end of file");
    expect_parse_error("memory 512\n", "vm1.cfg:1: syntax error near \"512\"");
    expect_parse_error("= 512\n", "vm1.cfg:1: syntax error near \"=\"");
    expect_parse_error("512 = memory\n",
                       "vm1.cfg:1: syntax error near \"512\"");
    expect_parse_error("a = 'x' = 'y'\n",
                       "vm1.cfg:1: syntax error near \"=\"");
}

TEST(list_syntax_errors)
{
    expect_parse_error("disk = [ 'a' 'b' ]\n",
                       "vm1.cfg:1: syntax error near \"'b'\"");
    expect_parse_error("disk = [ , ]\n", "vm1.cfg:1: syntax error near \",\"");
    expect_parse_error("disk = [ 'a',, ]\n",
                       "vm1.cfg:1: syntax error near \",\"");
    expect_parse_error("disk = [ 'a',\n\n",
                       "vm1.cfg:3: syntax error near end of file");
    expect_parse_error("disk = ]\n", "vm1.cfg:1: syntax error near \"]\"");
}

TEST(lexical_errors_and_python_hint)
{
    struct xlcfg cfg;
    struct xlcfg_error err;

    ASSERT_EQ(parse(&cfg, "name = 'x'\nmemory = (512)\n", &err), -EINVAL);
    ASSERT_STR(err.msg, "vm1.cfg:2: lexical error near \"(512)\"");
    ASSERT(cfg.likely_python);
    ASSERT_EQ(cfg.nr_settings, 0);       /* the failed call left nothing */
    xlcfg_dispose(&cfg);

    ASSERT_EQ(parse(&cfg, "vcpus = -1\n", &err), -EINVAL);
    ASSERT_STR(err.msg, "vm1.cfg:1: lexical error near \"-1\"");
    ASSERT(cfg.likely_python);
    xlcfg_dispose(&cfg);

    ASSERT_EQ(parse(&cfg, "Memory = 1\n", &err), -EINVAL);
    ASSERT_STR(err.msg, "vm1.cfg:1: lexical error near \"Memory\"");
    ASSERT(!cfg.likely_python);
    xlcfg_dispose(&cfg);

    expect_parse_error("a = 1 ! b\n", "vm1.cfg:1: lexical error near \"!\"");
    expect_parse_error("a = 0x1F\n", "vm1.cfg:1: lexical error near \"F\"");
    expect_parse_error("a = 1\r\n\rb = 2\n",
                       "vm1.cfg:2: lexical error near \"\\x0db\"");
}

TEST(string_errors)
{
    expect_parse_error("name = \"my vm\nkernel = 'k'\n",
                       "vm1.cfg:1: unterminated string near \"\\\"my vm\"");
    expect_parse_error("name = 'a\\\n'\n",
                       "vm1.cfg:1: unterminated string near \"'a\\\\\"");
    expect_parse_error("\n\nname = 'a\\qb'\n",
                       "vm1.cfg:3: invalid character after backslash in quoted string near \"'a\\\\qb'\"");
    expect_parse_error("name = 'a\\x4'\n",
                       "vm1.cfg:1: invalid digit after backslash hex numerical character escape in quoted string near \"'a\\\\x4'\"");
    expect_parse_error("name = 'a\\x00'\n",
                       "vm1.cfg:1: NUL character in quoted string near \"'a\\\\x00'\"");
    expect_parse_error("name = 'a\\0'\n",
                       "vm1.cfg:1: NUL character in quoted string near \"'a\\\\0'\"");
    expect_parse_error("name = 'a\\777'\n",
                       "vm1.cfg:1: octal character escape out of range in quoted string near \"'a\\\\777'\"");
}

TEST(failed_parse_keeps_earlier_calls)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    long n;

    ASSERT_EQ(parse(&cfg, "memory = 512\n", &err), 0);
    ASSERT_EQ(xlcfg_parse_string(&cfg, "more", "vcpus = 2\nmemory = 1 2\n",
                                 &err), -EINVAL);
    ASSERT_STR(err.msg, "more:2: syntax error near \"2\"");
    ASSERT_EQ(cfg.nr_settings, 1);
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), 0);
    ASSERT_EQ(n, 512);
    ASSERT_EQ(xlcfg_get_long(&cfg, "vcpus", &n, &err), -ENOENT);
    xlcfg_dispose(&cfg);
}

TEST(deep_nesting_refused)
{
    char text[256] = "a = ";
    unsigned int i;

    for ( i = 0; i < 70; i++ )
        strcat(text, "[");
    expect_parse_error(text, "vm1.cfg:1: lists nested too deeply near \"[\"");
}

TEST(parse_file_reads_and_names_the_file)
{
    struct xlcfg cfg;
    struct xlcfg_error err;
    char *path = write_temp("name = 'vm1'\nmemory = 'lots'\n");
    char msg[512];
    long n;

    xlcfg_init(&cfg);
    ASSERT_EQ(xlcfg_parse_file(&cfg, path, &err), 0);
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), -EINVAL);
    snprintf(msg, sizeof(msg),
             "%s:2: key \"memory\": expected a number, got string \"lots\"",
             path);
    ASSERT_STR(err.msg, msg);
    xlcfg_dispose(&cfg);
    unlink(path);

    xlcfg_init(&cfg);
    ASSERT_EQ(xlcfg_parse_file(&cfg, path, &err), -ENOENT);
    snprintf(msg, sizeof(msg),
             "%s: unable to open configuration file: No such file or directory",
             path);
    ASSERT_STR(err.msg, msg);
    xlcfg_dispose(&cfg);
    free(path);
}

/* ---------------------------------------------------------------------
 * Command-line overrides
 * --------------------------------------------------------------------- */

TEST(overrides_replace_and_append_after_the_file)
{
    static const char *const args[] = {
        "memory=1024", "extra+=' quiet'", "vcpus=2; maxvcpus=4",
    };
    struct xlcfg cfg;
    struct xlcfg_error err;
    const char *s;
    long n;

    ASSERT_EQ(parse(&cfg, "memory = 512\nextra = 'console=hvc0'\n", &err), 0);
    ASSERT_EQ(xlcfg_apply_overrides(&cfg, args, 3, &err), 0);
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), 0);
    ASSERT_EQ(n, 1024);
    ASSERT_STR(xlcfg_lookup(&cfg, "memory")->source, "command line");
    ASSERT_EQ(xlcfg_lookup(&cfg, "memory")->line, 1);
    ASSERT_EQ(xlcfg_get_string(&cfg, "extra", &s, &err), 0);
    ASSERT_STR(s, "console=hvc0 quiet");
    ASSERT_EQ(xlcfg_get_long(&cfg, "maxvcpus", &n, &err), 0);
    ASSERT_EQ(n, 4);
    xlcfg_dispose(&cfg);
}

TEST(override_errors_name_the_command_line)
{
    static const char *const bad_syntax[] = { "memory=1024", "vcpus 2" };
    static const char *const bad_value[] = { "memory=lots" };
    struct xlcfg cfg;
    struct xlcfg_error err;
    long n;

    ASSERT_EQ(parse(&cfg, "memory = 512\n", &err), 0);
    ASSERT_EQ(xlcfg_apply_overrides(&cfg, bad_syntax, 2, &err), -EINVAL);
    ASSERT_STR(err.msg, "command line:1: syntax error near \"2\"");
    xlcfg_dispose(&cfg);

    /* A bare word on the command line is a syntax error, as in xl. */
    ASSERT_EQ(parse(&cfg, "memory = 512\n", &err), 0);
    ASSERT_EQ(xlcfg_apply_overrides(&cfg, bad_value, 1, &err), -EINVAL);
    ASSERT_STR(err.msg, "command line:1: syntax error near \"lots\"");
    ASSERT_EQ(xlcfg_get_long(&cfg, "memory", &n, &err), 0);
    ASSERT_EQ(n, 512);
    xlcfg_dispose(&cfg);
}

/* ---------------------------------------------------------------------
 * Rendering values
 * --------------------------------------------------------------------- */

TEST(value_format_parses_back)
{
    struct xlcfg cfg, again;
    struct xlcfg_error err;
    const struct xlcfg_value *l;
    char *text, *line;
    const char *s;

    ASSERT_EQ(parse(&cfg, "v = [ 'a\"b\\\\c\\n\\x01', 0x10, [], [ 'x' ], ]\n",
                    &err), 0);
    ASSERT_EQ(xlcfg_get_list(&cfg, "v", &l, &err), 0);
    text = xlcfg_value_format(l);
    ASSERT_STR(text, "[ \"a\\\"b\\\\c\\n\\x01\", 0x10, [], [ \"x\" ] ]");

    ASSERT(asprintf(&line, "v = %s\n", text) > 0);
    xlcfg_init(&again);
    ASSERT_EQ(xlcfg_parse_string(&again, "again", line, &err), 0);
    ASSERT_EQ(xlcfg_get_list(&again, "v", &l, &err), 0);
    ASSERT_EQ(xlcfg_list_count(l), 4);
    s = xlcfg_list_get_string(l, 0);
    ASSERT_STR(s, "a\"b\\c\n\x01");
    free(line);
    free(text);
    xlcfg_dispose(&again);
    xlcfg_dispose(&cfg);
}

/* ---------------------------------------------------------------------
 * The domain configuration
 * --------------------------------------------------------------------- */

TEST(domain_defaults_as_xl)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&dc, MINIMAL, &err), 0);
    ASSERT_STR(dc.name, "vm1");
    ASSERT_STR(dc.kernel, "guests/hello");
    ASSERT_EQ(dc.type, FERRY_DOMAIN_TYPE_PV);
    ASSERT_EQ(dc.memory_mib, 32);        /* libxl's default max, target */
    ASSERT_EQ(dc.maxmem_mib, 32);
    ASSERT_EQ(dc.vcpus, 1);
    ASSERT_EQ(dc.maxvcpus, 1);
    ASSERT(dc.cmdline == NULL);
    ASSERT_EQ(dc.on_poweroff, FERRY_ACTION_DESTROY);
    ASSERT_EQ(dc.on_reboot, FERRY_ACTION_RESTART);
    ASSERT_EQ(dc.on_crash, FERRY_ACTION_DESTROY);
    ASSERT_EQ(dc.nr_unknown, 0);
    ASSERT_EQ(dc.nr_warnings, 0);
    ferry_domain_config_dispose(&dc);
}

TEST(domain_full_config)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char uuid[37];

    ASSERT_EQ(domain(&dc,
                     "name = 'web'\n"
                     "uuid = '6F2A1B3C-0000-4000-8000-00000000AB01'\n"
                     "type = 'pv'\n"
                     "memory = 512\n"
                     "maxmem = '1G'\n"
                     "vcpus = 2\n"
                     "maxvcpus = 4\n"
                     "kernel = '/boot/vmlinuz'\n"
                     "cmdline = 'console=hvc0'\n"
                     "on_poweroff = 'preserve'\n"
                     "on_reboot = 'rename-restart'\n"
                     "on_crash = 'coredump-restart'\n",
                     &err), 0);
    ASSERT_STR(dc.name, "web");
    uuid_unparse_lower(dc.uuid, uuid);
    ASSERT_STR(uuid, "6f2a1b3c-0000-4000-8000-00000000ab01");
    ASSERT_EQ(dc.memory_mib, 512);
    ASSERT_EQ(dc.maxmem_mib, 1024);
    ASSERT_EQ(dc.vcpus, 2);
    ASSERT_EQ(dc.maxvcpus, 4);
    ASSERT_STR(dc.kernel, "/boot/vmlinuz");
    ASSERT_STR(dc.cmdline, "console=hvc0");
    ASSERT_EQ(dc.on_poweroff, FERRY_ACTION_PRESERVE);
    ASSERT_EQ(dc.on_reboot, FERRY_ACTION_RESTART_RENAME);
    ASSERT_EQ(dc.on_crash, FERRY_ACTION_COREDUMP_RESTART);
    ferry_domain_config_dispose(&dc);
}

TEST(domain_memory_defaults_follow_each_other)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&dc, MINIMAL "memory = 256\n", &err), 0);
    ASSERT_EQ(dc.memory_mib, 256);
    ASSERT_EQ(dc.maxmem_mib, 256);
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "maxmem = 300\n", &err), 0);
    ASSERT_EQ(dc.memory_mib, 300);
    ASSERT_EQ(dc.maxmem_mib, 300);
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "maxmem = 256\nmemory = 256\n", &err), 0);
    ferry_domain_config_dispose(&dc);
}

TEST(domain_maxmem_below_memory_refused)
{
    expect_domain_error(MINIMAL "memory = 512\nmaxmem = 256\n",
                        "vm1.cfg:4: key \"maxmem\": maxmem < memory (256 MiB < 512 MiB)");
    expect_domain_error(MINIMAL "memory = 0\n",
                        "vm1.cfg:3: key \"memory\": \"0\" is smaller than the minimum, 1 MiB");
    expect_domain_error(MINIMAL "memory = 'lots'\n",
                        "vm1.cfg:3: key \"memory\": \"lots\" is not a size (digits, then optionally B, K, M, G or T)");
}

TEST(domain_memory_is_a_size)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    /* ferry's one size syntax: MiB without a unit, quoted or not. */
    ASSERT_EQ(domain(&dc, MINIMAL "memory = '256MiB'\nmaxmem = '2G'\n",
                     &err), 0);
    ASSERT_EQ(dc.memory_mib, 256);
    ASSERT_EQ(dc.maxmem_mib, 2048);
    ferry_domain_config_dispose(&dc);
    ASSERT_EQ(domain(&dc, MINIMAL "memory = '262144k'\nmaxmem = \"512\"\n",
                     &err), 0);
    ASSERT_EQ(dc.memory_mib, 256);
    ASSERT_EQ(dc.maxmem_mib, 512);
    ferry_domain_config_dispose(&dc);

    expect_domain_error(MINIMAL "memory = '1536K'\n",
                        "vm1.cfg:3: key \"memory\": \"1536K\" is not a whole number of MiB");
    expect_domain_error(MINIMAL "maxmem = '99999999999999999999'\n",
                        "vm1.cfg:3: key \"maxmem\": \"99999999999999999999\" is too large");
    expect_domain_error(MINIMAL "memory = 17592186044416\n",
                        "vm1.cfg:3: key \"memory\": \"17592186044416\" is too large");
    /* Decimal only: Xen's xl would read 0x400 as hex (DIFFERENCES). */
    expect_domain_error(MINIMAL "maxmem = 0x400\n",
                        "vm1.cfg:3: key \"maxmem\": \"0x400\" is not a size (digits, then optionally B, K, M, G or T)");
    expect_domain_error(MINIMAL "memory = [512]\n",
                        "vm1.cfg:3: key \"memory\": expected a size, got a list");
    expect_domain_error(MINIMAL "memory = '5'\nmemory += '12'\n",
                        "vm1.cfg:4: key \"memory\": can't use += with numbers");
}

TEST(domain_vcpus_rules)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    /* xl turns vcpus < 1 into 1; maxvcpus = 0 means "not set". */
    ASSERT_EQ(domain(&dc, MINIMAL "vcpus = 0\nmaxvcpus = 0\n", &err), 0);
    ASSERT_EQ(dc.vcpus, 1);
    ASSERT_EQ(dc.maxvcpus, 1);
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "vcpus = 3\n", &err), 0);
    ASSERT_EQ(dc.vcpus, 3);
    ASSERT_EQ(dc.maxvcpus, 3);
    ferry_domain_config_dispose(&dc);

    expect_domain_error(MINIMAL "vcpus = 4\nmaxvcpus = 2\n",
                        "vm1.cfg:4: key \"maxvcpus\": maxvcpus < vcpus (2 < 4)");
    expect_domain_error(MINIMAL "vcpus = 8193\n",
                        "vm1.cfg:3: key \"vcpus\": value 8193 is greater than maximum bound 8192");
}

TEST(domain_uuid_generated_valid_and_fresh)
{
    struct ferry_domain_config a, b;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&a, MINIMAL, &err), 0);
    ASSERT_EQ(domain(&b, MINIMAL, &err), 0);
    ASSERT(!uuid_is_null(a.uuid));
    ASSERT(!uuid_is_null(b.uuid));
    ASSERT(uuid_compare(a.uuid, b.uuid) != 0);
    /* uuid_generate gives RFC 4122 variant UUIDs. */
    ASSERT_EQ(uuid_type(a.uuid) == UUID_TYPE_DCE_RANDOM ||
              uuid_type(a.uuid) == UUID_TYPE_DCE_TIME, 1);
    ASSERT_EQ(uuid_variant(a.uuid), UUID_VARIANT_DCE);
    ferry_domain_config_dispose(&a);
    ferry_domain_config_dispose(&b);
}

TEST(domain_uuid_preserved_and_invalid_refused)
{
    struct ferry_domain_config a, b;
    struct xlcfg_error err;
    static const char *text =
        MINIMAL "uuid = \"00112233-4455-6677-8899-aabbccddeeff\"\n";
    char s[37];

    ASSERT_EQ(domain(&a, text, &err), 0);
    ASSERT_EQ(domain(&b, text, &err), 0);
    ASSERT_EQ(uuid_compare(a.uuid, b.uuid), 0);
    uuid_unparse_lower(a.uuid, s);
    ASSERT_STR(s, "00112233-4455-6677-8899-aabbccddeeff");
    ferry_domain_config_dispose(&a);
    ferry_domain_config_dispose(&b);

    expect_domain_error(MINIMAL "uuid = 'not-a-uuid'\n",
                        "vm1.cfg:3: key \"uuid\": Failed to parse UUID: \"not-a-uuid\"");
    expect_domain_error(MINIMAL "uuid = [ 'x' ]\n",
                        "vm1.cfg:3: key \"uuid\": expected a single value, got a list");
}

TEST(domain_type_only_pv)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    /* xl matches a prefix, hvm first: "p" is pv. */
    ASSERT_EQ(domain(&dc, MINIMAL "type = 'p'\n", &err), 0);
    ferry_domain_config_dispose(&dc);
    ASSERT_EQ(domain(&dc, MINIMAL "builder = 'generic'\n", &err), 0);
    ferry_domain_config_dispose(&dc);
    ASSERT_EQ(domain(&dc, MINIMAL "type = 'pv'\nbuilder = 'gen'\n", &err), 0);
    ferry_domain_config_dispose(&dc);

    expect_domain_error(MINIMAL "type = 'hvm'\n",
                        "vm1.cfg:3: key \"type\": domain type \"hvm\" is not supported: ferry runs PV domains only (type = \"pv\")");
    expect_domain_error(MINIMAL "type = 'pvh'\n",
                        "vm1.cfg:3: key \"type\": domain type \"pvh\" is not supported: ferry runs PV domains only (type = \"pv\")");
    expect_domain_error(MINIMAL "type = ''\n",
                        "vm1.cfg:3: key \"type\": domain type \"hvm\" is not supported: ferry runs PV domains only (type = \"pv\")");
    expect_domain_error(MINIMAL "type = 'xen'\n",
                        "vm1.cfg:3: key \"type\": Invalid domain type \"xen\".");
    expect_domain_error(MINIMAL "builder = 'hvm'\n",
                        "vm1.cfg:3: key \"builder\": domain type \"hvm\" is not supported: ferry runs PV domains only (type = \"pv\")");
    expect_domain_error(MINIMAL "builder = 'linux'\n",
                        "vm1.cfg:3: key \"builder\": Invalid domain type \"linux\".");
    expect_domain_error(MINIMAL "type = 'pv'\nbuilder = 'hvm'\n",
                        "vm1.cfg:4: key \"builder\": Contradicting \"builder\" and \"type\" options specified.");
}

TEST(domain_name_and_kernel_mandatory)
{
    expect_domain_error("kernel = 'k'\n",
                        "vm1.cfg: Domain name must be specified.");
    expect_domain_error("kernel = 'k'\nname = ''\n",
                        "vm1.cfg:2: key \"name\": Domain name must not be empty.");
    expect_domain_error("name = 'vm1'\n",
                        "vm1.cfg: key \"kernel\" must be specified (ferry has no bootloader)");
    expect_domain_error("name = [ 'vm1' ]\nkernel = 'k'\n",
                        "vm1.cfg:1: key \"name\": expected a single value, got a list");
}

TEST(domain_cmdline_root_extra_as_xl)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&dc, MINIMAL "extra = 'console=hvc0'\n", &err), 0);
    ASSERT_STR(dc.cmdline, "console=hvc0");
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "root = '/dev/xvda1'\n", &err), 0);
    ASSERT_STR(dc.cmdline, "root=/dev/xvda1");
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "extra = 'ro quiet'\nroot = '/dev/xvda1'\n",
                     &err), 0);
    ASSERT_STR(dc.cmdline, "root=/dev/xvda1 ro quiet");
    ASSERT_EQ(dc.nr_warnings, 0);
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "cmdline = 'a=1'\nextra = 'b=2'\n", &err),
              0);
    ASSERT_STR(dc.cmdline, "a=1");
    ASSERT_EQ(dc.nr_warnings, 1);
    ASSERT_STR(dc.warnings[0],
               "vm1.cfg: Warning: ignoring root= and extra= in favour of cmdline=");
    ferry_domain_config_dispose(&dc);

    ASSERT_EQ(domain(&dc, MINIMAL "extra = 'a'\nextra += ' b'\n", &err), 0);
    ASSERT_STR(dc.cmdline, "a b");
    ferry_domain_config_dispose(&dc);
}

TEST(domain_actions_validated)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&dc, MINIMAL "on_poweroff = 'restart'\n"
                     "on_reboot = 'destroy'\non_crash = 'coredump-destroy'\n",
                     &err), 0);
    ASSERT_EQ(dc.on_poweroff, FERRY_ACTION_RESTART);
    ASSERT_EQ(dc.on_reboot, FERRY_ACTION_DESTROY);
    ASSERT_EQ(dc.on_crash, FERRY_ACTION_COREDUMP_DESTROY);
    ferry_domain_config_dispose(&dc);

    expect_domain_error(MINIMAL "on_crash = 'explode'\n",
                        "vm1.cfg:3: key \"on_crash\": Unknown on_crash action \"explode\" specified");
    expect_domain_error(MINIMAL "on_reboot = 'restart_rename'\n",
                        "vm1.cfg:3: key \"on_reboot\": Unknown on_reboot action \"restart_rename\" specified");
    expect_domain_error(MINIMAL "on_poweroff = 'soft-reset'\n",
                        "vm1.cfg:3: key \"on_poweroff\": action \"soft-reset\" is not supported for PV domains");
    expect_domain_error(MINIMAL "on_poweroff = 1\n",
                        "vm1.cfg:3: key \"on_poweroff\": Unknown on_poweroff action \"1\" specified");
}

TEST(domain_unknown_keys_ignored_but_listed)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&dc, MINIMAL
                     "vif = [ 'bridge=br0' ]\n"
                     "disk = [ 'file:/x,xvda,w' ]\n"
                     "vif = [ 'bridge=br1' ]\n"
                     "ramdisk = '/boot/initrd'\n",
                     &err), 0);
    ASSERT_EQ(dc.nr_unknown, 3);
    ASSERT_STR(dc.unknown[0].key, "vif");
    ASSERT_STR(dc.unknown[0].value, "[ \"bridge=br1\" ]");
    ASSERT_EQ(dc.unknown[0].line, 5);
    ASSERT_STR(dc.unknown[0].source, "vm1.cfg");
    ASSERT_STR(dc.unknown[1].key, "disk");
    ASSERT_STR(dc.unknown[2].key, "ramdisk");
    ASSERT_STR(dc.unknown[2].value, "\"/boot/initrd\"");
    ferry_domain_config_dispose(&dc);
}

TEST(domain_load_file_with_overrides)
{
    static const char *const args[] = { "memory=64", "name='vm2'",
                                        "extra+=' quiet'" };
    static const char *const bad[] = { "memory=(64)" };
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char *path = write_temp("name = 'vm1'\nkernel = 'hello'\n"
                            "memory = 32\nextra = 'console=hvc0'\n");
    bool py = true;

    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_load(&dc, path, args, 3, &py, &err), 0);
    ASSERT(!py);
    ASSERT_STR(dc.name, "vm2");
    ASSERT_EQ(dc.memory_mib, 64);
    ASSERT_EQ(dc.maxmem_mib, 64);
    ASSERT_STR(dc.cmdline, "console=hvc0 quiet");
    ferry_domain_config_dispose(&dc);

    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_load(&dc, path, bad, 1, &py, &err),
              -EINVAL);
    ASSERT(py);
    ASSERT_STR(err.msg, "command line:1: lexical error near \"(64)\"");
    ferry_domain_config_dispose(&dc);
    unlink(path);
    free(path);
}

TEST(domain_to_xlcfg_round_trip)
{
    struct ferry_domain_config dc, again;
    struct xlcfg_error err;
    char *text;

    ASSERT_EQ(domain(&dc,
                     "name = 'we\"ird\\\\name'\n"
                     "uuid = '00112233-4455-6677-8899-aabbccddeeff'\n"
                     "memory = 128; maxmem = 256; vcpus = 2; maxvcpus = 3\n"
                     "kernel = 'hello'\n"
                     "extra = 'a\\tb'\n"
                     "on_reboot = 'preserve'\n"
                     "vif = [ 'bridge=br0' ]\n",
                     &err), 0);
    text = ferry_domain_config_to_xlcfg(&dc);
    ASSERT_STR(text,
               "name = \"we\\\"ird\\\\name\"\n"
               "uuid = \"00112233-4455-6677-8899-aabbccddeeff\"\n"
               "type = \"pv\"\n"
               "memory = 128\n"
               "maxmem = 256\n"
               "vcpus = 2\n"
               "maxvcpus = 3\n"
               "kernel = \"hello\"\n"
               "cmdline = \"a\\tb\"\n"
               "on_poweroff = \"destroy\"\n"
               "on_reboot = \"preserve\"\n"
               "on_crash = \"destroy\"\n"
               "# ignored (unknown to ferry): vif = [ \"bridge=br0\" ]  (vm1.cfg:7)\n");
    ASSERT_EQ(domain(&again, text, &err), 0);
    ASSERT(ferry_domain_config_equal(&dc, &again));
    ASSERT_EQ(again.nr_unknown, 0);      /* comments are not settings */
    free(text);
    ferry_domain_config_dispose(&again);
    ferry_domain_config_dispose(&dc);
}

TEST(domain_equal_notices_each_field)
{
    static const char *text =
        MINIMAL "uuid='00112233-4455-6677-8899-aabbccddeeff'\n";
    struct ferry_domain_config a, b;
    struct xlcfg_error err;

    ASSERT_EQ(domain(&a, text, &err), 0);
    ASSERT_EQ(domain(&b, text, &err), 0);
    ASSERT(ferry_domain_config_equal(&a, &b));
    b.memory_mib = 31;
    ASSERT(!ferry_domain_config_equal(&a, &b));
    b.memory_mib = a.memory_mib;
    b.on_crash = FERRY_ACTION_PRESERVE;
    ASSERT(!ferry_domain_config_equal(&a, &b));
    b.on_crash = a.on_crash;
    b.cmdline = strdup("x");
    ASSERT(!ferry_domain_config_equal(&a, &b));
    ferry_domain_config_dispose(&a);
    ferry_domain_config_dispose(&b);
}

/* ---------------------------------------------------------------------
 * JSON
 * --------------------------------------------------------------------- */

TEST(json_has_libxl_shape)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char *json;

    ASSERT_EQ(domain(&dc,
                     "name = 'vm1'\n"
                     "uuid = '00112233-4455-6677-8899-aabbccddeeff'\n"
                     "memory = 512; maxmem = 1024; vcpus = 2; maxvcpus = 4\n"
                     "kernel = '/boot/k'\ncmdline = 'console=hvc0'\n"
                     "on_reboot = 'rename-restart'\n",
                     &err), 0);
    json = ferry_domain_config_to_json(&dc);
    ASSERT_STR(json,
               "{\n"
               "    \"c_info\": {\n"
               "        \"type\": \"pv\",\n"
               "        \"name\": \"vm1\",\n"
               "        \"uuid\": \"00112233-4455-6677-8899-aabbccddeeff\"\n"
               "    },\n"
               "    \"b_info\": {\n"
               "        \"max_vcpus\": 4,\n"
               "        \"avail_vcpus\": [\n"
               "            0,\n"
               "            1\n"
               "        ],\n"
               "        \"max_memkb\": 1048576,\n"
               "        \"target_memkb\": 524288,\n"
               "        \"kernel\": \"/boot/k\",\n"
               "        \"cmdline\": \"console=hvc0\",\n"
               "        \"type.pv\": {\n"
               "            \"kernel\": \"/boot/k\",\n"
               "            \"cmdline\": \"console=hvc0\"\n"
               "        }\n"
               "    },\n"
               "    \"on_poweroff\": \"destroy\",\n"
               "    \"on_reboot\": \"restart_rename\",\n"
               "    \"on_crash\": \"destroy\"\n"
               "}\n");
    free(json);
    ferry_domain_config_dispose(&dc);
}

static void json_round_trip(const char *text)
{
    struct ferry_domain_config dc, back;
    struct xlcfg_error err;
    char *json, *json2;

    ASSERT_EQ(domain(&dc, text, &err), 0);
    json = ferry_domain_config_to_json(&dc);
    ASSERT(json);
    ferry_domain_config_init(&back);
    ASSERT_EQ(ferry_domain_config_from_json(&back, NULL, json, strlen(json),
                                            &err), 0);
    ASSERT(ferry_domain_config_equal(&dc, &back));
    json2 = ferry_domain_config_to_json(&back);
    ASSERT_STR(json2, json);
    free(json);
    free(json2);
    ferry_domain_config_dispose(&dc);
    ferry_domain_config_dispose(&back);
}

TEST(json_round_trip_equal)
{
    json_round_trip(MINIMAL);
    json_round_trip(MINIMAL "memory = 100; maxmem = 200; vcpus = 3\n"
                    "maxvcpus = 8; cmdline = ''\n"
                    "on_poweroff = 'coredump-destroy'\n"
                    "on_reboot = 'coredump-restart'\non_crash = 'preserve'\n");
    /* Quotes, backslashes, control characters and UTF-8 survive. */
    json_round_trip("name = 'a \"quoted\" \\\\ name'\n"
                    "kernel = 'k\\n\\t\\x01\\x1f\\x7f'\n"
                    "cmdline = 'caf\xc3\xa9 \xe2\x82\xac'\n");
}

TEST(json_escapes_strings)
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char *json;

    ASSERT_EQ(domain(&dc, "name = 'a\"b\\\\c'\nkernel = 'x\\n\\x01'\n", &err),
              0);
    json = ferry_domain_config_to_json(&dc);
    ASSERT_CONTAINS(json, "\"name\": \"a\\\"b\\\\c\"");
    ASSERT_CONTAINS(json, "\"kernel\": \"x\\n\\u0001\"");
    free(json);
    ferry_domain_config_dispose(&dc);
}

TEST(json_reads_libxl_output_ignoring_other_fields)
{
    /* Shaped like `xl list -l` output: extra fields, destroy elided,
     * kernel only in type.pv, \u escapes and a surrogate pair. */
    static const char json[] =
        "{\"c_info\": {\"type\": \"pv\", \"hap\": \"<default>\","
        " \"name\": \"d\\u00e9mo\\ud83d\\ude00\", \"domid\": 7,"
        " \"uuid\": \"00112233-4455-6677-8899-AABBCCDDEEFF\","
        " \"xsdata\": {}, \"run_hotplug_scripts\": \"True\"},"
        " \"b_info\": {\"max_vcpus\": 2, \"avail_vcpus\": [0],"
        " \"numa_placement\": \"True\", \"max_memkb\": 262144,"
        " \"target_memkb\": 131072, \"video_memkb\": -1,"
        " \"sched_params\": {\"weight\": 1.5e2, \"cap\": null},"
        " \"type.pv\": {\"kernel\": \"/k\", \"slack_memkb\": 0,"
        " \"e820_host\": false}},"
        " \"disks\": [], \"nics\": [{\"mac\": \"00:16:3e:00:00:01\"}],"
        " \"on_reboot\": \"restart\"}";
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char uuid[37];

    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_from_json(&dc, "x", json, strlen(json),
                                            &err), 0);
    ASSERT_STR(dc.name, "d\xc3\xa9mo\xf0\x9f\x98\x80");
    uuid_unparse_lower(dc.uuid, uuid);
    ASSERT_STR(uuid, "00112233-4455-6677-8899-aabbccddeeff");
    ASSERT_EQ(dc.maxvcpus, 2);
    ASSERT_EQ(dc.vcpus, 1);
    ASSERT_EQ(dc.maxmem_mib, 256);
    ASSERT_EQ(dc.memory_mib, 128);
    ASSERT_STR(dc.kernel, "/k");
    ASSERT(dc.cmdline == NULL);
    ASSERT_EQ(dc.on_poweroff, FERRY_ACTION_DESTROY);
    ASSERT_EQ(dc.on_reboot, FERRY_ACTION_RESTART);
    ASSERT_EQ(dc.on_crash, FERRY_ACTION_DESTROY);
    ferry_domain_config_dispose(&dc);
}

#define JCI "\"c_info\": {\"type\": \"pv\", \"name\": \"vm1\", " \
            "\"uuid\": \"00112233-4455-6677-8899-aabbccddeeff\"}"
#define JBI "\"b_info\": {\"max_vcpus\": 1, \"avail_vcpus\": [0], " \
            "\"max_memkb\": 32768, \"target_memkb\": 32768, \"kernel\": \"k\"}"

TEST(json_valid_baseline_for_error_tests)
{
    static const char json[] = "{" JCI ", " JBI "}";
    struct ferry_domain_config dc;
    struct xlcfg_error err;

    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_from_json(&dc, NULL, json, strlen(json),
                                            &err), 0);
    ASSERT_EQ(dc.memory_mib, 32);
    ferry_domain_config_dispose(&dc);
}

TEST(json_syntax_errors_name_the_offset)
{
    /* json-c's strict mode finds these; the offset is where it stopped. */
    expect_json_error("",
                      "save.img: offset 0: unexpected end of data");
    expect_json_error("  {\"a\" 1}",
                      "save.img: offset 7: object property name separator ':' expected");
    expect_json_error("{\"a\": 1 \"b\": 2}",
                      "save.img: offset 8: object value separator ',' expected");
    expect_json_error("{\"a\": [1 2]}",
                      "save.img: offset 9: array value separator ',' expected");
    expect_json_error("{a: 1}",
                      "save.img: offset 1: quoted object property name expected");
    expect_json_error("{\"a\": 1,}",
                      "save.img: offset 8: unexpected character");
    expect_json_error("[1,]", "save.img: offset 3: unexpected character");
    expect_json_error("{} x", "save.img: offset 3: unexpected character");
    expect_json_error("{\"a\": 'x'}",
                      "save.img: offset 6: unexpected character");
    expect_json_error("{\"a\": 1} /* c */",
                      "save.img: offset 9: unexpected character");
    expect_json_error("{\"a\": \"x",
                      "save.img: offset 8: unexpected end of data");
    expect_json_error("{\"a\": \"\\q\"}",
                      "save.img: offset 8: invalid string sequence");
    expect_json_error("{\"a\": \"\\u00g0\"}",
                      "save.img: offset 11: invalid string sequence");
    expect_json_error("{\"a\": 01}", "save.img: offset 8: number expected");
    expect_json_error("{\"a\": tru}",
                      "save.img: offset 9: boolean expected");
    expect_json_error("{\"a\": True}",
                      "save.img: offset 6: boolean expected");
    expect_json_error("{\"a\": \"\xff\"}",
                      "save.img: offset 7: invalid utf-8 string");
}

TEST(json_nul_bytes_and_deep_nesting_refused)
{
    static const char nul[] = "{\"a\": 1}\0{\"b\": 2}";
    struct ferry_domain_config dc;
    struct xlcfg_error err = { "" };
    char deep[200];

    /* The length given is the length read: a NUL inside it is an error,
     * not the end of the text. */
    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_from_json(&dc, "save.img", nul,
                                            sizeof(nul) - 1, &err), -EINVAL);
    ASSERT_STR(err.msg, "save.img: offset 8: NUL byte in the JSON text");
    /* ...and nothing past it is read: the text ends where len says. */
    ASSERT_EQ(ferry_domain_config_from_json(&dc, "save.img", "{} trailing",
                                            2, &err), -EINVAL);
    ASSERT_STR(err.msg, "save.img: (top level): missing \"c_info\"");
    ferry_domain_config_dispose(&dc);

    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = '\0';
    expect_json_error(deep, "save.img: offset 64: nesting too deep");
}

TEST(json_strings_ferry_reads_hold_no_nul)
{
    /* \u0000 is valid JSON, but a name with a NUL in it would be cut
     * short as a C string: refused where ferry reads it... */
    expect_json_error("{\"c_info\": {\"type\": \"pv\", \"name\": \"a\\u0000b\"}}",
                      "save.img: c_info.name: \\u0000 is not allowed in strings");
    expect_json_error("{" JCI ", " JBI ", \"on_crash\": \"destroy\\u0000x\"}",
                      "save.img: (top level).on_crash: \\u0000 is not allowed in strings");
}

TEST(json_lenient_syntax_is_json_c_s)
{
    /* What json-c's strict mode accepts and the old reader did not:
     * members ferry ignores may hold them; duplicate keys keep the last
     * value (xl.cfg(5), SAVED CONFIGURATIONS). */
    static const char json[] =
        "{" JCI ", " JBI ", \"x\": \"\\u0000\", \"y\": 1., "
        "\"z\": \"\\udc00\", \"on_crash\": \"destroy\", "
        "\"on_crash\": \"preserve\"}";
    struct ferry_domain_config dc;
    struct xlcfg_error err = { "" };

    ferry_domain_config_init(&dc);
    ASSERT_EQ(ferry_domain_config_from_json(&dc, NULL, json, strlen(json),
                                            &err), 0);
    ASSERT_EQ(dc.on_crash, FERRY_ACTION_PRESERVE);
    ferry_domain_config_dispose(&dc);
}

TEST(json_semantic_errors_name_the_field)
{
    expect_json_error("[]",
                      "save.img: expected an object, got an array");
    expect_json_error("{" JBI "}",
                      "save.img: (top level): missing \"c_info\"");
    expect_json_error("{" JCI "}",
                      "save.img: (top level): missing \"b_info\"");
    expect_json_error("{\"c_info\": {\"type\": \"hvm\"}, " JBI "}",
                      "save.img: c_info.type: domain type \"hvm\" is not supported: ferry runs PV domains only");
    expect_json_error("{\"c_info\": {\"type\": \"pv\", \"name\": 5}}",
                      "save.img: c_info.name: expected a string, got a number");
    expect_json_error("{\"c_info\": {\"type\": \"pv\", \"name\": \"a\"}}",
                      "save.img: c_info: missing \"uuid\"");
    expect_json_error("{\"c_info\": {\"type\": \"pv\", \"name\": \"a\", "
                      "\"uuid\": \"zz\"}}",
                      "save.img: c_info.uuid: Failed to parse UUID: \"zz\"");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": 1000, "
                      "\"target_memkb\": 1000, \"kernel\": \"k\"}}",
                      "save.img: b_info.max_memkb: 1000 is out of range [1024, 9223372036854774784]");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": 2000, "
                      "\"target_memkb\": 2048, \"kernel\": \"k\"}}",
                      "save.img: b_info.max_memkb: 2000 KiB is not a whole number of MiB");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": 2048, "
                      "\"target_memkb\": 4096, \"kernel\": \"k\"}}",
                      "save.img: b_info.max_memkb: maxmem < memory (2048 KiB < 4096 KiB)");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 2, "
                      "\"avail_vcpus\": [1], \"max_memkb\": 2048, "
                      "\"target_memkb\": 2048, \"kernel\": \"k\"}}",
                      "save.img: b_info.avail_vcpus: expected vCPU 0, got 1 (the online vCPUs must be 0 to N-1 in order)");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0, 1], \"max_memkb\": 2048, "
                      "\"target_memkb\": 2048, \"kernel\": \"k\"}}",
                      "save.img: b_info.avail_vcpus: 2 vCPUs online, need 1 to max_vcpus (1)");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": -1}}",
                      "save.img: b_info.max_vcpus: expected a non-negative integer, got -1");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1.5}}",
                      "save.img: b_info.max_vcpus: expected a non-negative integer, got 1.5");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": \"1\"}}",
                      "save.img: b_info.max_vcpus: expected a number, got a string");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": true}}",
                      "save.img: b_info.max_vcpus: expected a number, got a boolean");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 99999999999999999999999}}",
                      "save.img: b_info.max_vcpus: 18446744073709551615 or more is out of range [1, 8192]");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 8193}}",
                      "save.img: b_info.max_vcpus: 8193 is out of range [1, 8192]");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": {}}}",
                      "save.img: b_info.avail_vcpus: expected an array, got an object");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [null]}}",
                      "save.img: b_info.avail_vcpus: expected a number, got null");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": -2048, "
                      "\"target_memkb\": 2048, \"kernel\": \"k\"}}",
                      "save.img: b_info.max_memkb: expected a non-negative integer, got -2048");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": 2048, "
                      "\"target_memkb\": 2048, \"kernel\": [\"k\"]}}",
                      "save.img: b_info.kernel: expected a string, got an array");
    expect_json_error("{\"c_info\": [], " JBI "}",
                      "save.img: (top level).c_info: expected an object, got an array");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": 2048, "
                      "\"target_memkb\": 2048}}",
                      "save.img: b_info: missing \"kernel\"");
    expect_json_error("{" JCI ", \"b_info\": {\"max_vcpus\": 1, "
                      "\"avail_vcpus\": [0], \"max_memkb\": 2048, "
                      "\"target_memkb\": 2048, \"kernel\": \"a\", "
                      "\"type.pv\": {\"kernel\": \"b\"}}}",
                      "save.img: b_info.type.pv.kernel differs from b_info.kernel");
    expect_json_error("{" JCI ", " JBI ", \"on_crash\": \"rename-restart\"}",
                      "save.img: on_crash: unknown action \"rename-restart\"");
    expect_json_error("{" JCI ", " JBI ", \"on_crash\": \"soft_reset\"}",
                      "save.img: on_crash: action \"soft_reset\" is not supported for PV domains");
}

/* ---------------------------------------------------------------------
 * The JSON helpers the rest of xl uses
 * --------------------------------------------------------------------- */

TEST(json_helpers_format_line_and_getters)
{
    static const char text[] =
        "{\"s\": \"a\\\"b\\\\c\\u00e9\\u0001/{\\n}\", \"e\": {}, \"a\": [], "
        "\"n\": 18446744073709551614, \"big\": 18446744073709551615, "
        "\"neg\": -1, \"f\": 1.0, \"b\": true, \"z\": \"x\\u0000\"}";
    struct json_object *o;
    struct xlcfg_error err;
    const char *s;
    uint64_t v = 7;
    bool b = false;
    char *pretty;

    ASSERT_EQ(xlcfg_json_parse("t", text, strlen(text), &o, &err), 0);
    ASSERT_EQ(xlcfg_json_get_string(o, "s", &s), 0);
    ASSERT_STR(s, "a\"b\\c\xc3\xa9\x01/{\n}");
    /* One line: escapes as JSON needs them, UTF-8 and '/' as they are. */
    ASSERT_STR(xlcfg_json_line(o),
               "{\"s\":\"a\\\"b\\\\c\xc3\xa9\\u0001/{\\n}\",\"e\":{},"
               "\"a\":[],\"n\":18446744073709551614,"
               "\"big\":18446744073709551615,\"neg\":-1,\"f\":1.0,"
               "\"b\":true,\"z\":\"x\\u0000\"}");
    /* As libxl prints: four spaces a level, empty containers closed. */
    pretty = xlcfg_json_format(o);
    ASSERT_STR(pretty,
               "{\n"
               "    \"s\": \"a\\\"b\\\\c\xc3\xa9\\u0001/{\\n}\",\n"
               "    \"e\": {},\n"
               "    \"a\": [],\n"
               "    \"n\": 18446744073709551614,\n"
               "    \"big\": 18446744073709551615,\n"
               "    \"neg\": -1,\n"
               "    \"f\": 1.0,\n"
               "    \"b\": true,\n"
               "    \"z\": \"x\\u0000\"\n"
               "}\n");
    free(pretty);

    ASSERT_EQ(xlcfg_json_get_u64(o, "n", &v), 0);
    ASSERT_EQ(v, 18446744073709551614ULL);
    /* What json-c saturated at 2^64 - 1 cannot be told from bigger. */
    ASSERT_EQ(xlcfg_json_get_u64(o, "big", &v), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_u64(o, "neg", &v), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_u64(o, "f", &v), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_u64(o, "s", &v), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_u64(o, "nope", &v), -ENOENT);
    ASSERT_EQ(v, 18446744073709551614ULL);      /* untouched */
    ASSERT_EQ(xlcfg_json_get_bool(o, "b", &b), 0);
    ASSERT(b);
    ASSERT_EQ(xlcfg_json_get_bool(o, "n", &b), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_string(o, "z", &s), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_string(o, "e", &s), -EINVAL);
    ASSERT_EQ(xlcfg_json_get_string(json_object_object_get(o, "a"), "x",
                                    &s), -ENOENT);
    json_object_put(o);
}
