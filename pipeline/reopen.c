#include "pipeline/reopen.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/backoff.h"

#define FIRST_MS 1000
#define MAX_MS 30000

enum state { IDLE, WAITING, TRYING };

struct mms_reopen {
    const struct mms_sink_driver *driver;
    char *url;
    struct mms_sink_params params;
    enum state state;
    int attempts;
    double due_ms;
    struct mms_backoff backoff;
    double wait_ms; /* the wait in progress, from the backoff */
    pthread_t thread;
    atomic_int done;         /* the attempt thread has stored its result */
    int rc;                  /* of the attempt: written before done */
    struct mms_sink *opened; /* of the attempt, until handed out */
    struct mms_err attempt_err; /* the attempt thread's */
    struct mms_err err;         /* of the last failed attempt, for the caller */
};

int mms_reopen_create(const struct mms_sink_driver *driver, const char *url,
                      const struct mms_sink_params *p, struct mms_reopen **out)
{
    struct mms_reopen *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r || !(r->url = strdup(url))) {
        free(r);
        return -ENOMEM;
    }
    r->driver = driver;
    r->params = *p;
    mms_backoff_init(&r->backoff, FIRST_MS, MAX_MS);
    *out = r;
    return 0;
}

void mms_reopen_arm(struct mms_reopen *r, double now_ms)
{
    if (r->state != IDLE)
        return;
    r->state = WAITING;
    r->wait_ms = (double)mms_backoff_next(&r->backoff);
    r->due_ms = now_ms + r->wait_ms;
    r->err.msg[0] = 0;
}

void mms_reopen_start(struct mms_reopen *r, double now_ms)
{
    if (r->state != IDLE)
        return;
    r->state = WAITING;
    r->wait_ms = 0;
    r->due_ms = now_ms;
    r->err.msg[0] = 0;
}

static void *attempt(void *opaque)
{
    struct mms_reopen *r = opaque;
    r->rc = mms_sink_open(r->driver, r->url, &r->params, &r->opened, &r->attempt_err);
    atomic_store(&r->done, 1);
    return NULL;
}

static void start(struct mms_reopen *r, double now_ms)
{
    atomic_store(&r->done, 0);
    r->opened = NULL;
    if (pthread_create(&r->thread, NULL, attempt, r)) {
        /* No thread now (out of resources): try again later, as if the
         * peer had refused. */
        mms_err_set(&r->err, -EAGAIN, "%s: cannot start a thread to reopen it", r->url);
        r->due_ms = now_ms + r->wait_ms;
        return;
    }
    r->state = TRYING;
}

int mms_reopen_poll(struct mms_reopen *r, double now_ms, struct mms_sink **sink)
{
    *sink = NULL;
    if (r->state == WAITING && now_ms >= r->due_ms)
        start(r, now_ms);
    if (r->state != TRYING || !atomic_load(&r->done))
        return 0;
    pthread_join(r->thread, NULL);
    r->attempts++;
    if (!r->rc) {
        *sink = r->opened;
        r->opened = NULL;
        r->state = IDLE;
        mms_backoff_reset(&r->backoff);
        return 1;
    }
    r->err = r->attempt_err;
    r->wait_ms = (double)mms_backoff_next(&r->backoff);
    r->due_ms = now_ms + r->wait_ms;
    r->state = WAITING;
    return -1;
}

const char *mms_reopen_error(const struct mms_reopen *r)
{
    return r->err.msg;
}

int mms_reopen_attempts(const struct mms_reopen *r)
{
    return r->attempts;
}

double mms_reopen_backoff_ms(const struct mms_reopen *r)
{
    return r->wait_ms;
}

void mms_reopen_free(struct mms_reopen *r)
{
    if (!r)
        return;
    if (r->state == TRYING) {
        pthread_join(r->thread, NULL);
        mms_sink_close(r->opened, NULL);
    }
    free(r->url);
    free(r);
}
