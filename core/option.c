#include "core/option.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/card.h"

#define FIELD(obj, opt, type) ((type *)((char *)(obj) + (opt)->offset))
#define CFIELD(obj, opt, type) ((const type *)((const char *)(obj) + (opt)->offset))
#define COUNT(obj, opt) ((int *)((char *)(obj) + (opt)->count_offset))
#define CCOUNT(obj, opt) ((const int *)((const char *)(obj) + (opt)->count_offset))
/* A string field of a const struct: the pointers are const, not the chars. */
#define CSTRS(obj, opt) ((char *const *)((const char *)(obj) + (opt)->offset))

static int sep(char c)
{
    return c == '-' ? '_' : c;
}

int mms_opt_name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (sep(*a) != sep(*b))
            return 0;
    return *a == *b;
}

const struct mms_option *mms_opt_find(const struct mms_option *table, const char *name)
{
    for (const struct mms_option *opt = table; opt->name; opt++)
        if (mms_opt_name_eq(opt->name, name))
            return opt;
    return NULL;
}

int mms_opt_invalid(struct mms_err *err, const struct mms_option *opt, const char *value,
                    const char *why)
{
    return mms_err_set(err, -EINVAL, "%s=\"%s\": %s", opt->name, value, why);
}

static int word_index(const char *const *names, const char *value)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(value, names[i]))
            return i;
    return -1;
}

/* "expected a, b or c", from the names themselves so it cannot go stale. */
static int not_a_word(struct mms_err *err, const struct mms_option *opt, const char *value)
{
    char why[256] = "expected ";
    for (int i = 0; opt->names[i]; i++) {
        size_t used = strlen(why);
        snprintf(why + used, sizeof(why) - used, "%s%s",
                 !i ? "" : opt->names[i + 1] ? ", " : " or ", opt->names[i]);
    }
    return mms_opt_invalid(err, opt, value, why);
}

static int parse_number(const struct mms_option *opt, const char *value, double *out,
                        struct mms_err *err)
{
    char *end;
    errno = 0;
    /* Decimal only: strtod also takes hex ("0x5" is 5), leading blanks and
     * "infinity", none of which a config or command line means. */
    int decimal = value[0] && strspn(value, "0123456789+-.eE") == strlen(value);
    double v = decimal ? strtod(value, &end) : 0;
    if (!decimal || errno || end == value || *end || !isfinite(v))
        return mms_opt_invalid(err, opt, value, "not a number");
    if (v < opt->min || v > opt->max) {
        char why[96];
        snprintf(why, sizeof(why), "out of range %g..%g", opt->min, opt->max);
        return mms_opt_invalid(err, opt, value, why);
    }
    if (opt->type == MMS_OPT_INT && v != floor(v))
        return mms_opt_invalid(err, opt, value, "not an integer");
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on", NULL};
    static const char *const no[] = {"0", "no", "false", "off", NULL};
    if (word_index(yes, s) >= 0)
        return *out = 1, 0;
    if (word_index(no, s) >= 0)
        return *out = 0, 0;
    return -EINVAL;
}

static int is_string(const struct mms_option *opt)
{
    return opt->type == MMS_OPT_STRING || opt->type == MMS_OPT_STRINGS;
}

/* The string types, once the value has passed every check. */
static int store_string(const struct mms_option *opt, void *obj, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return -ENOMEM;
    if (opt->type == MMS_OPT_STRINGS) {
        int *n = COUNT(obj, opt);
        FIELD(obj, opt, char *)[(*n)++] = s;
    } else {
        free(*FIELD(obj, opt, char *));
        *FIELD(obj, opt, char *) = s;
    }
    return 0;
}

