#include "core/net.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/exec.h"
#include "core/model.h"

struct mms_net {
    struct mms_net_info info;
    struct mms_card card;
    struct mms_exec *exec;
    char *path;
    float *mean;        /* flip: the two runs' mean logits */
    const float *last;  /* the last run's logits: mean or the exec's output */
    int auto_flip;      /* what MMS_TTA_AUTO chooses here */
    char auto_why[160]; /* and why */
};

int mms_precision_parse(const char *s, enum mms_precision *p)
{
    static const struct {
        const char *name;
        enum mms_precision p;
    } names[] = {{"fp32", MMS_PREC_FP32}, {"bf16", MMS_PREC_BF16}, {"int8", MMS_PREC_INT8},
                 {"auto", MMS_PREC_AUTO}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(s, names[i].name)) {
            *p = names[i].p;
            return 0;
        }
    return -EINVAL;
}

#define MIN_RANGE 1e-20f

/* The calibration in the file, if any: NULL and *why set when absent or
 * unusable. */
static const float *int8_table(const struct mms_model *m, int *n, int *passed, char *why,
                               size_t len)
{
    const struct mms_tensor *t = mms_model_find(m, MMS_INT8_TENSOR);
    const char *check = mms_model_meta(m, MMS_INT8_CHECK);
    *passed = check && !strncmp(check, "passed", 6);
    if (!t) {
        snprintf(why, len, "the model file has no int8 calibration (mms calibrate makes one)");
        return NULL;
    }
    if (t->dtype != MMS_DTYPE_F32 || t->ndim != 1 || t->numel < 1 || t->numel > 1 << 20) {
        snprintf(why, len, "%s: expected a 1-D F32 tensor", MMS_INT8_TENSOR);
        return NULL;
    }
    const float *v = t->data;
    /* A range becomes a scale (/ 127 or / 255) that is inverted and
     * multiplied with others: a tiny one overflows them to infinity and
     * every logit to NaN. No activation of a real net is that small but
     * for 0, which means a dead tensor and is kept in fp32. */
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(v[i]) || v[i] < 0 || (v[i] > 0 && v[i] < MIN_RANGE)) {
            snprintf(why, len, "%s: value %" PRId64 " is %g, not a range", MMS_INT8_TENSOR, i,
                     v[i]);
            return NULL;
        }
    *n = (int)t->numel;
    return v;
}

/* How many times as fast as fp32 int8 was measured where the file was
 * calibrated, if that was this CPU's ISA (cpu filled); 0 when it was
 * elsewhere or not at all, where the measurement says nothing. */
static double int8_speed_here(const struct mms_model *m, struct mms_cpu *cpu)
{
    const char *speed = mms_model_meta(m, MMS_INT8_SPEED), *colon;
    mms_cpu_probe(cpu);
    if (!speed || !(colon = strrchr(speed, ':')) ||
        (size_t)(colon - speed) != strlen(cpu->isa) || strncmp(speed, cpu->isa, colon - speed))
        return 0;
    /* A ratio that is not a positive number was not a measurement. */
    double r = atof(colon + 1);
    return isfinite(r) && r > 0 ? r : 0;
}

/* Whether int8 was measured faster than fp32 where it was calibrated, if
 * that was this CPU's ISA; 0 with *why set when it was not. Elsewhere
 * int8 is taken on trust. */
static int int8_pays(const struct mms_model *m, char *why, size_t len)
{
    struct mms_cpu cpu;
    double ratio = int8_speed_here(m, &cpu);
    if (ratio <= 0 || ratio >= 1.05)
        return 1;
    snprintf(why, len, "int8 measured %.2fx as fast as fp32 on this ISA (%s)", ratio, cpu.isa);
    return 0;
}

/* What MMS_TTA_AUTO means for this net, and why: after
 * resolve_precision(), whose choice it follows. Kept, so that the tta can
 * change after the file is closed (mms_net_set_tta). */
