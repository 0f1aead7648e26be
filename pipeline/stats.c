#include "pipeline/stats.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const double mms_stats_bounds[MMS_STATS_BUCKETS - 1] = {
    1, 2, 5, 10, 20, 40, 60, 100, 200, 500, 1000, 2000, 5000,
};

static const char *const names[MMS_STAGE_COUNT] = {
    "decode", "preprocess", "infer", "postprocess", "compose", "output", "total", "mask_age",
};

const char *mms_stage_name(enum mms_stage st)
{
    return names[st];
}

double mms_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void mms_stats_init(struct mms_stats *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
}

void mms_stats_destroy(struct mms_stats *s)
{
    pthread_mutex_destroy(&s->lock);
}

void mms_stats_add(struct mms_stats *s, enum mms_stage st, double ms)
{
    pthread_mutex_lock(&s->lock);
    struct mms_stage_stats *x = &s->stage[st];
    x->ring[x->count % MMS_STATS_RING] = (float)ms;
    x->count++;
    x->sum += ms;
    if (ms > x->max)
        x->max = ms;
    int b = 0;
    while (b < MMS_STATS_BUCKETS - 1 && ms > mms_stats_bounds[b])
        b++;
    x->buckets[b]++;
    pthread_mutex_unlock(&s->lock);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted samples. */
static double rank(const float *v, int n, double p)
{
    int i = (int)(p / 100.0 * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

void mms_stats_summary(struct mms_stats *s, enum mms_stage st, struct mms_stage_summary *out,
                       float *scratch)
{
    pthread_mutex_lock(&s->lock);
    const struct mms_stage_stats *x = &s->stage[st];
    int n = x->count < MMS_STATS_RING ? (int)x->count : MMS_STATS_RING;
    memcpy(scratch, x->ring, n * sizeof(float));
    memset(out, 0, sizeof(*out));
    out->count = x->count;
    out->max = x->max;
    out->sum = x->sum;
    out->mean = x->count ? x->sum / x->count : 0;
    memcpy(out->buckets, x->buckets, sizeof(out->buckets));
    pthread_mutex_unlock(&s->lock);
    if (!n)
        return;
    qsort(scratch, n, sizeof(float), cmp_float);
    out->p50 = rank(scratch, n, 50);
    out->p95 = rank(scratch, n, 95);
    out->p99 = rank(scratch, n, 99);
}
