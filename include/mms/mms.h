#ifndef MMS_MMS_H
#define MMS_MMS_H

/*
 * libmms: mmsd's surgical tool segmentation engine as a C library.
 *
 *     struct mms_engine *e;
 *     struct mms_error err;
 *     if (mms_open(NULL, NULL, &e, &err) < 0)         // the shipped model
 *         die(err.msg);
 *     struct mms_frame f = {.format = MMS_FRAME_RGB24, .width = w, .height = h,
 *                           .data = {rgb}, .stride = {3 * w}};
 *     if (mms_run(e, &f, &err) < 0 ||
 *         mms_mask(e, mask, w, h, w, &err) < 0)        // 0/255, w x h
 *         die(err.msg);
 *     mms_close(e);
 *
 * A frame of any size is resized to the network's input and normalised as
 * the model file says; the logits come back at the network's resolution
 * and the mask at any size asked for, thresholded as the model file says.
 * These are the same steps, in the same code, as `mms segment` and mmsd:
 * the same frame gives the same mask.
 *
 * Conventions: functions that can fail return 0 or a negative errno
 * (-ENOENT: no such model file, -EINVAL: a malformed model file or bad
 * argument, -ENOMEM) and, when `err` is not NULL, write one line saying
 * why into it. The library never prints. The caller owns what it
 * allocates; what the library returns stays the library's.
 *
 * Threads: an engine is used by one thread at a time; engines are
 * independent, so several threads may each run their own.
 *
 * ABI: the shared library's soname is libmms.so.MMS_ABI_VERSION. Structs
 * the caller fills (mms_options, mms_frame) change only with that number;
 * mms_info, which the library owns, may grow at its end.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: only what is marked is
 * exported. */
#if defined(__GNUC__)
#define MMS_API __attribute__((visibility("default")))
#else
#define MMS_API
#endif

/* The soname's major version (libmms.so.0). */
#define MMS_ABI_VERSION 0

/* The library's version, "MAJOR.MINOR.PATCH" (mmsd's release). */
MMS_API const char *mms_version(void);

struct mms_error {
    char msg[512];
};

/* What the network computes in. AUTO: int8 when the model file carries an
 * int8 calibration that passed its accuracy check and int8 was not
 * measured slower than fp32 on this CPU, else bf16 where the CPU has it,
 * else fp32. BF16 needs avx512_bf16 or AMX; elsewhere it runs fp32 and
 * mms_info() says so. */
enum {
    MMS_PRECISION_AUTO = 0,
    MMS_PRECISION_FP32 = 1,
    MMS_PRECISION_INT8 = 2,
    MMS_PRECISION_BF16 = 3,
};

/* As mmsd's and mms's threads option allow. */
#define MMS_MAX_THREADS 256

/* Zero-initialise, then set what differs from the defaults. */
struct mms_options {
    int precision;     /* MMS_PRECISION_*; 0: AUTO */
    int threads;       /* OpenMP threads for each run; 0: all cores (as the
                        * opening thread's OpenMP count says); at most
                        * MMS_MAX_THREADS. The caller's own OpenMP count is
                        * set only during the engine's calls and given back. */
    int height, width; /* network input; 0, 0: the size in the model file
                        * (multiples of the network's stride, at most 8192) */
};

struct mms_engine;

/* Opens a model file (safetensors, as models/ ships and `mms calibrate`
 * writes) and compiles the network for this CPU. path NULL: the shipped
 * model, found as `mms` finds it ($MMS_MODEL, else the installed data
 * directory). opts NULL: all defaults. */
MMS_API int mms_open(const char *path, const struct mms_options *opts, struct mms_engine **out,
                     struct mms_error *err);
/* NULL is a no-op. */
MMS_API void mms_close(struct mms_engine *e);

struct mms_info {
    const char *path;          /* the model file opened */
    const char *arch;          /* "mms-rt", "res2net-unet" */
    int in_height, in_width;   /* the network input */
    int out_height, out_width; /* the logits */
    int precision;             /* what runs: MMS_PRECISION_FP32, INT8 or BF16 */
    const char *precision_why; /* how that was chosen, one line */
    float threshold;           /* tool where sigmoid(logit) > threshold */
    /* 1: each run is the mean of the frame's logits and its mirror's (two
     * network runs); 0: one run. See mms_set_flip(). */
    int flip;
    const char *flip_why;      /* how that was chosen, one line */
};

/* Owned by the engine, valid until mms_close(). */
MMS_API const struct mms_info *mms_info(const struct mms_engine *e);

/* Pixel layouts (8 bits a sample). YUV420P: Y, Cb, Cr planes, chroma
 * halved both ways ((w + 1) / 2 x (h + 1) / 2); NV12: Y, then Cb Cr
 * interleaved at 4:2:0; YUV422P: chroma halved horizontally; YUV444P. */
enum {
    MMS_FRAME_RGB24 = 1, /* packed R, G, B in data[0] */
    MMS_FRAME_YUV420P = 2,
    MMS_FRAME_NV12 = 3,
    MMS_FRAME_YUV422P = 4,
    MMS_FRAME_YUV444P = 5,
};

/* Y'CbCr matrices (as ITU-T H.273 names them). */
enum {
    MMS_COLOR_BT601 = 0, /* also what a frame that says nothing gets */
    MMS_COLOR_BT709 = 1,
    MMS_COLOR_BT2020 = 2,
    MMS_COLOR_SMPTE240M = 3,
    MMS_COLOR_FCC = 4,
};

