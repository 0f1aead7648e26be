/* mms bench: how long mms_net_run() takes, nothing else. */
#include <errno.h>
#include <inttypes.h>
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
#include "core/card.h"

static const struct args_opt opts[] = {
    CLI_OPT_MODEL,
    {"size", "HxW", "network input size, e.g. 288x512 (default: the model card's)"},
    CLI_OPT_PRECISION,
    CLI_OPT_THREADS,
    {"iters", "K", "timed runs, 1..100000 (default 20)"},
    {"warmup", "W", "untimed runs first, 0..10000 (default 3)"},
    {"json", NULL, "print one JSON object"},
    {0},
};

static const struct args_cmd spec = {
    .name = "bench",
    .usage = "[--model FILE] [--size HxW] [--precision P] [--threads N] [--iters K] "
             "[--warmup W] [--json]",
    .summary = "time the network alone on a fixed pseudo-random input",
    .details = "Times mms_net_run() only (CLOCK_MONOTONIC): no decoding, resizing or\n"
               "thresholding. GFLOP/s counts 2 FLOPs per multiply-accumulate.",
    .opts = opts,
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

static int parse(struct args *a, struct cli_net *cn, int *iters, int *warmup)
{
    if (args_int(a, "iters", 20, 1, 100000, iters) < 0 ||
        args_int(a, "warmup", 3, 0, 10000, warmup) < 0)
        return ARGS_EXIT_USAGE;
    const char *size = args_get(a, "size");
    int ret = cli_net_options(a, NULL, cn);
    if (ret != CLI_GO_ON)
        return ret;
    if (size && mms_card_parse_size(size, &cn->opts.in_h, &cn->opts.in_w) < 0)
        return args_usage_error(a->cmd, "--size: '%s' is not HxW with both in 1..8192",
                                size);
    return CLI_GO_ON;
}

static int run(int argc, char **argv)
{
    struct args a;
    struct cli_net cn = {0};
    int iters, warmup;
    double *ms = NULL;
    int ret = args_parse(&spec, argc, argv, &a);
    if (ret != CLI_GO_ON || (ret = parse(&a, &cn, &iters, &warmup)) != CLI_GO_ON)
        return ret;
    if ((ret = cli_net_open(spec.name, &cn)) != CLI_GO_ON)
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
    if (args_flag(&a, "json"))
        print_json(&r);
    else
        print_text(&r);
    ret = ARGS_EXIT_OK;
done:
    free(ms);
    cli_net_close(&cn);
    return ret;
}

const struct cli_command cli_bench = {&spec, run};
