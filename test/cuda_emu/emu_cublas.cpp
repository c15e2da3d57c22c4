/* emu_cublas.cpp: the cuBLAS handle calls and the cuBLASLt matmul API of the CUDA emulator, served by OpenBLAS
 * (docs/cuda.md). D = epilogue(alpha * op(A) op(B) + beta * C) per cublasLt.h: column-major unless a layout says
 * CUBLASLT_ORDER_ROW, bias along the rows of D, GELU the tanh approximation. fp32, bf16 (fp32 accumulate) and int8
 * (int32 accumulate and output, IMMA "TN" rules) inputs; TF32 / BF16 fast compute types round the inputs first. */
#include "cuda_emu.h"

#include <cblas.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

namespace qbemu {
cudaError_t check_device_buffer(const char *call, const char *what, const void *p, size_t n);
bool device_present();
}

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
};
struct cublasLtContext {
    int unused;
};

namespace {

const uint32_t DESC_MAGIC = 0x716d6d64, LAYOUT_MAGIC = 0x716c6179, PREF_MAGIC = 0x71707266;

struct MatmulDesc {
    uint32_t magic;
    int32_t compute, scale_type, pointer_mode, transa, transb, transc, fill_mode;
    uint32_t epilogue;
    int32_t bias_type, aux_type, sm_count;
    const void *bias;
    void *aux;
    int64_t bias_batch_stride, aux_ld, aux_batch_stride;
    int8_t fast_accum;
};
static_assert(sizeof(MatmulDesc) <= sizeof(cublasLtMatmulDescOpaque_t), "descriptor fits the opaque storage");

struct Layout {
    uint32_t magic, type;
    int32_t order, batch;
    uint64_t rows, cols;
    int64_t ld, stride;
};
static_assert(sizeof(Layout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "layout fits the opaque storage");

struct Pref {
    uint32_t magic, search_mode;
    uint64_t max_workspace;
};
static_assert(sizeof(Pref) <= sizeof(cublasLtMatmulPreferenceOpaque_t), "preference fits the opaque storage");

using qbemu::note;

MatmulDesc *desc_of(cublasLtMatmulDesc_t d) {
    MatmulDesc *m = reinterpret_cast<MatmulDesc *>(d);
    return m && m->magic == DESC_MAGIC ? m : nullptr;
}
Layout *layout_of(cublasLtMatrixLayout_t l) {
    Layout *m = reinterpret_cast<Layout *>(l);
    return m && m->magic == LAYOUT_MAGIC ? m : nullptr;
}
Pref *pref_of(cublasLtMatmulPreference_t p) {
    Pref *m = reinterpret_cast<Pref *>(p);
    return m && m->magic == PREF_MAGIC ? m : nullptr;
}

size_t type_size(int32_t t) {
    switch (t) {
    case CUDA_R_32F: case CUDA_R_32I: return 4;
    case CUDA_R_16BF: case CUDA_R_16F: return 2;
    case CUDA_R_8I: return 1;
    default: return 0;
    }
}

/* Copies an attribute value of exactly `want` bytes; CUBLAS_STATUS_INVALID_VALUE on a size mismatch, as cuBLASLt. */
template <class T>
cublasStatus_t set_field(T *field, const void *buf, size_t size, const char *what) {
    if (!buf || size != sizeof(T)) {
        note("%s: attribute value of %zu bytes where %zu are expected", what, size, sizeof(T));
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    memcpy(field, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}
template <class T>
cublasStatus_t get_field(const T *field, void *buf, size_t size, size_t *written) {
    if (size == 0) {
        if (!written) return CUBLAS_STATUS_INVALID_VALUE;
        *written = sizeof(T);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, field, sizeof(T));
    if (written) *written = sizeof(T);
    return CUBLAS_STATUS_SUCCESS;
}

bool epilogue_known(uint32_t e) {
    switch (e) {
    case CUBLASLT_EPILOGUE_DEFAULT: case CUBLASLT_EPILOGUE_RELU: case CUBLASLT_EPILOGUE_BIAS:
    case CUBLASLT_EPILOGUE_RELU_BIAS: case CUBLASLT_EPILOGUE_GELU: case CUBLASLT_EPILOGUE_GELU_AUX:
    case CUBLASLT_EPILOGUE_GELU_BIAS: case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: case CUBLASLT_EPILOGUE_DGELU:
    case CUBLASLT_EPILOGUE_DGELU_BGRAD: case CUBLASLT_EPILOGUE_BGRADA: case CUBLASLT_EPILOGUE_BGRADB: return true;
    default: return false;
    }
}

bool is_f32_compute(int32_t c) {
    return c == CUBLAS_COMPUTE_32F || c == CUBLAS_COMPUTE_32F_PEDANTIC || c == CUBLAS_COMPUTE_32F_FAST_TF32 ||
           c == CUBLAS_COMPUTE_32F_FAST_16BF;
}

/* The problem a descriptor set describes, checked as cuBLASLt would before running. */
struct Problem {
    MatmulDesc *op;
    Layout *a, *b, *c, *d;
    uint64_t m, n, k;
    int32_t bias_type, aux_type;
    bool uses_bias, uses_aux, writes_aux, bgrad;
};

cublasStatus_t fail(cublasStatus_t s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cublasStatus_t fail(cublasStatus_t s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    note("cublasLtMatmul: %s", msg);
    return s;
}

cublasStatus_t validate(cublasLtMatmulDesc_t opd, cublasLtMatrixLayout_t ad, cublasLtMatrixLayout_t bd,
                        cublasLtMatrixLayout_t cd, cublasLtMatrixLayout_t dd, Problem *p) {
    p->op = desc_of(opd);
    p->a = layout_of(ad), p->b = layout_of(bd), p->c = layout_of(cd), p->d = layout_of(dd);
    if (!p->op || !p->a || !p->b || !p->c || !p->d)
        return fail(CUBLAS_STATUS_INVALID_VALUE, "a descriptor or layout is NULL or not created");
    const MatmulDesc &op = *p->op;
    const Layout &A = *p->a, &B = *p->b, &C = *p->c, &D = *p->d;
    bool ta = op.transa != CUBLAS_OP_N, tb = op.transb != CUBLAS_OP_N;
    if (op.transc != CUBLAS_OP_N) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "TRANSC must be CUBLAS_OP_N");
    p->m = D.rows, p->n = D.cols, p->k = ta ? A.rows : A.cols;
    if ((ta ? A.cols : A.rows) != p->m || (tb ? B.cols : B.rows) != p->k || (tb ? B.rows : B.cols) != p->n ||
        C.rows != D.rows || C.cols != D.cols)
        return fail(CUBLAS_STATUS_INVALID_VALUE,
                    "shapes disagree: op(A) is %llux%llu, op(B) %llux%llu, C %llux%llu, D %llux%llu",
                    (unsigned long long)(ta ? A.cols : A.rows), (unsigned long long)(ta ? A.rows : A.cols),
                    (unsigned long long)(tb ? B.cols : B.rows), (unsigned long long)(tb ? B.rows : B.cols),
                    (unsigned long long)C.rows, (unsigned long long)C.cols, (unsigned long long)D.rows,
                    (unsigned long long)D.cols);
    const Layout *all[4] = {&A, &B, &C, &D};
    const char *names = "ABCD";
    for (int i = 0; i < 4; i++) {
        const Layout &l = *all[i];
        uint64_t need = l.order == CUBLASLT_ORDER_ROW ? l.cols : l.rows;
        if (l.ld < 0 || (uint64_t)l.ld < need || l.ld < 1)
            return fail(CUBLAS_STATUS_INVALID_VALUE, "matrix %c: leading dimension %lld < %llu", names[i],
                        (long long)l.ld, (unsigned long long)need);
        if (l.batch != D.batch)
            return fail(CUBLAS_STATUS_INVALID_VALUE, "matrix %c: batch count %d differs from D's %d", names[i],
                        l.batch, D.batch);
        if (l.stride < 0) return fail(CUBLAS_STATUS_INVALID_VALUE, "matrix %c: negative batch stride", names[i]);
    }
    if (C.type != D.type) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "C and D types differ");
    if (A.type != B.type) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "A and B types differ");
    uint32_t e = op.epilogue;
    if (!epilogue_known(e)) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "epilogue %u is not emulated", e);
    if (A.type == CUDA_R_32F) {
        if (!is_f32_compute(op.compute) || op.scale_type != CUDA_R_32F || D.type != CUDA_R_32F)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "fp32 A/B need a 32F compute type, 32F scale and 32F C/D");
    } else if (A.type == CUDA_R_16BF) {
        if (!is_f32_compute(op.compute) || op.scale_type != CUDA_R_32F ||
            (D.type != CUDA_R_16BF && D.type != CUDA_R_32F))
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "bf16 A/B need a 32F compute type, 32F scale, bf16 or fp32 C/D");
    } else if (A.type == CUDA_R_8I) {
        if (op.compute != CUBLAS_COMPUTE_32I && op.compute != CUBLAS_COMPUTE_32I_PEDANTIC)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "int8 A/B need CUBLAS_COMPUTE_32I");
        if (op.scale_type != CUDA_R_32I || D.type != CUDA_R_32I)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "int8 A/B are emulated with 32I scale and int32 C/D only");
        if (!ta || tb)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "int8 (IMMA) with regular ordering needs the TN format: "
                                                     "TRANSA = T, TRANSB = N");
        for (int i = 0; i < 4; i++)
            if (all[i]->order != CUBLASLT_ORDER_COL || (i < 3 && all[i]->ld % 4))
                return fail(CUBLAS_STATUS_NOT_SUPPORTED, "int8: column-major layouts with lda, ldb, ldc multiples of 4");
        if (p->m % 4 || p->k % 4) return fail(CUBLAS_STATUS_NOT_SUPPORTED, "int8: m and k must be multiples of 4");
        if (e != CUBLASLT_EPILOGUE_DEFAULT)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "int8 with int32 output: only CUBLASLT_EPILOGUE_DEFAULT");
    } else {
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, "A/B type %u is not emulated (32F, 16BF, 8I)", A.type);
    }
    if (op.pointer_mode != CUBLASLT_POINTER_MODE_HOST && op.pointer_mode != CUBLASLT_POINTER_MODE_DEVICE)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, "pointer mode %d is not emulated (HOST, DEVICE)", op.pointer_mode);
    p->uses_bias = e & CUBLASLT_EPILOGUE_BIAS;
    p->bgrad = e == CUBLASLT_EPILOGUE_DGELU_BGRAD || e == CUBLASLT_EPILOGUE_BGRADA || e == CUBLASLT_EPILOGUE_BGRADB;
    p->writes_aux = e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    p->uses_aux = p->writes_aux || e == CUBLASLT_EPILOGUE_DGELU || e == CUBLASLT_EPILOGUE_DGELU_BGRAD;
    p->bias_type = op.bias_type == -1 ? (int32_t)D.type : op.bias_type;
    p->aux_type = op.aux_type == -1 ? (int32_t)D.type : op.aux_type;
    if ((p->uses_bias || p->bgrad) && !op.bias)
        return fail(CUBLAS_STATUS_INVALID_VALUE, "epilogue %u needs CUBLASLT_MATMUL_DESC_BIAS_POINTER", e);
    if ((p->uses_bias || p->bgrad) && p->bias_type != CUDA_R_32F && p->bias_type != CUDA_R_16BF)
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, "bias type %d is not emulated", p->bias_type);
    if (p->uses_aux) {
        if (!op.aux) return fail(CUBLAS_STATUS_INVALID_VALUE, "epilogue %u needs EPILOGUE_AUX_POINTER", e);
        if (op.aux_ld < (int64_t)p->m || op.aux_ld % 8 || op.aux_batch_stride % 8)
            return fail(CUBLAS_STATUS_INVALID_VALUE,
                        "EPILOGUE_AUX_LD %lld must be >= the rows of D (%llu) and, like EPILOGUE_AUX_BATCH_STRIDE, "
                        "divisible by 8",
                        (long long)op.aux_ld, (unsigned long long)p->m);
        if (D.order != CUBLASLT_ORDER_COL)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "GELU aux epilogues are emulated for column-major D only");
        if (p->aux_type != CUDA_R_32F && p->aux_type != CUDA_R_16BF)
            return fail(CUBLAS_STATUS_NOT_SUPPORTED, "aux type %d is not emulated", p->aux_type);
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* element offset of (r, c) in one matrix of a layout */
inline size_t at(const Layout &l, uint64_t r, uint64_t c) {
    return l.order == CUBLASLT_ORDER_ROW ? (size_t)(r * (uint64_t)l.ld + c) : (size_t)(r + c * (uint64_t)l.ld);
}
/* bytes spanned by all matrices of a layout */
size_t extent(const Layout &l) {
    if (l.rows == 0 || l.cols == 0 || l.batch <= 0) return 0;
    size_t last = (size_t)(l.batch - 1) * (size_t)l.stride + at(l, l.rows - 1, l.cols - 1);
    return (last + 1) * type_size((int32_t)l.type);
}

