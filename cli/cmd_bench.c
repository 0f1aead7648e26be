/* mms bench: how long mms_net_run() takes, nothing else. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli.h"
#include "core/cpu.h"

struct bench_opts {
    struct mms_pipeline_opts net; /* model, size, precision, threads */
    int iters, warmup, json, layers;
};

#define OFF(f) offsetof(struct bench_opts, f)
static const char *const net_options[] = {"model", "size", "precision", "threads", "tta", NULL};
static const struct mms_option opts[] = {
    {.name = "iters", .type = MMS_OPT_INT, .offset = OFF(iters), .def = "20", .min = 1,
     .max = 100000, .arg = "K", .help = "timed runs, 1..100000"},
    {.name = "warmup", .type = MMS_OPT_INT, .offset = OFF(warmup), .def = "3", .max = 10000,
     .arg = "W", .help = "untimed runs first, 0..10000"},
    {.name = "json", .type = MMS_OPT_BOOL, .offset = OFF(json), .help = "print one JSON object"},
    {.name = "layers", .type = MMS_OPT_BOOL, .offset = OFF(layers),
     .help = "also time each step: shape, oneDNN implementation, GFLOP/s"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "bench",
    .usage = "[--model FILE] [--size HxW] [--precision P] [--threads N] [--tta T] "
             "[--iters K] [--warmup W] [--layers] [--json]",
    .summary = "time the network alone on a fixed pseudo-random input",
    .details = "Times mms_net_run() only (CLOCK_MONOTONIC): no decoding, resizing or\n"
               "thresholding. GFLOP/s counts 2 FLOPs per multiply-accumulate. The CPU's\n"
               "name and ISA flags are printed with the figures: compare ratios measured\n"
               "in one run on one machine, not figures from different machines.\n"
               "--layers runs the timed runs again, waiting after each step, and gives\n"
               "each step's mean time (these runs are slower than the plain ones).\n"
               "--tta flip times both of a frame's passes; --layers times one.",
    .opts = opts,
    .pipeline = net_options,
    .pipeline_offset = OFF(net),
    .min_operands = 0,
    .max_operands = 0,
};

struct stats {
    double median, p90, min;
};

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

/* Sorts ms in place. p90 is the nearest rank: the smallest time that at
 * least 90 % of the runs did not exceed. */
static struct stats summarise(double *ms, int n)
{
    qsort(ms, n, sizeof(*ms), by_value);
    struct stats s;
    s.median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    int rank = (9 * n + 9) / 10; /* ceil(0.9 n) */
    s.p90 = ms[rank - 1];
    s.min = ms[0];
    return s;
}

/* The same input every run and every time: a fixed xorshift sequence,
 * roughly the spread of normalised pixels. */
static void fill_input(float *in, size_t n)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        in[i] = (float)(x >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
}

static int time_runs(struct mms_net *net, int warmup, int iters, double *ms,
                     struct mms_err *err)
{
    int ret;
    for (int i = 0; i < warmup; i++)
        if ((ret = mms_net_run(net, err)) < 0)
            return ret;
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        if ((ret = mms_net_run(net, err)) < 0)
            return ret;
        ms[i] = now_ms() - t0;
    }
    return 0;
}

static int threads_used(const struct cli_net *cn)
{
    if (cn->opts.threads > 0)
        return cn->opts.threads;
#ifdef _OPENMP
    return omp_get_max_threads(); /* the engine's default, set by mms_net_open */
#else
    return 0;
#endif
}

struct report {
    const struct cli_net *cn;
    const struct mms_net_info *ni;
    int iters, threads;
    struct stats s;
    struct mms_cpu cpu;
    double *layer_ms; /* mean per step, or NULL without --layers */
};

/* macs is one pass; a flipped run makes two. */
static double gflops(const struct report *r)
{
    return 2.0 * (double)r->ni->macs * (r->ni->flip ? 2 : 1) / (r->s.median * 1e6);
}

static double layer_gflops(const struct mms_net_layer *l, double ms)
{
    return l->macs && ms > 0 ? 2.0 * (double)l->macs / (ms * 1e6) : 0;
}

static struct json_object *json_layers(const struct report *r)
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < mms_net_layers(r->cn->net); i++) {
        struct mms_net_layer l;
        mms_net_layer(r->cn->net, i, &l);
        struct json_object *o = json_object_new_object();
        char shape[48];
        snprintf(shape, sizeof(shape), "%dx%dx%d", l.c, l.h, l.w);
        json_object_object_add(o, "name", json_object_new_string(l.name));
        json_object_object_add(o, "op", json_object_new_string(l.op));
        json_object_object_add(o, "shape", json_object_new_string(shape));
        json_object_object_add(o, "impl", json_object_new_string(l.impl));
        json_object_object_add(o, "ms", cli_json_num(r->layer_ms[i], 4));
        json_object_object_add(o, "macs", json_object_new_int64(l.macs));
        json_object_object_add(o, "gflops", cli_json_num(layer_gflops(&l, r->layer_ms[i]), 2));
        json_object_array_add(a, o);
    }
    return a;
}

static struct json_object *json_cpu(const struct mms_cpu *c)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "flags", json_object_new_string(c->flags));
    json_object_object_add(o, "onednn_isa", json_object_new_string(c->isa));
    json_object_object_add(o, "cpus", json_object_new_int(c->cores));
    return o;
}

