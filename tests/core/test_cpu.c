/* The CPU probe: what it reads, and that probes at once agree (pipelines
 * made together each probe on a thread of their own). */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "core/cpu.h"
#include "harness.h"

#define THREADS 4
#define PROBES 300

static struct mms_cpu want;

static void *probe_many(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < PROBES; i++) {
        struct mms_cpu c;
        mms_cpu_probe(&c);
        *bad += strcmp(c.name, want.name) != 0 || strcmp(c.flags, want.flags) != 0 ||
                c.bf16 != want.bf16 || c.amx != want.amx || c.vnni != want.vnni;
    }
    return NULL;
}

static void test_probes_on_threads_at_once_agree(void)
{
    mms_cpu_probe(&want);
    pthread_t t[THREADS];
    int bad[THREADS] = {0};
    int started = 0;
    for (; started < THREADS; started++)
        if (pthread_create(&t[started], NULL, probe_many, &bad[started]))
            break;
    CHECK_EQ(started, THREADS);
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ(bad[i], 0);
    }
}

static void test_name_is_read(void)
{
    struct mms_cpu c;
    mms_cpu_probe(&c);
    CHECK(c.name[0] != 0);
    CHECK(strcmp(c.name, "unknown") != 0); /* x86 Linux names the model in /proc/cpuinfo */
    CHECK(c.cores >= 1);
    CHECK(c.isa != NULL);
}

/* The flags are a space-separated list of whole words, none twice. */
static void test_flags_are_whole_words(void)
{
    struct mms_cpu c;
    mms_cpu_probe(&c);
    CHECK(c.flags[0] != ' ');
    CHECK(strstr(c.flags, "  ") == NULL);
    size_t n = strlen(c.flags);
    CHECK(n == 0 || c.flags[n - 1] != ' ');
}

/* bf16 claims a native path only where the flags name one. */
static void test_bf16_needs_its_flag(void)
{
    struct mms_cpu c;
    mms_cpu_probe(&c);
    if (c.bf16)
        CHECK(strstr(c.flags, "avx512_bf16") || strstr(c.flags, "amx_tile"));
    if (c.amx)
        CHECK(strstr(c.flags, "amx_tile") != NULL);
}

/* Pinned to one CPU (as taskset or a cpuset would), the probe counts one;
 * let go, it counts them all again. */
static void test_cores_follow_the_affinity(void)
{
    cpu_set_t all, one;
    CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &all)) {
            CPU_SET(i, &one);
            break;
        }
    struct mms_cpu c;
    CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
    mms_cpu_probe(&c);
    CHECK_EQ(c.cores, 1);
    CHECK(sched_setaffinity(0, sizeof(all), &all) == 0);
    mms_cpu_probe(&c);
    CHECK_EQ(c.cores, CPU_COUNT(&all));
}

MMS_TESTS(T(test_probes_on_threads_at_once_agree), T(test_name_is_read),
          T(test_flags_are_whole_words), T(test_bf16_needs_its_flag),
          T(test_cores_follow_the_affinity))