static void resolve_auto_tta(struct mms_net *n, const struct mms_model *m)
{
    struct mms_cpu cpu;
    double ratio;
    char *why = n->auto_why;
    size_t len = sizeof(n->auto_why);
    n->auto_flip = 0;
    if (strcmp(n->info.precision, "int8")) {
        snprintf(why, len, "auto: off in %s; flips only in int8", n->info.precision);
    } else if ((ratio = int8_speed_here(m, &cpu)) <= 0) {
        snprintf(why, len, "auto: off, int8's speed was not measured on this ISA (%s)", cpu.isa);
    } else if (ratio < MMS_TTA_AUTO_RATIO) {
        snprintf(why, len, "auto: off, int8 measured only %.2fx as fast as fp32 on this ISA",
                 ratio);
    } else {
        n->auto_flip = 1;
        snprintf(why, len,
                 "auto: int8 measured %.2fx as fast as fp32 on this ISA, so two int8 runs "
                 "cost less than one fp32 run",
                 ratio);
    }
}

int mms_net_set_tta(struct mms_net *n, enum mms_tta tta, struct mms_err *err)
{
    struct mms_net_info *i = &n->info;
    switch (tta) {
    case MMS_TTA_OFF:
    case MMS_TTA_FLIP:
        i->flip = tta == MMS_TTA_FLIP;
        snprintf(i->tta_why, sizeof(i->tta_why), "asked for");
        return 0;
    case MMS_TTA_AUTO:
        i->flip = n->auto_flip;
        snprintf(i->tta_why, sizeof(i->tta_why), "%s", n->auto_why);
        return 0;
    }
    return mms_err_set(err, -EINVAL, "unknown tta %d (off, flip or auto)", (int)tta);
}

/* Whether oneDNN runs bf16 natively here; if not, why (when asked). */
static int cpu_bf16(char *why, size_t len, const char *asked)
{
    struct mms_cpu cpu;
    mms_cpu_probe(&cpu);
    if (!cpu.bf16 && why)
        snprintf(why, len, "%s, but this CPU (oneDNN ISA %s) has no native bf16 "
                 "(avx512_bf16 or amx_bf16): fp32", asked, cpu.isa);
    return cpu.bf16;
}

/* What to compute in, and why, for the precision asked. */
static int resolve_precision(struct mms_net *n, const struct mms_model *m,
                             enum mms_precision want, struct mms_exec_opts *eo,
                             struct mms_err *err)
{
    struct mms_net_info *i = &n->info;
    char why[160] = "";
    int passed = 0;
    const float *absmax = int8_table(m, &eo->nabsmax, &passed, why, sizeof(why));
    i->int8_calibrated = absmax && passed;
    i->precision = "fp32";
    switch (want) {
    case MMS_PREC_FP32:
        snprintf(i->precision_why, sizeof(i->precision_why), "asked for");
        return 0;
    case MMS_PREC_BF16:
        if (!cpu_bf16(i->precision_why, sizeof(i->precision_why), "bf16 asked for"))
            return 0;
        eo->bf16 = 1;
        i->precision = "bf16";
        snprintf(i->precision_why, sizeof(i->precision_why), "asked for");
        return 0;
    case MMS_PREC_INT8:
        if (!absmax)
            return mms_err_set(err, -EINVAL, "int8: %s", why);
        eo->absmax = absmax;
        i->precision = "int8";
        snprintf(i->precision_why, sizeof(i->precision_why), "asked for%s",
                 passed ? "" : " (its calibration failed the accuracy check)");
        return 0;
    case MMS_PREC_AUTO:
        if (absmax && !passed)
            snprintf(why, sizeof(why), "the int8 calibration failed its accuracy check");
        if (absmax && passed && int8_pays(m, why, sizeof(why))) {
            eo->absmax = absmax;
            i->precision = "int8";
            snprintf(i->precision_why, sizeof(i->precision_why),
                     "auto: the file carries an int8 calibration that passed its check");
        } else if (cpu_bf16(NULL, 0, NULL)) {
            eo->bf16 = 1;
            i->precision = "bf16";
            snprintf(i->precision_why, sizeof(i->precision_why), "auto: %s; this CPU has bf16",
                     why);
        } else {
            snprintf(i->precision_why, sizeof(i->precision_why), "auto: %s", why);
        }
        return 0;
    }
    return mms_err_set(err, -EINVAL, "unknown precision %d", (int)want);
}

