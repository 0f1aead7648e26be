/* placeholder: being written */
#include "cli/cli.h"
static const struct args_cmd spec = {"run", "", "not written yet", NULL, (const struct args_opt[]){{0}}, 0, 0};
static int run(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("run", "not written yet"); }
const struct cli_command cli_run = {&spec, run};
