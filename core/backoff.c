/* Exponential backoff: min, doubling, capped, reset on success. */
#include "core/backoff.h"

#include <errno.h>
#include <string.h>

int mms_backoff_init(struct mms_backoff *b, uint64_t min_ms, uint64_t max_ms)
{
    memset(b, 0, sizeof(*b));
    if (!min_ms || max_ms < min_ms)
        return -EINVAL;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->next_ms = min_ms;
    return 0;
}

uint64_t mms_backoff_next(struct mms_backoff *b)
{
    uint64_t wait = b->next_ms;
    /* Compared before doubling, so a max near UINT64_MAX cannot wrap. */
    b->next_ms = wait > b->max_ms / 2 ? b->max_ms : wait * 2;
    return wait;
}

void mms_backoff_reset(struct mms_backoff *b)
{
    b->next_ms = b->min_ms;
}
