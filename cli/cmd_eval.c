/* mms eval: Dice and IoU of the model's masks against ground truth. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "overlay/sheet.h"

struct eval_opts {
    struct mms_pipeline_opts net; /* model, precision, threads */
    char *images, *masks, *sheet;
    int json;
};

#define OFF(f) offsetof(struct eval_opts, f)
static const char *const net_options[] = {"model", "precision", "threads", "tta", NULL};
static const struct mms_option opts[] = {
    {.name = "images", .type = MMS_OPT_STRING, .offset = OFF(images), .arg = "DIR",
     .help = "the images: every .png, .jpg and .jpeg in DIR, by name"},
    {.name = "masks", .type = MMS_OPT_STRING, .offset = OFF(masks), .arg = "DIR",
     .help = "the ground truth: DIR/<stem>.png per image, tool > 127"},
    {.name = "json", .type = MMS_OPT_BOOL, .offset = OFF(json),
     .help = "print one JSON object instead of the table"},
    {.name = "sheet", .type = MMS_OPT_STRING, .offset = OFF(sheet), .arg = "FILE",
     .help = "also write a contact sheet PNG: each frame beside its prediction over the\n"
             "ground truth (found green, false magenta, missed yellow) and its Dice"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "eval",
    .usage = "[--model FILE] [--precision P] [--threads N] [--tta T] --images DIR --masks DIR\n"
             "            [--json] [--sheet FILE.png]",
    .summary = "score the model's masks against ground-truth masks (Dice, IoU)",
    .details = "Per image: Dice and IoU of the predicted mask against the ground truth\n"
               "(both 1 when both are empty). Then their means over the images, and over\n"
               "all pixels pooled: Dice, precision and recall (1 when their denominator\n"
               "is 0: nothing predicted, or nothing to find).",
    .opts = opts,
    .pipeline = net_options,
    .pipeline_offset = OFF(net),
    .min_operands = 0,
    .max_operands = 0,
};

struct score {
    char *name;
    int64_t tp, fp, fn;
    int64_t gt, pred;
    double dice, iou;
};

static double ratio(int64_t num, int64_t den)
{
    return den ? (double)num / (double)den : 1.0;
}

/* ---- the image list ---- */

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
            !strcasecmp(dot, ".jpeg"));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct score *)a)->name, ((const struct score *)b)->name);
}

static void free_scores(struct score *s, int n)
{
    for (int i = 0; i < n; i++)
        free(s[i].name);
    free(s);
}