static int set_one(const struct mms_option *opt, void *obj, const char *value,
                   struct mms_err *err)
{
    double num;
    int rc, i, h = 0, w = 0;
    if (opt->type == MMS_OPT_STRINGS && *COUNT(obj, opt) >= opt->max_count)
        return mms_err_set(err, -E2BIG, "%s: at most %d", opt->name, opt->max_count);
    if (!*value)
        return mms_opt_invalid(err, opt, value, "empty");
    if (opt->parse) {
        rc = opt->parse(opt, value, is_string(opt) ? NULL : FIELD(obj, opt, void), err);
        if (rc || !is_string(opt))
            return rc;
    }
    switch (opt->type) {
    case MMS_OPT_STRING:
    case MMS_OPT_STRINGS:
        if (opt->names && word_index(opt->names, value) < 0)
            return not_a_word(err, opt, value);
        return store_string(opt, obj, value);
    case MMS_OPT_BOOL:
        if (parse_bool(value, FIELD(obj, opt, int)))
            return mms_opt_invalid(err, opt, value, "expected yes or no");
        return 0;
    case MMS_OPT_INT:
        if ((rc = parse_number(opt, value, &num, err)))
            return rc;
        *FIELD(obj, opt, int) = (int)num;
        return 0;
    case MMS_OPT_FLOAT:
        if ((rc = parse_number(opt, value, &num, err)))
            return rc;
        *FIELD(obj, opt, float) = (float)num;
        return 0;
    case MMS_OPT_ENUM:
        if ((i = word_index(opt->names, value)) < 0)
            return not_a_word(err, opt, value);
        *FIELD(obj, opt, int) = (int)opt->min + i;
        return 0;
    case MMS_OPT_COLOR:
        /* Its spellings are the table's (parse), which returned above. */
        return mms_opt_invalid(err, opt, value, "expected RRGGBB");
    case MMS_OPT_SIZE:
        if (strcmp(value, "0x0") && mms_card_parse_size(value, &h, &w))
            return mms_opt_invalid(err, opt, value, "expected HxW");
        FIELD(obj, opt, int)[0] = h;
        FIELD(obj, opt, int)[1] = w;
        return 0;
    }
    return -EINVAL;
}

int mms_opt_set(const struct mms_option *table, void *obj, const char *name, const char *value,
                struct mms_err *err)
{
    const struct mms_option *opt = mms_opt_find(table, name);
    if (!opt)
        return mms_err_set(err, -ENOENT, "unknown option '%s'", name);
    return set_one(opt, obj, value, err);
}

void mms_opt_format(const struct mms_option *opt, const void *obj, char *buf, size_t len)
{
    const void *p = CFIELD(obj, opt, void);
    int v, n = 0;
    if (!len)
        return;
    buf[0] = '\0';
    switch (opt->type) {
    case MMS_OPT_STRING:
        snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "");
        break;
    case MMS_OPT_STRINGS:
        for (int i = 0; i < *CCOUNT(obj, opt); i++) {
            size_t used = strlen(buf);
            snprintf(buf + used, len - used, "%s%s", i ? "," : "", ((char *const *)p)[i]);
        }
        break;
    case MMS_OPT_BOOL:
        snprintf(buf, len, "%s", *(const int *)p ? "yes" : "no");
        break;
    case MMS_OPT_INT:
        snprintf(buf, len, "%d", *(const int *)p);
        break;
    case MMS_OPT_FLOAT:
        /* The shortest that parses back (as parse_number does) to the same
         * float: %g alone prints 0.8555555 as 0.855555, another value. */
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, len, "%.*g", prec, *(const float *)p);
            if ((float)strtod(buf, NULL) == *(const float *)p)
                break;
        }
        break;
    case MMS_OPT_ENUM:
        v = *(const int *)p - (int)opt->min;
        while (opt->names[n])
            n++;
        snprintf(buf, len, "%s", v >= 0 && v < n ? opt->names[v] : "?");
        break;
    case MMS_OPT_COLOR:
        snprintf(buf, len, "%06x", (unsigned)*(const uint32_t *)p);
        break;
    case MMS_OPT_SIZE:
        snprintf(buf, len, "%dx%d", ((const int *)p)[0], ((const int *)p)[1]);
        break;
    }
}

int mms_opt_defaults(const struct mms_option *table, void *obj)
{
    for (const struct mms_option *opt = table; opt->name; opt++) {
        if (!opt->def)
            continue;
        int rc = mms_opt_set(table, obj, opt->name, opt->def, NULL);
        if (rc) {
            mms_opt_free(table, obj);
            return rc;
        }
    }
    return 0;
}

static void free_one(const struct mms_option *opt, void *obj)
{
    if (opt->type == MMS_OPT_STRING) {
        free(*FIELD(obj, opt, char *));
        *FIELD(obj, opt, char *) = NULL;
    } else if (opt->type == MMS_OPT_STRINGS) {
        int *n = COUNT(obj, opt);
        for (int i = 0; i < *n; i++) {
            free(FIELD(obj, opt, char *)[i]);
            FIELD(obj, opt, char *)[i] = NULL;
        }
        *n = 0;
    }
}

