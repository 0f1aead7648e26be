/* The HTTP API: health, metrics, the pipelines as JSON, recording control,
 * runtime settings, the previews and the status page. Runs on the loop
 * thread; the pipelines are only read (atomics and snapshots) or asked to
 * change (flags), so no request can hold up a frame. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/redact.h"
#include "core/utf8.h"
#include "daemon/internal.h"
#include "daemon/preview.h"

#define API_PREFIX "/api/v1/pipelines"
#define PREVIEW_PREFIX "/preview/"

static int send_json(struct mmsd_http_response *res, int status, struct json_object *o)
{
    if (!o)
        return -ENOMEM;
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    mmsd_http_res_status(res, status);
    mmsd_http_res_content_type(res, "application/json");
    mmsd_http_res_header(res, "Cache-Control", "no-store");
    int rc = s ? mmsd_http_res_printf(res, "%s\n", s) : -ENOMEM;
    json_object_put(o);
    return rc;
}

/* A JSON string of text from outside (a request's path, a file name, an
 * FFmpeg message): bytes that are not UTF-8 become '?', or the answer
 * would not be JSON at all. */
static struct json_object *json_text(const char *s)
{
    char *t = mms_utf8_dup(s);
    struct json_object *o = t ? json_object_new_string(t) : NULL;
    free(t);
    return o;
}

static int send_error(struct mmsd_http_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int send_error(struct mmsd_http_response *res, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct json_object *o = json_object_new_object();
    if (o)
        json_object_object_add(o, "error", json_text(msg));
    return send_json(res, status, o);
}

static int not_allowed(struct mmsd_http_response *res, const char *allow)
{
    mmsd_http_res_header(res, "Allow", allow);
    return send_error(res, 405, "method not allowed (allowed: %s)", allow);
}

/* ------------------------------------------------------------ JSON views */

static void add_str(struct json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_text(v) : NULL);
}

/* A source's or output's URL, as core/redact.h shows it. */
static void add_url(struct json_object *o, const char *k, const char *url)
{
    char shown[1024];
    if (url)
        mms_redact_url(url, shown, sizeof(shown));
    add_str(o, k, url ? shown : NULL);
}

static void add_int(struct json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_num(struct json_object *o, const char *k, double v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.3f", v);
    /* Three decimals print as written, not as the double's full expansion. */
    json_object_object_add(o, k, json_object_new_double_s(v, buf));
}

static struct json_object *recording_json(const struct mmsd_pipe_view *v)
{
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "enabled", json_object_new_boolean(v->pipe->conf.o.record_dir != NULL));
    json_object_object_add(r, "recording", json_object_new_boolean(v->rec.recording));
    add_str(r, "dir", v->pipe->conf.o.record_dir);
    add_str(r, "file", v->rec.file);
    add_int(r, "segments", v->rec.segments);
    add_int(r, "frames", v->rec.frames);
    add_int(r, "bytes", v->rec.bytes);
    add_int(r, "errors", v->rec.errors);
    add_str(r, "error", v->rec.error);
    json_object_object_add(r, "retrying", json_object_new_boolean(v->rec.retrying));
    add_int(r, "retry_in_ms", v->rec.retry_in_ms);
    /* Why a stop given now might not outlive a restart of mmsd. */
    add_str(r, "state_error", mmsd_state_error(v->pipe->d));
    return r;
}

static struct json_object *settings_json(const struct mmsd_pipe *pp)
{
    struct json_object *s = json_object_new_object();
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++) {
        if (!opt->runtime)
            continue;
        char v[64];
        mms_option_format(&pp->rt, opt, v, sizeof(v));
        /* Numbers as JSON numbers, the rest in the option's own syntax. */
        if (opt->type == MMS_OPT_INT)
            add_int(s, opt->name, strtoll(v, NULL, 10));
        else if (opt->type == MMS_OPT_FLOAT)
            add_num(s, opt->name, strtod(v, NULL));
        else
            add_str(s, opt->name, v);
    }
    return s;
}

/* What the pipeline runs as: the mode set, or for auto what the source
 * turned out to be; NULL while an auto pipeline has no source yet. */
