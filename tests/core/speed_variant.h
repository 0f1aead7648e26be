#ifndef MMS_TEST_SPEED_VARIANT_H
#define MMS_TEST_SPEED_VARIANT_H

/*
 * The shipped model, its int8 calibration kept, rewritten into the test's
 * temporary directory as `name` with int8.speed set to `speed` ("ISA:RATIO",
 * as mms calibrate writes it): how int8's measured speed steers the
 * choices made at open (auto precision, auto tta). Returns the path (one of
 * four rotating buffers), or NULL with a failed check.
 */
const char *mms_test_with_speed(const char *name, const char *speed);

#endif
