/* test_cuda_quant.c: the quant layer's CUDA kernels against its CPU kernels and modelopt's fixtures. Fake quant and
 * its clipped STE bit for bit (fixture cases, ties, clamp bounds, signed zeros, denormals, NaN and Inf, 2 to 16 bits,
 * narrow, unsigned, amax 0, per channel along every axis, odd sizes, keep 0 and 1); the learnable form (forward and dx
 * bit for bit, the amax gradient exact for sums float64 holds exactly, else within an ulp); max|x|, the negative check
 * and |x| statistics exactly; histogram counts of all three bin modes equal; max and histogram calibration (both
 * semantics, growth over batches) driven by tensor_quantizer on a CUDA context equal to the CPU's counts, edges and
 * amax; dynamic amax; a chain of quantizers forward and backward. Runs on a GPU or under the CUDA emulator; exits 77
 * where neither is there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "autograd/cuda/backend.h"
#include "check.h"
#include "fixture.h"
#include "quant/quant.h"

static qb_check chk;
static qb_ctx *cpu, *gpu;
static const qb_quant_kernels *const CK = &qb_quant_cpu_kernels, *const GK = &qb_quant_cuda_kernels;

static int64_t bits_differ(const void *a, const void *b, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp((const float *)a + i, (const float *)b + i, sizeof(float)) != 0;
    return bad;
}

static int64_t first_differ(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float))) return i;
    return -1;
}

static void check_bits(const char *what, const float *got, const float *want, int64_t n) {
    int64_t bad = bits_differ(got, want, n), i = first_differ(got, want, n);
    uint32_t gb = 0, wb = 0;
    if (i >= 0) {
        memcpy(&gb, got + i, 4);
        memcpy(&wb, want + i, 4);
    }
    CHECK(&chk, bad == 0, "%s: %lld of %lld elements differ in their bits (first at %lld: %08x vs %08x)", what, (long long)bad,
          (long long)n, (long long)i, gb, wb);
}

static float from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void die_on(int rc, const char *what) {
    if (!rc) return;
    fprintf(stderr, "test_cuda_quant: %s: %s / %s\n", what, gpu->err.msg, cpu->err.msg);
    exit(1);
}

/* A device copy of host data in the CUDA context's step memory. */
static void *dev_copy(const void *host, size_t bytes) {
    void *p = qb_act_alloc(gpu, bytes ? bytes : 4);
    die_on(!p || qb_upload(gpu, p, host, bytes), "device copy");
    return p;
}

static void *host_copy(const void *dev, size_t bytes) {
    void *h = malloc(bytes ? bytes : 4);
    die_on(!h || qb_download(gpu, h, dev, bytes), "download");
    return h;
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

static float uniform(uint64_t *s, float lo, float hi) { return lo + (hi - lo) * (float)((double)lcg(s) / 9007199254740992.0); }

/* ---- fake quant: one x on both devices, forward and both STE modes, bit for bit */
static void compare_fake_quant(const char *label, const float *x, int64_t outer, int64_t channels, int64_t inner, const float *amax,
                               float qmin, float qmax, const float *dy, const float *dx0) {
    const int64_t n = outer * channels * inner;
    const size_t bytes = (size_t)n * sizeof(float);
    char what[192];
    float *yc = malloc(bytes), *gc = malloc(bytes);
    float *dx = dev_copy(x, bytes), *dam = dev_copy(amax, (size_t)channels * sizeof(float)), *dyd = dev_copy(dy, bytes);
    float *yd = qb_act_alloc(gpu, bytes);
    die_on(!yd || CK->fake_quant(NULL, yc, x, outer, channels, inner, amax, qmin, qmax) ||
               GK->fake_quant(gpu->dev, yd, dx, outer, channels, inner, dam, qmin, qmax),
           label);
    float *yg = host_copy(yd, bytes);
    snprintf(what, sizeof what, "%s: fake_quant cuda vs cpu", label);
    check_bits(what, yg, yc, n);
    free(yg);
    /* in place (y = x) */
    die_on(GK->fake_quant(gpu->dev, dx, dx, outer, channels, inner, dam, qmin, qmax), label);
    yg = host_copy(dx, bytes);
    snprintf(what, sizeof what, "%s: fake_quant in place cuda vs cpu", label);
    check_bits(what, yg, yc, n);
    free(yg);
    die_on(qb_upload(gpu, dx, x, bytes), label);
    for (int keep = 0; keep <= 1; keep++) {
        memcpy(gc, dx0, bytes);
        float *gd = dev_copy(dx0, bytes);
        die_on(CK->fake_quant_grad(NULL, gc, (float)keep, dy, x, outer, channels, inner, amax) ||
                   GK->fake_quant_grad(gpu->dev, gd, (float)keep, dyd, dx, outer, channels, inner, dam),
               label);
        float *gg = host_copy(gd, bytes);
        snprintf(what, sizeof what, "%s: STE gradient keep %d cuda vs cpu", label, keep);
        check_bits(what, gg, gc, n);
        if (keep == 0) {
            int64_t nonzero = 0;
            for (int64_t i = 0; i < n; i++) {
                const float a = amax[channels == 1 ? 0 : (i / inner) % channels];
                uint32_t b;
                memcpy(&b, gg + i, 4);
                nonzero += !(fabsf(x[i]) <= a) && b != 0;
            }
            CHECK(&chk, nonzero == 0, "%s: clipped elements give +0 whatever dy is (%lld do not)", label, (long long)nonzero);
        }
        free(gg);
    }
    free(yc);
    free(gc);
    qb_ctx_step_reset(gpu);
}

/* The fixture cases through the op on a CUDA context: output and STE gradient equal modelopt's bit for bit. */
static void fixture_cases(void) {
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/quant/fixtures/fake_quant.json", &err);
    if (!CHECK(&chk, root != NULL, "fixture: %s", err.msg)) return;
    json_t *cases = json_object_get(root, "cases");
    CHECK(&chk, json_array_size(cases) >= 20, "fixture has the golden cases");
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k);
        const char *name = json_string_value(json_object_get(cs, "name"));
        int nd, nda, ndg;
        int64_t shape[4], ashape[4], gshape[4], n, na, ng;
        float *x = qb_fixture_tensor(json_object_get(cs, "x"), &nd, shape, &n);
        float *amax = qb_fixture_tensor(json_object_get(cs, "amax"), &nda, ashape, &na);
        float *gy = qb_fixture_tensor(json_object_get(cs, "grad_y"), &ndg, gshape, &ng);
        float *want_y = qb_fixture_tensor(json_object_get(cs, "y"), &ndg, gshape, &ng);
        float *want_dx = qb_fixture_tensor(json_object_get(cs, "grad_x"), &ndg, gshape, &ng);
        if (CHECK(&chk, x && amax && gy && want_y && want_dx, "%s: malformed fixture", name)) {
            quant_desc d = quant_desc_default();
            d.num_bits = (int)json_integer_value(json_object_get(cs, "num_bits"));
            d.axis = (int)json_integer_value(json_object_get(cs, "axis"));
            d.is_unsigned = json_is_true(json_object_get(cs, "unsigned"));
            d.narrow_range = json_is_true(json_object_get(cs, "narrow_range"));
            qb_tensor *xp = qb_param_new(gpu, name, nd, shape);
            qb_tensor *y = xp && qb_copy_from_host(gpu, xp, x) == 0 ? qb_fake_quant(gpu, xp, amax, na, &d) : NULL;
            if (CHECK(&chk, y != NULL && y->device == QB_CUDA, "%s: op on cuda: %s", name, gpu->err.msg)) {
                float *got = malloc((size_t)n * sizeof(float));
                char what[160];
                die_on(qb_to_host(gpu, y, got), name);
                snprintf(what, sizeof what, "%s: cuda op output vs modelopt", name);
                check_bits(what, got, want_y, n);
                if (CHECK(&chk, qb_backward_with_grad(gpu, y, gy) == 0, "%s: backward on cuda: %s", name, gpu->err.msg)) {
                    die_on(qb_to_host(gpu, xp->grad, got), name);
                    snprintf(what, sizeof what, "%s: cuda STE gradient vs modelopt/torch autograd", name);
                    check_bits(what, got, want_dx, n);
                }
                free(got);
            }
            qb_ctx_step_reset(gpu);
            /* the kernels on the fixture's x against the CPU's, with a non-zero gradient to add to */
            int64_t outer = 1, channels = 1, inner = n;
            if (d.axis >= 0) qb_channel_view(nd, shape, d.axis, &outer, &channels, &inner);
            float *dx0 = malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++) dx0[i] = (float)(i % 7) - 3.0f;
            compare_fake_quant(name, x, outer, channels, inner, amax, quant_desc_qmin(&d), quant_desc_bound(&d), gy, dx0);
            free(dx0);
        }
        free(x);
        free(amax);
        free(gy);
        free(want_y);
        free(want_dx);
    }
    json_decref(root);
}

