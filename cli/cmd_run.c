/*
 * mms run: video in, annotated video out. Its options are the pipeline's
 * option table (pipeline/options.c), so `mms run --style outline` and a
 * daemon config line `style = outline` are the same setting.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "cli/cli.h"
#include "overlay/text.h"
#include "pipeline/pipeline.h"

/* Exit status when the input had decode errors but the run completed. */
#define EXIT_DAMAGED 3

static struct mms_pipeline *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        mms_pipeline_stop(running);
}

static const struct args_alias aliases[] = {
    {"-i", "input", NULL},
    {"-o", "output", NULL},
    {"--live", "mode", "live"},
    {"--offline", "mode", "offline"},
    {0},
};

#define STR(x) #x
#define XSTR(x) STR(x)

static const struct args_cmd spec = {
    .name = "run",
    .usage = "-i INPUT [-o OUTPUT]... [--window] [OPTIONS]",
    .summary = "segment video: a file, camera or stream to a window, files and streams",
    .details = "Exit status: 0 done, 1 failed, 2 bad usage, " XSTR(EXIT_DAMAGED)
               " done but the input had\n"
               "decode errors (the outputs are complete and playable).",
    .pipeline_all = 1,
    .aliases = aliases,
    .min_operands = 0,
    .max_operands = 0,
};

/* What the table alone cannot say: an input, and somewhere to put it. */
static int check(const struct mms_pipeline_opts *o)
{
    if (!o->input)
        return args_usage_error(&spec, "missing -i INPUT");
    if (!o->noutputs && !o->window)
        return args_usage_error(&spec,
                                "nothing to do: give -o OUTPUT (or -o null) or --window");
    return CLI_GO_ON;
}

static void progress(struct mms_pipeline *p, double t0, int tty)
{
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    if (!tty)
        return;
    double el = (mms_now_ms() - t0) / 1000, rate = el > 0 ? c.written / el : 0;
    if (c.frames_expected > 0 && !c.live) {
        double left = rate > 0 ? (c.frames_expected - c.written) / rate : 0;
        int bar = (int)(30.0 * c.written / c.frames_expected);
        bar = bar < 0 ? 0 : bar > 30 ? 30 : bar;
        fprintf(stderr, "\r[%-30.*s] %lld/%lld frames %.1f fps ETA %.0f s ", bar,
                "##############################", (long long)c.written,
                (long long)c.frames_expected, rate, left > 0 ? left : 0);
    } else {
        fprintf(stderr, "\r%lld frames %.1f fps%s%s ", (long long)c.written, c.fps,
                c.live ? " live" : "", c.signal ? "" : " NO SIGNAL");
    }
}

static void summary(struct mms_pipeline *p, double seconds)
{
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    fprintf(stderr,
            "mms run: %lld frames in %.1f s (%.1f fps), %lld inferred, %lld dropped, "
            "%lld skipped, %lld reconnects, %s mode\n",
            (long long)c.written, seconds, seconds > 0 ? c.written / seconds : 0,
            (long long)c.inferred, (long long)c.dropped, (long long)c.skipped,
            (long long)c.reconnects,
            c.live ? "live" : "offline");
    fprintf(stderr, "  precision %s (%s)\n", c.precision, c.precision_why);
    fprintf(stderr, "  tta %s (%s)\n", c.flip ? "flip" : "off", c.tta_why);
    static float scratch[MMS_STATS_RING];
    fprintf(stderr, "  %-12s %8s %8s %8s %8s  (ms)\n", "stage", "p50", "p95", "p99", "max");
    for (int s = 0; s < MMS_STAGE_COUNT; s++) {
        struct mms_stage_summary sm;
        mms_stats_summary(mms_pipeline_stats(p), s, &sm, scratch);
        if (sm.count)
            fprintf(stderr, "  %-12s %8.2f %8.2f %8.2f %8.2f\n", mms_stage_name(s), sm.p50,
                    sm.p95, sm.p99, sm.max);
    }
}

/* The recorder fails alone (the outputs go on without it), so the run
 * itself says so at the end: a silent missing recording is the worst kind. */
static int recording_failed(struct mms_pipeline *p)
{
    struct mms_record_status rs;
    mms_pipeline_record_status(p, &rs);
    if (!rs.enabled || !rs.error[0])
        return 0;
    fprintf(stderr, "mms run: the recording failed: %s; the other outputs are complete\n",
            rs.error);
    return 1;
}

static int run(int argc, char **argv)
{
    struct mms_pipeline_opts o = {0};
    struct mms_err err = {{0}};
    struct args a;
    int status = ARGS_EXIT_FAIL, damaged = 0;
    int rc = args_parse(&spec, &o, argc, argv, &a);
    if (rc != CLI_GO_ON)
        return rc;
    if ((rc = check(&o)) != CLI_GO_ON) {
        status = rc;
        goto out;
    }
    /* Failures reach the user as one line through mms_err; FFmpeg's own
     * complaints about a damaged stream would only repeat them per packet. */
    av_log_set_level(AV_LOG_QUIET);
    /* The NO SIGNAL card's and the window's font ($MMS_FONT, else DejaVu
     * Sans): said here, once, when it does not load; the run goes on. */
    if (mms_text_set_font(NULL, &err))
        fprintf(stderr, "mms run: %s; text is drawn with the built-in 8x8 font\n", err.msg);
    struct mms_pipeline *p;
    if (mms_pipeline_create(&o, &p, &err)) {
        status = cli_fail("run", "%s", err.msg);
        goto out;
    }
    /* The pipeline appends; a run starts a file afresh, once it can run
     * (a pipe or /dev/stdout is only written to). */
    struct stat mst;
    if (o.meta && !stat(o.meta, &mst) && S_ISREG(mst.st_mode) && truncate(o.meta, 0)) {
        status = cli_fail("run", "%s: %s", o.meta, strerror(errno));
        mms_pipeline_destroy(p);
        goto out;
    }
    /* A stream peer that goes away must fail that output, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    running = p;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double t0 = mms_now_ms();
    int tty = isatty(2);
    if (mms_pipeline_start(p, &err)) {
        status = cli_fail("run", "%s", err.msg);
    } else {
        struct mms_pipeline_counters c;
        do {
            nanosleep(&(struct timespec){0, 250000000L}, NULL);
            progress(p, t0, tty);
            mms_pipeline_counters(p, &c);
        } while (!c.finished);
        if (tty)
            fputc('\n', stderr);
        rc = mms_pipeline_wait(p, &damaged, &err);
        summary(p, (mms_now_ms() - t0) / 1000);
        status = rc ? cli_fail("run", "%s", err.msg) : damaged ? EXIT_DAMAGED : ARGS_EXIT_OK;
        if (!rc && damaged)
            fprintf(stderr, "mms run: the input had decode errors; the outputs are complete\n");
        if (!rc && recording_failed(p))
            status = ARGS_EXIT_FAIL;
    }
    running = NULL;
    mms_pipeline_destroy(p);
out:
    args_free(&a);
    return status;
}

const struct cli_command cli_run = {&spec, run};
