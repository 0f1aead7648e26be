/* The FFmpeg helpers io/ shares: error strings, URL tests, and the guard
 * around calls that may wait on a network peer. */
#include <errno.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/time.h>

#include "harness.h"
#include "io/av_common.h"

static void reason_names_ffmpeg_errors(void)
{
    char buf[128];
    CHECK(strstr(mms_av_reason(AVERROR_EOF, buf, sizeof(buf)), "End of file"));
    CHECK(!strcmp(mms_av_reason(AVERROR(ENOSPC), buf, sizeof(buf)), strerror(ENOSPC)));
}

static void reason_of_an_unknown_code_says_its_number(void)
{
    char buf[128];
    /* FFmpeg prints its own text for unknown tags; a code it cannot name
     * at all still gives the caller something to read. */
    mms_av_reason(-123456789, buf, sizeof(buf));
    CHECK_MSG(buf[0], "empty reason");
}

static void prefix_and_suffix_ignore_case(void)
{
    CHECK(mms_av_has_prefix("TCP://host:1", "tcp://"));
    CHECK(mms_av_has_suffix("/a/b/REC.MP4", ".mp4"));
}

static void prefix_and_suffix_refuse_others(void)
{
    CHECK(!mms_av_has_prefix("tc", "tcp://"));
    CHECK(!mms_av_has_prefix("udp://h:1", "tcp://"));
    CHECK(!mms_av_has_suffix(".mp4", ".mp4")); /* a name, not only the extension */
    CHECK(!mms_av_has_suffix("a.mp4.part", ".mp4"));
}

static void network_urls_are_network(void)
{
    CHECK(mms_av_is_network("tcp://127.0.0.1:9"));
    CHECK(mms_av_is_network("udp://127.0.0.1:9"));
    CHECK(mms_av_is_network("rtsp://camera/stream"));
}

static void files_and_pipes_are_not_network(void)
{
    CHECK(!mms_av_is_network("/tmp/a.mp4"));
    CHECK(!mms_av_is_network("file:/tmp/a.mp4"));
    CHECK(!mms_av_is_network("pipe:0"));
    CHECK(!mms_av_is_network("lavfi:testsrc"));
}

static void rw_timeout_is_set_when_missing(void)
{
    AVDictionary *d = NULL;
    CHECK(mms_av_set_rw_timeout(&d, 1234) == 0);
    const AVDictionaryEntry *e = av_dict_get(d, "rw_timeout", NULL, 0);
    CHECK(e && !strcmp(e->value, "1234"));
    av_dict_free(&d);
}

static void rw_timeout_keeps_the_callers(void)
{
    AVDictionary *d = NULL;
    av_dict_set(&d, "rw_timeout", "99", 0);
    CHECK(mms_av_set_rw_timeout(&d, 1234) == 0);
    const AVDictionaryEntry *e = av_dict_get(d, "rw_timeout", NULL, 0);
    CHECK(e && !strcmp(e->value, "99"));
    av_dict_free(&d);
}

static int calls;
static int stop_on_second_call(void *opaque)
{
    (void)opaque;
    return ++calls >= 2;
}

static void a_stop_is_kept(void)
{
    struct mms_av_wait w;
    calls = 0;
    mms_av_wait_init(&w, 0, stop_on_second_call, NULL);
    CHECK(!mms_av_wait_cb(&w));
    CHECK(mms_av_wait_cb(&w));
    calls = -100; /* the callback would now say no: the answer stays */
    CHECK(mms_av_wait_cb(&w) && mms_av_wait_stopped(&w));
}

static void an_idle_wait_ends_at_the_deadline_only_when_armed(void)
{
    struct mms_av_wait w;
    mms_av_wait_init(&w, 1000, NULL, NULL);
    CHECK(!mms_av_wait_cb(&w));
    mms_av_wait_arm(&w);
    av_usleep(5000);
    CHECK(mms_av_wait_cb(&w));
    mms_av_wait_disarm(&w);
    CHECK(!mms_av_wait_cb(&w));
}

static void wait_errors_say_why(void)
{
    struct mms_av_wait w;
    struct mms_err err;
    mms_av_wait_init(&w, 2000000, NULL, NULL);
    CHECK(mms_av_wait_error(&w, AVERROR_EXIT, "tcp://x: cannot write", "the receiver took no data",
                            &err) == AVERROR(ETIMEDOUT));
    CHECK_MSG(!strcmp(err.msg, "tcp://x: cannot write: the receiver took no data for 2.0 s"), "%s",
              err.msg);
    CHECK(mms_av_wait_error(&w, AVERROR(ENOSPC), "a.mp4", "no data", &err) == AVERROR(ENOSPC));
    CHECK_MSG(strstr(err.msg, "a.mp4: ") == err.msg, "%s", err.msg);
    mms_av_wait_stop(&w);
    CHECK(mms_av_wait_error(&w, AVERROR(ENOSPC), "src", "no data", &err) == AVERROR_EXIT);
    CHECK_MSG(!strcmp(err.msg, "src: interrupted"), "%s", err.msg);
}

MMS_TESTS(T(reason_names_ffmpeg_errors), T(reason_of_an_unknown_code_says_its_number),
          T(prefix_and_suffix_ignore_case), T(prefix_and_suffix_refuse_others),
          T(network_urls_are_network), T(files_and_pipes_are_not_network),
          T(rw_timeout_is_set_when_missing), T(rw_timeout_keeps_the_callers),
          T(a_stop_is_kept), T(an_idle_wait_ends_at_the_deadline_only_when_armed),
          T(wait_errors_say_why))
