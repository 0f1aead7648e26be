#ifndef MMS_STATS_H
#define MMS_STATS_H

/*
 * Latency of each pipeline stage, per frame. Percentiles come from the
 * most recent samples (a ring, so an all-day run stays bounded); the
 * maximum, count and histogram buckets (for Prometheus) from all of them.
 * One writer thread per stage; readers take a consistent snapshot.
 */

#include <pthread.h>
#include <stdint.h>

enum mms_stage {
    MMS_STAGE_DECODE,
    MMS_STAGE_PREPROCESS,
    MMS_STAGE_INFER,
    MMS_STAGE_POSTPROCESS,
    MMS_STAGE_COMPOSE,
    MMS_STAGE_OUTPUT,    /* encode / present, all sinks */
    MMS_STAGE_TOTAL,     /* decode start to output end, per frame */
    MMS_STAGE_MASK_AGE,  /* frame time minus its mask's frame time */
    MMS_STAGE_COUNT,
};

#define MMS_STATS_RING 4096
#define MMS_STATS_BUCKETS 14

/* Histogram upper bounds in ms (the last bucket is +Inf). */
extern const double mms_stats_bounds[MMS_STATS_BUCKETS - 1];

struct mms_stage_stats {
    float ring[MMS_STATS_RING];
    int64_t count;
    double sum, max;
    int64_t buckets[MMS_STATS_BUCKETS];
};

struct mms_stats {
    pthread_mutex_t lock;
    struct mms_stage_stats stage[MMS_STAGE_COUNT];
};

struct mms_stage_summary {
    int64_t count;
    double p50, p95, p99, max, mean, sum;
    int64_t buckets[MMS_STATS_BUCKETS]; /* not cumulative */
};

void mms_stats_init(struct mms_stats *s);
void mms_stats_destroy(struct mms_stats *s);
void mms_stats_add(struct mms_stats *s, enum mms_stage st, double ms);
/* Percentiles over the recent samples; sorts a copy (no allocation: the
 * copy lives in `scratch`, MMS_STATS_RING floats). */
void mms_stats_summary(struct mms_stats *s, enum mms_stage st, struct mms_stage_summary *out,
                       float *scratch);
const char *mms_stage_name(enum mms_stage st);

/* Monotonic milliseconds. */
double mms_now_ms(void);

#endif
