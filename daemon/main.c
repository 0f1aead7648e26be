/* mmsd: the daemon. Parses the command line and the config file, then
 * hands over to the event loop (daemon/daemon.c). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/redact.h"
#include "core/version.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "mms/mms.h"

enum { OPT_PRINT_CONFIG = 256, OPT_CHECK, OPT_VERSION };

static void usage(FILE *f)
{
    fprintf(f, "Usage: mmsd [-c FILE] [--print-config | --check]\n"
               "       mmsd --help | --version\n\n"
               "Runs the segmentation pipelines of a config file, controlled over HTTP.\n\n"
               "Options:\n"
               "  -c, --config FILE          config file [" MMSD_CONFIG_DEFAULT "]\n"
               "  --print-config             print the effective config (every key, with help)\n"
               "                             and exit\n"
               "  --check                    check the config as a start would (the file,\n"
               "                             the token file, each model) and exit\n"
               "  -h, --help                 this help\n"
               "  --version                  print the version and exit\n\n"
               "Exit status: 0 done, 1 failed, 2 bad usage or a bad config file.\n\n");
    mmsd_config_help(f);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"config", required_argument, NULL, 'c'},
        {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
        {"check", no_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *path = MMSD_CONFIG_DEFAULT;
    int print = 0, check = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", lo, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case OPT_PRINT_CONFIG:
            print = 1;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            /* libmms's own, as the loader found it: a mismatch shows here. */
            printf("mmsd %s (libmms %s)\n", MMS_VERSION, mms_version());
            return 0;
        case ':':
            fprintf(stderr, "mmsd: %s needs a value (try --help)\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "mmsd: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mmsd: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }

    struct mmsd_config cfg;
    struct mms_err err;
    if (mmsd_config_load(&cfg, path, &err)) {
        char shown[sizeof(err.msg)];
        mms_redact_text(err.msg, shown, sizeof(shown)); /* a refused value may be a URL */
        fprintf(stderr, "%s\n", shown); /* FILE:LINE: first, as compilers do */
        return 2;
    }
    if (check) {
        /* A start would say "cannot start:" and exit 1: the same here. */
        int rc = mmsd_daemon_check(&cfg, &err);
        if (rc) {
            char shown[sizeof(err.msg)];
            mms_redact_text(err.msg, shown, sizeof(shown));
            fprintf(stderr, "mmsd: cannot start: %s\n", shown);
        } else {
            printf("%s: ok, %d pipeline%s\n", path, cfg.npipelines, cfg.npipelines == 1 ? "" : "s");
        }
        mmsd_config_free(&cfg);
        return rc ? 1 : 0;
    }
    if (print) {
        int rc = mmsd_config_print(&cfg, stdout) ? 1 : 0;
        mmsd_config_free(&cfg);
        return rc;
    }
    /* A browser that leaves mid-stream must not kill the daemon, and a
     * recording over a file-size limit must fail alone (EFBIG), not kill it. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    return mmsd_daemon_run(&cfg);
}
