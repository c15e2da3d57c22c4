/* blas_core.c: see blas_core.h. */
#include "base/blas_core.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Weak: a program that does not link OpenBLAS sees NULL and only gets the CPU report. */
extern char *openblas_get_corename(void) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

/* Set for the re-executed process: "detected,target,original OPENBLAS_CORETYPE or empty"; removed at its start. */
#define REEXEC_MARK "QB_BLAS_CORE_REEXEC"

enum {
    NEED_SSE3 = 1 << 0, NEED_SSSE3 = 1 << 1, NEED_SSE4_1 = 1 << 2, NEED_SSE4_2 = 1 << 3, NEED_SSE4A = 1 << 4,
    NEED_FMA4 = 1 << 5, NEED_AVX = 1 << 6, NEED_AVX2 = 1 << 7, NEED_AVX512 = 1 << 8, NEED_BF16 = 1 << 9, NEED_AMX = 1 << 10,
};

typedef struct core_entry {
    const char *name;       /* as OPENBLAS_CORETYPE and openblas_get_corename() spell it */
    qb_blas_family family;
    unsigned needs;
    bool representative;    /* the core chosen for its family (the oldest name: every OpenBLAS accepts it) */
} core_entry;

/* OpenBLAS's x86-64 cores. Cooperlake and SapphireRapids add BF16 kernels (sbgemm) to SkylakeX's sgemm ones. */
static const core_entry cores[] = {
    {"Prescott", QB_BLAS_FAMILY_SSE, NEED_SSE3, true},
    {"Core2", QB_BLAS_FAMILY_SSE, NEED_SSSE3, false},
    {"Penryn", QB_BLAS_FAMILY_SSE, NEED_SSE4_1, false},
    {"Dunnington", QB_BLAS_FAMILY_SSE, NEED_SSE4_1, false},
    {"Nehalem", QB_BLAS_FAMILY_SSE, NEED_SSE4_2, false},
    {"Atom", QB_BLAS_FAMILY_SSE, NEED_SSSE3, false},
    {"Nano", QB_BLAS_FAMILY_SSE, NEED_SSE3, false},
    {"Opteron", QB_BLAS_FAMILY_SSE, 0, false},
    {"Opteron_SSE3", QB_BLAS_FAMILY_SSE, NEED_SSE3, false},
    {"Barcelona", QB_BLAS_FAMILY_SSE, NEED_SSE3 | NEED_SSE4A, false},
    {"Bobcat", QB_BLAS_FAMILY_SSE, NEED_SSSE3 | NEED_SSE4A, false},
    {"Sandybridge", QB_BLAS_FAMILY_AVX, NEED_SSE4_2 | NEED_AVX, true},
    {"Bulldozer", QB_BLAS_FAMILY_AVX, NEED_AVX | NEED_FMA4, false},
    {"Piledriver", QB_BLAS_FAMILY_AVX, NEED_AVX | NEED_FMA4, false},
    {"Steamroller", QB_BLAS_FAMILY_AVX, NEED_AVX | NEED_FMA4, false},
    {"Excavator", QB_BLAS_FAMILY_AVX, NEED_AVX | NEED_FMA4, false},
    {"Haswell", QB_BLAS_FAMILY_AVX2, NEED_AVX2, true},
    {"Zen", QB_BLAS_FAMILY_AVX2, NEED_AVX2, false},
    {"SkylakeX", QB_BLAS_FAMILY_AVX512, NEED_AVX512, true},
    {"Cooperlake", QB_BLAS_FAMILY_AVX512, NEED_AVX512 | NEED_BF16, false},
    {"SapphireRapids", QB_BLAS_FAMILY_AVX512, NEED_AVX512 | NEED_BF16 | NEED_AMX, false},
};
#define N_CORES ((int)(sizeof cores / sizeof cores[0]))

static const char *need_names[] = {"SSE3", "SSSE3", "SSE4.1", "SSE4.2", "SSE4a", "FMA4", "AVX", "AVX2 and FMA",
                                   "AVX-512 (F, CD, BW, DQ, VL)", "AVX512-BF16", "AMX"};

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

