/* The option engine (core/option.h): a private table over a test struct
 * for every type and refusal, then both real tables through it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/option.h"
#include "daemon/options.h"
#include "harness.h"
#include "overlay/compose.h"
#include "pipeline/options.h"

struct thing {
    char *path;
    char *tags[3];
    int ntags;
    int on;
    int count;
    float level;
    int kind;
    uint32_t rgb;
    int hw[2];
    char *format;
    int untouched; /* in no table entry: the engine must leave it be */
};

static int hook_calls;

/* A STRING hook only checks: the engine stores the string. */
static int absolute(const struct mms_option *opt, const char *value, void *field,
                    struct mms_err *err)
{
    hook_calls++;
    CHECK(field == NULL);
    return value[0] == '/' ? 0 : mms_opt_invalid(err, opt, value, "not absolute");
}

/* A COLOR hook stores: the engine knows no spelling of its own. */
static int colour_word(const struct mms_option *opt, const char *value, void *field,
                       struct mms_err *err)
{
    if (!strcmp(value, "red"))
        return *(uint32_t *)field = 0xff0000, 0;
    if (!strcmp(value, "0a0b0c"))
        return *(uint32_t *)field = 0x0a0b0c, 0;
    return mms_opt_invalid(err, opt, value, "expected red");
}

/* What the apply hooks saw: a stand-in for a running pipeline. */
struct probe {
    int calls;
    int count;
    char path[64];
};

/* Refuses 7, as a target that cannot take a value would. */
static int apply_count(const struct mms_option *opt, const void *obj, void *target,
                       struct mms_err *err)
{
    struct probe *pr = target;
    const struct thing *t = obj;
    pr->calls++;
    if (t->count == 7)
        return mms_err_set(err, -EBUSY, "%s: 7 is busy", opt->name);
    pr->count = t->count;
    return 0;
}

static int apply_path(const struct mms_option *opt, const void *obj, void *target,
                      struct mms_err *err)
{
    struct probe *pr = target;
    const struct thing *t = obj;
    (void)opt, (void)err;
    pr->calls++;
    snprintf(pr->path, sizeof(pr->path), "%s", t->path ? t->path : "");
    return 0;
}

static const char *const kinds[] = {"low", "mid", "high", NULL};
static const char *const formats[] = {"mp4", "mkv", NULL};

#define OFF(f) offsetof(struct thing, f)
static const struct mms_option table[] = {
    {.name = "path_name", .type = MMS_OPT_STRING, .offset = OFF(path), .def = "/tmp",
     .parse = absolute, .runtime = 1, .apply = apply_path, .arg = "DIR", .help = "a directory"},
    {.name = "tag", .type = MMS_OPT_STRINGS, .offset = OFF(tags), .count_offset = OFF(ntags),
     .max_count = 3, .arg = "T", .help = "a tag (repeatable)"},
    {.name = "on", .type = MMS_OPT_BOOL, .offset = OFF(on), .def = "no", .help = "switch"},
    {.name = "count", .type = MMS_OPT_INT, .offset = OFF(count), .def = "5", .min = -3, .max = 10,
     .runtime = 1, .apply = apply_count, .arg = "N", .help = "a count"},
    {.name = "level", .type = MMS_OPT_FLOAT, .offset = OFF(level), .def = "0.5", .max = 1,
     .arg = "L", .help = "a level"},
    {.name = "kind", .type = MMS_OPT_ENUM, .offset = OFF(kind), .def = "mid", .min = 10,
     .names = kinds, .arg = "K", .help = "a kind"},
    {.name = "rgb", .type = MMS_OPT_COLOR, .offset = OFF(rgb), .def = "red", .parse = colour_word,
     .arg = "C", .help = "a colour"},
    {.name = "hw", .type = MMS_OPT_SIZE, .offset = OFF(hw), .def = "0x0", .arg = "HxW",
     .help = "a size"},
    {.name = "format", .type = MMS_OPT_STRING, .offset = OFF(format), .names = formats,
     .arg = "F", .help = "a container"},
    {.name = NULL},
};

static void fmt(const struct thing *t, const char *name, char *buf, size_t len)
{
    const struct mms_option *opt = mms_opt_find(table, name);
    CHECK_MSG(opt != NULL, "%s", name);
    if (opt)
        mms_opt_format(opt, t, buf, len);
}