static const char *effective_mode(const struct mmsd_pipe_view *v)
{
    if (v->have)
        return v->c.live ? "live" : "offline";
    int mode = v->pipe->conf.o.mode;
    return mode == MMS_MODE_LIVE ? "live" : mode == MMS_MODE_OFFLINE ? "offline" : NULL;
}

static const char *output_state(enum mms_writer_state s)
{
    return s == MMS_WRITER_UP        ? "up"
           : s == MMS_WRITER_STALLED ? "stalled"
           : s == MMS_WRITER_CLOSED  ? "closed"
                                     : "down";
}

/* Each output, the window and the recording, in the order configured. */
static struct json_object *outputs_json(const struct mmsd_pipe_view *v)
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < v->c.noutputs; i++) {
        const struct mms_writer_status *st = &v->c.outputs[i];
        struct json_object *o = json_object_new_object();
        add_str(o, "output", st->name);
        add_str(o, "state", output_state(st->state));
        add_int(o, "written", st->written);
        add_int(o, "dropped", st->dropped);
        add_int(o, "errors", st->errors);
        add_int(o, "reopens", st->reopens);
        add_int(o, "stalls", st->stalls);
        if (st->state != MMS_WRITER_UP)
            add_str(o, "reason", st->reason);
        json_object_array_add(a, o);
    }
    return a;
}

static struct json_object *pipe_json(struct mmsd *d, struct mmsd_pipe *pp)
{
    struct mmsd_pipe_view v;
    mmsd_pipe_view(d, pp, 1, &v);
    struct json_object *o = json_object_new_object(), *reasons = json_object_new_array();
    add_str(o, "name", pp->conf.name);
    add_str(o, "state", v.state);
    json_object_object_add(o, "healthy", json_object_new_boolean(v.healthy));
    for (int i = 0; i < v.nreasons; i++)
        json_object_array_add(reasons, json_text(v.reasons[i]));
    json_object_object_add(o, "reasons", reasons);
    add_url(o, "input", pp->conf.o.input);
    char mode[16];
    mms_option_format(&pp->conf.o, mms_option_find("mode"), mode, sizeof(mode));
    add_str(o, "mode", mode);
    add_str(o, "effective_mode", effective_mode(&v));
    add_str(o, "model", pp->model);
    if (v.have && v.c.precision) {
        struct json_object *pr = json_object_new_object();
        add_str(pr, "used", v.c.precision);
        add_str(pr, "why", v.c.precision_why);
        json_object_object_add(o, "precision", pr);
        struct json_object *tta = json_object_new_object();
        add_str(tta, "used", v.c.flip ? "flip" : "off");
        add_str(tta, "why", v.c.tta_why);
        json_object_object_add(o, "tta", tta);
    }
    struct json_object *src = json_object_new_object();
    add_int(src, "width", v.c.width);
    add_int(src, "height", v.c.height);
    add_num(src, "fps", v.c.frame_rate);
    json_object_object_add(src, "signal", json_object_new_boolean(v.have && v.c.signal));
    json_object_object_add(o, "source", src);
    json_object_object_add(o, "settings", settings_json(pp));
    struct json_object *st = json_object_new_object();
    add_int(st, "decoded", v.c.decoded);
    add_int(st, "inferred", v.c.inferred);
    add_int(st, "dropped", v.c.dropped);
    add_int(st, "skipped", v.c.skipped);
    add_int(st, "written", v.c.written);
    add_int(st, "reconnects", v.c.reconnects);
    add_int(st, "decode_errors", v.c.decode_errors);
    add_int(st, "output_errors", v.c.sink_errors);
    add_int(st, "output_reopens", v.c.sink_reopens);
    add_int(st, "outputs_down", v.c.sinks_down);
    add_int(st, "output_stalls", v.c.sink_stalls);
    add_int(st, "encoders", v.c.encoders);
    add_int(st, "inference_errors", v.c.inference_errors);
    add_num(st, "fps", v.c.fps);
    json_object_object_add(o, "stats", st);
    json_object_object_add(o, "outputs", outputs_json(&v));
    json_object_object_add(o, "recording", recording_json(&v));
    struct json_object *lat = json_object_new_object();
    for (int s = 0; s < MMS_STAGE_COUNT && v.have; s++) {
        if (!v.lat[s].count)
            continue;
        struct json_object *l = json_object_new_object();
        add_num(l, "p50", v.lat[s].p50);
        add_num(l, "p95", v.lat[s].p95);
        add_num(l, "p99", v.lat[s].p99);
        add_num(l, "max", v.lat[s].max);
        add_int(l, "count", v.lat[s].count);
        json_object_object_add(lat, mms_stage_name(s), l);
    }
    json_object_object_add(o, "latency_ms", lat);
    add_int(o, "preview_viewers",
            pp->preview ? mmsd_preview_viewers(pp->preview) : 0);
    return o;
}