/* A fake-quant kind: bits, unsigned, narrow range. */
typedef struct fq_kind {
    int bits;
    bool is_unsigned, narrow;
} fq_kind;

/* The default descriptor of kind k, its levels and its label ("8 bits unsigned"). */
static quant_desc desc_of(fq_kind k, float *qmin, float *qmax, char *label, size_t label_size) {
    quant_desc d = quant_desc_default();
    d.num_bits = k.bits;
    d.is_unsigned = k.is_unsigned;
    d.narrow_range = k.narrow;
    *qmin = quant_desc_qmin(&d);
    *qmax = quant_desc_bound(&d);
    snprintf(label, label_size, "%d bits%s%s", k.bits, k.is_unsigned ? " unsigned" : "", k.narrow ? " narrow" : "");
    return d;
}

/* Inputs at every rounding tie and clamp bound of scale s, signed zeros, denormals, NaN (quiet, signalling, negative),
 * infinities and random values; dy with NaN and Inf at both clipped and passed elements. */
static int64_t edge_inputs(float *x, float *dy, float *dx0, int64_t cap, float amax, float qmin, float qmax, uint64_t seed) {
    int64_t n = 0;
    const float s = amax > FAKE_QUANT_TINY_AMAX ? qmax / amax : 1.0f;
    const float mid_step = fmaxf(1.0f, floorf((qmax - qmin) / 64.0f));
    for (float k = qmin - 3.0f; k <= qmax + 3.0f && n + 6 < cap; k += k < qmin + 40.0f || k > qmax - 40.0f ? 1.0f : mid_step) {
        x[n++] = (k + 0.5f) / s;  /* ties */
        x[n++] = (k - 0.5f) / s;
        x[n++] = k / s;
        x[n++] = nextafterf((k + 0.5f) / s, INFINITY);
        x[n++] = nextafterf((k + 0.5f) / s, -INFINITY);
        x[n++] = -(k + 0.5f) / s;
    }
    const float special[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-39f, -3e-39f, amax, -amax, nextafterf(amax, INFINITY),
                             -nextafterf(amax, INFINITY), nextafterf(amax, 0.0f), 3.4e38f, -3.4e38f, INFINITY, -INFINITY,
                             from_bits(0x7fc00000u), from_bits(0xffc00000u), from_bits(0x7fa00001u), from_bits(0xff812345u),
                             from_bits(0x7fc0beefu), 0.25f / s, -0.25f / s, 0.5f / s, -0.5f / s, 1.5f / s, -1.5f / s};
    for (size_t k = 0; k < sizeof special / sizeof special[0] && n < cap; k++) x[n++] = special[k];
    uint64_t st = seed;
    while (n < cap) x[n++] = uniform(&st, -1.3f, 1.3f) * (amax > 0.0f ? amax : 1.0f);
    const float bad_dy[] = {NAN, -NAN, INFINITY, -INFINITY, from_bits(0x7fa00001u)};
    for (int64_t i = 0; i < n; i++) {
        dy[i] = i % 11 == 3 ? bad_dy[(i / 11) % 5] : uniform(&st, -2.0f, 2.0f);
        dx0[i] = i % 13 == 5 ? bad_dy[(i / 13) % 5] : i % 17 == 2 ? -0.0f : uniform(&st, -1.0f, 1.0f);
        if (i % 19 == 7 && isfinite(dx0[i])) dy[i] = -dx0[i];  /* sums to a signed zero */
    }
    return n;
}

static void edge_cases(void) {
    static const float amaxes[] = {1.0f, 127.0f, 0.37f, 1.0f / 16777216.0f, 1.0000001f / 16777216.0f, 0.0f, 3.0e38f, 1e-30f};
    static const fq_kind kinds[] = {{8, false, false}, {8, false, true}, {8, true, false}, {4, false, false},
                                    {16, false, false}, {2, false, false}, {16, true, false}};
    const int64_t cap = 1200;
    float *x = malloc(cap * sizeof(float)), *dy = malloc(cap * sizeof(float)), *dx0 = malloc(cap * sizeof(float));
    char label[160], kind[64];
    for (size_t di = 0; di < sizeof kinds / sizeof kinds[0]; di++) {
        float qmin, qmax;
        desc_of(kinds[di], &qmin, &qmax, kind, sizeof kind);
        for (size_t ai = 0; ai < sizeof amaxes / sizeof amaxes[0]; ai++) {
            int64_t n = edge_inputs(x, dy, dx0, cap, amaxes[ai], qmin, qmax, 100 + ai);
            snprintf(label, sizeof label, "edges %s amax %g", kind, (double)amaxes[ai]);
            compare_fake_quant(label, x, 1, 1, n, &amaxes[ai], qmin, qmax, dy, dx0);
        }
        /* per channel: [outer 5, channels 8, inner 30], one amax of the list per channel */
        int64_t n = edge_inputs(x, dy, dx0, 1200, 1.0f, qmin, qmax, 7 + di);
        snprintf(label, sizeof label, "edges per channel %s", kind);
        compare_fake_quant(label, x, 5, 8, n / 40, amaxes, qmin, qmax, dy, dx0);
        snprintf(label, sizeof label, "edges per channel (inner 1) %s", kind);
        compare_fake_quant(label, x, n / 8, 8, 1, amaxes, qmin, qmax, dy, dx0);
    }
    free(x);
    free(dy);
    free(dx0);
    /* large: the CPU's threaded path and the grid-stride loops (more elements than the launch's threads) */
    const int64_t big = 1100000;
    x = malloc(big * sizeof(float));
    dy = malloc(big * sizeof(float));
    dx0 = malloc(big * sizeof(float));
    qb_rng_normal(x, big, 0.0f, 1.0f, 5, 0);
    qb_rng_normal(dy, big, 0.0f, 1.0f, 6, 0);
    qb_rng_normal(dx0, big, 0.0f, 1.0f, 7, 0);
    const float am[4] = {2.5f, 0.5f, 4.0f, 1e-3f};
    compare_fake_quant("large per tensor", x, 1, 1, big, am, -128.0f, 127.0f, dy, dx0);
    compare_fake_quant("large per channel", x, 275, 4, 1000, am, -128.0f, 127.0f, dy, dx0);
    free(x);
    free(dy);
    free(dx0);
}

