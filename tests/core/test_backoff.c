/* The one backoff: first wait, doubling, cap, reset, bad parameters. */
#include <errno.h>
#include <stdint.h>

#include "core/backoff.h"
#include "harness.h"

static void test_first_wait_is_min(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 1000, 30000), 0);
    CHECK_EQ(mms_backoff_next(&b), 1000);
}

static void test_each_wait_doubles_up_to_the_cap(void)
{
    struct mms_backoff b;
    static const uint64_t expect[] = {500, 1000, 2000, 4000, 8000, 8000, 8000};
    CHECK_EQ(mms_backoff_init(&b, 500, 8000), 0);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        CHECK_EQ(mms_backoff_next(&b), expect[i]);
}

/* A cap that is no power-of-two multiple of min is reached, not passed. */
static void test_cap_between_doublings(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 1000, 30000), 0);
    uint64_t last = 0;
    for (int i = 0; i < 5; i++)
        last = mms_backoff_next(&b);
    CHECK_EQ(last, 16000);
    CHECK_EQ(mms_backoff_next(&b), 30000);
    CHECK_EQ(mms_backoff_next(&b), 30000);
}

static void test_min_equal_to_max_never_grows(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 250, 250), 0);
    CHECK_EQ(mms_backoff_next(&b), 250);
    CHECK_EQ(mms_backoff_next(&b), 250);
}

/* Doubling near the top of the range must not wrap to a short wait. */
static void test_huge_cap_does_not_wrap(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, UINT64_MAX / 2 + 1, UINT64_MAX), 0);
    CHECK(mms_backoff_next(&b) == UINT64_MAX / 2 + 1);
    CHECK(mms_backoff_next(&b) == UINT64_MAX);
    CHECK(mms_backoff_next(&b) == UINT64_MAX);
}

static void test_reset_starts_again_at_min(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 1000, 30000), 0);
    mms_backoff_next(&b);
    mms_backoff_next(&b);
    CHECK_EQ(mms_backoff_next(&b), 4000);
    mms_backoff_reset(&b);
    CHECK_EQ(mms_backoff_next(&b), 1000);
    CHECK_EQ(mms_backoff_next(&b), 2000);
}

/* Reset before any failure changes nothing. */
static void test_reset_when_fresh(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 300, 900), 0);
    mms_backoff_reset(&b);
    CHECK_EQ(mms_backoff_next(&b), 300);
}

static void test_zero_min_refused(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 0, 1000), -EINVAL);
    CHECK_EQ(mms_backoff_next(&b), 0);
}

static void test_max_below_min_refused(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 2000, 1999), -EINVAL);
    CHECK_EQ(mms_backoff_next(&b), 0);
}

static void test_zero_both_refused(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 0, 0), -EINVAL);
}

/* A refused init leaves no state of an earlier, valid one behind. */
static void test_refused_init_clears_earlier_state(void)
{
    struct mms_backoff b;
    CHECK_EQ(mms_backoff_init(&b, 1000, 30000), 0);
    CHECK_EQ(mms_backoff_init(&b, 5000, 10), -EINVAL);
    CHECK_EQ(mms_backoff_next(&b), 0);
}

MMS_TESTS(T(test_first_wait_is_min), T(test_each_wait_doubles_up_to_the_cap),
          T(test_cap_between_doublings), T(test_min_equal_to_max_never_grows),
          T(test_huge_cap_does_not_wrap), T(test_reset_starts_again_at_min),
          T(test_reset_when_fresh), T(test_zero_min_refused), T(test_max_below_min_refused),
          T(test_zero_both_refused), T(test_refused_init_clears_earlier_state))
