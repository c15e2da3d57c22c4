/* test_emu_cublaslt.cu: cuBLASLt matmuls checked against plain loops in double: fp32 with every transpose pair,
 * padded leading dimensions, alpha/beta, row-major layouts and strided batches (one with a shared B); the epilogues
 * BIAS, RELU_BIAS, GELU_AUX(_BIAS), DGELU(_BGRAD), BGRADA, BGRADB (column-major, bias along the rows of D, GELU
 * the tanh approximation, as cublasLt.h documents them); TF32 and BF16 compute; bf16 inputs; int8 (TN, int32 out);
 * and the statuses of unsupported or inconsistent problems. */
#include "emu_check.h"

#include <cstdint>

struct Case {
    const char *name;
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    int m = 37, n = 29, k = 53, batch = 1, pad = 3;
    bool row_order = false, shared_b = false;
    cudaDataType_t ab = CUDA_R_32F, cd = CUDA_R_32F;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    float alpha = 1.0f, beta = 0.0f;
    double tol = 1e-5;
};

static double gelu(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double dgelu(double x) {
    double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}
static float to_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

/* a matrix of `rows` x `cols` (as stored), leading dimension rows + pad (cols + pad for row order), `batch` copies */
struct Mat {
    int rows, cols, batch;
    int64_t ld, stride;
    bool row;
    std::vector<float> v;
    Mat(int r, int c, int b, int pad, bool row_order, unsigned seed, bool shared = false)
        : rows(r), cols(c), batch(b), row(row_order) {
        ld = (row ? c : r) + pad;
        stride = shared ? 0 : ld * (row ? r : c) + 5;
        v = test_values((size_t)(stride * (b - 1) + ld * (row ? r : c)), seed);
    }
    float at(int b, int r, int c) const { return v[(size_t)(b * stride + (row ? r * ld + c : r + c * ld))]; }
    float &at(int b, int r, int c) { return v[(size_t)(b * stride + (row ? r * ld + c : r + c * ld))]; }
    cublasLtMatrixLayout_t layout(cudaDataType_t type) const {
        cublasLtMatrixLayout_t l = nullptr;
        EXPECT(cublasLtMatrixLayoutCreate(&l, type, (uint64_t)rows, (uint64_t)cols, ld) == CUBLAS_STATUS_SUCCESS, "layout");
        int32_t order = row ? CUBLASLT_ORDER_ROW : CUBLASLT_ORDER_COL;
        int32_t count = batch;
        EXPECT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ORDER, &order, sizeof order) ==
                   CUBLAS_STATUS_SUCCESS, "order");
        EXPECT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count) ==
                   CUBLAS_STATUS_SUCCESS, "batch count");
        EXPECT(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                sizeof stride) == CUBLAS_STATUS_SUCCESS, "batch stride");
        return l;
    }
};