/* ------------------------------------------------------------ routes */

/* HEAD is GET without the body, which the server leaves out. */
static int is_get(const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

static int healthz(struct mmsd *d, struct mmsd_http_response *res)
{
    struct json_object *o = json_object_new_object(), *reasons = json_object_new_array(),
                       *pipes = json_object_new_object();
    int ok = d->ready && !d->stopping;
    if (!d->ready && !d->stopping)
        json_object_array_add(reasons, json_object_new_string("mmsd: warming up"));
    if (d->stopping)
        json_object_array_add(reasons, json_object_new_string("mmsd: stopping"));
    /* Every recording is held off until someone looks: that needs an alert. */
    if (d->state_unread[0]) {
        char line[sizeof(d->state_unread) + 8];
        snprintf(line, sizeof(line), "mmsd: %s", d->state_unread);
        json_object_array_add(reasons, json_text(line));
        ok = 0;
    }
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next) {
        struct mmsd_pipe_view v;
        mmsd_pipe_view(d, pp, 0, &v);
        struct json_object *po = json_object_new_object();
        add_str(po, "state", v.state);
        add_num(po, "fps", v.c.fps);
        add_int(po, "written", v.c.written);
        json_object_object_add(pipes, pp->conf.name, po);
        ok &= v.healthy;
        for (int i = 0; i < v.nreasons; i++) {
            char line[700];
            snprintf(line, sizeof(line), "%s: %s", pp->conf.name, v.reasons[i]);
            json_object_array_add(reasons, json_text(line));
        }
    }
    add_str(o, "status", ok ? "ok" : "unhealthy");
    json_object_object_add(o, "reasons", reasons);
    json_object_object_add(o, "pipelines", pipes);
    return send_json(res, ok ? 200 : 503, o);
}

static int list_pipelines(struct mmsd *d, struct mmsd_http_response *res)
{
    struct json_object *o = json_object_new_object(), *a = json_object_new_array();
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        json_object_array_add(a, pipe_json(d, pp));
    json_object_object_add(o, "pipelines", a);
    return send_json(res, 200, o);
}

/* The body as one JSON value and nothing after it but blanks; NULL with
 * *why otherwise. */
static struct json_object *parse_whole(const char *body, size_t len, const char **why)
{
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        *why = "out of memory";
        return NULL;
    }
    struct json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o) {
        *why = e == json_tokener_continue ? "it ends too soon" : json_tokener_error_desc(e);
        return NULL;
    }
    if (end + strspn(body + end, " \t\r\n") != len) {
        json_object_put(o);
        *why = "there is more after the JSON value";
        return NULL;
    }
    return o;
}

/* A JSON object whose values are strings, numbers or booleans. */
/* Whether a JSON text escapes a NUL (\u0000): json-c keeps it, but the C
 * strings taken from it end there, so "stop\u0000junk" would act as
 * "stop". A backslash outside a string is no JSON, so no string state
 * is needed: each escape is stepped over whole. */
static int escapes_nul(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < len && !memcmp(s + i + 2, "0000", 4))
            return 1;
        i++;
    }
    return 0;
}