void mms_opt_free(const struct mms_option *table, void *obj)
{
    for (const struct mms_option *opt = table; opt->name; opt++)
        free_one(opt, obj);
}

void mms_opt_help(const struct mms_option *table, FILE *f, const char *prefix)
{
    for (const struct mms_option *opt = table; opt->name; opt++) {
        char left[48];
        snprintf(left, sizeof(left), "%s%s%s%s", prefix, opt->name, opt->arg ? " " : "",
                 opt->arg ? opt->arg : "");
        fprintf(f, "  %-26s %s", left, opt->help);
        if (opt->def && opt->type != MMS_OPT_BOOL)
            fprintf(f, " [%s]", opt->def);
        fprintf(f, "%s\n", opt->runtime ? " (changeable while running)" : "");
    }
}

/* ------------------------------------------------------------ copy, equal */

/* The bytes of the field, which is all a value is but for the strings it
 * points to and a repeatable option's counter. */
static size_t field_size(const struct mms_option *opt)
{
    switch (opt->type) {
    case MMS_OPT_STRING:
        return sizeof(char *);
    case MMS_OPT_STRINGS:
        return (size_t)opt->max_count * sizeof(char *);
    case MMS_OPT_FLOAT:
        return sizeof(float);
    case MMS_OPT_COLOR:
        return sizeof(uint32_t);
    case MMS_OPT_SIZE:
        return 2 * sizeof(int);
    case MMS_OPT_BOOL:
    case MMS_OPT_INT:
    case MMS_OPT_ENUM:
        break;
    }
    return sizeof(int);
}

