/* mms ctl: drives a running mmsd through its HTTP API. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cli/http_client.h"
#include "core/error.h"
#include "core/redact.h"

/* Beyond args.h's 0/1/2: the daemon could not be asked at all. */
enum { CTL_EXIT_UNREACHABLE = 3 };

#define DEFAULT_URL "http://127.0.0.1:8089"
#define TOKEN_MAX 4096

struct ctl_opts {
    char *url, *token_file, *timeout;
    int json;
};

static int timeout_ms(const char *s, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v <= 0 || v > 86400)
        return -EINVAL;
    *ms = (unsigned)ceil(v * 1000);
    return 0;
}

/* Kept as written, converted once parsed: an exact number of ms. */
static int check_timeout(const struct mms_option *opt, const char *value, void *field,
                         struct mms_err *err)
{
    unsigned ms;
    (void)field;
    return timeout_ms(value, &ms)
               ? mms_opt_invalid(err, opt, value, "not a number of seconds in (0, 86400]")
               : 0;
}

#define OFF(f) offsetof(struct ctl_opts, f)
static const struct mms_option opts[] = {
    {.name = "url", .type = MMS_OPT_STRING, .offset = OFF(url), .arg = "URL",
     .help = "the daemon (default: $MMSD_URL, else " DEFAULT_URL ")"},
    {.name = "token-file", .type = MMS_OPT_STRING, .offset = OFF(token_file), .arg = "FILE",
     .help = "bearer token: FILE's first line (default: $MMSD_TOKEN)"},
    {.name = "json", .type = MMS_OPT_BOOL, .offset = OFF(json),
     .help = "print the daemon's JSON answer as is"},
    {.name = "timeout", .type = MMS_OPT_STRING, .offset = OFF(timeout), .def = "10",
     .parse = check_timeout, .arg = "SEC",
     .help = "give up after SEC seconds, connecting included"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "ctl",
    .usage = "[--url URL] [--token-file FILE] [--json] [--timeout SEC] COMMAND [ARGS]",
    .summary = "control a running mmsd: pipeline status, recording, settings, metrics",
    .details = "Commands:\n"
               "  status [NAME]             the pipelines' state and counters, or NAME's in full\n"
               "  health                    the daemon's health check; exit 0 healthy, 1 not\n"
               "  record NAME start|stop    start or stop recording NAME's annotated video\n"
               "  set NAME KEY=VALUE...     change NAME's settings (style, alpha, color, every,\n"
               "                            smooth)\n"
               "  metrics                   the Prometheus metrics, as is\n\n"
               "Exit status: 0 done, 1 the daemon answered an error, 2 bad usage,\n"
               "3 the daemon could not be reached (refused, timed out, bad URL).",
    .opts = opts,
    .min_operands = 0,
    .max_operands = -1,
};

struct ctl {
    const char *url; /* as given, for messages */
    struct mms_httpc *http;
    char token[TOKEN_MAX]; /* "" for none */
    unsigned timeout_ms;
    bool json;
};

/* ---- text ---- */

/* Daemon strings reach a terminal: no escape sequences, one line. */
static void clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static void appendf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object))
        json_object_object_get_ex(o, key, &v);
    return v;
}

