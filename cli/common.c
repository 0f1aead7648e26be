/* What the mms commands share: failure reporting, opening the net from the
 * common options, one frame through pre -> net -> post, JSON and paths. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/locate.h"
#include "core/prepost.h"
#include "core/utf8.h"


int cli_fail(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mms %s: %s\n", cmd, msg);
    return ARGS_EXIT_FAIL;
}

/* precision is NULL for a command without the option: fp32. */
static int net_precision(const struct args *a, const char *p, struct cli_net *cn)
{
    cn->precision = "fp32";
    if (!p)
        return CLI_GO_ON;
    int ret = mms_precision_parse(p, &cn->opts.precision);
    if (ret < 0)
        return args_usage_error(a->cmd, "unknown precision '%s' (known: fp32, bf16, int8, auto)",
                                p);
    cn->precision = p;
    return CLI_GO_ON;
}

int cli_net_options(const struct args *a, const struct mms_pipeline_opts *o, const char *model,
                    struct cli_net *cn)
{
    memset(cn, 0, sizeof(*cn));
    cn->opts.threads = o->threads;
    cn->opts.in_h = o->net_h;
    cn->opts.in_w = o->net_w;
    cn->opts.tta = o->tta;
    int ret = net_precision(a, o->precision, cn);
    if (ret != CLI_GO_ON)
        return ret;
    if (!model)
        model = o->model;
    if (model) {
        if ((size_t)snprintf(cn->model, sizeof(cn->model), "%s", model) >= sizeof(cn->model))
            return cli_fail(a->cmd->name, "%s: %s", model, strerror(ENAMETOOLONG));
    } else if (mms_locate_default_model(cn->model, sizeof(cn->model)) < 0) {
        return cli_fail(a->cmd->name, "%s", cn->model);
    }
    return CLI_GO_ON;
}

int cli_net_open(const char *cmd, struct cli_net *cn)
{
    struct mms_err err = {{0}};
    int ret = mms_net_open(cn->model, &cn->opts, &cn->net, &err);
    if (ret < 0)
        return cli_fail(cmd, "%s", err.msg[0] ? err.msg : strerror(-ret));
    return CLI_GO_ON;
}

void cli_net_close(struct cli_net *cn)
{
    mms_net_close(cn->net);
    cn->net = NULL;
}

int cli_segment_frame(struct mms_net *net, const struct mms_image *rgb,
                      struct mms_image *mask, struct mms_err *err)
{
    const struct mms_net_info *ni = mms_net_info(net);
    mms_pre_rgb24(rgb->data, rgb->w, rgb->h, rgb->stride, mms_net_input(net), ni->in_h,
                  ni->in_w, ni->mean, ni->std);
    int ret = mms_net_run(net, err);
    if (ret < 0)
        return ret;
    if ((ret = mms_image_alloc(mask, rgb->w, rgb->h, MMS_IMAGE_GRAY8)) < 0)
        return mms_err_set(err, ret, "out of memory");
    mms_post_mask(mms_net_logits(net), ni->out_h, ni->out_w, mask->data, mask->w, mask->h,
                  mask->stride, ni->threshold);
    return 0;
}

struct json_object *cli_json_num(double v, int decimals)
{
    if (!isfinite(v))
        return NULL; /* json-c writes a NULL member as null */
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    return json_object_new_double_s(v, buf);
}

struct json_object *cli_json_text(const char *s)
{
    char *t = mms_utf8_dup(s);
    struct json_object *o = t ? json_object_new_string(t) : NULL;
    free(t);
    return o;
}

void cli_json_print(struct json_object *obj)
{
    puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                 JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(obj);
}

int cli_stem(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n + 1 > len)
        return -ENAMETOOLONG;
    memcpy(buf, base, n);
    buf[n] = '\0';
    return 0;
}

static int mkdir_one(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int cli_mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof(buf), "%s", dir) >= sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int ret = mkdir_one(buf);
        *p = '/';
        if (ret < 0)
            return ret;
    }
    int ret = mkdir_one(buf);
    if (ret < 0)
        return ret;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
