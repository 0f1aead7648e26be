#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "core/version.h"

int mms_test_failures;

int mms_check_eq_int(intmax_t a, intmax_t b, const char *as, const char *bs, const char *file,
                     int line)
{
    if (a == b)
        return 1;
    fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s: %jd != %jd\n", file, line, as, bs, a, b);
    mms_test_failures++;
    return 0;
}

int mms_check_eq_str(const char *a, const char *b, const char *as, const char *bs,
                     const char *file, int line)
{
    if (a == b || (a && b && !strcmp(a, b)))
        return 1;
    /* Quoted, so that a stray blank or an empty string shows. */
    fprintf(stderr, "%s:%d: CHECK_STR_EQ failed: %s == %s: %s%s%s != %s%s%s\n", file, line, as,
            bs, a ? "\"" : "", a ? a : "NULL", a ? "\"" : "", b ? "\"" : "", b ? b : "NULL",
            b ? "\"" : "");
    mms_test_failures++;
    return 0;
}

int mms_test_main(const struct mms_test_case *cases, int argc, char **argv)
{
    int ran = 0;
    for (const struct mms_test_case *c = cases; c->name; c++) {
        if (argc > 1 && strcmp(argv[1], c->name))
            continue;
        int before = mms_test_failures;
        c->fn();
        printf("%s %s\n", mms_test_failures == before ? "ok  " : "FAIL", c->name);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "no test matched\n");
        return 1;
    }
    printf("%d test(s), %d failed check(s)\n", ran, mms_test_failures);
    return mms_test_failures ? 1 : 0;
}

const char *mms_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/mms-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

const char *mms_test_srcdir(void)
{
    const char *s = getenv("MMS_SOURCE_DIR");
    return s ? s : MMS_SOURCE_DIR;
}

double mms_test_mask_dice(const float *a, const float *b, size_t n)
{
    long inter = 0, sa = 0, sb = 0;
    for (size_t i = 0; i < n; i++) {
        inter += a[i] > 0 && b[i] > 0;
        sa += a[i] > 0;
        sb += b[i] > 0;
    }
    return sa + sb ? 2.0 * inter / (sa + sb) : 1.0;
}
