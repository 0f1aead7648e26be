#ifndef MMS_TEST_HARNESS_H
#define MMS_TEST_HARNESS_H

/*
 * A minimal harness: each test is a function; CHECK records a failure
 * with file:line and the test goes on, so one run reports every broken
 * behaviour. main() comes from the test file via MMS_TESTS().
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int mms_test_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
            mms_test_failures++;                                            \
        }                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                 \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            mms_test_failures++;                                            \
        }                                                                   \
    } while (0)

/* Like CHECK(a == b), but a failure prints both values, so a broken test
 * says what it got without a rerun under a debugger. Each argument is
 * evaluated once. CHECK_EQ compares integers (as intmax_t: a uint64_t
 * beyond INT64_MAX prints negative but still compares right);
 * CHECK_STR_EQ compares strings, NULL equal only to NULL. */
#define CHECK_EQ(a, b) mms_check_eq_int((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR_EQ(a, b) mms_check_eq_str((a), (b), #a, #b, __FILE__, __LINE__)

/* Both return 1 when equal, else count a failure and return 0. */
int mms_check_eq_int(intmax_t a, intmax_t b, const char *as, const char *bs, const char *file,
                     int line);
int mms_check_eq_str(const char *a, const char *b, const char *as, const char *bs,
                     const char *file, int line);

struct mms_test_case {
    const char *name;
    void (*fn)(void);
};

int mms_test_main(const struct mms_test_case *cases, int argc, char **argv);

#define MMS_TESTS(...)                                                      \
    int main(int argc, char **argv)                                         \
    {                                                                       \
        static const struct mms_test_case cases[] = {__VA_ARGS__, {0, 0}};  \
        return mms_test_main(cases, argc, argv);                            \
    }
#define T(fn) {#fn, fn}

/* A fresh temporary directory for this test run (removed by the OS/CI). */
const char *mms_test_tmpdir(void);
/* Source root, from MMS_SOURCE_DIR or the compiled-in default. */
const char *mms_test_srcdir(void);

/* Dice of the masks two logit maps make (logit > 0), 1 when both are empty. */
double mms_test_mask_dice(const float *a, const float *b, size_t n);

#endif