static int parse_body_object(const struct mmsd_http_request *req, struct mmsd_http_response *res,
                             struct json_object **out)
{
    size_t len;
    const char *body = mmsd_http_req_body(req, &len), *why;
    *out = NULL;
    if (!len)
        return send_error(res, 400, "a JSON object is required in the body"), -1;
    /* A parser that stops at a NUL would act on half of what was sent. */
    if (memchr(body, '\0', len))
        return send_error(res, 400, "the body is not JSON: it holds a NUL byte"), -1;
    if (escapes_nul(body, len))
        return send_error(res, 400, "the body holds an escaped NUL (\\u0000)"), -1;
    struct json_object *o = parse_whole(body, len, &why);
    if (!o)
        return send_error(res, 400, "the body is not JSON: %s", why), -1;
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return send_error(res, 400, "the body must be a JSON object"), -1;
    }
    *out = o;
    return 0;
}

static int patch_pipeline(struct mmsd_pipe *pp, const struct mmsd_http_request *req,
                          struct mmsd_http_response *res)
{
    struct json_object *o;
    if (parse_body_object(req, res, &o))
        return 0;
    const char *keys[16], *values[16];
    int n = 0;
    json_object_object_foreach(o, key, val)
    {
        if (n == 16) {
            json_object_put(o);
            return send_error(res, 400, "at most 16 settings at once");
        }
        enum json_type t = json_object_get_type(val);
        if (t != json_type_string && t != json_type_int && t != json_type_double &&
            t != json_type_boolean) {
            /* key is o's: answer before letting go of it. */
            int rc = send_error(res, 400, "%s: the value must be a string or a number", key);
            json_object_put(o);
            return rc;
        }
        keys[n] = key;
        values[n++] = json_object_get_string(val);
    }
    if (!n) {
        json_object_put(o);
        return send_error(res, 400, "no settings given");
    }
    struct mms_err err;
    int rc = mmsd_pipe_set(pp, keys, values, n, &err);
    json_object_put(o);
    if (rc)
        return send_error(res, 400, "%s", err.msg);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "settings", settings_json(pp));
    return send_json(res, 200, r);
}

/* ------------------------------------------------------------ saving */

/* A client told "stopped" must be able to rely on it across a crash of
 * mmsd a moment later: the answer waits until the stops it changed are
 * on disk (daemon/state.h), or a slow state_dir has had this long. */
#define SAVE_WAIT_MS 2000

struct mmsd_saving_answer {
    struct mmsd_saving_answer *next;
    struct mmsd_http_held *hd;
    struct json_object *body;
    unsigned long long seq; /* the writer's set with this change */
    uint64_t since;
};

/* Sends the held answer with the save's outcome (NULL: saved) and frees it. */
static void saving_answer(struct mmsd *d, struct mmsd_saving_answer *a, const char *save_error)
{
    json_object_object_add(a->body, "saved", json_object_new_boolean(!save_error));
    add_str(a->body, "save_error", save_error);
    add_str(a->body, "state_error", mmsd_state_error(d));
    send_json(mmsd_http_held_response(a->hd), 200, a->body);
    mmsd_http_held_send(a->hd); /* -EPIPE: the client left; nothing to tell */
    free(a);
}

static void saving_pop(struct mmsd *d)
{
    d->saving = d->saving->next;
    if (!d->saving)
        d->saving_tail = &d->saving;
}

static void saving_timer_update(struct mmsd *d);

static void on_saving_timeout(uv_timer_t *t)
{
    struct mmsd *d = t->data;
    uint64_t now = uv_now(d->loop);
    while (d->saving && now - d->saving->since >= SAVE_WAIT_MS) {
        struct mmsd_saving_answer *a = d->saving;
        saving_pop(d);
        saving_answer(d, a, "the state file is still being written (a slow or hung "
                            "state_dir): until it is, a restart of mmsd would forget this");
    }
    saving_timer_update(d);
}

static void saving_timer_update(struct mmsd *d)
{
    if (!d->saving) {
        uv_timer_stop(&d->saving_timer);
        return;
    }
    uint64_t age = uv_now(d->loop) - d->saving->since;
    uv_timer_start(&d->saving_timer, on_saving_timeout, age < SAVE_WAIT_MS ? SAVE_WAIT_MS - age : 0,
                   0);
}