/* Odd sizes around warp, block and grid-stride boundaries, per tensor and along each axis of 3-d shapes, 4/8/16 bits,
 * signed, narrow and unsigned (|x|), one channel's amax 0. */
static void shape_cases(void) {
    static const int64_t sizes[] = {1, 2, 31, 33, 255, 257, 1023, 1025, 4097, 65537};
    static const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 5}, {3, 33, 7}, {17, 2, 31}, {1, 257, 3}, {5, 4, 1}, {64, 3, 129}};
    static const fq_kind kinds[] = {{4, false, false}, {8, false, true}, {8, true, false}, {16, false, false}};
    const int64_t cap = 65537;
    float *x = malloc(cap * sizeof(float)), *dy = malloc(cap * sizeof(float)), *dx0 = malloc(cap * sizeof(float));
    float amax[257];
    uint64_t st = 77;
    char label[160], kind[64];
    for (size_t di = 0; di < sizeof kinds / sizeof kinds[0]; di++) {
        float qmin, qmax;
        const quant_desc d = desc_of(kinds[di], &qmin, &qmax, kind, sizeof kind);
        for (int64_t i = 0; i < cap; i++) {
            x[i] = uniform(&st, -1.2f, 1.2f);
            if (d.is_unsigned) x[i] = fabsf(x[i]);
            if (i % 5 == 0) x[i] = roundf(x[i] * qmax) / qmax + 0.5f / qmax;  /* ties of amax 1 */
            dy[i] = uniform(&st, -1.0f, 1.0f);
            dx0[i] = uniform(&st, -1.0f, 1.0f);
        }
        for (int k = 0; k < 257; k++) amax[k] = k == 1 ? 0.0f : k % 4 == 0 ? 1.0f : uniform(&st, 0.05f, 1.5f);
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            snprintf(label, sizeof label, "per tensor n %lld, %s", (long long)sizes[si], kind);
            compare_fake_quant(label, x, 1, 1, sizes[si], amax, qmin, qmax, dy, dx0);
        }
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (int axis = 0; axis < 3; axis++) {
                int64_t outer, channels, inner;
                qb_channel_view(3, shapes[sh], axis, &outer, &channels, &inner);
                snprintf(label, sizeof label, "[%lld, %lld, %lld] axis %d, %s", (long long)shapes[sh][0], (long long)shapes[sh][1],
                         (long long)shapes[sh][2], axis, kind);
                compare_fake_quant(label, x, outer, channels, inner, amax, qmin, qmax, dy, dx0);
            }
    }
    free(x);
    free(dy);
    free(dx0);
}

/* ---- the weight block (fake_quant_block): segments of every kind and shape with gaps between them in both blocks,
 * a large one beside small ones (one launch, one grid row each), against the CPU's fake_quant of each segment; the gaps
 * of the destination are left alone. */
static void weight_block(void) {
    static const fq_kind kinds[] = {{8, false, false}, {8, false, true}, {4, false, false}, {16, false, false}, {2, false, false}};
    static const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 33}, {1, 64, 129}, {3, 5, 7}, {1, 1, 4097}, {1, 1024, 1100}, {1, 768, 3}};
    enum { N_SEG = 2 * 7 * 5 };
    qb_fq_segment seg[N_SEG];
    int64_t src_n = 0, dst_n = 0, amax_n = 0, clip_n = 0, max_numel = 0;
    uint64_t st = 91;
    for (int k = 0; k < N_SEG; k++) {
        const int64_t *sh = shapes[k % 7];
        const bool per_tensor = k / 7 % 2 == 1;
        char label[64];
        float qmin, qmax;
        desc_of(kinds[k / 14], &qmin, &qmax, label, sizeof label);
        const int64_t channels = per_tensor ? 1 : sh[1], numel = sh[0] * sh[1] * sh[2];
        seg[k] = (qb_fq_segment){.src_off = src_n + k % 3, .dst_off = dst_n + 2 * (k % 5), .amax_off = amax_n, .clip_off = clip_n,
                                 .outer = per_tensor ? 1 : sh[0], .channels = channels, .inner = per_tensor ? numel : sh[2], .qmin = qmin, .qmax = qmax};
        src_n = seg[k].src_off + numel;
        dst_n = seg[k].dst_off + numel;
        amax_n += channels;
        clip_n += seg[k].outer * channels;
        max_numel = numel > max_numel ? numel : max_numel;
    }
    float *src = malloc((size_t)src_n * sizeof(float)), *amax = malloc((size_t)amax_n * sizeof(float));
    float *want = malloc((size_t)dst_n * sizeof(float));
    for (int64_t i = 0; i < src_n; i++) src[i] = i % 97 == 0 ? from_bits(0x7fc0beefu) : i % 89 == 1 ? -0.0f : uniform(&st, -1.3f, 1.3f);
    for (int64_t i = 0; i < amax_n; i++) amax[i] = i % 61 == 0 ? 0.0f : i % 67 == 0 ? 1e-30f : uniform(&st, 0.05f, 1.5f);
    for (int64_t i = 0; i < dst_n; i++) want[i] = from_bits(0x7f800001u + (uint32_t)(i % 5)); /* the gaps keep these */
    float *dsrc = dev_copy(src, (size_t)src_n * sizeof(float)), *damax = dev_copy(amax, (size_t)amax_n * sizeof(float));
    float *ddst = dev_copy(want, (size_t)dst_n * sizeof(float));
    qb_fq_segment *dseg = dev_copy(seg, sizeof seg);
    for (int k = 0; k < N_SEG; k++)
        die_on(CK->fake_quant(NULL, want + seg[k].dst_off, src + seg[k].src_off, seg[k].outer, seg[k].channels, seg[k].inner,
                              amax + seg[k].amax_off, seg[k].qmin, seg[k].qmax),
               "block reference");
    uint8_t *want_clip = malloc((size_t)clip_n), *cpu_clip = malloc((size_t)clip_n);
    int64_t n_clip = 0;
    for (int k = 0; k < N_SEG; k++) /* per row of each segment: some |x| <= amax fails */
        for (int64_t r = 0; r < seg[k].outer * seg[k].channels; r++) {
            const float a = amax[seg[k].amax_off + r % seg[k].channels];
            want_clip[seg[k].clip_off + r] = 0;
            for (int64_t i = 0; i < seg[k].inner; i++) want_clip[seg[k].clip_off + r] |= !(fabsf(src[seg[k].src_off + r * seg[k].inner + i]) <= a);
            n_clip += want_clip[seg[k].clip_off + r];
        }
    for (int64_t r = 0; r < clip_n; r++) cpu_clip[r] = (uint8_t)(1 + !want_clip[r]); /* not what the kernels write */
    uint8_t *dclip = dev_copy(cpu_clip, (size_t)clip_n);
    die_on(GK->fake_quant_block(gpu->dev, ddst, dsrc, damax, dseg, N_SEG, max_numel, dclip, clip_n), "fake_quant_block");
    float *got = host_copy(ddst, (size_t)dst_n * sizeof(float));
    uint8_t *got_clip = host_copy(dclip, (size_t)clip_n);
    check_bits("fake_quant_block cuda vs the cpu's fake_quant per segment", got, want, dst_n);
    CHECK(&chk, memcmp(got_clip, want_clip, (size_t)clip_n) == 0 && n_clip > 0 && n_clip < clip_n,
          "fake_quant_block cuda: the rows' clipped flags (%lld of %lld rows clipped)", (long long)n_clip, (long long)clip_n);
    float *cpu_block = malloc((size_t)dst_n * sizeof(float));
    for (int64_t i = 0; i < dst_n; i++) cpu_block[i] = from_bits(0x7f800001u + (uint32_t)(i % 5));
    die_on(CK->fake_quant_block(NULL, cpu_block, src, amax, seg, N_SEG, max_numel, cpu_clip, clip_n), "cpu fake_quant_block");
    check_bits("fake_quant_block cpu vs the cpu's fake_quant per segment", cpu_block, want, dst_n);
    CHECK(&chk, memcmp(cpu_clip, want_clip, (size_t)clip_n) == 0, "fake_quant_block cpu: the rows' clipped flags");
    /* the in-place mask of the flagged rows: as fake_quant_grad (keep 0) there, the other rows untouched */
    int64_t bad_cpu = 0, bad_gpu = 0;
    for (int k = 0; k < N_SEG; k++) {
        const int64_t numel = seg[k].outer * seg[k].channels * seg[k].inner;
        const float *x = src + seg[k].src_off, *a = amax + seg[k].amax_off;
        float *g = malloc((size_t)numel * sizeof(float)), *ref = malloc((size_t)numel * sizeof(float));
        for (int64_t i = 0; i < numel; i++) g[i] = i % 53 == 7 ? from_bits(0x7fc00123u) : uniform(&st, -2.0f, 2.0f);
        memcpy(ref, g, (size_t)numel * sizeof(float));
        for (int64_t r = 0; r < seg[k].outer * seg[k].channels; r++)
            if (want_clip[seg[k].clip_off + r])
                die_on(CK->fake_quant_grad(NULL, ref + r * seg[k].inner, 0.0f, ref + r * seg[k].inner, x + r * seg[k].inner, 1, 1, seg[k].inner,
                                           a + r % seg[k].channels),
                       "mask reference");
        float *dg = dev_copy(g, (size_t)numel * sizeof(float));
        die_on(GK->fake_quant_mask_rows(gpu->dev, dg, dsrc + seg[k].src_off, seg[k].outer, seg[k].channels, seg[k].inner, damax + seg[k].amax_off,
                                        dclip + seg[k].clip_off),
               "fake_quant_mask_rows");
        die_on(CK->fake_quant_mask_rows(NULL, g, x, seg[k].outer, seg[k].channels, seg[k].inner, a, want_clip + seg[k].clip_off),
               "cpu fake_quant_mask_rows");
        float *gg = host_copy(dg, (size_t)numel * sizeof(float));
        bad_cpu += bits_differ(g, ref, numel);
        bad_gpu += bits_differ(gg, ref, numel);
        free(gg);
        free(g);
        free(ref);
    }
    CHECK(&chk, bad_cpu == 0 && bad_gpu == 0, "fake_quant_mask_rows vs fake_quant_grad on the flagged rows: %lld (cpu), %lld (cuda) elements differ",
          (long long)bad_cpu, (long long)bad_gpu);
    free(cpu_block);
    free(got_clip);
    free(want_clip);
    free(cpu_clip);
    free(got);
    free(src);
    free(amax);
    free(want);
    qb_ctx_step_reset(gpu);
}

