#include "core/card.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const generic_keys[] = {
    "mms.arch", "mms.input", "mms.mean", "mms.std", "mms.threshold", NULL,
};

static int in_list(const char *const *list, const char *key)
{
    for (int i = 0; list && list[i]; i++)
        if (!strcmp(list[i], key))
            return 1;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Plain decimal digits only: strtol alone would take "+288", " 288" and
 * "0x120", none of which a card writer means. */
static int parse_dim(const char *s, const char **end, int *v)
{
    long x = 0;
    const char *p = s;
    if (!is_digit(*p))
        return -EINVAL;
    for (; is_digit(*p); p++) {
        x = x * 10 + (*p - '0');
        if (x > 8192)
            return -EINVAL;
    }
    if (x < 1)
        return -EINVAL;
    *v = (int)x;
    *end = p;
    return 0;
}

int mms_card_parse_size(const char *s, int *h, int *w)
{
    const char *p;
    int hh, ww;
    if (parse_dim(s, &p, &hh) < 0 || *p != 'x' || parse_dim(p + 1, &p, &ww) < 0 || *p)
        return -EINVAL;
    *h = hh;
    *w = ww;
    return 0;
}

/* "a,b,c" -> three finite floats; spaces around the numbers are allowed
 * since hand-written cards have them after the commas. */
static int parse_float3(const char *s, float v[3])
{
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        float x = strtof(p, &end);
        if (errno || end == p || !isfinite(x))
            return -EINVAL;
        while (*end == ' ')
            end++;
        if (*end != (i < 2 ? ',' : '\0'))
            return -EINVAL;
        v[i] = x;
        p = end + 1;
    }
    return 0;
}

static int require(const struct mms_model *m, const char *key, const char **val,
                   struct mms_err *err)
{
    *val = mms_model_meta(m, key);
    if (!*val)
        return mms_err_set(err, -EINVAL, "model card: missing metadata key %s", key);
    return 0;
}

static int unknown_arch(const char *name, struct mms_err *err)
{
    char known[256] = "";
    size_t len = 0;
    const struct mms_arch *const *all = mms_arch_all();
    for (int i = 0; all[i] && len < sizeof(known); i++)
        len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s", i ? ", " : "",
                                all[i]->name);
    return mms_err_set(err, -EINVAL,
                       "metadata mms.arch=\"%.64s\": unknown architecture (known: %s)",
                       name, known);
}

int mms_card_parse(const struct mms_model *m, struct mms_card *card, struct mms_err *err)
{
    struct mms_card c = {0};
    const char *s;
    int ret;

    if ((ret = require(m, "mms.arch", &s, err)) < 0)
        return ret;
    c.arch = mms_arch_find(s);
    if (!c.arch)
        return unknown_arch(s, err);

    /* Before the values: a misspelt key explains a "missing" one better. */
    for (size_t i = 0; i < mms_model_meta_count(m); i++) {
        const char *key, *val;
        mms_model_meta_at(m, i, &key, &val);
        if (strncmp(key, "mms.", 4) || in_list(generic_keys, key) ||
            in_list(c.arch->keys, key))
            continue;
        return mms_err_set(err, -EINVAL,
                           "metadata %.64s: unknown key for architecture %s "
                           "(a typo would silently change the network)",
                           key, c.arch->name);
    }

    if ((ret = require(m, "mms.input", &s, err)) < 0)
        return ret;
    if (mms_card_parse_size(s, &c.in_h, &c.in_w) < 0)
        return mms_err_set(err, -EINVAL,
                           "metadata mms.input=\"%.64s\": expected HxW, each in 1..8192", s);
    if (c.in_h > MMS_CARD_MAX_SIDE || c.in_w > MMS_CARD_MAX_SIDE ||
        (long long)c.in_h * c.in_w > MMS_CARD_MAX_PIXELS)
        return mms_err_set(err, -EINVAL,
                           "metadata mms.input=\"%.64s\": larger than a model may ask for "
                           "(at most %d per side and %d pixels in all)",
                           s, MMS_CARD_MAX_SIDE, MMS_CARD_MAX_PIXELS);
    int k = c.arch->input_multiple > 0 ? c.arch->input_multiple : 1;
    if (c.in_h % k || c.in_w % k)
        return mms_err_set(err, -EINVAL,
                           "metadata mms.input=\"%.64s\": height and width must be "
                           "multiples of %d for %s", s, k, c.arch->name);

    if ((ret = require(m, "mms.mean", &s, err)) < 0)
        return ret;
    if (parse_float3(s, c.mean) < 0 || c.mean[0] < 0 || c.mean[0] > 1 || c.mean[1] < 0 ||
        c.mean[1] > 1 || c.mean[2] < 0 || c.mean[2] > 1)
        return mms_err_set(err, -EINVAL,
                           "metadata mms.mean=\"%.64s\": expected three comma-separated "
                           "numbers in 0..1", s);

    if ((ret = require(m, "mms.std", &s, err)) < 0)
        return ret;
    if (parse_float3(s, c.std) < 0 || !(c.std[0] > 0) || !(c.std[1] > 0) || !(c.std[2] > 0))
        return mms_err_set(err, -EINVAL,
                           "metadata mms.std=\"%.64s\": expected three comma-separated "
                           "numbers > 0", s);

    if ((ret = require(m, "mms.threshold", &s, err)) < 0)
        return ret;
    char *end;
    errno = 0;
    c.threshold = strtof(s, &end);
    if (errno || end == s || *end || !(c.threshold > 0) || !(c.threshold < 1))
        return mms_err_set(err, -EINVAL,
                           "metadata mms.threshold=\"%.64s\": expected a number with "
                           "0 < t < 1", s);

    *card = c;
    return 0;
}
