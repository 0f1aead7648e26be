/* mms info: what a model file holds and what it costs per frame. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "cli/cli.h"

struct info_opts {
    struct mms_pipeline_opts net; /* model */
    int json;
};

#define OFF(f) offsetof(struct info_opts, f)
static const char *const net_options[] = {"model", "precision", "tta", NULL};
static const struct mms_option opts[] = {
    {.name = "json", .type = MMS_OPT_BOOL, .offset = OFF(json), .help = "print one JSON object"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "info",
    .usage = "[MODEL] [--precision P] [--tta T] [--json]",
    .summary = "describe a model: architecture, input size, parameters, MACs per frame",
    .details = "MODEL may also be given with --model; without either, the default\n"
               "model is used ($MMS_MODEL, else the installed mms-rt).",
    .opts = opts,
    .pipeline = net_options,
    .pipeline_offset = OFF(net),
    .min_operands = 0,
    .max_operands = 1,
};

static struct json_object *floats3(const float v[3])
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < 3; i++)
        json_object_array_add(a, cli_json_num(v[i], 4));
    return a;
}

static void print_json(const struct mms_net_info *ni)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "path", cli_json_text(ni->path));
    json_object_object_add(o, "arch", json_object_new_string(ni->arch));
    json_object_object_add(o, "input_h", json_object_new_int(ni->in_h));
    json_object_object_add(o, "input_w", json_object_new_int(ni->in_w));
    json_object_object_add(o, "output_h", json_object_new_int(ni->out_h));
    json_object_object_add(o, "output_w", json_object_new_int(ni->out_w));
    json_object_object_add(o, "params", json_object_new_int64(ni->params));
    json_object_object_add(o, "macs", json_object_new_int64(ni->macs));
    json_object_object_add(o, "gmac", cli_json_num(ni->macs / 1e9, 3));
    json_object_object_add(o, "tensors", json_object_new_int(ni->tensors));
    json_object_object_add(o, "primitives", json_object_new_int(ni->primitives));
    json_object_object_add(o, "mean", floats3(ni->mean));
    json_object_object_add(o, "std", floats3(ni->std));
    json_object_object_add(o, "threshold", cli_json_num(ni->threshold, 4));
    json_object_object_add(o, "precision", json_object_new_string(ni->precision));
    json_object_object_add(o, "precision_why", json_object_new_string(ni->precision_why));
    json_object_object_add(o, "int8_calibrated", json_object_new_boolean(ni->int8_calibrated));
    json_object_object_add(o, "tta", json_object_new_string(ni->flip ? "flip" : "off"));
    json_object_object_add(o, "tta_why", json_object_new_string(ni->tta_why));
    cli_json_print(o);
}

static void print_text(const struct mms_net_info *ni)
{
    printf("model        %s\n", ni->path);
    printf("arch         %s\n", ni->arch);
    printf("input        %dx%d (HxW), RGB\n", ni->in_h, ni->in_w);
    printf("output       %dx%d logits\n", ni->out_h, ni->out_w);
    printf("parameters   %" PRId64 " (%.2f M)\n", ni->params, ni->params / 1e6);
    printf("MACs/frame   %" PRId64 " (%.3f GMAC)\n", ni->macs, ni->macs / 1e9);
    printf("tensors      %d\n", ni->tensors);
    printf("primitives   %d per frame\n", ni->primitives);
    printf("mean         %.4f %.4f %.4f\n", ni->mean[0], ni->mean[1], ni->mean[2]);
    printf("std          %.4f %.4f %.4f\n", ni->std[0], ni->std[1], ni->std[2]);
    printf("threshold    %.4f\n", ni->threshold);
    printf("precision    %s (%s)\n", ni->precision, ni->precision_why);
    printf("tta          %s (%s)\n", ni->flip ? "flip, two passes a frame" : "off", ni->tta_why);
}

static int run(int argc, char **argv)
{
    struct info_opts o = {0};
    struct args a;
    struct cli_net cn;
    int ret = args_parse(&spec, &o, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    if (a.noperands && o.net.model)
        ret = args_usage_error(&spec, "give the model once: MODEL or --model");
    else if ((ret = cli_net_options(&a, &o.net, a.noperands ? a.operands[0] : NULL, &cn)) ==
                 CLI_GO_ON &&
             (ret = cli_net_open(spec.name, &cn)) == CLI_GO_ON) {
        const struct mms_net_info *ni = mms_net_info(cn.net);
        if (o.json)
            print_json(ni);
        else
            print_text(ni);
        cli_net_close(&cn);
        ret = ARGS_EXIT_OK;
    }
    args_free(&a);
    return ret;
}

const struct cli_command cli_info = {&spec, run};
