#include "daemon/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"
#include "overlay/text.h"

#define OFF(f) offsetof(struct mmsd_options, f)

static const char *const level_names[] = {"err", "warning", "notice", "info", "debug", NULL};

/* Only a check: the option keeps the address as written, which is what
 * --print-config shows, and mmsd parses it again to bind. */
static int check_listen(const struct mms_option *opt, const char *value, void *field,
                        struct mms_err *err)
{
    struct sockaddr_storage ss;
    (void)opt, (void)field;
    return mmsd_listen_parse(value, &ss, err);
}

static int check_hosts(const struct mms_option *opt, const char *value, void *field,
                       struct mms_err *err)
{
    (void)opt, (void)field;
    return mmsd_http_check_hosts(value, err);
}

/* The daemon's working directory is no part of its config (systemd's is /). */
static int check_absolute(const struct mms_option *opt, const char *value, void *field,
                          struct mms_err *err)
{
    (void)field;
    if (value[0] != '/')
        return mms_opt_invalid(err, opt, value, "not an absolute path");
    return 0;
}

const struct mms_option mmsd_option_table[] = {
    {.name = "listen", .type = MMS_OPT_STRING, .offset = OFF(listen), .def = "127.0.0.1:8089",
     .parse = check_listen, .arg = "HOST:PORT",
     .help = "HTTP API address, IPv4:PORT or [IPv6]:PORT (port 0: any free one, logged); "
             "off loopback it needs token_file"},
    {.name = "model", .type = MMS_OPT_STRING, .offset = OFF(model), .runtime = 1, .arg = "FILE",
     .help = "model for pipelines that set none (default: $MMS_MODEL, else the shipped mms-rt)"},
    {.name = "threads", .type = MMS_OPT_INT, .offset = OFF(threads), .def = "0", .max = 256,
     .runtime = 1, .arg = "N",
     .help = "inference threads for pipelines that set none; 0 = all cores"},
    {.name = "log_level", .type = MMS_OPT_ENUM, .offset = OFF(log_level), .def = "info",
     .min = MMSD_LOG_ERR, .names = level_names, .runtime = 1, .arg = "L",
     .help = "least important message logged: err, warning, notice, info or debug"},
    {.name = "token_file", .type = MMS_OPT_STRING, .offset = OFF(token_file),
     .arg = "FILE",
     .help = "file holding the bearer token the HTTP API requires (all but /healthz), "
             "up to 4096 characters"},
    {.name = "allowed_hosts", .type = MMS_OPT_STRING, .offset = OFF(allowed_hosts),
     .parse = check_hosts, .arg = "NAMES",
     .help = "host names the API answers to besides IP addresses and localhost, separated "
             "by commas (a browser's Host; any other gets 421)"},
    {.name = "font", .type = MMS_OPT_STRING, .offset = OFF(font), .arg = "FILE",
     .help = "TrueType font for text on video (default: $MMS_FONT, else " MMS_FONT_DEFAULT
             "); builtin: the 8x8 bitmap font, also the fallback"},
    {.name = "state_dir", .type = MMS_OPT_STRING, .offset = OFF(state_dir),
     .parse = check_absolute, .arg = "DIR",
     .help = "directory kept across restarts: recordings stopped through the API stay "
             "stopped (DIR/recording-off); default $STATE_DIRECTORY (systemd's "
             "StateDirectory=), else none"},
    {.name = NULL},
};

int mmsd_option_name_eq(const char *a, const char *b)
{
    return mms_opt_name_eq(a, b);
}

const struct mms_option *mmsd_option_find(const char *name)
{
    return mms_opt_find(mmsd_option_table, name);
}

int mmsd_option_set(struct mmsd_options *o, const char *name, const char *value,
                    struct mms_err *err)
{
    return mms_opt_set(mmsd_option_table, o, name, value, err);
}

void mmsd_option_format(const struct mmsd_options *o, const struct mms_option *opt, char *buf,
                        size_t len)
{
    mms_opt_format(opt, o, buf, len);
}

int mmsd_options_defaults(struct mmsd_options *o)
{
    memset(o, 0, sizeof(*o));
    return mms_opt_defaults(mmsd_option_table, o);
}

void mmsd_options_free(struct mmsd_options *o)
{
    mms_opt_free(mmsd_option_table, o);
}

const char *mmsd_log_level_name(int level)
{
    if (level < MMSD_LOG_ERR || level > MMSD_LOG_DEBUG)
        return "?";
    return level_names[level - MMSD_LOG_ERR];
}
