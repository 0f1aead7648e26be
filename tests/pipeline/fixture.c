#include "fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

int fixture_options(struct mms_pipeline_opts *o, const char *input, const char *mode,
                    const char *const *set, struct mms_err *err)
{
    char model[1024];
    snprintf(model, sizeof(model), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    int rc = mms_options_defaults(o);
    rc = rc ? rc : mms_option_set(o, "input", input, err);
    rc = rc ? rc : mms_option_set(o, "model", model, err);
    rc = rc ? rc : mms_option_set(o, "size", "64x128", err);
    rc = rc ? rc : mms_option_set(o, "threads", "1", err);
    rc = rc ? rc : mms_option_set(o, "mode", mode, err);
    for (int i = 0; set && set[i] && !rc; i += 2)
        if (set[i + 1])
            rc = mms_option_set(o, set[i], set[i + 1], err);
    return rc;
}

struct mms_pipeline *fixture_create(const char *input, const char *mode, const char *const *set)
{
    struct mms_pipeline_opts o;
    struct mms_pipeline *p = NULL;
    struct mms_err err = {{0}};
    int rc = fixture_options(&o, input, mode, set, &err);
    rc = rc ? rc : mms_pipeline_create(&o, &p, &err);
    mms_options_free(&o);
    CHECK_MSG(rc == 0, "%s: %s", input, err.msg);
    return p;
}

void fixture_sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

const char *fixture_ts_clip(void)
{
    static char path[512];
    char cmd[1024];
    snprintf(path, sizeof(path), "%s/served.ts", mms_test_tmpdir());
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y -f lavfi -i "
             "testsrc2=size=160x120:rate=25 -frames:v 50 -c:v mpeg2video -f mpegts '%s'", path);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    return path;
}

struct mms_pipeline *fixture_start(struct mms_pipeline *p)
{
    struct mms_err err = {{0}};
    if (p && mms_pipeline_start(p, &err)) {
        CHECK_MSG(0, "start: %s", err.msg);
        mms_pipeline_destroy(p);
        p = NULL;
    }
    return p;
}

int fixture_thread_nices(const char *name, int *nices, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], buf[1024] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int same = fgets(buf, sizeof(buf), f) && !strncmp(buf, name, strlen(name)) &&
                   buf[strlen(name)] == '\n';
        fclose(f);
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        if (!same || !(f = fopen(path, "r")))
            continue;
        /* After the ")" that ends the name: state is field 3, nice field 19. */
        const char *q = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
        fclose(f);
        for (int field = 2; q && field < 19; field++)
            q = strchr(q + 1, ' ');
        if (q && nices && n < max)
            nices[n] = atoi(q + 1);
        n += q != NULL;
    }
    if (d)
        closedir(d);
    return n;
}

void fixture_while_running(struct mms_pipeline *p, void (*probe)(void *ctx), void *ctx)
{
    struct mms_err err = {{0}};
    if (p && mms_pipeline_start(p, &err) == 0) {
        fixture_sleep_ms(300);
        probe(ctx);
        mms_pipeline_stop(p);
        mms_pipeline_wait(p, NULL, &err);
    }
    mms_pipeline_destroy(p);
}