static int check_size(const struct mms_card *card, int h, int w, struct mms_err *err)
{
    int m = card->arch->input_multiple;
    if (h < m || w < m || h % m || w % m || h > 8192 || w > 8192)
        return mms_err_set(err, -EINVAL,
                           "input size %dx%d: %s needs height and width that are multiples "
                           "of %d (at most 8192)",
                           h, w, card->arch->name, m);
    return 0;
}

/* dry: everything but oneDNN's part (no buffer, no primitive). */
static int compile(struct mms_net *n, const struct mms_model *m, int h, int w,
                   const struct mms_net_opts *o, int dry, struct mms_err *err)
{
    int rc;
    struct mms_graph *g = mms_graph_new(m);
    if (!g)
        return mms_err_set(err, -ENOMEM, "out of memory");
    int in = mms_graph_input(g, 3, h, w);
    int out = n->card.arch->build(g, m, in);
    if ((rc = mms_graph_error(g, err)))
        goto fail;
    const struct mms_tensor_shape *s = mms_graph_shape(g, out);
    if (s->c != 1 || s->h != h || s->w != w) {
        rc = mms_err_set(err, -EINVAL, "network output is %dx%dx%d, expected 1x%dx%d", s->c,
                         s->h, s->w, h, w);
        goto fail;
    }
    mms_graph_cost(g, &n->info.params, &n->info.macs);
    n->info.out_h = s->h;
    n->info.out_w = s->w;
    if ((rc = mms_graph_fuse(g, err)))
        goto fail;
    struct mms_exec_opts eo = {.threads = o->threads};
    if ((rc = resolve_precision(n, m, o->precision, &eo, err)))
        goto fail;
    resolve_auto_tta(n, m);
    if ((rc = mms_net_set_tta(n, o->tta, err)) || dry)
        goto fail;
    rc = mms_exec_create(g, in, out, &eo, &n->exec, err);
fail:
    mms_graph_free(g);
    return rc;
}

static int open_net(const char *path, const struct mms_net_opts *opts, int dry,
                    struct mms_net **out, struct mms_err *err)
{
    struct mms_net_opts o = opts ? *opts : (struct mms_net_opts){0};
    struct mms_model *m = NULL;
    int rc;
    struct mms_net *n = calloc(1, sizeof(*n));
    if (!n || !(n->path = strdup(path))) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = mms_model_open(path, &m, err)) || (rc = mms_card_parse(m, &n->card, err)))
        goto fail;
    int h = o.in_h ? o.in_h : n->card.in_h, w = o.in_w ? o.in_w : n->card.in_w;
    if ((rc = check_size(&n->card, h, w, err)) ||
        (rc = compile(n, m, h, w, &o, dry, err)) || dry)
        goto fail; /* a dry run that passed ends here too */
    struct mms_net_info *i = &n->info;
    i->path = n->path;
    i->arch = n->card.arch->name;
    i->in_h = h;
    i->in_w = w;
    i->card_h = n->card.in_h;
    i->card_w = n->card.in_w;
    i->tensors = (int)mms_model_count(m);
    i->primitives = mms_exec_steps(n->exec);
    memcpy(i->mean, n->card.mean, sizeof(i->mean));
    memcpy(i->std, n->card.std, sizeof(i->std));
    i->threshold = n->card.threshold;
    /* Always: the tta may change later, and a change must not fail. */
    if (!(n->mean = calloc((size_t)i->out_h * i->out_w, sizeof(float)))) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    n->last = mms_exec_output(n->exec);
    /* The weights now live in oneDNN's layouts; the file can go. */
    mms_model_close(m);
    *out = n;
    return 0;
