#include "core/arch/arch.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct mms_arch *const all[] = {
    &mms_arch_mms_rt,
    &mms_arch_mms_res2net101,
    &mms_arch_res2net_unet,
    NULL,
};

const struct mms_arch *const *mms_arch_all(void)
{
    return all;
}

const struct mms_arch *mms_arch_find(const char *name)
{
    for (int i = 0; all[i]; i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}

int mms_arch_int(struct mms_graph *g, const struct mms_model *m, const char *key,
                 int def, int lo, int hi)
{
    const char *s = mms_model_meta(m, key);
    if (!s)
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        mms_graph_fail(g, -EINVAL, "metadata %s=\"%s\": expected an integer in %d..%d",
                       key, s, lo, hi);
        return def;
    }
    return (int)v;
}

float mms_arch_float(struct mms_graph *g, const struct mms_model *m,
                     const char *key, float def, float lo, float hi)
{
    const char *s = mms_model_meta(m, key);
    if (!s)
        return def;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        mms_graph_fail(g, -EINVAL, "metadata %s=\"%s\": expected a number in %g..%g",
                       key, s, lo, hi);
        return def;
    }
    return v;
}

int mms_arch_ints(struct mms_graph *g, const struct mms_model *m, const char *key,
                  const int *def, int ndef, int *out, int max, int lo, int hi)
{
    const char *s = mms_model_meta(m, key);
    if (!s) {
        memcpy(out, def, sizeof(*def) * ndef);
        return ndef;
    }
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < lo || v > hi || n == max)
            goto bad;
        out[n++] = (int)v;
        if (!*end)
            return n;
        if (*end != ',')
            goto bad;
        p = end + 1;
    }
bad:
    mms_graph_fail(g, -EINVAL,
                   "metadata %s=\"%s\": expected up to %d comma-separated integers in %d..%d",
                   key, s, max, lo, hi);
    return -1;
}
