#ifndef MMSD_CONFIG_H
#define MMSD_CONFIG_H

/*
 * mmsd's config file: INI, one [mmsd] section (daemon/options.h) and one
 * [pipeline NAME] section per video source, whose keys are the pipeline
 * option table (pipeline/options.h). Everything a file may say is refused
 * at load time with "FILE:LINE: reason" rather than at some later moment
 * in an operating room.
 */

#include <stdio.h>

#include "core/error.h"
#include "daemon/options.h"
#include "pipeline/options.h"

#define MMSD_CONFIG_DEFAULT "/etc/mmsd/mmsd.conf"

/* Names become URL path segments, metric labels and file names. */
#define MMSD_PIPELINE_NAME_MAX 32

/* 1 for a name a [pipeline NAME] may have: up to MMSD_PIPELINE_NAME_MAX
 * ASCII letters, digits, '-', '_' or '.', starting with a letter or digit. */
int mmsd_pipeline_name_valid(const char *s);

struct mmsd_pipeline_conf {
    char *name;
    int line; /* of its [pipeline NAME] header, for messages after loading */
    struct mms_pipeline_opts o;
};

/* All owned; release with mmsd_config_free. */
struct mmsd_config {
    char *path;
    struct mmsd_options d;
    struct mmsd_pipeline_conf *pipelines; /* in file order */
    int npipelines;
};

/* Reads and validates `path`. [mmsd] model and threads are already copied
 * into the pipelines that set none. On failure `c` is left empty (safe to
 * free) and err holds one line, "FILE:LINE: reason" where a line is to
 * blame. -ENOENT and friends for a file that cannot be read, -EINVAL for
 * a bad file. */
int mmsd_config_load(struct mmsd_config *c, const char *path, struct mms_err *err);

void mmsd_config_free(struct mmsd_config *c);

const struct mmsd_pipeline_conf *mmsd_config_find(const struct mmsd_config *c, const char *name);

/* 1 when both have the same name and every option is equal: what a reload
 * leaves alone. */
int mmsd_pipeline_conf_same(const struct mmsd_pipeline_conf *a, const struct mmsd_pipeline_conf *b);
/* 1 when they differ only in runtime options (style, alpha, ...): what a
 * reload applies to the running pipeline instead of restarting it. */
int mmsd_pipeline_conf_same_but_runtime(const struct mmsd_pipeline_conf *a,
                                        const struct mmsd_pipeline_conf *b);

/* The config as a file that loads back to the same config: every option,
 * unset ones commented out, each after a comment with its help. 0 or the
 * negative errno of a failed write. */
int mmsd_config_print(const struct mmsd_config *c, FILE *f);

/* Every key of both section kinds, for --help. */
void mmsd_config_help(FILE *f);

#endif
