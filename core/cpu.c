#include "core/cpu.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

static const char *const interesting[] = {
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
};

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

/* Whether the space-separated list has the word. */
static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
            return 1;
    return 0;
}

/* The line is the caller's (on its stack): pipelines made at once probe
 * at once, and a shared buffer mixed their lines. */
static void read_cpuinfo(struct mms_cpu *c)
{
    char line[8192];
    FILE *f = fopen("/proc/cpuinfo", "r");
    int got_name = 0, got_flags = 0;
    while (f && (!got_name || !got_flags) && fgets(line, sizeof(line), f)) {
        char *v = strchr(line, ':');
        if (!v)
            continue;
        v += 1 + (v[1] == ' ');
        if (!got_name && !strncmp(line, "model name", 10)) {
            snprintf(c->name, sizeof(c->name), "%.*s", (int)strcspn(v, "\n"), v);
            got_name = 1;
        } else if (!got_flags && !strncmp(line, "flags", 5)) {
            for (size_t i = 0; i < sizeof(interesting) / sizeof(interesting[0]); i++)
                if (has_word(v, interesting[i]) &&
                    strlen(c->flags) + strlen(interesting[i]) + 2 < sizeof(c->flags)) {
                    if (c->flags[0])
                        strcat(c->flags, " ");
                    strcat(c->flags, interesting[i]);
                }
            got_flags = 1;
        }
    }
    if (f)
        fclose(f);
}

void mms_cpu_probe(struct mms_cpu *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->name, "unknown");
    read_cpuinfo(c);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    c->isa = isa_name(isa);
    /* The CPUs this process may run on (taskset, a cgroup's cpuset), not
     * every one online: workers beyond them would only take turns. */
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof(set), &set) ? 0 : CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    c->cores = n > 0 ? (int)n : 1;
    c->amx = has_word(c->flags, "amx_tile");
    /* oneDNN's own view counts too: ONEDNN_MAX_CPU_ISA can hold it below
     * what the CPU has, and then it has no bf16 kernels to run. */
    c->bf16 = (c->amx || has_word(c->flags, "avx512_bf16")) &&
              (isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx);
    c->vnni = c->amx || has_word(c->flags, "avx512_vnni") || has_word(c->flags, "avx_vnni");
}

static int use_simd = 1;

void mms_cpu_use_simd(int on)
{
    use_simd = on;
}

int mms_cpu_avx2(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return use_simd && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}
