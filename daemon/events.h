#ifndef MMSD_EVENTS_H
#define MMSD_EVENTS_H

/*
 * A pipeline's events (pipeline/pipeline.h), from its threads to the
 * loop: a pipeline thread copies the event into a bounded queue and wakes
 * the loop (uv_async), which hands each one to `fn` in the order they
 * came. A push never waits on the loop; when the queue is full the event
 * is dropped and `fn` later gets NULL, meaning "some were lost: read the
 * pipeline's state instead".
 */

#include <uv.h>

#include "core/error.h"
#include "pipeline/pipeline.h"

/* Events a queue holds before it drops them: far more than a pipeline
 * makes between two turns of the loop. */
#define MMSD_EVENTS_MAX 64

typedef void (*mmsd_events_fn)(void *arg, const struct mms_pipeline_event *ev);

struct mmsd_events;

/* Loop thread. */
int mmsd_events_create(uv_loop_t *loop, mmsd_events_fn fn, void *arg, struct mmsd_events **out,
                       struct mms_err *err);

/* Any thread (the signature of mms_pipeline_hooks.event): copies ev. */
void mmsd_events_push(void *q, const struct mms_pipeline_event *ev);

/* Loop thread: hands on what is queued now, without waiting for the async
 * callback (a view about to be answered wants the latest). */
void mmsd_events_drain(struct mmsd_events *q);

/* Loop thread, once no thread pushes any more: drops what is queued (fn
 * hears none of it) and frees q when its handle is closed; then done(arg). */
void mmsd_events_close(struct mmsd_events *q, void (*done)(void *arg), void *arg);

#endif
