/* The pipeline's own promises (pipeline/pipeline.h): a stop never waits on
 * the network, even while the source is reconnecting to a peer that
 * answers and then says nothing. Real sources and sockets on 127.0.0.1;
 * under ASan this also shows that the source is not freed under a thread
 * that reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include "harness.h"
#include "pipeline/options.h"
#include "pipeline/pipeline.h"
#include "tcp_peer.h"

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static struct mms_pipeline *create(const char *input, const char *mode, const char *output)
{
    char model[1024];
    struct mms_pipeline_opts o;
    struct mms_pipeline *p = NULL;
    struct mms_err err = {{0}};
    snprintf(model, sizeof(model), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    CHECK(mms_options_defaults(&o) == 0);
    int rc = mms_option_set(&o, "input", input, &err);
    rc = rc ? rc : mms_option_set(&o, "model", model, &err);
    rc = rc ? rc : mms_option_set(&o, "size", "64x128", &err);
    rc = rc ? rc : mms_option_set(&o, "threads", "1", &err);
    rc = rc ? rc : mms_option_set(&o, "mode", mode, &err);
    rc = rc ? rc : mms_option_set(&o, "output", output, &err);
    rc = rc ? rc : mms_pipeline_create(&o, &p, &err);
    mms_options_free(&o);
    CHECK_MSG(rc == 0, "%s: %s", input, err.msg);
    return p;
}

/* Two seconds of MPEG-TS, for a peer to serve. */
static const char *ts_clip(void)
{
    static char path[512];
    char cmd[1024];
    snprintf(path, sizeof(path), "%s/served.ts", mms_test_tmpdir());
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y -f lavfi -i "
             "testsrc2=size=160x120:rate=25 -frames:v 50 -c:v mpeg2video -f mpegts '%s'", path);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    return path;
}

/* The source ends, and the reconnect finds a peer that accepts and never
 * sends: opening it would wait out the 5 s network timeout. A stop then
 * returns at once. */
static void stop_during_a_reconnect_returns_at_once(void)
{
    struct tcp_peer *peer = NULL;
    CHECK(tcp_peer_start(0, ts_clip(), &peer) == 0);
    if (!peer)
        return;
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tcp_peer_port(peer));
    struct mms_pipeline *p = create(url, "live", "null");
    struct mms_err err = {{0}};
    if (p && mms_pipeline_start(p, &err) == 0) {
        for (int i = 0; i < 200 && tcp_peer_accepted(peer) < 2; i++)
            sleep_ms(50);
        CHECK_MSG(tcp_peer_accepted(peer) >= 2, "no reconnect: %d connections",
                  tcp_peer_accepted(peer));
        sleep_ms(300); /* well into the open */
        struct mms_pipeline_counters c;
        mms_pipeline_counters(p, &c);
        CHECK_MSG(!c.signal && c.reconnects == 0 && c.decoded > 0,
                  "signal %d, %lld reconnects, %lld decoded", c.signal,
                  (long long)c.reconnects, (long long)c.decoded);
        double t0 = mms_now_ms();
        mms_pipeline_stop(p);
        int rc = mms_pipeline_wait(p, NULL, &err);
        double took = mms_now_ms() - t0;
        printf("     stopped %.0f ms after the stop\n", took);
        CHECK_MSG(took < 1000, "the stop took %.0f ms", took);
        CHECK_MSG(rc == 0, "%s", err.msg);
    }
    mms_pipeline_destroy(p);
    tcp_peer_stop(peer);
}

__attribute__((constructor)) static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

MMS_TESTS(T(stop_during_a_reconnect_returns_at_once))