void qb_cpu_features_detect(qb_cpu_features *f) {
    memset(f, 0, sizeof *f);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    unsigned max = __get_cpuid_max(0, NULL);
    if (max < 1) return;
    __cpuid(0, a, b, c, d);
    memcpy(f->vendor, &b, 4);
    memcpy(f->vendor + 4, &d, 4);
    memcpy(f->vendor + 8, &c, 4);
    __cpuid(1, a, b, c, d);
    f->sse3 = c & (1u << 0);
    f->ssse3 = c & (1u << 9);
    f->sse4_1 = c & (1u << 19);
    f->sse4_2 = c & (1u << 20);
    bool osxsave = c & (1u << 27), avx_cpu = c & (1u << 28), fma_cpu = c & (1u << 12);
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0, tile_os = (xcr0 & 0x60000) == 0x60000;
    f->avx = avx_cpu && ymm_os;
    f->fma = fma_cpu && f->avx;
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = f->avx && (b & (1u << 5)) && f->fma;
        unsigned avx512_bits = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31); /* F DQ CD BW VL */
        f->avx512 = zmm_os && (b & avx512_bits) == avx512_bits;
        f->avx512_vnni = f->avx512 && (c & (1u << 11));
        f->amx = f->avx512 && tile_os && (d & (1u << 22)) && (d & (1u << 24)); /* AMX-BF16, AMX-TILE */
        unsigned sub_max = a;
        if (sub_max >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            f->avx512_bf16 = f->avx512 && (a & (1u << 5));
        }
    }
    unsigned ext_max = __get_cpuid_max(0x80000000u, NULL);
    if (ext_max >= 0x80000001u) {
        __cpuid(0x80000001u, a, b, c, d);
        f->sse4a = c & (1u << 6);
        f->fma4 = f->avx && (c & (1u << 16));
    }
    if (ext_max >= 0x80000004u) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++) __cpuid(0x80000002u + i, r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]);
        memcpy(f->brand, r, 48);
        f->brand[48] = '\0';
        char *s = f->brand;
        while (*s == ' ') s++;
        memmove(f->brand, s, strlen(s) + 1);
        for (size_t k = strlen(f->brand); k > 0 && f->brand[k - 1] == ' '; k--) f->brand[k - 1] = '\0';
    }
#endif
}

void qb_cpu_features_format(const qb_cpu_features *f, char *buf, size_t n) {
    struct { bool on; const char *name; } list[] = {
        {f->sse4_2 && !f->avx, "SSE4.2"}, {f->sse3 && !f->sse4_2, "SSE3"}, {f->avx && !f->avx2, "AVX"}, {f->avx2, "AVX2"},
        {f->fma, "FMA"}, {f->fma4, "FMA4"}, {f->avx512, "AVX-512"}, {f->avx512_vnni, "AVX512-VNNI"},
        {f->avx512_bf16, "AVX512-BF16"}, {f->amx, "AMX"},
    };
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof list / sizeof list[0] && k < n; i++)
        if (list[i].on) k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? " " : "", list[i].name);
    if (!buf[0]) snprintf(buf, n, "no SIMD extensions found");
}

static const core_entry *find_core(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_CORES; i++)
        if (!strcasecmp(cores[i].name, name)) return &cores[i];
    return NULL;
}

static unsigned cpu_has(const qb_cpu_features *f) {
    return (f->sse3 ? NEED_SSE3 : 0) | (f->ssse3 ? NEED_SSSE3 : 0) | (f->sse4_1 ? NEED_SSE4_1 : 0) | (f->sse4_2 ? NEED_SSE4_2 : 0) |
           (f->sse4a ? NEED_SSE4A : 0) | (f->fma4 ? NEED_FMA4 : 0) | (f->avx ? NEED_AVX : 0) | (f->avx2 ? NEED_AVX2 : 0) |
           (f->avx512 ? NEED_AVX512 : 0) | (f->avx512_bf16 ? NEED_BF16 : 0) | (f->amx ? NEED_AMX : 0);
}

qb_blas_family qb_blas_core_family(const char *name) {
    const core_entry *e = find_core(name);
    return e ? e->family : QB_BLAS_FAMILY_UNKNOWN;
}

bool qb_blas_core_runs_on(const char *name, const qb_cpu_features *cpu) {
    const core_entry *e = find_core(name);
    return e && (e->needs & ~cpu_has(cpu)) == 0;
}

/* Names the first feature of `needs` that the CPU lacks. */
static const char *missing_feature(unsigned needs, const qb_cpu_features *cpu) {
    unsigned lack = needs & ~cpu_has(cpu);
    for (int b = 0; b < (int)(sizeof need_names / sizeof need_names[0]); b++)
        if (lack & (1u << b)) return need_names[b];
    return "?";
}

/* The representative cores that the CPU runs and the build has (has_core NULL: any), weakest first, joined by sep. */
static void list_runnable(const qb_cpu_features *cpu, bool (*has_core)(const char *), const char *sep, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_CORES && k < n; i++)
        if (cores[i].representative && qb_blas_core_runs_on(cores[i].name, cpu) && (!has_core || has_core(cores[i].name)))
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? sep : "", cores[i].name);
}