/* device copy of floats in the given type */
struct Dev {
    void *ptr = nullptr;
    size_t n, elem;
    cudaDataType_t type;
    Dev(const std::vector<float> &v, cudaDataType_t t) : n(v.size()), type(t) {
        elem = t == CUDA_R_16BF ? 2 : 4;
        CUDA_OK(cudaMalloc(&ptr, n * elem));
        if (t == CUDA_R_16BF) {
            std::vector<__nv_bfloat16> b(n);
            for (size_t i = 0; i < n; i++) b[i] = __float2bfloat16(v[i]);
            CUDA_OK(cudaMemcpy(ptr, b.data(), n * elem, cudaMemcpyHostToDevice));
        } else {
            CUDA_OK(cudaMemcpy(ptr, v.data(), n * elem, cudaMemcpyHostToDevice));
        }
    }
    ~Dev() { cudaFree(ptr); }
    std::vector<float> get() const {
        std::vector<float> v(n);
        if (type == CUDA_R_16BF) {
            std::vector<__nv_bfloat16> b(n);
            CUDA_OK(cudaMemcpy(b.data(), ptr, n * elem, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < n; i++) v[i] = __bfloat162float(b[i]);
        } else {
            CUDA_OK(cudaMemcpy(v.data(), ptr, n * elem, cudaMemcpyDeviceToHost));
        }
        return v;
    }
};

static cublasLtHandle_t g_lt;

static cublasStatus_t matmul(cublasLtMatmulDesc_t op, const void *alpha, const Dev &a, cublasLtMatrixLayout_t al,
                             const Dev &b, cublasLtMatrixLayout_t bl, const void *beta, const Dev &c,
                             cublasLtMatrixLayout_t cl, Dev &d, cublasLtMatrixLayout_t dl) {
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    uint64_t ws = 0;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(g_lt, op, al, bl, cl, dl, pref, 1, &heur, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (found == 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    s = cublasLtMatmul(g_lt, op, alpha, a.ptr, al, b.ptr, bl, beta, c.ptr, cl, d.ptr, dl, &heur.algo, nullptr, 0, 0);
    cudaDeviceSynchronize();
    return s;
}

static void run_case(const Case &t) {
    bool ta = t.ta != CUBLAS_OP_N, tb = t.tb != CUBLAS_OP_N;
    Mat A(ta ? t.k : t.m, ta ? t.m : t.k, t.batch, t.pad, t.row_order, 11);
    Mat B(tb ? t.n : t.k, tb ? t.k : t.n, t.batch, t.pad, t.row_order, 12, t.shared_b);
    Mat C(t.m, t.n, t.batch, t.pad, t.row_order, 13);
    Mat D(t.m, t.n, t.batch, t.pad, t.row_order, 14);
    if (t.ab == CUDA_R_16BF) {
        for (float &x : A.v) x = to_bf16(x);
        for (float &x : B.v) x = to_bf16(x);
    }
    if (t.cd == CUDA_R_16BF)
        for (float &x : C.v) x = to_bf16(x);
    uint32_t e = t.epilogue;
    bool bias_in = e & CUBLASLT_EPILOGUE_BIAS, bgrad_a = e == CUBLASLT_EPILOGUE_BGRADA,
         bgrad_b = e == CUBLASLT_EPILOGUE_BGRADB, bgrad_d = e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
    bool aux_out = e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    bool aux_in = e == CUBLASLT_EPILOGUE_DGELU || e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
    int64_t aux_ld = (t.m + 7) / 8 * 8;
    std::vector<float> bias = test_values((size_t)(bgrad_b ? t.n : t.m), 15);
    std::vector<float> aux = test_values((size_t)(aux_ld * t.n), 16);
    if (t.cd == CUDA_R_16BF) {
        for (float &x : bias) x = to_bf16(x);
        for (float &x : aux) x = to_bf16(x);
    }

    /* reference */
    std::vector<double> want_d(D.v.size()), want_aux(aux.begin(), aux.end()), want_bias(bias.begin(), bias.end());
    for (int bt = 0; bt < t.batch; bt++) {
        for (int j = 0; j < t.n; j++)
            for (int i = 0; i < t.m; i++) {
                double s = 0;
                for (int l = 0; l < t.k; l++) s += (double)(ta ? A.at(bt, l, i) : A.at(bt, i, l)) * (tb ? B.at(bt, j, l) : B.at(bt, l, j));
                double v = t.alpha * s + (t.beta != 0.0f ? t.beta * C.at(bt, i, j) : 0.0);
                if (bias_in) v += bias[(size_t)i];
                if (aux_out) want_aux[(size_t)(i + j * aux_ld)] = v;
                if (e == CUBLASLT_EPILOGUE_RELU_BIAS || e == CUBLASLT_EPILOGUE_RELU) v = v > 0 ? v : 0;
                if (e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_BIAS ||
                    e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS)
                    v = gelu(v);
                if (aux_in) v *= dgelu(aux[(size_t)(i + j * aux_ld)]);
                want_d[(size_t)(bt * D.stride + (D.row ? i * D.ld + j : i + j * D.ld))] = v;
            }
        if (bgrad_a)
            for (int i = 0; i < t.m; i++) {
                double s = 0;
                for (int l = 0; l < t.k; l++) s += ta ? A.at(bt, l, i) : A.at(bt, i, l);
                want_bias[(size_t)i] = s;
            }
        if (bgrad_b)
            for (int j = 0; j < t.n; j++) {
                double s = 0;
                for (int l = 0; l < t.k; l++) s += tb ? B.at(bt, j, l) : B.at(bt, l, j);
                want_bias[(size_t)j] = s;
            }
        if (bgrad_d)
            for (int i = 0; i < t.m; i++) {
                double s = 0;
                for (int j = 0; j < t.n; j++) s += want_d[(size_t)(i + j * D.ld)];
                want_bias[(size_t)i] = s;
            }
    }

    Dev a(A.v, t.ab), b(B.v, t.ab), c(C.v, t.cd), d(D.v, t.cd), bias_d(bias, t.cd), aux_d(aux, t.cd);
    cublasLtMatmulDesc_t op;
    EXPECT(cublasLtMatmulDescCreate(&op, t.compute, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS, "%s: desc", t.name);
    int32_t ta32 = t.ta, tb32 = t.tb;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta32, sizeof ta32);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb32, sizeof tb32);
    EXPECT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e) == CUBLAS_STATUS_SUCCESS,
           "%s: epilogue", t.name);
    if (bias_in || bgrad_a || bgrad_b || bgrad_d)
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_d.ptr, sizeof bias_d.ptr);
    if (aux_in || aux_out) {
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux_d.ptr, sizeof aux_d.ptr);
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld);
    }
    cublasLtMatrixLayout_t al = A.layout(t.ab), bl = B.layout(t.ab), cl = C.layout(t.cd), dl = D.layout(t.cd);
    cublasStatus_t s = matmul(op, &t.alpha, a, al, b, bl, &t.beta, c, cl, d, dl);
    EXPECT(s == CUBLAS_STATUS_SUCCESS, "%s: cublasLtMatmul -> %s", t.name, cublasLtGetStatusString(s));
    if (s == CUBLAS_STATUS_SUCCESS) {
        std::vector<float> got = d.get();
        /* compare the matrix elements only (the padding must be left alone: it still holds D's old values) */
        std::vector<float> want_f(got.size());
        for (size_t i = 0; i < got.size(); i++) want_f[i] = D.v[i];
        for (int bt = 0; bt < t.batch; bt++)
            for (int j = 0; j < t.n; j++)
                for (int i = 0; i < t.m; i++) {
                    size_t at = (size_t)(bt * D.stride + (D.row ? i * D.ld + j : i + j * D.ld));
                    want_f[at] = (float)want_d[at];
                }
        double err = max_rel_err(got.data(), want_f.data(), got.size());
        EXPECT(err < t.tol, "%s: D max rel err %g (tol %g)", t.name, err, t.tol);
        if (aux_out) {
            std::vector<float> ga = aux_d.get();
            std::vector<float> wa(want_aux.begin(), want_aux.end());
            double ea = max_rel_err(ga.data(), wa.data(), ga.size());
            EXPECT(ea < t.tol, "%s: aux max rel err %g", t.name, ea);
        }
        if (bgrad_a || bgrad_b || bgrad_d) {
            std::vector<float> gb = bias_d.get();
            std::vector<float> wb(want_bias.begin(), want_bias.end());
            double eb = max_rel_err(gb.data(), wb.data(), gb.size());
            EXPECT(eb < t.tol * 4, "%s: bias gradient max rel err %g", t.name, eb);
        }
    }
    cublasLtMatrixLayoutDestroy(al);
    cublasLtMatrixLayoutDestroy(bl);
    cublasLtMatrixLayoutDestroy(cl);
    cublasLtMatrixLayoutDestroy(dl);
    cublasLtMatmulDescDestroy(op);
}