static bool is_num(struct json_object *v)
{
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

static const char *str_or(struct json_object *v, const char *dflt)
{
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

static void fmt_int(char *buf, size_t size, struct json_object *v)
{
    if (json_object_is_type(v, json_type_int))
        snprintf(buf, size, "%" PRId64, json_object_get_int64(v));
    else if (is_num(v))
        snprintf(buf, size, "%.0f", json_object_get_double(v));
    else
        snprintf(buf, size, "-");
}

static void fmt_num(char *buf, size_t size, struct json_object *v, int decimals)
{
    if (is_num(v))
        snprintf(buf, size, "%.*f", decimals, json_object_get_double(v));
    else
        snprintf(buf, size, "-");
}

/* A JSON value for people: strings bare, the rest as JSON. */
static const char *value_text(struct json_object *v)
{
    if (!v)
        return "null";
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

/* "on FILE", "off", "error: MSG", or "-" when recording is not configured. */
static void rec_text(struct json_object *rec, char *buf, size_t size)
{
    struct json_object *enabled = get(rec, "enabled");
    const char *error = str_or(get(rec, "error"), "");
    if (!rec || !json_object_is_type(rec, json_type_object) ||
        (enabled && !json_object_get_boolean(enabled)))
        snprintf(buf, size, "-");
    else if (json_object_get_boolean(get(rec, "recording")))
        snprintf(buf, size, "on %s", str_or(get(rec, "file"), "-"));
    else if (*error)
        snprintf(buf, size, "error: %s", error);
    else
        snprintf(buf, size, "off");
}

/* "key=value key=value" of a flat object, in the daemon's order. */
static void pairs_text(struct json_object *o, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(buf, size, "-");
        return;
    }
    json_object_object_foreach(o, key, val)
        appendf(buf, size, "%s%s=%s", buf[0] ? " " : "", key, value_text(val));
    if (!buf[0])
        snprintf(buf, size, "-");
}

static void print_raw(const struct mms_httpc_response *res)
{
    fwrite(res->body, 1, res->body_len, stdout);
    if (res->body_len && res->body[res->body_len - 1] != '\n')
        putchar('\n');
}

/* ---- talking to the daemon ---- */

/* Sends one request. Returns CLI_GO_ON with res filled whatever the HTTP
 * status, else prints why and returns the exit status. */
static int call(const struct ctl *c, const char *method, const char *path, const char *body,
                struct mms_httpc_response *res)
{
    struct mms_err err = {{0}};
    int ret = mms_httpc_fetch(c->http, method, path, body, res, &err);
    if (ret == -EPROTO || ret == -EFBIG) {
        fprintf(stderr, "mms ctl: %s: %s\n", c->url, err.msg);
        return CTL_EXIT_UNREACHABLE;
    }
    if (ret < 0) {
        fprintf(stderr, "mms ctl: cannot reach mmsd at %s: %s\n", c->url, err.msg);
        return CTL_EXIT_UNREACHABLE;
    }
    return CLI_GO_ON;
}

/* "mms ctl: HTTP 404: <the error the daemon gave>"; returns 1. */
static int http_error(const struct mms_httpc_response *res)
{
    char msg[512] = "";
    struct json_object *o = json_tokener_parse(res->body);
    const char *e = str_or(get(o, "error"), NULL);
    if (e) {
        snprintf(msg, sizeof(msg), "%s", e);
    } else {
        /* Not mmsd's JSON (a proxy's page, plain text): the body's start. */
        snprintf(msg, sizeof(msg), "%.*s", (int)(res->body_len < 300 ? res->body_len : 300),
                 res->body);
    }
    json_object_put(o);
    clean(msg);
    char *s = msg, *end = msg + strlen(msg);
    while (*s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        *--end = '\0';
    fprintf(stderr, "mms ctl: HTTP %d: %s\n", res->status,
            *s ? s : res->reason[0] ? res->reason : "(no message)");
    return ARGS_EXIT_FAIL;
}

/* Sends the request and parses a 2xx answer as a JSON object into *out;
 * with --json prints the answer raw instead (*out stays NULL). */
static int call_json(const struct ctl *c, const char *method, const char *path,
                     const char *body, struct json_object **out)
{
    struct mms_httpc_response res;
    *out = NULL;
    int ret = call(c, method, path, body, &res);
    if (ret != CLI_GO_ON)
        return ret;
    if (res.status < 200 || res.status > 299) {
        ret = http_error(&res);
        goto done;
    }
    if (c->json) {
        print_raw(&res);
        ret = ARGS_EXIT_OK;
        goto done;
    }
    *out = json_tokener_parse(res.body);
    if (!*out || !json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        ret = cli_fail(spec.name, "%s: the answer to %s %s is not a JSON object", c->url,
                       method, path);
        goto done;
    }
    ret = CLI_GO_ON;
done:
    mms_httpc_response_free(&res);
    return ret;
}

/* "/api/v1/pipelines/NAME" + suffix, NAME percent-encoded. */
static int pipeline_path(const char *name, const char *suffix, char *buf, size_t size)
{
    if (!*name)
        return args_usage_error(&spec, "empty pipeline name");
    size_t n = (size_t)snprintf(buf, size, "/api/v1/pipelines/");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (n + 4 >= size)
            return args_usage_error(&spec, "pipeline name too long");
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            buf[n++] = (char)*p;
        else
            n += (size_t)snprintf(buf + n, size - n, "%%%02X", *p);
    }
    buf[n] = '\0';
    if (n + strlen(suffix) >= size)
        return args_usage_error(&spec, "pipeline name too long");
    strcat(buf, suffix);
    return CLI_GO_ON;
}

/* ---- status ---- */

enum { C_NAME, C_STATE, C_FPS, C_DECODED, C_INFERRED, C_DROPPED, C_WRITTEN, C_REC, NCOLS };
static const char *const col_title[NCOLS] = {
    "NAME", "STATE", "FPS", "DECODED", "INFERRED", "DROPPED", "WRITTEN", "REC",
};

static void cell(struct json_object *p, int col, char *buf, size_t size)
{
    struct json_object *stats = get(p, "stats");
    switch (col) {
    case C_NAME: snprintf(buf, size, "%s", str_or(get(p, "name"), "-")); break;
    case C_STATE: snprintf(buf, size, "%s", str_or(get(p, "state"), "-")); break;
    case C_FPS: fmt_num(buf, size, get(stats, "fps"), 1); break;
    case C_DECODED: fmt_int(buf, size, get(stats, "decoded")); break;
    case C_INFERRED: fmt_int(buf, size, get(stats, "inferred")); break;
    case C_DROPPED: fmt_int(buf, size, get(stats, "dropped")); break;
    case C_WRITTEN: fmt_int(buf, size, get(stats, "written")); break;
    default: rec_text(get(p, "recording"), buf, size); break;
    }
    clean(buf);
}

static void print_table(struct json_object *list)
{
    size_t n = json_object_array_length(list);
    int width[NCOLS];
    char buf[1024];
    for (int col = 0; col < NCOLS; col++)
        width[col] = (int)strlen(col_title[col]);
    for (size_t i = 0; i < n; i++)
        for (int col = 0; col < NCOLS; col++) {
            cell(json_object_array_get_idx(list, i), col, buf, sizeof(buf));
            if ((int)strlen(buf) > width[col])
                width[col] = (int)strlen(buf);
        }
    for (size_t i = 0; i <= n; i++) {
        for (int col = 0; col < NCOLS; col++) {
            const char *s = col_title[col];
            if (i) {
                cell(json_object_array_get_idx(list, i - 1), col, buf, sizeof(buf));
                s = buf;
            }
            bool numeric = col >= C_FPS && col <= C_WRITTEN;
            if (col == NCOLS - 1)
                printf("%s\n", s);
            else
                printf(numeric ? "%*s  " : "%-*s  ", width[col], s);
        }
    }
}

static void field(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void field(const char *label, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    clean(buf);
    printf("%-11s %s\n", label, buf);
}

static void print_pipeline(struct json_object *p)
{
    char a[4096], b[64], c[64], d[64], e[64], f[64];
    field("name", "%s", str_or(get(p, "name"), "-"));
    field("state", "%s", str_or(get(p, "state"), "-"));

    a[0] = '\0';
    struct json_object *reasons = get(p, "reasons");
    if (reasons && json_object_is_type(reasons, json_type_array))
        for (size_t i = 0; i < json_object_array_length(reasons); i++)
            appendf(a, sizeof(a), "%s%s", a[0] ? "; " : "",
                    value_text(json_object_array_get_idx(reasons, i)));
    field("reasons", "%s", a[0] ? a : "-");
    field("input", "%s", str_or(get(p, "input"), "-"));
    /* "auto (live)": what was asked and, once the source has opened, what
     * it turned out to be. */
    const char *mode = str_or(get(p, "mode"), "-"), *eff = str_or(get(p, "effective_mode"), NULL);
    if (eff && strcmp(eff, mode))
        field("mode", "%s (%s)", mode, eff);
    else
        field("mode", "%s", mode);
    field("model", "%s", str_or(get(p, "model"), "-"));

    struct json_object *src = get(p, "source"), *w = get(src, "width"), *h = get(src, "height");
    struct json_object *sig = get(src, "signal");
    a[0] = '\0';
    if (is_num(w) && is_num(h)) {
        fmt_int(b, sizeof(b), w);
        fmt_int(c, sizeof(c), h);
        appendf(a, sizeof(a), "%sx%s", b, c);
    }
    if (is_num(get(src, "fps")))
        appendf(a, sizeof(a), "%s%.2f fps", a[0] ? ", " : "",
                json_object_get_double(get(src, "fps")));
    if (sig && json_object_is_type(sig, json_type_boolean))
        appendf(a, sizeof(a), "%s%s", a[0] ? ", " : "",
                json_object_get_boolean(sig) ? "signal" : "no signal");
    field("source", "%s", a[0] ? a : "-");

    pairs_text(get(p, "settings"), a, sizeof(a));
    field("settings", "%s", a);

    struct json_object *st = get(p, "stats");
    fmt_num(b, sizeof(b), get(st, "fps"), 1);
    field("fps", "%s", b);
    fmt_int(b, sizeof(b), get(st, "decoded"));
    fmt_int(c, sizeof(c), get(st, "inferred"));
    fmt_int(d, sizeof(d), get(st, "dropped"));
    fmt_int(e, sizeof(e), get(st, "written"));
    fmt_int(f, sizeof(f), get(st, "skipped"));
    field("frames", "decoded %s, inferred %s, dropped %s, skipped %s, written %s", b, c, d, f,
          e);
    fmt_int(b, sizeof(b), get(st, "reconnects"));
    fmt_int(c, sizeof(c), get(st, "decode_errors"));
    field("errors", "reconnects %s, decode errors %s", b, c);

    struct json_object *rec = get(p, "recording");
    rec_text(rec, a, sizeof(a));
    if (strcmp(a, "-")) {
        fmt_int(b, sizeof(b), get(rec, "segments"));
        fmt_int(c, sizeof(c), get(rec, "errors"));
        appendf(a, sizeof(a), " (segments %s, errors %s)", b, c);
    } else {
        snprintf(a, sizeof(a), "not configured");
    }
    field("recording", "%s", a);

    /* One line per stage, whatever stages the daemon measures. */
    struct json_object *lat = get(p, "latency_ms");
    const char *label = "latency";
    if (lat && json_object_is_type(lat, json_type_object)) {
        json_object_object_foreach(lat, stage, q)
        {
            fmt_num(b, sizeof(b), get(q, "p50"), 1);
            fmt_num(c, sizeof(c), get(q, "p95"), 1);
            fmt_num(d, sizeof(d), get(q, "p99"), 1);
            fmt_num(e, sizeof(e), get(q, "max"), 1);
            field(label, "%s p50 %s, p95 %s, p99 %s, max %s ms", stage, b, c, d, e);
            label = "";
        }
    }
    if (*label)
        field(label, "-");
}

static int cmd_status(const struct ctl *c, int argc, char **argv)
{
    char path[1024] = "/api/v1/pipelines";
    struct json_object *o;
    int ret;
    if (argc > 1)
        return args_usage_error(&spec, "status takes at most one NAME");
    if (argc == 1 && (ret = pipeline_path(argv[0], "", path, sizeof(path))) != CLI_GO_ON)
        return ret;
    if ((ret = call_json(c, "GET", path, NULL, &o)) != CLI_GO_ON)
        return ret;
    if (argc == 1) {
        print_pipeline(o);
    } else {
        struct json_object *list = get(o, "pipelines");
        if (!list || !json_object_is_type(list, json_type_array)) {
            json_object_put(o);
            return cli_fail(spec.name, "%s: the answer has no \"pipelines\" list", c->url);
        }
        print_table(list);
    }
    json_object_put(o);
    return ARGS_EXIT_OK;
}

/* ---- the other commands ---- */

static int cmd_record(const struct ctl *c, int argc, char **argv)
{
    char path[1024], text[4096];
    struct json_object *o;
    int ret;
    if (argc != 2)
        return args_usage_error(&spec, "record: %s; expected record NAME start|stop",
                                argc < 2 ? "missing arguments" : "too many arguments");
    if (strcmp(argv[1], "start") && strcmp(argv[1], "stop"))
        return args_usage_error(&spec, "record: '%s' is neither start nor stop", argv[1]);
    if ((ret = pipeline_path(argv[0], "/recording", path, sizeof(path))) != CLI_GO_ON)
        return ret;
    struct json_object *body = json_object_new_object();
    json_object_object_add(body, "action", json_object_new_string(argv[1]));
    ret = call_json(c, "POST", path, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
                    &o);
    json_object_put(body);
    if (ret != CLI_GO_ON)
        return ret;
    rec_text(o, text, sizeof(text));
    clean(text);
    printf("%s: recording %s\n", argv[0], text);
    /* Done, but a restart of mmsd may undo it: a stop made for privacy
     * must not look kept when it is not. */
    struct json_object *saved = get(o, "saved"), *why = get(o, "save_error");
    if (saved && !json_object_get_boolean(saved) && json_object_is_type(why, json_type_string)) {
        snprintf(text, sizeof(text), "%s", json_object_get_string(why));
        clean(text);
        fprintf(stderr, "mms ctl: %s: not saved: %s\n", argv[0], text);
    }
    json_object_put(o);
    return ARGS_EXIT_OK;
}

static int cmd_set(const struct ctl *c, int argc, char **argv)
{
    char path[1024], text[4096];
    struct json_object *o, *body = NULL;
    int ret;
    if (argc < 2)
        return args_usage_error(&spec, "set: missing arguments; expected set NAME KEY=VALUE...");
    if ((ret = pipeline_path(argv[0], "", path, sizeof(path))) != CLI_GO_ON)
        return ret;
    body = json_object_new_object();
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            ret = args_usage_error(&spec, "set: '%s' is not KEY=VALUE", argv[i]);
            goto fail;
        }
        *eq = '\0';
        if (get(body, argv[i])) {
            ret = args_usage_error(&spec, "set: %s given twice", argv[i]);
            goto fail;
        }
        /* Strings whatever the value: the daemon parses settings as it
         * parses its config file, so "0.5" and 0.5 mean the same to it. */
        json_object_object_add(body, argv[i], json_object_new_string(eq + 1));
    }
    ret = call_json(c, "PATCH", path, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
                    &o);
    if (ret != CLI_GO_ON)
        goto fail;
    pairs_text(get(o, "settings"), text, sizeof(text));
    clean(text);
    printf("%s: settings %s\n", argv[0], text);
    json_object_put(o);
    ret = ARGS_EXIT_OK;
fail:
    json_object_put(body);
    return ret;
}

/* health and metrics print the body as is. health is the one command
 * whose non-2xx answer (503) is a result, not an error. */
static int cmd_plain(const struct ctl *c, const char *what, int argc, const char *path)
{
    struct mms_httpc_response res;
    if (argc)
        return args_usage_error(&spec, "%s takes no arguments", what);
    int ret = call(c, "GET", path, NULL, &res);
    if (ret != CLI_GO_ON)
        return ret;
    bool health = !strcmp(what, "health");
    if (res.status / 100 == 2 || (health && res.status == 503)) {
        print_raw(&res);
        ret = res.status / 100 == 2 ? ARGS_EXIT_OK : ARGS_EXIT_FAIL;
    } else {
        ret = http_error(&res);
    }
    mms_httpc_response_free(&res);
    return ret;
}

/* ---- options ---- */

/* Drops trailing whitespace; a token must then be one visible word. */
static int set_token(struct ctl *c, const char *src, const char *from)
{
    size_t n = strlen(src);
    while (n && isspace((unsigned char)src[n - 1]))
        n--;
    if (!n)
        return args_usage_error(&spec, "%s: empty token", from);
    if (n >= sizeof(c->token))
        return args_usage_error(&spec, "%s: token too long", from);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7f)
            return args_usage_error(&spec, "%s: the token holds spaces or control characters",
                                    from);
    memcpy(c->token, src, n);
    c->token[n] = '\0';
    return CLI_GO_ON;
}

