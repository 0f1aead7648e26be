/* mmsd: the daemon. Until the daemon issue lands it only reports its version. */
#include <stdio.h>
#include <string.h>

#include "core/version.h"

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: mmsd [--version]\n"
               "The mmsd daemon (work in progress: only --version for now).\n");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version")) {
        fprintf(stderr, "mmsd: unknown option '%s' (try --help)\n", argv[1]);
        return 2;
    }
    printf("mmsd %s\n", MMS_VERSION);
    return 0;
}
