/*
 * The engine behind mms_net_*: opening, running, and refusing bad model
 * files with a message that names the problem. Bad files are derived from
 * the shipped model by editing its JSON header or cutting its data.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/net.h"
#include "harness.h"

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob shipped(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct blob b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    b.len = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = malloc(b.len);
    if (!b.data || fread(b.data, 1, b.len, f) != b.len)
        exit(1);
    fclose(f);
    return b;
}

static const char *write_tmp(const char *name, const void *p, size_t n)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", mms_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n)
        exit(1);
    fclose(f);
    return path;
}

/* Rewrites the model with `from` replaced by `to` in its JSON header (the
 * header keeps its length by padding, so the data offsets stay valid). */
static const char *edit_header(const char *name, const char *from, const char *to)
{
    struct blob b = shipped();
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)b.data[i] << (8 * i);
    char *hdr = malloc(n + 1);
    memcpy(hdr, b.data + 8, n);
    hdr[n] = 0;
    char *at = strstr(hdr, from);
    if (!at) {
        fprintf(stderr, "edit_header: '%s' not in header\n", from);
        exit(1);
    }
    size_t lf = strlen(from), lt = strlen(to);
    char *out = malloc(n + lt + 64);
    size_t pre = at - hdr;
    memcpy(out, hdr, pre);
    memcpy(out + pre, to, lt);
    strcpy(out + pre + lt, at + lf);
    size_t nn = strlen(out);
    while (nn % 8)
        out[nn++] = ' ';
    size_t total = 8 + nn + (b.len - 8 - n);
    uint8_t *file = malloc(total);
    for (int i = 0; i < 8; i++)
        file[i] = (uint8_t)(nn >> (8 * i));
    memcpy(file + 8, out, nn);
    memcpy(file + 8 + nn, b.data + 8 + n, b.len - 8 - n);
    const char *path = write_tmp(name, file, total);
    free(file);
    free(out);
    free(hdr);
    free(b.data);
    return path;
}

static int open_path(const char *path, const struct mms_net_opts *o, struct mms_err *err)
{
    struct mms_net *n = (struct mms_net *)0x1;
    memset(err, 0, sizeof(*err));
    int rc = mms_net_open(path, o, &n, err);
    if (!rc)
        mms_net_close(n);
    else
        CHECK(n == (struct mms_net *)0x1); /* untouched on failure */
    return rc;
}

/* mms_net_check refuses what mms_net_open refuses, with the same message. */
static void expect_refusal_opts(const char *path, const struct mms_net_opts *o,
                                const char *word)
{
    struct mms_err err, dry = {{0}};
    int rc = open_path(path, o, &err);
    CHECK_MSG(rc < 0, "%s opened", path);
    CHECK_MSG(strstr(err.msg, word) != NULL, "message '%s' lacks '%s'", err.msg, word);
    CHECK(strchr(err.msg, '\n') == NULL);
    CHECK_EQ(mms_net_check(path, o, &dry), rc);
    CHECK_STR_EQ(dry.msg, err.msg);
}

static void expect_refusal(const char *path, const char *word)
{
    expect_refusal_opts(path, NULL, word);
}

static struct mms_net *open_shipped(int h, int w)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_net_opts o = {.threads = 2, .in_h = h, .in_w = w};
    struct mms_err err = {{0}};
    struct mms_net *n = NULL;
    if (mms_net_open(path, &o, &n, &err))
        fprintf(stderr, "open: %s\n", err.msg);
    return n;
}

static int all_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- positive */

static void shipped_model_opens_with_card(void)
{
    struct mms_net *n = open_shipped(0, 0);
    CHECK(n != NULL);
    if (!n)
        return;
    const struct mms_net_info *i = mms_net_info(n);
    CHECK(!strcmp(i->arch, "mms-rt"));
    CHECK(i->in_h == 288 && i->in_w == 512);
    CHECK(i->out_h == 288 && i->out_w == 512);
    CHECK(i->macs > 1000000000LL && i->macs <= 2500000000LL); /* the mms-rt budget */
    CHECK(i->params > 100000);
    CHECK(fabsf(i->threshold - 0.5f) < 1e-6f);
    CHECK(fabsf(i->mean[0] - 0.485f) < 1e-6f && fabsf(i->std[2] - 0.225f) < 1e-6f);
    mms_net_close(n);
}

