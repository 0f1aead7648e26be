/*
 * exact_check MODEL HxW INPUT.f32 REF.f32: runs the engine on a normalised
 * input and compares its logits with PyTorch's. Passes when
 * max|diff| <= 1e-3 * max|ref| and the thresholded masks agree on at least
 * 99.9 % of pixels; prints the figures either way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/card.h"
#include "core/net.h"

static float *read_f32(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    float *p = malloc(n * sizeof(float));
    size_t got = f && p ? fread(p, sizeof(float), n + 1, f) : 0;
    if (f)
        fclose(f);
    if (got != n) {
        fprintf(stderr, "exact_check: %s: expected %zu floats\n", path, n);
        free(p);
        return NULL;
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: exact_check MODEL HxW INPUT.f32 REF.f32\n");
        return 2;
    }
    int h, w;
    if (mms_card_parse_size(argv[2], &h, &w)) {
        fprintf(stderr, "exact_check: bad size %s\n", argv[2]);
        return 2;
    }
    struct mms_err err = {{0}};
    struct mms_net *net;
    struct mms_net_opts o = {.in_h = h, .in_w = w, .threads = 2};
    if (mms_net_open(argv[1], &o, &net, &err)) {
        fprintf(stderr, "exact_check: %s\n", err.msg);
        return 1;
    }
    size_t n = (size_t)h * w;
    float *x = read_f32(argv[3], 3 * n), *ref = read_f32(argv[4], n);
    int rc = 1;
    if (!x || !ref)
        goto out;
    for (size_t i = 0; i < 3 * n; i++)
        mms_net_input(net)[i] = x[i];
    if (mms_net_run(net, &err)) {
        fprintf(stderr, "exact_check: %s\n", err.msg);
        goto out;
    }
    const float *y = mms_net_logits(net);
    double maxref = 0, maxdiff = 0;
    size_t agree = 0, nan = 0, pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            nan++;
        maxref = fmax(maxref, fabs(ref[i]));
        maxdiff = fmax(maxdiff, fabs((double)y[i] - ref[i]));
        agree += (y[i] > 0) == (ref[i] > 0);
        pos += ref[i] > 0;
    }
    double frac = (double)agree / n, rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    double tool = (double)pos / n;
    printf("%s %dx%d: max|ref| %.4g max|diff| %.3g (rel %.2e), masks agree %.5f%%, "
           "reference tool pixels %.1f%%, non-finite %zu\n",
           mms_net_info(net)->arch, h, w, maxref, maxdiff, rel, 100 * frac, 100 * tool, nan);
    /* A reference that is all tool or all background would make the mask
     * comparison vacuous. */
    rc = (rel <= 1e-3 && frac >= 0.999 && !nan && tool > 0.02 && tool < 0.98) ? 0 : 1;
    if (rc)
        fprintf(stderr, "exact_check: FAIL\n");
out:
    free(x);
    free(ref);
    mms_net_close(net);
    return rc;
}
