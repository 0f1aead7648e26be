#ifndef MMSD_OPTIONS_H
#define MMSD_OPTIONS_H

/*
 * The [mmsd] section's option table (core/option.h), like pipelines' in
 * pipeline/options.h: one declarative entry per setting drives the config
 * file, validation, `mmsd --help` and `mmsd --print-config`. Its `runtime`
 * flag means a SIGHUP reload may change the option; the others need a
 * restart.
 *
 * Option names compare with '-' and '_' as the same character, so a file
 * may say log_level or log-level; files are printed with '_'.
 */

#include <stddef.h>

#include "core/error.h"
#include "core/option.h"
#include "daemon/listen.h"

/* syslog/journald priorities, so a log line starts with "<level>". */
enum mmsd_log_level {
    MMSD_LOG_ERR = 3,
    MMSD_LOG_WARNING = 4,
    MMSD_LOG_NOTICE = 5,
    MMSD_LOG_INFO = 6,
    MMSD_LOG_DEBUG = 7,
};

/* Daemon-wide settings. Strings are owned (mmsd_options_free). */
struct mmsd_options {
    char *listen;     /* HOST:PORT of the HTTP API (daemon/listen.h) */
    char *model;      /* default for pipelines that set none; NULL: the pipeline's default */
    int threads;      /* default for pipelines that set none */
    int log_level;    /* enum mmsd_log_level */
    char *token_file; /* bearer token, required off loopback; NULL: none */
    char *allowed_hosts; /* Host names the API answers to (daemon/http.h); NULL: none */
    char *font;       /* text on video (overlay/text.h); NULL: $MMS_FONT, else DejaVu Sans */
    char *state_dir;  /* kept across restarts (daemon/state.h); NULL: $STATE_DIRECTORY */
};

extern const struct mms_option mmsd_option_table[];

/* mms_opt_name_eq: '-' and '_' compare equal; otherwise exact. */
int mmsd_option_name_eq(const char *a, const char *b);

const struct mms_option *mmsd_option_find(const char *name);

int mmsd_options_defaults(struct mmsd_options *o);
void mmsd_options_free(struct mmsd_options *o);

/* Parses and validates `value` for option `name` and stores it: 0, -ENOENT
 * for an unknown name, -EINVAL for a bad value (the message names both). */
int mmsd_option_set(struct mmsd_options *o, const char *name, const char *value,
                    struct mms_err *err);

/* The current value in the option's own syntax; "" when unset. */
void mmsd_option_format(const struct mmsd_options *o, const struct mms_option *opt, char *buf,
                        size_t len);

const char *mmsd_log_level_name(int level);

#endif