fail:
    if (rc)
        mms_err_prefix(err, "%s: ", path);
    mms_model_close(m);
    mms_net_close(n);
    return rc;
}

int mms_net_open(const char *path, const struct mms_net_opts *opts, struct mms_net **out,
                 struct mms_err *err)
{
    return open_net(path, opts, 0, out, err);
}

int mms_net_check(const char *path, const struct mms_net_opts *opts, struct mms_err *err)
{
    return open_net(path, opts, 1, NULL, err);
}

void mms_net_close(struct mms_net *n)
{
    if (!n)
        return;
    mms_exec_destroy(n->exec);
    free(n->mean);
    free(n->path);
    free(n);
}

const struct mms_net_info *mms_net_info(const struct mms_net *n) { return &n->info; }
float *mms_net_input(struct mms_net *n) { return mms_exec_input(n->exec); }
/* From what the last run did, not from the tta now: a change between a
 * run and this call applies to the next run only. */
const float *mms_net_logits(const struct mms_net *n) { return n->last; }

/* Each row of each of the planes reversed, in place. */
static void mirror_rows(float *p, int planes, int h, int w)
{
    for (int r = 0; r < planes * h; r++, p += w)
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            float t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* The frame, then its mirror: the mean of the first run's logits and the
 * second's mirrored back. The input is mirrored back too, since callers
 * may read it after the run. (a + b) * 0.5f is what PyTorch's
 * (l + l_flipped) / 2 computes, to the bit. */
static int run_flipped(struct mms_net *n, struct mms_err *err)
{
    const struct mms_net_info *i = &n->info;
    float *in = mms_exec_input(n->exec);
    const float *out = mms_exec_output(n->exec);
    int rc = mms_exec_run(n->exec, err);
    if (rc)
        return rc;
    memcpy(n->mean, out, (size_t)i->out_h * i->out_w * sizeof(float));
    mirror_rows(in, 3, i->in_h, i->in_w);
    rc = mms_exec_run(n->exec, err);
    mirror_rows(in, 3, i->in_h, i->in_w);
    if (rc)
        return rc;
    for (int y = 0; y < i->out_h; y++) {
        float *m = n->mean + (size_t)y * i->out_w;
        const float *o = out + (size_t)y * i->out_w;
        for (int x = 0, xr = i->out_w - 1; x < i->out_w; x++, xr--)
            m[x] = (m[x] + o[xr]) * 0.5f;
    }
    return 0;
}

int mms_net_run(struct mms_net *n, struct mms_err *err)
{
    n->last = n->info.flip ? n->mean : mms_exec_output(n->exec);
    return n->info.flip ? run_flipped(n, err) : mms_exec_run(n->exec, err);
}

int mms_net_layers(const struct mms_net *n) { return mms_exec_steps(n->exec); }

void mms_net_layer(const struct mms_net *n, int i, struct mms_net_layer *l)
{
    struct mms_exec_step s;
    mms_exec_step_info(n->exec, i, &s);
    *l = (struct mms_net_layer){s.name, s.impl, s.op, s.c, s.h, s.w, s.macs};
}

int mms_net_run_profiled(struct mms_net *n, double *ms, struct mms_err *err)
{
    n->last = mms_exec_output(n->exec);
    return mms_exec_run_profiled(n->exec, ms, err);
}

int mms_net_tensors(const struct mms_net *n) { return mms_exec_tensors(n->exec); }

int mms_net_observe(struct mms_net *n, void (*fn)(void *ctx, int t, const float *v, size_t n),
                    void *ctx, struct mms_err *err)
{
    n->last = mms_exec_output(n->exec);
    return mms_exec_run_observed(n->exec, fn, ctx, err);
}
