/* core/card.c: model cards read from a metadata-only safetensors file. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/card.h"
#include "harness.h"

/* The valid card every test starts from; mms-rt wants multiples of 32. */
static const char *const base[][2] = {
    {"mms.arch", "mms-rt"},
    {"mms.input", "288x512"},
    {"mms.mean", "0.485,0.456,0.406"},
    {"mms.std", "0.229,0.224,0.225"},
    {"mms.threshold", "0.5"},
};
#define NBASE (sizeof(base) / sizeof(base[0]))

/* Writes the base card with `key` set to `val` (added when not a base
 * key, removed when val is NULL), opens it and parses the card. */
static int card_with(const char *key, const char *val, struct mms_card *card,
                     struct mms_err *err)
{
    static int serial;
    char json[2048], path[512];
    size_t n = 0;
    int found = 0;

    n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"__metadata__\":{");
    for (size_t i = 0; i < NBASE; i++) {
        const char *v = base[i][1];
        if (key && !strcmp(key, base[i][0])) {
            found = 1;
            if (!val)
                continue;
            v = val;
        }
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\":\"%s\"",
                              json[n - 1] == '{' ? "" : ",", base[i][0], v);
    }
    if (key && !found && val)
        n += (size_t)snprintf(json + n, sizeof(json) - n, ",\"%s\":\"%s\"", key, val);
    snprintf(json + n, sizeof(json) - n, "}}");

    size_t hlen = strlen(json);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    snprintf(path, sizeof(path), "%s/card%d.safetensors", mms_test_tmpdir(), serial++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(len, 1, 8, f) != 8 || fwrite(json, 1, hlen, f) != hlen || fclose(f)) {
        perror(path);
        exit(1);
    }

    struct mms_model *m;
    int ret = mms_model_open(path, &m, err);
    CHECK_MSG(ret == 0, "%s: %s", json, err->msg);
    if (ret < 0)
        return ret;
    ret = mms_card_parse(m, card, err);
    mms_model_close(m);
    return ret;
}

static void expect_refused(const char *key, const char *val, const char *word)
{
    struct mms_card card;
    struct mms_err err = {{0}};
    int ret = card_with(key, val, &card, &err);
    CHECK_MSG(ret < 0, "%s=%s accepted", key, val ? val : "(absent)");
    CHECK_MSG(strstr(err.msg, word) != NULL, "%s=%s: message \"%s\" lacks \"%s\"", key,
              val ? val : "(absent)", err.msg, word);
}

static void test_valid_card_parses(void)
{
    struct mms_card card;
    struct mms_err err = {{0}};
    int ret = card_with(NULL, NULL, &card, &err);
    CHECK_MSG(ret == 0, "%s", err.msg);
    if (ret < 0)
        return;
    CHECK(card.arch == mms_arch_find("mms-rt"));
    CHECK(card.in_h == 288 && card.in_w == 512);
    CHECK(card.mean[0] == 0.485f && card.mean[1] == 0.456f && card.mean[2] == 0.406f);
    CHECK(card.std[0] == 0.229f && card.std[1] == 0.224f && card.std[2] == 0.225f);
    CHECK(card.threshold == 0.5f);
}

static void test_spaces_after_commas_accepted(void)
{
    struct mms_card card;
    struct mms_err err = {{0}};
    CHECK_MSG(card_with("mms.mean", "0.5, 0.5, 0.25", &card, &err) == 0, "%s", err.msg);
    CHECK(card.mean[2] == 0.25f);
}

static void test_missing_arch_refused(void)
{
    expect_refused("mms.arch", NULL, "missing metadata key mms.arch");
}

static void test_missing_threshold_refused(void)
{
    expect_refused("mms.threshold", NULL, "missing metadata key mms.threshold");
}

static void test_unknown_arch_lists_known(void)
{
    expect_refused("mms.arch", "unet9000", "unknown architecture");
    expect_refused("mms.arch", "unet9000", "mms-rt");
}

static void test_bad_input_refused(void)
{
    expect_refused("mms.input", "288x", "mms.input=\"288x\"");
    expect_refused("mms.input", "288", "expected HxW");
    expect_refused("mms.input", "-288x512", "expected HxW");
}

static void test_input_not_multiple_refused(void)
{
    expect_refused("mms.input", "290x512", "multiples of 32");
    expect_refused("mms.input", "288x500", "multiples of 32");
}

