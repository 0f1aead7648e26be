#ifndef MMS_BACKOFF_H
#define MMS_BACKOFF_H

/*
 * Exponential backoff for things retried after a failure: a source that
 * dropped, a network output whose receiver went away, a pipeline that
 * could not start. The first wait is min_ms, each further one twice the
 * last, never more than max_ms; a success starts the series again.
 *
 * A value, not a handle: it lives inside its owner (like a libuv timer)
 * so that a retry loop needs no allocation. Touch the fields only through
 * these functions. Not thread-safe: one owner thread.
 */

#include <stdint.h>

struct mms_backoff {
    uint64_t min_ms, max_ms;
    uint64_t next_ms; /* the wait next() hands out */
};

/* 0, or -EINVAL when min_ms is 0 (it would never grow) or max_ms < min_ms;
 * b is then left zeroed, and next() on it returns 0. */
int mms_backoff_init(struct mms_backoff *b, uint64_t min_ms, uint64_t max_ms);

/* The wait before the next attempt, after a failure; the one after it
 * doubles, up to max_ms. */
uint64_t mms_backoff_next(struct mms_backoff *b);

/* An attempt succeeded: the next failure waits min_ms again. */
void mms_backoff_reset(struct mms_backoff *b);

#endif