static void print_json(const struct report *r)
{
    char size[32];
    snprintf(size, sizeof(size), "%dx%d", r->ni->in_h, r->ni->in_w);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "model", cli_json_text(r->cn->model));
    json_object_object_add(o, "arch", json_object_new_string(r->ni->arch));
    json_object_object_add(o, "size", json_object_new_string(size));
    json_object_object_add(o, "precision", json_object_new_string(r->ni->precision));
    json_object_object_add(o, "precision_asked", json_object_new_string(r->cn->precision));
    json_object_object_add(o, "tta", json_object_new_string(r->ni->flip ? "flip" : "off"));
    json_object_object_add(o, "threads", json_object_new_int(r->threads));
    json_object_object_add(o, "iters", json_object_new_int(r->iters));
    json_object_object_add(o, "median_ms", cli_json_num(r->s.median, 3));
    json_object_object_add(o, "p90_ms", cli_json_num(r->s.p90, 3));
    json_object_object_add(o, "min_ms", cli_json_num(r->s.min, 3));
    json_object_object_add(o, "fps", cli_json_num(1000.0 / r->s.median, 2));
    json_object_object_add(o, "gflops", cli_json_num(gflops(r), 2));
    json_object_object_add(o, "macs", json_object_new_int64(r->ni->macs));
    json_object_object_add(o, "cpu", json_cpu(&r->cpu));
    if (r->layer_ms)
        json_object_object_add(o, "layers", json_layers(r));
    cli_json_print(o);
}

static void print_text(const struct report *r)
{
    printf("model      %s (%s)\n", r->cn->model, r->ni->arch);
    printf("input      %dx%d, %s (%s), %d thread%s%s\n", r->ni->in_h, r->ni->in_w,
           r->ni->precision, r->ni->precision_why, r->threads, r->threads == 1 ? "" : "s",
           r->ni->flip ? ", tta flip (two passes a frame)" : "");
    printf("time       median %.3f ms  p90 %.3f ms  min %.3f ms  (%d runs)\n", r->s.median,
           r->s.p90, r->s.min, r->iters);
    printf("rate       %.2f fps, %.2f GFLOP/s (%.3f GMAC per frame)\n",
           1000.0 / r->s.median, gflops(r), r->ni->macs / 1e9);
    printf("cpu        %s, %d CPUs; %s; oneDNN ISA %s\n", r->cpu.name, r->cpu.cores,
           r->cpu.flags, r->cpu.isa);
    if (!r->layer_ms)
        return;
    double total = 0;
    for (int i = 0; i < mms_net_layers(r->cn->net); i++)
        total += r->layer_ms[i];
    printf("\n%4s %-34s %-8s %-14s %8s %6s %7s  %s\n", "#", "step", "op", "output", "ms", "%",
           "GFLOP/s", "implementation");
    for (int i = 0; i < mms_net_layers(r->cn->net); i++) {
        struct mms_net_layer l;
        char shape[48];
        mms_net_layer(r->cn->net, i, &l);
        snprintf(shape, sizeof(shape), "%dx%dx%d", l.c, l.h, l.w);
        char rate[16] = "-";
        if (l.macs)
            snprintf(rate, sizeof(rate), "%.1f", layer_gflops(&l, r->layer_ms[i]));
        printf("%4d %-34.34s %-8s %-14s %8.3f %6.1f %7s  %s\n", i, l.name, l.op, shape,
               r->layer_ms[i], total > 0 ? 100.0 * r->layer_ms[i] / total : 0, rate, l.impl);
    }
    printf("%4s %-34s %-8s %-14s %8.3f\n", "", "all steps, waiting after each", "", "", total);
}

/* Mean time of each step over `iters` profiled runs. */
static int time_layers(struct mms_net *net, int iters, double **out, struct mms_err *err)
{
    int n = mms_net_layers(net), ret = 0;
    double *ms = calloc(n ? n : 1, sizeof(*ms));
    if (!ms)
        return mms_err_set(err, -ENOMEM, "out of memory");
    for (int i = 0; i < iters && !ret; i++)
        ret = mms_net_run_profiled(net, ms, err);
    for (int i = 0; i < n; i++)
        ms[i] /= iters;
    if (ret < 0) {
        free(ms);
        return ret;
    }
    *out = ms;
    return 0;
}

static int bench(const struct args *a, const struct bench_opts *o)
{
    struct cli_net cn = {0};
    int iters = o->iters, warmup = o->warmup;
    double *ms = NULL;
    int ret;
    if ((ret = cli_net_options(a, &o->net, NULL, &cn)) != CLI_GO_ON ||
        (ret = cli_net_open(spec.name, &cn)) != CLI_GO_ON)
        return ret;
    const struct mms_net_info *ni = mms_net_info(cn.net);
    fill_input(mms_net_input(cn.net), (size_t)3 * ni->in_h * ni->in_w);
    struct mms_err err = {{0}};
    if (!(ms = malloc(sizeof(*ms) * iters))) {
        ret = cli_fail(spec.name, "%s", strerror(ENOMEM));
        goto done;
    }
    if (time_runs(cn.net, warmup, iters, ms, &err) < 0) {
        ret = cli_fail(spec.name, "%s", err.msg);
        goto done;
    }
    struct report r = {.cn = &cn, .ni = ni, .iters = iters, .threads = threads_used(&cn),
                       .s = summarise(ms, iters)};
    mms_cpu_probe(&r.cpu);
    if (o->layers && time_layers(cn.net, iters, &r.layer_ms, &err) < 0) {
        ret = cli_fail(spec.name, "%s", err.msg);
        goto done;
    }
    if (o->json)
        print_json(&r);
    else
        print_text(&r);
    free(r.layer_ms);
    ret = ARGS_EXIT_OK;
done:
    free(ms);
    cli_net_close(&cn);
    return ret;
}

static int run(int argc, char **argv)
{
    struct bench_opts o = {0};
    struct args a;
    int ret = args_parse(&spec, &o, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    ret = bench(&a, &o);
    args_free(&a);
    return ret;
}

const struct cli_command cli_bench = {&spec, run};
