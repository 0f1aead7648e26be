/* core/model.c: safetensors files written byte by byte, good and bad. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "harness.h"

static const char *path_of(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", mms_test_tmpdir(), name);
    return buf;
}

static void write_raw(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(buf, 1, n, f) != n) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Length prefix + JSON (space-padded up to a multiple of pad_to when it is
 * non-zero, as writers do) + data, cut to `keep` bytes when keep != 0. */
static const char *write_st_ex(const char *name, const char *json, size_t pad_to,
                               const void *data, size_t ndata, size_t keep)
{
    size_t hlen = strlen(json);
    if (pad_to)
        hlen = (8 + hlen + pad_to - 1) / pad_to * pad_to - 8;
    size_t total = 8 + hlen + ndata;
    unsigned char *buf = malloc(total);
    if (!buf)
        exit(1);
    put_u64le(buf, hlen);
    memset(buf + 8, ' ', hlen);
    memcpy(buf + 8, json, strlen(json));
    if (ndata)
        memcpy(buf + 8 + hlen, data, ndata);
    const char *path = path_of(name);
    write_raw(path, buf, keep ? keep : total);
    free(buf);
    return path;
}

static const char *write_st(const char *name, const char *json, const void *data,
                            size_t ndata)
{
    return write_st_ex(name, json, 8, data, ndata, 0);
}

/* Opens a file that must be refused with a message containing `word`. */
static void expect_refused(const char *path, const char *word)
{
    struct mms_model *m = (struct mms_model *)&m; /* must be reset to NULL */
    struct mms_err err = {{0}};
    int ret = mms_model_open(path, &m, &err);
    CHECK_MSG(ret < 0, "%s: opened, expected refusal with \"%s\"", path, word);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.msg, word) != NULL, "%s: message \"%s\" lacks \"%s\"", path,
              err.msg, word);
    CHECK(strchr(err.msg, '\n') == NULL);
    if (ret >= 0 && m)
        mms_model_close(m);
}

static void refuse_json(const char *name, const char *json, size_t ndata, const char *word)
{
    unsigned char data[256] = {0};
    if (ndata > sizeof(data))
        exit(1);
    expect_refused(write_st(name, json, data, ndata), word);
}

static struct mms_model *open_ok(const char *path)
{
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    int ret = mms_model_open(path, &m, &err);
    CHECK_MSG(ret == 0 && m, "%s: %s", path, err.msg);
    return ret == 0 ? m : NULL;
}

/* ---- accepted files ---- */

static void test_valid_file_loads(void)
{
    struct {
        float a[6], b[4];
        int64_t step;
    } data = {{1, 2, 3, 4, 5, 6}, {-1, -2, -3, -4}, 1234567890123};
    _Static_assert(sizeof(data) == 48, "no padding");
    const char *json =
        "{\"__metadata__\":{\"format\":\"pt\",\"mms.arch\":\"mms-rt\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]},"
        "\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[40,48]}}";
    const char *path = write_st("valid.safetensors", json, &data, sizeof(data));
    struct mms_model *m = open_ok(path);
    if (!m)
        return;

    CHECK(mms_model_count(m) == 3);
    CHECK(!strcmp(mms_model_path(m), path));
    CHECK(mms_model_file_size(m) == 8 + ((strlen(json) + 8 + 7) / 8 * 8 - 8) + 48);

    const struct mms_tensor *a = mms_model_find(m, "a");
    CHECK(a && a->dtype == MMS_DTYPE_F32 && !strcmp(a->dtype_name, "F32"));
    CHECK(a && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->numel == 6);
    CHECK(a && a->nbytes == 24 && (uintptr_t)a->data % 4 == 0);
    CHECK(a && !memcmp(a->data, data.a, sizeof(data.a)));

    const struct mms_tensor *b = mms_model_find(m, "b");
    CHECK(b && b->ndim == 1 && b->shape[0] == 4 && b->numel == 4);
    CHECK(b && ((const float *)b->data)[3] == -4.0f);

    const struct mms_tensor *step = mms_model_find(m, "step");
    CHECK(step && step->dtype == MMS_DTYPE_I64 && step->ndim == 0 && step->numel == 1);
    CHECK(step && step->nbytes == 8);
    CHECK(step && *(const int64_t *)step->data == 1234567890123);

    CHECK(mms_model_meta_count(m) == 2);
    CHECK(mms_model_meta(m, "format") && !strcmp(mms_model_meta(m, "format"), "pt"));
    CHECK(mms_model_meta(m, "mms.arch") && !strcmp(mms_model_meta(m, "mms.arch"), "mms-rt"));
    CHECK(mms_model_meta(m, "absent") == NULL);
    const char *k, *v;
    mms_model_meta_at(m, 1, &k, &v);
    CHECK(!strcmp(k, "mms.arch") && !strcmp(v, "mms-rt"));
    mms_model_close(m);
}