/* ---- learnable (PACT) amax */
static void learnable_one(const char *label, const float *x, const float *dy, const float *dx0, int64_t n, float a, bool exact_da) {
    const size_t bytes = (size_t)n * sizeof(float);
    char what[160];
    float *yc = malloc(bytes), *gc = malloc(bytes), dac = 0.25f;
    float *xd = dev_copy(x, bytes), *dyd = dev_copy(dy, bytes), *ad = dev_copy(&a, sizeof a), *gd = dev_copy(dx0, bytes);
    float *dad = dev_copy(&dac, sizeof dac), *yd = qb_act_alloc(gpu, bytes);
    memcpy(gc, dx0, bytes);
    die_on(!yd || CK->fake_quant_learnable(NULL, yc, x, n, &a, -128.0f, 127.0f) ||
               GK->fake_quant_learnable(gpu->dev, yd, xd, n, ad, -128.0f, 127.0f) ||
               CK->fake_quant_learnable_grad(NULL, gc, &dac, dy, x, n, &a) || GK->fake_quant_learnable_grad(gpu->dev, gd, dad, dyd, xd, n, ad),
           label);
    float *yg = host_copy(yd, bytes), *gg = host_copy(gd, bytes), dag;
    die_on(qb_download(gpu, &dag, dad, sizeof dag), label);
    snprintf(what, sizeof what, "%s: learnable forward cuda vs cpu", label);
    check_bits(what, yg, yc, n);
    snprintf(what, sizeof what, "%s: learnable dx cuda vs cpu", label);
    check_bits(what, gg, gc, n);
    double sum_abs = 0.0;
    for (int64_t i = 0; i < n; i++) sum_abs += fabs((double)dy[i]);
    /* float64 sums in other orders: the same float after rounding unless the exact sum lies within ~n 2^-53 sum|dy|
     * of a float rounding boundary, so one ulp of the result plus that */
    const double tol = exact_da ? 0.0 : fabs((double)dac) * 1.2e-7 + 1e-12 * sum_abs;
    CHECK(&chk, fabs((double)dag - (double)dac) <= tol, "%s: learnable amax gradient cuda %.9g cpu %.9g (tolerance %.3g)", label,
          (double)dag, (double)dac, tol);
    /* dx only, and the amax gradient only */
    die_on(qb_upload(gpu, gd, dx0, bytes) || GK->fake_quant_learnable_grad(gpu->dev, gd, NULL, dyd, xd, n, ad), label);
    free(gg);
    gg = host_copy(gd, bytes);
    snprintf(what, sizeof what, "%s: learnable dx without the amax gradient", label);
    check_bits(what, gg, gc, n);
    float da2 = 0.25f;
    die_on(qb_upload(gpu, dad, &da2, sizeof da2) || GK->fake_quant_learnable_grad(gpu->dev, NULL, dad, dyd, xd, n, ad) ||
               qb_download(gpu, &da2, dad, sizeof da2),
           label);
    CHECK(&chk, da2 == dag, "%s: the amax gradient without dx is the same (%.9g vs %.9g)", label, (double)da2, (double)dag);
    free(yc);
    free(gc);
    free(yg);
    free(gg);
    qb_ctx_step_reset(gpu);
}

/* ---- LSQ (learned scale): forward and dx bit for bit, the scale gradient within the float64-order tolerance */
static void lsq_one(const char *label, const float *x, const float *dy, const float *dx0, int64_t n, float s, float gf) {
    const size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
    char what[160];
    float *yc = malloc(bytes), *gc = malloc(bytes), dsc = 0.25f;
    float *xd = dev_copy(x, bytes), *dyd = dev_copy(dy, bytes), *sd = dev_copy(&s, sizeof s), *gd = dev_copy(dx0, bytes);
    float *dsd = dev_copy(&dsc, sizeof dsc), *yd = qb_act_alloc(gpu, bytes);
    memcpy(gc, dx0, bytes);
    die_on(!yd || CK->fake_quant_lsq(NULL, yc, x, n, &s, -128.0f, 127.0f) || GK->fake_quant_lsq(gpu->dev, yd, xd, n, sd, -128.0f, 127.0f) ||
               CK->fake_quant_lsq_grad(NULL, gc, &dsc, dy, x, n, &s, -128.0f, 127.0f, gf) ||
               GK->fake_quant_lsq_grad(gpu->dev, gd, dsd, dyd, xd, n, sd, -128.0f, 127.0f, gf),
           label);
    float *yg = host_copy(yd, bytes), *gg = host_copy(gd, bytes), dsg;
    die_on(qb_download(gpu, &dsg, dsd, sizeof dsg), label);
    snprintf(what, sizeof what, "%s: lsq forward cuda vs cpu", label);
    check_bits(what, yg, yc, n);
    snprintf(what, sizeof what, "%s: lsq dx cuda vs cpu", label);
    check_bits(what, gg, gc, n);
    double sum_abs = 0.0;
    for (int64_t i = 0; i < n; i++) sum_abs += fabs((double)dy[i]) * 256.0 * gf;
    const double tol = fabs((double)dsc) * 1.2e-7 + 1e-12 * sum_abs;
    CHECK(&chk, fabs((double)dsg - (double)dsc) <= tol, "%s: lsq scale gradient cuda %.9g cpu %.9g (tolerance %.3g)", label, (double)dsg,
          (double)dsc, tol);
    free(yc);
    free(gc);
    free(yg);
    free(gg);
    qb_ctx_step_reset(gpu);
}

