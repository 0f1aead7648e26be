/* The pipeline option table: defaults, parsing, validation, formatting. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "overlay/compose.h"
#include "pipeline/options.h"

static void defaults_are_documented_values(void)
{
    struct mms_pipeline_opts o;
    CHECK(mms_options_defaults(&o) == 0);
    CHECK(o.style == MMS_STYLE_FILL && o.color == 0x00ff66 && o.every == 1);
    CHECK(o.alpha > 0.449f && o.alpha < 0.451f && o.mode == MMS_MODE_AUTO && !o.window);
    CHECK(o.encoder_preset && !strcmp(o.encoder_preset, "veryfast"));
    CHECK(o.tta == MMS_TTA_AUTO);
    mms_options_free(&o);
}

static void values_round_trip(void)
{
    struct mms_pipeline_opts o;
    mms_options_defaults(&o);
    struct mms_err err;
    CHECK(mms_option_set(&o, "style", "outline", &err) == 0);
    CHECK(mms_option_set(&o, "color", "#ff0000", &err) == 0);
    CHECK(mms_option_set(&o, "size", "512x288", &err) == 0);
    CHECK(mms_option_set(&o, "output", "a.mp4", &err) == 0);
    CHECK(mms_option_set(&o, "output", "udp://127.0.0.1:5000", &err) == 0);
    CHECK(mms_option_set(&o, "encoder-preset", "ultrafast", &err) == 0);
    char buf[256];
    mms_option_format(&o, mms_option_find("encoder-preset"), buf, sizeof(buf));
    CHECK(!strcmp(buf, "ultrafast"));
    mms_option_format(&o, mms_option_find("style"), buf, sizeof(buf));
    CHECK(!strcmp(buf, "outline"));
    mms_option_format(&o, mms_option_find("color"), buf, sizeof(buf));
    CHECK(!strcmp(buf, "ff0000"));
    mms_option_format(&o, mms_option_find("size"), buf, sizeof(buf));
    CHECK(!strcmp(buf, "512x288"));
    mms_option_format(&o, mms_option_find("output"), buf, sizeof(buf));
    CHECK(!strcmp(buf, "a.mp4,udp://127.0.0.1:5000"));
    mms_options_free(&o);
}

/* Test-time augmentation by name, and back to off. */
static void tta_takes_its_names(void)
{
    struct mms_pipeline_opts o;
    mms_options_defaults(&o);
    struct mms_err err;
    char buf[16];
    CHECK_EQ(mms_option_set(&o, "tta", "flip", &err), 0);
    CHECK_EQ(o.tta, MMS_TTA_FLIP);
    mms_option_format(&o, mms_option_find("tta"), buf, sizeof(buf));
    CHECK_STR_EQ(buf, "flip");
    CHECK_EQ(mms_option_set(&o, "tta", "off", &err), 0);
    CHECK_EQ(o.tta, MMS_TTA_OFF);
    CHECK_EQ(mms_option_set(&o, "tta", "auto", &err), 0);
    CHECK_EQ(o.tta, MMS_TTA_AUTO);
    /* It recompiles nothing in place: a change reopens the network. */
    CHECK(!mms_option_find("tta")->runtime);
    mms_options_free(&o);
}

static void tta_refuses_other_words(void)
{
    static const char *const bad[] = {"mirror", "FLIP", "1", "on"};
    struct mms_pipeline_opts o;
    mms_options_defaults(&o);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mms_err err = {{0}};
        CHECK_MSG(mms_option_set(&o, "tta", bad[i], &err) == -EINVAL, "tta=%s", bad[i]);
        CHECK_MSG(strstr(err.msg, "flip") != NULL, "'%s' does not list the names", err.msg);
        CHECK_EQ(o.tta, MMS_TTA_AUTO);
    }
    struct mms_err err = {{0}};
    CHECK_EQ(mms_option_set(&o, "tta", "", &err), -EINVAL);
    CHECK(strstr(err.msg, "tta") != NULL);
    mms_options_free(&o);
}

static void bad_values_refused_with_name(void)
{
    static const char *const bad[][2] = {
        {"alpha", "1.5"}, {"alpha", "x"}, {"every", "0"}, {"every", "2.5"},
        {"style", "glow"}, {"color", "green"}, {"mode", "fast"}, {"size", "288"},
        {"window", "maybe"}, {"input", ""}, {"threads", "-1"}, {"smooth", "0.96"},
        {"smooth", "-0.1"}, {"smooth", "x"}, {"encoder-preset", "slowest"},
        {"encoder-preset", ""}, {"encoder-preset", "placebo"},
    };
    struct mms_pipeline_opts o;
    mms_options_defaults(&o);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mms_err err;
        CHECK_MSG(mms_option_set(&o, bad[i][0], bad[i][1], &err) == -EINVAL, "%s=%s",
                  bad[i][0], bad[i][1]);
        CHECK(strstr(err.msg, bad[i][0]) != NULL);
    }
    mms_options_free(&o);
}

static void unknown_option_refused(void)
{
    struct mms_pipeline_opts o;
    mms_options_defaults(&o);
    struct mms_err err;
    CHECK(mms_option_set(&o, "colour", "ff0000", &err) == -ENOENT);
    CHECK(strstr(err.msg, "colour") != NULL);
    mms_options_free(&o);
}

static void repeatable_option_has_a_limit(void)
{
    struct mms_pipeline_opts o;
    mms_options_defaults(&o);
    struct mms_err err;
    for (int i = 0; i < MMS_MAX_OUTPUTS; i++)
        CHECK(mms_option_set(&o, "output", "null", &err) == 0);
    CHECK(mms_option_set(&o, "output", "null", &err) == -E2BIG);
    mms_options_free(&o);
}

static void runtime_flags(void)
{
    CHECK(mms_option_find("style")->runtime && mms_option_find("every")->runtime);
    CHECK(!mms_option_find("input")->runtime && !mms_option_find("model")->runtime);
}

MMS_TESTS(T(defaults_are_documented_values), T(values_round_trip), T(tta_takes_its_names),
          T(tta_refuses_other_words),
          T(bad_values_refused_with_name), T(unknown_option_refused),
          T(repeatable_option_has_a_limit), T(runtime_flags))