static void test_space_padded_header_loads(void)
{
    float x[2] = {0.5f, 0.25f};
    /* Pad well past the JSON, as writers aligning the data region do. */
    const char *path = write_st_ex("padded.safetensors",
                                   "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
                                   "\"data_offsets\":[0,8]}}",
                                   64, x, sizeof(x), 0);
    struct mms_model *m = open_ok(path);
    if (!m)
        return;
    const struct mms_tensor *t = mms_model_find(m, "x");
    CHECK(t && ((const float *)t->data)[1] == 0.25f);
    mms_model_close(m);
}

static void test_tensors_keep_file_order_and_find_by_name(void)
{
    char json[8192];
    float data[60];
    size_t n = 0;
    n += (size_t)snprintf(json + n, sizeof(json) - n, "{");
    /* Names deliberately out of sort order: z59, z58, ... z0. */
    for (int i = 0; i < 60; i++) {
        data[i] = (float)(59 - i);
        n += (size_t)snprintf(json + n, sizeof(json) - n,
                              "%s\"z%d\":{\"dtype\":\"F32\",\"shape\":[1],"
                              "\"data_offsets\":[%d,%d]}",
                              i ? "," : "", 59 - i, 4 * i, 4 * i + 4);
    }
    snprintf(json + n, sizeof(json) - n, "}");
    struct mms_model *m = open_ok(write_st("many.safetensors", json, data, sizeof(data)));
    if (!m)
        return;
    CHECK(mms_model_count(m) == 60);
    CHECK(!strcmp(mms_model_at(m, 0)->name, "z59"));
    CHECK(!strcmp(mms_model_at(m, 59)->name, "z0"));
    CHECK(mms_model_at(m, 60) == NULL);
    for (int i = 0; i < 60; i++) {
        char name[16];
        snprintf(name, sizeof(name), "z%d", i);
        const struct mms_tensor *t = mms_model_find(m, name);
        CHECK_MSG(t && *(const float *)t->data == (float)i, "%s", name);
    }
    CHECK(mms_model_find(m, "z60") == NULL);
    CHECK(mms_model_find(m, "") == NULL);
    mms_model_close(m);
}

static void test_misaligned_f32_is_copied_aligned(void)
{
    /* One U8 byte first puts the F32 tensor at an odd offset. */
    unsigned char data[9] = {7};
    float v = 3.5f;
    memcpy(data + 1, &v, 4);
    memcpy(data + 5, &v, 4);
    struct mms_model *m = open_ok(
        write_st("misaligned.safetensors",
                 "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                 "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}",
                 data, sizeof(data)));
    if (!m)
        return;
    const struct mms_tensor *f = mms_model_find(m, "f");
    CHECK(f && (uintptr_t)f->data % 4 == 0);
    CHECK(f && ((const float *)f->data)[0] == 3.5f && ((const float *)f->data)[1] == 3.5f);
    CHECK(*(const unsigned char *)mms_model_find(m, "u")->data == 7);
    mms_model_close(m);
}

static void test_metadata_only_file_loads(void)
{
    struct mms_model *m =
        open_ok(write_st("meta_only.safetensors", "{\"__metadata__\":{\"k\":\"v\"}}", NULL, 0));
    if (!m)
        return;
    CHECK(mms_model_count(m) == 0);
    CHECK(mms_model_find(m, "k") == NULL);
    CHECK(mms_model_meta(m, "k") && !strcmp(mms_model_meta(m, "k"), "v"));
    mms_model_close(m);
}

