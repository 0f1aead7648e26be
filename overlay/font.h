#ifndef MMS_OVERLAY_FONT_H
#define MMS_OVERLAY_FONT_H

/*
 * Internal to overlay/: the built-in 8x8 font, which text.c falls back to
 * when no TrueType font loads and the contact sheet captions with, and the
 * one colour conversion compose.c and text.c share.
 */

#include <stdint.h>

#define MMS_FONT_W 8
#define MMS_FONT_H 8

/* Eight rows, top first; bit 0 of a row is the leftmost pixel. Bytes
 * outside 32..126 get the glyph of '?'. */
const uint8_t *mms_font_glyph(unsigned char c);

/* Calls fn for each horizontal run of set pixels of ch's glyph: columns
 * [c0, c1) of row `row`. Stops at, and returns, fn's first non-zero result.
 * Both the frame painter and the window draw glyphs run by run. */
int mms_font_runs(unsigned char ch, int (*fn)(void *ctx, int c0, int c1, int row), void *ctx);

/* 0xRRGGBB to Y'CbCr, BT.601 limited range (what the frames here carry). */
void mms_rgb_to_ycbcr(uint32_t rgb, uint8_t ycc[3]);

#endif