void mmsd_api_saves_settled(struct mmsd *d)
{
    if (!d->saving_tail || d->closed) /* not started, or every answer has gone */
        return;
    /* Sets are written in the order given, so the settled ones lead. */
    while (d->saving && d->saving->seq <= d->state.settled) {
        struct mmsd_saving_answer *a = d->saving;
        saving_pop(d);
        saving_answer(d, a, d->state.error[0] ? d->state.error : NULL);
    }
    saving_timer_update(d);
}

void mmsd_api_answer_saving(struct mmsd *d)
{
    while (d->saving) {
        struct mmsd_saving_answer *a = d->saving;
        saving_pop(d);
        saving_answer(d, a, "mmsd is stopping before the state file was written; it is "
                            "written before mmsd exits");
    }
    uv_timer_stop(&d->saving_timer);
}

/* Answers now when there is nothing to wait for (no state_dir, no write
 * was started: seq 0, or none could be), else once the write with set
 * `seq` is settled. Takes r. */
static int answer_when_saved(struct mmsd *d, struct mmsd_http_response *res,
                             struct json_object *r, unsigned long long seq)
{
    const char *why = !d->state.dir         ? "no state_dir is configured: the change lasts until "
                                              "mmsd restarts"
                      : !seq                 ? "cannot save the recording stops: out of memory"
                                             : NULL;
    struct mmsd_saving_answer *a = NULL;
    if (!why && seq <= d->state.settled) /* the write could not even be queued */
        why = d->state.error[0] ? d->state.error : NULL;
    else if (!why && (!(a = calloc(1, sizeof(*a))) || mmsd_http_res_hold(res, &a->hd) < 0))
        why = "cannot wait for the state file to be written";
    if (!a || !a->hd) {
        free(a);
        json_object_object_add(r, "saved", json_object_new_boolean(!why && d->state.dir));
        add_str(r, "save_error", why);
        return send_json(res, 200, r);
    }
    a->body = r;
    a->seq = seq;
    a->since = uv_now(d->loop);
    *d->saving_tail = a;
    d->saving_tail = &a->next;
    if (!uv_is_active((uv_handle_t *)&d->saving_timer))
        saving_timer_update(d);
    return 0;
}

static int recording(struct mmsd *d, struct mmsd_pipe *pp, const struct mmsd_http_request *req,
                     struct mmsd_http_response *res)
{
    struct json_object *o, *act;
    if (parse_body_object(req, res, &o))
        return 0;
    const char *a = json_object_object_get_ex(o, "action", &act) &&
                            json_object_is_type(act, json_type_string)
                        ? json_object_get_string(act)
                        : "";
    int on = !strcmp(a, "start") ? 1 : !strcmp(a, "stop") ? 0 : -1;
    json_object_put(o);
    if (on < 0)
        return send_error(res, 400, "action must be \"start\" or \"stop\"");
    if (!pp->conf.o.record_dir)
        return send_error(res, 409, "pipeline '%s' has no record_dir: recording is not "
                                    "configured", pp->conf.name);
    struct mms_err err;
    unsigned long long before = d->state.given;
    int rc = mmsd_pipe_record(pp, on, &err);
    if (rc < 0) {
        char why[sizeof(err.msg)];
        mms_redact_text(err.msg, why, sizeof(why));
        return send_error(res, 409, "%s", why);
    }
    struct mmsd_pipe_view v;
    mmsd_pipe_view(d, pp, 0, &v);
    /* Applied with the next frame: report what was asked; not running,
     * what the next start will do ("pending"). */
    v.rec.recording = on;
    if (on)
        v.rec.error[0] = 0;
    struct json_object *r = recording_json(&v);
    if (!r)
        return -ENOMEM;
    json_object_object_add(r, "pending", json_object_new_boolean(rc == 1));
    /* The newest set given has this change; none given: it was not saved. */
    return answer_when_saved(d, res, r, d->state.given > before ? d->state.given : 0);
}