/* A card may not make the engine compile a huge network: beyond 4096 a
 * side or 2048x2048 pixels in all, it is refused before anything is
 * allocated, saying the bound. */
static void test_huge_input_refused(void)
{
    expect_refused("mms.input", "8192x8192", "larger than a model may ask for");
    expect_refused("mms.input", "8192x8192", "at most 4096 per side");
    expect_refused("mms.input", "4128x512", "4128x512");
    expect_refused("mms.input", "512x4128", "at most 4096 per side");
    expect_refused("mms.input", "2080x2080", "4194304 pixels");
    expect_refused("mms.input", "4096x1056", "larger than a model may ask for");
}

/* Up to the bounds, exactly, a card is taken. */
static void test_largest_input_accepted(void)
{
    static const char *const ok[] = {"2048x2048", "4096x1024", "1024x4096", "32x4096"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct mms_card card;
        struct mms_err err = {{0}};
        CHECK_MSG(card_with("mms.input", ok[i], &card, &err) == 0, "%s: %s", ok[i], err.msg);
    }
}

static void test_bad_mean_refused(void)
{
    expect_refused("mms.mean", "0.5,0.5", "mms.mean=\"0.5,0.5\"");
    expect_refused("mms.mean", "0.5,0.5,0.5,0.5", "mms.mean");
    expect_refused("mms.mean", "0.5,x,0.5", "mms.mean");
}

static void test_mean_out_of_range_refused(void)
{
    expect_refused("mms.mean", "0.5,1.5,0.5", "0..1");
    expect_refused("mms.mean", "124,116,104", "0..1");
}

static void test_zero_std_refused(void)
{
    expect_refused("mms.std", "0.2,0,0.2", "mms.std=\"0.2,0,0.2\"");
    expect_refused("mms.std", "0.2,-0.1,0.2", "> 0");
    expect_refused("mms.std", "nan,0.2,0.2", "mms.std");
}

static void test_threshold_out_of_range_refused(void)
{
    expect_refused("mms.threshold", "1.5", "mms.threshold=\"1.5\"");
    expect_refused("mms.threshold", "0", "0 < t < 1");
    expect_refused("mms.threshold", "1", "0 < t < 1");
    expect_refused("mms.threshold", "half", "mms.threshold");
}

static void test_unknown_mms_key_refused(void)
{
    expect_refused("mms.foo", "1", "mms.foo");
    expect_refused("mms.foo", "1", "unknown key");
    /* A typo of a generic key is caught the same way. */
    expect_refused("mms.treshold", "0.5", "mms.treshold");
}

static void test_non_mms_key_ignored(void)
{
    struct mms_card card;
    struct mms_err err = {{0}};
    CHECK_MSG(card_with("format", "pt", &card, &err) == 0, "%s", err.msg);
    CHECK_MSG(card_with("mmsfoo", "1", &card, &err) == 0, "%s", err.msg);
}

static void test_parse_size(void)
{
    int h = 0, w = 0;
    CHECK(mms_card_parse_size("288x512", &h, &w) == 0 && h == 288 && w == 512);
    CHECK(mms_card_parse_size("1x8192", &h, &w) == 0 && h == 1 && w == 8192);
    CHECK(mms_card_parse_size("0x512", &h, &w) < 0);
    CHECK(mms_card_parse_size("8193x512", &h, &w) < 0);
    CHECK(mms_card_parse_size("288x", &h, &w) < 0);
    CHECK(mms_card_parse_size("x512", &h, &w) < 0);
    CHECK(mms_card_parse_size("288X512", &h, &w) < 0);
    CHECK(mms_card_parse_size("+288x512", &h, &w) < 0);
    CHECK(mms_card_parse_size("288x512 ", &h, &w) < 0);
    CHECK(mms_card_parse_size("99999999999999999999x1", &h, &w) < 0);
    CHECK(mms_card_parse_size("", &h, &w) < 0);
}

MMS_TESTS(T(test_valid_card_parses), T(test_spaces_after_commas_accepted),
          T(test_missing_arch_refused), T(test_missing_threshold_refused),
          T(test_unknown_arch_lists_known), T(test_bad_input_refused),
          T(test_input_not_multiple_refused), T(test_huge_input_refused),
          T(test_largest_input_accepted), T(test_bad_mean_refused),
          T(test_mean_out_of_range_refused), T(test_zero_std_refused),
          T(test_threshold_out_of_range_refused), T(test_unknown_mms_key_refused),
          T(test_non_mms_key_ignored), T(test_parse_size))