static int fmt_is(const struct thing *t, const char *name, const char *want)
{
    char buf[256];
    fmt(t, name, buf, sizeof(buf));
    if (strcmp(buf, want))
        fprintf(stderr, "  %s formats as '%s', want '%s'\n", name, buf, want);
    return !strcmp(buf, want);
}

static void defaults_fill_the_table_only(void)
{
    struct thing t = {.untouched = 42};
    CHECK(mms_opt_defaults(table, &t) == 0);
    CHECK(!strcmp(t.path, "/tmp") && t.ntags == 0 && !t.on && t.count == 5);
    CHECK(t.level == 0.5f && t.kind == 11 && t.rgb == 0xff0000 && !t.hw[0] && !t.hw[1]);
    CHECK(!t.format && t.untouched == 42);
    mms_opt_free(table, &t);
}

static void every_type_sets_and_formats(void)
{
    struct thing t = {0};
    struct mms_err err;
    mms_opt_defaults(table, &t);
    static const char *const set[][3] = {
        /* name, value, formatted */
        {"path_name", "/var/x", "/var/x"}, {"on", "yes", "yes"},  {"on", "0", "no"},
        {"on", "true", "yes"},             {"on", "off", "no"},   {"count", "-3", "-3"},
        {"count", "10", "10"},             {"count", "4.0", "4"}, {"level", "1", "1"},
        {"level", "0.25", "0.25"},         {"kind", "high", "high"},
        {"kind", "low", "low"},            {"rgb", "0a0b0c", "0a0b0c"},
        {"hw", "288x512", "288x512"},      {"hw", "0x0", "0x0"},  {"format", "mkv", "mkv"},
    };
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        CHECK_MSG(mms_opt_set(table, &t, set[i][0], set[i][1], &err) == 0, "%s=%s: %s",
                  set[i][0], set[i][1], err.msg);
        CHECK_MSG(fmt_is(&t, set[i][0], set[i][2]), "%s=%s", set[i][0], set[i][1]);
    }
    CHECK(t.kind == 10 && t.rgb == 0x0a0b0c && t.count == 4 && t.hw[0] == 0);
    CHECK(mms_opt_set(table, &t, "tag", "a", &err) == 0);
    CHECK(mms_opt_set(table, &t, "tag", "b c", &err) == 0);
    CHECK(t.ntags == 2 && fmt_is(&t, "tag", "a,b c"));
    mms_opt_free(table, &t);
}

static void dash_and_underscore_are_one(void)
{
    CHECK(mms_opt_name_eq("a-b_c", "a_b-c") && mms_opt_name_eq("", ""));
    CHECK(!mms_opt_name_eq("ab", "abc") && !mms_opt_name_eq("abc", "ab"));
    CHECK(!mms_opt_name_eq("a-b", "a.b") && !mms_opt_name_eq("a__b", "a_b"));
    CHECK(!mms_opt_name_eq("Path-Name", "path_name"));
    CHECK(mms_opt_find(table, "path-name") == &table[0]);
    CHECK(mms_opt_find(table, "path_name") == &table[0]);
    CHECK(!mms_opt_find(table, "path") && !mms_opt_find(table, "path_name_"));
    struct thing t = {0};
    struct mms_err err;
    CHECK(mms_opt_set(table, &t, "path-name", "/a", &err) == 0 && !strcmp(t.path, "/a"));
    mms_opt_free(table, &t);
    /* Both real tables: '-' and '_' never tell two options apart. */
    const struct mms_option *tables[] = {mms_pipeline_options, mmsd_option_table};
    for (int k = 0; k < 2; k++)
        for (const struct mms_option *a = tables[k]; a->name; a++)
            CHECK_MSG(mms_opt_find(tables[k], a->name) == a, "%s", a->name);
    CHECK(mms_option_find("record_dir") == mms_option_find("record-dir"));
    CHECK(mmsd_option_find("token-file") == mmsd_option_find("token_file"));
}