inline float load(const void *p, int32_t type, size_t i) {
    if (type == CUDA_R_16BF) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    return static_cast<const float *>(p)[i];
}
inline void store(void *p, int32_t type, size_t i, float v) {
    if (type == CUDA_R_16BF)
        static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16(v);
    else
        static_cast<float *>(p)[i] = v;
}

/* fp32 -> TF32 (10 mantissa bits), round to nearest even */
inline float round_tf32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) {
        u += 0xfffu + ((u >> 13) & 1u);
        u &= ~0x1fffu;
    }
    memcpy(&x, &u, 4);
    return x;
}

const float GELU_C = 0.7978845608028654f; /* sqrt(2 / pi) */
inline float gelu(float x) { return 0.5f * x * (1.0f + tanhf(GELU_C * (x + 0.044715f * x * x * x))); }
inline float dgelu(float x) {
    float t = tanhf(GELU_C * (x + 0.044715f * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * 0.044715f * x * x);
}

cublasStatus_t check_buffers(const Problem &p, const void *A, const void *B, const void *C, bool reads_c, void *D) {
    struct {
        const char *what;
        const void *ptr;
        size_t bytes;
    } bufs[6] = {{"A", A, extent(*p.a)},
                 {"B", B, extent(*p.b)},
                 {"C", reads_c ? C : nullptr, reads_c ? extent(*p.c) : 0},
                 {"D", D, extent(*p.d)},
                 {"bias", nullptr, 0},
                 {"aux", nullptr, 0}};
    int batch = p.d->batch;
    if (p.uses_bias || p.bgrad) {
        uint64_t len = p.op->epilogue == CUBLASLT_EPILOGUE_BGRADB ? p.n : p.m;
        bufs[4] = {"bias", p.op->bias,
                   ((size_t)(batch - 1) * (size_t)p.op->bias_batch_stride + len) * type_size(p.bias_type)};
    }
    if (p.uses_aux && p.m && p.n)
        bufs[5] = {"aux", p.op->aux,
                   ((size_t)(batch - 1) * (size_t)p.op->aux_batch_stride + (p.n - 1) * (size_t)p.op->aux_ld + p.m) *
                       type_size(p.aux_type)};
    for (auto &b : bufs)
        if (b.bytes && qbemu::check_device_buffer("cublasLtMatmul", b.what, b.ptr, b.bytes) != cudaSuccess)
            return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t run_int8(const Problem &p, const void *alpha, const void *A, const void *B, const void *beta,
                        const void *C, void *D) {
    int32_t al = *static_cast<const int32_t *>(alpha), be = *static_cast<const int32_t *>(beta);
    for (int bt = 0; bt < p.d->batch; bt++) {
        const int8_t *a = static_cast<const int8_t *>(A) + (size_t)bt * p.a->stride;
        const int8_t *b = static_cast<const int8_t *>(B) + (size_t)bt * p.b->stride;
        const int32_t *c = static_cast<const int32_t *>(C) + (size_t)bt * p.c->stride;
        int32_t *d = static_cast<int32_t *>(D) + (size_t)bt * p.d->stride;
        for (uint64_t j = 0; j < p.n; j++)
            for (uint64_t i = 0; i < p.m; i++) {
                int64_t acc = 0;
                for (uint64_t l = 0; l < p.k; l++) acc += (int32_t)a[at(*p.a, l, i)] * (int32_t)b[at(*p.b, l, j)];
                int64_t v = (int64_t)al * acc + (be ? (int64_t)be * c[at(*p.c, i, j)] : 0);
                d[at(*p.d, i, j)] = (int32_t)(uint32_t)(uint64_t)v;
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t run_float(const Problem &p, float alpha, const void *A, const void *B, float beta, const void *C,
                         void *D) {
    const MatmulDesc &op = *p.op;
    uint64_t m = p.m, n = p.n, k = p.k;
    bool ta = op.transa != CUBLAS_OP_N, tb = op.transb != CUBLAS_OP_N;
    int32_t at_ = (int32_t)p.a->type, dt = (int32_t)p.d->type;
    size_t as = type_size(at_), ds = type_size(dt), bs = type_size(p.bias_type), xs = type_size(p.aux_type);
    std::vector<float> opa(m * k), opb(k * n), acc(m * n);
    uint32_t e = op.epilogue;
    for (int bt = 0; bt < p.d->batch; bt++) {
        const char *a = static_cast<const char *>(A) + (size_t)bt * p.a->stride * as;
        const char *b = static_cast<const char *>(B) + (size_t)bt * p.b->stride * as;
        const char *c = static_cast<const char *>(C) + (size_t)bt * p.c->stride * ds;
        char *d = static_cast<char *>(D) + (size_t)bt * p.d->stride * ds;
        char *bias = op.bias ? (char *)op.bias + (size_t)bt * op.bias_batch_stride * bs : nullptr;
        char *aux = op.aux ? (char *)op.aux + (size_t)bt * op.aux_batch_stride * xs : nullptr;
        /* op(A) as m x k and op(B) as k x n, column-major fp32, with the compute type's input rounding */
        for (uint64_t l = 0; l < k; l++)
            for (uint64_t i = 0; i < m; i++) opa[i + l * m] = load(a, at_, ta ? at(*p.a, l, i) : at(*p.a, i, l));
        for (uint64_t j = 0; j < n; j++)
            for (uint64_t l = 0; l < k; l++) opb[l + j * k] = load(b, at_, tb ? at(*p.b, j, l) : at(*p.b, l, j));
        if (at_ == CUDA_R_32F && op.compute == CUBLAS_COMPUTE_32F_FAST_TF32) {
            for (float &v : opa) v = round_tf32(v);
            for (float &v : opb) v = round_tf32(v);
        } else if (at_ == CUDA_R_32F && op.compute == CUBLAS_COMPUTE_32F_FAST_16BF) {
            for (float &v : opa) v = __bfloat162float(__float2bfloat16(v));
            for (float &v : opb) v = __bfloat162float(__float2bfloat16(v));
        }
        if (m && n) {
            if (k)
                cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, opa.data(),
                            (int)m, opb.data(), (int)k, 0.0f, acc.data(), (int)m);
            else
                std::fill(acc.begin(), acc.end(), 0.0f);
        }
        if (e == CUBLASLT_EPILOGUE_BGRADA || e == CUBLASLT_EPILOGUE_BGRADB) {
            bool rows = e == CUBLASLT_EPILOGUE_BGRADA; /* BGRADA: per row of op(A); BGRADB: per column of op(B) */
            for (uint64_t i = 0; i < (rows ? m : n); i++) {
                double s = 0;
                for (uint64_t l = 0; l < k; l++) s += rows ? opa[i + l * m] : opb[l + i * k];
                store(bias, p.bias_type, i, (float)s);
            }
        }
        std::vector<double> bgrad(e == CUBLASLT_EPILOGUE_DGELU_BGRAD ? m : 0, 0.0);
        for (uint64_t j = 0; j < n; j++)
            for (uint64_t i = 0; i < m; i++) {
                float v = alpha * acc[i + j * m];
                if (beta != 0.0f) v += beta * load(c, dt, at(*p.c, i, j));
                if (p.uses_bias) v += load(bias, p.bias_type, i);
                size_t xi = (size_t)(i + j * (uint64_t)op.aux_ld);
                if (p.writes_aux) store(aux, p.aux_type, xi, v);
                if (e == CUBLASLT_EPILOGUE_RELU || e == CUBLASLT_EPILOGUE_RELU_BIAS) v = v > 0.0f ? v : 0.0f;
                if (e == CUBLASLT_EPILOGUE_GELU || e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_BIAS ||
                    e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS)
                    v = gelu(v);
                if (e == CUBLASLT_EPILOGUE_DGELU || e == CUBLASLT_EPILOGUE_DGELU_BGRAD)
                    v *= dgelu(load(aux, p.aux_type, xi));
                store(d, dt, at(*p.d, i, j), v);
                if (!bgrad.empty()) bgrad[i] += load(d, dt, at(*p.d, i, j));
            }
        for (uint64_t i = 0; i < bgrad.size(); i++) store(bias, p.bias_type, i, (float)bgrad[i]);
    }
    return CUBLAS_STATUS_SUCCESS;
}

const char *status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}
const char *status_string(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "unknown error";
    }
}

} /* namespace */

extern "C" {

/* ---- cuBLAS handle */
cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    if (!qbemu::device_present()) return CUBLAS_STATUS_NOT_INITIALIZED;
    *handle = new cublasContext{nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t bytes) {
    (void)workspace, (void)bytes;
    return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
const char *cublasGetStatusName(cublasStatus_t s) { return status_name(s); }
const char *cublasGetStatusString(cublasStatus_t s) { return status_string(s); }

/* ---- cuBLASLt */
cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    if (!qbemu::device_present()) return CUBLAS_STATUS_NOT_INITIALIZED;
    *handle = new cublasLtContext{0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
size_t cublasLtGetVersion(void) { return CUBLAS_VERSION; }
size_t cublasLtGetCudartVersion(void) { return CUDART_VERSION; }
const char *cublasLtGetStatusName(cublasStatus_t s) { return status_name(s); }
const char *cublasLtGetStatusString(cublasStatus_t s) { return status_string(s); }

cublasStatus_t cublasLtMatmulDescInit_internal(cublasLtMatmulDesc_t desc, size_t size, cublasComputeType_t compute,
                                               cudaDataType_t scale) {
    if (!desc || size < sizeof(MatmulDesc)) return CUBLAS_STATUS_ALLOC_FAILED;
    MatmulDesc *d = new (desc) MatmulDesc();
    d->magic = DESC_MAGIC;
    d->compute = compute;
    d->scale_type = scale;
    d->pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d->transa = d->transb = d->transc = CUBLAS_OP_N;
    d->fill_mode = CUBLAS_FILL_MODE_FULL;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d->bias_type = d->aux_type = -1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                        cudaDataType_t scale) {
    if (!desc) return CUBLAS_STATUS_INVALID_VALUE;
    *desc = new (std::nothrow) cublasLtMatmulDescOpaque_t();
    if (!*desc) return CUBLAS_STATUS_ALLOC_FAILED;
    return cublasLtMatmulDescInit_internal(*desc, sizeof **desc, compute, scale);
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    if (desc && !desc_of(desc)) return CUBLAS_STATUS_INVALID_VALUE;
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

#define QBEMU_DESC_FIELDS(X)                                           \
    X(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, compute)                      \
    X(CUBLASLT_MATMUL_DESC_SCALE_TYPE, scale_type)                     \
    X(CUBLASLT_MATMUL_DESC_POINTER_MODE, pointer_mode)                 \
    X(CUBLASLT_MATMUL_DESC_TRANSA, transa)                             \
    X(CUBLASLT_MATMUL_DESC_TRANSB, transb)                             \
    X(CUBLASLT_MATMUL_DESC_TRANSC, transc)                             \
    X(CUBLASLT_MATMUL_DESC_FILL_MODE, fill_mode)                       \
    X(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue)                         \
    X(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias)                         \
    X(CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, bias_batch_stride)       \
    X(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux)                  \
    X(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld)                    \
    X(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, aux_batch_stride) \
    X(CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, sm_count)                  \
    X(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, aux_type)           \
    X(CUBLASLT_MATMUL_DESC_FAST_ACCUM, fast_accum)                     \
    X(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type)

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size) {
    MatmulDesc *d = desc_of(desc);
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
#define X(name, field) \
    case name: return set_field(&d->field, buf, size, #name);
        QBEMU_DESC_FIELDS(X)
#undef X
    default:
        note("cublasLtMatmulDescSetAttribute: attribute %d is not emulated", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}
cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              void *buf, size_t size, size_t *written) {
    MatmulDesc *d = desc_of(desc);
    if (!d) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
#define X(name, field) \
    case name: return get_field(&d->field, buf, size, written);
        QBEMU_DESC_FIELDS(X)
#undef X
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatrixLayoutInit_internal(cublasLtMatrixLayout_t layout, size_t size, cudaDataType type,
                                                 uint64_t rows, uint64_t cols, int64_t ld) {
    if (!layout || size < sizeof(Layout)) return CUBLAS_STATUS_ALLOC_FAILED;
    if (!type_size(type)) {
        note("cublasLtMatrixLayoutCreate: data type %d is not emulated", (int)type);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    Layout *l = new (layout) Layout();
    *l = Layout{LAYOUT_MAGIC, (uint32_t)type, CUBLASLT_ORDER_COL, 1, rows, cols, ld, 0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (!layout) return CUBLAS_STATUS_INVALID_VALUE;
    *layout = new (std::nothrow) cublasLtMatrixLayoutOpaque_t();
    if (!*layout) return CUBLAS_STATUS_ALLOC_FAILED;
    cublasStatus_t s = cublasLtMatrixLayoutInit_internal(*layout, sizeof **layout, type, rows, cols, ld);
    if (s != CUBLAS_STATUS_SUCCESS) {
        delete *layout;
        *layout = nullptr;
    }
    return s;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    if (layout && !layout_of(layout)) return CUBLAS_STATUS_INVALID_VALUE;
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t size) {
    Layout *l = layout_of(layout);
    if (!l) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return set_field(&l->type, buf, size, "CUBLASLT_MATRIX_LAYOUT_TYPE");
    case CUBLASLT_MATRIX_LAYOUT_ORDER: {
        int32_t order;
        if ((s = set_field(&order, buf, size, "CUBLASLT_MATRIX_LAYOUT_ORDER")) != CUBLAS_STATUS_SUCCESS) return s;
        if (order != CUBLASLT_ORDER_COL && order != CUBLASLT_ORDER_ROW) {
            note("cublasLtMatrixLayoutSetAttribute: order %d is not emulated (COL, ROW)", order);
            return CUBLAS_STATUS_NOT_SUPPORTED;
        }
        l->order = order;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return set_field(&l->rows, buf, size, "CUBLASLT_MATRIX_LAYOUT_ROWS");
    case CUBLASLT_MATRIX_LAYOUT_COLS: return set_field(&l->cols, buf, size, "CUBLASLT_MATRIX_LAYOUT_COLS");
    case CUBLASLT_MATRIX_LAYOUT_LD: return set_field(&l->ld, buf, size, "CUBLASLT_MATRIX_LAYOUT_LD");
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
        return set_field(&l->batch, buf, size, "CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT");
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
        return set_field(&l->stride, buf, size, "CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET");
    default:
        note("cublasLtMatrixLayoutSetAttribute: attribute %d is not emulated", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}
cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                void *buf, size_t size, size_t *written) {
    Layout *l = layout_of(layout);
    if (!l) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return get_field(&l->type, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return get_field(&l->order, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return get_field(&l->rows, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return get_field(&l->cols, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_LD: return get_field(&l->ld, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return get_field(&l->batch, buf, size, written);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return get_field(&l->stride, buf, size, written);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulPreferenceInit_internal(cublasLtMatmulPreference_t pref, size_t size) {
    if (!pref || size < sizeof(Pref)) return CUBLAS_STATUS_ALLOC_FAILED;
    new (pref) Pref{PREF_MAGIC, CUBLASLT_SEARCH_BEST_FIT, 0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    if (!pref) return CUBLAS_STATUS_INVALID_VALUE;
    *pref = new (std::nothrow) cublasLtMatmulPreferenceOpaque_t();
    if (!*pref) return CUBLAS_STATUS_ALLOC_FAILED;
    return cublasLtMatmulPreferenceInit_internal(*pref, sizeof **pref);
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    if (pref && !pref_of(pref)) return CUBLAS_STATUS_INVALID_VALUE;
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t size) {
    Pref *p = pref_of(pref);
    if (!p) return CUBLAS_STATUS_INVALID_VALUE;
    uint32_t u32;
    uint64_t u64;
    float f;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: return set_field(&p->search_mode, buf, size, "PREF_SEARCH_MODE");
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        return set_field(&p->max_workspace, buf, size, "PREF_MAX_WORKSPACE_BYTES");
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return set_field(&u32, buf, size, "matmul preference");
    case CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT: return set_field(&f, buf, size, "PREF_MAX_WAVES_COUNT");
    case CUBLASLT_MATMUL_PREF_IMPL_MASK: return set_field(&u64, buf, size, "PREF_IMPL_MASK");
    default:
        note("cublasLtMatmulPreferenceSetAttribute: attribute %d is not emulated", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t op,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *returned) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requested <= 0 || !results || !returned || (pref && !pref_of(pref))) return CUBLAS_STATUS_INVALID_VALUE;
    *returned = 0;
    Problem p;
    cublasStatus_t s = validate(op, a, b, c, d, &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    memset(&results[0], 0, sizeof results[0]);
    results[0].algo.data[0] = 0x716275656d75ull; /* one algorithm: the emulator's */
    results[0].workspaceSize = 0;
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t opd, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t ad, const void *B, cublasLtMatrixLayout_t bd, const void *beta,
                              const void *C, cublasLtMatrixLayout_t cd, void *D, cublasLtMatrixLayout_t dd,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
    (void)algo, (void)stream;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    Problem p;
    cublasStatus_t s = validate(opd, ad, bd, cd, dd, &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (!alpha || !beta) return fail(CUBLAS_STATUS_INVALID_VALUE, "alpha or beta is NULL");
    size_t scale_bytes = 4; /* float or int32 */
    if (p.op->pointer_mode == CUBLASLT_POINTER_MODE_DEVICE &&
        (qbemu::check_device_buffer("cublasLtMatmul", "alpha", alpha, scale_bytes) != cudaSuccess ||
         qbemu::check_device_buffer("cublasLtMatmul", "beta", beta, scale_bytes) != cudaSuccess))
        return CUBLAS_STATUS_INVALID_VALUE;
    bool int8 = p.a->type == CUDA_R_8I;
    bool reads_c = int8 ? *static_cast<const int32_t *>(beta) != 0 : *static_cast<const float *>(beta) != 0.0f;
    if ((s = check_buffers(p, A, B, C, reads_c, D)) != CUBLAS_STATUS_SUCCESS) return s;
    if (workspace && workspace_bytes &&
        qbemu::check_device_buffer("cublasLtMatmul", "workspace", workspace, workspace_bytes) != cudaSuccess)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (int8) return run_int8(p, alpha, A, B, beta, C, D);
    return run_float(p, *static_cast<const float *>(alpha), A, B, *static_cast<const float *>(beta), C, D);
}

} /* extern "C" */
