/* mmsd's Prometheus exposition (daemon/metrics.c) of a known state: two
 * pipelines not running, one of them failed. Names, labels, values, the
 * HELP and TYPE lines, and the content type. */
#include <stdlib.h>
#include <string.h>

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
    free(t);
    fixture_stop(&fx);
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

MMS_TESTS(T(known_state_exposed), T(every_line_parses), T(no_pipelines_no_series))
