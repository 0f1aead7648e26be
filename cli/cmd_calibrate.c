/* mms calibrate: post-training int8 quantisation of a model file. */
#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "core/cpu.h"
#include "core/mask.h"
#include "core/model.h"
#include "core/prepost.h"
#include "core/model_write.h"

/* Int8 masks must agree with fp32 this well on the calibration frames for
 * the file to say its calibration passed (and `--precision auto` to pick
 * it): mean per-image Dice, and the worst single image. */
#define CHECK_MEAN_DICE 0.98
#define CHECK_MIN_DICE 0.90
/* A frame whose masks differ on fewer pixels than this share passes the
 * per-frame test whatever their Dice: on a tool-free frame where fp32
 * paints a small false speck and int8 a slightly different one, Dice can
 * read 0.80 for a change of a few dozen pixels that nobody can see. The
 * mean is still taken over every frame. 1 pixel in 2,000: 115 in a 640x360
 * frame. */
#define CHECK_SPECK 0.0005

struct calibrate_opts {
    struct mms_pipeline_opts net; /* model, threads, size */
    char *out;
    float percentile;
};

#define OFF(f) offsetof(struct calibrate_opts, f)
static const char *const net_options[] = {"model", "threads", NULL};
static const struct mms_option opts[] = {
    {.name = "out", .type = MMS_OPT_STRING, .offset = OFF(out), .arg = "FILE",
     .help = "the calibrated model file to write (required; not the model itself)"},
    {.name = "percentile", .type = MMS_OPT_FLOAT, .offset = OFF(percentile), .def = "99.999",
     .min = 50, .max = 100, .arg = "P",
     .help = "each tensor's range: the P-th percentile of |x| over all its values in all "
             "frames (100: the largest)"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "calibrate",
    .usage = "[--model FILE] [--threads N] [--percentile P] --out FILE IMAGE...",
    .summary = "calibrate a model for int8 on sample frames",
    .details =
        "Runs the model in fp32 on every IMAGE and records each tensor's largest\n"
        "magnitude. The int8 engine quantises activations per tensor, symmetric s8,\n"
        "scale = max |x| / 127 over the frames; weights per output channel,\n"
        "max |w| / 127, at load; the first convolution (it reads the image) stays fp32\n"
        "and the heads (fewer than 8 output channels) write fp32 logits. Then the\n"
        "int8 network runs on the same frames and its masks are compared with fp32's:\n"
        "the file says\n"
        "whether they agreed (mean Dice >= 0.98, none below 0.90 except frames whose\n"
        "masks differ on under 0.05 % of the pixels, such as two specks on a tool-free\n"
        "frame), and only a\n"
        "calibration that passed is chosen by --precision auto; it also records how\n"
        "much faster int8 ran on this CPU's ISA, and auto keeps fp32 on that ISA if\n"
        "int8 was not faster. Use frames like the\n"
        "ones the model will see, and never the frames you validate on.",
    .opts = opts,
    .pipeline = net_options,
    .pipeline_offset = OFF(net),
    .min_operands = 1,
    .max_operands = -1,
};

#define BINS 4096

/* Two passes over the frames: the largest |x| of each tensor, then a
 * histogram of |x| on [0, largest] from which the percentile is read. */
struct range {
    float *absmax;
    uint64_t *hist; /* n x BINS; NULL in the first pass */
    int n;
};

static void record(void *ctx, int t, const float *v, size_t n)
{
    struct range *r = ctx;
    float m = r->absmax[t];
    if (!r->hist) {
        for (size_t i = 0; i < n; i++)
            m = fmaxf(m, fabsf(v[i])); /* NaN stays out: fmaxf returns the other */
        r->absmax[t] = m;
        return;
    }
    uint64_t *h = r->hist + (size_t)t * BINS;
    float k = m > 0 ? BINS / m : 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(v[i]) * k;
        h[a < BINS ? (int)a : BINS - 1]++; /* NaN counts in bin 0 */
    }
}

/* The upper edge of the bin where the percentile falls. */
static void apply_percentile(struct range *r, double pct)
{
    for (int t = 0; t < r->n; t++) {
        const uint64_t *h = r->hist + (size_t)t * BINS;
        uint64_t total = 0, run = 0;
        for (int b = 0; b < BINS; b++)
            total += h[b];
        if (!total || pct >= 100)
            continue;
        uint64_t want = (uint64_t)ceil(total * pct / 100.0);
        int b = 0;
        for (; b < BINS - 1 && (run += h[b]) < want; b++)
            ;
        r->absmax[t] = r->absmax[t] * (b + 1) / BINS;
    }
}

