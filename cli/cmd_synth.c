/* placeholder: being written */
#include "cli/cli.h"
static const struct args_cmd spec = {"synth", "", "not written yet", NULL, (const struct args_opt[]){{0}}, 0, 0};
static int run(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("synth", "not written yet"); }
const struct cli_command cli_synth = {&spec, run};