/* int8 A (k x m, transposed), B (k x n), int32 C/D: D = alpha op(A) op(B) + beta C, exactly */
static void int8_case(int32_t alpha, int32_t beta) {
    int m = 32, n = 24, k = 64, lda = k + 4, ldb = k, ldc = m + 4;
    std::vector<int8_t> ah((size_t)lda * m), bh((size_t)ldb * n);
    std::vector<int32_t> ch((size_t)ldc * n), want((size_t)ldc * n);
    for (size_t i = 0; i < ah.size(); i++) ah[i] = (int8_t)((int)(i * 37 % 255) - 127);
    for (size_t i = 0; i < bh.size(); i++) bh[i] = (int8_t)((int)(i * 91 % 255) - 127);
    for (size_t i = 0; i < ch.size(); i++) ch[i] = (int32_t)(i % 1000) - 500;
    want = ch;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            int64_t s = 0;
            for (int l = 0; l < k; l++) s += (int)ah[(size_t)(l + i * lda)] * (int)bh[(size_t)(l + j * ldb)];
            want[(size_t)(i + j * ldc)] = (int32_t)(alpha * s + (int64_t)beta * ch[(size_t)(i + j * ldc)]);
        }
    int8_t *a, *b;
    int32_t *c;
    CUDA_OK(cudaMalloc((void **)&a, ah.size()));
    CUDA_OK(cudaMalloc((void **)&b, bh.size()));
    CUDA_OK(cudaMalloc((void **)&c, ch.size() * 4));
    CUDA_OK(cudaMemcpy(a, ah.data(), ah.size(), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(b, bh.data(), bh.size(), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(c, ch.data(), ch.size() * 4, cudaMemcpyHostToDevice));
    cublasLtMatmulDesc_t op;
    cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I);
    int32_t t = CUBLAS_OP_T;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
    cublasLtMatrixLayout_t al, bl, cl;
    cublasLtMatrixLayoutCreate(&al, CUDA_R_8I, k, m, lda);
    cublasLtMatrixLayoutCreate(&bl, CUDA_R_8I, k, n, ldb);
    cublasLtMatrixLayoutCreate(&cl, CUDA_R_32I, m, n, ldc);
    cublasStatus_t s = cublasLtMatmul(g_lt, op, &alpha, a, al, b, bl, &beta, c, cl, c, cl, nullptr, nullptr, 0, 0);
    cudaDeviceSynchronize();
    EXPECT(s == CUBLAS_STATUS_SUCCESS, "int8 TN matmul -> %s", cublasLtGetStatusString(s));
    std::vector<int32_t> got(ch.size());
    CUDA_OK(cudaMemcpy(got.data(), c, got.size() * 4, cudaMemcpyDeviceToHost));
    bool ok = true;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) ok &= got[(size_t)(i + j * ldc)] == want[(size_t)(i + j * ldc)];
    EXPECT(ok, "int8 x int8 -> int32 (alpha %d, beta %d) is exact", alpha, beta);

    /* the IMMA kernels of regular layouts take "TN" only */
    int32_t nop = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &nop, sizeof nop);
    cublasLtMatrixLayout_t al2;
    cublasLtMatrixLayoutCreate(&al2, CUDA_R_8I, m, k, m);
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    s = cublasLtMatmulAlgoGetHeuristic(g_lt, op, al2, bl, cl, cl, pref, 1, &heur, &found);
    EXPECT(s != CUBLAS_STATUS_SUCCESS || found == 0, "int8 NN is not supported (%s, %d found)",
           cublasLtGetStatusString(s), found);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(al);
    cublasLtMatrixLayoutDestroy(al2);
    cublasLtMatrixLayoutDestroy(bl);
    cublasLtMatrixLayoutDestroy(cl);
    cublasLtMatmulDescDestroy(op);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
}