/* One zeroed score per image in `dir`, sorted by name. */
static int list_images(const char *dir, struct score **out, int *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct score *s = NULL;
    int n = 0, cap = 0, ret = 0;
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        /* A directory or a device named x.png is no image; a link to one
         * counts as what it leads to. */
        if (!is_image_name(e->d_name) || fstatat(dirfd(d), e->d_name, &st, 0) ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            struct score *t = realloc(s, sizeof(*s) * cap);
            if (!t) {
                ret = -ENOMEM;
                goto fail;
            }
            s = t;
        }
        memset(&s[n], 0, sizeof(s[n]));
        if (!(s[n].name = strdup(e->d_name))) {
            ret = -ENOMEM;
            goto fail;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(s, n, sizeof(*s), by_name);
    *out = s;
    *count = n;
    return 0;
fail:
    closedir(d);
    free_scores(s, n);
    return ret;
}

static int mask_path(char *buf, size_t len, const char *masks, const char *name)
{
    char stem[256];
    if (cli_stem(name, stem, sizeof(stem)) < 0 ||
        (size_t)snprintf(buf, len, "%s/%s.png", masks, stem) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* Every mask is there before the first frame is run. */
static int check_masks(const char *masks, const struct score *s, int n)
{
    char path[PATH_MAX];
    for (int i = 0; i < n; i++) {
        if (mask_path(path, sizeof(path), masks, s[i].name) < 0)
            return cli_fail(spec.name, "%s: %s", s[i].name, strerror(ENAMETOOLONG));
        if (access(path, R_OK) < 0)
            return cli_fail(spec.name, "%s: %s (the mask for %s)", path, strerror(errno),
                            s[i].name);
    }
    return CLI_GO_ON;
}

/* ---- scoring ---- */

static void count(const struct mms_image *pred, const struct mms_image *gt, struct score *s)
{
    for (int y = 0; y < pred->h; y++) {
        const uint8_t *p = pred->data + (size_t)y * pred->stride;
        const uint8_t *g = gt->data + (size_t)y * gt->stride;
        for (int x = 0; x < pred->w; x++) {
            int pp = p[x] != 0, gg = g[x] > 127;
            s->tp += pp & gg;
            s->fp += pp & (gg ^ 1);
            s->fn += (pp ^ 1) & gg;
        }
    }
    s->gt = s->tp + s->fn;
    s->pred = s->tp + s->fp;
    s->dice = ratio(2 * s->tp, 2 * s->tp + s->fp + s->fn);
    s->iou = ratio(s->tp, s->tp + s->fp + s->fn);
}

static int score_one(struct mms_net *net, const char *images, const char *masks,
                     struct score *s, struct mms_sheet *sheet, struct mms_err *err)
{
    struct mms_image rgb = {0}, gt = {0}, pred = {0};
    char path[PATH_MAX];
    int ret;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", images, s->name) >= sizeof(path)) {
        ret = mms_err_set(err, -ENAMETOOLONG, "%s: path too long", s->name);
        goto fail;
    }
    if ((ret = mms_image_read(path, MMS_IMAGE_RGB24, &rgb, err)) < 0)
        goto fail;
    mask_path(path, sizeof(path), masks, s->name); /* checked by check_masks() */
    if ((ret = mms_image_read(path, MMS_IMAGE_GRAY8, &gt, err)) < 0)
        goto fail;
    if (gt.w != rgb.w || gt.h != rgb.h) {
        ret = mms_err_set(err, -EINVAL, "%s: mask is %dx%d but %s is %dx%d", path, gt.w,
                          gt.h, s->name, rgb.w, rgb.h);
        goto fail;
    }
    if ((ret = cli_segment_frame(net, &rgb, &pred, err)) < 0) {
        mms_err_prefix(err, "%s: ", s->name);
        goto fail;
    }
    count(&pred, &gt, s);
    if (sheet) {
        char caption[128];
        snprintf(caption, sizeof(caption), "%s  dice %.3f", s->name, s->dice);
        ret = mms_sheet_add(sheet, &rgb, &pred, &gt, caption, err);
    }
fail:
    mms_image_free(&rgb);
    mms_image_free(&gt);
    mms_image_free(&pred);
    return ret;
}

/* ---- reports ---- */

struct totals {
    double mean_dice, mean_iou, pooled_dice, precision, recall;
};

static struct totals total(const struct score *s, int n)
{
    struct totals t = {0};
    int64_t tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < n; i++) {
        t.mean_dice += s[i].dice / n;
        t.mean_iou += s[i].iou / n;
        tp += s[i].tp;
        fp += s[i].fp;
        fn += s[i].fn;
    }
    t.pooled_dice = ratio(2 * tp, 2 * tp + fp + fn);
    t.precision = ratio(tp, tp + fp);
    t.recall = ratio(tp, tp + fn);
    return t;
}

static void print_json(const struct cli_net *cn, const struct score *s, int n)
{
    struct totals t = total(s, n);
    struct json_object *o = json_object_new_object(), *list = json_object_new_array();
    json_object_object_add(o, "model", cli_json_text(cn->model));
    json_object_object_add(o, "count", json_object_new_int(n));
    json_object_object_add(o, "mean_dice", cli_json_num(t.mean_dice, 6));
    json_object_object_add(o, "mean_iou", cli_json_num(t.mean_iou, 6));
    json_object_object_add(o, "pooled_dice", cli_json_num(t.pooled_dice, 6));
    json_object_object_add(o, "precision", cli_json_num(t.precision, 6));
    json_object_object_add(o, "recall", cli_json_num(t.recall, 6));
    for (int i = 0; i < n; i++) {
        struct json_object *e = json_object_new_object();
        json_object_object_add(e, "name", cli_json_text(s[i].name));
        json_object_object_add(e, "dice", cli_json_num(s[i].dice, 6));
        json_object_object_add(e, "iou", cli_json_num(s[i].iou, 6));
        json_object_object_add(e, "gt_pixels", json_object_new_int64(s[i].gt));
        json_object_object_add(e, "pred_pixels", json_object_new_int64(s[i].pred));
        json_object_array_add(list, e);
    }
    json_object_object_add(o, "images", list);
    cli_json_print(o);
}

/* A file name as a terminal may show it: a control byte (an escape that
 * would recolour or retitle the terminal) becomes '?'. */
static const char *printable(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
    buf[i] = '\0';
    return buf;
}

static void print_table(const struct cli_net *cn, const struct score *s, int n)
{
    char shown[1024];
    int width = 5;
    for (int i = 0; i < n; i++)
        if ((int)strlen(s[i].name) > width)
            width = (int)strlen(s[i].name);
    printf("%-*s  %7s  %7s  %10s  %10s\n", width, "image", "dice", "iou", "gt px", "pred px");
    for (int i = 0; i < n; i++)
        printf("%-*s  %7.4f  %7.4f  %10" PRId64 "  %10" PRId64 "\n", width,
               printable(s[i].name, shown, sizeof(shown)), s[i].dice, s[i].iou, s[i].gt,
               s[i].pred);
    struct totals t = total(s, n);
    printf("\nmean over %d image%s: dice %.4f  iou %.4f\n", n, n == 1 ? "" : "s",
           t.mean_dice, t.mean_iou);
    printf("pooled pixels: dice %.4f  precision %.4f  recall %.4f\n", t.pooled_dice,
           t.precision, t.recall);
    printf("model: %s\n", cn->model);
}

static int evaluate(const struct args *a, const struct eval_opts *o)
{
    struct cli_net cn = {0};
    struct score *s = NULL;
    struct mms_sheet *sheet = NULL;
    const char *images = o->images, *masks = o->masks, *sheet_path = o->sheet;
    int n = 0, ret;
    if (!images || !masks)
        return args_missing(a, images ? "masks" : "images");
    if ((ret = cli_net_options(a, &o->net, NULL, &cn)) != CLI_GO_ON)
        return ret;
    if ((ret = list_images(images, &s, &n)) < 0)
        return cli_fail(spec.name, "%s: %s", images, strerror(-ret));
    if (!n) {
        ret = cli_fail(spec.name, "%s: no .png, .jpg or .jpeg images", images);
        goto done;
    }
    if ((ret = check_masks(masks, s, n)) != CLI_GO_ON ||
        (ret = cli_net_open(spec.name, &cn)) != CLI_GO_ON)
        goto done;
    /* Three frames a row of 256-pixel tiles: about 1.5k wide, a page's width. */
    if (sheet_path && mms_sheet_create(&sheet, 256, 3) < 0) {
        ret = cli_fail(spec.name, "%s", strerror(ENOMEM));
        goto done;
    }
    for (int i = 0; i < n; i++) {
        struct mms_err err = {{0}};
        if (score_one(cn.net, images, masks, &s[i], sheet, &err) < 0) {
            ret = cli_fail(spec.name, "%s", err.msg);
            goto done;
        }
    }
    /* The scores first: a sheet that cannot be written (too many frames
     * for one picture, a full disk) must not take them with it. */
    if (o->json)
        print_json(&cn, s, n);
    else
        print_table(&cn, s, n);
    fflush(stdout);
    ret = ARGS_EXIT_OK;
    if (sheet) {
        struct mms_err err = {{0}};
        if (mms_sheet_write_png(sheet, sheet_path, &err) < 0)
            ret = cli_fail(spec.name, "%s", err.msg);
    }
done:
    mms_sheet_free(&sheet);
    cli_net_close(&cn);
    free_scores(s, n);
    return ret;
}

static int run(int argc, char **argv)
{
    struct eval_opts o = {0};
    struct args a;
    int ret = args_parse(&spec, &o, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    ret = evaluate(&a, &o);
    args_free(&a);
    return ret;
}

const struct cli_command cli_eval = {&spec, run};