/* The dry check passes what opens, and leaves the message alone. */
static void shipped_model_passes_the_check(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_net_opts sizes[] = {{0}, {.in_h = 160, .in_w = 288},
                                   {.precision = MMS_PREC_INT8, .in_h = 64, .in_w = 64}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct mms_err err = {{0}};
        CHECK_EQ(mms_net_check(path, &sizes[i], &err), 0);
        CHECK_STR_EQ(err.msg, "");
    }
    struct mms_err err = {{0}};
    CHECK_EQ(mms_net_check(path, NULL, &err), 0);
}

static void runs_and_is_deterministic(void)
{
    struct mms_net *n = open_shipped(0, 0);
    CHECK(n != NULL);
    if (!n)
        return;
    size_t in = 3 * 288 * 512, out = 288 * 512;
    for (size_t k = 0; k < in; k++)
        mms_net_input(n)[k] = (float)((k * 2654435761u) % 1000) / 500.f - 1.f;
    struct mms_err err;
    CHECK(mms_net_run(n, &err) == 0);
    float *first = malloc(out * sizeof(float));
    memcpy(first, mms_net_logits(n), out * sizeof(float));
    CHECK(all_finite(first, out));
    CHECK(mms_net_run(n, &err) == 0);
    CHECK(memcmp(first, mms_net_logits(n), out * sizeof(float)) == 0);
    free(first);
    mms_net_close(n);
}

static void size_override_transposed(void)
{
    struct mms_net *n = open_shipped(512, 288);
    CHECK(n != NULL);
    if (!n)
        return;
    CHECK(mms_net_info(n)->out_h == 512 && mms_net_info(n)->out_w == 288);
    CHECK(mms_net_info(n)->card_h == 288);
    mms_net_close(n);
}

static void extreme_inputs_stay_finite(void)
{
    struct mms_net *n = open_shipped(0, 0);
    CHECK(n != NULL);
    if (!n)
        return;
    static const float values[] = {0.f, 1e4f, -1e4f, 3e4f};
    size_t in = 3 * 288 * 512, out = 288 * 512;
    struct mms_err err;
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        for (size_t k = 0; k < in; k++)
            mms_net_input(n)[k] = (k & 1) ? values[v] : -values[v] / 2;
        CHECK(mms_net_run(n, &err) == 0);
        CHECK_MSG(all_finite(mms_net_logits(n), out), "input %g", values[v]);
    }
    mms_net_close(n);
}

static void precision_names(void)
{
    enum mms_precision p;
    CHECK(mms_precision_parse("fp32", &p) == 0 && p == MMS_PREC_FP32);
    CHECK(mms_precision_parse("bf16", &p) == 0 && p == MMS_PREC_BF16);
    CHECK(mms_precision_parse("int8", &p) == 0 && p == MMS_PREC_INT8);
    CHECK(mms_precision_parse("auto", &p) == 0 && p == MMS_PREC_AUTO);
    CHECK(mms_precision_parse("fp64", &p) == -EINVAL);
    CHECK(mms_precision_parse("INT8", &p) == -EINVAL);
    CHECK(mms_precision_parse("", &p) == -EINVAL);
}

/* ---------------------------------------------------------------- negative */

static void missing_file_refused(void)
{
    expect_refusal("/nonexistent/model.safetensors", "No such file");
}

/* A FIFO is refused at once, not waited on for a writer that never
 * comes (the alarm fails the test if it is). */
static void fifo_refused_at_once(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/model.fifo", mms_test_tmpdir());
    CHECK(mkfifo(path, 0600) == 0);
    alarm(20);
    expect_refusal(path, "not a regular file");
    alarm(0);
    unlink(path);
}

/* threads 0 is all cores, whatever the calling thread's OpenMP count was
 * left at (an engine of one thread opened on it before). */
static void all_cores_is_not_the_callers_count(void)
{
    if (getenv("OMP_NUM_THREADS"))
        unsetenv("OMP_NUM_THREADS");
    char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_net_opts o = {.threads = 0};
    struct mms_err err = {{0}};
    struct mms_net *n = NULL;
    omp_set_num_threads(1);
    CHECK_MSG(mms_net_open(path, &o, &n, &err) == 0, "%s", err.msg);
    CHECK_EQ(omp_get_max_threads(), omp_get_num_procs());
    mms_net_close(n);
}

static void truncated_file_refused(void)
{
    struct blob b = shipped();
    expect_refusal(write_tmp("cut.safetensors", b.data, b.len / 2), "truncated");
    free(b.data);
}

static void header_length_past_eof_refused(void)
{
    struct blob b = shipped();
    uint64_t huge = b.len; /* header cannot be as long as the whole file */
    for (int i = 0; i < 8; i++)
        b.data[i] = (uint8_t)(huge >> (8 * i));
    expect_refusal(write_tmp("hdr.safetensors", b.data, b.len), "header");
    free(b.data);
}