static void status_cases() {
    std::vector<float> v(64 * 64, 1.0f);
    Dev a(v, CUDA_R_32F), b(v, CUDA_R_32F), d(v, CUDA_R_32F);
    cublasLtMatmulDesc_t op;
    cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtMatrixLayout_t l8x4, l5x8, l8x8;
    cublasLtMatrixLayoutCreate(&l8x4, CUDA_R_32F, 8, 4, 8);
    cublasLtMatrixLayoutCreate(&l5x8, CUDA_R_32F, 5, 8, 5);
    cublasLtMatrixLayoutCreate(&l8x8, CUDA_R_32F, 8, 8, 8);
    float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = cublasLtMatmul(g_lt, op, &one, a.ptr, l8x4, b.ptr, l5x8, &zero, d.ptr, l8x8, d.ptr, l8x8,
                                      nullptr, nullptr, 0, 0);
    EXPECT(s != CUBLAS_STATUS_SUCCESS, "k of A (4) and B (5) disagree: %s", cublasLtGetStatusString(s));
    int32_t bad = 5;
    EXPECT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &bad, 2) == CUBLAS_STATUS_INVALID_VALUE,
           "an attribute of the wrong size");
#ifdef QB_CUDA_EMU
    std::vector<float> host(64, 1.0f);
    cublasLtMatrixLayout_t l8x1, l1x8;
    cublasLtMatrixLayoutCreate(&l8x1, CUDA_R_32F, 8, 1, 8);
    cublasLtMatrixLayoutCreate(&l1x8, CUDA_R_32F, 1, 8, 1);
    s = cublasLtMatmul(g_lt, op, &one, host.data(), l8x1, b.ptr, l1x8, &zero, d.ptr, l8x8, d.ptr, l8x8, nullptr,
                       nullptr, 0, 0);
    EXPECT(s == CUBLAS_STATUS_INVALID_VALUE, "a host pointer as A: %s", cublasLtGetStatusString(s));
    uint32_t e = CUBLASLT_EPILOGUE_GELU_AUX;
    int64_t ld = 9;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &d.ptr, sizeof d.ptr);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld);
    s = cublasLtMatmul(g_lt, op, &one, a.ptr, l8x1, b.ptr, l1x8, &zero, d.ptr, l8x8, d.ptr, l8x8, nullptr, nullptr, 0,
                       0);
    EXPECT(s == CUBLAS_STATUS_INVALID_VALUE, "EPILOGUE_AUX_LD not divisible by 8: %s", cublasLtGetStatusString(s));
    cublasLtMatrixLayoutDestroy(l8x1);
    cublasLtMatrixLayoutDestroy(l1x8);
