#ifndef MMS_PIPELINE_THREAD_H
#define MMS_PIPELINE_THREAD_H

/*
 * The pipeline's threads: names for top, perf and the tests, and the
 * offline priority policy. The network runs on as many OpenMP threads as
 * there are cores; any other thread that takes a core in the middle of a
 * parallel region leaves the network's other threads waiting at its
 * barrier. Offline only throughput counts, so every other stage (decoding,
 * composing, writing, encoding) runs MMS_THREAD_STEP_BACK nice levels
 * below the process and fills the network's gaps. Live, every thread
 * keeps the process's priority: a live source must be read at its own
 * rate even when the network falls behind.
 */

#define MMS_THREAD_STEP_BACK 15

/* Names the calling thread (15 characters at most) and, with step_back,
 * lowers its priority by MMS_THREAD_STEP_BACK (to 19 at most). Failing
 * leaves the thread as it was: slower, nothing worse. */
void mms_thread_setup(const char *name, int step_back);

/* Calls fn(arg) on a new thread set up as mms_thread_setup(name,
 * step_back) would, and waits for it: the threads that fn starts inherit
 * that name and priority (a library's workers, x264's). Returns fn's
 * result, or a negative errno when no thread started (fn was not called). */
int mms_thread_run(const char *name, int step_back, int (*fn)(void *), void *arg);

#endif
