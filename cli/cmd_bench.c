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

struct bench_opts {
    struct mms_pipeline_opts net; /* model, size, precision, threads */
    int iters, warmup, json;
};

#define OFF(f) offsetof(struct bench_opts, f)
static const char *const net_options[] = {"model", "size", "precision", "threads", NULL};
static const struct mms_option opts[] = {
    {.name = "iters", .type = MMS_OPT_INT, .offset = OFF(iters), .def = "20", .min = 1,
     .max = 100000, .arg = "K", .help = "timed runs, 1..100000"},
    {.name = "warmup", .type = MMS_OPT_INT, .offset = OFF(warmup), .def = "3", .max = 10000,
     .arg = "W", .help = "untimed runs first, 0..10000"},
    {.name = "json", .type = MMS_OPT_BOOL, .offset = OFF(json), .help = "print one JSON object"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "bench",
    .usage = "[--model FILE] [--size HxW] [--precision P] [--threads N] [--iters K] "
             "[--warmup W] [--json]",
    .summary = "time the network alone on a fixed pseudo-random input",
    .details = "Times mms_net_run() only (CLOCK_MONOTONIC): no decoding, resizing or\n"
               "thresholding. GFLOP/s counts 2 FLOPs per multiply-accumulate.",
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
};

static double gflops(const struct report *r)
{
    return 2.0 * (double)r->ni->macs / (r->s.median * 1e6);
}

static void print_json(const struct report *r)
{
    char size[32];
    snprintf(size, sizeof(size), "%dx%d", r->ni->in_h, r->ni->in_w);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "model", json_object_new_string(r->cn->model));
    json_object_object_add(o, "arch", json_object_new_string(r->ni->arch));
    json_object_object_add(o, "size", json_object_new_string(size));
    json_object_object_add(o, "precision", json_object_new_string(r->cn->precision));
    json_object_object_add(o, "threads", json_object_new_int(r->threads));
    json_object_object_add(o, "iters", json_object_new_int(r->iters));
    json_object_object_add(o, "median_ms", cli_json_num(r->s.median, 3));
    json_object_object_add(o, "p90_ms", cli_json_num(r->s.p90, 3));
    json_object_object_add(o, "min_ms", cli_json_num(r->s.min, 3));
    json_object_object_add(o, "fps", cli_json_num(1000.0 / r->s.median, 2));
    json_object_object_add(o, "gflops", cli_json_num(gflops(r), 2));
    json_object_object_add(o, "macs", json_object_new_int64(r->ni->macs));
    cli_json_print(o);
}

static void print_text(const struct report *r)
{
    printf("model      %s (%s)\n", r->cn->model, r->ni->arch);
    printf("input      %dx%d, %s, %d thread%s\n", r->ni->in_h, r->ni->in_w,
           r->cn->precision, r->threads, r->threads == 1 ? "" : "s");
    printf("time       median %.3f ms  p90 %.3f ms  min %.3f ms  (%d runs)\n", r->s.median,
           r->s.p90, r->s.min, r->iters);
    printf("rate       %.2f fps, %.2f GFLOP/s (%.3f GMAC per frame)\n",
           1000.0 / r->s.median, gflops(r), r->ni->macs / 1e9);
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
    struct report r = {&cn, ni, iters, threads_used(&cn), summarise(ms, iters)};
    if (o->json)
        print_json(&r);
    else
        print_text(&r);
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
