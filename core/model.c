#include "core/model.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

/*
 * Safetensors stores the header length and all tensor data little-endian,
 * and tensor pointers are handed out straight from the mapping, so this
 * assumes a little-endian host (everything we build for).
 *
 * The mapping is MAP_PRIVATE and read-only: another process truncating the
 * file while it is mapped can still SIGBUS us; nothing short of copying
 * the whole file prevents that, and models are not edited in place.
 */

/* Real headers are kilobytes; anything bigger is corrupt or hostile, and
 * json-c would allocate for all of it before we could say no. */
#define MAX_HEADER (100u * 1000 * 1000)

struct mms_model {
    char *path;
    void *map;
    size_t map_size;
    const unsigned char *data; /* start of the data region */
    uint64_t data_size;

    struct mms_tensor *tensors; /* file order, for listings */
    size_t ntensors;
    const struct mms_tensor **by_name; /* sorted, for mms_model_find */
    void **copies; /* aligned copies of misaligned tensors */
    size_t ncopies;

    char **meta_keys, **meta_vals; /* file order */
    size_t nmeta;
};

struct dtype_info {
    const char *name;
    enum mms_dtype dtype;
    int size;
};

/* Sub-byte types (F4, F6_*) are absent on purpose: a tensor of them is not
 * a whole number of bytes per element, so the size check cannot work and
 * they are refused as unknown. */
static const struct dtype_info dtypes[] = {
    {"F32", MMS_DTYPE_F32, 4},
    {"F16", MMS_DTYPE_F16, 2},
    {"BF16", MMS_DTYPE_BF16, 2},
    {"F64", MMS_DTYPE_F64, 8},
    {"I64", MMS_DTYPE_I64, 8},
    {"I32", MMS_DTYPE_I32, 4},
    {"I8", MMS_DTYPE_I8, 1},
    {"U8", MMS_DTYPE_U8, 1},
    {"BOOL", MMS_DTYPE_BOOL, 1},
    {"I16", MMS_DTYPE_OTHER, 2},
    {"U16", MMS_DTYPE_OTHER, 2},
    {"U32", MMS_DTYPE_OTHER, 4},
    {"U64", MMS_DTYPE_OTHER, 8},
    {"F8_E4M3", MMS_DTYPE_OTHER, 1},
    {"F8_E5M2", MMS_DTYPE_OTHER, 1},
    {"F8_E8M0", MMS_DTYPE_OTHER, 1},
    {"C64", MMS_DTYPE_OTHER, 8},
};

static const struct dtype_info *dtype_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (!strcmp(dtypes[i].name, name))
            return &dtypes[i];
    return NULL;
}

/* Zero-byte tensors point here rather than at a possibly misaligned spot
 * in the mapping, and never at NULL, so memcpy(dst, t->data, 0) is fine. */
static const uint64_t empty_data;

/* Byte range of one tensor in the data region, for the overlap check
 * (a copied tensor's pointer no longer tells where it came from). */
struct span {
    int64_t begin, end;
    const char *name;
};

/* json-c clamps integers beyond int64 to INT64_MAX, so that value is
 * refused too rather than trusted as a real size. */
static int get_nonneg_int(struct json_object *o, int64_t *v)
{
    if (!json_object_is_type(o, json_type_int))
        return -1;
    int64_t x = json_object_get_int64(o);
    if (x < 0 || x == INT64_MAX)
        return -1;
    *v = x;
    return 0;
}