#endif
    cublasLtMatrixLayoutDestroy(l8x4);
    cublasLtMatrixLayoutDestroy(l5x8);
    cublasLtMatrixLayoutDestroy(l8x8);
    cublasLtMatmulDescDestroy(op);
}

int main() {
    require_device("test_emu_cublaslt");
    cublasHandle_t blas;
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreate(&stream));
    EXPECT(cublasCreate(&blas) == CUBLAS_STATUS_SUCCESS && cublasSetStream(blas, stream) == CUBLAS_STATUS_SUCCESS,
           "cuBLAS handle");
    EXPECT(cublasLtCreate(&g_lt) == CUBLAS_STATUS_SUCCESS && cublasLtGetVersion() > 0, "cuBLASLt handle");

    const cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
    for (auto ta : {N, T})
        for (auto tb : {N, T}) {
            Case c;
            c.name = ta == N ? (tb == N ? "fp32 NN" : "fp32 NT") : (tb == N ? "fp32 TN" : "fp32 TT");
            c.ta = ta, c.tb = tb, c.alpha = 1.5f, c.beta = 0.5f;
            run_case(c);
        }
    Case c;
    c.name = "fp32 row-major TN, alpha -1, beta 1";
    c.row_order = true, c.ta = T, c.alpha = -1.0f, c.beta = 1.0f;
    run_case(c);
    c = Case();
    c.name = "fp32 strided batch of 3, NT";
    c.batch = 3, c.tb = T, c.beta = 0.25f;
    run_case(c);
    c = Case();
    c.name = "fp32 strided batch of 4, shared B (stride 0)";
    c.batch = 4, c.shared_b = true;
    run_case(c);
#ifdef QB_CUDA_EMU
    c = Case();
    c.name = "fp32 k = 0 (D = beta C, as BLAS)";
    c.k = 0, c.beta = 2.0f;
    run_case(c);
#endif
    struct {
        const char *name;
        cublasLtEpilogue_t e;
        cublasOperation_t ta, tb;
    } epilogues[] = {{"BIAS", CUBLASLT_EPILOGUE_BIAS, T, N},
                     {"RELU_BIAS", CUBLASLT_EPILOGUE_RELU_BIAS, N, N},
                     {"GELU", CUBLASLT_EPILOGUE_GELU, N, T},
                     {"GELU_AUX", CUBLASLT_EPILOGUE_GELU_AUX, N, N},
                     {"GELU_AUX_BIAS", CUBLASLT_EPILOGUE_GELU_AUX_BIAS, T, N},
                     {"DGELU", CUBLASLT_EPILOGUE_DGELU, N, T},
                     {"DGELU_BGRAD", CUBLASLT_EPILOGUE_DGELU_BGRAD, N, T},
                     {"BGRADA", CUBLASLT_EPILOGUE_BGRADA, N, T},
                     {"BGRADB", CUBLASLT_EPILOGUE_BGRADB, N, T},
                     {"BGRADB, B not transposed", CUBLASLT_EPILOGUE_BGRADB, T, N}};
    for (auto &ep : epilogues) {
        c = Case();
        c.name = ep.name, c.epilogue = ep.e, c.ta = ep.ta, c.tb = ep.tb;
        run_case(c);
    }
    c = Case();
    c.name = "TF32 compute", c.compute = CUBLAS_COMPUTE_32F_FAST_TF32, c.tol = 1e-2;
    run_case(c);
    c = Case();
    c.name = "BF16 compute", c.compute = CUBLAS_COMPUTE_32F_FAST_16BF, c.tol = 5e-2;
    run_case(c);
    c = Case();
    c.name = "bf16 A/B, fp32 C/D", c.ab = CUDA_R_16BF, c.ta = T, c.beta = 1.0f;
    run_case(c);
    c = Case();
    c.name = "bf16 A/B/C/D with GELU_AUX_BIAS", c.ab = CUDA_R_16BF, c.cd = CUDA_R_16BF,
    c.epilogue = CUBLASLT_EPILOGUE_GELU_AUX_BIAS, c.tol = 1e-2;
    run_case(c);
    int8_case(1, 0);
    int8_case(2, 1);
    status_cases();

    EXPECT(cublasLtDestroy(g_lt) == CUBLAS_STATUS_SUCCESS && cublasDestroy(blas) == CUBLAS_STATUS_SUCCESS, "destroy");
    CUDA_OK(cudaStreamDestroy(stream));
    return finish("test_emu_cublaslt");
}
