#ifndef MMS_ARCH_H
#define MMS_ARCH_H

/*
 * Architectures: each turns a model file into a graph. The registry maps
 * the `mms.arch` metadata value to a builder and to the architecture
 * metadata keys it accepts; any other `mms.*` key is refused by the card.
 */

#include "core/error.h"
#include "core/graph.h"
#include "core/model.h"

struct mms_arch {
    const char *name;
    const char *description;
    /* NULL-terminated list of accepted architecture keys ("mms.layers"). */
    const char *const *keys;
    /* Input height and width must be multiples of this. */
    int input_multiple;
    /* Builds the network on input tensor `in`; returns the logits tensor
     * (1 x H x W at the input size) or -1 with the graph's error set. */
    int (*build)(struct mms_graph *g, const struct mms_model *m, int in);
};

const struct mms_arch *mms_arch_find(const char *name);
/* NULL-terminated list of every architecture, for --help and errors. */
const struct mms_arch *const *mms_arch_all(void);

/* Helpers for architecture parameters stored as metadata strings. Missing
 * keys give the default; malformed ones fail the graph with the key named. */
int mms_arch_int(struct mms_graph *g, const struct mms_model *m, const char *key,
                 int def, int lo, int hi);
float mms_arch_float(struct mms_graph *g, const struct mms_model *m,
                     const char *key, float def, float lo, float hi);
/* Comma-separated integers; returns the count or -1. */
int mms_arch_ints(struct mms_graph *g, const struct mms_model *m, const char *key,
                  const int *def, int ndef, int *out, int max, int lo, int hi);

extern const struct mms_arch mms_arch_res2net_unet;
extern const struct mms_arch mms_arch_mms_res2net101;
extern const struct mms_arch mms_arch_mms_rt;

#endif
