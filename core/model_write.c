#include "core/model_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

static struct json_object *entry(const char *dtype, const int64_t *shape, int ndim,
                                 uint64_t begin, uint64_t end)
{
    struct json_object *o = json_object_new_object(), *s = json_object_new_array();
    for (int i = 0; i < ndim; i++)
        json_object_array_add(s, json_object_new_int64(shape[i]));
    struct json_object *off = json_object_new_array();
    json_object_array_add(off, json_object_new_int64((int64_t)begin));
    json_object_array_add(off, json_object_new_int64((int64_t)end));
    json_object_object_add(o, "dtype", json_object_new_string(dtype));
    json_object_object_add(o, "shape", s);
    json_object_object_add(o, "data_offsets", off);
    return o;
}

static struct json_object *metadata(const struct mms_model *m, const char *const *meta)
{
    struct json_object *o = json_object_new_object();
    for (size_t i = 0; i < mms_model_meta_count(m); i++) {
        const char *k, *v;
        mms_model_meta_at(m, i, &k, &v);
        json_object_object_add(o, k, json_object_new_string(v));
    }
    for (int i = 0; meta && meta[i]; i += 2)
        json_object_object_add(o, meta[i], json_object_new_string(meta[i + 1]));
    return o;
}

/* The header JSON, and the data size it describes: the model's tensors in
 * file order (but `name`), then `name`. */
static struct json_object *header(const struct mms_model *m, const char *name, int64_t n,
                                  const char *const *meta, uint64_t *data_size)
{
    struct json_object *h = json_object_new_object();
    uint64_t off = 0;
    json_object_object_add(h, "__metadata__", metadata(m, meta));
    for (size_t i = 0; i < mms_model_count(m); i++) {
        const struct mms_tensor *t = mms_model_at(m, i);
        if (!strcmp(t->name, name))
            continue;
        json_object_object_add(h, t->name,
                               entry(t->dtype_name, t->shape, t->ndim, off, off + t->nbytes));
        off += t->nbytes;
    }
    if (n >= 0)
        json_object_object_add(h, name, entry("F32", &n, 1, off, off + (uint64_t)n * 4));
    *data_size = off + (uint64_t)(n > 0 ? n : 0) * 4;
    return h;
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -EIO;
}

static int write_body(FILE *f, const struct mms_model *m, const char *name, const char *json,
                      const float *data, int64_t n)
{
    size_t len = strlen(json), pad = (8 - (8 + len) % 8) % 8;
    uint8_t hl[8];
    for (int i = 0; i < 8; i++)
        hl[i] = (uint8_t)((uint64_t)(len + pad) >> (8 * i));
    int rc = write_all(f, hl, 8);
    rc = rc ? rc : write_all(f, json, len);
    /* Spaces: the header stays valid JSON and the data 8-byte aligned. */
    for (size_t i = 0; i < pad && !rc; i++)
        rc = write_all(f, " ", 1);
    for (size_t i = 0; i < mms_model_count(m) && !rc; i++) {
        const struct mms_tensor *t = mms_model_at(m, i);
        if (strcmp(t->name, name))
            rc = write_all(f, t->data, t->nbytes);
    }
    return rc || n <= 0 ? rc : write_all(f, data, (size_t)n * sizeof(float));
}

int mms_model_write_with(const struct mms_model *m, const char *path, const char *name,
                         const float *data, int64_t n, const char *const *meta,
                         struct mms_err *err)
{
    char tmp[4096];
    uint64_t size;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= sizeof(tmp))
        return mms_err_set(err, -ENAMETOOLONG, "%s: %s", path, strerror(ENAMETOOLONG));
    struct json_object *h = header(m, name, n, meta, &size);
    const char *json = json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN);
    FILE *f = fopen(tmp, "wb");
    int rc = f ? write_body(f, m, name, json, data, n) : -errno;
    if (f && fflush(f))
        rc = rc ? rc : -errno;
    if (f && !rc && fsync(fileno(f)))
        rc = -errno;
    if (f && fclose(f))
        rc = rc ? rc : -errno;
    if (!rc && rename(tmp, path))
        rc = -errno;
    json_object_put(h);
    if (rc) {
        unlink(tmp);
        return mms_err_set(err, rc, "%s: cannot write: %s", path, strerror(-rc));
    }
    return 0;
}
