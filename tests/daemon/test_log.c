/* mmsd's log (daemon/log.h) shows no secret of a URL, not even when the
 * message is longer than the line it is cut to: a cut inside a URL's
 * userinfo, before its '@', hides the rest of that URL. Lines go to
 * stderr, which each case points at a file of its own and reads back. The
 * secrets are made up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "daemon/log.h"
#include "harness.h"

#define SECRET "CamPassw0rdXYZ"

/* What fn logged, into out (NUL-terminated). */
static void logged(void (*fn)(void), char *out, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/log-XXXXXX", mms_test_tmpdir());
    int fd = mkstemp(path), saved = dup(2);
    CHECK(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, len - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
}

/* A message of `buf` - 1 bytes cut `at` bytes into the userinfo of its
 * last URL. A first URL with a long secret comes before it: redacted, it
 * shrinks, so what follows falls within the line that is shown. */
static char *cut_in_userinfo(size_t buf, size_t at, size_t secret)
{
    static const char tail[] = "rtsp://admin:" SECRET "@cam/s1";
    char *msg = malloc(buf + sizeof(tail));
    size_t n = (size_t)sprintf(msg, "first rtsp://u:");
    memset(msg + n, 'p', secret);
    n += secret;
    n += (size_t)sprintf(msg + n, "@a/s1 then ");
    size_t pad = buf - 1 - at - n;
    memset(msg + n, 'x', pad);
    msg[n + pad - 1] = ' ';
    memcpy(msg + n + pad, tail, sizeof(tail));
    return msg;
}

static void long_message(void)
{
    char *msg = cut_in_userinfo(2048, strlen("rtsp://admin:") + 4, 1500);
    mmsd_err("%s", msg);
    free(msg);
}

/* Cut at 2047 bytes inside "admin:CamP...": none of the secret shows. */
static void a_long_message_cut_in_a_password_hides_it(void)
{
    char out[4096];
    logged(long_message, out, sizeof(out));
    CHECK_MSG(out[0] == '<' && strstr(out, "xxx rtsp://") && !strstr(out, "admin") &&
                  !strstr(out, "CamP"), "%.80s",
              out + (strlen(out) > 80 ? strlen(out) - 80 : 0));
}

static void ffmpeg_line(void)
{
    char *msg = cut_in_userinfo(1024, strlen("rtsp://admin:") + 4, 600);
    mmsd_log_set_level(MMSD_LOG_DEBUG);
    mmsd_log_capture_ffmpeg();
    av_log(NULL, AV_LOG_WARNING, "%s\n", msg);
    av_log_set_callback(av_log_default_callback);
    mmsd_log_set_level(MMSD_LOG_INFO);
    free(msg);
}

/* The same for one of FFmpeg's lines, cut at 1023 bytes. */
static void a_long_ffmpeg_line_cut_in_a_password_hides_it(void)
{
    char out[4096];
    logged(ffmpeg_line, out, sizeof(out));
    CHECK_MSG(strstr(out, "ffmpeg: ") && strstr(out, "xxx rtsp://") && !strstr(out, "admin") &&
                  !strstr(out, "CamP"),
              "%.120s", out + (strlen(out) > 120 ? strlen(out) - 120 : 0));
}

static void short_message(void)
{
    mmsd_err("input rtsp://admin:" SECRET "@cam/s1: Connection refused");
}

/* A message that fits is redacted as any: the URL's host and the reason
 * stay. */
static void a_short_message_keeps_all_but_the_secret(void)
{
    char out[1024];
    logged(short_message, out, sizeof(out));
    CHECK_STR_EQ(out, "<3>input rtsp://***@cam/s1: Connection refused\n");
}

MMS_TESTS(T(a_long_message_cut_in_a_password_hides_it),
          T(a_long_ffmpeg_line_cut_in_a_password_hides_it),
          T(a_short_message_keeps_all_but_the_secret))
