/* The harness's value-printing checks: they pass on equal values, and on
 * different ones count a failure and print both values and file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* What a failing check printed; its failure is taken back so that only the
 * CHECKs on the message count. */
struct caught {
    int ret, counted;
    char text[512];
};

static FILE *catch_begin(int *saved)
{
    fflush(stderr);
    FILE *f = tmpfile();
    *saved = dup(2);
    if (f)
        dup2(fileno(f), 2);
    return f;
}

static void catch_end(FILE *f, int saved, int before, struct caught *c)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    c->counted = mms_test_failures - before;
    mms_test_failures = before;
    c->text[0] = 0;
    if (!f)
        return;
    rewind(f);
    size_t n = fread(c->text, 1, sizeof(c->text) - 1, f);
    c->text[n] = 0;
    fclose(f);
}

#define CATCH(c, expr)                                                      \
    do {                                                                    \
        int saved_, before_ = mms_test_failures;                            \
        FILE *f_ = catch_begin(&saved_);                                    \
        (c)->ret = (expr);                                                  \
        catch_end(f_, saved_, before_, (c));                                \
    } while (0)

static void test_equal_integers_pass_silently(void)
{
    struct caught c;
    CATCH(&c, CHECK_EQ(40 + 2, 42));
    CHECK(c.ret == 1 && c.counted == 0 && !c.text[0]);
}

static void test_different_integers_print_both(void)
{
    struct caught c;
    int seven = 7;
    CATCH(&c, CHECK_EQ(seven, -3));
    CHECK(c.ret == 0 && c.counted == 1);
    CHECK_MSG(strstr(c.text, "7 != -3") && strstr(c.text, "seven == -3"), "%s", c.text);
    CHECK_MSG(strstr(c.text, "test_harness.c:"), "no file:line: %s", c.text);
}

/* The arguments are evaluated once: a check with a side effect is safe. */
static void test_arguments_evaluated_once(void)
{
    struct caught c;
    int n = 0;
    CATCH(&c, CHECK_EQ(++n, 1));
    CHECK(c.ret == 1 && n == 1);
}

static void test_equal_strings_pass_silently(void)
{
    struct caught c;
    char buf[8];
    snprintf(buf, sizeof(buf), "%s", "abc");
    CATCH(&c, CHECK_STR_EQ(buf, "abc"));
    CHECK(c.ret == 1 && c.counted == 0 && !c.text[0]);
    CATCH(&c, CHECK_STR_EQ(NULL, NULL));
    CHECK(c.ret == 1 && c.counted == 0);
}

static void test_different_strings_print_both_quoted(void)
{
    struct caught c;
    CATCH(&c, CHECK_STR_EQ("abc ", "abc"));
    CHECK(c.ret == 0 && c.counted == 1);
    CHECK_MSG(strstr(c.text, "\"abc \" != \"abc\""), "%s", c.text);
    CATCH(&c, CHECK_STR_EQ("", "x"));
    CHECK_MSG(c.ret == 0 && strstr(c.text, "\"\" != \"x\""), "%s", c.text);
}

static void test_null_string_differs_from_any_string(void)
{
    struct caught c;
    CATCH(&c, CHECK_STR_EQ(NULL, ""));
    CHECK(c.ret == 0 && c.counted == 1);
    CHECK_MSG(strstr(c.text, "NULL != \"\""), "%s", c.text);
    CATCH(&c, CHECK_STR_EQ("a", NULL));
    CHECK(c.ret == 0 && c.counted == 1);
}

MMS_TESTS(T(test_equal_integers_pass_silently), T(test_different_integers_print_both),
          T(test_arguments_evaluated_once), T(test_equal_strings_pass_silently),
          T(test_different_strings_print_both_quoted), T(test_null_string_differs_from_any_string))
