#ifndef MMS_CPU_H
#define MMS_CPU_H

/*
 * The machine a speed figure was measured on: every benchmark prints it,
 * since figures from different CPUs are not comparable, only ratios
 * measured in one run. Also what precisions this CPU runs natively.
 */

struct mms_cpu {
    char name[128];  /* /proc/cpuinfo's model name, or "unknown" */
    char flags[192]; /* the ISA extensions that matter to oneDNN, space-separated */
    const char *isa; /* oneDNN's effective ISA ("avx2", "avx512_core_amx", ...) */
    int cores;       /* logical CPUs this process may run on (its affinity) */
    int bf16;        /* native bf16 convolutions: AVX512-BF16 or AMX, and oneDNN uses them */
    int amx;
    int vnni;        /* int8 dot products: AVX512-VNNI, AVX-VNNI or AMX */
};

void mms_cpu_probe(struct mms_cpu *c);

/* Hand-vectorised paths (AVX2) run where the CPU has them and give the
 * portable code's results bit for bit. mms_cpu_use_simd(0) keeps to the
 * portable code so that tests can compare the two; set it before work
 * starts, it is not synchronised. */
void mms_cpu_use_simd(int on);
int mms_cpu_avx2(void); /* the CPU has AVX2 and SIMD is not turned off */

#endif
