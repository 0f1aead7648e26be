#ifndef MMS_TEST_REAL_FRAME_H
#define MMS_TEST_REAL_FRAME_H

#include "core/error.h"
#include "core/net.h"

/*
 * Runs each of n networks on one frame of ../shared/data (rel: a path below
 * it, e.g. "labeled/endovis15/image/op3_img05.jpg"), preprocessed for each
 * network's own input; their logits are then in mms_net_logits(). Returns
 * 0, or a negative errno with err saying why (a missing ../shared/data
 * included: it is part of the project's environment, so that is a failure,
 * never a skip).
 */
int mms_test_run_real_frame(const char *rel, struct mms_net *const *nets, int n,
                            struct mms_err *err);

#endif
