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

/* ---- secrets in URLs (core/redact.h): made up, never printed ---- */

#define CAM_PW "CamPassw0rd"
#define RTMP_KEY "live_1234_abcdef"

static void start_with(const char *input, const char *error)
{
    memset(&fx, 0, sizeof(fx));
    struct mmsd_pipe *pp = fixture_add_pipe(&fx, "cam1", MMSD_PIPE_CONNECTING);
    mms_option_set(&pp->conf.o, "input", input, NULL);
    snprintf(pp->error, sizeof(pp->error), "%s", error);
    CHECK(fixture_start(&fx) == 0);
}

/* JSON as sent, '/' unescaped, for searching. */
static const char *text_of(struct json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* The raw answer to a GET, for searching. */
static char *get_text(const char *path, int *status)
{
    char *out;
    size_t len;
    *status = fixture_request(&fx, "GET", path, NULL, &out, &len);
    return out ? out : strdup("");
}

/* /healthz needs no token, and FFmpeg's error repeats the URL. */
static void healthz_hides_credentials(void)
{
    start_with("rtsp://admin:" CAM_PW "@10.0.0.5/stream1",
               "rtsp://admin:" CAM_PW "@10.0.0.5/stream1: Connection refused");
    int status;
    char *body = get_text("/healthz", &status);
    CHECK_EQ(status, 503);
    CHECK_MSG(!strstr(body, CAM_PW), "the password is in /healthz");
    CHECK_MSG(strstr(body, "cam1: cannot start: rtsp://***@10.0.0.5/stream1: Connection refused"),
              "the reason lost more than the password");
    free(body);
    fixture_stop(&fx);
}

static void status_hides_credentials(void)
{
    start_with("rtsp://admin:" CAM_PW "@10.0.0.5/stream1",
               "rtmp://h/app/" RTMP_KEY ": Connection refused");
    int status;
    struct json_object *o = get_json("GET", "/api/v1/pipelines/cam1", NULL, &status);
    const char *all = text_of(o);
    CHECK_EQ(status, 200);
    CHECK_MSG(!strstr(all, CAM_PW) && !strstr(all, RTMP_KEY), "a secret is in the status");
    CHECK_STR_EQ(str_at(o, "input"), "rtsp://***@10.0.0.5/stream1");
    CHECK_MSG(strstr(all, "cannot start: rtmp://h/app/***: Connection refused"), "reasons");
    json_object_put(o);
    fixture_stop(&fx);
}

static void status_page_hides_credentials(void)
{
    start_with("rtmp://h/app/" RTMP_KEY, "");
    int status;
    char *body = get_text("/", &status);
    CHECK_EQ(status, 200);
    CHECK_MSG(!strstr(body, RTMP_KEY), "the stream key is on the page");
    CHECK(strstr(body, "rtmp://h/app/***"));
    free(body);
    fixture_stop(&fx);
}

/* What holds no secret is shown whole. */
static void plain_urls_are_shown_whole(void)
{
    start_with("rtsp://10.0.0.5:554/stream1?tcp", "rtsp://10.0.0.5:554/stream1?tcp: refused");
    int status;
    struct json_object *o = get_json("GET", "/api/v1/pipelines/cam1", NULL, &status);
    CHECK_STR_EQ(str_at(o, "input"), "rtsp://10.0.0.5:554/stream1?tcp");
    CHECK_MSG(strstr(text_of(o), "cannot start: rtsp://10.0.0.5:554/stream1?tcp: refused"),
              "reasons");
    json_object_put(o);
    char *page = get_text("/", &status);
    CHECK(strstr(page, "rtsp://10.0.0.5:554/stream1?tcp"));
    free(page);
    fixture_stop(&fx);
}

/* ---- what other sites' pages may not do ---- */

/* A raw request; its status, the body in *out (freed by the caller). */
static int raw(const char *method, const char *path, const char *headers, const char *body,
               size_t blen, char **out)
{
    size_t len;
    int status = fixture_request_raw(&fx, method, path, headers, body, blen, out, &len);
    if (!*out)
        *out = strdup("");
    return status;
}

static int raw_status(const char *method, const char *path, const char *headers,
                      const char *body)
{
    char *out;
    int status = raw(method, path, headers, body, body ? strlen(body) : 0, &out);
    free(out);
    return status;
}

/* DNS rebinding: a page whose name now points at 127.0.0.1. */
static void foreign_host_is_refused(void)
{
    start();
    char *out;
    CHECK_EQ(raw("GET", "/api/v1/pipelines", "Host: attacker-rebind.example\r\n", NULL, 0,
                 &out), 421);
    CHECK_MSG(!strstr(out, "cam1"), "the answer tells about the pipelines: %s", out);
    free(out);
    CHECK_EQ(raw_status("GET", "/healthz", "Host: attacker-rebind.example:8089\r\n", NULL), 421);
    CHECK_EQ(raw_status("PATCH", "/api/v1/pipelines/cam1",
                        "Host: attacker-rebind.example\r\nContent-Type: application/json\r\n",
                        "{\"alpha\": 0.1}"), 421);
    fixture_stop(&fx);
}

/* The names a browser uses for mmsd itself: addresses, localhost and
 * allowed_hosts. */
static void own_hosts_are_accepted(void)
{
    memset(&fx, 0, sizeof(fx));
    fixture_add_pipe(&fx, "cam1", MMSD_PIPE_RUNNING);
    fx.d.cfg.d.allowed_hosts = "or1.example, or2.example";
    CHECK(fixture_start(&fx) == 0);
    static const char *const hosts[] = {"Host: localhost:8089\r\n", "Host: 127.0.0.1\r\n",
                                        "Host: [::1]:8089\r\n", "Host: OR1.example:8089\r\n",
                                        "Host: or2.example\r\n"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(*hosts); i++)
        CHECK_MSG(raw_status("GET", "/api/v1/pipelines", hosts[i], NULL) == 200, "%s", hosts[i]);
    CHECK_EQ(raw_status("GET", "/api/v1/pipelines", "Host: or3.example\r\n", NULL), 421);
    fixture_stop(&fx);
}

/* A form on another site posting to the recording. */
static void cross_origin_change_is_refused(void)
{
    start();
    static const char *const origins[] = {"http://evil.example", "null",
                                          "http://127.0.0.1:1"};
    for (size_t i = 0; i < sizeof(origins) / sizeof(*origins); i++) {
        char h[256];
        snprintf(h, sizeof(h), "Origin: %s\r\nContent-Type: application/json\r\n", origins[i]);
        CHECK_MSG(raw_status("POST", "/api/v1/pipelines/cam1/recording", h,
                             "{\"action\": \"start\"}") == 403, "%s", origins[i]);
    }
    fixture_stop(&fx);
}

/* The status page's own requests, and tools that send no Origin. */
static void same_origin_change_passes(void)
{
    start();
    char h[256];
    snprintf(h, sizeof(h), "Origin: http://127.0.0.1:%d\r\nContent-Type: application/json\r\n",
             fx.port);
    CHECK_EQ(raw_status("PATCH", "/api/v1/pipelines/cam1", h, "{\"alpha\": 0.2}"), 200);
    CHECK_EQ(raw_status("PATCH", "/api/v1/pipelines/cam1", "Content-Type: application/json\r\n",
                        "{\"alpha\": 0.3}"), 200);
    CHECK(fx.d.pipes->rt.alpha == 0.3f);
    fixture_stop(&fx);
}

/* What a cross-site form can send without asking first: text/plain. */
static void body_must_be_json(void)
{
    start();
    static const char *const types[] = {"Content-Type: text/plain\r\n",
                                        "Content-Type: application/x-www-form-urlencoded\r\n",
                                        "Content-Type: multipart/form-data; boundary=x\r\n", ""};
    for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
        CHECK_MSG(raw_status("POST", "/api/v1/pipelines/cam1/recording", types[i],
                             "{\"action\": \"start\"}") == 415, "'%s'", types[i]);
    CHECK_EQ(raw_status("PATCH", "/api/v1/pipelines/cam1",
                        "Content-Type: Application/JSON; charset=utf-8\r\n", "{\"alpha\": 0.2}"),
             200);
    fixture_stop(&fx);
}

/* ---- bodies: one JSON object, all of it ---- */

static void junk_after_json_is_refused(void)
{
    start();
    float before = fx.d.pipes->rt.alpha;
    static const char *const bodies[] = {"{\"alpha\": 0.1} x",
                                         "{\"alpha\": 0.1}{\"style\": \"mask\"}",
                                         "{\"alpha\": 0.1}]", "{\"alpha\": 0.1"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(*bodies); i++) {
        int status;
        struct json_object *o = get_json("PATCH", "/api/v1/pipelines/cam1", bodies[i], &status);
        CHECK_MSG(status == 400, "%s: %d", bodies[i], status);
        CHECK_MSG(strstr(str_at(o, "error"), "not JSON"), "%s", str_at(o, "error"));
        json_object_put(o);
    }
    CHECK(fx.d.pipes->rt.alpha == before);
    fixture_stop(&fx);
}

static void nul_in_body_is_refused(void)
{
    start();
    float before = fx.d.pipes->rt.alpha;
    static const char a[] = "{\"alpha\": 0.1}\0{\"alpha\": 0.9}", b[] = "{\"alpha\": 0.1\0}";
    const char *const bodies[] = {a, b};
    const size_t lens[] = {sizeof(a) - 1, sizeof(b) - 1};
    for (int i = 0; i < 2; i++) {
        char *out;
        CHECK_EQ(raw("PATCH", "/api/v1/pipelines/cam1", "Content-Type: application/json\r\n",
                     bodies[i], lens[i], &out), 400);
        CHECK_MSG(strstr(out, "NUL"), "%s", out);
        free(out);
    }
    CHECK(fx.d.pipes->rt.alpha == before);
    fixture_stop(&fx);
}

/* An escaped NUL would cut the C string taken from it: "outline\u0000x"
 * acted on as "outline". Refused, in a value and in a key. */
static void escaped_nul_is_refused(void)
{
    start();
    int status;
    const char *const bodies[] = {"{\"style\": \"outline\\u0000; junk\"}",
                                  "{\"alpha\\u0000x\": 0.9}",
                                  "{\"style\": \"fill\", \"color\": \"ff0000\\u0000zz\"}"};
    for (int i = 0; i < 3; i++) {
        struct json_object *o = get_json("PATCH", "/api/v1/pipelines/cam1", bodies[i], &status);
        CHECK_MSG(status == 400 && strstr(str_at(o, "error"), "NUL"), "%s: %d %s", bodies[i],
                  status, str_at(o, "error"));
        json_object_put(o);
    }
    CHECK(fx.d.pipes->rt.alpha != 0.9f);
    fixture_stop(&fx);
}

/* An escaped backslash before "u0000" is no NUL: the text passes. */
static void escaped_backslash_before_u0000_passes(void)
{
    start();
    int status;
    struct json_object *o = get_json("PATCH", "/api/v1/pipelines/cam1",
                                     "{\"alpha\": 0.3, \"style\": \"\\\\u0000\"}", &status);
    /* Not a style, but refused as one, not as a NUL. */
    CHECK_MSG(status == 400 && !strstr(str_at(o, "error"), "NUL"), "%d %s", status,
              str_at(o, "error"));
    json_object_put(o);
    o = get_json("PATCH", "/api/v1/pipelines/cam1", "{\"alpha\": 0.3}", &status);
    CHECK_EQ(status, 200);
    json_object_put(o);
    fixture_stop(&fx);
}

/* A path that is not UTF-8 is named in the 404 with '?' for its bad
 * bytes: the answer stays JSON. */
static void a_path_that_is_not_utf8_is_shown_as_text(void)
{
    start();
    char *out;
    CHECK_EQ(raw("GET", "/\xff\xfe\xc3x", NULL, NULL, 0, &out), 404);
    CHECK_MSG(strstr(out, "not found: /???x") && !strchr(out, '\xff'), "%s", out);
    free(out);
    fixture_stop(&fx);
}

/* UTF-8 in a path is shown as it came. */
static void a_utf8_path_is_shown_whole(void)
{
    start();
    char *out;
    CHECK_EQ(raw("GET", "/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x94\xa7", NULL, NULL, 0, &out), 404);
    CHECK_MSG(strstr(out, "not found: /caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x94\xa7"), "%s", out);
    free(out);
    fixture_stop(&fx);
}

/* Blanks and a line end after the object are no junk. */
static void blanks_after_json_pass(void)
{
    start();
    int status;
    struct json_object *o =
        get_json("PATCH", "/api/v1/pipelines/cam1", "{\"alpha\": 0.2}\r\n \t", &status);
    CHECK_EQ(status, 200);
    CHECK(fx.d.pipes->rt.alpha == 0.2f);
    json_object_put(o);
    fixture_stop(&fx);
}

/* ---- HEAD ---- */

static long content_length(void)
{
    const char *cl = strcasestr(fx.head, "\r\nContent-Length:");
    return cl ? strtol(cl + 17, NULL, 10) : -1;
}

static void head_answers_like_get(void)
{
    start();
    static const char *const paths[] = {"/healthz", "/metrics", "/", "/api/v1/pipelines",
                                        "/api/v1/pipelines/cam1"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
        char *out;
        int get = raw("GET", paths[i], NULL, NULL, 0, &out);
        long len = content_length();
        free(out);
        int head = raw("HEAD", paths[i], NULL, NULL, 0, &out);
        CHECK_MSG(head == get && get != 405, "%s: HEAD %d, GET %d", paths[i], head, get);
        CHECK_MSG(!out[0], "%s: HEAD sent a body", paths[i]);
        /* The metrics' uptime may gain a digit between the two. */
        CHECK_MSG(labs(content_length() - len) <= 1 && len > 0, "%s: Content-Length %ld, GET %ld",
                  paths[i], content_length(), len);
        free(out);
    }
    fixture_stop(&fx);
}

/* HEAD stands for GET only. */
static void head_on_other_routes_is_405(void)
{
    start();
    char *out;
    CHECK_EQ(raw("HEAD", "/api/v1/pipelines/cam1/recording", NULL, NULL, 0, &out), 405);
    CHECK(strcasestr(fx.head, "\r\nAllow: POST\r\n"));
    free(out);
    fixture_stop(&fx);
}

/* The status page's buttons: the style now in force pressed, recording
 * disabled without record_dir; its script and style let in by hash alone. */
static void status_page_buttons(void)
{
    start();
    int status;
    struct json_object *o = get_json("PATCH", "/api/v1/pipelines/cam1",
                                     "{\"style\": \"mask\"}", &status);
    CHECK_EQ(status, 200);
    json_object_put(o);
    char *page;
    CHECK_EQ(raw("GET", "/", NULL, NULL, 0, &page), 200);
    CHECK(strstr(page, "data-style=\"mask\" aria-pressed=\"true\">mask</button>"));
    CHECK(strstr(page, "data-style=\"fill\" aria-pressed=\"false\">fill</button>"));
    CHECK(strstr(page, "data-style=\"outline\" aria-pressed=\"false\""));
    CHECK(strstr(page, "data-style=\"off\" aria-pressed=\"false\""));
    CHECK(strstr(page, "aria-label=\"Recording not configured (cam1)\" disabled>"));
    CHECK(strstr(page, "<canvas class=\"chart\""));
    CHECK_MSG(!strstr(page, "<script src") && !strstr(page, " style=\""),
              "an external script or a style attribute the CSP would block");
    CHECK(strcasestr(fx.head, "\r\nContent-Security-Policy: default-src 'none'; script-src "
                              "'sha256-"));
    CHECK(strstr(fx.head, "frame-ancestors 'none'"));
    CHECK(!strstr(fx.head, "unsafe-inline"));
    CHECK(strcasestr(fx.head, "\r\nX-Frame-Options: DENY\r\n"));
    CHECK(strcasestr(fx.head, "\r\nReferrer-Policy: no-referrer\r\n"));
    free(page);
    fixture_stop(&fx);
}

MMS_TESTS(T(status_is_json), T(healthz_is_unhealthy_with_reasons), T(settings_change),
          T(bad_json_is_refused), T(unknown_setting_is_refused), T(startup_setting_is_refused),
          T(unknown_paths_and_methods), T(recording_without_record_dir_is_refused),
          T(healthz_hides_credentials), T(status_hides_credentials),
          T(status_page_hides_credentials), T(plain_urls_are_shown_whole), T(status_page_buttons),
          T(foreign_host_is_refused), T(own_hosts_are_accepted),
          T(cross_origin_change_is_refused), T(same_origin_change_passes), T(body_must_be_json),
          T(junk_after_json_is_refused), T(nul_in_body_is_refused), T(blanks_after_json_pass),
          T(escaped_nul_is_refused), T(escaped_backslash_before_u0000_passes),
          T(a_path_that_is_not_utf8_is_shown_as_text), T(a_utf8_path_is_shown_whole),
          T(head_answers_like_get), T(head_on_other_routes_is_405))
