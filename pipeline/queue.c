#include "pipeline/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct mms_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void **items;
    int cap, head, count, closed;
};

int mms_queue_create(int capacity, struct mms_queue **out)
{
    struct mms_queue *q = calloc(1, sizeof(*q));
    if (!q || capacity < 1 || !(q->items = calloc(capacity, sizeof(void *)))) {
        free(q);
        return capacity < 1 ? -EINVAL : -ENOMEM;
    }
    q->cap = capacity;
    pthread_mutex_init(&q->lock, NULL);
    /* Timeouts are measured on the monotonic clock: a wall-clock jump
     * (NTP in an operating room PC) must not stall the display. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    *out = q;
    return 0;
}

void mms_queue_destroy(struct mms_queue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->items);
    free(q);
}

static void put(struct mms_queue *q, void *item)
{
    q->items[(q->head + q->count) % q->cap] = item;
    q->count++;
    pthread_cond_signal(&q->not_empty);
}

static void *take(struct mms_queue *q)
{
    void *item = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
    return item;
}

static struct timespec deadline(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

int mms_queue_push(struct mms_queue *q, void *item)
{
    return mms_queue_push_timed(q, item, -1);
}

int mms_queue_push_timed(struct mms_queue *q, void *item, int timeout_ms)
{
    struct timespec until = timeout_ms >= 0 ? deadline(timeout_ms) : (struct timespec){0, 0};
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    while (q->count == q->cap && !q->closed && !rc)
        rc = timeout_ms < 0 ? pthread_cond_wait(&q->not_full, &q->lock)
                            : pthread_cond_timedwait(&q->not_full, &q->lock, &until);
    rc = q->closed ? -EPIPE : q->count == q->cap ? -ETIMEDOUT : 0;
    if (!rc)
        put(q, item);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int mms_queue_try_push(struct mms_queue *q, void *item)
{
    pthread_mutex_lock(&q->lock);
    int rc = q->closed ? -EPIPE : q->count == q->cap ? -EAGAIN : 0;
    if (!rc)
        put(q, item);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int mms_queue_push_latest(struct mms_queue *q, void *item, void **dropped)
{
    *dropped = NULL;
    pthread_mutex_lock(&q->lock);
    int rc = q->closed ? -EPIPE : 0;
    if (!rc) {
        if (q->count == q->cap)
            *dropped = take(q);
        put(q, item);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int mms_queue_pop(struct mms_queue *q, void **item, int timeout_ms)
{
    struct timespec until = timeout_ms >= 0 ? deadline(timeout_ms) : (struct timespec){0, 0};
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    while (!q->count && !q->closed && !rc)
        rc = timeout_ms < 0 ? pthread_cond_wait(&q->not_empty, &q->lock)
                            : pthread_cond_timedwait(&q->not_empty, &q->lock, &until);
    if (q->count)
        *item = take(q), rc = 0;
    else
        rc = q->closed ? -EPIPE : -ETIMEDOUT;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void mms_queue_close(struct mms_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}

int mms_queue_count(struct mms_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}