/* Each refusal: its code, its exact message, and the struct unchanged. */
static void refusals(void)
{
    static const struct {
        const char *name, *value;
        int rc;
        const char *msg;
    } bad[] = {
        {"nope", "1", -ENOENT, "unknown option 'nope'"},
        {"count", "11", -EINVAL, "count=\"11\": out of range -3..10"},
        {"count", "-4", -EINVAL, "count=\"-4\": out of range -3..10"},
        {"count", "2.5", -EINVAL, "count=\"2.5\": not an integer"},
        {"count", "four", -EINVAL, "count=\"four\": not a number"},
        {"count", "5x", -EINVAL, "count=\"5x\": not a number"},
        {"count", "nan", -EINVAL, "count=\"nan\": not a number"},
        {"count", "1e999", -EINVAL, "count=\"1e999\": not a number"},
        {"count", "0x5", -EINVAL, "count=\"0x5\": not a number"},
        {"count", " 5", -EINVAL, "count=\" 5\": not a number"},
        {"count", "", -EINVAL, "count=\"\": empty"},
        {"level", "1.01", -EINVAL, "level=\"1.01\": out of range 0..1"},
        {"level", "inf", -EINVAL, "level=\"inf\": not a number"},
        {"on", "maybe", -EINVAL, "on=\"maybe\": expected yes or no"},
        {"on", "YES", -EINVAL, "on=\"YES\": expected yes or no"},
        {"kind", "top", -EINVAL, "kind=\"top\": expected low, mid or high"},
        {"kind", "Mid", -EINVAL, "kind=\"Mid\": expected low, mid or high"},
        {"format", "avi", -EINVAL, "format=\"avi\": expected mp4 or mkv"},
        {"rgb", "blue", -EINVAL, "rgb=\"blue\": expected red"},
        {"hw", "288", -EINVAL, "hw=\"288\": expected HxW"},
        {"hw", "0x5", -EINVAL, "hw=\"0x5\": expected HxW"},
        {"path-name", "rel", -EINVAL, "path_name=\"rel\": not absolute"},
    };
    struct thing t = {0};
    mms_opt_defaults(table, &t);
    mms_opt_set(table, &t, "hw", "2x3", NULL);
    struct thing before;
    memcpy(&before, &t, sizeof(t));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mms_err err = {{0}};
        int rc = mms_opt_set(table, &t, bad[i].name, bad[i].value, &err);
        CHECK_MSG(rc == bad[i].rc, "%s=%s: %d", bad[i].name, bad[i].value, rc);
        CHECK_MSG(!strcmp(err.msg, bad[i].msg), "got '%s', want '%s'", err.msg, bad[i].msg);
        CHECK_MSG(!memcmp(&t, &before, sizeof(t)), "%s=%s changed the struct", bad[i].name,
                  bad[i].value);
        CHECK(mms_opt_set(table, &t, bad[i].name, bad[i].value, NULL) == bad[i].rc);
    }
    /* Empty is refused as such, whatever the type, before any hook. */
    hook_calls = 0;
    for (const struct mms_option *opt = table; opt->name; opt++) {
        struct mms_err err;
        char want[128];
        snprintf(want, sizeof(want), "%s=\"\": empty", opt->name);
        CHECK_MSG(mms_opt_set(table, &t, opt->name, "", &err) == -EINVAL, "%s", opt->name);
        CHECK_MSG(!strcmp(err.msg, want), "got '%s'", err.msg);
    }
    CHECK(hook_calls == 0 && !memcmp(&t, &before, sizeof(t)));
    mms_opt_free(table, &t);
}

static void repeatable_strings_have_a_limit(void)
{
    struct thing t = {0};
    struct mms_err err;
    for (int i = 0; i < 3; i++)
        CHECK(mms_opt_set(table, &t, "tag", "x", &err) == 0);
    CHECK(mms_opt_set(table, &t, "tag", "y", &err) == -E2BIG);
    CHECK(!strcmp(err.msg, "tag: at most 3") && t.ntags == 3);
    CHECK(mms_opt_set(table, &t, "tag", "", &err) == -E2BIG);
    CHECK(fmt_is(&t, "tag", "x,x,x"));
    mms_opt_free(table, &t);
    /* Freed, it takes three again. */
    for (int i = 0; i < 3; i++)
        CHECK(mms_opt_set(table, &t, "tag", "z", &err) == 0);
    mms_opt_free(table, &t);
}