static int copy_string(char **dst, const char *src)
{
    char *s = NULL;
    if (src && !(s = strdup(src)))
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

/* All duplicated before dst is touched, so a failure leaves it whole. */
static int copy_strings(const struct mms_option *dopt, void *dst, const struct mms_option *sopt,
                        const void *src)
{
    int n = *CCOUNT(src, sopt), i = 0;
    char *const *from = CSTRS(src, sopt);
    char **dup;
    if (n > dopt->max_count)
        return -E2BIG;
    if (!(dup = calloc((size_t)n + 1, sizeof(*dup))))
        return -ENOMEM;
    for (; i < n; i++)
        if (!(dup[i] = strdup(from[i])))
            goto fail;
    free_one(dopt, dst);
    memcpy(FIELD(dst, dopt, char *), dup, (size_t)n * sizeof(*dup));
    *COUNT(dst, dopt) = n;
    free(dup);
    return 0;
fail:
    while (i--)
        free(dup[i]);
    free(dup);
    return -ENOMEM;
}

int mms_opt_copy_as(const struct mms_option *dopt, void *dst, const struct mms_option *sopt,
                    const void *src)
{
    if (dopt->type != sopt->type)
        return -EINVAL;
    if (dopt->type == MMS_OPT_STRING)
        return copy_string(FIELD(dst, dopt, char *), *CSTRS(src, sopt));
    if (dopt->type == MMS_OPT_STRINGS)
        return copy_strings(dopt, dst, sopt, src);
    memmove(FIELD(dst, dopt, void), CFIELD(src, sopt, void), field_size(dopt));
    return 0;
}

int mms_opt_copy_one(const struct mms_option *opt, void *dst, const void *src)
{
    return mms_opt_copy_as(opt, dst, opt, src);
}

int mms_opt_copy(const struct mms_option *table, void *dst, const void *src)
{
    for (const struct mms_option *opt = table; opt->name; opt++) {
        int rc = mms_opt_copy_one(opt, dst, src);
        if (rc)
            return rc;
    }
    return 0;
}

static int same_string(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

int mms_opt_equal_one(const struct mms_option *opt, const void *a, const void *b)
{
    const int *ia = CFIELD(a, opt, int), *ib = CFIELD(b, opt, int);
    switch (opt->type) {
    case MMS_OPT_STRING:
        return same_string(*CSTRS(a, opt), *CSTRS(b, opt));
    case MMS_OPT_STRINGS:
        if (*CCOUNT(a, opt) != *CCOUNT(b, opt))
            return 0;
        for (int i = 0; i < *CCOUNT(a, opt); i++)
            if (!same_string(CSTRS(a, opt)[i], CSTRS(b, opt)[i]))
                return 0;
        return 1;
    case MMS_OPT_FLOAT:
        return *CFIELD(a, opt, float) == *CFIELD(b, opt, float);
    case MMS_OPT_COLOR:
        return *CFIELD(a, opt, uint32_t) == *CFIELD(b, opt, uint32_t);
    case MMS_OPT_SIZE:
        return ia[0] == ib[0] && ia[1] == ib[1];
    case MMS_OPT_BOOL:
    case MMS_OPT_INT:
    case MMS_OPT_ENUM:
        break;
    }
    return *ia == *ib;
}

int mms_opt_equal(const struct mms_option *table, const void *a, const void *b)
{
    for (const struct mms_option *opt = table; opt->name; opt++)
        if (!mms_opt_equal_one(opt, a, b))
            return 0;
    return 1;
}

/* ------------------------------------------------------------ apply */

/* Room for one option at its offset, and nothing else of the struct, whose
 * size the engine does not know: a new value waits here until it is known
 * to be good and different. */
static void *scratch_new(const struct mms_option *opt)
{
    size_t end = opt->offset + field_size(opt);
    if (opt->type == MMS_OPT_STRINGS && opt->count_offset + sizeof(int) > end)
        end = opt->count_offset + sizeof(int);
    return calloc(1, end);
}

static void scratch_free(const struct mms_option *opt, void *scratch)
{
    if (scratch)
        free_one(opt, scratch);
    free(scratch);
}

/* Byte by byte: a value is its field's bytes (the strings go with their
 * pointers), so swapping needs neither a copy nor memory. */
static void swap_value(const struct mms_option *opt, void *a, void *b)
{
    unsigned char *x = FIELD(a, opt, unsigned char), *y = FIELD(b, opt, unsigned char);
    for (size_t i = 0; i < field_size(opt); i++) {
        unsigned char t = x[i];
        x[i] = y[i];
        y[i] = t;
    }
    if (opt->type == MMS_OPT_STRINGS) {
        int t = *COUNT(a, opt);
        *COUNT(a, opt) = *COUNT(b, opt);
        *COUNT(b, opt) = t;
    }
}

/* obj takes scratch's value and the hook is told; a refusing hook gets obj
 * its old value back. scratch ends up holding whichever value obj does not. */
static int replace(const struct mms_option *opt, void *obj, void *scratch, void *target,
                   struct mms_err *err)
{
    swap_value(opt, obj, scratch);
    int rc = opt->apply ? opt->apply(opt, obj, target, err) : 0;
    if (rc)
        swap_value(opt, obj, scratch);
    return rc;
}

int mms_opt_change(const struct mms_option *table, void *obj, const char *name,
                   const char *value, void *target, struct mms_err *err)
{
    const struct mms_option *opt = mms_opt_find(table, name);
    void *scratch;
    int rc;
    if (!opt)
        return mms_err_set(err, -ENOENT, "unknown option '%s'", name);
    if (!opt->runtime)
        return mms_err_set(err, -EPERM, "%s cannot change while running", opt->name);
    if (!(scratch = scratch_new(opt)))
        return mms_err_set(err, -ENOMEM, "out of memory");
    if (!(rc = set_one(opt, scratch, value, err)))
        rc = replace(opt, obj, scratch, target, err);
    scratch_free(opt, scratch);
    return rc;
}

int mms_opt_update(const struct mms_option *table, void *dst, const void *src, void *target,
                   struct mms_err *err)
{
    for (const struct mms_option *opt = table; opt->name; opt++) {
        if (!opt->runtime || mms_opt_equal_one(opt, dst, src))
            continue;
        void *scratch = scratch_new(opt);
        int rc = scratch ? mms_opt_copy_one(opt, scratch, src) : -ENOMEM;
        if (rc)
            mms_err_set(err, rc, "out of memory");
        else
            rc = replace(opt, dst, scratch, target, err);
        scratch_free(opt, scratch);
        if (rc)
            return rc;
    }
    return 0;
}

int mms_opt_apply(const struct mms_option *table, const void *obj, void *target,
                  struct mms_err *err)
{
    for (const struct mms_option *opt = table; opt->name; opt++) {
        int rc = opt->runtime && opt->apply ? opt->apply(opt, obj, target, err) : 0;
        if (rc)
            return rc;
    }
    return 0;
}
