/* blas_core.h: the OpenBLAS kernel core, checked against the CPU (CPUID) before main. Where OpenBLAS fell back to
 * a weaker kernel family than this CPU runs (an x86 model its table does not know gets Prescott, SSE3), the program
 * re-executes itself once with OPENBLAS_CORETYPE naming the best core of that family (OpenBLAS reads it only when it
 * loads). A user's own OPENBLAS_CORETYPE wins; one naming a core the CPU cannot run stops the program with a message.
 * Linked into every program through base_dep; binaries without OpenBLAS only get the CPU report. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* What the CPU and the OS (XCR0) let user code run. */
typedef struct qb_cpu_features {
    char vendor[13];  /* "GenuineIntel", "AuthenticAMD", "" off x86 */
    char brand[49];   /* "Intel(R) Xeon(R) Processor" */
    bool sse3, ssse3, sse4_1, sse4_2, sse4a, fma4, avx, fma, avx2;
    bool avx512;      /* F, CD, BW, DQ and VL, with the OS saving the ZMM state */
    bool avx512_bf16, avx512_vnni;
    bool amx;         /* AMX-TILE and AMX-BF16, with the OS saving the tile state */
} qb_cpu_features;

/* Kernel families of OpenBLAS's x86-64 cores, weakest first; cores of one family share their sgemm kernels. */
typedef enum { QB_BLAS_FAMILY_UNKNOWN = -1, QB_BLAS_FAMILY_SSE = 0, QB_BLAS_FAMILY_AVX, QB_BLAS_FAMILY_AVX2, QB_BLAS_FAMILY_AVX512 } qb_blas_family;

typedef enum {
    QB_BLAS_CORE_NO_BLAS,   /* the program does not link OpenBLAS */
    QB_BLAS_CORE_AUTO,      /* OpenBLAS's own choice, already the best family for this CPU */
    QB_BLAS_CORE_UPGRADED,  /* OpenBLAS chose `detected`; we re-executed with OPENBLAS_CORETYPE=`active` */
    QB_BLAS_CORE_USER,      /* the user's OPENBLAS_CORETYPE */
    QB_BLAS_CORE_FIXED,     /* a build for one core (no DYNAMIC_ARCH): nothing to choose */
} qb_blas_core_source;

typedef struct qb_blas_core_info {
    qb_cpu_features cpu;
    qb_blas_core_source source;
    char library[160];   /* openblas_get_config() */
    char active[32];     /* core in use (openblas_get_corename()) */
    char detected[32];   /* core OpenBLAS chose by itself, when we replaced it */
    char best[32];       /* best core of this build for this CPU, "" when unknown */
    char note[256];      /* why the active core is not the best one, or "" */
} qb_blas_core_info;

/* Input of the choice: the CPU, the core OpenBLAS loaded, the user's OPENBLAS_CORETYPE (NULL if unset), and whether
 * the build has a core (OpenBLAS exports gotoblas_NAME for each). */
typedef struct qb_blas_core_query {
    const qb_cpu_features *cpu;
    const char *active;
    const char *user_coretype;
    bool dynamic_arch;
    bool (*has_core)(const char *name);
} qb_blas_core_query;

typedef struct qb_blas_core_decision {
    qb_blas_core_source source;
    const char *best;      /* best core for this CPU (static string), NULL when unknown */
    const char *reexec;    /* core to re-execute with, NULL to keep the active one */
    bool fatal;            /* the user's core cannot run on this CPU */
    char note[256];
} qb_blas_core_decision;

/* Reads CPUID and XGETBV. */
void qb_cpu_features_detect(qb_cpu_features *f);
/* "AVX2 FMA AVX-512 AVX512-BF16 AMX" (the widest vector extensions found) into buf. */
void qb_cpu_features_format(const qb_cpu_features *f, char *buf, size_t n);
/* Kernel family of an OpenBLAS core name (case-insensitive); UNKNOWN for names not in the table. */
qb_blas_family qb_blas_core_family(const char *name);
/* Whether this CPU runs the kernels of an OpenBLAS core (false for unknown names). */
bool qb_blas_core_runs_on(const char *name, const qb_cpu_features *cpu);
/* The choice made before main, as a pure function of its inputs. */
void qb_blas_core_decide(const qb_blas_core_query *q, qb_blas_core_decision *d);
/* What was found and chosen before main (filled by the start-up check). */
const qb_blas_core_info *qb_blas_core_get(void);
/* The active core and why: "SkylakeX (chosen by OpenBLAS, the best family for this CPU)". */
void qb_blas_core_describe(char *buf, size_t n);
/* One line for a program's first lines: "OpenBLAS 0.3.21 core SkylakeX (...); CPU Intel(R) Xeon(R) [AVX2 ...]". */
void qb_blas_core_summary(char *buf, size_t n);
/* Space-separated cores, one per kernel family this CPU runs and this build has, weakest (the generic one) first. */
void qb_blas_core_runnable(char *buf, size_t n);
