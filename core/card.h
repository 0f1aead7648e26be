#ifndef MMS_CARD_H
#define MMS_CARD_H

/*
 * The model card: what the engine needs from a model file's __metadata__
 * besides the weights. Generic keys:
 *   mms.arch       architecture name (core/arch registry)
 *   mms.input      "HxW", the network input size, e.g. "288x512"
 *   mms.mean       "r,g,b" on the 0-1 scale
 *   mms.std        "r,g,b", each > 0
 *   mms.threshold  probability threshold for the mask, 0 < t < 1
 * plus the architecture's own keys. Every generic key is required; any
 * other key starting with "mms." that neither the card nor the
 * architecture knows is refused, so a typo cannot silently change the
 * network. Keys outside the "mms." namespace ("format": "pt") are ignored.
 */

#include "core/arch/arch.h"
#include "core/error.h"
#include "core/model.h"

/* The largest network input a model card may ask for, per side and in
 * all: compiling a network sizes every buffer by it (a card asking for
 * 8192x8192 took 23 s and 8.6 GB before the first frame). The shipped
 * models take 288x512, the paper's 352x352; --size may still ask for more
 * (core/net.h), as the user's own choice. */
#define MMS_CARD_MAX_SIDE 4096
#define MMS_CARD_MAX_PIXELS (2048 * 2048)

struct mms_card {
    const struct mms_arch *arch;
    int in_h, in_w;
    float mean[3], std[3];
    float threshold;
};

int mms_card_parse(const struct mms_model *m, struct mms_card *card,
                   struct mms_err *err);

/* "288x512" -> 288, 512; -EINVAL unless both are in 1..8192. */
int mms_card_parse_size(const char *s, int *h, int *w);

#endif