static const char *best_core(const qb_blas_core_query *q) {
    if (!q->dynamic_arch || !q->has_core) return NULL;
    const char *best = NULL;
    for (int i = 0; i < N_CORES; i++)
        if (cores[i].representative && qb_blas_core_runs_on(cores[i].name, q->cpu) && q->has_core(cores[i].name)) best = cores[i].name;
    return best;
}

void qb_blas_core_decide(const qb_blas_core_query *q, qb_blas_core_decision *d) {
    memset(d, 0, sizeof *d);
    if (!q->active) {
        d->source = QB_BLAS_CORE_NO_BLAS;
        return;
    }
    if (!q->dynamic_arch) {
        d->source = QB_BLAS_CORE_FIXED;
        return;
    }
    d->best = best_core(q);
    qb_blas_family active = qb_blas_core_family(q->active), best = qb_blas_core_family(d->best);
    const char *user = q->user_coretype && *q->user_coretype ? q->user_coretype : NULL;
    if (user) {
        const core_entry *u = find_core(user);
        if (u && !qb_blas_core_runs_on(u->name, q->cpu)) {
            char runnable[160];
            list_runnable(q->cpu, q->has_core, ", ", runnable, sizeof runnable);
            d->fatal = true;
            d->source = QB_BLAS_CORE_USER;
            snprintf(d->note, sizeof d->note, "OPENBLAS_CORETYPE=%s needs %s, which this CPU lacks (it runs %s)", user,
                     missing_feature(u->needs, q->cpu), runnable);
            return;
        }
        if (u && (active >= u->family || !strcasecmp(q->active, user))) {
            d->source = QB_BLAS_CORE_USER;
            if (d->best && active < best)
                snprintf(d->note, sizeof d->note, "this CPU runs %s: unset OPENBLAS_CORETYPE for faster GEMMs", d->best);
            else if (strcasecmp(q->active, user) != 0)
                snprintf(d->note, sizeof d->note, "OPENBLAS_CORETYPE=%s gave %s", user, q->active);
            return;
        }
        if (u)
            snprintf(d->note, sizeof d->note, "OpenBLAS did not load OPENBLAS_CORETYPE=%s (it chose %s)", user, q->active);
        else
            snprintf(d->note, sizeof d->note, "OPENBLAS_CORETYPE=%s is not an OpenBLAS x86-64 core (OpenBLAS chose %s)", user, q->active);
    }
    d->source = QB_BLAS_CORE_AUTO;
    if (d->best && active != QB_BLAS_FAMILY_UNKNOWN && active < best) d->reexec = d->best;
}

static qb_blas_core_info g_info;
static bool g_ready;

static bool build_has_core(const char *name) {
    char sym[48] = "gotoblas_";
    size_t k = strlen(sym);
    for (const char *s = name; *s && k + 1 < sizeof sym; s++) sym[k++] = (char)toupper((unsigned char)*s);
    sym[k] = '\0';
    return dlsym(RTLD_DEFAULT, sym) != NULL;
}

/* Copies src (NULL as "") into dst[n], cut to fit. */
static void copy_str(char *dst, size_t n, const char *src) {
    size_t k = src ? strnlen(src, n - 1) : 0;
    if (k) memcpy(dst, src, k);
    dst[k] = '\0';
}

