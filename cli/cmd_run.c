/*
 * mms run: video in, annotated video out. Its options are the pipeline's
 * option table (pipeline/options.c), so `mms run --style outline` and a
 * daemon config line `style = outline` are the same setting.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "cli/cli.h"
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

static void usage(FILE *f)
{
    fprintf(f, "Usage: mms run -i INPUT [-o OUTPUT]... [--window] [OPTIONS]\n\n"
               "Segments the tools in every frame of a video and shows, records or\n"
               "streams the annotated video.\n\nOptions:\n");
    mms_options_help(f, "--");
    fprintf(f, "  %-26s %s\n", "--live", "same as --mode live");
    fprintf(f, "  %-26s %s\n", "--offline", "same as --mode offline");
    fprintf(f, "  %-26s %s\n", "-i, -o", "short for --input, --output");
    fprintf(f, "\nExit status: 0 done, 1 failed, 2 bad usage, %d done but the input had\n"
               "decode errors (the outputs are complete and playable).\n",
            EXIT_DAMAGED);
}

/* getopt values: table entries from OPT_TABLE up, past every ASCII short option. */
enum { OPT_TABLE = 256, OPT_LIVE = 1000, OPT_OFFLINE, OPT_HELP };

static int build_longopts(struct option *lo, int max)
{
    int n = 0;
    for (const struct mms_option *opt = mms_pipeline_options; opt->name && n < max - 4; opt++)
        lo[n++] = (struct option){opt->name,
                                  opt->type == MMS_OPT_BOOL ? no_argument : required_argument,
                                  NULL, OPT_TABLE + (int)(opt - mms_pipeline_options)};
    lo[n++] = (struct option){"live", no_argument, NULL, OPT_LIVE};
    lo[n++] = (struct option){"offline", no_argument, NULL, OPT_OFFLINE};
    lo[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    lo[n] = (struct option){0};
    return n;
}

/* Fills o from argv; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, struct mms_pipeline_opts *o)
{
    struct option lo[64];
    build_longopts(lo, 64);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":i:o:h", lo, NULL)) != -1) {
        const char *name = NULL, *val = optarg;
        if (c == 'i')
            name = "input";
        else if (c == 'o')
            name = "output";
        else if (c == 'h' || c == OPT_HELP)
            return usage(stdout), ARGS_EXIT_OK;
        else if (c == OPT_LIVE || c == OPT_OFFLINE)
            name = "mode", val = c == OPT_LIVE ? "live" : "offline";
        else if (c >= OPT_TABLE && c < OPT_LIVE) {
            const struct mms_option *opt = &mms_pipeline_options[c - OPT_TABLE];
            name = opt->name;
            if (opt->type == MMS_OPT_BOOL)
                val = "yes";
        } else {
            /* getopt leaves the offending word at optind - 1, or the short
             * option letter in optopt when the value ran off the end. */
            const char *word = optind - 1 < argc ? argv[optind - 1] : "";
            char shortopt[3] = {'-', (char)optopt, 0};
            if (optopt && (optind - 1 >= argc || word[1] != '-'))
                word = shortopt;
            fprintf(stderr, c == ':' ? "mms run: %s needs a value\n"
                                     : "mms run: unknown option '%s' (try --help)\n",
                    word);
            return ARGS_EXIT_USAGE;
        }
        struct mms_err err;
        if (mms_option_set(o, name, val, &err)) {
            fprintf(stderr, "mms run: %s\n", err.msg);
            return ARGS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mms run: unexpected argument '%s'\n", argv[optind]);
        return ARGS_EXIT_USAGE;
    }
    if (!o->input) {
        fprintf(stderr, "mms run: missing -i INPUT\n");
        return ARGS_EXIT_USAGE;
    }
    if (!o->noutputs && !o->window) {
        fprintf(stderr, "mms run: nothing to do: give -o OUTPUT (or -o null) or --window\n");
        return ARGS_EXIT_USAGE;
    }
    return -1;
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
            "%lld reconnects, %s mode\n",
            (long long)c.written, seconds, seconds > 0 ? c.written / seconds : 0,
            (long long)c.inferred, (long long)c.dropped, (long long)c.reconnects,
            c.live ? "live" : "offline");
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
    struct mms_pipeline_opts o;
    struct mms_err err = {{0}};
    int status = ARGS_EXIT_FAIL, damaged = 0;
    if (mms_options_defaults(&o))
        return cli_fail("run", "out of memory");
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        status = rc;
        goto out;
    }
    /* Failures reach the user as one line through mms_err; FFmpeg's own
     * complaints about a damaged stream would only repeat them per packet. */
    av_log_set_level(AV_LOG_QUIET);
    struct mms_pipeline *p;
    if (mms_pipeline_create(&o, &p, &err)) {
        status = cli_fail("run", "%s", err.msg);
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
    mms_options_free(&o);
    return status;
}

static const struct args_cmd spec = {
    "run", "-i INPUT [-o OUTPUT]... [--window] [OPTIONS]",
    "segment video: a file, camera or stream to a window, files and streams", NULL, NULL, 0, 0,
};

const struct cli_command cli_run = {&spec, run};
