#include "daemon/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "core/redact.h"

static atomic_int max_level = MMSD_LOG_INFO;

void mmsd_log_set_level(int level)
{
    atomic_store(&max_level, level);
}

int mmsd_log_enabled(int level)
{
    return level <= atomic_load(&max_level);
}

void mmsd_log(int level, const char *fmt, ...)
{
    if (!mmsd_log_enabled(level))
        return;
    char raw[2048], line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(raw))
        mms_redact_cut_tail(raw);
    /* Sources and outputs are URLs that may hold passwords and stream
     * keys, and FFmpeg's messages repeat them: no line shows one
     * (core/redact.h). Redacted whole, so no URL is cut before. */
    mms_redact_text(raw, line, sizeof(line));
    /* A message is one journal entry: newlines inside it would split it. */
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    fprintf(stderr, "<%d>%s\n", level, line);
}

/* FFmpeg's own lines are per-packet detail ("Invalid frame dimensions" for
 * every frame before the first keyframe of a stream joined mid-way); what
 * matters reaches the log through mmsd's own messages. So they go to debug,
 * and whole lines only: FFmpeg may print one line in several calls. */
static _Thread_local char av_line[1024];
static _Thread_local int av_prefix = 1;

static void av_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_WARNING || !mmsd_log_enabled(MMSD_LOG_DEBUG))
        return;
    size_t used = strlen(av_line);
    av_log_format_line2(avcl, level, fmt, vl, av_line + used, (int)(sizeof(av_line) - used),
                        &av_prefix);
    size_t n = strlen(av_line);
    if (n && av_line[n - 1] != '\n' && n < sizeof(av_line) - 1)
        return;
    if (n >= sizeof(av_line) - 1 && av_line[n - 1] != '\n')
        mms_redact_cut_tail(av_line); /* cut: the rest of the line is lost */
    while (n && (av_line[n - 1] == '\n' || av_line[n - 1] == '\r'))
        av_line[--n] = 0;
    if (n)
        mmsd_log(level <= AV_LOG_FATAL ? MMSD_LOG_ERR : MMSD_LOG_DEBUG, "ffmpeg: %s", av_line);
    av_line[0] = 0;
}

void mmsd_log_capture_ffmpeg(void)
{
    av_log_set_callback(av_callback);
}