static void test_empty_tensor_has_nonnull_data(void)
{
    float x = 1;
    struct mms_model *m = open_ok(
        write_st("empty_tensor.safetensors",
                 "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                 "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 &x, sizeof(x)));
    if (!m)
        return;
    const struct mms_tensor *e = mms_model_find(m, "e");
    CHECK(e && e->numel == 0 && e->nbytes == 0 && e->data != NULL);
    mms_model_close(m);
}

static void test_sized_other_dtype_is_kept(void)
{
    uint16_t x[2] = {1, 2};
    struct mms_model *m = open_ok(write_st(
        "u16.safetensors", "{\"h\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
        x, sizeof(x)));
    if (!m)
        return;
    const struct mms_tensor *h = mms_model_find(m, "h");
    CHECK(h && h->dtype == MMS_DTYPE_OTHER && !strcmp(h->dtype_name, "U16"));
    mms_model_close(m);
}

/* ---- refused files ---- */

static void test_missing_file_refused(void)
{
    expect_refused(path_of("does-not-exist.safetensors"), "cannot open");
}

static void test_empty_file_refused(void)
{
    const char *p = path_of("empty.safetensors");
    write_raw(p, "", 0);
    expect_refused(p, "too short");
}

static void test_five_byte_file_refused(void)
{
    const char *p = path_of("five.safetensors");
    write_raw(p, "\x10\0\0\0\0", 5);
    expect_refused(p, "too short");
}

static void test_zero_header_length_refused(void)
{
    unsigned char b[16] = {0};
    const char *p = path_of("zero_hlen.safetensors");
    write_raw(p, b, sizeof(b));
    expect_refused(p, "header length is 0");
}

static void test_header_length_past_eof_refused(void)
{
    unsigned char b[8 + 4];
    put_u64le(b, 100);
    memcpy(b + 8, "{}  ", 4);
    const char *p = path_of("hlen_past_eof.safetensors");
    write_raw(p, b, sizeof(b));
    expect_refused(p, "past the end of the file");
}

static void test_huge_header_length_refused(void)
{
    unsigned char b[8 + 2];
    put_u64le(b, UINT64_C(1) << 40);
    memcpy(b + 8, "{}", 2);
    const char *p = path_of("hlen_huge.safetensors");
    write_raw(p, b, sizeof(b));
    expect_refused(p, "absurdly large");
    /* All bits set must not wrap any size computation either. */
    put_u64le(b, UINT64_MAX);
    write_raw(p, b, sizeof(b));
    expect_refused(p, "absurdly large");
}

static void test_bad_json_refused(void)
{
    refuse_json("bad_json.safetensors", "{\"a\": {\"dtype\": ", 0, "not valid JSON");
    refuse_json("bad_json2.safetensors", "{\"a\" 1}", 0, "not valid JSON");
}

static void test_trailing_garbage_refused(void)
{
    refuse_json("trailing.safetensors", "{} x", 0, "trailing data");
}

static void test_nul_in_header_refused(void)
{
    unsigned char b[8 + 8] = {0};
    put_u64le(b, 8);
    memcpy(b + 8, "{}\0     ", 8);
    const char *p = path_of("nul.safetensors");
    write_raw(p, b, sizeof(b));
    expect_refused(p, "NUL");
}

static void test_json_array_refused(void)
{
    refuse_json("array.safetensors", "[1, 2]", 0, "not a JSON object");
}

static void test_tensor_entry_not_object_refused(void)
{
    refuse_json("entry_not_obj.safetensors", "{\"w\": [1]}", 0, "\"w\": entry is not");
}

static void test_missing_dtype_refused(void)
{
    refuse_json("no_dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "\"w\": missing dtype");
}

