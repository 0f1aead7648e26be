/* The one rule for showing a URL (core/redact.h): userinfo, secret query
 * values and RTMP stream keys become ***, the rest of the URL and of the
 * text around it stays. The secrets here are made up. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/redact.h"
#include "harness.h"

static void url_is(const char *in, const char *want)
{
    char out[512];
    CHECK_EQ(mms_redact_url(in, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, want);
}

static void text_is(const char *in, const char *want)
{
    char out[512];
    CHECK_EQ(mms_redact_text(in, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, want);
}

/* ---- hidden ---- */

static void userinfo_is_hidden(void)
{
    url_is("rtsp://admin:CamPassw0rd@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1");
    url_is("rtsp://admin:CamPassw0rd@cam", "rtsp://***@cam");
    url_is("srt://u:p@[::1]:9000?mode=caller", "srt://***@[::1]:9000?mode=caller");
}

/* A lone user name may be the key itself. */
static void user_alone_is_hidden(void)
{
    url_is("https://ghp_tok3n@host/x.m3u8", "https://***@host/x.m3u8");
}

/* As FFmpeg reads it: the last '@' before the path ends the userinfo. */
static void password_with_at_is_hidden(void)
{
    url_is("rtsp://admin:p@ss@cam/s1", "rtsp://***@cam/s1");
}

static void secret_query_values_are_hidden(void)
{
    url_is("srt://h:9000?mode=caller&passphrase=Sup3rSecret1&latency=200",
           "srt://h:9000?mode=caller&passphrase=***&latency=200");
    url_is("https://h/v?X-Amz-Signature=abc&api_key=k1;access_token=t1&AUTH=a&pwd=p&cred=c",
           "https://h/v?X-Amz-Signature=***&api_key=***;access_token=***&AUTH=***&pwd=***"
           "&cred=***");
    url_is("http://h/v#access_token=t2&state=s", "http://h/v#access_token=***&state=s");
}

/* Many SRT ingest servers take the publish key as the stream ID. */
static void srt_streamid_is_hidden(void)
{
    url_is("srt://ingest.example.com:9000?mode=caller&streamid=#!::r=live/k3yV4lue,m=publish",
           "srt://ingest.example.com:9000?mode=caller&streamid=***");
    url_is("srt://h:9000?latency=200&StreamID=k3yV4lue&mode=caller",
           "srt://h:9000?latency=200&StreamID=***&mode=caller");
}

static void rtmp_stream_key_is_hidden(void)
{
    url_is("rtmp://live.example.com/app/live_1234_abcdef", "rtmp://live.example.com/app/***");
    url_is("rtmps://live.example.com:443/app/k3y/", "rtmps://live.example.com:443/app/***/");
    url_is("RTMP://h/app/K", "RTMP://h/app/***");
    url_is("rtmpte://h/app/K?x=1", "rtmpte://h/app/***?x=1");
    url_is("rtmp://h/app/K live=1", "rtmp://h/app/***");
}

/* FFmpeg's errors embed the URL: each one in a message is redacted. */
static void urls_in_text_are_hidden(void)
{
    text_is("rtsp://admin:CamPassw0rd@10.0.0.5/stream1: Connection refused",
            "rtsp://***@10.0.0.5/stream1: Connection refused");
    text_is("output 'rtmp://h/app/KEY' failed; then srt://h:1?passphrase=abc.",
            "output 'rtmp://h/app/***' failed; then srt://h:1?passphrase=***.");
    text_is("(via rtsp://a:b@c)", "(via rtsp://***@c)");
    text_is("://u:p@h/x", "://***@h/x");
}

/* Cut to fit, what is left is still redacted. */
static void a_cut_result_stays_redacted(void)
{
    const char *in = "rtsp://admin:CamPassw0rd@10.0.0.5/stream1";
    for (size_t n = 1; n < 48; n++) {
        char out[64];
        int rc = mms_redact_url(in, out, n);
        CHECK_EQ(rc, n > strlen("rtsp://***@10.0.0.5/stream1") ? 0 : -ENOSPC);
        CHECK(strlen(out) < n);
        CHECK_MSG(!strstr(out, "admin") && !strstr(out, "Cam"), "%s", out);
    }
}

static void redacting_twice_changes_nothing(void)
{
    const char *in = "x rtsp://a:b@h/s rtmp://h/app/KEY srt://h?passphrase=p y";
    char once[256], twice[256];
    CHECK_EQ(mms_redact_text(in, once, sizeof(once)), 0);
    CHECK_EQ(mms_redact_text(once, twice, sizeof(twice)), 0);
    CHECK_STR_EQ(once, twice);
}

/* ---- kept ---- */