static int pipeline_route(struct mmsd *d, const char *method, const char *rest,
                          const struct mmsd_http_request *req, struct mmsd_http_response *res)
{
    char name[MMSD_PIPELINE_NAME_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!n || n > MMSD_PIPELINE_NAME_MAX)
        return send_error(res, 404, "no such pipeline");
    memcpy(name, rest, n);
    name[n] = 0;
    struct mmsd_pipe *pp = mmsd_find_pipe(d, name);
    if (!pp)
        return send_error(res, 404, "no pipeline '%s'", name);
    if (!slash) {
        if (is_get(method))
            return send_json(res, 200, pipe_json(d, pp));
        if (!strcmp(method, "PATCH"))
            return patch_pipeline(pp, req, res);
        return not_allowed(res, "GET, HEAD, PATCH");
    }
    if (!strcmp(slash, "/recording")) {
        if (!strcmp(method, "POST"))
            return recording(d, pp, req, res);
        return not_allowed(res, "POST");
    }
    return send_error(res, 404, "not found");
}

static int preview_route(struct mmsd *d, const char *method, const char *file,
                         struct mmsd_http_response *res)
{
    char name[MMSD_PIPELINE_NAME_MAX + 1];
    const char *dot = strrchr(file, '.');
    size_t n = dot ? (size_t)(dot - file) : 0;
    int stream = dot && !strcmp(dot, ".mjpeg"), still = dot && !strcmp(dot, ".jpg");
    if (!n || n > MMSD_PIPELINE_NAME_MAX || (!stream && !still))
        return send_error(res, 404, "previews are /preview/NAME.mjpeg and /preview/NAME.jpg");
    memcpy(name, file, n);
    name[n] = 0;
    struct mmsd_pipe *pp = mmsd_find_pipe(d, name);
    if (!pp)
        return send_error(res, 404, "no pipeline '%s'", name);
    if (!is_get(method))
        return not_allowed(res, "GET, HEAD");
    if (!pp->preview)
        return send_error(res, 503, "pipeline '%s' has no preview", name);
    int rc = stream ? mmsd_preview_serve(pp->preview, res) : mmsd_preview_snapshot(pp->preview, res);
    if (rc == -EBUSY)
        return send_error(res, 503, "too many viewers of '%s'", name);
    if (rc == -EUSERS)
        return send_error(res, 503, "too many preview streams open: the other connections are "
                                    "kept for the API");
    if (rc == -EAGAIN)
        return send_error(res, 503, "no frame from '%s' yet", name);
    return rc;
}

int mmsd_api_handle(void *opaque, const struct mmsd_http_request *req,
                    struct mmsd_http_response *res)
{
    struct mmsd *d = opaque;
    const char *method = mmsd_http_req_method(req), *path = mmsd_http_req_path(req);
    int get = is_get(method);
    if (!strcmp(path, "/healthz"))
        return get ? healthz(d, res) : not_allowed(res, "GET, HEAD");
    if (!strcmp(path, "/metrics"))
        return get ? mmsd_metrics_write(d, res) : not_allowed(res, "GET, HEAD");
    if (!strcmp(path, "/") || !strcmp(path, "/index.html"))
        return get ? mmsd_page_write(d, res) : not_allowed(res, "GET, HEAD");
    if (!strcmp(path, API_PREFIX) || !strcmp(path, API_PREFIX "/"))
        return get ? list_pipelines(d, res) : not_allowed(res, "GET, HEAD");
    if (!strncmp(path, API_PREFIX "/", strlen(API_PREFIX "/")))
        return pipeline_route(d, method, path + strlen(API_PREFIX "/"), req, res);
    if (!strncmp(path, PREVIEW_PREFIX, strlen(PREVIEW_PREFIX)))
        return preview_route(d, method, path + strlen(PREVIEW_PREFIX), res);
    return send_error(res, 404, "not found: %s", path);
}

void mmsd_api_http_opts(struct mmsd *d, struct mmsd_http_opts *o)
{
    static const char *const open_paths[] = {"/healthz", NULL};
    *o = (struct mmsd_http_opts){
        .listen = d->cfg.d.listen,
        .handler = mmsd_api_handle,
        .opaque = d,
        .token = d->token,
        .open_paths = open_paths,
        /* Loopback with no token is the default set-up: what keeps other
         * sites' pages out is the browser's Host, Origin and Content-Type. */
        .check_host = 1,
        .allowed_hosts = d->cfg.d.allowed_hosts,
        .body_type = "application/json",
    };
}