static int parse_metadata(struct mms_model *m, struct json_object *meta,
                          struct mms_err *err)
{
    if (!json_object_is_type(meta, json_type_object))
        return mms_err_set(err, -EINVAL, "__metadata__ is not a JSON object");
    size_t n = (size_t)json_object_object_length(meta);
    if (!n)
        return 0;
    m->meta_keys = calloc(n, sizeof(*m->meta_keys));
    m->meta_vals = calloc(n, sizeof(*m->meta_vals));
    if (!m->meta_keys || !m->meta_vals)
        return mms_err_set(err, -ENOMEM, "out of memory");
    json_object_object_foreach(meta, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return mms_err_set(err, -EINVAL,
                               "__metadata__ value for \"%.100s\" is not a string", key);
        /* A reader in another language would see more than C does. */
        if ((size_t)json_object_get_string_len(val) != strlen(json_object_get_string(val)))
            return mms_err_set(err, -EINVAL,
                               "__metadata__ value for \"%.100s\" holds a NUL byte", key);
        /* Count first so close() frees a half-filled pair too. */
        size_t i = m->nmeta++;
        m->meta_keys[i] = strdup(key);
        m->meta_vals[i] = strdup(json_object_get_string(val));
        if (!m->meta_keys[i] || !m->meta_vals[i])
            return mms_err_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

/* Fills t from one header entry. Offsets are checked against the data
 * region before any pointer into it is formed. */
static int parse_tensor(struct mms_model *m, struct mms_tensor *t,
                        struct json_object *desc, struct span *sp, struct mms_err *err)
{
    const char *name = t->name;
    struct json_object *jdtype, *jshape, *joffs;

    if (!json_object_is_type(desc, json_type_object))
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": entry is not a JSON object",
                           name);

    if (!json_object_object_get_ex(desc, "dtype", &jdtype))
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": missing dtype", name);
    if (!json_object_is_type(jdtype, json_type_string))
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": dtype is not a string", name);
    const char *dname = json_object_get_string(jdtype);
    const struct dtype_info *di = dtype_lookup(dname);
    if (!di)
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": unknown dtype \"%.32s\"",
                           name, dname);
    t->dtype = di->dtype;
    t->dtype_name = di->name; /* static, unlike the JSON string */

    if (!json_object_object_get_ex(desc, "shape", &jshape))
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": missing shape", name);
    if (!json_object_is_type(jshape, json_type_array))
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": shape is not an array", name);
    size_t ndim = json_object_array_length(jshape);
    if (ndim > MMS_MAX_DIMS)
        return mms_err_set(err, -EINVAL,
                           "tensor \"%.100s\": shape has %zu dims, at most %d supported",
                           name, ndim, MMS_MAX_DIMS);
    t->ndim = (int)ndim;
    int64_t numel = 1; /* shape [] is a scalar */
    for (size_t i = 0; i < ndim; i++) {
        int64_t d;
        if (get_nonneg_int(json_object_array_get_idx(jshape, i), &d))
            return mms_err_set(err, -EINVAL,
                               "tensor \"%.100s\": shape[%zu] is not a non-negative integer",
                               name, i);
        if (d && numel > INT64_MAX / d)
            return mms_err_set(err, -EINVAL, "tensor \"%.100s\": shape overflows", name);
        t->shape[i] = d;
        numel *= d;
    }
    if (numel > INT64_MAX / di->size)
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": shape overflows", name);
    t->numel = numel;

    if (!json_object_object_get_ex(desc, "data_offsets", &joffs))
        return mms_err_set(err, -EINVAL, "tensor \"%.100s\": missing data_offsets", name);
    int64_t begin, end;
    if (!json_object_is_type(joffs, json_type_array) ||
        json_object_array_length(joffs) != 2 ||
        get_nonneg_int(json_object_array_get_idx(joffs, 0), &begin) ||
        get_nonneg_int(json_object_array_get_idx(joffs, 1), &end))
        return mms_err_set(err, -EINVAL,
                           "tensor \"%.100s\": data_offsets is not [begin, end] of "
                           "non-negative integers", name);
    if (end < begin)
        return mms_err_set(err, -EINVAL,
                           "tensor \"%.100s\": data_offsets end %" PRId64 " < begin %" PRId64,
                           name, end, begin);
    if ((uint64_t)end > m->data_size)
        return mms_err_set(err, -EINVAL,
                           "tensor \"%.100s\": data_offsets [%" PRId64 ", %" PRId64 "] past "
                           "the end of the data region (%" PRIu64 " bytes; file truncated?)",
                           name, begin, end, m->data_size);
    if (end - begin != numel * di->size)
        return mms_err_set(err, -EINVAL,
                           "tensor \"%.100s\": size mismatch: data_offsets span %" PRId64
                           " bytes but %" PRId64 " x %s needs %" PRId64,
                           name, end - begin, numel, di->name, numel * di->size);
    t->nbytes = (size_t)(end - begin);
    sp->begin = begin;
    sp->end = end;
    sp->name = name;

    const unsigned char *p = m->data + begin;
    if (!t->nbytes) {
        t->data = &empty_data;
    } else if ((uintptr_t)p % (uintptr_t)di->size) {
        /* The mapping is page-aligned, so this means a writer did not pad
         * the header to 8; copy rather than do unaligned element reads. */
        void *copy;
        if (posix_memalign(&copy, 8, t->nbytes))
            return mms_err_set(err, -ENOMEM, "out of memory");
        memcpy(copy, p, t->nbytes);
        m->copies[m->ncopies++] = copy;
        t->data = copy;
    } else {
        t->data = p;
    }
    return 0;
}

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Gaps between tensors are tolerated; a byte owned by two tensors is not.
 * Empty tensors own no bytes. */
