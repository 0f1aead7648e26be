#ifndef MMSD_LOG_H
#define MMSD_LOG_H

/*
 * mmsd's log: one line per event on stderr, each starting with journald's
 * "<N>" priority prefix so `journalctl -p warning` works without syslog.
 * Thread-safe (one fprintf per line).
 */

#include "daemon/options.h"

void mmsd_log_set_level(int level);
int mmsd_log_enabled(int level);
void mmsd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* FFmpeg's messages into this log (debug level; fatal ones as errors). */
void mmsd_log_capture_ffmpeg(void);

#define mmsd_err(...) mmsd_log(MMSD_LOG_ERR, __VA_ARGS__)
#define mmsd_warn(...) mmsd_log(MMSD_LOG_WARNING, __VA_ARGS__)
#define mmsd_notice(...) mmsd_log(MMSD_LOG_NOTICE, __VA_ARGS__)
#define mmsd_info(...) mmsd_log(MMSD_LOG_INFO, __VA_ARGS__)
#define mmsd_debug(...) mmsd_log(MMSD_LOG_DEBUG, __VA_ARGS__)

#endif