static void lsq(void) {
    const int64_t n = 250000;
    float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float)), *dx0 = malloc(n * sizeof(float));
    qb_rng_normal(x, n, 0.0f, 1.0f, 21, 0);
    qb_rng_normal(dx0, n, 0.0f, 1.0f, 22, 0);
    qb_rng_normal(dy, n, 0.0f, 1.0f, 23, 0);
    x[0] = 0.5f * 0.01f, x[1] = -2.5f * 0.01f, x[2] = 300.0f, x[3] = -300.0f;  /* ties and both clips */
    lsq_one("lsq, scale 0.01", x, dy, dx0, n, 0.01f, (float)(1.0 / sqrt((double)n * 127.0)));
    lsq_one("lsq, scale 0.02, no gradient scale", x, dy, dx0, 40000, 0.02f, 1.0f);
    lsq_one("lsq, empty", x, dy, dx0, 0, 0.02f, 1.0f);
    free(x);
    free(dy);
    free(dx0);
}

static void learnable(void) {
    const int64_t n = 250000;
    float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float)), *dx0 = malloc(n * sizeof(float));
    qb_rng_normal(x, n, 0.0f, 1.0f, 11, 0);
    qb_rng_normal(dx0, n, 0.0f, 1.0f, 12, 0);
    for (int64_t i = 0; i < n; i++) dy[i] = (float)((i * 13) % 7) - 3.0f;  /* integers: every float64 sum is exact */
    x[5] = 1.5f;
    x[6] = -1.5f;
    x[7] = NAN;
    x[8] = INFINITY;
    x[9] = -INFINITY;
    learnable_one("learnable, integer dy", x, dy, dx0, n, 1.5f, true);
    learnable_one("learnable, small", x, dy, dx0, 1000, 1.5f, true);
    learnable_one("learnable, tiny amax", x, dy, dx0, 1000, 1e-30f, true);
    qb_rng_normal(dy, n, 0.0f, 1.0f, 13, 0);
    learnable_one("learnable, normal dy", x, dy, dx0, n, 1.5f, false);
    learnable_one("learnable, normal dy, 40000", x, dy, dx0, 40000, 0.9f, false);
    learnable_one("learnable, empty", x, dy, dx0, 0, 0.9f, true);
    /* the op on both contexts */
    quant_desc d = quant_desc_default();
    d.amax_mode = QUANT_AMAX_LEARNABLE;
    const int64_t shape[2] = {50, 40}, one = 1;
    float got[2000], want[2000], ga[1], wa[1];
    qb_ctx *ctxs[2] = {cpu, gpu};
    float *outs[2] = {want, got}, *das[2] = {wa, ga}, *dxs[2] = {NULL, NULL};
    for (int c = 0; c < 2; c++) {
        qb_tensor *xp = qb_param_new(ctxs[c], "lx", 2, shape), *ap = qb_param_new(ctxs[c], "la", 1, &one);
        const float a = 1.25f;
        qb_tensor *y = xp && ap && !qb_copy_from_host(ctxs[c], xp, x) && !qb_copy_from_host(ctxs[c], ap, &a)
                           ? qb_fake_quant_learnable(ctxs[c], xp, ap, &d) : NULL;
        die_on(!y || qb_to_host(ctxs[c], y, outs[c]) || qb_backward_with_grad(ctxs[c], y, dy), "learnable op");
        dxs[c] = malloc(sizeof got);
        die_on(qb_to_host(ctxs[c], xp->grad, dxs[c]) || qb_to_host(ctxs[c], ap->grad, das[c]), "learnable op grads");
        qb_ctx_step_reset(ctxs[c]);
    }
    check_bits("learnable op: output cuda vs cpu", got, want, 2000);
    check_bits("learnable op: dx cuda vs cpu", dxs[1], dxs[0], 2000);
    CHECK(&chk, fabsf(ga[0] - wa[0]) <= 1.2e-7f * fabsf(wa[0]) + 1e-9f, "learnable op: amax gradient cuda %.9g cpu %.9g", (double)ga[0],
          (double)wa[0]);
    free(dxs[0]);
    free(dxs[1]);
    free(x);
    free(dy);
    free(dx0);
}

/* ---- max|x|, the negative check, |x| statistics */
static void reductions(void) {
    const int64_t big = 300007;
    float *x = malloc(big * sizeof(float));
    qb_rng_normal(x, big, 0.0f, 1.0f, 21, 0);
    static const struct { int64_t outer, channels, inner; int poison; } shapes[] = {
        {1, 1, 1, 0},    {1, 1, 1000, 0},  {1, 1, 300007, 0}, {3, 5, 7, 0},     {1, 64, 768, 0},  {40, 3, 1, 0},
        {7, 6000, 1, 0}, {2, 2, 50000, 0}, {3, 5, 7, 1},      {1, 1, 300007, 2}, {1, 64, 768, 3}, {1, 1, 0, 0}};
    char label[128];
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int64_t o = shapes[k].outer, c = shapes[k].channels, in = shapes[k].inner, n = o * c * in;
        float *xs = malloc((size_t)(n + 1) * sizeof(float));
        memcpy(xs, x, (size_t)n * sizeof(float));
        if (c > 2 && in > 1)
            for (int64_t i = 0; i < o * in; i++) xs[((i / in) * c + 1) * in + i % in] = 0.0f;  /* an all-zero channel */
        if (shapes[k].poison == 1) xs[n / 2] = NAN;
        if (shapes[k].poison == 2) xs[n - 1] = -INFINITY;
        if (shapes[k].poison == 3) xs[100] = from_bits(0xffc00001u);
        float *ac = malloc((size_t)c * sizeof(float)), *xd = dev_copy(xs, (size_t)n * sizeof(float));
        float *ad = qb_act_alloc(gpu, (size_t)c * sizeof(float));
        int32_t bc = -1, bg = -1, *bd = qb_act_alloc(gpu, sizeof(int32_t));
        die_on(!ad || !bd || CK->amax_reduce(NULL, ac, &bc, xs, o, c, in) || GK->amax_reduce(gpu->dev, ad, bd, xd, o, c, in) ||
                   qb_download(gpu, &bg, bd, sizeof bg),
               "amax_reduce");
        float *ag = host_copy(ad, (size_t)c * sizeof(float));
        snprintf(label, sizeof label, "amax_reduce [%lld, %lld, %lld] poison %d cuda vs cpu", (long long)o, (long long)c, (long long)in,
                 shapes[k].poison);
        check_bits(label, ag, ac, c);
        CHECK(&chk, bg == bc && bc == (shapes[k].poison != 0), "%s: NaN/Inf flag cuda %d cpu %d", label, bg, bc);
        for (int sz = 0; sz <= 1; sz++) {
            qb_abs_stats sc, sg, *sd = qb_act_alloc(gpu, sizeof sg);
            die_on(!sd || CK->abs_stats(NULL, &sc, xs, n, sz) || GK->abs_stats(gpu->dev, sd, xd, n, sz) || qb_download(gpu, &sg, sd, sizeof sg),
                   "abs_stats");
            CHECK(&chk, !memcmp(&sc.max, &sg.max, 4) && !memcmp(&sc.min, &sg.min, 4) && sc.kept == sg.kept && sc.bad == sg.bad,
                  "abs_stats of %lld values skip_zeros %d: cuda max %g min %g kept %lld bad %d, cpu %g %g %lld %d", (long long)n, sz,
                  (double)sg.max, (double)sg.min, (long long)sg.kept, sg.bad, (double)sc.max, (double)sc.min, (long long)sc.kept, sc.bad);
        }
        free(ac);
        free(ag);
        free(xs);
        qb_ctx_step_reset(gpu);
    }
    /* any_negative: none, -0 only, NaN only, one negative at the end, NaN with negative sign */
    for (int v = 0; v < 5; v++) {
        for (int64_t i = 0; i < big; i++) x[i] = fabsf(x[i]);
        if (v == 1) x[77] = -0.0f;
        if (v == 2) x[77] = NAN;
        if (v == 3) x[big - 1] = -1e-30f;
        if (v == 4) x[5] = from_bits(0xffc00000u);
        int32_t fc = -1, fg = -1, *fd = qb_act_alloc(gpu, sizeof(int32_t));
        float *xd = dev_copy(x, big * sizeof(float));
        die_on(!fd || CK->any_negative(NULL, &fc, x, big) || GK->any_negative(gpu->dev, fd, xd, big) || qb_download(gpu, &fg, fd, sizeof fg),
               "any_negative");
        CHECK(&chk, fc == fg && fc == (v == 3), "any_negative variant %d: cuda %d cpu %d", v, fg, fc);
        qb_ctx_step_reset(gpu);
    }
    free(x);
}