static void bad_json_refused(void)
{
    expect_refusal(edit_header("json.safetensors", "{", "{{"), "JSON");
}

static void wrong_shape_refused(void)
{
    /* final.weight is [1,16,1,1]: claim [1,8,2,1], same byte count. */
    expect_refusal(edit_header("shape.safetensors", "\"final.weight\":{\"dtype\":\"F32\",\"shape\":[1,16,1,1]",
                               "\"final.weight\":{\"dtype\":\"F32\",\"shape\":[1,8,2,1]"),
                   "final.weight");
}

static void missing_tensor_refused(void)
{
    expect_refusal(edit_header("missing.safetensors", "\"final.weight\"", "\"final.wieght\""),
                   "missing tensor 'final.weight'");
}

static void wrong_dtype_refused(void)
{
    /* Same byte count as I32: the file is well-formed, the network is not. */
    expect_refusal(edit_header("dtype.safetensors",
                               "\"final.weight\":{\"dtype\":\"F32\"",
                               "\"final.weight\":{\"dtype\":\"I32\""),
                   "dtype");
}

static void unknown_arch_refused(void)
{
    expect_refusal(edit_header("arch.safetensors", "\"mms.arch\":\"mms-rt\"",
                               "\"mms.arch\":\"mms-xl\""),
                   "mms-xl");
}

static void unknown_metadata_value_refused(void)
{
    expect_refusal(edit_header("blocks.safetensors", "\"mms.arch\":\"mms-rt\"",
                               "\"mms.arch\":\"mms-rt\",\"mms.blocks\":\"1,1,two,1\""),
                   "mms.blocks");
}

static void architecture_mismatch_refused(void)
{
    /* The widths say 32 stem channels; the tensors hold 16. */
    expect_refusal(edit_header("widths.safetensors", "\"mms.arch\":\"mms-rt\"",
                               "\"mms.arch\":\"mms-rt\",\"mms.widths\":\"32,32,64,128,256\""),
                   "shape");
}

/* Where a tensor's data starts in the file: after the 8-byte length and
 * the header, at its data_offsets[0]. */
static size_t tensor_offset(const struct blob *b, const char *name)
{
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)b->data[i] << (8 * i);
    char *hdr = strndup((const char *)b->data + 8, n);
    struct json_object *h = json_tokener_parse(hdr), *t, *off;
    size_t at = 0;
    if (h && json_object_object_get_ex(h, name, &t) &&
        json_object_object_get_ex(t, "data_offsets", &off))
        at = 8 + n + (size_t)json_object_get_int64(json_object_array_get_idx(off, 0));
    json_object_put(h);
    free(hdr);
    return at;
}

static void nan_weights_refused(void)
{
    struct blob b = shipped();
    /* A weight the network reads; poison its first float. */
    size_t at = tensor_offset(&b, "stem.0.weight");
    CHECK(at > 8);
    float nan = NAN;
    if (at > 8) {
        memcpy(b.data + at, &nan, 4);
        expect_refusal(write_tmp("nan.safetensors", b.data, b.len), "NaN");
    }
    free(b.data);
}

static void bad_size_override_refused(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_err err;
    struct mms_net_opts o = {.in_h = 300, .in_w = 512};
    CHECK(open_path(path, &o, &err) == -EINVAL);
    CHECK_MSG(strstr(err.msg, "multiples of 32") != NULL, "%s", err.msg);
    expect_refusal_opts(path, &o, "multiples of 32");
}

/* int8 asked of a file without a calibration. */
static void int8_without_calibration_refused(void)
{
    struct mms_net_opts o = {.precision = MMS_PREC_INT8};
    expect_refusal_opts(edit_header("noint8.safetensors", "\"int8.absmax\"", "\"int8.absnix\""),
                        &o, "no int8 calibration");
}

MMS_TESTS(T(shipped_model_opens_with_card), T(shipped_model_passes_the_check),
          T(runs_and_is_deterministic),
          T(size_override_transposed), T(extreme_inputs_stay_finite), T(precision_names),
          T(missing_file_refused), T(truncated_file_refused), T(fifo_refused_at_once),
          T(all_cores_is_not_the_callers_count),
          T(header_length_past_eof_refused), T(bad_json_refused), T(wrong_shape_refused),
          T(missing_tensor_refused), T(wrong_dtype_refused), T(unknown_arch_refused),
          T(unknown_metadata_value_refused), T(architecture_mismatch_refused),
          T(nan_weights_refused), T(bad_size_override_refused),
          T(int8_without_calibration_refused))