/* Fills g_info from a re-executed process's mark (and restores the environment); true when the mark was ours. */
static bool take_reexec_mark(void) {
    const char *mark = getenv(REEXEC_MARK);
    if (!mark) return false;
    char buf[256], *detected = buf, *target, *original;
    copy_str(buf, sizeof buf, mark);
    unsetenv(REEXEC_MARK);
    if (!(target = strchr(detected, ',')) || !(original = strchr(target + 1, ','))) return false;
    *target++ = '\0';
    *original++ = '\0';
    const char *now = getenv("OPENBLAS_CORETYPE");
    if (!now || strcmp(now, target) != 0) return false; /* changed since: the user's */
    if (*original) setenv("OPENBLAS_CORETYPE", original, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    g_info.source = QB_BLAS_CORE_UPGRADED;
    copy_str(g_info.detected, sizeof g_info.detected, detected);
    copy_str(g_info.best, sizeof g_info.best, target);
    if (strcasecmp(g_info.active, target) != 0)
        snprintf(g_info.note, sizeof g_info.note, "OpenBLAS did not load OPENBLAS_CORETYPE=%.31s", target);
    return true;
}

static void blas_core_check(char **argv) {
    if (g_ready) return;
    g_ready = true;
    qb_cpu_features_detect(&g_info.cpu);
    if (!openblas_get_corename) {
        g_info.source = QB_BLAS_CORE_NO_BLAS;
        return;
    }
    copy_str(g_info.active, sizeof g_info.active, openblas_get_corename());
    copy_str(g_info.library, sizeof g_info.library, openblas_get_config ? openblas_get_config() : "OpenBLAS");
    if (take_reexec_mark()) return;
    const char *user = getenv("OPENBLAS_CORETYPE");
    qb_blas_core_query q = {&g_info.cpu, g_info.active, user, strstr(g_info.library, "DYNAMIC_ARCH") != NULL, build_has_core};
    qb_blas_core_decision d;
    qb_blas_core_decide(&q, &d);
    g_info.source = d.source;
    copy_str(g_info.best, sizeof g_info.best, d.best);
    copy_str(g_info.note, sizeof g_info.note, d.note);
    const char *prog = argv && argv[0] ? argv[0] : "qdqbert", *slash = strrchr(prog, '/');
    if (slash) prog = slash + 1;
    if (d.fatal) {
        fprintf(stderr, "%s: %s\n", prog, d.note);
        exit(2);
    }
    if (d.reexec && argv) {
        char mark[256];
        snprintf(mark, sizeof mark, "%s,%s,%s", g_info.active, d.reexec, user ? user : "");
        setenv(REEXEC_MARK, mark, 1);
        setenv("OPENBLAS_CORETYPE", d.reexec, 1);
        execv("/proc/self/exe", argv);
        int e = errno; /* still here: keep OpenBLAS's core */
        unsetenv(REEXEC_MARK);
        if (user) setenv("OPENBLAS_CORETYPE", user, 1);
        else unsetenv("OPENBLAS_CORETYPE");
        snprintf(g_info.note, sizeof g_info.note, "re-executing with OPENBLAS_CORETYPE=%s failed: %s", d.reexec, strerror(e));
    }
}

/* glibc calls the executable's constructors with argc, argv and envp (after the libraries', so OpenBLAS has loaded). */
__attribute__((constructor)) static void blas_core_start(int argc, char **argv, char **envp) {
    (void)argc;
    (void)envp;
    blas_core_check(argv);
}

const qb_blas_core_info *qb_blas_core_get(void) {
    blas_core_check(NULL);
    return &g_info;
}

void qb_blas_core_describe(char *buf, size_t n) {
    const qb_blas_core_info *g = qb_blas_core_get();
    const char *sep = g->note[0] ? "; " : "";
    switch (g->source) {
    case QB_BLAS_CORE_NO_BLAS: snprintf(buf, n, "none (no BLAS linked)"); break;
    case QB_BLAS_CORE_FIXED: snprintf(buf, n, "%s (a build for one core)", g->active); break;
    case QB_BLAS_CORE_USER: snprintf(buf, n, "%s (set by OPENBLAS_CORETYPE%s%s)", g->active, sep, g->note); break;
    case QB_BLAS_CORE_UPGRADED:
        snprintf(buf, n, "%s (OpenBLAS chose %s; re-executed with the best for this CPU%s%s)", g->active, g->detected, sep, g->note);
        break;
    case QB_BLAS_CORE_AUTO:
        if (g->best[0] && qb_blas_core_family(g->active) >= qb_blas_core_family(g->best))
            snprintf(buf, n, "%s (chosen by OpenBLAS, the best family for this CPU%s%s)", g->active, sep, g->note);
        else snprintf(buf, n, "%s (chosen by OpenBLAS%s%s)", g->active, sep, g->note);
        break;
    }
}

void qb_blas_core_runnable(char *buf, size_t n) { list_runnable(&qb_blas_core_get()->cpu, build_has_core, " ", buf, n); }

void qb_blas_core_summary(char *buf, size_t n) {
    const qb_blas_core_info *g = qb_blas_core_get();
    char core[400], feats[160];
    qb_blas_core_describe(core, sizeof core);
    qb_cpu_features_format(&g->cpu, feats, sizeof feats);
    const char *lib = g->library[0] ? g->library : "BLAS";
    char name[32] = "", version[32] = "";  /* "OpenBLAS", "0.3.21": the configuration string's first words */
    sscanf(lib, "%31s %31s", name, version);
    if (g->source == QB_BLAS_CORE_NO_BLAS) snprintf(buf, n, "no BLAS; CPU %s [%s]", g->cpu.brand[0] ? g->cpu.brand : "unknown", feats);
    else snprintf(buf, n, "%s %s core %s; CPU %s [%s]", name, version, core, g->cpu.brand[0] ? g->cpu.brand : "unknown", feats);
}