static int read_token(struct ctl *c, const char *file)
{
    char line[TOKEN_MAX + 2];
    FILE *f = fopen(file, "r");
    if (!f)
        return args_usage_error(&spec, "--token-file %s: %s", file, strerror(errno));
    bool got = fgets(line, sizeof(line), f) != NULL;
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr)
        return args_usage_error(&spec, "--token-file %s: %s", file, strerror(rerr));
    if (!got)
        line[0] = '\0';
    if (!strchr(line, '\n') && strlen(line) > TOKEN_MAX)
        return args_usage_error(&spec, "--token-file %s: token too long", file);
    char *nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    char from[PATH_MAX + 16];
    snprintf(from, sizeof(from), "--token-file %s", file);
    return set_token(c, line, from);
}

static int ctl(const struct args *a, const struct ctl_opts *o)
{
    struct ctl c = {0};
    int ret = CLI_GO_ON;
    c.json = o->json;
    timeout_ms(o->timeout, &c.timeout_ms); /* checked by its hook */
    if (!a->noperands)
        return args_usage_error(&spec, "missing COMMAND (status, health, record, set, metrics)");

    const char *cmd = a->operands[0];
    int nargs = a->noperands - 1;
    char **args = a->operands + 1;
    enum { STATUS, HEALTH, RECORD, SET, METRICS } which;
    if (!strcmp(cmd, "status"))
        which = STATUS;
    else if (!strcmp(cmd, "health"))
        which = HEALTH;
    else if (!strcmp(cmd, "record"))
        which = RECORD;
    else if (!strcmp(cmd, "set"))
        which = SET;
    else if (!strcmp(cmd, "metrics"))
        which = METRICS;
    else
        return args_usage_error(&spec, "unknown command '%s'", cmd);

    const char *file = o->token_file, *env = getenv("MMSD_TOKEN");
    if (file)
        ret = read_token(&c, file);
    else if (env && *env)
        ret = set_token(&c, env, "MMSD_TOKEN");
    if (ret != CLI_GO_ON)
        return ret;

    const char *url = o->url;
    if (!url)
        url = getenv("MMSD_URL");
    c.url = url && *url ? url : DEFAULT_URL;
    struct mms_err err = {{0}};
    if (mms_httpc_open(&c.http, c.url, c.token[0] ? c.token : NULL, c.timeout_ms, &err) < 0) {
        /* Refused most likely for holding a user, password or query. */
        char shown[1024];
        mms_redact_url(c.url, shown, sizeof(shown));
        fprintf(stderr, "mms ctl: URL '%s': %s\n", shown, err.msg);
        return CTL_EXIT_UNREACHABLE;
    }

    switch (which) {
    case STATUS: ret = cmd_status(&c, nargs, args); break;
    case HEALTH: ret = cmd_plain(&c, "health", nargs, "/healthz"); break;
    case RECORD: ret = cmd_record(&c, nargs, args); break;
    case SET: ret = cmd_set(&c, nargs, args); break;
    default: ret = cmd_plain(&c, "metrics", nargs, "/metrics"); break;
    }
    mms_httpc_close(c.http);
    return ret;
}

static int run(int argc, char **argv)
{
    struct ctl_opts o = {0};
    struct args a;
    int ret = args_parse(&spec, &o, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    ret = ctl(&a, &o);
    args_free(&a);
    return ret;
}

const struct cli_command cli_ctl = {&spec, run};
