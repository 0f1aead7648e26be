#ifndef MMS_TEST_PIPELINE_FIXTURE_H
#define MMS_TEST_PIPELINE_FIXTURE_H

/*
 * The pipeline every pipeline test builds: the shipped model at a small
 * size (64x128) on one thread, so that inference is cheap and what the
 * test is about (the source, the outputs, the pacing) decides what
 * happens. Options go in by name, as mmsd and the CLI set them.
 */

#include "pipeline/options.h"
#include "pipeline/pipeline.h"

/* Fresh defaults, then input, the small model, mode, and each name, value
 * pair of `set` in order (NULL-ended; NULL for none; a NULL value leaves
 * that option as it is, for a test's optional ones). 0, or the first
 * error with err said; either way the caller frees o. */
int fixture_options(struct mms_pipeline_opts *o, const char *input, const char *mode,
                    const char *const *set, struct mms_err *err);

/* fixture_options, then mms_pipeline_create: the pipeline, not started,
 * or NULL after a CHECK failure that names the input. */
struct mms_pipeline *fixture_create(const char *input, const char *mode, const char *const *set);

/* p started; or, after a CHECK failure, destroyed and NULL. NULL: NULL. */
struct mms_pipeline *fixture_start(struct mms_pipeline *p);

/* Two seconds of MPEG-TS in the test's directory, for a peer to serve. */
const char *fixture_ts_clip(void);

void fixture_sleep_ms(int ms);

/* The nice values of this process's threads called `name` (their comm),
 * up to `max` of them (nices may be NULL); returns how many there are. */
int fixture_thread_nices(const char *name, int *nices, int max);

/* Starts p (NULL: nothing), calls probe(ctx) 300 ms into the run, stops
 * it and destroys it: what its threads are like while it runs. */
void fixture_while_running(struct mms_pipeline *p, void (*probe)(void *ctx), void *ctx);

#endif