static void plain_urls_are_kept(void)
{
    url_is("udp://127.0.0.1:5000", "udp://127.0.0.1:5000");
    url_is("rtsp://cam:554/stream1", "rtsp://cam:554/stream1");
    url_is("srt://h:9000?mode=caller&latency=200&maxbw=-1",
           "srt://h:9000?mode=caller&latency=200&maxbw=-1");
    url_is("tcp://[::1]:9000?listen", "tcp://[::1]:9000?listen");
}

static void what_is_not_a_url_is_kept(void)
{
    url_is("/var/lib/mmsd/or1.mp4", "/var/lib/mmsd/or1.mp4");
    url_is("lavfi:testsrc2=size=640x360", "lavfi:testsrc2=size=640x360");
    url_is("", "");
    text_is("no route to host: errno 113 (a:b@c is no URL)",
            "no route to host: errno 113 (a:b@c is no URL)");
}

/* Only rtmp URLs have a stream key in their path. */
static void other_paths_are_kept(void)
{
    url_is("http://h/live/KEY", "http://h/live/KEY");
    url_is("rtsp://h/a/b", "rtsp://h/a/b");
}

static void rtmp_without_path_is_kept(void)
{
    url_is("rtmp://h", "rtmp://h");
    url_is("rtmp://h:1935/", "rtmp://h:1935/");
}

/* An '@' after the path or in the query is no userinfo. */
static void at_in_query_is_not_userinfo(void)
{
    url_is("http://h/x?user=a@b", "http://h/x?user=a@b");
    url_is("http://h/m@il/x", "http://h/m@il/x");
}

static void key_names(void)
{
    static const char *const secret[] = {"passphrase", "Password", "pass",  "KEY",
                                         "api-key",    "token",    "x-auth", "sig",
                                         "Secret",     "pwd",      "streamid", "srt_StreamId",
                                         "headers",    "cookies",  "Cookie",   "srtp_in_params",
                                         "sessionid"};
    static const char *const plain[] = {"mode",     "latency",    "stream",     "listen", "user",
                                        "pkt",      "user_agent", "video_size", "rw_timeout"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(*secret); i++)
        CHECK_MSG(mms_redact_secret_key(secret[i], strlen(secret[i])), "%s", secret[i]);
    for (size_t i = 0; i < sizeof(plain) / sizeof(*plain); i++)
        CHECK_MSG(!mms_redact_secret_key(plain[i], strlen(plain[i])), "%s", plain[i]);
}

static void cut_is(const char *in, const char *want)
{
    char s[256];
    snprintf(s, sizeof(s), "%s", in);
    mms_redact_cut_tail(s);
    CHECK_STR_EQ(s, want);
}

/* A text cut inside a URL's userinfo, before its '@': all of the URL
 * after "://" is hidden, however short. */
static void a_url_cut_before_its_at_is_hidden(void)
{
    cut_is("opening rtsp://admin:CamPassw", "opening rtsp://***");
    cut_is("x rtsp://a:b@cam/s1 then rtsp://admin:Cam", "x rtsp://a:b@cam/s1 then rtsp://***");
    cut_is("opening rtsp://ad", "opening rtsp://**");
    cut_is("opening rtsp://", "opening rtsp://");
}

/* A URL ended before the cut, or no URL at all, is left to
 * mms_redact_text. */
static void a_cut_after_the_url_changes_nothing(void)
{
    cut_is("opening rtsp://admin:pw@cam/s1 failed: Connection ref",
           "opening rtsp://admin:pw@cam/s1 failed: Connection ref");
    cut_is("no url in this line at al", "no url in this line at al");
    cut_is("'rtsp://admin:pw@cam' said", "'rtsp://admin:pw@cam' said");
}

static void bad_arguments(void)
{
    char out[8];
    CHECK_EQ(mms_redact_url(NULL, out, sizeof(out)), -EINVAL);
    CHECK_EQ(mms_redact_url("x", out, 0), -EINVAL);
    CHECK_EQ(mms_redact_text(NULL, out, sizeof(out)), -EINVAL);
    CHECK_EQ(mms_redact_text("x", NULL, 8), -EINVAL);
}

MMS_TESTS(T(userinfo_is_hidden), T(user_alone_is_hidden), T(password_with_at_is_hidden),
          T(secret_query_values_are_hidden), T(srt_streamid_is_hidden),
          T(rtmp_stream_key_is_hidden),
          T(urls_in_text_are_hidden), T(a_cut_result_stays_redacted),
          T(redacting_twice_changes_nothing), T(plain_urls_are_kept),
          T(what_is_not_a_url_is_kept), T(other_paths_are_kept), T(rtmp_without_path_is_kept),
          T(at_in_query_is_not_userinfo), T(key_names), T(bad_arguments),
          T(a_url_cut_before_its_at_is_hidden), T(a_cut_after_the_url_changes_nothing))