/* Where subsampled chroma sits. LEFT: co-sited with the even luma columns,
 * midway between rows (MPEG-2, H.264, HEVC's default); CENTER: midway both
 * ways (JPEG, MPEG-1). */
enum {
    MMS_CHROMA_LEFT = 0,
    MMS_CHROMA_CENTER = 1,
};

/* The largest side of a frame (and of a mask) the library takes. */
#define MMS_FRAME_MAX_SIDE 16384

/* One frame, the caller's pixels; zero-initialise it. Sizes 1..16384
 * (MMS_FRAME_MAX_SIDE); strides are positive byte counts of a row, at
 * least its width's worth. */
struct mms_frame {
    int format; /* MMS_FRAME_* */
    int width, height;
    const uint8_t *data[3];
    int stride[3];
    /* Y'CbCr only: */
    int colorspace; /* MMS_COLOR_* */
    int full_range; /* 0: limited (Y 16..235), 1: full (0..255, JPEG) */
    int chroma_loc; /* MMS_CHROMA_* */
};

/* Test-time flip: each run also runs the left-right mirror of the frame
 * and averages the two logit maps, for better masks at twice the network
 * time. AUTO, what mms_open() starts with (mmsd's and the mms commands'
 * tta = auto): flip only where the network runs int8 and int8 was
 * measured at least twice as fast as fp32 on this CPU's ISA when the file
 * was calibrated, so that two runs cost no more than one fp32 run. */
enum {
    MMS_FLIP_AUTO = 0,
    MMS_FLIP_OFF = 1,
    MMS_FLIP_ON = 2,
};

/* Sets the flip for the runs that follow; mms_info() says what it chose.
 * -EINVAL for an unknown value, and nothing changes. */
MMS_API int mms_set_flip(struct mms_engine *e, int flip, struct mms_error *err);

/* Runs the network on one frame. The frame is read during the call only. */
MMS_API int mms_run(struct mms_engine *e, const struct mms_frame *f, struct mms_error *err);

/* The last run's logits: out_height x out_width floats, row-major; valid
 * until the next run or mms_close(). NULL before the first successful run. */
MMS_API const float *mms_logits(const struct mms_engine *e);

/* The last run's mask at width x height (the frame's size gives what
 * `mms segment` writes): the logits resized bilinearly, 255 where the tool
 * probability exceeds the model's threshold, else 0; `stride` bytes a row.
 * -EINVAL before the first run or for a bad size. */
MMS_API int mms_mask(const struct mms_engine *e, uint8_t *mask, int width, int height, int stride,
                     struct mms_error *err);

/* Runs n frames in order. The engine has no batched kernels: this is the
 * loop over mms_run() a caller would write, kept here for one call per
 * batch. Where `logits` is not NULL, frame i's logits are written at
 * logits + i * out_height * out_width; where `masks` is not NULL, frame
 * i's mask at its own size (stride = width) into masks[i]. Stops at the
 * first failing frame ("frame I: ..." in err); mms_logits() then holds the
 * last frame that ran. */
MMS_API int mms_run_batch(struct mms_engine *e, const struct mms_frame *frames, int n,
                          float *logits, uint8_t *const *masks, struct mms_error *err);

/* Drawing the mask onto the video as mmsd draws it (the same code):
 * FILL blends the colour over the tool at `alpha`; OUTLINE paints the
 * tool's 2-pixel inner border opaque; MASK replaces the picture with the
 * mask itself (white tool on black); OFF leaves it alone. */
enum {
    MMS_DRAW_FILL = 0,
    MMS_DRAW_OUTLINE = 1,
    MMS_DRAW_MASK = 2,
    MMS_DRAW_OFF = 3,
};

struct mms_draw_style {
    int style;      /* MMS_DRAW_* */
    float alpha;    /* FILL's opacity, 0..1 (mmsd's default 0.45) */
    uint32_t color; /* 0xRRGGBB (mmsd's default 0x00ff66) */
};

/* Draws `mask` (frame-sized, 0 = background, non-zero = tool, `stride`
 * bytes a row, as mms_mask() writes it) onto a MMS_FRAME_YUV420P frame in
 * place: the frame's planes ARE written, although mms_frame's pointers are
 * const for mms_run(), which only reads them. The colour goes into Y'CbCr
 * by BT.601 in the frame's range (full_range), as mmsd's overlay does
 * whatever the frame's matrix; colorspace and chroma_loc are not used.
 * Allocates nothing. -EINVAL for another format, a malformed frame or
 * style, a NULL mask or a stride under the width. */
MMS_API int mms_draw_mask(const struct mms_frame *f, const uint8_t *mask, int stride,
                          const struct mms_draw_style *style, struct mms_error *err);

/* What a mask holds, as mmsd reports it (`mms run --meta`'s "tool_fraction"
 * and "bbox"). The caller allocates it, so it changes only with
 * MMS_ABI_VERSION. */
struct mms_mask_info {
    int64_t count;      /* tool pixels */
    double fraction;    /* count / (width * height), 0..1 */
    int x0, y0, x1, y1; /* the box around them, inclusive; all -1 when there is none */
};

/* Measures `mask` (width x height, non-zero = tool, `stride` bytes a row,
 * as mms_mask() writes it; the bytes past the width are not read). Needs
 * no engine. -EINVAL for a NULL mask or info, a size under 1 or a stride
 * under the width, the reason in `err` (may be NULL). */
MMS_API int mms_mask_measure(const uint8_t *mask, int width, int height, int stride,
                             struct mms_mask_info *info, struct mms_error *err);

#ifdef __cplusplus
}
#endif

#endif