static int observe_all(struct mms_net *net, char **images, int n, struct range *r,
                       struct mms_err *err)
{
    const struct mms_net_info *ni = mms_net_info(net);
    for (int i = 0; i < n; i++) {
        struct mms_image rgb;
        int ret = mms_image_read(images[i], MMS_IMAGE_RGB24, &rgb, err);
        if (ret < 0)
            return ret;
        mms_pre_rgb24(rgb.data, rgb.w, rgb.h, rgb.stride, mms_net_input(net), ni->in_h,
                      ni->in_w, ni->mean, ni->std);
        mms_image_free(&rgb);
        if ((ret = mms_net_observe(net, record, r, err)) < 0)
            return ret;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median time of `reps` runs of one network on its current input, in
 * a block of its own: interleaving two networks frame by frame measures
 * how they evict each other's weights from the caches, not their speed. */
static int median_ms(struct mms_net *net, int reps, double *out, struct mms_err *err)
{
    double t[16];
    reps = reps > 16 ? 16 : reps;
    for (int i = 0; i < reps + 2; i++) {
        double t0 = now_ms();
        int ret = mms_net_run(net, err);
        if (ret < 0)
            return ret;
        if (i >= 2) /* two warm-up runs */
            t[i - 2] = now_ms() - t0;
    }
    qsort(t, reps, sizeof(double), by_value);
    *out = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
    return 0;
}

/* How much faster int8 runs than fp32 here, on the first frame. The two
 * take turns, three blocks each, and the fastest block of each counts:
 * `auto` flips and picks int8 by this ratio, and one block each on a
 * machine busy for a moment read 0.8x or 44x for a true 3.5x. */
static int speed_ratio(struct mms_net *f32, struct mms_net *i8, const char *image,
                       double *ratio, struct mms_err *err)
{
    struct mms_image rgb;
    double a = 0, b = 0;
    int ret = mms_image_read(image, MMS_IMAGE_RGB24, &rgb, err);
    if (ret < 0)
        return ret;
    struct mms_net *nets[2] = {f32, i8};
    for (int k = 0; k < 2; k++) {
        const struct mms_net_info *ni = mms_net_info(nets[k]);
        mms_pre_rgb24(rgb.data, rgb.w, rgb.h, rgb.stride, mms_net_input(nets[k]), ni->in_h,
                      ni->in_w, ni->mean, ni->std);
    }
    mms_image_free(&rgb);
    for (int round = 0; round < 3 && ret >= 0; round++) {
        double ta = 0, tb = 0;
        ret = median_ms(f32, 5, &ta, err);
        ret = ret < 0 ? ret : median_ms(i8, 5, &tb, err);
        a = round && a < ta ? a : ta;
        b = round && b < tb ? b : tb;
    }
    *ratio = b > 0 ? a / b : 0;
    return ret;
}

/* Int8 against fp32 masks, frame by frame. */
static int check(struct mms_net *f32, struct mms_net *i8, char **images, int n,
                 struct mms_mask_tally *g, struct mms_err *err)
{
    *g = (struct mms_mask_tally){.min_dice = CHECK_MIN_DICE, .speck = CHECK_SPECK};
    for (int i = 0; i < n; i++) {
        struct mms_image rgb, ma = {0}, mb = {0};
        int ret = mms_image_read(images[i], MMS_IMAGE_RGB24, &rgb, err);
        if (ret < 0)
            return ret;
        ret = cli_segment_frame(f32, &rgb, &ma, err);
        ret = ret < 0 ? ret : cli_segment_frame(i8, &rgb, &mb, err);
        if (ret >= 0) {
            struct mms_mask_agreement m;
            mms_mask_agreement(ma.data, ma.stride, mb.data, mb.stride, ma.w, ma.h, &m);
            mms_mask_tally_add(g, &m);
        }
        mms_image_free(&rgb);
        mms_image_free(&ma);
        mms_image_free(&mb);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int write_file(const char *model, const char *out, const struct range *r, int frames,
                      const char *verdict, const char *speed, struct mms_err *err)
{
    struct mms_model *m;
    char nf[32];
    int ret = mms_model_open(model, &m, err);
    if (ret < 0)
        return ret;
    snprintf(nf, sizeof(nf), "%d", frames);
    const char *meta[] = {
        "int8.method",
        "activations: per tensor, symmetric s8, range / 127, range the given percentile of |x| "
        "over the calibration frames; "
        "weights: per output channel, max |w| / 127; first convolution fp32; heads write fp32",
        "int8.frames", nf, MMS_INT8_CHECK, verdict, speed ? MMS_INT8_SPEED : NULL, speed, NULL};
    ret = mms_model_write_with(m, out, MMS_INT8_TENSOR, r->absmax, r->n, meta, err);
    mms_model_close(m);
    return ret;
}

/* By the file, not the spelling: ./m.safetensors, a link or a hard link to
 * the model is the model. An --out that does not exist yet is not it. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!strcmp(a, b))
        return 1;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int open_int8(const char *path, int threads, struct mms_net **net, struct mms_err *err)
{
    struct mms_net_opts o = {.precision = MMS_PREC_INT8, .threads = threads};
    return mms_net_open(path, &o, net, err);
}

static int calibrate(const struct args *a, const struct calibrate_opts *o)
{
    struct cli_net cn = {0};
    struct mms_net *i8 = NULL;
    struct range r = {0};
    struct mms_err err = {{0}};
    char verdict[256], speed[96];
    struct mms_mask_tally g;
    double speedup = 0;
    struct mms_cpu cpu;
    int ret;
    if (!o->out)
        return args_missing(a, "out");
    if ((ret = cli_net_options(a, &o->net, NULL, &cn)) != CLI_GO_ON)
        return ret;
    if (same_file(cn.model, o->out))
        return cli_fail(spec.name, "--out %s would overwrite the model it reads", o->out);
    cn.opts.precision = MMS_PREC_FP32;
    if ((ret = cli_net_open(spec.name, &cn)) != CLI_GO_ON)
        return ret;
    r.n = mms_net_tensors(cn.net);
    if (!(r.absmax = calloc(r.n, sizeof(float)))) {
        ret = cli_fail(spec.name, "%s", strerror(ENOMEM));
        goto done;
    }
    /* Written twice: the check needs an int8 net, which loads from a file. */
    if (observe_all(cn.net, a->operands, a->noperands, &r, &err) < 0 ||
        !(r.hist = calloc((size_t)r.n * BINS, sizeof(uint64_t))) ||
        observe_all(cn.net, a->operands, a->noperands, &r, &err) < 0 ||
        (apply_percentile(&r, o->percentile), 0) ||
        write_file(cn.model, o->out, &r, a->noperands, "unchecked", NULL, &err) < 0 ||
        open_int8(o->out, cn.opts.threads, &i8, &err) < 0 ||
        check(cn.net, i8, a->operands, a->noperands, &g, &err) < 0 ||
        speed_ratio(cn.net, i8, a->operands[0], &speedup, &err) < 0) {
        ret = cli_fail(spec.name, "%s", err.msg);
        goto done;
    }
    double mean = g.frames ? g.sum / g.frames : 0;
    /* Frames without a tool agree whatever int8 does to the tools: a
     * calibration judged mostly on them is not judged. */
    int judged = g.with_tool > 0 && 2 * g.with_tool >= g.frames;
    int passed = judged && mean >= CHECK_MEAN_DICE && g.worst >= CHECK_MIN_DICE;
    snprintf(verdict, sizeof(verdict),
             "%s: int8 vs fp32 masks, mean Dice %.4f, lowest %.4f, over %d frames "
             "(fp32 finds a tool on %d%s); %d below %.2f differ on under %.2f %% of the pixels "
             "(lowest of all %.4f)",
             passed ? "passed" : "failed", mean, g.worst, a->noperands, g.with_tool,
             judged ? "" : ", too few to judge: give frames with tools", g.specks, CHECK_MIN_DICE,
             CHECK_SPECK * 100, g.lowest);
    mms_cpu_probe(&cpu);
    snprintf(speed, sizeof(speed), "%s:%.2f", cpu.isa, speedup);
    if (write_file(cn.model, o->out, &r, a->noperands, verdict, speed, &err) < 0) {
        ret = cli_fail(spec.name, "%s", err.msg);
        goto done;
    }
    printf("%s: %d tensors calibrated on %d frames; %s; int8 ran %.2fx as fast as fp32 "
           "(oneDNN ISA %s)\n",
           o->out, r.n, a->noperands, verdict, speedup, cpu.isa);
    ret = passed ? ARGS_EXIT_OK : ARGS_EXIT_FAIL;
done:
    mms_net_close(i8);
    free(r.absmax);
    free(r.hist);
    cli_net_close(&cn);
    return ret;
}

static int run(int argc, char **argv)
{
    struct calibrate_opts o = {0};
    struct args a;
    int ret = args_parse(&spec, &o, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    ret = calibrate(&a, &o);
    args_free(&a);
    return ret;
}

const struct cli_command cli_calibrate = {&spec, run};
