#ifndef MMS_MODEL_H
#define MMS_MODEL_H

/*
 * A safetensors model file: 8-byte little-endian header length, a JSON
 * header, then raw little-endian tensor data. The file is mapped read-only;
 * tensor data pointers stay valid until mms_model_close().
 *
 * mms_model_open() refuses, with a message naming the problem, any file
 * that is truncated, has a header length past EOF, malformed JSON,
 * out-of-range or overlapping data offsets, a size that disagrees with
 * dtype x shape, or a non-string __metadata__ value. It checks structure
 * only: which tensors and metadata a network needs is the architecture's
 * business (core/arch).
 */

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MMS_MAX_DIMS 8

enum mms_dtype {
    MMS_DTYPE_F32,
    MMS_DTYPE_F16,
    MMS_DTYPE_BF16,
    MMS_DTYPE_F64,
    MMS_DTYPE_I64,
    MMS_DTYPE_I32,
    MMS_DTYPE_I8,
    MMS_DTYPE_U8,
    MMS_DTYPE_BOOL,
    MMS_DTYPE_OTHER,
};

struct mms_tensor {
    const char *name;
    enum mms_dtype dtype;
    const char *dtype_name; /* as written in the file, "F32" */
    int ndim;
    int64_t shape[MMS_MAX_DIMS];
    int64_t numel;
    const void *data; /* inside the mapping; F32 data is 4-byte aligned or copied */
    size_t nbytes;
};

struct mms_model;

int mms_model_open(const char *path, struct mms_model **out, struct mms_err *err);
void mms_model_close(struct mms_model *m);

/* NULL when the tensor does not exist. */
const struct mms_tensor *mms_model_find(const struct mms_model *m, const char *name);
size_t mms_model_count(const struct mms_model *m);
const struct mms_tensor *mms_model_at(const struct mms_model *m, size_t i);

/* __metadata__ entries; NULL when absent. */
const char *mms_model_meta(const struct mms_model *m, const char *key);
size_t mms_model_meta_count(const struct mms_model *m);
void mms_model_meta_at(const struct mms_model *m, size_t i, const char **key,
                       const char **value);

const char *mms_model_path(const struct mms_model *m);
uint64_t mms_model_file_size(const struct mms_model *m);

#endif