static void free_empties_and_repeats(void)
{
    struct thing t = {.untouched = 7};
    mms_opt_defaults(table, &t);
    mms_opt_set(table, &t, "tag", "a", NULL);
    mms_opt_set(table, &t, "format", "mp4", NULL);
    mms_opt_free(table, &t);
    CHECK(!t.path && !t.format && t.ntags == 0 && !t.tags[0] && t.untouched == 7);
    mms_opt_free(table, &t); /* twice is harmless */
    CHECK(fmt_is(&t, "path_name", "") && fmt_is(&t, "tag", "") && fmt_is(&t, "format", ""));
}

static void format_truncates_and_flags_strays(void)
{
    struct thing t = {0};
    char buf[4];
    mms_opt_defaults(table, &t);
    mms_opt_set(table, &t, "path_name", "/abcdef", NULL);
    fmt(&t, "path_name", buf, sizeof(buf));
    CHECK(!strcmp(buf, "/ab"));
    fmt(&t, "path_name", buf, 0); /* writes nothing */
    t.kind = 13;
    CHECK(fmt_is(&t, "kind", "?"));
    t.kind = 9;
    CHECK(fmt_is(&t, "kind", "?"));
    mms_opt_free(table, &t);
}

static void help_lists_every_option(void)
{
    char path[512], text[4096];
    snprintf(path, sizeof(path), "%s/help.txt", mms_test_tmpdir());
    FILE *f = fopen(path, "w+");
    CHECK(f != NULL);
    if (!f)
        return;
    mms_opt_help(table, f, "--");
    rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK(strstr(text, "  --count N                  a count [5] (changeable while running)\n"));
    CHECK(strstr(text, "  --on                       switch\n")); /* a BOOL has no [default] */
    CHECK(strstr(text, "  --tag T                    a tag (repeatable)\n"));
    CHECK(strstr(text, "  --hw HxW                   a size [0x0]\n"));
}

