/* mmsd's Prometheus exposition (daemon/metrics.c) of a known state: two
 * pipelines not running, one of them failed. Names, labels, values, the
 * HELP and TYPE lines, and the content type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/options.h"

#include "api_fixture.h"
#include "harness.h"

/* Starts the fixture and answers GET /metrics, which must be a 200: the
 * exposition ("" if none; to free), or NULL if the fixture did not start. */
static char *scrape(struct fixture *fx)
{
    if (fixture_start(fx))
        return NULL;
    char *out;
    size_t len;
    CHECK_EQ(fixture_request(fx, "GET", "/metrics", NULL, &out, &len), 200);
    return out ? out : calloc(1, 1);
}

static void has(const char *text, const char *line)
{
    CHECK_MSG(strstr(text, line), "no '%s' in the exposition", line);
}

static void known_state_exposed(void)
{
    struct fixture fx = {0};
    fixture_add_pipe(&fx, "cam-1", MMSD_PIPE_CONNECTING);
    fixture_add_pipe(&fx, "or_2", MMSD_PIPE_FAILED);
    char *t = scrape(&fx);
    if (!t)
        return;
    has(t, "# TYPE mmsd_pipeline_up gauge\n");
    has(t, "# HELP mmsd_pipeline_up ");
    has(t, "mmsd_pipeline_up{pipeline=\"cam-1\"} 0\n");
    has(t, "mmsd_pipeline_up{pipeline=\"or_2\"} 0\n");
    has(t, "mmsd_source_signal{pipeline=\"cam-1\"} 0\n");
    has(t, "mmsd_pipeline_state{pipeline=\"cam-1\",state=\"connecting\"} 1\n");
    has(t, "mmsd_pipeline_state{pipeline=\"cam-1\",state=\"running\"} 0\n");
    has(t, "mmsd_pipeline_state{pipeline=\"or_2\",state=\"failed\"} 1\n");
    has(t, "# TYPE mmsd_reconnects_total counter\n");
    has(t, "mmsd_reconnects_total{pipeline=\"or_2\"} 0\n");
    /* Not running: no source, so no rate and no mode yet. */
    has(t, "# TYPE mmsd_source_fps gauge\n");
    has(t, "mmsd_source_fps{pipeline=\"cam-1\"} 0\n");
    has(t, "# TYPE mmsd_pipeline_live gauge\n");
    has(t, "mmsd_pipeline_live{pipeline=\"or_2\"} 0\n");
    free(t);
    fixture_stop(&fx);
}

/* A real pipeline (created from a lavfi source, not started) behind each
 * name: mmsd_source_fps is the source's nominal rate and
 * mmsd_pipeline_live its mode, what an alert compares mmsd_fps with. */
static struct mms_pipeline *lavfi_pipeline(const char *rate, const char *mode)
{
    char input[128], model[1024];
    snprintf(input, sizeof(input), "lavfi:testsrc2=size=160x120:rate=%s", rate);
    snprintf(model, sizeof(model), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_pipeline_opts o;
    struct mms_pipeline *p = NULL;
    struct mms_err err = {{0}};
    int rc = mms_options_defaults(&o);
    const char *const set[] = {"input", input,   "model", model, "size", "64x128",
                               "threads", "1",  "mode", mode};
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]) && !rc; i += 2)
        rc = mms_option_set(&o, set[i], set[i + 1], &err);
    rc = rc ? rc : mms_pipeline_create(&o, &p, &err);
    mms_options_free(&o);
    CHECK_MSG(rc == 0, "%s: %s", input, err.msg);
    return p;
}

static void source_rate_and_mode_exposed(void)
{
    struct fixture fx = {0};
    struct mmsd_pipe *cam = fixture_add_pipe(&fx, "cam", MMSD_PIPE_RUNNING);
    struct mmsd_pipe *file = fixture_add_pipe(&fx, "file", MMSD_PIPE_RUNNING);
    cam->p = lavfi_pipeline("30", "live");
    file->p = lavfi_pipeline("25/2", "offline");
    char *t = cam->p && file->p ? scrape(&fx) : NULL;
    if (t) {
        has(t, "mmsd_source_fps{pipeline=\"cam\"} 30\n");
        has(t, "mmsd_source_fps{pipeline=\"file\"} 12.5\n");
        has(t, "mmsd_pipeline_live{pipeline=\"cam\"} 1\n");
        has(t, "mmsd_pipeline_live{pipeline=\"file\"} 0\n");
        has(t, "# HELP mmsd_source_fps ");
        free(t);
        fixture_stop(&fx);
    } else {
        if (cam->p)
            mms_pipeline_destroy(cam->p);
        if (file->p)
            mms_pipeline_destroy(file->p);
        cam->p = file->p = NULL;
    }
}

/* Every sample line is NAME{LABELS} VALUE or NAME VALUE with a name of
 * mmsd_ and a number: nothing a scraper would choke on. */
static void every_line_parses(void)
{
    struct fixture fx = {0};
    fixture_add_pipe(&fx, "cam-1", MMSD_PIPE_RUNNING);
    char *t = scrape(&fx);
    if (!t)
        return;
    int samples = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        samples++;
        CHECK_MSG(!strncmp(line, "mmsd_", 5), "'%s'", line);
        char *sp = strrchr(line, ' ');
        char *end = NULL;
        if (sp)
            strtod(sp + 1, &end);
        CHECK_MSG(sp && end && !*end && end != sp + 1, "no value: '%s'", line);
        char *brace = strchr(line, '{');
        CHECK_MSG(!brace || (sp && sp[-1] == '}'), "labels not closed: '%s'", line);
    }
    CHECK_MSG(samples > 10, "%d samples", samples);
    free(t);
    fixture_stop(&fx);
}

/* No pipelines: the families are still described, no per-pipeline line. */
static void no_pipelines_no_series(void)
{
    struct fixture fx = {0};
    char *t = scrape(&fx);
    if (!t)
        return;
    has(t, "# TYPE mmsd_pipeline_up gauge\n");
    CHECK_MSG(!strstr(t, "pipeline=\""), "a series without a pipeline:\n%s", t);
    free(t);
    fixture_stop(&fx);
}

MMS_TESTS(T(known_state_exposed), T(source_rate_and_mode_exposed), T(every_line_parses), T(no_pipelines_no_series))
