#ifndef MMS_PIPELINE_TESTING_H
#define MMS_PIPELINE_TESTING_H

/*
 * Faults the tests inject where the real thing cannot be made to fail on
 * demand. Not for programs: nothing here is part of the pipeline's
 * interface.
 */

struct mms_pipeline;

/* The next n inferences fail as a failing network would (mms_net_run
 * returning an error), from any thread. */
void mms_pipeline_inject_inference_failures(struct mms_pipeline *p, int n);

/* mms_pipeline_start fails to make thread `index` (0 decode, 1 infer,
 * 2 compose, 3 on the inference workers) as pthread_create would, with
 * EAGAIN. */
void mms_pipeline_inject_thread_failure(struct mms_pipeline *p, int index);

#endif