/* A value for every option of both real tables, other than its default. */
static const char *sample(const char *name)
{
    static const char *const s[][2] = {
        {"input", "rtsp://cam/1"},   {"input-option", "k=v"}, {"output", "a.mp4"},
        {"window", "yes"},           {"model", "/m.st"},      {"precision", "int8"},
        {"threads", "3"},            {"size", "64x128"},      {"style", "mask"},
        {"alpha", "0.25"},           {"color", "#abcdef"},    {"every", "3"}, {"smooth", "0.5"},
        {"tta", "flip"},
        {"mode", "offline"},         {"meta", "/m.jsonl"},    {"record-dir", "/r"},
        {"segment-seconds", "7"},    {"record-format", "mkv"}, {"listen", "[::1]:9"},
        {"log_level", "debug"},      {"token_file", "/t"},    {"allowed_hosts", "or1.lan"},
        {"font", "/f.ttf"},          {"encoder-preset", "faster"}, {"state_dir", "/s"},
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        if (!strcmp(s[i][0], name))
            return s[i][1];
    return NULL;
}

/* Format, then set what it printed on a fresh struct: the same value. */
static void comes_back(const struct mms_option *tab, const struct mms_option *opt,
                       const void *src, size_t size)
{
    char va[512], vb[512];
    struct mms_err err = {{0}};
    mms_opt_format(opt, src, va, sizeof(va));
    if (!va[0])
        return; /* unset: nothing to carry */
    /* From nothing, as a repeatable option appends. */
    void *dst = calloc(1, size);
    CHECK(dst != NULL);
    if (!dst)
        return;
    CHECK_MSG(mms_opt_set(tab, dst, opt->name, va, &err) == 0, "%s", err.msg);
    mms_opt_format(opt, dst, vb, sizeof(vb));
    CHECK_MSG(!strcmp(va, vb), "%s: '%s' came back as '%s'", opt->name, va, vb);
    mms_opt_free(tab, dst);
    free(dst);
}

static void round_trip(const struct mms_option *tab, size_t size, const char *which)
{
    void *defaults = calloc(1, size), *sampled = calloc(1, size);
    struct mms_err err = {{0}};
    CHECK(defaults && sampled && mms_opt_defaults(tab, defaults) == 0);
    for (const struct mms_option *opt = tab; defaults && sampled && opt->name; opt++) {
        const char *v = sample(opt->name);
        CHECK_MSG(v != NULL, "%s: no sample value for '%s'", which, opt->name);
        comes_back(tab, opt, defaults, size);
        if (!v)
            continue;
        CHECK_MSG(mms_opt_set(tab, sampled, opt->name, v, &err) == 0, "%s", err.msg);
        comes_back(tab, opt, sampled, size);
    }
    if (defaults)
        mms_opt_free(tab, defaults);
    if (sampled)
        mms_opt_free(tab, sampled);
    free(defaults);
    free(sampled);
}

static void real_tables_round_trip(void)
{
    round_trip(mms_pipeline_options, sizeof(struct mms_pipeline_opts), "pipeline");
    round_trip(mmsd_option_table, sizeof(struct mmsd_options), "mmsd");
}

/* The real tables keep their wording: tests and scripts grep for it. */
static void real_tables_messages(void)
{
    static const char *const pipeline[][3] = {
        {"alpha", "2", "alpha=\"2\": out of range 0..1"},
        {"style", "glow", "style=\"glow\": expected fill, outline, mask or off"},
        {"mode", "fast", "mode=\"fast\": expected auto, live or offline"},
        {"color", "green", "color=\"green\": expected RRGGBB"},
        {"size", "288", "size=\"288\": expected HxW"},
        {"record_format", "avi", "record-format=\"avi\": expected mp4 or mkv"},
        {"encoder_preset", "slow", "encoder-preset=\"slow\": expected ultrafast, superfast, "
                                   "veryfast, faster, fast or medium"},
        {"window", "maybe", "window=\"maybe\": expected yes or no"},
    };
    static const char *const mmsd[][3] = {
        {"log-level", "verbose",
         "log_level=\"verbose\": expected err, warning, notice, info or debug"},
        {"listen", "x",
         "listen=\"x\": expected IPv4:PORT or [IPv6]:PORT, numeric, port 0..65535 (0: any free "
         "port)"},
        {"threads", "257", "threads=\"257\": out of range 0..256"},
    };
    struct mms_pipeline_opts po;
    struct mmsd_options d;
    struct mms_err err;
    mms_options_defaults(&po);
    mmsd_options_defaults(&d);
    for (size_t i = 0; i < sizeof(pipeline) / sizeof(pipeline[0]); i++) {
        CHECK(mms_option_set(&po, pipeline[i][0], pipeline[i][1], &err) == -EINVAL);
        CHECK_MSG(!strcmp(err.msg, pipeline[i][2]), "got '%s'", err.msg);
    }
    for (size_t i = 0; i < sizeof(mmsd) / sizeof(mmsd[0]); i++) {
        CHECK(mmsd_option_set(&d, mmsd[i][0], mmsd[i][1], &err) == -EINVAL);
        CHECK_MSG(!strcmp(err.msg, mmsd[i][2]), "got '%s'", err.msg);
    }
    /* The style names are overlay's, and log levels keep their numbers. */
    char buf[32];
    for (int k = 0; k < MMS_STYLE_COUNT; k++) {
        po.style = k;
        mms_option_format(&po, mms_option_find("style"), buf, sizeof(buf));
        CHECK_MSG(!strcmp(buf, mms_style_name((enum mms_style_kind)k)), "%d: %s", k, buf);
    }
    CHECK(mmsd_option_set(&d, "log_level", "err", &err) == 0 && d.log_level == MMSD_LOG_ERR);
    CHECK(mmsd_option_set(&d, "log_level", "debug", &err) == 0 && d.log_level == MMSD_LOG_DEBUG);
    mms_options_free(&po);
    mmsd_options_free(&d);
}

/* ---- copy and equal ---- */

/* Every option set away from its default, strings and repeats included. */
static void filled(struct thing *t)
{
    memset(t, 0, sizeof(*t));
    mms_opt_defaults(table, t);
    static const char *const set[][2] = {
        {"path_name", "/srv"}, {"tag", "a"}, {"tag", "b"}, {"on", "yes"},  {"count", "-2"},
        {"level", "0.75"},     {"kind", "high"},           {"rgb", "0a0b0c"}, {"hw", "2x3"},
        {"format", "mkv"},
    };
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        CHECK_MSG(mms_opt_set(table, t, set[i][0], set[i][1], NULL) == 0, "%s", set[i][0]);
}

static void copy_duplicates_strings(void)
{
    struct thing src, dst = {.untouched = 9};
    filled(&src);
    CHECK(mms_opt_copy(table, &dst, &src) == 0);
    CHECK(mms_opt_equal(table, &dst, &src));
    CHECK(dst.path != src.path && dst.format != src.format);
    CHECK(dst.ntags == 2 && dst.tags[0] != src.tags[0] && dst.tags[1] != src.tags[1]);
    CHECK(dst.untouched == 9);
    /* Each frees alone: under ASan a shared string is a double free. */
    mms_opt_free(table, &src);
    CHECK(!strcmp(dst.path, "/srv") && !strcmp(dst.tags[1], "b") && !strcmp(dst.format, "mkv"));
    mms_opt_free(table, &dst);
}

/* dst's own strings go (LeakSanitizer sees any that stay), unset stays unset. */
static void copy_replaces_what_dst_held(void)
{
    struct thing src = {0}, dst;
    filled(&dst);
    mms_opt_defaults(table, &src); /* path "/tmp", no tags, no format */
    CHECK(mms_opt_copy(table, &dst, &src) == 0);
    CHECK(!strcmp(dst.path, "/tmp") && dst.ntags == 0 && !dst.tags[0] && dst.format == NULL);
    CHECK(dst.count == 5 && !dst.on && dst.hw[0] == 0);
    CHECK(mms_opt_equal(table, &dst, &src));
    mms_opt_free(table, &src);
    mms_opt_free(table, &dst);
}

static void copy_one_touches_one_option(void)
{
    struct thing src, dst = {0};
    filled(&src);
    mms_opt_defaults(table, &dst);
    CHECK(mms_opt_copy_one(mms_opt_find(table, "tag"), &dst, &src) == 0);
    CHECK(dst.ntags == 2 && !strcmp(dst.tags[0], "a") && dst.count == 5);
    CHECK(!mms_opt_equal(table, &dst, &src));
    mms_opt_free(table, &src);
    mms_opt_free(table, &dst);
}

/* Per option: equal to a copy, unequal once that option alone moves. */
static void equal_tells_each_type_apart(void)
{
    static const char *const other[][2] = {
        {"path_name", "/srx"}, {"on", "no"},   {"count", "-1"}, {"level", "0.5"},
        {"kind", "low"},       {"rgb", "red"}, {"hw", "2x4"},   {"format", "mp4"},
    };
    struct thing a, b = {0};
    filled(&a);
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        const struct mms_option *opt = mms_opt_find(table, other[i][0]);
        CHECK(mms_opt_copy(table, &b, &a) == 0);
        CHECK_MSG(mms_opt_equal_one(opt, &a, &b), "%s", opt->name);
        CHECK(mms_opt_set(table, &b, opt->name, other[i][1], NULL) == 0);
        CHECK_MSG(!mms_opt_equal_one(opt, &a, &b) && !mms_opt_equal_one(opt, &b, &a), "%s",
                  opt->name);
        CHECK_MSG(!mms_opt_equal(table, &a, &b), "%s", opt->name);
    }
    /* A size differs in either side. */
    CHECK(mms_opt_copy(table, &b, &a) == 0 && mms_opt_set(table, &b, "hw", "3x3", NULL) == 0);
    CHECK(!mms_opt_equal_one(mms_opt_find(table, "hw"), &a, &b));
    mms_opt_free(table, &a);
    mms_opt_free(table, &b);
}

