#ifndef MMS_LOCATE_H
#define MMS_LOCATE_H

/*
 * Finds the shipped default model: $MMS_MODEL, else (for a binary in the
 * build tree) the source tree, else the installed data directory.
 */

#include <stddef.h>

/* Writes the path into buf; -ENOENT with the places tried listed in buf
 * when none exists. */
int mms_locate_default_model(char *buf, size_t len);

/* The same choice between the given places; dev: the binary runs from a
 * build or source tree. */
int mms_locate_model_in(const char *installed, const char *source, int dev, char *buf,
                        size_t len);

#define MMS_DEFAULT_MODEL_NAME "mms-rt.safetensors"

#endif