/* ---- histogram bins: counts of one batch in each mode equal the CPU's */
static void hist_compare(const char *label, const float *x, int64_t n, qb_hist_bins b, const float *ef, const double *e) {
    const int64_t nb = b.nbins;
    int64_t *cc = calloc((size_t)nb, sizeof(int64_t)), *start = malloc((size_t)nb * sizeof(int64_t));
    for (int64_t k = 0; k < nb; k++) start[k] = k % 3;  /* the kernel adds into the counts */
    memcpy(cc, start, (size_t)nb * sizeof(int64_t));
    qb_hist_bins bc = b, bg = b;
    bc.edges_f32 = ef;
    bc.edges = e;
    bg.edges_f32 = ef ? dev_copy(ef, (size_t)(nb + 1) * sizeof(float)) : NULL;
    bg.edges = e ? dev_copy(e, (size_t)(nb + 1) * sizeof(double)) : NULL;
    int64_t *cd = dev_copy(start, (size_t)nb * sizeof(int64_t));
    float *xd = dev_copy(x, (size_t)n * sizeof(float));
    die_on(CK->histogram(NULL, cc, x, n, &bc) || GK->histogram(gpu->dev, cd, xd, n, &bg), label);
    int64_t *cg = host_copy(cd, (size_t)nb * sizeof(int64_t)), differ = 0, total = 0;
    for (int64_t k = 0; k < nb; k++) {
        differ += cg[k] != cc[k];
        total += cc[k] - start[k];
    }
    CHECK(&chk, differ == 0 && total > 0, "%s: %lld of %lld bins differ (%lld counted)", label, (long long)differ, (long long)nb, (long long)total);
    free(cc);
    free(cg);
    free(start);
    qb_ctx_step_reset(gpu);
}

static void histogram_bins(void) {
    const int64_t n = 200000;
    float *x = malloc((n + 40000) * sizeof(float));
    qb_rng_normal(x, n, 0.0f, 1.0f, 31, 0);
    for (int64_t i = 0; i < 5000; i++) x[i] = 0.0f;
    for (int skip = 0; skip <= 1; skip++) {
        for (int nbi = 0; nbi < 3; nbi++) {
            const int64_t nb = nbi == 0 ? 2048 : nbi == 1 ? 12288 : 20000;  /* shared counts, at the limit, global atomics */
            float lo = 0.0f, hi = 3.1f;
            char label[128];
            /* values on the edges of the uniform grid */
            const float step = (hi - lo) / (float)nb;
            for (int64_t k = 0; k < 20000; k++) x[n + k] = (float)(k % (nb + 1)) * step + lo;
            for (int64_t k = 0; k < 20000; k++) x[n + 20000 + k] = -nextafterf((float)(k % (nb + 1)) * step + lo, INFINITY);
            qb_hist_bins b = {.mode = QB_HIST_LINEAR, .nbins = nb, .skip_zeros = skip, .lo = lo, .hi = hi};
            snprintf(label, sizeof label, "histogram linear %lld bins skip_zeros %d", (long long)nb, skip);
            hist_compare(label, x, n + 40000, b, NULL, NULL);
            b.lo = 0.25f;  /* values below lo are skipped */
            snprintf(label, sizeof label, "histogram linear from 0.25, %lld bins skip_zeros %d", (long long)nb, skip);
            hist_compare(label, x, n + 40000, b, NULL, NULL);
            float *ef = malloc((size_t)(nb + 1) * sizeof(float));
            lo = 1e-3f;
            const float st = (hi - lo) / (float)nb;
            for (int64_t k = 0; k <= nb; k++) ef[k] = (float)k * st + lo;
            ef[nb] = hi;
            for (int64_t k = 0; k < 20000; k++) x[n + k] = ef[k % (nb + 1)];
            b = (qb_hist_bins){.mode = QB_HIST_UNIFORM, .nbins = nb, .skip_zeros = skip, .lo = lo, .hi = hi};
            snprintf(label, sizeof label, "histogram uniform %lld bins skip_zeros %d", (long long)nb, skip);
            hist_compare(label, x, n + 40000, b, ef, NULL);
            /* float64 edges: a float32 first part then numpy-style appended edges in another step */
            double *e = malloc((size_t)(nb + 1) * sizeof(double));
            const int64_t first = nb / 2;
            for (int64_t k = 0; k <= first; k++) e[k] = (double)ef[k * 2 < nb ? k * 2 : nb] * 0.5;
            const double w = e[1] - e[0];
            for (int64_t k = first + 1; k <= nb; k++) e[k] = e[first] + (double)(k - first) * (w * 1.37);
            for (int64_t k = 0; k < 20000; k++) x[n + k] = (float)e[(k * 7) % (nb + 1)];
            b = (qb_hist_bins){.mode = QB_HIST_EDGES, .nbins = nb, .skip_zeros = skip};
            snprintf(label, sizeof label, "histogram edges %lld bins skip_zeros %d", (long long)nb, skip);
            hist_compare(label, x, n + 40000, b, NULL, e);
            free(ef);
            free(e);
        }
    }
    free(x);
}

/* ---- calibration through tensor_quantizer on both contexts */
typedef struct batches {
    float **x;
    int ndim[16];
    int64_t shape[16][4];
    int n;
} batches;

static void feed(qb_ctx *ctx, tensor_quantizer *q, const batches *b, const char *label) {
    for (int k = 0; k < b->n; k++) {
        qb_tensor *x = qb_from_host(ctx, b->ndim[k], b->shape[k], b->x[k]);
        CHECK(&chk, x && tensor_quantizer_forward(ctx, q, x) == x, "%s: calibration batch %d on %s: %s", label, k,
              ctx == gpu ? "cuda" : "cpu", ctx->err.msg);
        qb_ctx_step_reset(ctx);
    }
}

static int64_t g_last_bins; /* bins of the last histogram compared */

