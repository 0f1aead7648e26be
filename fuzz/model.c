/* A safetensors file through mms_model_open, then its model card and the
 * architecture's graph on it, as mms_net_open reads them (core/net.c) up
 * to oneDNN, which is not compiled here (too slow to fuzz). Every tensor
 * the reader accepts is read to its last byte, so a data pointer or size
 * that strays outside the mapping is caught. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "core/card.h"
#include "core/exec.h"
#include "core/graph.h"
#include "core/model.h"

static volatile unsigned sink;

/* The weights' names and shapes against what the architecture expects:
 * symbolic, no buffer of the input's size is allocated. */
static void build(const struct mms_model *m, const struct mms_card *card)
{
    struct mms_err err = {{0}};
    struct mms_graph *g = mms_graph_new(m);
    if (!g)
        fuzz_fail("mms_graph_new: out of memory");
    int in = mms_graph_input(g, 3, card->in_h, card->in_w);
    int out = card->arch->build(g, m, in);
    int rc = mms_graph_error(g, &err);
    fuzz_check_err(rc, err.msg, "the architecture's build");
    if (!rc) {
        if (out < 0 || out >= mms_graph_ntensors(g))
            fuzz_fail("build succeeded with output tensor %d", out);
        int64_t params, macs;
        mms_graph_cost(g, &params, &macs);
        rc = mms_graph_fuse(g, &err);
        fuzz_check_err(rc, err.msg, "mms_graph_fuse");
    }
    mms_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    int rc = mms_model_open(path, &m, &err);
    fuzz_check_err(rc, err.msg, "mms_model_open");
    if (rc)
        return 0;
    if (mms_model_file_size(m) != size)
        fuzz_fail("file size %llu, expected %zu", (unsigned long long)mms_model_file_size(m),
                  size);
    unsigned sum = 0;
    for (size_t i = 0; i < mms_model_count(m); i++) {
        const struct mms_tensor *t = mms_model_at(m, i);
        if (!t || !t->name || mms_model_find(m, t->name) != t)
            fuzz_fail("tensor %zu is not found by its name", i);
        if (t->ndim < 0 || t->ndim > MMS_MAX_DIMS || t->nbytes > size)
            fuzz_fail("tensor %s: %d dims, %zu bytes in a %zu-byte file", t->name, t->ndim,
                      t->nbytes, size);
        const unsigned char *p = t->data;
        for (size_t b = 0; b < t->nbytes; b++)
            sum += p[b];
    }
    for (size_t i = 0; i < mms_model_meta_count(m); i++) {
        const char *k = NULL, *v = NULL;
        mms_model_meta_at(m, i, &k, &v);
        if (!k || !v || mms_model_meta(m, k) == NULL)
            fuzz_fail("metadata entry %zu is not found by its key", i);
        sum += (unsigned)strlen(v);
    }
    sink = sum;

    struct mms_card card;
    memset(&err, 0, sizeof(err));
    rc = mms_card_parse(m, &card, &err);
    fuzz_check_err(rc, err.msg, "mms_card_parse");
    if (!rc) {
        if (!card.arch || card.in_h < 1 || card.in_w < 1 || card.in_h > MMS_CARD_MAX_SIDE ||
            card.in_w > MMS_CARD_MAX_SIDE ||
            (long long)card.in_h * card.in_w > MMS_CARD_MAX_PIXELS)
            fuzz_fail("card accepted input %dx%d", card.in_h, card.in_w);
        if (!(card.threshold > 0 && card.threshold < 1))
            fuzz_fail("card accepted threshold %g", card.threshold);
        for (int c = 0; c < 3; c++)
            if (!(card.std[c] > 0))
                fuzz_fail("card accepted std %g", card.std[c]);
        build(m, &card);
    }
    const char *input = mms_model_meta(m, "mms.input");
    int h, w;
    if (input && !mms_card_parse_size(input, &h, &w) && (h < 1 || w < 1 || h > 8192 || w > 8192))
        fuzz_fail("mms_card_parse_size(\"%s\") gave %dx%d", input, h, w);
    mms_model_close(m);
    return 0;
}
