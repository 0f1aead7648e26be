/* mmsd's API (daemon/api.c) through its handler on a real server, over
 * pipelines known but not running: the status JSON, /healthz, settings
 * changed and refused, and the errors for bodies that are not JSON,
 * unknown settings and unknown paths. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "api_fixture.h"
#include "harness.h"
#include "overlay/compose.h"

static struct fixture fx;

static struct json_object *get_json(const char *method, const char *path, const char *body,
                                    int *status)
{
    char *out;
    size_t len;
    *status = fixture_request(&fx, method, path, body, &out, &len);
    struct json_object *o = out ? json_tokener_parse(out) : NULL;
    CHECK_MSG(o, "%s %s: not JSON: %s", method, path, out ? out : "(nothing)");
    free(out);
    return o;
}

static const char *str_at(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static void start(void)
{
    memset(&fx, 0, sizeof(fx));
    fixture_add_pipe(&fx, "cam1", MMSD_PIPE_CONNECTING);
    snprintf(fx.d.pipes->error, sizeof(fx.d.pipes->error), "udp: no route");
    CHECK(fixture_start(&fx) == 0);
}

/* A pipeline's status: its name, state, the reason it is not healthy. */
static void status_is_json(void)
{
    start();
    int status;
    struct json_object *o = get_json("GET", "/api/v1/pipelines/cam1", NULL, &status);
    CHECK_EQ(status, 200);
    CHECK_STR_EQ(str_at(o, "name"), "cam1");
    CHECK_STR_EQ(str_at(o, "state"), "connecting");
    CHECK_STR_EQ(str_at(o, "healthy"), "false");
    struct json_object *r;
    CHECK(json_object_object_get_ex(o, "reasons", &r) && json_object_array_length(r) == 1);
    if (r && json_object_array_length(r) == 1)
        CHECK_STR_EQ(json_object_get_string(json_object_array_get_idx(r, 0)),
                     "cannot start: udp: no route");
    json_object_put(o);
    fixture_stop(&fx);
}

/* /healthz says why, per pipeline, with 503. */
static void healthz_is_unhealthy_with_reasons(void)
{
    start();
    int status;
    struct json_object *o = get_json("GET", "/healthz", NULL, &status);
    CHECK_EQ(status, 503);
    CHECK_STR_EQ(str_at(o, "status"), "unhealthy");
    CHECK_MSG(strstr(json_object_to_json_string(o), "cam1: cannot start"), "%s",
              json_object_to_json_string(o));
    json_object_put(o);
    fixture_stop(&fx);
}

/* Settings change through PATCH and show in the answer and the status. */
static void settings_change(void)
{
    start();
    int status;
    struct json_object *o =
        get_json("PATCH", "/api/v1/pipelines/cam1", "{\"alpha\": 0.25, \"style\": \"outline\"}",
                 &status);
    CHECK_EQ(status, 200);
    struct json_object *s = NULL;
    CHECK(json_object_object_get_ex(o, "settings", &s));
    CHECK_STR_EQ(str_at(s, "style"), "outline");
    CHECK_MSG(json_object_get_double(json_object_object_get(s, "alpha")) == 0.25, "%s",
              json_object_to_json_string(s));
    CHECK_EQ(fx.d.pipes->rt.style, MMS_STYLE_OUTLINE);
    json_object_put(o);
    fixture_stop(&fx);
}

/* A body that is not JSON is a 400 that says so, and changes nothing. */
static void bad_json_is_refused(void)
{
    start();
    float before = fx.d.pipes->rt.alpha;
    int status;
    struct json_object *o = get_json("PATCH", "/api/v1/pipelines/cam1", "{alpha", &status);
    CHECK_EQ(status, 400);
    CHECK_MSG(strstr(str_at(o, "error"), "not JSON"), "%s", str_at(o, "error"));
    CHECK(fx.d.pipes->rt.alpha == before);
    json_object_put(o);
    fixture_stop(&fx);
}

/* An unknown setting is refused, and the good one beside it is not
 * applied: all or nothing. */
static void unknown_setting_is_refused(void)
{
    start();
    float before = fx.d.pipes->rt.alpha;
    int status;
    struct json_object *o =
        get_json("PATCH", "/api/v1/pipelines/cam1", "{\"alpha\": 0.1, \"sparkle\": 1}", &status);
    CHECK_EQ(status, 400);
    CHECK_MSG(strstr(str_at(o, "error"), "unknown setting 'sparkle'"), "%s", str_at(o, "error"));
    CHECK(fx.d.pipes->rt.alpha == before);
    json_object_put(o);
    fixture_stop(&fx);
}

/* A setting that only a restart changes is refused as such. */
static void startup_setting_is_refused(void)
{
    start();
    int status;
    struct json_object *o =
        get_json("PATCH", "/api/v1/pipelines/cam1", "{\"input\": \"udp://x\"}", &status);
    CHECK_EQ(status, 400);
    CHECK_MSG(strstr(str_at(o, "error"), "cannot change while running"), "%s",
              str_at(o, "error"));
    json_object_put(o);
    fixture_stop(&fx);
}

/* Unknown pipelines and paths are 404, wrong methods 405. */
static void unknown_paths_and_methods(void)
{
    start();
    int status;
    struct json_object *o = get_json("GET", "/api/v1/pipelines/nope", NULL, &status);
    CHECK_EQ(status, 404);
    CHECK_STR_EQ(str_at(o, "error"), "no pipeline 'nope'");
    json_object_put(o);
    o = get_json("DELETE", "/api/v1/pipelines/cam1", NULL, &status);
    CHECK_EQ(status, 405);
    json_object_put(o);
    o = get_json("GET", "/nowhere", NULL, &status);
    CHECK_EQ(status, 404);
    json_object_put(o);
    fixture_stop(&fx);
}

/* Recording on a pipeline without record_dir is a conflict. */
static void recording_without_record_dir_is_refused(void)
{
    start();
    int status;
    struct json_object *o = get_json("POST", "/api/v1/pipelines/cam1/recording",
                                     "{\"action\": \"start\"}", &status);
    CHECK_EQ(status, 409);
    CHECK_MSG(strstr(str_at(o, "error"), "no record_dir"), "%s", str_at(o, "error"));
    json_object_put(o);
    o = get_json("POST", "/api/v1/pipelines/cam1/recording", "{\"action\": \"dance\"}", &status);
    CHECK_EQ(status, 400);
    json_object_put(o);
    fixture_stop(&fx);
}

MMS_TESTS(T(status_is_json), T(healthz_is_unhealthy_with_reasons), T(settings_change),
          T(bad_json_is_refused), T(unknown_setting_is_refused), T(startup_setting_is_refused),
          T(unknown_paths_and_methods), T(recording_without_record_dir_is_refused))