/* Calibrates one quantizer per context on the batches, then compares the collected state and the amax of every
 * method (percentile only unless all_methods: entropy and mse take O(bins^2)). */
static void calibrate_both(const char *label, quant_desc d, const batches *b, json_t *ref, bool all_methods) {
    tensor_quantizer qc, qg;
    qb_err err = {0};
    die_on(tensor_quantizer_init(&qc, "cpu_q", &d, &err) || tensor_quantizer_init(&qg, "cuda_q", &d, &err), "quantizer init");
    tensor_quantizer_disable_quant(&qc);
    tensor_quantizer_disable_quant(&qg);
    tensor_quantizer_enable_calib(&qc);
    tensor_quantizer_enable_calib(&qg);
    feed(cpu, &qc, b, label);
    feed(gpu, &qg, b, label);
    if (d.calib == CALIB_MAX) {
        CHECK(&chk, qc.max.n == qg.max.n && qc.max.n > 0, "%s: %lld channels on cuda, %lld on cpu", label, (long long)qg.max.n,
              (long long)qc.max.n);
        if (qc.max.n == qg.max.n) {
            char what[160];
            snprintf(what, sizeof what, "%s: calibrated max cuda vs cpu", label);
            check_bits(what, qg.max.amax, qc.max.amax, qc.max.n);
        }
        CHECK(&chk, tensor_quantizer_load_calib_amax(&qc, HIST_AMAX_PERCENTILE, 99.9, &err) == 0 &&
                        tensor_quantizer_load_calib_amax(&qg, HIST_AMAX_PERCENTILE, 99.9, &err) == 0 && qc.n_amax == qg.n_amax &&
                        !memcmp(qc.amax, qg.amax, (size_t)qc.n_amax * sizeof(float)),
              "%s: loaded max amax equal (%s)", label, err.msg);
    } else {
        const calib_histogram *hc = &qc.hist, *hg = &qg.hist;
        g_last_bins = hg->nbins;
        bool same = hc->nbins == hg->nbins && hc->nbins > 0;
        int64_t differ = 0, edges = 0;
        for (int64_t k = 0; same && k < hc->nbins; k++) differ += hc->counts[k] != hg->counts[k];
        for (int64_t k = 0; same && k <= hc->nbins; k++) edges += memcmp(&hc->edges[k], &hg->edges[k], sizeof(double)) != 0;
        CHECK(&chk, same && differ == 0 && edges == 0 && hc->hist_hi == hg->hist_hi,
              "%s: histogram cuda %lld bins, cpu %lld; %lld counts and %lld edges differ", label, (long long)hg->nbins,
              (long long)hc->nbins, (long long)differ, (long long)edges);
        json_t *counts = json_object_get(ref, "counts");
        if (ref && counts) {
            int64_t fd = (int64_t)json_array_size(counts) != hg->nbins;
            for (int64_t k = 0; !fd && k < hg->nbins; k++) fd += hg->counts[k] != json_integer_value(json_array_get(counts, (size_t)k));
            CHECK(&chk, fd == 0, "%s: cuda histogram counts equal the reference's (%lld bins, %lld differ)", label, (long long)hg->nbins,
                  (long long)fd);
        }
        static const struct { hist_amax_method m; double p; const char *name; } methods[] = {
            {HIST_AMAX_PERCENTILE, 99.99, "percentile 99.99"}, {HIST_AMAX_PERCENTILE, 99.0, "percentile 99"},
            {HIST_AMAX_ENTROPY, 0, "entropy"}, {HIST_AMAX_MSE, 0, "mse"}};
        for (size_t k = 0; k < (all_methods ? sizeof methods / sizeof methods[0] : 2); k++) {
            qb_err ec = {0}, eg = {0};
            int rc = tensor_quantizer_load_calib_amax(&qc, methods[k].m, methods[k].p, &ec);
            int rg = tensor_quantizer_load_calib_amax(&qg, methods[k].m, methods[k].p, &eg);
            CHECK(&chk, rc == rg && (rc || !memcmp(qc.amax, qg.amax, sizeof(float))), "%s: %s amax cuda %g cpu %g (%s / %s)", label,
                  methods[k].name, rg ? NAN : (double)qg.amax[0], rc ? NAN : (double)qc.amax[0], eg.msg, ec.msg);
        }
    }
    tensor_quantizer_free(&qc);
    tensor_quantizer_free(&qg);
}

static void calibration(void) {
    /* max: per tensor over batches of growing range, per channel (weights, axis 0) and axis 1 */
    batches b = {.n = 3};
    b.x = calloc(16, sizeof(float *));
    for (int k = 0; k < 3; k++) {
        b.ndim[k] = 3;
        b.shape[k][0] = 4;
        b.shape[k][1] = 12;
        b.shape[k][2] = 700;
        b.x[k] = malloc(4 * 12 * 700 * sizeof(float));
        qb_rng_normal(b.x[k], 4 * 12 * 700, 0.0f, 1.0f + (float)k, 40 + k, 0);
    }
    quant_desc d = quant_desc_default();
    calibrate_both("max per tensor", d, &b, NULL, true);
    d.axis = 0;
    calibrate_both("max axis 0", d, &b, NULL, true);
    d.axis = 1;
    calibrate_both("max axis 1", d, &b, NULL, true);
    d.axis = 2;
    calibrate_both("max axis 2", d, &b, NULL, true);
    /* histogram, both semantics, on the fixture's batches (counts also against the reference) and on growing batches */
    qb_err err = {0};
    json_t *root = qb_fixture_load("test/quant/fixtures/calib_histogram.json", &err);
    if (CHECK(&chk, root != NULL, "fixture: %s", err.msg)) {
        json_t *cases = json_object_get(root, "cases");
        for (size_t c = 0; c < json_array_size(cases); c++) {
            json_t *cs = json_array_get(cases, c), *jb = json_object_get(cs, "batches");
            batches fb = {.n = (int)json_array_size(jb)};
            if (fb.n > 16) fb.n = 16;
            fb.x = calloc(16, sizeof(float *));
            for (int k = 0; k < fb.n; k++) {
                int64_t n;
                fb.x[k] = qb_fixture_tensor(json_array_get(jb, (size_t)k), &fb.ndim[k], fb.shape[k], &n);
            }
            for (int sem = 0; sem < 2; sem++) {
                quant_desc hd = quant_desc_default();
                hd.calib = CALIB_HISTOGRAM;
                hd.hist_semantics = sem ? HIST_PQ21_NUMPY : HIST_MODELOPT;
                hd.skip_zeros = json_is_true(json_object_get(cs, "skip_zeros"));
                char label[128];
                snprintf(label, sizeof label, "histogram %s/%s", json_string_value(json_object_get(cs, "name")), sem ? "pq21_numpy" : "modelopt");
                calibrate_both(label, hd, &fb, json_object_get(cs, sem ? "pq21_numpy" : "modelopt"),
                               !strcmp(json_string_value(json_object_get(cs, "name")), "relu_sparse") ||
                                   !strcmp(json_string_value(json_object_get(cs, "name")), "skip_zeros"));
            }
            for (int k = 0; k < fb.n; k++) free(fb.x[k]);
            free(fb.x);
        }
        json_decref(root);
    }
    /* growth: each batch 3x the last one's range, past the shared-memory bin count */
    batches g = {.n = 4};
    g.x = calloc(16, sizeof(float *));
    for (int k = 0; k < 4; k++) {
        g.ndim[k] = 2;
        g.shape[k][0] = 30;
        g.shape[k][1] = 1000;
        g.x[k] = malloc(30000 * sizeof(float));
        qb_rng_normal(g.x[k], 30000, 0.0f, powf(3.0f, (float)k), 50 + k, 0);
        for (int i = 0; i < 3000; i++) g.x[k][i * 10] = 0.0f;
    }
    for (int sem = 0; sem < 2; sem++)
        for (int skip = 0; skip <= 1; skip++) {
            quant_desc hd = quant_desc_default();
            hd.calib = CALIB_HISTOGRAM;
            hd.hist_semantics = sem ? HIST_PQ21_NUMPY : HIST_MODELOPT;
            hd.skip_zeros = skip;
            char label[128];
            snprintf(label, sizeof label, "histogram growth %s skip_zeros %d", sem ? "pq21_numpy" : "modelopt", skip);
            calibrate_both(label, hd, &g, NULL, false);
            if (!sem && !skip) CHECK(&chk, g_last_bins > 12288, "growth reached %lld bins (past the shared-memory counts)", (long long)g_last_bins);
        }
    for (int k = 0; k < 3; k++) free(b.x[k]);
    for (int k = 0; k < 4; k++) free(g.x[k]);
    free(b.x);
    free(g.x);
}