static void test_dtype_not_string_refused(void)
{
    refuse_json("dtype_num.safetensors",
                "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                "dtype is not a string");
}

static void test_missing_shape_refused(void)
{
    refuse_json("no_shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
                4, "missing shape");
}

static void test_negative_dim_refused(void)
{
    refuse_json("neg_dim.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                "shape[0]");
}

static void test_string_dim_refused(void)
{
    refuse_json("str_dim.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,\"2\"],\"data_offsets\":[0,8]}}", 8,
                "shape[1]");
}

static void test_fractional_dim_refused(void)
{
    refuse_json("frac_dim.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
                "shape[0]");
}

static void test_too_many_dims_refused(void)
{
    refuse_json("nine_dims.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                "\"data_offsets\":[0,4]}}",
                4, "dims");
}

static void test_numel_overflow_refused(void)
{
    refuse_json("overflow.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                "\"data_offsets\":[0,4]}}",
                4, "overflows");
    /* numel fits, numel x 4 bytes does not. */
    refuse_json("overflow2.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                "\"data_offsets\":[0,4]}}",
                4, "overflows");
}

static void test_malformed_offsets_refused(void)
{
    refuse_json("offs_one.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4,
                "data_offsets");
    refuse_json("offs_neg.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                "data_offsets");
    refuse_json("offs_missing.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                "missing data_offsets");
}

static void test_offsets_out_of_range_refused(void)
{
    refuse_json("offs_range.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8,
                "past the end of the data region");
    /* Huge values beyond int64 must not wrap into range. */
    refuse_json("offs_huge.safetensors",
                "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],"
                "\"data_offsets\":[18446744073709551615,18446744073709551615]}}",
                8, "data_offsets");
}

static void test_end_before_begin_refused(void)
{
    refuse_json("end_lt_begin.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                "< begin");
}

static void test_size_mismatch_refused(void)
{
    refuse_json("mismatch.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
                "\"w\": size mismatch");
}

static void test_overlapping_tensors_refused(void)
{
    refuse_json("overlap.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                16, "overlap");
    /* A short tensor inside a long one, listed first. */
    refuse_json("overlap2.safetensors",
                "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}",
                20, "overlap");
}

static void test_unknown_dtype_refused(void)
{
    refuse_json("unk_dtype.safetensors",
                "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8,
                "unknown dtype");
    /* Sub-byte types cannot be sized per element. */
    refuse_json("f4_dtype.safetensors",
                "{\"w\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 8,
                "unknown dtype");
}

static void test_non_string_metadata_refused(void)
{
    refuse_json("meta_num.safetensors", "{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", 0,
                "not a string");
    refuse_json("meta_arr.safetensors", "{\"__metadata__\":[\"x\"]}", 0,
                "__metadata__ is not");
}

/* "288x512\u0000junk" reads as 288x512 in C but not in Python. */
static void test_metadata_with_nul_refused(void)
{
    refuse_json("meta_nul.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\",\"mms.input\":\"288x512\\u0000junk\"}}", 0,
                "holds a NUL byte");
}

static void test_truncated_data_refused(void)
{
    float data[8] = {0};
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}";
    size_t hlen = (8 + strlen(json) + 7) / 8 * 8 - 8;
    /* Cut in the middle of "b". */
    const char *p = write_st_ex("truncated.safetensors", json, 8, data, sizeof(data),
                                8 + hlen + 24);
    expect_refused(p, "truncated");
    expect_refused(p, "\"b\"");
}

MMS_TESTS(T(test_valid_file_loads), T(test_space_padded_header_loads),
          T(test_tensors_keep_file_order_and_find_by_name),
          T(test_misaligned_f32_is_copied_aligned), T(test_metadata_only_file_loads),
          T(test_empty_tensor_has_nonnull_data), T(test_sized_other_dtype_is_kept),
          T(test_missing_file_refused), T(test_empty_file_refused),
          T(test_five_byte_file_refused), T(test_zero_header_length_refused),
          T(test_header_length_past_eof_refused), T(test_huge_header_length_refused),
          T(test_bad_json_refused), T(test_trailing_garbage_refused),
          T(test_nul_in_header_refused), T(test_json_array_refused),
          T(test_tensor_entry_not_object_refused), T(test_missing_dtype_refused),
          T(test_dtype_not_string_refused), T(test_missing_shape_refused),
          T(test_negative_dim_refused), T(test_string_dim_refused),
          T(test_fractional_dim_refused), T(test_too_many_dims_refused),
          T(test_numel_overflow_refused), T(test_malformed_offsets_refused),
          T(test_offsets_out_of_range_refused), T(test_end_before_begin_refused),
          T(test_size_mismatch_refused), T(test_overlapping_tensors_refused),
          T(test_unknown_dtype_refused), T(test_non_string_metadata_refused), T(test_metadata_with_nul_refused),
          T(test_truncated_data_refused))
