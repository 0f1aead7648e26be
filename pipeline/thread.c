#include "pipeline/thread.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

void mms_thread_setup(const char *name, int step_back)
{
    pthread_setname_np(pthread_self(), name);
    if (!step_back)
        return;
    /* Nice values are per thread on Linux: PRIO_PROCESS with a thread id
     * changes that thread only. */
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, tid);
    if (errno)
        return;
    nice += MMS_THREAD_STEP_BACK;
    setpriority(PRIO_PROCESS, tid, nice < 19 ? nice : 19);
}

struct run {
    const char *name;
    int step_back;
    int (*fn)(void *);
    void *arg;
    int rc;
};

static void *run_main(void *arg)
{
    struct run *r = arg;
    mms_thread_setup(r->name, r->step_back);
    r->rc = r->fn(r->arg);
    return NULL;
}

int mms_thread_run(const char *name, int step_back, int (*fn)(void *), void *arg)
{
    struct run r = {.name = name, .step_back = step_back, .fn = fn, .arg = arg};
    pthread_t t;
    int rc = pthread_create(&t, NULL, run_main, &r);
    if (rc)
        return -rc;
    pthread_join(t, NULL);
    return r.rc;
}
