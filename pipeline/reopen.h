#ifndef MMS_REOPEN_H
#define MMS_REOPEN_H

/*
 * Opening a network output, the first time and again after a failed
 * write. The peer of a stream (an OR display, a media server) restarts, or
 * is not up yet when the pipeline starts; meanwhile the pipeline must keep
 * writing its other outputs and its recording, so an attempt never runs
 * on the output thread: it gets a thread of its own, one at a time, at
 * once for the first open, 1 s after a failure and then every 2, 4, ...
 * up to 30 s. Only drivers marked `reopen` are handed here: a file opened
 * again would be truncated.
 *
 * Every function but mms_reopen_create() is for the one thread that
 * writes the outputs.
 */

#include "io/sink.h"

struct mms_reopen;

/* Copies url and *p (whose strings and callbacks must outlive r). */
int mms_reopen_create(const struct mms_sink_driver *driver, const char *url,
                      const struct mms_sink_params *p, struct mms_reopen **out);

/* The output failed at now_ms (and was closed): the first attempt is due
 * a second later. */
void mms_reopen_arm(struct mms_reopen *r, double now_ms);

/* The output has never been opened: the first attempt is due at once,
 * and after it fails the next ones follow as after a failed write. */
void mms_reopen_start(struct mms_reopen *r, double now_ms);

/* Starts an attempt when one is due and collects a finished one. Returns
 * 1 with *sink set (the caller owns it) when an attempt succeeded, -1 when
 * one failed (mms_reopen_error() says why), 0 otherwise. */
int mms_reopen_poll(struct mms_reopen *r, double now_ms, struct mms_sink **sink);
const char *mms_reopen_error(const struct mms_reopen *r);
/* Attempts finished so far, failed or not. */
int mms_reopen_attempts(const struct mms_reopen *r);

/* Milliseconds from the failure, or the last failed attempt, to the next
 * attempt (1000, 2000, ... 30000; 1000 again after a success); 0 before the
 * first failure. */
double mms_reopen_backoff_ms(const struct mms_reopen *r);

/* Waits for an attempt in flight (at most the driver's network timeout)
 * and closes what it opened. NULL is fine. */
void mms_reopen_free(struct mms_reopen *r);

#endif
