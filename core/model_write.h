#ifndef MMS_MODEL_WRITE_H
#define MMS_MODEL_WRITE_H

/*
 * Writes a model file: every tensor and metadata entry of an open model,
 * one F32 tensor added (or replacing one of that name) and metadata keys
 * set. The file appears whole or not at all (written beside, then
 * renamed), so a failed or interrupted write never leaves half a model.
 */

#include <stdint.h>

#include "core/error.h"
#include "core/model.h"

/* meta: key, value pairs, NULL-terminated; NULL for none. n < 0: the
 * tensor `name` is left out (removed), data unused. */
int mms_model_write_with(const struct mms_model *m, const char *path, const char *name,
                         const float *data, int64_t n, const char *const *meta,
                         struct mms_err *err);

#endif
