#include "daemon/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* An event with its strings: the pipeline's are only borrowed. */
struct copy {
    struct mms_pipeline_event ev;
    char name[256], reason[512], file[1024];
};

struct mmsd_events {
    uv_async_t async;
    mmsd_events_fn fn;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
    pthread_mutex_t lock; /* the ring and lost */
    struct copy ring[MMSD_EVENTS_MAX];
    int head, n;
    int lost;
};

static void on_async(uv_async_t *a)
{
    mmsd_events_drain(a->data);
}

int mmsd_events_create(uv_loop_t *loop, mmsd_events_fn fn, void *arg, struct mmsd_events **out,
                       struct mms_err *err)
{
    struct mmsd_events *q = calloc(1, sizeof(*q));
    if (!q)
        return mms_err_set(err, -ENOMEM, "out of memory");
    int rc = uv_async_init(loop, &q->async, on_async);
    if (rc) {
        free(q);
        return mms_err_set(err, rc, "events: %s", uv_strerror(rc));
    }
    pthread_mutex_init(&q->lock, NULL);
    q->async.data = q;
    q->fn = fn;
    q->arg = arg;
    *out = q;
    return 0;
}

void mmsd_events_push(void *opaque, const struct mms_pipeline_event *ev)
{
    struct mmsd_events *q = opaque;
    pthread_mutex_lock(&q->lock);
    if (q->n == MMSD_EVENTS_MAX) {
        q->lost = 1;
    } else {
        struct copy *c = &q->ring[(q->head + q->n++) % MMSD_EVENTS_MAX];
        c->ev = *ev;
        snprintf(c->name, sizeof(c->name), "%s", ev->name ? ev->name : "");
        snprintf(c->reason, sizeof(c->reason), "%s", ev->reason ? ev->reason : "");
        snprintf(c->file, sizeof(c->file), "%s", ev->file ? ev->file : "");
    }
    pthread_mutex_unlock(&q->lock);
    uv_async_send(&q->async);
}

/* One at a time, out of the lock: fn may take as long as it likes (it
 * logs) without holding up a pipeline thread. */
static int take(struct mmsd_events *q, struct copy *c, int *lost)
{
    pthread_mutex_lock(&q->lock);
    int have = q->n > 0;
    if (have) {
        *c = q->ring[q->head];
        q->head = (q->head + 1) % MMSD_EVENTS_MAX;
        q->n--;
    }
    *lost = !have && q->lost;
    if (*lost)
        q->lost = 0;
    pthread_mutex_unlock(&q->lock);
    return have || *lost;
}

void mmsd_events_drain(struct mmsd_events *q)
{
    struct copy c;
    int lost;
    while (!q->done && take(q, &c, &lost)) {
        if (lost) {
            q->fn(q->arg, NULL);
            continue;
        }
        c.ev.name = c.name;
        c.ev.reason = c.reason;
        c.ev.file = c.file;
        q->fn(q->arg, &c.ev);
    }
}

static void closed(uv_handle_t *h)
{
    struct mmsd_events *q = h->data;
    void (*done)(void *) = q->done;
    void *arg = q->done_arg;
    pthread_mutex_destroy(&q->lock);
    free(q);
    done(arg);
}

void mmsd_events_close(struct mmsd_events *q, void (*done)(void *arg), void *arg)
{
    q->done = done;
    q->done_arg = arg;
    uv_close((uv_handle_t *)&q->async, closed);
}