static void equal_compares_repeats_in_order(void)
{
    const struct mms_option *tag = mms_opt_find(table, "tag");
    struct thing a = {0}, b = {0};
    CHECK(mms_opt_equal_one(tag, &a, &b)); /* both empty */
    mms_opt_set(table, &a, "tag", "x", NULL);
    CHECK(!mms_opt_equal_one(tag, &a, &b)); /* one more */
    mms_opt_set(table, &b, "tag", "y", NULL);
    CHECK(!mms_opt_equal_one(tag, &a, &b)); /* as many, another word */
    mms_opt_set(table, &a, "tag", "y", NULL);
    mms_opt_free(table, &b);
    mms_opt_set(table, &b, "tag", "y", NULL);
    mms_opt_set(table, &b, "tag", "x", NULL);
    CHECK(!mms_opt_equal_one(tag, &a, &b)); /* the same words, another order */
    mms_opt_free(table, &b);
    mms_opt_set(table, &b, "tag", "x", NULL);
    mms_opt_set(table, &b, "tag", "y", NULL);
    CHECK(mms_opt_equal_one(tag, &a, &b) && a.tags[0] != b.tags[0]); /* by content */
    mms_opt_free(table, &a);
    mms_opt_free(table, &b);
}

static void equal_tells_unset_from_set(void)
{
    const struct mms_option *path = mms_opt_find(table, "path_name");
    const struct mms_option *format = mms_opt_find(table, "format");
    struct thing a = {0}, b = {0};
    CHECK(mms_opt_equal_one(path, &a, &b) && mms_opt_equal_one(format, &a, &b));
    mms_opt_set(table, &b, "format", "mp4", NULL);
    CHECK(!mms_opt_equal_one(format, &a, &b) && !mms_opt_equal_one(format, &b, &a));
    mms_opt_set(table, &a, "format", "mp4", NULL);
    CHECK(mms_opt_equal_one(format, &a, &b));
    mms_opt_free(table, &a);
    mms_opt_free(table, &b);
}

