/* Bounded queues: order, blocking, latest-wins, close semantics. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "pipeline/queue.h"
#include "pipeline/stats.h"

#define P(i) ((void *)(intptr_t)(i))

static void fifo_order(void)
{
    struct mms_queue *q;
    CHECK(mms_queue_create(3, &q) == 0);
    for (int i = 1; i <= 3; i++)
        CHECK(mms_queue_push(q, P(i)) == 0);
    for (int i = 1; i <= 3; i++) {
        void *v = NULL;
        CHECK(mms_queue_pop(q, &v, 0) == 0 && v == P(i));
    }
    mms_queue_destroy(q);
}

static void pop_times_out_when_empty(void)
{
    struct mms_queue *q;
    mms_queue_create(1, &q);
    void *v;
    double t = mms_now_ms();
    CHECK(mms_queue_pop(q, &v, 50) == -ETIMEDOUT);
    CHECK(mms_now_ms() - t >= 45);
    mms_queue_destroy(q);
}

static void latest_replaces_oldest(void)
{
    struct mms_queue *q;
    mms_queue_create(1, &q);
    void *dropped = P(99);
    CHECK(mms_queue_push_latest(q, P(1), &dropped) == 0 && dropped == NULL);
    CHECK(mms_queue_push_latest(q, P(2), &dropped) == 0 && dropped == P(1));
    void *v;
    CHECK(mms_queue_pop(q, &v, 0) == 0 && v == P(2));
    mms_queue_destroy(q);
}

static void try_push_refuses_when_full(void)
{
    struct mms_queue *q;
    mms_queue_create(2, &q);
    CHECK(mms_queue_try_push(q, P(1)) == 0);
    CHECK(mms_queue_try_push(q, P(2)) == 0);
    CHECK(mms_queue_try_push(q, P(3)) == -EAGAIN);
    void *v;
    CHECK(mms_queue_pop(q, &v, 0) == 0 && v == P(1));
    CHECK(mms_queue_pop(q, &v, 0) == 0 && v == P(2));
    CHECK(mms_queue_pop(q, &v, 0) == -ETIMEDOUT);
    mms_queue_close(q);
    CHECK(mms_queue_try_push(q, P(4)) == -EPIPE);
    mms_queue_destroy(q);
}

static void push_timed_waits_then_gives_up(void)
{
    struct mms_queue *q;
    mms_queue_create(1, &q);
    CHECK(mms_queue_push_timed(q, P(1), 0) == 0);
    double t = mms_now_ms();
    CHECK(mms_queue_push_timed(q, P(2), 50) == -ETIMEDOUT);
    CHECK(mms_now_ms() - t >= 45);
    void *v;
    CHECK(mms_queue_pop(q, &v, 0) == 0 && v == P(1));
    CHECK(mms_queue_push_timed(q, P(3), 50) == 0);
    mms_queue_close(q);
    CHECK(mms_queue_push_timed(q, P(4), 50) == -EPIPE);
    mms_queue_destroy(q);
}

static void close_drains_then_fails(void)
{
    struct mms_queue *q;
    mms_queue_create(2, &q);
    mms_queue_push(q, P(1));
    mms_queue_close(q);
    void *v, *d;
    CHECK(mms_queue_push(q, P(2)) == -EPIPE);
    CHECK(mms_queue_push_latest(q, P(2), &d) == -EPIPE);
    CHECK(mms_queue_pop(q, &v, -1) == 0 && v == P(1));
    CHECK(mms_queue_pop(q, &v, -1) == -EPIPE);
    mms_queue_destroy(q);
}

static void *closer(void *arg)
{
    nanosleep(&(struct timespec){0, 30000000L}, NULL);
    mms_queue_close(arg);
    return NULL;
}

static void close_wakes_blocked_push(void)
{
    struct mms_queue *q;
    mms_queue_create(1, &q);
    mms_queue_push(q, P(1));
    pthread_t t;
    pthread_create(&t, NULL, closer, q);
    CHECK(mms_queue_push(q, P(2)) == -EPIPE); /* blocked on full until closed */
    pthread_join(t, NULL);
    mms_queue_destroy(q);
}

static void *producer(void *arg)
{
    for (int i = 1; i <= 1000; i++)
        mms_queue_push(arg, P(i));
    mms_queue_close(arg);
    return NULL;
}

static void threads_keep_order(void)
{
    struct mms_queue *q;
    mms_queue_create(3, &q);
    pthread_t t;
    pthread_create(&t, NULL, producer, q);
    void *v;
    int next = 1, ok = 1;
    while (!mms_queue_pop(q, &v, -1))
        ok &= v == P(next++);
    pthread_join(t, NULL);
    CHECK(ok && next == 1001);
    mms_queue_destroy(q);
}

static void zero_capacity_refused(void)
{
    struct mms_queue *q = NULL;
    CHECK(mms_queue_create(0, &q) == -EINVAL && q == NULL);
}

static void stats_percentiles(void)
{
    static struct mms_stats s;
    static float scratch[MMS_STATS_RING];
    mms_stats_init(&s);
    for (int i = 1; i <= 100; i++)
        mms_stats_add(&s, MMS_STAGE_INFER, i);
    struct mms_stage_summary sm;
    mms_stats_summary(&s, MMS_STAGE_INFER, &sm, scratch);
    CHECK(sm.count == 100 && sm.p50 == 50 && sm.p95 == 95 && sm.p99 == 99 && sm.max == 100);
    CHECK(sm.buckets[0] == 1); /* <= 1 ms */
    mms_stats_summary(&s, MMS_STAGE_DECODE, &sm, scratch);
    CHECK(sm.count == 0 && sm.p50 == 0);
    mms_stats_destroy(&s);
}

MMS_TESTS(T(fifo_order), T(pop_times_out_when_empty), T(latest_replaces_oldest),
          T(try_push_refuses_when_full), T(push_timed_waits_then_gives_up),
          T(close_drains_then_fails),
          T(close_wakes_blocked_push), T(threads_keep_order), T(zero_capacity_refused),
          T(stats_percentiles))
