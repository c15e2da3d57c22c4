/* test_blas_core.c: the start-up check of the OpenBLAS core. The choice on made-up CPUs and builds (fallback to
 * Prescott upgraded, the user's OPENBLAS_CORETYPE kept or refused); on this machine: CPUID agrees with
 * /proc/cpuinfo, the core in use runs here and is the best family unless OPENBLAS_CORETYPE forces one, a
 * re-executed process restores the environment, and sgemm under the core in use matches a double reference. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/blas_core.h"
#include "check.h"

static const char *missing_core;  /* has_core answers false for this one */
static bool has_all_but(const char *name) { return !missing_core || strcasecmp(name, missing_core) != 0; }

static qb_cpu_features cpu_sse3(void) { return (qb_cpu_features){.vendor = "GenuineIntel", .sse3 = true, .ssse3 = true}; }
static qb_cpu_features cpu_haswell(void) {
    qb_cpu_features f = cpu_sse3();
    f.sse4_1 = f.sse4_2 = f.avx = f.fma = f.avx2 = true;
    return f;
}
static qb_cpu_features cpu_sapphire_rapids(void) {
    qb_cpu_features f = cpu_haswell();
    f.avx512 = f.avx512_vnni = f.avx512_bf16 = f.amx = true;
    return f;
}

static qb_blas_core_decision decide(const qb_cpu_features *cpu, const char *active, const char *user, bool dynamic) {
    qb_blas_core_query q = {cpu, active, user, dynamic, has_all_but};
    qb_blas_core_decision d;
    qb_blas_core_decide(&q, &d);
    return d;
}

#define STREQ(a, b) ((a) && (b) && !strcmp((a), (b)))

static void check_choices(qb_check *c) {
    qb_cpu_features spr = cpu_sapphire_rapids(), hsw = cpu_haswell(), old = cpu_sse3();
    qb_blas_core_decision d = decide(&spr, "Prescott", NULL, true);
    CHECK(c, d.source == QB_BLAS_CORE_AUTO && STREQ(d.reexec, "SkylakeX") && STREQ(d.best, "SkylakeX") && !d.fatal,
          "Prescott on an AVX-512 CPU: re-exec with SkylakeX (got %s)", d.reexec ? d.reexec : "none");
    d = decide(&spr, "SkylakeX", NULL, true);
    CHECK(c, !d.reexec && d.source == QB_BLAS_CORE_AUTO, "SkylakeX on an AVX-512 CPU is kept");
    d = decide(&spr, "Cooperlake", NULL, true);
    CHECK(c, !d.reexec, "Cooperlake (same sgemm kernels as SkylakeX) is kept");
    d = decide(&spr, "Nehalem", NULL, true);
    CHECK(c, STREQ(d.reexec, "SkylakeX"), "Nehalem on an AVX-512 CPU: re-exec");
    d = decide(&hsw, "Prescott", NULL, true);
    CHECK(c, STREQ(d.reexec, "Haswell"), "Prescott on an AVX2 CPU: re-exec with Haswell (got %s)", d.reexec ? d.reexec : "none");
    d = decide(&hsw, "Zen", NULL, true);
    CHECK(c, !d.reexec, "Zen (AVX2 family) is kept on an AVX2 CPU");
    d = decide(&old, "Prescott", NULL, true);
    CHECK(c, !d.reexec && STREQ(d.best, "Prescott"), "an SSE3-only CPU keeps Prescott");
    missing_core = "SkylakeX";
    d = decide(&spr, "Prescott", NULL, true);
    CHECK(c, STREQ(d.reexec, "Haswell"), "a build without SkylakeX: the best it has (got %s)", d.reexec ? d.reexec : "none");
    missing_core = NULL;
    d = decide(&spr, "Prescott", NULL, false);
    CHECK(c, d.source == QB_BLAS_CORE_FIXED && !d.reexec, "a build for one core is left alone");
    d = decide(&spr, "Wonderlake", NULL, true);
    CHECK(c, !d.reexec, "an unknown active core (a newer OpenBLAS) is kept");
    d = decide(&spr, NULL, NULL, true);
    CHECK(c, d.source == QB_BLAS_CORE_NO_BLAS && !d.reexec, "no OpenBLAS: nothing to do");

    d = decide(&spr, "Prescott", "Prescott", true);
    CHECK(c, d.source == QB_BLAS_CORE_USER && !d.reexec && strstr(d.note, "SkylakeX"),
          "the user's Prescott wins, with a note naming the better core: %s", d.note);
    d = decide(&spr, "Haswell", "haswell", true);
    CHECK(c, d.source == QB_BLAS_CORE_USER && !d.reexec, "the user's core matches case-insensitively");
    d = decide(&hsw, "Haswell", "SkylakeX", true);
    CHECK(c, d.fatal && strstr(d.note, "AVX-512") && strstr(d.note, "Haswell"),
          "the user's SkylakeX on an AVX2 CPU is refused, naming the missing extension: %s", d.note);
    d = decide(&spr, "SkylakeX", "Bulldozer", true);
    CHECK(c, d.fatal && strstr(d.note, "FMA4"), "an AMD FMA4 core on Intel is refused: %s", d.note);
    d = decide(&spr, "Prescott", "Cooperlake", true);
    CHECK(c, !d.fatal && STREQ(d.reexec, "SkylakeX") && strstr(d.note, "did not load"),
          "a user's core that OpenBLAS did not load (0.3.21 cannot force Cooperlake): upgraded, noted: %s", d.note);
    d = decide(&spr, "Prescott", "Sapphire", true);
    CHECK(c, STREQ(d.reexec, "SkylakeX") && strstr(d.note, "not an OpenBLAS"), "an unknown name in OPENBLAS_CORETYPE: %s", d.note);
}