/* One setting in two tables: the daemon's model handed to a pipeline. */
static void copy_as_crosses_tables_of_one_type(void)
{
    struct mmsd_options d;
    struct mms_pipeline_opts po;
    mmsd_options_defaults(&d);
    mms_options_defaults(&po);
    mmsd_option_set(&d, "model", "/m.st", NULL);
    CHECK(mms_opt_copy_as(mms_option_find("model"), &po, mmsd_option_find("model"), &d) == 0);
    CHECK(po.model && po.model != d.model && !strcmp(po.model, "/m.st"));
    /* threads is an INT in both; listen (STRING) is no INT. */
    CHECK(mms_opt_copy_as(mms_option_find("threads"), &po, mmsd_option_find("listen"), &d) ==
          -EINVAL);
    CHECK(po.threads == 0);
    mmsd_options_free(&d);
    CHECK(!strcmp(po.model, "/m.st"));
    mms_options_free(&po);
}

static void copy_as_refuses_more_repeats_than_fit(void)
{
    struct mms_pipeline_opts po;
    struct thing t = {0};
    mms_options_defaults(&po);
    for (int i = 0; i < MMS_MAX_OUTPUTS; i++)
        mms_option_set(&po, "output", "null", NULL);
    CHECK(mms_opt_copy_as(mms_opt_find(table, "tag"), &t, mms_option_find("output"), &po) ==
          -E2BIG);
    CHECK(t.ntags == 0);
    mms_options_free(&po);
}

/* ---- runtime changes ---- */

static void change_stores_and_applies_once(void)
{
    struct thing t = {0};
    struct probe pr = {0};
    struct mms_err err = {{0}};
    mms_opt_defaults(table, &t);
    CHECK(mms_opt_change(table, &t, "count", "3", &pr, &err) == 0);
    CHECK(pr.calls == 1 && pr.count == 3 && t.count == 3);
    /* The same value again is applied again: the target may have moved. */
    CHECK(mms_opt_change(table, &t, "count", "3", &pr, &err) == 0 && pr.calls == 2);
    CHECK(mms_opt_change(table, &t, "path-name", "/new", &pr, &err) == 0);
    CHECK(pr.calls == 3 && !strcmp(pr.path, "/new") && !strcmp(t.path, "/new"));
    mms_opt_free(table, &t);
}

static void change_refused_applies_nothing(void)
{
    static const struct {
        const char *name, *value;
        int rc;
        const char *msg;
    } bad[] = {
        {"nope", "1", -ENOENT, "unknown option 'nope'"},
        {"on", "yes", -EPERM, "on cannot change while running"},
        {"count", "11", -EINVAL, "count=\"11\": out of range -3..10"},
        {"count", "", -EINVAL, "count=\"\": empty"},
        {"path_name", "rel", -EINVAL, "path_name=\"rel\": not absolute"},
    };
    struct thing t = {0}, before = {0};
    struct probe pr = {0};
    mms_opt_defaults(table, &t);
    memcpy(&before, &t, sizeof(t));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mms_err err = {{0}};
        CHECK_MSG(mms_opt_change(table, &t, bad[i].name, bad[i].value, &pr, &err) == bad[i].rc,
                  "%s", bad[i].name);
        CHECK_MSG(!strcmp(err.msg, bad[i].msg), "got '%s'", err.msg);
    }
    CHECK(pr.calls == 0 && !memcmp(&t, &before, sizeof(t)));
    mms_opt_free(table, &t);
}