/* ---- dynamic amax, a chain of quantizers forward and backward, the unsigned check */
static void quantizer_graphs(void) {
    const int64_t shape[3] = {4, 6, 50}, n = 4 * 6 * 50;
    float *x = malloc(n * sizeof(float)), *gy = malloc(n * sizeof(float)), *out[2], *dx[2], da[2];
    qb_rng_normal(x, n, 0.0f, 1.0f, 61, 0);
    qb_rng_normal(gy, n, 0.0f, 1.0f, 62, 0);
    for (int axis = -1; axis <= 2; axis++) {
        qb_ctx *ctxs[2] = {cpu, gpu};
        for (int c = 0; c < 2; c++) {
            qb_ctx *ctx = ctxs[c];
            qb_err err = {0};
            quant_desc d = quant_desc_default();
            d.axis = axis;
            tensor_quantizer dyn, cal, lrn;
            die_on(tensor_quantizer_init(&dyn, "dyn", &d, &err), "init");
            d.axis = 1;
            die_on(tensor_quantizer_init(&cal, "cal", &d, &err), "init");
            quant_desc dl = quant_desc_default();
            dl.amax_mode = QUANT_AMAX_LEARNABLE;
            die_on(tensor_quantizer_init(&lrn, "lrn", &dl, &err), "init");
            qb_tensor *xp = qb_param_new(ctx, "gx", 3, shape);
            die_on(!xp || qb_copy_from_host(ctx, xp, x), "param");
            /* calibrate cal on x, give lrn an amax */
            tensor_quantizer_enable_calib(&cal);
            tensor_quantizer_disable_quant(&cal);
            die_on(tensor_quantizer_forward(ctx, &cal, xp) != xp, "calibrate");
            tensor_quantizer_disable_calib(&cal);
            tensor_quantizer_enable_quant(&cal);
            const float la = 1.1f;
            die_on(tensor_quantizer_load_calib_amax(&cal, HIST_AMAX_PERCENTILE, 99.9, &err) || tensor_quantizer_set_amax(&lrn, &la, 1, &err) ||
                       tensor_quantizer_init_learn_amax(ctx, &lrn),
                   "amax");
            qb_ctx_step_reset(ctx);
            qb_tensor *y = tensor_quantizer_forward(ctx, &lrn, tensor_quantizer_forward(ctx, &dyn, tensor_quantizer_forward(ctx, &cal, xp)));
            out[c] = malloc(n * sizeof(float));
            dx[c] = malloc(n * sizeof(float));
            CHECK(&chk, y && qb_to_host(ctx, y, out[c]) == 0 && qb_backward_with_grad(ctx, y, gy) == 0 &&
                            qb_to_host(ctx, xp->grad, dx[c]) == 0 && qb_to_host(ctx, lrn.learned_amax->grad, &da[c]) == 0,
                  "quantizer chain (dynamic axis %d) on %s: %s", axis, c ? "cuda" : "cpu", ctx->err.msg);
            tensor_quantizer_free(&dyn);
            tensor_quantizer_free(&cal);
            tensor_quantizer_free(&lrn);
            qb_ctx_step_reset(ctx);
        }
        char what[128];
        snprintf(what, sizeof what, "quantizer chain (dynamic axis %d): output cuda vs cpu", axis);
        check_bits(what, out[1], out[0], n);
        snprintf(what, sizeof what, "quantizer chain (dynamic axis %d): input gradient cuda vs cpu", axis);
        check_bits(what, dx[1], dx[0], n);
        CHECK(&chk, fabsf(da[1] - da[0]) <= 1.2e-7f * fabsf(da[0]) + 1e-9f, "quantizer chain (dynamic axis %d): amax gradient cuda %.9g cpu %.9g",
              axis, (double)da[1], (double)da[0]);
        for (int c = 0; c < 2; c++) {
            free(out[c]);
            free(dx[c]);
        }
    }
    /* dynamic amax with NaN in the input, and the unsigned check, are errors on the device too */
    qb_err err = {0};
    quant_desc d = quant_desc_default();
    tensor_quantizer q;
    die_on(tensor_quantizer_init(&q, "dyn_nan", &d, &err), "init");
    x[17] = NAN;
    qb_tensor *t = qb_from_host(gpu, 3, shape, x);
    CHECK(&chk, t && tensor_quantizer_forward(gpu, &q, t) == NULL && strstr(gpu->err.msg, "NaN"), "dynamic amax NaN on cuda: %s", gpu->err.msg);
    tensor_quantizer_free(&q);
    qb_ctx_step_reset(gpu);
    d.is_unsigned = true;
    x[17] = -0.5f;
    const float one = 1.0f;
    t = qb_from_host(gpu, 3, shape, x);
    CHECK(&chk, t && qb_fake_quant(gpu, t, &one, 1, &d) == NULL && strstr(gpu->err.msg, "unsigned"), "unsigned check on cuda: %s", gpu->err.msg);
    qb_ctx_step_reset(gpu);
    for (int64_t i = 0; i < n; i++) x[i] = fabsf(x[i]);
    t = qb_from_host(gpu, 3, shape, x);
    CHECK(&chk, t && qb_fake_quant(gpu, t, &one, 1, &d) != NULL, "unsigned fake quant of |x| on cuda: %s", gpu->err.msg);
    qb_ctx_step_reset(gpu);
    free(x);
    free(gy);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void) {
    char info[256];
    qb_cuda_describe(info, sizeof info);
    printf("%s\n", info);
    if (qb_cuda_device_count() == 0) {
        qb_check_skip(&chk, "cuda quant", "no CUDA device (and not the emulated build)");
        return qb_check_finish(&chk, "cuda quant");
    }
    qb_err err = {0};
    cpu = qb_ctx_new(QB_CPU, 3, &err);
    gpu = cpu ? qb_ctx_new(QB_CUDA, 3, &err) : NULL;
    if (!gpu) qb_die("test_cuda_quant", &err);
    static const struct { const char *name; void (*run)(void); } parts[] = {
        {"fixture cases", fixture_cases},   {"edge cases", edge_cases},   {"shapes", shape_cases},
        {"weight block", weight_block},
        {"learnable", learnable},           {"lsq", lsq},                 {"reductions", reductions},   {"histogram bins", histogram_bins},
        {"calibration", calibration},       {"quantizer graphs", quantizer_graphs}};
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        const double t0 = now_s();
        parts[k].run();
        printf("%s: %.2f s\n", parts[k].name, now_s() - t0);
    }
    qb_ctx_free(gpu);
    qb_ctx_free(cpu);
    return qb_check_finish(&chk, "cuda quant");
}