/* The flag list of /proc/cpuinfo's first "flags" line, padded with spaces; "" when unreadable. */
static void cpuinfo_flags(char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            char *colon = strchr(line, ':');
            line[strcspn(line, "\n")] = '\0';
            if (colon) snprintf(buf, n, " %s ", colon + 1);
            break;
        }
    fclose(f);
}

static bool flag(const char *flags, const char *name) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s ", name);
    return strstr(flags, pat) != NULL;
}

static void check_this_machine(qb_check *c) {
    const qb_blas_core_info *g = qb_blas_core_get();
    char flags[8192];
    cpuinfo_flags(flags, sizeof flags);
    if (flags[0]) {  /* the kernel reports what the CPU has and the OS enabled */
        CHECK(c, g->cpu.avx2 == flag(flags, "avx2"), "CPUID AVX2 %d agrees with /proc/cpuinfo", g->cpu.avx2);
        CHECK(c, g->cpu.avx512 == (flag(flags, "avx512f") && flag(flags, "avx512bw") && flag(flags, "avx512vl")),
              "CPUID AVX-512 %d agrees with /proc/cpuinfo", g->cpu.avx512);
        CHECK(c, g->cpu.avx512_bf16 == flag(flags, "avx512_bf16"), "CPUID AVX512-BF16 %d agrees", g->cpu.avx512_bf16);
        CHECK(c, g->cpu.amx == (flag(flags, "amx_tile") && flag(flags, "amx_bf16")), "CPUID AMX %d agrees", g->cpu.amx);
    } else qb_check_skip(c, "CPUID against /proc/cpuinfo", "no /proc/cpuinfo");
    CHECK(c, !strcmp(g->active, openblas_get_corename()), "the recorded core %s is OpenBLAS's", g->active);
    CHECK(c, qb_blas_core_runs_on(g->active, &g->cpu), "the core in use (%s) runs on this CPU", g->active);
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user && g->source == QB_BLAS_CORE_USER)
        CHECK(c, !strcasecmp(user, g->active) || qb_blas_core_family(g->active) >= qb_blas_core_family(user),
              "OPENBLAS_CORETYPE=%s is in use (%s)", user, g->active);
    else if (g->source != QB_BLAS_CORE_FIXED && g->best[0])
        CHECK(c, qb_blas_core_family(g->active) >= qb_blas_core_family(g->best), "the core in use (%s) is of the best family (%s)",
              g->active, g->best);
    char line[1024];
    qb_blas_core_summary(line, sizeof line);
    printf("%s\n", line);
}

/* A re-executed process (mark set, OPENBLAS_CORETYPE = the target) records the upgrade and restores the environment. */
static int child_after_reexec(void) {
    const qb_blas_core_info *g = qb_blas_core_get();
    int bad = 0;
    if (g->source != QB_BLAS_CORE_UPGRADED || strcmp(g->detected, "Prescott") != 0) bad |= 1;
    if (getenv("QB_BLAS_CORE_REEXEC")) bad |= 2;
    const char *now = getenv("OPENBLAS_CORETYPE");
    if (!now || strcmp(now, "bogus") != 0) bad |= 4; /* the user's original value is back */
    return bad;
}

static void check_reexec_mark(qb_check *c, const char *self) {
    const qb_blas_core_info *g = qb_blas_core_get();
    char mark[128];
    snprintf(mark, sizeof mark, "Prescott,%s,bogus", g->active);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("QB_BLAS_CORE_REEXEC", mark, 1);
        setenv("OPENBLAS_CORETYPE", g->active, 1);
        execl(self, self, "--child-after-reexec", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "re-executed process: upgrade recorded, mark removed, user's OPENBLAS_CORETYPE restored (status %d)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* sgemm under the core in use against a double reference: odd sizes, all four transpose layouts, alpha and beta. */
static void check_sgemm(qb_check *c) {
    const int sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {128, 96, 64}, {257, 129, 31}, {64, 768, 384}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int layout = 0; layout < 4; layout++) {
            int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
            bool ta = layout & 1, tb = layout & 2;
            float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)k * n * 4), *cc = malloc((size_t)m * n * 4), *want = malloc((size_t)m * n * 4);
            for (int i = 0; i < m * k; i++) a[i] = (float)((i * 37 % 101) - 50) / 64.0f;
            for (int i = 0; i < k * n; i++) b[i] = (float)((i * 53 % 97) - 48) / 32.0f;
            for (int i = 0; i < m * n; i++) cc[i] = (float)(i % 13) - 6.0f;
            const float alpha = 0.75f, beta = 0.5f;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) acc += (double)(ta ? a[p * m + i] : a[i * k + p]) * (double)(tb ? b[j * k + p] : b[p * n + j]);
                    want[i * n + j] = (float)(alpha * acc + beta * cc[i * n + j]);
                }
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, ta ? m : k, b,
                        tb ? k : n, beta, cc, n);
            char what[96];
            snprintf(what, sizeof what, "sgemm %dx%dx%d %c%c", m, n, k, ta ? 'T' : 'N', tb ? 'T' : 'N');
            qb_check_close(c, what, cc, want, (int64_t)m * n, 1e-4, 1e-5 * k);
            free(a);
            free(b);
            free(cc);
            free(want);
        }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child-after-reexec")) return child_after_reexec();
    qb_check chk = {0};
    check_choices(&chk);
    check_this_machine(&chk);
    check_reexec_mark(&chk, "/proc/self/exe");
    check_sgemm(&chk);
    return qb_check_finish(&chk, "blas_core");
}