static void change_undone_when_the_hook_refuses(void)
{
    struct thing t = {0};
    struct probe pr = {0};
    struct mms_err err = {{0}};
    mms_opt_defaults(table, &t);
    CHECK(mms_opt_change(table, &t, "count", "7", &pr, &err) == -EBUSY);
    CHECK(!strcmp(err.msg, "count: 7 is busy") && pr.calls == 1 && t.count == 5);
    mms_opt_free(table, &t);
}

static void update_applies_only_what_differs(void)
{
    struct thing cur = {0}, want = {0};
    struct probe pr = {0};
    struct mms_err err = {{0}};
    mms_opt_defaults(table, &cur);
    mms_opt_defaults(table, &want);
    CHECK(mms_opt_update(table, &cur, &want, &pr, &err) == 0 && pr.calls == 0);
    mms_opt_set(table, &want, "count", "2", NULL);
    mms_opt_set(table, &want, "level", "0.1", NULL); /* not runtime: stays */
    CHECK(mms_opt_update(table, &cur, &want, &pr, &err) == 0);
    CHECK(pr.calls == 1 && pr.count == 2 && cur.count == 2 && cur.level == 0.5f);
    CHECK(cur.path != want.path && !strcmp(cur.path, "/tmp"));
    mms_opt_set(table, &want, "count", "7", NULL);
    CHECK(mms_opt_update(table, &cur, &want, &pr, &err) == -EBUSY && cur.count == 2);
    mms_opt_free(table, &cur);
    mms_opt_free(table, &want);
}

static void apply_puts_every_runtime_option_in_force(void)
{
    struct thing t = {0};
    struct probe pr = {0};
    mms_opt_defaults(table, &t);
    CHECK(mms_opt_apply(table, &t, &pr, NULL) == 0);
    CHECK(pr.calls == 2 && pr.count == 5 && !strcmp(pr.path, "/tmp"));
    mms_opt_free(table, &t);
}

/* A running pipeline changes through these hooks alone: every runtime
 * option must have one, and each must reach its own atomic. */
static void pipeline_runtime_options_apply(void)
{
    static const char *const set[][2] = {
        {"style", "mask"}, {"alpha", "0.25"}, {"color", "#abcdef"}, {"every", "3"},
        {"smooth", "0.5"},
    };
    struct mms_pipeline_opts o;
    struct mms_pipeline_live live = {0};
    struct mms_err err = {{0}};
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++)
        CHECK_MSG(!opt->runtime == !opt->apply, "%s", opt->name);
    mms_options_defaults(&o);
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        CHECK_MSG(mms_opt_change(mms_pipeline_options, &o, set[i][0], set[i][1], &live, &err) ==
                      0, "%s", err.msg);
    CHECK(atomic_load(&live.style) == MMS_STYLE_MASK && atomic_load(&live.alpha) == 0.25f);
    CHECK(atomic_load(&live.color) == 0xabcdef && atomic_load(&live.every) == 3);
    CHECK(atomic_load(&live.smooth) == 0.5f);
    CHECK(mms_opt_change(mms_pipeline_options, &o, "input", "x", &live, &err) == -EPERM);
    mms_options_free(&o);
}

MMS_TESTS(T(defaults_fill_the_table_only), T(every_type_sets_and_formats),
          T(dash_and_underscore_are_one), T(refusals), T(repeatable_strings_have_a_limit),
          T(free_empties_and_repeats), T(format_truncates_and_flags_strays),
          T(help_lists_every_option), T(real_tables_round_trip), T(real_tables_messages),
          T(copy_duplicates_strings), T(copy_replaces_what_dst_held),
          T(copy_one_touches_one_option), T(equal_tells_each_type_apart),
          T(equal_compares_repeats_in_order), T(equal_tells_unset_from_set),
          T(copy_as_crosses_tables_of_one_type), T(copy_as_refuses_more_repeats_than_fit),
          T(change_stores_and_applies_once), T(change_refused_applies_nothing),
          T(change_undone_when_the_hook_refuses), T(update_applies_only_what_differs),
          T(apply_puts_every_runtime_option_in_force), T(pipeline_runtime_options_apply))