static int check_overlap(struct span *s, size_t n, struct mms_err *err)
{
    qsort(s, n, sizeof(*s), span_cmp);
    const struct span *last = NULL; /* the span reaching furthest so far */
    for (size_t i = 0; i < n; i++) {
        if (s[i].begin == s[i].end)
            continue;
        if (last && s[i].begin < last->end)
            return mms_err_set(err, -EINVAL,
                               "tensors \"%.100s\" and \"%.100s\" overlap in the data region",
                               last->name, s[i].name);
        if (!last || s[i].end > last->end)
            last = &s[i];
    }
    return 0;
}

static int by_name_cmp(const void *a, const void *b)
{
    const struct mms_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int find_cmp(const void *key, const void *elem)
{
    const struct mms_tensor *const *t = elem;
    return strcmp(key, (*t)->name);
}

static int parse_header(struct mms_model *m, const char *hdr, size_t len,
                        struct mms_err *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    struct span *spans = NULL;
    int ret;

    /* json-c would stop at a NUL without saying so. */
    if (memchr(hdr, 0, len)) {
        ret = mms_err_set(err, -EINVAL, "header contains a NUL byte");
        goto fail;
    }
    tok = json_tokener_new();
    if (!tok) {
        ret = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    /* Trailing characters are checked below: writers pad with spaces. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, hdr, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!root || jerr != json_tokener_success) {
        ret = mms_err_set(err, -EINVAL, "header is not valid JSON: %s",
                          jerr == json_tokener_continue ? "unexpected end of header"
                                                        : json_tokener_error_desc(jerr));
        goto fail;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        if (hdr[i] != ' ' && hdr[i] != '\t' && hdr[i] != '\n' && hdr[i] != '\r') {
            ret = mms_err_set(err, -EINVAL,
                              "header is not valid JSON: trailing data after the object "
                              "at byte %zu", i);
            goto fail;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        ret = mms_err_set(err, -EINVAL, "header is not a JSON object");
        goto fail;
    }

    size_t n = (size_t)json_object_object_length(root);
    /* calloc(0) may return NULL; one spare slot keeps the checks simple. */
    m->tensors = calloc(n + 1, sizeof(*m->tensors));
    m->by_name = calloc(n + 1, sizeof(*m->by_name));
    m->copies = calloc(n + 1, sizeof(*m->copies));
    spans = calloc(n + 1, sizeof(*spans));
    if (!m->tensors || !m->by_name || !m->copies || !spans) {
        ret = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((ret = parse_metadata(m, val, err)) < 0)
                goto fail;
            continue;
        }
        struct mms_tensor *t = &m->tensors[m->ntensors];
        t->name = strdup(key);
        if (!t->name) {
            ret = mms_err_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
        m->ntensors++;
        if ((ret = parse_tensor(m, t, val, &spans[m->ntensors - 1], err)) < 0)
            goto fail;
    }
    if ((ret = check_overlap(spans, m->ntensors, err)) < 0)
        goto fail;

    /* json-c keeps only the last of duplicate keys, so names are unique. */
    for (size_t i = 0; i < m->ntensors; i++)
        m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, m->ntensors, sizeof(*m->by_name), by_name_cmp);
    ret = 0;

fail:
    free(spans);
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return ret;
}

int mms_model_open(const char *path, struct mms_model **out, struct mms_err *err)
{
    struct mms_model *m;
    int fd = -1, ret;

    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(path))) {
        ret = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    m->map = MAP_FAILED;

    /* O_NONBLOCK: a FIFO is refused below, not waited on for a writer;
     * a regular file reads (and maps) as it would without it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        ret = -errno;
        mms_err_set(err, ret, "cannot open: %s", strerror(-ret));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        mms_err_set(err, ret, "cannot stat: %s", strerror(-ret));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = mms_err_set(err, -EINVAL, "not a regular file");
        goto fail;
    }
    if (st.st_size < 8) {
        ret = mms_err_set(err, -EINVAL,
                          "file is %lld bytes, too short for a safetensors header length",
                          (long long)st.st_size);
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        ret = mms_err_set(err, -EFBIG, "file too large to map");
        goto fail;
    }
    m->map_size = (size_t)st.st_size;
    m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        ret = -errno;
        mms_err_set(err, ret, "cannot map: %s", strerror(-ret));
        goto fail;
    }
    close(fd);
    fd = -1;

    const unsigned char *b = m->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (!hlen) {
        ret = mms_err_set(err, -EINVAL, "header length is 0");
        goto fail;
    }
    if (hlen > MAX_HEADER) {
        ret = mms_err_set(err, -EINVAL,
                          "header length %" PRIu64 " is absurdly large (limit %u bytes)",
                          hlen, MAX_HEADER);
        goto fail;
    }
    if (hlen > m->map_size - 8) {
        ret = mms_err_set(err, -EINVAL,
                          "header length %" PRIu64 " runs past the end of the file "
                          "(%zu bytes; file truncated?)", hlen, m->map_size);
        goto fail;
    }
    m->data = b + 8 + hlen;
    m->data_size = m->map_size - 8 - hlen;
    if ((ret = parse_header(m, (const char *)b + 8, (size_t)hlen, err)) < 0)
        goto fail;

    *out = m;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    mms_model_close(m);
    return ret;
}

void mms_model_close(struct mms_model *m)
{
    if (!m)
        return;
    if (m->map && m->map != MAP_FAILED)
        munmap(m->map, m->map_size);
    for (size_t i = 0; i < m->ntensors; i++)
        free((char *)m->tensors[i].name);
    for (size_t i = 0; i < m->ncopies; i++)
        free(m->copies[i]);
    for (size_t i = 0; i < m->nmeta; i++) {
        free(m->meta_keys[i]);
        free(m->meta_vals[i]);
    }
    free(m->meta_keys);
    free(m->meta_vals);
    free(m->copies);
    free(m->by_name);
    free(m->tensors);
    free(m->path);
    free(m);
}

const struct mms_tensor *mms_model_find(const struct mms_model *m, const char *name)
{
    if (!m->ntensors)
        return NULL;
    const struct mms_tensor *const *t =
        bsearch(name, m->by_name, m->ntensors, sizeof(*m->by_name), find_cmp);
    return t ? *t : NULL;
}

size_t mms_model_count(const struct mms_model *m)
{
    return m->ntensors;
}

const struct mms_tensor *mms_model_at(const struct mms_model *m, size_t i)
{
    return i < m->ntensors ? &m->tensors[i] : NULL;
}

const char *mms_model_meta(const struct mms_model *m, const char *key)
{
    for (size_t i = 0; i < m->nmeta; i++)
        if (!strcmp(m->meta_keys[i], key))
            return m->meta_vals[i];
    return NULL;
}

size_t mms_model_meta_count(const struct mms_model *m)
{
    return m->nmeta;
}

void mms_model_meta_at(const struct mms_model *m, size_t i, const char **key,
                       const char **value)
{
    *key = i < m->nmeta ? m->meta_keys[i] : NULL;
    *value = i < m->nmeta ? m->meta_vals[i] : NULL;
}

const char *mms_model_path(const struct mms_model *m)
{
    return m->path;
}

uint64_t mms_model_file_size(const struct mms_model *m)
{
    return m->map_size;
}
