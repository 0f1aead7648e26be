/* The default model's place (core/locate.h): $MMS_MODEL first; a binary
 * from a checkout takes the checkout's model before an installed one; an
 * installed binary never looks in a source tree. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/locate.h"
#include "harness.h"

static char installed[4200], source[4200];

static void setup_paths(void);

static void make(const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
}

static void setup(int with_installed, int with_source)
{
    setup_paths();
    unlink(installed);
    unlink(source);
    if (with_installed)
        make(installed);
    if (with_source)
        make(source);
    unsetenv("MMS_MODEL");
}

static void a_checkout_takes_its_own_model_first(void)
{
    char buf[256];
    setup(1, 1);
    CHECK_EQ(mms_locate_model_in(installed, source, 1, buf, sizeof(buf)), 0);
    CHECK_STR_EQ(buf, source);
}

static void a_checkout_without_its_model_takes_the_installed_one(void)
{
    char buf[256];
    setup(1, 0);
    CHECK_EQ(mms_locate_model_in(installed, source, 1, buf, sizeof(buf)), 0);
    CHECK_STR_EQ(buf, installed);
}

static void an_installed_binary_takes_the_installed_model(void)
{
    char buf[256];
    setup(1, 1);
    CHECK_EQ(mms_locate_model_in(installed, source, 0, buf, sizeof(buf)), 0);
    CHECK_STR_EQ(buf, installed);
}

static void an_installed_binary_never_takes_a_source_tree(void)
{
    char buf[256];
    setup(0, 1);
    CHECK_EQ(mms_locate_model_in(installed, source, 0, buf, sizeof(buf)), -ENOENT);
    CHECK(strstr(buf, installed) != NULL);
    CHECK(strstr(buf, source) == NULL);
}

static void none_names_every_place_tried(void)
{
    char buf[512];
    setup(0, 0);
    CHECK_EQ(mms_locate_model_in(installed, source, 1, buf, sizeof(buf)), -ENOENT);
    CHECK(strstr(buf, "no default model") != NULL);
    CHECK(strstr(buf, installed) != NULL && strstr(buf, source) != NULL);
}

static void mms_model_wins_even_when_missing(void)
{
    char buf[256];
    setup(1, 1);
    setenv("MMS_MODEL", "/nonexistent/x.safetensors", 1);
    CHECK_EQ(mms_locate_model_in(installed, source, 1, buf, sizeof(buf)), 0);
    CHECK_STR_EQ(buf, "/nonexistent/x.safetensors");
    unsetenv("MMS_MODEL");
}

static void a_path_too_long_for_the_buffer_is_refused(void)
{
    char buf[8];
    setup(1, 1);
    CHECK_EQ(mms_locate_model_in(installed, source, 1, buf, sizeof(buf)), -ENAMETOOLONG);
}

static void setup_paths(void)
{
    snprintf(installed, sizeof(installed), "%s/installed.safetensors", mms_test_tmpdir());
    snprintf(source, sizeof(source), "%s/source.safetensors", mms_test_tmpdir());
}

MMS_TESTS(T(a_checkout_takes_its_own_model_first),
          T(a_checkout_without_its_model_takes_the_installed_one),
          T(an_installed_binary_takes_the_installed_model),
          T(an_installed_binary_never_takes_a_source_tree), T(none_names_every_place_tried),
          T(mms_model_wins_even_when_missing), T(a_path_too_long_for_the_buffer_is_refused))
